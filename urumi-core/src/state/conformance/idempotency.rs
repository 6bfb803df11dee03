//! Idempotency keys: replay, mismatch, in-progress, atomic completion with an insert.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use super::{kind_of, mk_store};
use crate::error::ErrorKind;
use crate::limits::Limits;
use crate::state::{
    IDEMPOTENCY_TTL, IdempotencyKey, IdempotentInsert, InsertOptions, ListQuery, StateStore,
    StoredResponse,
};

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey {
        scope: "tenant:acme".into(),
        key: k.into(),
    }
}

fn response(body: &str) -> StoredResponse {
    StoredResponse {
        status: 202,
        body: body.into(),
    }
}

pub async fn case_idempotency_replays_and_refuses_mismatch(store: Arc<dyn StateStore>) {
    let k = key("k1");
    let first = store.idempotency_begin(&k, "hash-a", IDEMPOTENCY_TTL).await;
    assert_eq!(
        first.expect("fresh key"),
        None,
        "a fresh key is owned by its first request"
    );
    let dup = store.idempotency_begin(&k, "hash-a", IDEMPOTENCY_TTL).await;
    assert_eq!(
        kind_of(dup),
        ErrorKind::IdempotencyInProgress,
        "duplicate while in progress"
    );
    let other = store.idempotency_begin(&k, "hash-b", IDEMPOTENCY_TTL).await;
    assert_eq!(
        kind_of(other),
        ErrorKind::IdempotencyMismatch,
        "same key, other body"
    );
    store
        .idempotency_complete(&k, &response("{\"name\":\"shop1\"}"))
        .await
        .expect("complete");
    let replay = store.idempotency_begin(&k, "hash-a", IDEMPOTENCY_TTL).await;
    assert_eq!(
        replay.expect("replay"),
        Some(response("{\"name\":\"shop1\"}")),
        "a completed key replays the first response exactly"
    );
    let other = store.idempotency_begin(&k, "hash-b", IDEMPOTENCY_TTL).await;
    assert_eq!(kind_of(other), ErrorKind::IdempotencyMismatch);
    let scoped = IdempotencyKey {
        scope: "tenant:beta".into(),
        key: "k1".into(),
    };
    let fresh = store
        .idempotency_begin(&scoped, "hash-b", IDEMPOTENCY_TTL)
        .await;
    assert_eq!(
        fresh.expect("another scope"),
        None,
        "keys are scoped to their caller"
    );
    let never = store
        .idempotency_complete(&key("never-begun"), &response("{}"))
        .await;
    assert_eq!(kind_of(never), ErrorKind::NotFound);
}

pub async fn case_idempotency_concurrent_begin_has_one_owner(store: Arc<dyn StateStore>) {
    super::warm_up(&store).await;
    let tasks = (0..20).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .idempotency_begin(&key("race"), "h", IDEMPOTENCY_TTL)
                .await
        })
    });
    let results: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let owners = results.iter().filter(|r| matches!(r, Ok(None))).count();
    assert_eq!(owners, 1, "exactly one concurrent request owns a key");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| e.kind() == ErrorKind::IdempotencyInProgress),
        "the others are told it is in progress"
    );
}

pub async fn case_idempotent_insert_never_makes_two_stores(store: Arc<dyn StateStore>) {
    let k = key("create-1");
    assert_eq!(
        store
            .idempotency_begin(&k, "h1", IDEMPOTENCY_TTL)
            .await
            .expect("begin"),
        None
    );
    let opts = InsertOptions {
        limits: Limits::default(),
        idempotency: Some(IdempotentInsert {
            key: k.clone(),
            request_hash: "h1".into(),
            response: response("{\"name\":\"shop1\"}"),
        }),
        audit: None,
    };
    store
        .insert(&mk_store("shop1", "acme"), &opts)
        .await
        .expect("insert with key");
    let replay = store
        .idempotency_begin(&k, "h1", IDEMPOTENCY_TTL)
        .await
        .expect("replay");
    assert_eq!(
        replay,
        Some(response("{\"name\":\"shop1\"}")),
        "insert completed the key"
    );
    let second = store.insert(&mk_store("shop2", "acme"), &opts).await;
    assert_eq!(
        kind_of(second),
        ErrorKind::Conflict,
        "a completed key cannot insert again"
    );
    let mut mismatched = opts.clone();
    if let Some(i) = mismatched.idempotency.as_mut() {
        i.request_hash = "h2".into();
    }
    let third = store.insert(&mk_store("shop3", "acme"), &mismatched).await;
    assert_eq!(kind_of(third), ErrorKind::IdempotencyMismatch);
    // A failed insert (name taken) leaves its key in progress, untouched.
    let k2 = key("create-2");
    store
        .idempotency_begin(&k2, "h", IDEMPOTENCY_TTL)
        .await
        .expect("begin k2");
    let mut opts2 = opts.clone();
    opts2.idempotency = Some(IdempotentInsert {
        key: k2.clone(),
        request_hash: "h".into(),
        response: response("{}"),
    });
    let taken = store.insert(&mk_store("shop1", "acme"), &opts2).await;
    assert_eq!(kind_of(taken), ErrorKind::StoreExists);
    let still = store.idempotency_begin(&k2, "h", IDEMPOTENCY_TTL).await;
    assert_eq!(
        kind_of(still),
        ErrorKind::IdempotencyInProgress,
        "rolled back with the insert"
    );
    let all = store.list(&ListQuery::default()).await.expect("list");
    assert_eq!(all.items.len(), 1, "one key made one store");
}

pub async fn case_idempotency_release_and_expiry(store: Arc<dyn StateStore>) {
    let k = key("k-release");
    store
        .idempotency_begin(&k, "h", IDEMPOTENCY_TTL)
        .await
        .expect("begin");
    store.idempotency_release(&k).await.expect("release");
    let retry = store.idempotency_begin(&k, "other", IDEMPOTENCY_TTL).await;
    assert_eq!(
        retry.expect("after release"),
        None,
        "a released key starts afresh"
    );
    store
        .idempotency_complete(&k, &response("done"))
        .await
        .expect("complete");
    store
        .idempotency_release(&k)
        .await
        .expect("release of a completed key is a no-op");
    let replay = store
        .idempotency_begin(&k, "other", IDEMPOTENCY_TTL)
        .await
        .expect("replay");
    assert_eq!(
        replay,
        Some(response("done")),
        "release keeps completed keys"
    );

    let short = key("k-short");
    store
        .idempotency_begin(&short, "h", Duration::from_millis(500))
        .await
        .expect("begin");
    store
        .idempotency_complete(&short, &response("old"))
        .await
        .expect("complete");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = store
        .idempotency_begin(&short, "new-hash", IDEMPOTENCY_TTL)
        .await;
    assert_eq!(
        after.expect("expired key"),
        None,
        "an expired key is forgotten"
    );
    let purged = store.idempotency_purge().await.expect("purge");
    assert_eq!(purged, 0, "live keys are not purged");
    store
        .idempotency_begin(&key("k-gone"), "h", Duration::from_millis(10))
        .await
        .expect("b");
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(
        store.idempotency_purge().await.expect("purge"),
        1,
        "expired keys are purged"
    );
}
