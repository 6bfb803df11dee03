//! The conformance suite every [`StateStore`] runs (the object_store pattern).
//!
//! ```text
//!  tests/state/conformance.rs: memory ─┐
//!                              sqlite ─┼─ state_cases!(factory) (tests/state/main.rs) ──▶ one
//!                            postgres ─┘   #[tokio::test] per `case_*` below, each on a fresh store
//! ```
//!
//! Each `case_*` panics with a message naming the broken behaviour. Not part of the
//! stable API (hidden from docs); public so that out-of-tree backends can run it too.
#![allow(missing_docs, clippy::unwrap_used)]

mod basics;
mod concurrency;
mod feed;
mod idempotency;
mod leases;

pub use basics::*;
pub use concurrency::*;
pub use feed::*;
pub use idempotency::*;
pub use leases::*;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{InsertOptions, StateStore};
use crate::error::ErrorKind;
use crate::limits::Limits;
use crate::store::{Status, Store, StoreName, StoreSpec, TenantId};

pub(crate) fn name(s: &str) -> StoreName {
    StoreName::new(s).expect("test store name is valid")
}

pub(crate) fn tenant(s: &str) -> TenantId {
    TenantId::new(s).expect("test tenant id is valid")
}

/// A new Pending store `name` of `tenant`.
pub fn mk_store(n: &str, t: &str) -> Store {
    Store::new(StoreSpec::new(name(n), tenant(t)), format!("store-{n}"))
}

/// A store created at `at` (for ordering and rate-window tests).
pub(crate) fn mk_store_at(n: &str, t: &str, at: DateTime<Utc>) -> Store {
    let mut s = mk_store(n, t);
    s.created_at = crate::store::truncate_micros(at);
    s.updated_at = s.created_at;
    s
}

/// Insert options with no limits.
pub fn unlimited() -> InsertOptions {
    InsertOptions {
        limits: Limits::unlimited(),
        idempotency: None,
        audit: None,
    }
}

pub(crate) async fn insert_ok(store: &Arc<dyn StateStore>, s: &Store) -> Store {
    match store.insert(s, &unlimited()).await {
        Ok(stored) => stored,
        Err(e) => panic!("inserting {:?} failed: {e}", s.name.as_str()),
    }
}

pub(crate) fn kind_of<T: std::fmt::Debug>(r: crate::error::Result<T>) -> ErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.kind(),
    }
}

pub(crate) async fn set_status(store: &Arc<dyn StateStore>, n: &str, status: Status) -> Store {
    let mut s = store.get(&name(n)).await.expect("store exists");
    s.status = status;
    store.update(&s).await.expect("status update")
}

/// Opens as many pooled connections as the backend allows, so that the concurrent
/// operations that follow really overlap instead of queueing behind one connection
/// being set up (without this, a missing lock can go unnoticed).
pub(crate) async fn warm_up(store: &Arc<dyn StateStore>) {
    let pings = (0..50).map(|_| {
        let store = Arc::clone(store);
        tokio::spawn(async move {
            store.ping().await.expect("ping");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        })
    });
    for p in futures::future::join_all(pings).await {
        p.expect("ping task");
    }
}
