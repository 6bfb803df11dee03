//! The change feed: every write appends one change in its transaction, in commit order;
//! cursors resume exactly; purged or foreign cursors are `cursor_expired`; an idempotent
//! update completes its key with the write or not at all.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::future::join_all;

use super::{insert_ok, kind_of, mk_store, name, tenant};
use crate::error::ErrorKind;
use crate::state::{
    ChangeKind, ChangeQuery, IDEMPOTENCY_TTL, IdempotencyKey, IdempotentInsert, StateStore,
    StoredResponse,
};
use crate::store::Status;

async fn all_after(store: &Arc<dyn StateStore>, after: Option<u64>) -> Vec<crate::state::Change> {
    store
        .changes(&ChangeQuery {
            after,
            ..Default::default()
        })
        .await
        .expect("read the change feed")
}

pub async fn case_changes_record_create_update_delete_in_order(store: Arc<dyn StateStore>) {
    assert_eq!(store.change_head().await.expect("head"), 0, "an empty feed");
    let s = insert_ok(&store, &mk_store("shop1", "acme")).await;
    let mut updated = s.clone();
    updated.status = Status::Provisioning;
    let updated = store.update(&updated).await.expect("update");
    store.delete(&name("shop1")).await.expect("delete");
    let changes = all_after(&store, Some(0)).await;
    let kinds: Vec<ChangeKind> = changes.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            ChangeKind::Created,
            ChangeKind::Updated,
            ChangeKind::Deleted
        ],
        "one change per write, in order"
    );
    assert!(
        changes.windows(2).all(|w| w[0].seq < w[1].seq),
        "seq increases: {changes:?}"
    );
    assert_eq!(changes[0].store, s, "created carries the record as stored");
    assert_eq!(changes[1].store, updated, "updated carries the new record");
    assert_eq!(
        changes[2].store.status,
        Status::Provisioning,
        "deleted carries the last record"
    );
    assert_eq!(
        store.change_head().await.expect("head"),
        changes[2].seq,
        "the head is the newest seq"
    );
}

pub async fn case_changes_resume_from_any_cursor_without_gaps(store: Arc<dyn StateStore>) {
    for i in 0..12 {
        insert_ok(&store, &mk_store(&format!("shop{i:02}"), "acme")).await;
    }
    let all = all_after(&store, Some(0)).await;
    assert_eq!(all.len(), 12);
    for cut in 0..all.len() {
        let rest = all_after(&store, Some(all[cut].seq)).await;
        assert_eq!(rest, all[cut + 1..].to_vec(), "resume after #{cut}");
    }
    let page = store
        .changes(&ChangeQuery {
            after: Some(0),
            limit: Some(5),
            ..Default::default()
        })
        .await
        .expect("a batch");
    assert_eq!(page, all[..5].to_vec(), "limit cuts the batch");
}

pub async fn case_changes_are_scoped_by_tenant(store: Arc<dyn StateStore>) {
    insert_ok(&store, &mk_store("shop-a", "acme")).await;
    insert_ok(&store, &mk_store("shop-g", "globex")).await;
    insert_ok(&store, &mk_store("shop-b", "acme")).await;
    let acme = store
        .changes(&ChangeQuery {
            after: Some(0),
            tenant: Some(tenant("acme")),
            ..Default::default()
        })
        .await
        .expect("acme's changes");
    let names: Vec<&str> = acme.iter().map(|c| c.store.name.as_str()).collect();
    assert_eq!(
        names,
        ["shop-a", "shop-b"],
        "another tenant's change is never seen"
    );
}

pub async fn case_changes_purged_or_foreign_cursors_expire(store: Arc<dyn StateStore>) {
    for i in 0..3 {
        insert_ok(&store, &mk_store(&format!("old{i}"), "acme")).await;
    }
    let old = all_after(&store, Some(0)).await;
    let purged = store
        .purge_changes(crate::store::now() + chrono::Duration::seconds(1))
        .await
        .expect("purge");
    assert_eq!(purged, 3, "everything older than the cut goes");
    insert_ok(&store, &mk_store("new0", "acme")).await;
    let expired = store
        .changes(&ChangeQuery {
            after: Some(old[0].seq),
            ..Default::default()
        })
        .await;
    assert_eq!(
        kind_of(expired),
        ErrorKind::CursorExpired,
        "a cursor inside the purged range"
    );
    let fresh = all_after(&store, Some(old[2].seq)).await;
    assert_eq!(
        fresh.len(),
        1,
        "the purge mark itself is still a valid cursor"
    );
    assert_eq!(fresh[0].store.name.as_str(), "new0");
    assert!(
        fresh[0].seq > old[2].seq,
        "seq is never reused after a purge"
    );
    let beyond = store
        .changes(&ChangeQuery {
            after: Some(fresh[0].seq + 1000),
            ..Default::default()
        })
        .await;
    assert_eq!(
        kind_of(beyond),
        ErrorKind::CursorExpired,
        "a cursor beyond the head is from another database"
    );
}

pub async fn case_concurrent_writes_appear_once_each_in_commit_order(store: Arc<dyn StateStore>) {
    let writers = (0..16).map(|i| {
        let store = store.clone();
        async move {
            let s = insert_ok(&store, &mk_store(&format!("c{i:02}"), "acme")).await;
            let mut next = s;
            for _ in 0..3 {
                next.message = format!("{} more", next.message);
                next = store.update(&next).await.expect("update");
            }
        }
    });
    join_all(writers).await;
    let all = all_after(&store, Some(0)).await;
    assert_eq!(all.len(), 16 * 4, "every write appended exactly one change");
    let seqs: BTreeSet<u64> = all.iter().map(|c| c.seq).collect();
    assert_eq!(seqs.len(), all.len(), "no seq twice");
    for n in 0..16 {
        let versions: Vec<u64> = all
            .iter()
            .filter(|c| c.store.name.as_str() == format!("c{n:02}"))
            .map(|c| c.store.version)
            .collect();
        assert_eq!(
            versions,
            [1, 2, 3, 4],
            "a store's changes are in commit order"
        );
    }
}

pub async fn case_idempotent_update_completes_its_key_with_the_write(store: Arc<dyn StateStore>) {
    let s = insert_ok(&store, &mk_store("shop1", "acme")).await;
    let key = IdempotencyKey::new("tenant:acme", "del-1");
    assert_eq!(
        store
            .idempotency_begin(&key, "hash-a", IDEMPOTENCY_TTL)
            .await
            .expect("begin"),
        None
    );
    let mut deleting = s.clone();
    deleting.status = Status::Deleting;
    let done = |body: &str| IdempotentInsert {
        key: key.clone(),
        request_hash: "hash-a".into(),
        response: StoredResponse {
            status: 202,
            body: body.into(),
        },
    };
    // A stale version fails the write, and the key stays in progress (nothing stored).
    let mut stale = deleting.clone();
    stale.version = 99;
    assert_eq!(
        kind_of(store.update_with(&stale, Some(&done("stale"))).await),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind_of(
            store
                .idempotency_begin(&key, "hash-a", IDEMPOTENCY_TTL)
                .await
        ),
        ErrorKind::IdempotencyInProgress,
        "a failed write leaves the key uncompleted"
    );
    let saved = store
        .update_with(&deleting, Some(&done("the first answer")))
        .await
        .expect("update with key");
    assert_eq!(saved.version, s.version + 1);
    let replay = store
        .idempotency_begin(&key, "hash-a", IDEMPOTENCY_TTL)
        .await
        .expect("replay");
    assert_eq!(
        replay.map(|r| r.body),
        Some("the first answer".to_owned()),
        "the key was completed in the write's transaction"
    );
    // A key begun with another request cannot complete this write.
    let other = IdempotencyKey::new("tenant:acme", "del-2");
    store
        .idempotency_begin(&other, "hash-x", IDEMPOTENCY_TTL)
        .await
        .expect("begin other");
    let mismatched = IdempotentInsert {
        key: other,
        request_hash: "hash-y".into(),
        response: StoredResponse {
            status: 202,
            body: "{}".into(),
        },
    };
    assert_eq!(
        kind_of(store.update_with(&saved, Some(&mismatched)).await),
        ErrorKind::IdempotencyMismatch
    );
    assert_eq!(
        store.get(&name("shop1")).await.expect("get").version,
        saved.version,
        "a refused key changes nothing"
    );
}
