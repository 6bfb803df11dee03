//! What the provisioner promises its callers about requests, on every state backend:
//! one-call idempotency under concurrency, the change feed across two provisioners
//! sharing PostgreSQL, and cancellation safety (a dropped future never leaves a write
//! without its audit event and change).
//!
//! The provisioners here never reach a cluster: their worker is stopped, so only what
//! the request path records is under test. PostgreSQL cases need `tests/postgres/up`.
#![allow(clippy::unwrap_used, missing_docs)]

mod lifecycle_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use lifecycle_support::{postgres_schema_url, sqlite_state, tenant};
use urumi_core::audit::AuditQuery;
use urumi_core::limits::Limits;
use urumi_core::state::{self, ChangeKind, ListQuery, MemoryStore, StateStore};
use urumi_core::store::{Status, StoreName};
use urumi_core::{
    Caller, CreateStore, ErrorKind, KubeProvisioner, Provisioner, ProvisionerSettings,
    RequestOptions,
};

/// A client of nothing: the worker is stopped, so no request reaches it.
fn offline_client() -> urumi_core::kube::Client {
    let config = urumi_core::kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    urumi_core::kube::Client::try_from(config).unwrap()
}

fn quiet_provisioner(state: Arc<dyn StateStore>) -> KubeProvisioner {
    let settings = ProvisionerSettings {
        limits: Limits::unlimited(),
        ..Default::default()
    };
    let p = KubeProvisioner::builder(offline_client(), state)
        .settings(settings)
        .build()
        .unwrap();
    p.orchestrator().begin_shutdown();
    p
}

fn acme() -> Caller {
    Caller::tenant("acme-key", tenant("acme"))
}

enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

async fn state_of(backend: Backend) -> (Arc<dyn StateStore>, Box<dyn std::any::Any + Send>) {
    match backend {
        Backend::Memory => (Arc::new(MemoryStore::new()), Box::new(())),
        Backend::Sqlite => {
            let (s, dir) = sqlite_state().await;
            (s, Box::new(dir))
        }
        Backend::Postgres => (
            state::open(&postgres_schema_url().await).await.unwrap(),
            Box::new(()),
        ),
    }
}

async fn audit_count(state: &Arc<dyn StateStore>, action: &str, store: &str) -> usize {
    state
        .query_audit(&AuditQuery {
            action: Some(action.to_owned()),
            store: Some(store.to_owned()),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap()
        .items
        .len()
}

/// Every answer is the first outcome replayed or `idempotency_in_progress`.
fn check_answers(answers: &[urumi_core::Result<urumi_core::store::Store>], what: &str) {
    let firsts: BTreeSet<String> = answers
        .iter()
        .filter_map(|a| a.as_ref().ok())
        .map(|s| serde_json::to_string(s).unwrap())
        .collect();
    assert_eq!(
        firsts.len(),
        1,
        "{what}: every success is the same first outcome: {firsts:#?}"
    );
    for a in answers {
        if let Err(e) = a {
            assert_eq!(e.kind(), ErrorKind::IdempotencyInProgress, "{what}: {e}");
        }
    }
}

async fn sixteen_with_one_key(backend: Backend) {
    let (state, _guard) = state_of(backend).await;
    let p = Arc::new(quiet_provisioner(state.clone()));
    let opts = RequestOptions::idempotency_key("order-1001");

    let creates = join_all((0..16).map(|_| {
        let (p, opts) = (p.clone(), opts.clone());
        async move { p.create(&acme(), CreateStore::named("shop1"), opts).await }
    }))
    .await;
    check_answers(&creates, "create");
    let page = state.list(&ListQuery::default()).await.unwrap();
    assert_eq!(page.items.len(), 1, "one store from one key");
    assert_eq!(audit_count(&state, "store.create", "shop1").await, 1);
    // Later, the same key replays the first 202 (not store_exists) ...
    let replay = p
        .create(&acme(), CreateStore::named("shop1"), opts.clone())
        .await
        .expect("replayed");
    assert_eq!(
        replay, page.items[0],
        "the replay is the first outcome exactly"
    );
    // ... another request under it is a mismatch, and another tenant's key is its own.
    let other = p
        .create(&acme(), CreateStore::named("shop2"), opts.clone())
        .await
        .expect_err("mismatch");
    assert_eq!(other.kind(), ErrorKind::IdempotencyMismatch);
    let globex = Caller::tenant("globex-key", tenant("globex"));
    let theirs = p
        .create(&globex, CreateStore::named("shop1"), opts.clone())
        .await
        .expect_err("a key is scoped to its tenant: this is a new request");
    assert_eq!(theirs.kind(), ErrorKind::StoreExists);

    // Retry: only a Failed store; sixteen at once with one key retry it once.
    let mut failed = state.get(&StoreName::new("shop1").unwrap()).await.unwrap();
    failed.status = Status::Failed;
    state.update(&failed).await.unwrap();
    let ropts = RequestOptions::idempotency_key("retry-1");
    let retries = join_all((0..16).map(|_| {
        let (p, o) = (p.clone(), ropts.clone());
        async move { p.retry(&acme(), "shop1", o).await }
    }))
    .await;
    check_answers(&retries, "retry");
    assert_eq!(audit_count(&state, "store.retry", "shop1").await, 1);
    let after = state.get(&StoreName::new("shop1").unwrap()).await.unwrap();
    assert_eq!(
        after.attempts,
        failed.attempts + 1,
        "one retry from one key"
    );

    // Delete: sixteen at once, one key: one deletion requested.
    let dopts = RequestOptions::idempotency_key("delete-1");
    let deletes = join_all((0..16).map(|_| {
        let (p, o) = (p.clone(), dopts.clone());
        async move { p.delete(&acme(), "shop1", o).await }
    }))
    .await;
    check_answers(&deletes, "delete");
    assert_eq!(audit_count(&state, "store.delete", "shop1").await, 1);
    // Once the store is gone, the key still replays the first answer.
    state
        .delete(&StoreName::new("shop1").unwrap())
        .await
        .unwrap();
    let replayed = p.delete(&acme(), "shop1", dopts).await.expect("replay");
    assert_eq!(replayed.status, Status::Deleting);
    let fresh = p
        .delete(&acme(), "shop1", RequestOptions::default())
        .await
        .expect_err("without the key, the store is gone");
    assert_eq!(fresh.kind(), ErrorKind::NotFound);
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_requests_with_one_key_make_one_outcome_memory() {
    sixteen_with_one_key(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_requests_with_one_key_make_one_outcome_sqlite() {
    sixteen_with_one_key(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_requests_with_one_key_make_one_outcome_postgres() {
    sixteen_with_one_key(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_permanent_error_is_replayed_and_a_bad_key_refused() {
    let p = quiet_provisioner(Arc::new(MemoryStore::new()));
    p.create(
        &acme(),
        CreateStore::named("taken"),
        RequestOptions::default(),
    )
    .await
    .unwrap();
    let opts = RequestOptions::idempotency_key("k");
    let first = p
        .create(&acme(), CreateStore::named("taken"), opts.clone())
        .await
        .expect_err("exists");
    assert_eq!(first.kind(), ErrorKind::StoreExists);
    let again = p
        .create(&acme(), CreateStore::named("taken"), opts)
        .await
        .expect_err("replayed");
    assert_eq!(
        again.kind(),
        ErrorKind::StoreExists,
        "the first answer, again"
    );
    for bad in [String::new(), "x".repeat(300), "tab\there".to_owned()] {
        let e = p
            .create(
                &acme(),
                CreateStore::named("other"),
                RequestOptions::idempotency_key(bad),
            )
            .await
            .expect_err("bad key");
        assert_eq!(e.kind(), ErrorKind::InvalidSpec);
    }
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_provisioners_on_postgres_see_each_others_changes_in_order() {
    let url = postgres_schema_url().await;
    let state_a = state::open(&url).await.unwrap();
    let state_b = state::open(&url).await.unwrap();
    let a = quiet_provisioner(state_a);
    let b = quiet_provisioner(state_b.clone());
    let admin = Caller::admin("root", tenant("acme"));
    let mut follow = a.changes(&admin, None);
    // Give the follower its starting point before B writes.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let names: Vec<String> = (0..10).map(|i| format!("feed{i:02}")).collect();
    let writers = names.iter().map(|n| {
        let (b, admin) = (&b, admin.clone());
        async move {
            b.create(&admin, CreateStore::named(n), RequestOptions::default())
                .await
                .unwrap();
            b.delete(&admin, n, RequestOptions::default())
                .await
                .unwrap();
        }
    });
    join_all(writers).await;
    for n in &names {
        state_b.delete(&StoreName::new(n).unwrap()).await.unwrap();
    }
    // 10 × (created, updated to Deleting, deleted)
    let mut seen = Vec::new();
    while seen.len() < 30 {
        let change = tokio::time::timeout(Duration::from_secs(10), follow.next())
            .await
            .expect("B's changes reach A within seconds")
            .expect("stream open")
            .expect("no error");
        seen.push(change);
    }
    assert!(
        seen.windows(2).all(|w| w[0].seq < w[1].seq),
        "in sequence order, none twice"
    );
    for n in &names {
        let kinds: Vec<ChangeKind> = seen
            .iter()
            .filter(|c| c.store.name.as_str() == n)
            .map(|c| c.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                ChangeKind::Created,
                ChangeKind::Updated,
                ChangeKind::Deleted
            ],
            "{n}"
        );
    }
    // Resuming from any cursor replays exactly what followed it.
    for cut in [0, 7, 15, 28] {
        let mut resumed = a.changes(&admin, Some(seen[cut].seq));
        let mut again = Vec::new();
        while again.len() < seen.len() - cut - 1 {
            let c = tokio::time::timeout(Duration::from_secs(5), resumed.next())
                .await
                .expect("replay")
                .unwrap()
                .unwrap();
            again.push(c);
        }
        assert_eq!(again, seen[cut + 1..].to_vec(), "resume after #{cut}");
    }
    // A tenant follows only its own stores.
    let globex = Caller::tenant("globex-key", tenant("globex"));
    let mut theirs = a.changes(&globex, Some(0));
    let nothing = tokio::time::timeout(Duration::from_millis(1500), theirs.next()).await;
    assert!(nothing.is_err(), "globex sees none of acme's changes");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_cursor_is_reported_then_the_stream_ends() {
    let p = quiet_provisioner(Arc::new(MemoryStore::new()));
    let mut stream = p.changes(&acme(), Some(999));
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .expect("an item");
    assert_eq!(first.expect_err("expired").kind(), ErrorKind::CursorExpired);
    assert!(stream.next().await.is_none(), "then it ends");
    p.shutdown().await;
}

/// Polls `fut` exactly `n` times (yielding in between), then drops it.
async fn poll_then_drop<F: std::future::Future>(fut: F, n: usize) -> bool {
    let mut fut = Box::pin(fut);
    for _ in 0..n {
        let ready = std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
            Poll::Ready(_) => Poll::Ready(true),
            Poll::Pending => Poll::Ready(false),
        })
        .await;
        if ready {
            return true;
        }
        tokio::task::yield_now().await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_request_never_leaves_a_write_without_its_audit_and_change() {
    let (state, _dir) = sqlite_state().await;
    let p = quiet_provisioner(state.clone());
    let admin = Caller::admin("root", tenant("acme"));
    for n in 0..12 {
        let name = format!("drop{n:02}");
        poll_then_drop(
            p.create(&admin, CreateStore::named(&name), RequestOptions::default()),
            n,
        )
        .await;
        // Whatever was written is complete: the record, its audit event, its change.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let exists = state.get(&StoreName::new(&name).unwrap()).await.is_ok();
        let audited = audit_count(&state, "store.create", &name).await;
        let changes = state
            .changes(&urumi_core::state::ChangeQuery {
                after: Some(0),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.store.name.as_str() == name)
            .count();
        assert_eq!(
            (audited, changes),
            if exists { (1, 1) } else { (0, 0) },
            "create {name} dropped after {n} polls: record {exists}, audit {audited}, changes {changes}"
        );
        if exists {
            poll_then_drop(p.delete(&admin, &name, RequestOptions::default()), n).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let s = state.get(&StoreName::new(&name).unwrap()).await.unwrap();
            let deletes = audit_count(&state, "store.delete", &name).await;
            assert_eq!(
                deletes,
                usize::from(s.status == Status::Deleting),
                "delete {name} dropped after {n} polls"
            );
        }
    }
    p.shutdown().await;
}
