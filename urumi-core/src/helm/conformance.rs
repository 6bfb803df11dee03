//! The behaviour every [`HelmDriver`] must have, one public async function per case
//! (the object_store / opendal pattern). Each case panics with a message naming the
//! broken behaviour; run each from its own `#[tokio::test]`, against a real cluster,
//! in a namespace of its own (see `tests/helm_cluster.rs`).
//!
//! The cases install the `probe` chart of `urumi-core/tests/fixtures/helm/probe`: a
//! ConfigMap and a Deployment, plus two switches: `failRender` (the chart fails to
//! render, quoting `db.password`) and `hangHook` (a pre-install/pre-upgrade hook Job
//! that is never scheduled, so helm waits on it until it is killed).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{HelmCli, HelmCliBuilder, HelmDriver, HelmErrorKind, ReleaseStatus, UpgradeOptions};

/// Where a case runs: its namespace (existing, empty, its own) and the probe chart.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The namespace the case installs into; the caller creates and deletes it.
    pub namespace: String,
    /// The probe chart as a directory.
    pub chart_dir: PathBuf,
    /// The probe chart packaged as a `.tgz` (`helm package`).
    pub chart_tgz: PathBuf,
    /// How the cases that simulate a crash kill the process running helm's work for the
    /// driver under test. `None`: SIGKILL the `helm` processes working in the namespace.
    pub crash: Option<Crash>,
}

/// Kills, as a crash would, whatever runs helm's work for one driver (see
/// [`Fixture::crash`]).
#[derive(Clone)]
pub struct Crash(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for Crash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Crash(..)")
    }
}

/// How long a case waits for a release to reach a state before failing.
const PATIENCE: Duration = Duration::from_secs(60);

fn values(message: &str) -> Value {
    json!({"message": message, "replicas": 1})
}

/// Polls `status` until it is `want`, panicking after [`PATIENCE`].
async fn await_status(driver: &dyn HelmDriver, release: &str, ns: &str, want: ReleaseStatus) {
    let started = Instant::now();
    loop {
        let got = driver
            .status(release, ns)
            .await
            .unwrap_or_else(|e| panic!("status of {release}: {e}"));
        if got == Some(want) {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "release {release} never became {want} (last: {got:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts an upgrade whose hook never completes, waits until helm has recorded the
/// release as `pending`, then SIGKILLs helm and drops the call: what a crash of the
/// whole process leaves behind.
async fn interrupt_upgrade(
    driver: &Arc<dyn HelmDriver>,
    fx: &Fixture,
    release: &str,
    pending: ReleaseStatus,
) {
    let task = {
        let driver = Arc::clone(driver);
        let (release, fx) = (release.to_owned(), fx.clone());
        tokio::spawn(async move {
            let mut v = values("hanging");
            v["hangHook"] = json!(true);
            driver
                .upgrade_install(
                    &release,
                    &fx.namespace,
                    &fx.chart_dir,
                    v,
                    &UpgradeOptions::new(),
                )
                .await
        })
    };
    await_status(driver.as_ref(), release, &fx.namespace, pending).await;
    // A crash, not a cancellation: the process running helm dies with it (a cancelled
    // call lets helm record the release as failed; see
    // `case_cancelled_upgrade_is_left_failed_not_pending`).
    match &fx.crash {
        Some(Crash(crash)) => crash(),
        None => kill_helm_in(&fx.namespace),
    }
    task.abort();
    let outcome = task.await;
    assert!(
        outcome.as_ref().is_err_and(|e| e.is_cancelled()),
        "the hanging upgrade finished instead of hanging: {outcome:?}"
    );
}

/// The pids of the `helm` processes working in `namespace` (found through /proc: a helm
/// whose arguments name the namespace).
pub fn helm_pids_in(namespace: &str) -> Vec<i32> {
    super::process::helm_processes_in(namespace)
        .into_iter()
        .map(|p| p.pid)
        .collect()
}

/// SIGKILLs every `helm` process working in `namespace`.
fn kill_helm_in(namespace: &str) {
    for pid in helm_pids_in(namespace) {
        #[cfg(unix)]
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// An upgrade whose caller goes away (the future dropped: a delete interrupting the
/// store's work, a shutdown past its grace) gets SIGTERM, and helm records the release
/// as failed rather than leaving it `pending-upgrade`; the next `upgrade_install`
/// succeeds.
pub async fn case_cancelled_upgrade_is_left_failed_not_pending(
    driver: Arc<dyn HelmDriver>,
    fx: &Fixture,
) {
    driver
        .upgrade_install(
            "probe",
            &fx.namespace,
            &fx.chart_dir,
            values("v1"),
            &UpgradeOptions::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("install: {e}"));
    let task = {
        let driver = Arc::clone(&driver);
        let fx = fx.clone();
        tokio::spawn(async move {
            let mut v = values("hanging");
            v["hangHook"] = json!(true);
            driver
                .upgrade_install(
                    "probe",
                    &fx.namespace,
                    &fx.chart_dir,
                    v,
                    &UpgradeOptions::new(),
                )
                .await
        })
    };
    await_status(
        driver.as_ref(),
        "probe",
        &fx.namespace,
        ReleaseStatus::PendingUpgrade,
    )
    .await;
    task.abort();
    let _ = task.await;
    await_status(
        driver.as_ref(),
        "probe",
        &fx.namespace,
        ReleaseStatus::Failed,
    )
    .await;
    let release = driver
        .upgrade_install(
            "probe",
            &fx.namespace,
            &fx.chart_dir,
            values("v2"),
            &UpgradeOptions::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("upgrade after a cancelled upgrade: {e}"));
    assert_eq!(release.status, ReleaseStatus::Deployed);
}

/// A release that does not exist has no status and no history.
pub async fn case_missing_release_has_no_status(driver: Arc<dyn HelmDriver>, fx: &Fixture) {
    let status = driver.status("absent", &fx.namespace).await;
    assert_eq!(status, Ok(None), "status of a missing release");
    let history = driver.history("absent", &fx.namespace).await;
    assert_eq!(history, Ok(vec![]), "history of a missing release");
}

/// A first `upgrade_install` installs the chart: deployed, revision 1, in the history.
pub async fn case_install_then_status(driver: Arc<dyn HelmDriver>, fx: &Fixture) {
    let release = driver
        .upgrade_install(
            "probe",
            &fx.namespace,
            &fx.chart_dir,
            values("one"),
            &UpgradeOptions::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("install: {e}"));
    assert_eq!(release.name, "probe");
    assert_eq!(release.namespace, fx.namespace);
    assert_eq!(release.revision, 1);
    assert_eq!(release.status, ReleaseStatus::Deployed);
    assert_eq!(release.chart, "probe-0.1.0");
    assert_eq!(release.app_version.as_deref(), Some("1.0"));
    assert_eq!(
        driver.status("probe", &fx.namespace).await,
        Ok(Some(ReleaseStatus::Deployed))
    );
    let history = driver
        .history("probe", &fx.namespace)
        .await
        .unwrap_or_else(|e| panic!("history: {e}"));
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].status, ReleaseStatus::Deployed);
}

/// The same `upgrade_install` twice leaves the release deployed (one more revision).
pub async fn case_upgrade_is_idempotent(driver: Arc<dyn HelmDriver>, fx: &Fixture) {
    let mut revisions = Vec::new();
    for attempt in 1..=2 {
        let release = driver
            .upgrade_install(
                "probe",
                &fx.namespace,
                &fx.chart_dir,
                values("same"),
                &UpgradeOptions::new(),
            )
            .await
            .unwrap_or_else(|e| panic!("upgrade_install #{attempt}: {e}"));
        assert_eq!(release.status, ReleaseStatus::Deployed, "attempt {attempt}");
        revisions.push(release.revision);
    }
    assert_eq!(revisions, vec![1, 2]);
    assert_eq!(
        driver.status("probe", &fx.namespace).await,
        Ok(Some(ReleaseStatus::Deployed))
    );
    let history = driver
        .history("probe", &fx.namespace)
        .await
        .unwrap_or_else(|e| panic!("history: {e}"));
    let statuses: Vec<_> = history.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![ReleaseStatus::Superseded, ReleaseStatus::Deployed]
    );
}

/// A packaged `.tgz` chart installs like a chart directory.
pub async fn case_packaged_chart_installs(driver: Arc<dyn HelmDriver>, fx: &Fixture) {
    let release = driver
        .upgrade_install(
            "packaged",
            &fx.namespace,
            &fx.chart_tgz,
            values("tgz"),
            &UpgradeOptions::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("install from {}: {e}", fx.chart_tgz.display()));
    assert_eq!(release.status, ReleaseStatus::Deployed);
    assert_eq!(release.chart, "probe-0.1.0");
}

/// Uninstalling twice, or uninstalling what never existed, is `Ok`; afterwards the
/// release has no status.
pub async fn case_uninstall_twice_is_ok(driver: Arc<dyn HelmDriver>, fx: &Fixture) {
    driver
        .upgrade_install(
            "probe",
            &fx.namespace,
            &fx.chart_dir,
            values("bye"),
            &UpgradeOptions::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("install: {e}"));
    for attempt in 1..=2 {
        let outcome = driver.uninstall("probe", &fx.namespace).await;
        assert_eq!(outcome, Ok(()), "uninstall #{attempt}");
    }
    assert_eq!(driver.status("probe", &fx.namespace).await, Ok(None));
    assert_eq!(
        driver.uninstall("never-installed", &fx.namespace).await,
        Ok(())
    );
}

/// A chart that fails to render is a permanent error carrying helm's reason, and the
/// reason does not carry the secret it quoted.
pub async fn case_render_failure_is_permanent_and_secret_free(
    driver: Arc<dyn HelmDriver>,
    fx: &Fixture,
) {
    let secret = "pw-9f8e7d6c5b4a";
    let mut v = values("broken");
    v["failRender"] = json!(true);
    v["db"] = json!({"password": secret});
    let err = driver
        .upgrade_install(
            "probe",
            &fx.namespace,
            &fx.chart_dir,
            v,
            &UpgradeOptions::new(),
        )
        .await
        .expect_err("a chart that fails to render must not install");
    assert_eq!(err.kind(), HelmErrorKind::Rejected, "{err}");
    assert!(!err.is_retryable());
    let shown = format!("{err} / {err:?} / {}", crate::Error::from(err.clone()));
    assert!(
        shown.contains("refusing to render"),
        "helm's reason is lost: {shown}"
    );
    assert!(!shown.contains(secret), "the secret leaked: {shown}");
}

/// Values that break the chart's schema are a permanent error naming the field.
pub async fn case_schema_violation_is_permanent(driver: Arc<dyn HelmDriver>, fx: &Fixture) {
    let err = driver
        .upgrade_install(
            "probe",
            &fx.namespace,
            &fx.chart_dir,
            json!({"replicas": "many"}),
            &UpgradeOptions::new(),
        )
        .await
        .expect_err("values breaking the schema must not install");
    assert_eq!(err.kind(), HelmErrorKind::Rejected, "{err}");
    assert!(err.message().contains("replicas"), "{err}");
}

/// `rollback` restores an earlier revision; rolling back to a revision that does not
/// exist is `NotFound`.
pub async fn case_rollback_restores_a_revision(driver: Arc<dyn HelmDriver>, fx: &Fixture) {
    for message in ["first", "second"] {
        driver
            .upgrade_install(
                "probe",
                &fx.namespace,
                &fx.chart_dir,
                values(message),
                &UpgradeOptions::new(),
            )
            .await
            .unwrap_or_else(|e| panic!("upgrade_install {message}: {e}"));
    }
    assert_eq!(driver.rollback("probe", &fx.namespace, 1).await, Ok(()));
    let history = driver
        .history("probe", &fx.namespace)
        .await
        .unwrap_or_else(|e| panic!("history: {e}"));
    let last = history.last().expect("history is not empty");
    assert_eq!(
        (last.revision, last.status),
        (3, ReleaseStatus::Deployed),
        "{history:?}"
    );
    assert!(last.description.contains("Rollback to 1"), "{history:?}");

    let err = driver
        .rollback("probe", &fx.namespace, 99)
        .await
        .expect_err("revision 99 does not exist");
    assert_eq!(err.kind(), HelmErrorKind::NotFound, "{err}");
    let err = driver
        .rollback("absent", &fx.namespace, 1)
        .await
        .expect_err("release does not exist");
    assert_eq!(err.kind(), HelmErrorKind::NotFound, "{err}");
}

/// An install killed mid-flight leaves `pending-install`; the next `upgrade_install`
/// repairs it (uninstall, install) and succeeds.
pub async fn case_interrupted_install_is_repaired(driver: Arc<dyn HelmDriver>, fx: &Fixture) {
    interrupt_upgrade(&driver, fx, "probe", ReleaseStatus::PendingInstall).await;
    let release = driver
        .upgrade_install(
            "probe",
            &fx.namespace,
            &fx.chart_dir,
            values("repaired"),
            &UpgradeOptions::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("upgrade_install after an interrupted install: {e}"));
    assert_eq!(release.status, ReleaseStatus::Deployed);
    assert_eq!(
        driver.status("probe", &fx.namespace).await,
        Ok(Some(ReleaseStatus::Deployed))
    );
}

/// An upgrade killed mid-flight leaves `pending-upgrade`; the next `upgrade_install`
/// rolls back to the last deployed revision, then upgrades, and succeeds.
pub async fn case_interrupted_upgrade_is_repaired(driver: Arc<dyn HelmDriver>, fx: &Fixture) {
    driver
        .upgrade_install(
            "probe",
            &fx.namespace,
            &fx.chart_dir,
            values("v1"),
            &UpgradeOptions::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("install: {e}"));
    interrupt_upgrade(&driver, fx, "probe", ReleaseStatus::PendingUpgrade).await;
    let release = driver
        .upgrade_install(
            "probe",
            &fx.namespace,
            &fx.chart_dir,
            values("v2"),
            &UpgradeOptions::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("upgrade_install after an interrupted upgrade: {e}"));
    assert_eq!(release.status, ReleaseStatus::Deployed);
    let history = driver
        .history("probe", &fx.namespace)
        .await
        .unwrap_or_else(|e| panic!("history: {e}"));
    assert!(
        history
            .iter()
            .any(|r| r.description.contains("Rollback to 1")),
        "the pending upgrade was not rolled back: {history:?}"
    );
    assert_eq!(
        history.last().map(|r| r.status),
        Some(ReleaseStatus::Deployed)
    );
}

/// [`HelmCli`] only: helm reads the values from a file that is mode 0600 while helm
/// runs and gone afterwards, and no value reaches helm's command line. `helm` is the
/// real binary; the case wraps it in a script that inspects the file.
pub async fn case_cli_values_file_is_private_and_removed(helm: &Path, fx: &Fixture) {
    let dir = tempfile::tempdir().expect("tempdir");
    let values_dir = dir.path().join("values");
    std::fs::create_dir(&values_dir).expect("values dir");
    let wrapper = dir.path().join("helm-wrapper");
    let log = dir.path().join("seen");
    let script = format!(
        "#!/bin/sh\n\
         prev=''; for a in \"$@\"; do\n\
           if [ \"$prev\" = --values ]; then echo \"$a $(stat -c %a \"$a\")\" >> '{log}'; fi\n\
           case \"$a\" in *s3cr3t-value*) echo 'secret on the command line' >> '{log}';; esac\n\
           prev=$a\n\
         done\n\
         exec '{helm}' \"$@\"\n",
        log = log.display(),
        helm = helm.display(),
    );
    std::fs::write(&wrapper, script).expect("write wrapper");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let cli = HelmCli::builder()
        .binary(&wrapper)
        .values_dir(&values_dir)
        .timeout(Duration::from_secs(120))
        .build();
    let mut v = values("private");
    v["db"] = json!({"password": "s3cr3t-value"});
    let release = cli
        .upgrade_install(
            "probe",
            &fx.namespace,
            &fx.chart_dir,
            v,
            &UpgradeOptions::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("install through the wrapper: {e}"));
    assert_eq!(release.status, ReleaseStatus::Deployed);

    let seen = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!seen.contains("secret on the command line"), "{seen}");
    let mut lines = seen.lines();
    let line = lines.next().expect("helm was called with --values");
    let (path, mode) = line.rsplit_once(' ').expect("path and mode");
    assert_eq!(mode, "600", "values file {path} had mode {mode}");
    assert!(Path::new(path).starts_with(&values_dir), "{path}");
    assert!(
        !Path::new(path).exists(),
        "values file {path} outlived the call"
    );
    let left = std::fs::read_dir(&values_dir)
        .map(Iterator::count)
        .unwrap_or(usize::MAX);
    assert_eq!(left, 0, "files left in the values dir");
}

/// [`HelmCli`] only: a helm that outlives the driver's deadline is stopped with
/// SIGTERM, so helm itself records the release as `failed` (not `pending-install`),
/// and the next `upgrade_install` simply succeeds. `cli` is configured for the cluster;
/// the case sets a short deadline and a long helm `--timeout` on it.
pub async fn case_cli_deadline_stops_helm_cleanly(cli: HelmCliBuilder, fx: &Fixture) {
    let deadline = Duration::from_secs(8);
    let impatient = cli
        .clone()
        .timeout(deadline)
        .helm_timeout(Duration::from_secs(600))
        .kill_grace(Duration::from_secs(20))
        .build();
    let mut v = values("hanging");
    v["hangHook"] = json!(true);
    let started = Instant::now();
    let err = impatient
        .upgrade_install(
            "probe",
            &fx.namespace,
            &fx.chart_dir,
            v,
            &UpgradeOptions::new(),
        )
        .await
        .expect_err("a hook that never completes must hit the deadline");
    assert_eq!(err.kind(), HelmErrorKind::Timeout, "{err}");
    assert!(
        started.elapsed() < deadline + Duration::from_secs(15),
        "helm was not stopped promptly: {:?}",
        started.elapsed()
    );
    assert_eq!(
        impatient.status("probe", &fx.namespace).await,
        Ok(Some(ReleaseStatus::Failed)),
        "helm did not record the failure on SIGTERM"
    );
    let release = cli
        .build()
        .upgrade_install(
            "probe",
            &fx.namespace,
            &fx.chart_dir,
            values("after"),
            &UpgradeOptions::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("upgrade_install after a stopped install: {e}"));
    assert_eq!(release.status, ReleaseStatus::Deployed);
}
