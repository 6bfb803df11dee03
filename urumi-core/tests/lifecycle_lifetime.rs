//! A provisioner's lifetime on the local cluster: dropping the last handle stops its
//! worker, its watches and its helm processes, and leaves no release `pending-*`;
//! `shutdown` lets a running helm finish; building outside a runtime is an error; with
//! `helmResident`, one resident helm process does a store's helm work and exits with the
//! provisioner.
//!
//! Needs `eval "$(tests/cluster/up)"`.
#![allow(clippy::unwrap_used, missing_docs)]

mod lifecycle_support;

use std::time::{Duration, Instant};

use lifecycle_support::*;
use urumi_core::store::{Status, Step};
use urumi_core::{CreateStore, ErrorKind, KubeProvisioner, Provisioner, RequestOptions};

/// How many helm processes are working in `namespace`.
fn helm_processes_in(namespace: &str) -> usize {
    urumi_core::helm::conformance::helm_pids_in(namespace).len()
}

async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what} after {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_provisioner_leaves_no_task_watch_or_helm_process() {
    let runtime = tokio::runtime::Handle::current();
    let (state, _dir) = sqlite_state().await;
    let baseline = runtime.metrics().num_alive_tasks();
    let p = provisioner(state.clone(), fast_settings()).await;
    let name = unique("lt-drop");
    let namespace = namespace_of(&name);
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    p.create(
        &admin(),
        CreateStore::named(&name),
        RequestOptions::default(),
    )
    .await
    .unwrap();
    // Drop it while helm works on the release (or as close to it as we can see).
    let started = Instant::now();
    while helm_processes_in(&namespace) == 0 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let busy = runtime.metrics().num_alive_tasks();
    assert!(
        busy > baseline,
        "the provisioner runs tasks ({busy} vs {baseline})"
    );
    drop(p);
    eventually(
        "tasks of the dropped provisioner are still alive",
        Duration::from_secs(60),
        || runtime.metrics().num_alive_tasks() <= baseline,
    )
    .await;
    eventually(
        "a helm process outlived the dropped provisioner",
        Duration::from_secs(30),
        || helm_processes_in(&namespace) == 0,
    )
    .await;
    for release in helm_list(&namespace).await {
        assert!(
            !release.status.starts_with("pending"),
            "a release was left {}",
            release.status
        );
    }
    // Nothing was lost: a new provisioner on the same state finishes the store.
    let again = provisioner(state.clone(), fast_settings()).await;
    let ready = wait_ready(&again, &name).await;
    assert_eq!(ready.status, Status::Ready);
    assert_eq!(ready.step, Step::Done);
    delete_and_wait(&again, &name).await;
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_its_tasks_and_stops_the_feed() {
    let (state, _dir) = sqlite_state().await;
    let p = provisioner(state, fast_settings()).await;
    let mut changes = p.changes(&admin(), None);
    p.shutdown().await;
    let end = tokio::time::timeout(
        Duration::from_secs(5),
        futures::StreamExt::next(&mut changes),
    )
    .await
    .expect("the change stream ends with the provisioner");
    assert!(end.is_none(), "{end:?}");
    // Shutdown twice is fine.
    p.shutdown().await;
}

#[test]
fn building_outside_a_runtime_is_an_error_not_a_panic() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (client, state) = rt.block_on(async {
        let (state, dir) = sqlite_state().await;
        std::mem::forget(dir);
        (kube_client().await, state)
    });
    let err = KubeProvisioner::builder(client, state)
        .build()
        .expect_err("no runtime here");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("Tokio runtime"), "{err}");
}

/// This test's own name for the resident helm (a symlink): other tests of this binary may
/// run theirs beside it (`URUMI_HELM_RESIDENT`).
const RESIDENT_ALIAS: &str = "uhr-lifetime";

/// The resident helm processes started through [`RESIDENT_ALIAS`] by this test process.
fn resident_children() -> Vec<i32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (comm, rest) = stat.split_once(") ")?;
            let ppid = rest.split_whitespace().nth(1)?;
            (comm.ends_with(&format!("({RESIDENT_ALIAS}")) && ppid == me && !rest.starts_with('Z'))
                .then_some(pid)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_helm_resident_a_store_is_made_by_one_resident_process_that_ends_with_the_provisioner()
{
    // A resident helm that is not there is a setup error, found when building.
    let (state, _dir) = sqlite_state().await;
    let mut settings = fast_settings();
    settings.helm_resident = Some("/nonexistent/urumi-helm-resident".to_owned());
    let err = KubeProvisioner::builder(kube_client().await, state)
        .settings(settings)
        .build()
        .expect_err("no such resident helm");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("helmResident"), "{err}");

    // The one on PATH (tests/cluster/up puts it there) makes a store and takes it down.
    let binary = urumi_core::helm::find_in_path("urumi-helm-resident")
        .expect("urumi-helm-resident on PATH: eval \"$(tests/cluster/up)\"");
    let alias_dir = tempfile::tempdir().expect("tempdir");
    let alias = alias_dir.path().join(RESIDENT_ALIAS);
    std::os::unix::fs::symlink(&binary, &alias).expect("symlink");
    let (state, _dir) = sqlite_state().await;
    let mut settings = fast_settings();
    settings.helm_resident = Some(alias.display().to_string());
    let p = provisioner(state, settings).await;
    let name = unique("lt-resident");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    p.create(
        &admin(),
        CreateStore::named(&name),
        urumi_core::provisioner::CreateOptions::default(),
    )
    .await
    .expect("create");
    let store = wait_ready(&p, &name).await;
    assert_eq!(store.status, Status::Ready, "{store:?}");
    let residents = resident_children();
    assert_eq!(residents.len(), 1, "one resident helm: {residents:?}");
    assert_eq!(
        helm_processes_in(&namespace_of(&name)),
        0,
        "no helm process of its own"
    );
    let releases = helm_list(&namespace_of(&name)).await;
    assert_eq!(releases.len(), 1, "{releases:?}");
    assert_eq!(
        releases[0].status, "deployed",
        "helm's CLI reads what it made"
    );
    delete_and_wait(&p, &name).await;
    assert_eq!(resident_children(), residents, "the same process all along");

    // Dropped with its provisioner: it sees its input close and exits.
    p.shutdown().await;
    drop(p);
    eventually("the resident helm exited", Duration::from_secs(20), || {
        resident_children().is_empty()
    })
    .await;
}
