//! Unit tests of the resident mode against a fake `urumi-helm-resident`: a Python script
//! that speaks the protocol and answers like helm, told how to misbehave by files in its
//! directory. The real one runs in `tests/helm_cluster.rs` (every conformance case).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use super::super::{
    HelmCli, HelmDriver, HelmError, HelmErrorKind, Release, ReleaseStatus, UpgradeOptions,
};

const FAKE: &str = r#"#!/usr/bin/env python3
import json, os, sys, threading
D = os.path.dirname(os.path.abspath(__file__))
RELEASE = {"name": "shop1", "namespace": "store-shop1", "version": 1,
           "info": {"status": "deployed", "description": "Install complete"},
           "chart": {"metadata": {"name": "probe", "version": "0.1.0"}}}
lock = threading.Lock()
def answer(i, code, out="", err=""):
    with lock:
        sys.stdout.write(json.dumps({"id": i, "code": code, "stdout": out, "stderr": err}) + "\n")
        sys.stdout.flush()
def flag(name):
    return os.path.exists(os.path.join(D, name))
with open(os.path.join(D, "pids.log"), "a") as f:
    f.write(f"{os.getpid()}\n")
hanging = {}
for line in sys.stdin:
    req = json.loads(line)
    i = req["id"]
    if req.get("cancel"):
        with open(os.path.join(D, "cancels.log"), "a") as f:
            f.write(f"{i}\n")
        if i in hanging and not flag("deaf"):
            answer(i, 1, err='Error: UPGRADE FAILED: context canceled\n')
        continue
    args = req["args"]
    with open(os.path.join(D, "calls.log"), "a") as f:
        f.write(" ".join(args) + "\n")
    if args[0] == "history":
        answer(i, 1, err="Error: release: not found\n")
    elif args[0] == "upgrade":
        if flag("crash-once"):
            os.remove(os.path.join(D, "crash-once"))
            os._exit(3)
        if flag("hang"):
            hanging[i] = True
            continue
        values = json.load(open(args[args.index("--values") + 1]))
        if flag("reject"):
            answer(i, 1, err="Error: INSTALLATION FAILED: execution error at (probe/templates/x.yaml:1:1): secret %s refused\n" % values["db"]["password"])
        else:
            answer(i, 0, out=json.dumps(RELEASE) + "\n")
    else:
        answer(i, 0, out="release \"shop1\" uninstalled\n")
"#;

struct FakeResident {
    dir: tempfile::TempDir,
    bin: PathBuf,
    chart: PathBuf,
}

impl FakeResident {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("urumi-helm-resident");
        std::fs::write(&bin, FAKE).expect("write the fake");
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))
                .expect("chmod the fake");
        }
        let chart = dir.path().join("chart");
        std::fs::create_dir(&chart).expect("chart dir");
        Self { dir, bin, chart }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn set(&self, flag: &str) {
        std::fs::write(self.path().join(flag), "").expect("set a flag");
    }

    fn lines(&self, file: &str) -> Vec<String> {
        std::fs::read_to_string(self.path().join(file))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn driver(&self, timeout: Duration) -> HelmCli {
        HelmCli::builder()
            .resident(&self.bin)
            .binary("/nonexistent/helm")
            .timeout(timeout)
            .kill_grace(Duration::from_secs(1))
            .build()
    }

    async fn upgrade(&self, helm: &HelmCli) -> Result<Release, HelmError> {
        helm.upgrade_install(
            "shop1",
            "store-shop1",
            &self.chart,
            json!({"db": {"password": "hunter2-long"}}),
            &UpgradeOptions::new(),
        )
        .await
    }
}

#[tokio::test]
async fn one_process_answers_every_call_with_helms_arguments() {
    let fake = FakeResident::new();
    let helm = fake.driver(Duration::from_secs(20));
    for _ in 0..3 {
        let release = fake.upgrade(&helm).await.expect("upgrade");
        assert_eq!(release.status, ReleaseStatus::Deployed);
    }
    helm.uninstall("shop1", "store-shop1")
        .await
        .expect("uninstall");
    assert_eq!(
        fake.lines("pids.log").len(),
        1,
        "one process for every call"
    );
    let calls = fake.lines("calls.log");
    assert_eq!(
        calls.len(),
        7,
        "3 × (history, upgrade) + uninstall: {calls:?}"
    );
    assert!(
        calls[1].starts_with("upgrade --install shop1 ")
            && calls[1].contains("--reset-values")
            && calls[1].ends_with("--namespace store-shop1"),
        "{}",
        calls[1]
    );
    assert!(
        calls.iter().all(|c| !c.contains("hunter2")),
        "no value on the command line"
    );
    assert!(helm.resident_pid().is_some());
}

#[tokio::test]
async fn a_refusal_is_classified_and_scrubbed_like_helms() {
    let fake = FakeResident::new();
    fake.set("reject");
    let helm = fake.driver(Duration::from_secs(20));
    let err = fake.upgrade(&helm).await.expect_err("refused");
    assert_eq!(err.kind(), HelmErrorKind::Rejected, "{err}");
    assert!(!err.to_string().contains("hunter2-long"), "{err}");
    assert!(err.to_string().contains("INSTALLATION FAILED"), "{err}");
}

#[tokio::test]
async fn a_crash_fails_the_call_retryably_and_the_next_call_starts_a_new_process() {
    let fake = FakeResident::new();
    fake.set("crash-once");
    let helm = fake.driver(Duration::from_secs(20));
    let err = fake.upgrade(&helm).await.expect_err("the process died");
    assert_eq!(err.kind(), HelmErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    let release = fake.upgrade(&helm).await.expect("a new process answers");
    assert_eq!(release.status, ReleaseStatus::Deployed);
    assert_eq!(fake.lines("pids.log").len(), 2, "started again");
}

#[tokio::test]
async fn past_the_deadline_the_call_is_cancelled_and_times_out() {
    let fake = FakeResident::new();
    fake.set("hang");
    let helm = fake.driver(Duration::from_secs(2));
    let started = Instant::now();
    let err = fake.upgrade(&helm).await.expect_err("hangs");
    assert_eq!(err.kind(), HelmErrorKind::Timeout, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.lines("cancels.log").len(), 1, "one cancellation sent");
    assert_eq!(
        helm.resident_pid(),
        None,
        "a process that cancelled a call is ended, as helm exits on SIGTERM"
    );
    std::fs::remove_file(fake.path().join("hang")).expect("unhang");
    fake.upgrade(&helm).await.expect("a new process answers");
    assert_eq!(fake.lines("pids.log").len(), 2, "started again");
}

#[tokio::test]
async fn a_process_deaf_to_cancellation_is_killed_after_the_grace() {
    let fake = FakeResident::new();
    fake.set("hang");
    fake.set("deaf");
    let helm = fake.driver(Duration::from_secs(2));
    let first = helm.resident_pid();
    assert_eq!(first, None, "not started before the first call");
    let err = fake.upgrade(&helm).await.expect_err("hangs");
    assert_eq!(err.kind(), HelmErrorKind::Timeout, "{err}");
    assert_eq!(helm.resident_pid(), None, "killed");
    std::fs::remove_file(fake.path().join("hang")).expect("unhang");
    fake.upgrade(&helm).await.expect("a new process answers");
    assert_eq!(fake.lines("pids.log").len(), 2, "started again");
}

#[tokio::test]
async fn a_dropped_call_is_cancelled_and_the_next_call_waits_for_it() {
    let fake = FakeResident::new();
    fake.set("hang");
    let helm = fake.driver(Duration::from_secs(30));
    let dropped = tokio::time::timeout(Duration::from_millis(500), fake.upgrade(&helm)).await;
    assert!(dropped.is_err(), "still hanging when dropped");
    // The next call on the namespace goes once the cancelled one answered.
    std::fs::remove_file(fake.path().join("hang")).expect("unhang");
    let release = fake
        .upgrade(&helm)
        .await
        .expect("upgrade after a dropped one");
    assert_eq!(release.status, ReleaseStatus::Deployed);
    assert_eq!(
        fake.lines("cancels.log").len(),
        1,
        "the dropped call was cancelled"
    );
    assert_eq!(
        fake.lines("pids.log").len(),
        2,
        "its process ended, a new one answered"
    );
}

#[tokio::test]
async fn a_missing_binary_is_a_binary_error() {
    let helm = HelmCli::builder()
        .resident("/nonexistent/urumi-helm-resident")
        .build();
    let err = helm
        .status("shop1", "store-shop1")
        .await
        .expect_err("no such binary");
    assert_eq!(err.kind(), HelmErrorKind::Binary, "{err}");
    assert!(err.to_string().contains("resident"), "{err}");
}
