//! Work leases: exclusive, expiring, and handed out disjointly by `claim_next`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use super::{insert_ok, kind_of, mk_store, name, set_status};
use crate::error::ErrorKind;
use crate::state::StateStore;
use crate::store::Status;

const LONG: Duration = Duration::from_secs(60);

pub async fn case_lease_is_exclusive_until_released(store: Arc<dyn StateStore>) {
    insert_ok(&store, &mk_store("shop1", "acme")).await;
    let n = name("shop1");
    let lease = store
        .claim_lease(&n, "worker-a", LONG)
        .await
        .expect("claim a free lease");
    assert_eq!(lease.owner, "worker-a");
    assert!(lease.expires_at > crate::store::now());
    assert_eq!(
        kind_of(store.claim_lease(&n, "worker-b", LONG).await),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind_of(store.renew_lease(&n, "worker-b", LONG).await),
        ErrorKind::Conflict
    );
    store
        .claim_lease(&n, "worker-a", LONG)
        .await
        .expect("re-claim by the holder");
    store
        .renew_lease(&n, "worker-a", LONG)
        .await
        .expect("renew by the holder");
    store
        .release_lease(&n, "worker-b")
        .await
        .expect("release by a non-holder is a no-op");
    assert_eq!(
        kind_of(store.claim_lease(&n, "worker-b", LONG).await),
        ErrorKind::Conflict,
        "a non-holder's release does not free the lease"
    );
    store.release_lease(&n, "worker-a").await.expect("release");
    store
        .claim_lease(&n, "worker-b", LONG)
        .await
        .expect("claim after release");
    assert_eq!(
        kind_of(store.claim_lease(&name("nope"), "w", LONG).await),
        ErrorKind::NotFound
    );
    store
        .release_lease(&name("nope"), "w")
        .await
        .expect("release of a missing store is a no-op");
}

pub async fn case_lease_expires_and_can_be_taken_over(store: Arc<dyn StateStore>) {
    insert_ok(&store, &mk_store("shop1", "acme")).await;
    let n = name("shop1");
    store
        .claim_lease(&n, "worker-a", Duration::from_millis(50))
        .await
        .expect("claim");
    tokio::time::sleep(Duration::from_millis(120)).await;
    store
        .claim_lease(&n, "worker-b", LONG)
        .await
        .expect("an expired lease can be taken");
    assert_eq!(
        kind_of(store.renew_lease(&n, "worker-a", LONG).await),
        ErrorKind::Conflict,
        "the old holder learns it lost the lease"
    );
}

pub async fn case_claim_next_takes_only_unleased_work(store: Arc<dyn StateStore>) {
    for (n, status) in [
        ("w-pending", Status::Pending),
        ("w-prov", Status::Provisioning),
        ("w-deleting", Status::Deleting),
        ("w-updating", Status::Updating),
        ("w-ready", Status::Ready),
        ("w-failed", Status::Failed),
        ("w-held", Status::Pending),
    ] {
        insert_ok(&store, &mk_store(n, "acme")).await;
        if status != Status::Pending {
            set_status(&store, n, status).await;
        }
    }
    store
        .claim_lease(&name("w-held"), "other", LONG)
        .await
        .expect("hold one");
    // A long TTL: nothing below may depend on how fast this machine is.
    let claimed = store.claim_next("worker-a", LONG, 10).await.expect("claim");
    let mut got: Vec<String> = claimed.iter().map(|s| s.name.to_string()).collect();
    got.sort();
    assert_eq!(
        got,
        ["w-deleting", "w-pending", "w-prov", "w-updating"],
        "only stores not at rest and not leased by someone else"
    );
    let again = store
        .claim_next("worker-b", LONG, 10)
        .await
        .expect("claim again");
    assert!(
        again.is_empty(),
        "claimed work is not handed out twice: {again:?}"
    );
    assert_eq!(
        kind_of(
            store
                .claim_lease(&name("w-pending"), "worker-b", LONG)
                .await
        ),
        ErrorKind::Conflict,
        "claim_next really took the lease"
    );
    // Expiry: three more stores leased for 50 ms become claimable again, up to the
    // limit, while the long leases above stay held. Waits on the condition (bounded),
    // not on a fixed sleep.
    for n in ["x-1", "x-2", "x-3"] {
        insert_ok(&store, &mk_store(n, "acme")).await;
    }
    let short = store
        .claim_next("worker-c", Duration::from_millis(50), 10)
        .await
        .expect("claim the new ones");
    assert_eq!(short.len(), 3, "only the three unleased stores: {short:?}");
    let started = std::time::Instant::now();
    let after = loop {
        let got = store
            .claim_next("worker-b", LONG, 2)
            .await
            .expect("claim after expiry");
        if !got.is_empty() || started.elapsed() > Duration::from_secs(10) {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        after.len(),
        2,
        "expired leases are claimable again, up to the limit"
    );
    assert!(
        after.iter().all(|s| s.name.as_str().starts_with("x-")),
        "only the expired ones: {after:?}"
    );
}

pub async fn case_claim_next_concurrent_workers_are_disjoint(store: Arc<dyn StateStore>) {
    for i in 0..30 {
        insert_ok(&store, &mk_store(&format!("job-{i}"), "acme")).await;
    }
    super::warm_up(&store).await;
    let tasks = (0..6).map(|w| {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.claim_next(&format!("worker-{w}"), LONG, 8).await })
    });
    let mut seen = HashSet::new();
    let mut total = 0;
    for r in join_all(tasks).await {
        let batch = r.expect("task").expect("claim_next");
        assert!(batch.len() <= 8, "a worker never gets more than its limit");
        total += batch.len();
        seen.extend(batch.into_iter().map(|s| s.name.to_string()));
    }
    assert_eq!(seen.len(), total, "no store was handed to two workers");
    assert_eq!(total, 30, "all 30 stores were claimed by 6 workers of 8");
}
