//! Unit tests of [`HelmCli`] against a fake `helm`: a shell script that logs its
//! arguments and answers like helm. The real helm runs in `tests/helm_cluster.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

const RELEASE_JSON: &str = r#"{"name":"shop1","namespace":"store-shop1","version":3,"info":{"status":"deployed","description":"Upgrade complete","last_deployed":"2026-11-23T04:00:00Z"},"chart":{"metadata":{"name":"probe","version":"0.1.0","appVersion":"1.0"}},"config":{"db":{"password":"hunter2-long"}}}"#;

struct FakeHelm {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl FakeHelm {
    /// A fake helm whose behaviour is `body` (sh, `$1` is the subcommand); every call
    /// appends its arguments, one line per call, to `calls.log`.
    fn new(body: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("helm");
        let script = format!(
            "#!/bin/sh\nD='{}'\necho \"$*\" >> \"$D/calls.log\"\n{body}\n",
            dir.path().display()
        );
        std::fs::write(&bin, script).expect("write fake helm");
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))
                .expect("chmod fake helm");
        }
        Self { dir, bin }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn builder(&self) -> HelmCliBuilder {
        HelmCli::builder()
            .binary(&self.bin)
            .timeout(Duration::from_secs(20))
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }
}

fn history_json(statuses: &[&str]) -> String {
    let entries: Vec<String> = statuses
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                r#"{{"revision":{},"updated":"2026-11-23T04:00:00Z","status":"{s}","chart":"probe-0.1.0","app_version":"1.0","description":"x"}}"#,
                i + 1
            )
        })
        .collect();
    format!("[{}]", entries.join(","))
}

/// A fake helm with no release, whose `upgrade` answers `upgrade_body`.
fn fake_with_upgrade(upgrade_body: &str) -> FakeHelm {
    FakeHelm::new(&format!(
        "case \"$1\" in\n\
         history) echo 'Error: release: not found' >&2; exit 1 ;;\n\
         upgrade) {upgrade_body} ;;\n\
         *) exit 0 ;;\n\
         esac"
    ))
}

/// Whether process `pid` is running (a zombie waiting to be reaped is not).
fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn wait_for_file(path: &Path) -> String {
    for _ in 0..200 {
        if let Ok(s) = std::fs::read_to_string(path)
            && !s.trim().is_empty()
        {
            return s.trim().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{} never appeared", path.display());
}

#[tokio::test]
async fn upgrade_passes_values_in_a_private_file_that_is_removed_afterwards() {
    let fake = fake_with_upgrade(&format!(
        "while [ $# -gt 0 ]; do if [ \"$1\" = --values ]; then f=$2; fi; shift; done\n\
         stat -c %a \"$f\" > \"$D/mode\"; echo \"$f\" > \"$D/file\"; cat \"$f\" > \"$D/content\"\n\
         echo '{RELEASE_JSON}'"
    ));
    let values_dir = tempfile::tempdir().expect("tempdir");
    let helm = fake
        .builder()
        .values_dir(values_dir.path())
        .kubeconfig("/etc/kubeconfig")
        .context("ctx1")
        .build();
    let values = json!({"db": {"password": "hunter2-long"}, "replicas": 2});
    let release = helm
        .upgrade_install(
            "shop1",
            "store-shop1",
            fake.path(),
            values.clone(),
            &UpgradeOptions::new().description("by test"),
        )
        .await
        .expect("upgrade succeeds");

    assert_eq!(release.name, "shop1");
    assert_eq!(release.revision, 3);
    assert_eq!(release.status, ReleaseStatus::Deployed);
    assert_eq!(release.chart, "probe-0.1.0");
    assert_eq!(fake.read("mode"), "600", "the values file must be private");
    let file = PathBuf::from(fake.read("file"));
    assert!(file.starts_with(values_dir.path()), "{}", file.display());
    assert!(!file.exists(), "the values file must be removed");
    assert_eq!(
        std::fs::read_dir(values_dir.path())
            .map(Iterator::count)
            .ok(),
        Some(0)
    );
    let written: serde_json::Value = serde_json::from_str(&fake.read("content")).expect("json");
    assert_eq!(written, values);

    let calls = fake.calls();
    let upgrade = calls
        .iter()
        .find(|c| c.starts_with("upgrade"))
        .expect("upgrade ran");
    for want in [
        "--install shop1",
        "--reset-values",
        "--output json",
        "--namespace store-shop1",
        "--kubeconfig /etc/kubeconfig",
        "--kube-context ctx1",
        "--history-max 10",
        "--description by test",
        "--timeout 18000ms",
    ] {
        assert!(upgrade.contains(want), "missing {want:?} in {upgrade}");
    }
    for banned in ["--wait", "--set", "hunter2", "--disable-openapi-validation"] {
        assert!(
            !calls.iter().any(|c| c.contains(banned)),
            "{banned:?} in {calls:?}"
        );
    }
}

#[tokio::test]
async fn openapi_validation_off_skips_helms_schema_check_on_install_only() {
    let fake = fake_with_upgrade(&format!("echo '{RELEASE_JSON}'"));
    let helm = fake.builder().openapi_validation(false).build();
    helm.upgrade_install(
        "shop1",
        "store-shop1",
        fake.path(),
        json!({}),
        &UpgradeOptions::new(),
    )
    .await
    .expect("upgrade succeeds");
    let calls = fake.calls();
    let upgrade = calls
        .iter()
        .find(|c| c.starts_with("upgrade"))
        .expect("upgrade ran");
    assert!(
        upgrade.contains("--disable-openapi-validation"),
        "{upgrade}"
    );
    assert!(
        calls
            .iter()
            .filter(|c| !c.starts_with("upgrade"))
            .all(|c| !c.contains("--disable-openapi-validation")),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_hung_helm_is_killed_at_the_deadline() {
    let fake = fake_with_upgrade("echo $$ > \"$D/pid\"; exec sleep 30");
    let values_dir = tempfile::tempdir().expect("tempdir");
    let helm = fake
        .builder()
        .timeout(Duration::from_millis(700))
        .values_dir(values_dir.path())
        .build();
    let started = Instant::now();
    let err = helm
        .upgrade_install(
            "shop1",
            "store-shop1",
            fake.path(),
            json!({}),
            &UpgradeOptions::new(),
        )
        .await
        .expect_err("times out");
    assert_eq!(err.kind(), HelmErrorKind::Timeout);
    assert!(err.is_retryable());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let pid = fake.read("pid");
    assert!(!pid.is_empty());
    assert!(
        !alive(&pid),
        "helm (pid {pid}) still runs after the deadline"
    );
    assert_eq!(
        std::fs::read_dir(values_dir.path())
            .map(Iterator::count)
            .ok(),
        Some(0)
    );
}

#[tokio::test]
async fn at_the_deadline_helm_gets_sigterm_first_to_record_the_failure() {
    let fake = fake_with_upgrade(
        // Like helm, it reports the cancellation on stdout first: that write must not
        // hit a closed pipe (SIGPIPE would kill it before it records the failure).
        "trap 'echo Release shop1 has been cancelled.; echo term > \"$D/term\"; kill $! 2>/dev/null; exit 143' TERM\n\
         echo $$ > \"$D/pid\"; sleep 30 & wait $!",
    );
    let helm = fake
        .builder()
        .timeout(Duration::from_millis(700))
        .kill_grace(Duration::from_secs(15))
        .build();
    let started = Instant::now();
    let err = helm
        .upgrade_install(
            "shop1",
            "ns",
            fake.path(),
            json!({}),
            &UpgradeOptions::new(),
        )
        .await
        .expect_err("times out");
    assert_eq!(err.kind(), HelmErrorKind::Timeout);
    assert_eq!(fake.read("term"), "term", "helm did not get SIGTERM");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited for the whole grace although helm exited: {:?}",
        started.elapsed()
    );
    assert!(!alive(&fake.read("pid")));
}

#[tokio::test]
async fn a_helm_ignoring_sigterm_is_killed_after_the_grace() {
    let fake = fake_with_upgrade("trap '' TERM; echo $$ > \"$D/pid\"; exec sleep 30");
    let helm = fake
        .builder()
        .timeout(Duration::from_millis(500))
        .kill_grace(Duration::from_millis(700))
        .build();
    let started = Instant::now();
    let err = helm
        .upgrade_install(
            "shop1",
            "ns",
            fake.path(),
            json!({}),
            &UpgradeOptions::new(),
        )
        .await
        .expect_err("times out");
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), HelmErrorKind::Timeout);
    assert!(
        elapsed >= Duration::from_millis(1100),
        "no grace given: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    let pid = fake.read("pid");
    assert!(!alive(&pid), "helm (pid {pid}) survived SIGKILL");
}

#[tokio::test]
async fn dropping_the_call_kills_helm_and_removes_the_values_file() {
    let fake = fake_with_upgrade("echo $$ > \"$D/pid\"; exec sleep 30");
    let values_dir = tempfile::tempdir().expect("tempdir");
    let helm = fake.builder().values_dir(values_dir.path()).build();
    let chart = fake.path().to_owned();
    let task = tokio::spawn(async move {
        helm.upgrade_install(
            "shop1",
            "store-shop1",
            &chart,
            json!({}),
            &UpgradeOptions::new(),
        )
        .await
    });
    let pid = wait_for_file(&fake.path().join("pid")).await;
    assert!(alive(&pid));
    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    for _ in 0..100 {
        if !alive(&pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(&pid), "helm (pid {pid}) outlived its cancelled call");
    assert_eq!(
        std::fs::read_dir(values_dir.path())
            .map(Iterator::count)
            .ok(),
        Some(0)
    );
}

#[tokio::test]
async fn a_chart_rejection_is_permanent_and_its_message_is_scrubbed() {
    let fake = fake_with_upgrade(
        "echo 'WARNING: Kubernetes configuration file is group-readable. This is insecure.' >&2\n\
         echo 'Error: INSTALLATION FAILED: execution error at (probe/templates/cm.yaml:3:4): cannot log in with hunter2-long or extra-secret-9' >&2; exit 1",
    );
    let helm = fake.builder().build();
    let err = helm
        .upgrade_install(
            "shop1",
            "store-shop1",
            fake.path(),
            json!({"db": {"password": "hunter2-long"}}),
            &UpgradeOptions::new().secret("extra-secret-9"),
        )
        .await
        .expect_err("rejected");
    assert_eq!(err.kind(), HelmErrorKind::Rejected);
    assert!(!err.is_retryable());
    let shown = format!("{err} {err:?} {}", crate::Error::from(err.clone()));
    assert!(
        shown.contains("execution error at (probe/templates/cm.yaml:3:4)"),
        "{shown}"
    );
    assert!(!shown.contains("hunter2-long"), "{shown}");
    assert!(!shown.contains("extra-secret-9"), "{shown}");
    assert!(!shown.contains("group-readable"), "{shown}");
}

#[tokio::test]
async fn another_operation_in_progress_is_retryable() {
    let fake = fake_with_upgrade(
        "echo 'Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress' >&2; exit 1",
    );
    let err = fake
        .builder()
        .build()
        .upgrade_install(
            "shop1",
            "store-shop1",
            fake.path(),
            json!({}),
            &UpgradeOptions::new(),
        )
        .await
        .expect_err("busy");
    assert_eq!(err.kind(), HelmErrorKind::InProgress);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn an_unreachable_cluster_is_retryable() {
    let fake = FakeHelm::new(
        "echo 'Error: Kubernetes cluster unreachable: Get \"https://127.0.0.1:1/version\": dial tcp 127.0.0.1:1: connect: connection refused' >&2; exit 1",
    );
    let err = fake
        .builder()
        .build()
        .status("shop1", "store-shop1")
        .await
        .expect_err("unreachable");
    assert_eq!(err.kind(), HelmErrorKind::Unavailable);
    assert!(err.is_retryable());
    assert_eq!(err.operation(), "status");
}

#[tokio::test]
async fn a_missing_release_has_no_status_no_history_and_uninstalls_fine() {
    let fake = FakeHelm::new(
        "case \"$1\" in\n\
         uninstall) echo 'Error: uninstall: Release not loaded: shop1: release: not found' >&2; exit 1 ;;\n\
         *) echo 'Error: release: not found' >&2; exit 1 ;;\n\
         esac",
    );
    let helm = fake.builder().build();
    assert_eq!(helm.status("shop1", "ns").await, Ok(None));
    assert_eq!(helm.history("shop1", "ns").await, Ok(vec![]));
    assert_eq!(helm.uninstall("shop1", "ns").await, Ok(()));
    let err = helm
        .rollback("shop1", "ns", 1)
        .await
        .expect_err("nothing to roll back");
    assert_eq!(err.kind(), HelmErrorKind::NotFound);
    let calls = fake.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("uninstall shop1 --ignore-not-found")),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("history shop1 --output json --max 1")),
        "{calls:?}"
    );
}

#[tokio::test]
async fn status_is_that_of_the_latest_revision() {
    let fake = FakeHelm::new(&format!(
        "echo '{}'",
        history_json(&["superseded", "failed"])
    ));
    assert_eq!(
        fake.builder().build().status("shop1", "ns").await,
        Ok(Some(ReleaseStatus::Failed))
    );
}

#[tokio::test]
async fn a_pending_upgrade_is_rolled_back_to_the_last_deployed_revision_first() {
    let fake = FakeHelm::new(&format!(
        "case \"$1\" in\n\
         history) echo '{}' ;;\n\
         upgrade) echo '{RELEASE_JSON}' ;;\n\
         esac",
        history_json(&["superseded", "deployed", "pending-upgrade"])
    ));
    fake.builder()
        .build()
        .upgrade_install(
            "shop1",
            "store-shop1",
            fake.path(),
            json!({}),
            &UpgradeOptions::new(),
        )
        .await
        .expect("repaired and upgraded");
    let verbs: Vec<String> = fake
        .calls()
        .iter()
        .map(|c| c.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        verbs,
        vec![
            "history shop1 --output",
            "rollback shop1 2",
            "upgrade --install shop1"
        ]
    );
}

#[tokio::test]
async fn a_pending_install_is_uninstalled_first() {
    let fake = FakeHelm::new(&format!(
        "case \"$1\" in\n\
         history) echo '{}' ;;\n\
         upgrade) echo '{RELEASE_JSON}' ;;\n\
         esac",
        history_json(&["pending-install"])
    ));
    fake.builder()
        .build()
        .upgrade_install(
            "shop1",
            "store-shop1",
            fake.path(),
            json!({}),
            &UpgradeOptions::new(),
        )
        .await
        .expect("repaired and installed");
    let verbs: Vec<String> = fake
        .calls()
        .iter()
        .map(|c| c.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        verbs,
        vec!["history shop1", "uninstall shop1", "upgrade --install"]
    );
}

#[tokio::test]
async fn a_failed_repair_stops_before_upgrading() {
    let fake = FakeHelm::new(&format!(
        "case \"$1\" in\n\
         history) echo '{}' ;;\n\
         rollback) echo 'Error: another operation (install/upgrade/rollback) is in progress' >&2; exit 1 ;;\n\
         upgrade) echo '{RELEASE_JSON}' ;;\n\
         esac",
        history_json(&["deployed", "pending-rollback"])
    ));
    let err = fake
        .builder()
        .build()
        .upgrade_install(
            "shop1",
            "store-shop1",
            fake.path(),
            json!({}),
            &UpgradeOptions::new(),
        )
        .await
        .expect_err("repair failed");
    assert_eq!(err.kind(), HelmErrorKind::InProgress);
    assert_eq!(err.operation(), "rollback");
    assert!(!fake.calls().iter().any(|c| c.starts_with("upgrade")));
}

#[tokio::test]
async fn no_more_than_max_concurrent_helm_processes_run_at_once() {
    let fake = FakeHelm::new(
        "mkdir -p \"$D/running\"; touch \"$D/running/$$\"\n\
         ls \"$D/running\" | wc -l >> \"$D/counts\"\n\
         sleep 0.3; rm \"$D/running/$$\"; echo '[]'",
    );
    let helm = Arc::new(fake.builder().max_concurrent(2).build());
    let calls = (0..6).map(|i| {
        let helm = Arc::clone(&helm);
        async move { helm.history(&format!("shop{i}"), "ns").await }
    });
    for result in futures::future::join_all(calls).await {
        assert_eq!(result, Ok(vec![]));
    }
    let counts: Vec<usize> = fake
        .read("counts")
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(counts.len(), 6);
    assert!(
        counts.iter().all(|&n| n <= 2),
        "concurrent helm processes: {counts:?}"
    );
}

#[tokio::test]
async fn a_missing_binary_is_a_configuration_error() {
    let helm = HelmCli::builder().binary("/nonexistent/helm").build();
    let err = helm.status("shop1", "ns").await.expect_err("no helm");
    assert_eq!(err.kind(), HelmErrorKind::Binary);
    assert!(err.message().contains("/nonexistent/helm"), "{err}");
    assert_eq!(
        crate::Error::from(err).kind(),
        crate::error::ErrorKind::InvalidConfig
    );
}

#[tokio::test]
async fn bad_values_or_a_missing_chart_are_rejected_before_helm_runs() {
    let fake = fake_with_upgrade(&format!("echo '{RELEASE_JSON}'"));
    let helm = fake.builder().build();
    let err = helm
        .upgrade_install(
            "shop1",
            "ns",
            fake.path(),
            json!(["not", "a", "map"]),
            &UpgradeOptions::new(),
        )
        .await
        .expect_err("values must be an object");
    assert_eq!(err.kind(), HelmErrorKind::Rejected);
    let err = helm
        .upgrade_install(
            "shop1",
            "ns",
            Path::new("/nonexistent/chart.tgz"),
            json!({}),
            &UpgradeOptions::new(),
        )
        .await
        .expect_err("no chart");
    assert_eq!(err.kind(), HelmErrorKind::Rejected);
    assert!(err.message().contains("/nonexistent/chart.tgz"), "{err}");
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

#[tokio::test]
async fn unreadable_output_is_an_error_that_does_not_echo_it() {
    let fake = fake_with_upgrade("echo '{\"config\": {\"password\": \"hunter2-long\"'");
    let err = fake
        .builder()
        .build()
        .upgrade_install(
            "shop1",
            "ns",
            fake.path(),
            json!({}),
            &UpgradeOptions::new(),
        )
        .await
        .expect_err("garbled output");
    assert_eq!(err.kind(), HelmErrorKind::Output);
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn helm_gets_a_shorter_timeout_than_the_deadline() {
    let helm = HelmCli::builder().timeout(Duration::from_secs(100)).build();
    assert_eq!(helm.helm_timeout_arg(), "90000ms");
    let helm = HelmCli::builder()
        .timeout(Duration::from_secs(100))
        .helm_timeout(Duration::from_secs(600))
        .build();
    assert_eq!(helm.helm_timeout_arg(), "600000ms");
    assert_eq!(
        HelmCli::builder()
            .max_concurrent(0)
            .build()
            .max_concurrent(),
        1
    );
}
