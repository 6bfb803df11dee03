//! The helm conformance suite (`urumi_core::helm::conformance`) run by `HelmCli`
//! against the real `helm` and the local Kubernetes cluster: one test per case, each in
//! a namespace of its own that is deleted afterwards.
//!
//! Needs the cluster: from the repository root, `eval "$(tests/cluster/up)"` exports
//! `KUBECONFIG` and puts `helm` on `PATH`. Without `KUBECONFIG` every test fails,
//! saying so; none is skipped.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use urumi_core::helm::conformance::{self, Crash, Fixture};
use urumi_core::helm::{HelmCli, HelmCliBuilder, HelmDriver, ReleaseStatus, UpgradeOptions};

fn kubeconfig() -> PathBuf {
    match std::env::var_os("KUBECONFIG") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "KUBECONFIG is not set: these tests need the local cluster. From the repository \
             root run `eval \"$(tests/cluster/up)\"` (it exports KUBECONFIG and puts helm on \
             PATH), then run the tests again."
        ),
    }
}

/// The real helm binary, found on `PATH` as `tests/cluster/up` puts it there.
fn helm_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("helm"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("no helm on PATH: run `eval \"$(tests/cluster/up)\"` from the repository root")
        })
}

/// The resident helm (`urumi-core/helm-resident`), found on `PATH` as `tests/cluster/up`
/// puts it there (`tests/cluster/build` builds it).
fn resident_binary() -> PathBuf {
    urumi_core::helm::find_in_path("urumi-helm-resident").unwrap_or_else(|| {
        panic!(
            "no urumi-helm-resident on PATH: run `eval \"$(tests/cluster/up)\"` from the \
             repository root"
        )
    })
}

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/helm/probe")
}

/// The probe chart packaged once per test binary with `helm package`.
fn chart_tgz() -> PathBuf {
    static TGZ: OnceLock<PathBuf> = OnceLock::new();
    TGZ.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("urumi-helm-probe-")
            .tempdir()
            .expect("tempdir")
            .keep();
        let out = std::process::Command::new(helm_binary())
            .arg("package")
            .arg(chart_dir())
            .arg("--destination")
            .arg(&dir)
            .output()
            .expect("run helm package");
        assert!(
            out.status.success(),
            "helm package failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir.join("probe-0.1.0.tgz")
    })
    .clone()
}

fn cli() -> HelmCliBuilder {
    HelmCli::builder()
        .binary(helm_binary())
        .kubeconfig(kubeconfig())
        .timeout(Duration::from_secs(120))
}

/// Where the driver reads release histories from.
#[derive(Clone, Copy)]
enum History {
    /// `helm history` processes (the default).
    Helm,
    /// helm's release Secrets, through the API; no OpenAPI check (the provisioner's way).
    Records,
}

async fn driver(history: History) -> Arc<dyn HelmDriver> {
    match history {
        History::Helm => Arc::new(cli().build()),
        History::Records => {
            let client = kube::Client::try_default()
                .await
                .expect("a client from KUBECONFIG");
            Arc::new(
                cli()
                    .read_history_from(client)
                    .openapi_validation(false)
                    .build(),
            )
        }
    }
}

/// Every call (histories included) answered by one resident process; no OpenAPI check.
fn resident_driver() -> HelmCli {
    cli()
        .resident(resident_binary())
        .openapi_validation(false)
        .build()
}

/// A crash of the resident helm: SIGKILL to the process `helm` runs.
fn crash_of(helm: &HelmCli) -> Crash {
    let helm = helm.clone();
    Crash(Arc::new(move || {
        let pid = helm.resident_pid().expect("the resident helm runs");
        let pid = rustix::process::Pid::from_raw(pid as i32).expect("a pid");
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("SIGKILL");
    }))
}

/// Runs kubectl (from `PATH`, as `tests/cluster/up` puts it there) against the cluster.
async fn kubectl(args: &[&str]) -> Result<(), String> {
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(args)
        .output()
        .await
        .map_err(|e| format!("cannot run kubectl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs `case` in a fresh namespace, deletes the namespace, then reports the case's
/// outcome (a panic in the case fails the test after the cleanup).
async fn in_namespace<F, Fut>(case: &str, run: F)
where
    F: FnOnce(Fixture) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    kubeconfig();
    let name = format!("helm-{case}-{:08x}", rand_suffix());
    kubectl(&["create", "namespace", &name])
        .await
        .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
    let fixture = Fixture {
        namespace: name.clone(),
        chart_dir: chart_dir(),
        chart_tgz: chart_tgz(),
        crash: None,
    };
    let started = Instant::now();
    let outcome = tokio::spawn(run(fixture)).await;
    eprintln!("case {case}: {} ms", started.elapsed().as_millis());
    if let Err(e) = kubectl(&["delete", "namespace", &name, "--wait=false"]).await {
        eprintln!("could not delete namespace {name}: {e}");
    }
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("case {case} did not finish: {e}"),
        }
    }
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    nanos ^ std::process::id().rotate_left(16)
}

/// Each conformance case three ways: helm's defaults (histories read by `helm history`, the
/// OpenAPI check on), and as the provisioner builds the driver (histories read from helm's
/// release records by the API, [`HelmCliBuilder::read_history_from`]; no OpenAPI check),
/// and through the resident helm ([`HelmCliBuilder::resident`]; every call, histories
/// included, answered by one long-lived process).
macro_rules! every_way {
    ($($test:ident: $label:literal => $case:ident;)*) => {$(
        mod $test {
            use super::*;

            #[tokio::test]
            async fn through_helm_history() {
                in_namespace($label, |fx| async move {
                    conformance::$case(driver(History::Helm).await, &fx).await;
                })
                .await;
            }

            #[tokio::test]
            async fn from_release_records() {
                in_namespace(concat!($label, "-rec"), |fx| async move {
                    conformance::$case(driver(History::Records).await, &fx).await;
                })
                .await;
            }

            #[tokio::test]
            async fn through_the_resident_helm() {
                in_namespace(concat!($label, "-res"), |mut fx| async move {
                    let helm = resident_driver();
                    fx.crash = Some(crash_of(&helm));
                    conformance::$case(Arc::new(helm), &fx).await;
                })
                .await;
            }
        }
    )*};
}

every_way! {
    missing_release_has_no_status: "missing" => case_missing_release_has_no_status;
    install_then_status: "install" => case_install_then_status;
    upgrade_is_idempotent: "idempotent" => case_upgrade_is_idempotent;
    packaged_chart_installs: "tgz" => case_packaged_chart_installs;
    uninstall_twice_is_ok: "uninstall" => case_uninstall_twice_is_ok;
    render_failure_is_permanent_and_secret_free: "render" => case_render_failure_is_permanent_and_secret_free;
    schema_violation_is_permanent: "schema" => case_schema_violation_is_permanent;
    rollback_restores_a_revision: "rollback" => case_rollback_restores_a_revision;
    interrupted_install_is_repaired: "pending-install" => case_interrupted_install_is_repaired;
    interrupted_upgrade_is_repaired: "pending-upgrade" => case_interrupted_upgrade_is_repaired;
    cancelled_upgrade_is_left_failed_not_pending: "cancelled-upgrade" => case_cancelled_upgrade_is_left_failed_not_pending;
}

#[tokio::test]
async fn cli_values_file_is_private_and_removed() {
    in_namespace("values-file", |fx| async move {
        conformance::case_cli_values_file_is_private_and_removed(&helm_binary(), &fx).await;
    })
    .await;
}

#[tokio::test]
async fn cli_deadline_stops_helm_cleanly() {
    in_namespace("deadline", |fx| async move {
        conformance::case_cli_deadline_stops_helm_cleanly(cli(), &fx).await;
    })
    .await;
}

#[tokio::test]
async fn resident_deadline_cancels_the_call_cleanly() {
    in_namespace("deadline-res", |fx| async move {
        conformance::case_cli_deadline_stops_helm_cleanly(cli().resident(resident_binary()), &fx)
            .await;
    })
    .await;
}

/// Not a conformance case: how long `upgrade_install` of the probe chart takes on this
/// cluster (printed; run with `--nocapture` to see it). Fails only if absurdly slow.
#[tokio::test]
async fn upgrade_install_timing() {
    in_namespace("timing", |fx| async move {
        let driver = driver(History::Records).await;
        let mut timings = Vec::new();
        for round in 0..4 {
            let values = serde_json::json!({"message": format!("round {round}")});
            let started = Instant::now();
            let release = driver
                .upgrade_install("probe", &fx.namespace, &fx.chart_dir, values, &UpgradeOptions::new())
                .await
                .unwrap_or_else(|e| panic!("upgrade_install round {round}: {e}"));
            timings.push(started.elapsed().as_millis());
            assert_eq!(release.status, ReleaseStatus::Deployed);
        }
        let started = Instant::now();
        let status = driver.status("probe", &fx.namespace).await;
        let status_ms = started.elapsed().as_millis();
        assert_eq!(status, Ok(Some(ReleaseStatus::Deployed)));
        eprintln!(
            "upgrade_install of the probe chart: install {} ms, upgrades {:?} ms; status {status_ms} ms",
            timings[0],
            &timings[1..]
        );
        assert!(timings.iter().all(|&ms| ms < 60_000), "{timings:?}");
    })
    .await;
}
