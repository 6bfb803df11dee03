//! Two provisioners (two replicas of a server) sharing one PostgreSQL database, on the
//! local cluster: every store is provisioned exactly once, whichever replica took it.
//!
//! ```text
//!  eval "$(tests/cluster/up)"; eval "$(tests/postgres/up)"
//!  cargo test -p urumi-core --test lifecycle_postgres -- --nocapture
//!
//!  replica A ─┐                       ┌─ claim_next (FOR UPDATE SKIP LOCKED) ─▶ steps
//!             ├─ PostgreSQL (schema) ─┤
//!  replica B ─┘                       └─ claim_next ─▶ steps
//!  20 creates, alternately through A and B ─▶ 20 Ready ─▶ per store: one provision.<step>
//!  success each, helm revision 1, one namespace ─▶ delete all ─▶ nothing remains
//! ```
//!
//! Without KUBECONFIG or URUMI_TEST_POSTGRES_URL the test fails (never skips).

mod lifecycle_support;

use std::time::Instant;

use futures::future::join_all;
use lifecycle_support::*;
use urumi_core::audit::Outcome;
use urumi_core::provisioner::CreateOptions;
use urumi_core::{CreateStore, KubeProvisioner, Provisioner, RequestOptions};

const STORES: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_database_provision_each_store_exactly_once() {
    let client = kube_client().await;
    let url = postgres_schema_url().await;
    let replica = |url: String| async move {
        let state = urumi_core::state::open(&url)
            .await
            .expect("open PostgreSQL");
        provisioner(state, fast_settings()).await
    };
    let a: KubeProvisioner = replica(url.clone()).await;
    let b: KubeProvisioner = replica(url.clone()).await;
    let replicas: [&dyn Provisioner; 2] = [&a, &b];
    let prefix = unique("lc-pg");
    let names: Vec<String> = (0..STORES).map(|i| format!("{prefix}-{i:02}")).collect();
    let mut cleanup = Cleanup::default();
    for n in &names {
        cleanup.add(n);
    }

    let started = Instant::now();
    for (i, name) in names.iter().enumerate() {
        replicas[i % 2]
            .create(&admin(), CreateStore::named(name), CreateOptions::default())
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
    }
    // Each waits through the other replica than the one that created it.
    let ready = join_all(
        names
            .iter()
            .enumerate()
            .map(|(i, name)| wait_ready(replicas[(i + 1) % 2], name)),
    )
    .await;
    eprintln!(
        "{STORES} stores Ready through two replicas in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    for (store, name) in ready.iter().zip(&names) {
        assert_eq!(store.attempts, 1, "{store:?}");
        let events = trail(&a, name).await;
        for step in [
            "namespace",
            "guardrails",
            "credentials",
            "release",
            "readiness",
        ] {
            let action = format!("provision.{step}");
            let done = events
                .iter()
                .filter(|e| e.action == action && e.outcome == Outcome::Success)
                .count();
            assert_eq!(
                done,
                1,
                "{name}: {action} succeeded {done} times:\n{}",
                describe_trail(&events)
            );
        }
        assert_eq!(
            events.iter().filter(|e| e.action == "store.ready").count(),
            1,
            "{name}:\n{}",
            describe_trail(&events)
        );
        let ns = namespace_of(name);
        assert_eq!(namespaces_labelled(&client, name).await, vec![ns.clone()]);
        let releases = helm_list(&ns).await;
        assert_eq!(releases.len(), 1, "{name}: {releases:?}");
        assert_eq!(releases[0].revision, "1", "{name}: {releases:?}");
        assert_eq!(releases[0].status, "deployed", "{name}: {releases:?}");
    }
    // Both replicas see the same 20 stores.
    for p in replicas {
        let listed = p
            .list(&admin(), Default::default())
            .await
            .expect("list")
            .items;
        assert_eq!(listed.len(), STORES);
    }

    let started = Instant::now();
    for (i, name) in names.iter().enumerate() {
        replicas[i % 2]
            .delete(&admin(), name, RequestOptions::default())
            .await
            .unwrap_or_else(|e| panic!("delete {name}: {e}"));
    }
    join_all(
        names
            .iter()
            .enumerate()
            .map(|(i, name)| delete_and_wait(replicas[(i + 1) % 2], name)),
    )
    .await;
    eprintln!(
        "{STORES} stores deleted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for name in &names {
        let left = leftovers_after_grace(&client, name).await;
        assert!(left.is_empty(), "{name} left behind: {left:?}");
        for p in replicas {
            assert_eq!(
                p.get(&admin(), name).await.expect_err("gone").kind(),
                urumi_core::ErrorKind::NotFound
            );
        }
    }
    a.shutdown().await;
    b.shutdown().await;
}
