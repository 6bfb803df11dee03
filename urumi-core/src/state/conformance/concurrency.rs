//! Concurrent creates: uniqueness and limits hold under 50 simultaneous inserts.

use std::sync::Arc;

use chrono::Duration as Span;
use futures::future::join_all;

use super::{insert_ok, kind_of, mk_store, mk_store_at, name};
use crate::error::{ErrorKind, Result};
use crate::limits::Limits;
use crate::state::{InsertOptions, ListQuery, StateStore};
use crate::store::{self, Store};

const N: usize = 50;

fn with_limits(limits: Limits) -> InsertOptions {
    InsertOptions {
        limits,
        idempotency: None,
        audit: None,
    }
}

/// Inserts every store at once (each on its own task) and returns the results.
async fn race(
    store: &Arc<dyn StateStore>,
    stores: Vec<Store>,
    opts: InsertOptions,
) -> Vec<Result<Store>> {
    super::warm_up(store).await;
    let tasks = stores.into_iter().map(|s| {
        let store = Arc::clone(store);
        let opts = opts.clone();
        tokio::spawn(async move { store.insert(&s, &opts).await })
    });
    join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("insert task panicked"))
        .collect()
}

fn tally(results: &[Result<Store>]) -> (usize, Vec<ErrorKind>) {
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let errs = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.kind()))
        .collect();
    (ok, errs)
}

async fn count_all(store: &Arc<dyn StateStore>) -> usize {
    store
        .list(&ListQuery {
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .expect("list")
        .items
        .len()
}

pub async fn case_concurrent_same_name_exactly_one_wins(store: Arc<dyn StateStore>) {
    let stores = (0..N)
        .map(|i| mk_store("contested", &format!("t{i}")))
        .collect();
    let results = race(&store, stores, super::unlimited()).await;
    let (ok, errs) = tally(&results);
    assert_eq!(
        ok, 1,
        "exactly one of {N} concurrent inserts of one name wins"
    );
    assert!(
        errs.iter().all(|k| *k == ErrorKind::StoreExists),
        "the losers get store_exists, got {errs:?}"
    );
    assert_eq!(count_all(&store).await, 1);
}

pub async fn case_concurrent_creates_respect_tenant_cap(store: Arc<dyn StateStore>) {
    let limits = Limits {
        stores_per_tenant: 10,
        ..Limits::unlimited()
    };
    let stores = (0..N)
        .map(|i| mk_store(&format!("cap-{i}"), "acme"))
        .collect();
    let (ok, errs) = tally(&race(&store, stores, with_limits(limits)).await);
    assert_eq!(
        ok, 10,
        "a tenant capped at 10 gets exactly 10 of {N} concurrent creates"
    );
    assert!(
        errs.iter().all(|k| *k == ErrorKind::QuotaExceeded),
        "got {errs:?}"
    );
    // Another tenant is not affected by acme's cap.
    insert_ok(&store, &mk_store("other-1", "beta")).await;
    let r = store
        .insert(&mk_store("cap-x", "acme"), &with_limits(limits))
        .await;
    assert_eq!(kind_of(r), ErrorKind::QuotaExceeded);
}

pub async fn case_concurrent_creates_respect_hourly_rate(store: Arc<dyn StateStore>) {
    let limits = Limits {
        creations_per_hour: 5,
        ..Limits::unlimited()
    };
    let stores = (0..N)
        .map(|i| mk_store(&format!("rate-{i}"), "acme"))
        .collect();
    let results = race(&store, stores, with_limits(limits)).await;
    let (ok, errs) = tally(&results);
    assert_eq!(
        ok, 5,
        "5 creations per hour: exactly 5 of {N} concurrent creates succeed"
    );
    assert!(
        errs.iter().all(|k| *k == ErrorKind::RateLimited),
        "got {errs:?}"
    );
    let retry = results
        .iter()
        .find_map(|r| r.as_ref().err().and_then(|e| e.retry_after()))
        .expect("a rate-limit error says when to retry");
    assert!(
        (3500..=3600).contains(&retry.as_secs()),
        "retry after about an hour, got {retry:?}"
    );
}

pub async fn case_concurrent_creates_respect_global_cap(store: Arc<dyn StateStore>) {
    let limits = Limits {
        stores_total: 10,
        ..Limits::unlimited()
    };
    let stores = (0..N)
        .map(|i| mk_store(&format!("glob-{i}"), &format!("t{i}")))
        .collect();
    let (ok, errs) = tally(&race(&store, stores, with_limits(limits)).await);
    assert_eq!(
        ok, 10,
        "a global cap of 10 admits exactly 10 of {N} concurrent creates"
    );
    assert!(
        errs.iter().all(|k| *k == ErrorKind::QuotaExceeded),
        "got {errs:?}"
    );
    assert_eq!(count_all(&store).await, 10);
}

pub async fn case_rate_window_ignores_old_and_remembers_deleted(store: Arc<dyn StateStore>) {
    let limits = Limits {
        creations_per_hour: 2,
        ..Limits::unlimited()
    };
    let opts = with_limits(limits);
    let old = store::now() - Span::hours(2);
    for i in 0..3 {
        let s = mk_store_at(&format!("old-{i}"), "acme", old);
        store
            .insert(&s, &opts)
            .await
            .expect("old creations are outside the window");
    }
    store
        .insert(&mk_store("new-1", "acme"), &opts)
        .await
        .expect("1st in window");
    store
        .insert(&mk_store("new-2", "acme"), &opts)
        .await
        .expect("2nd in window");
    store.delete(&name("new-2")).await.expect("delete");
    let r = store.insert(&mk_store("new-3", "acme"), &opts).await;
    assert_eq!(
        kind_of(r),
        ErrorKind::RateLimited,
        "deleting a store does not refund the rate"
    );
    store
        .insert(&mk_store("beta-1", "beta"), &opts)
        .await
        .expect("the rate is per tenant");
}
