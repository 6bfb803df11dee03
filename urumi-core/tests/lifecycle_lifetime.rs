//! A provisioner's lifetime on the local cluster: dropping the last handle stops its
//! worker, its watches and its helm processes, and leaves no release `pending-*`;
//! `shutdown` lets a running helm finish; building outside a runtime is an error.
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
