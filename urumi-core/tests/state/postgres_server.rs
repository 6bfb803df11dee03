//! PostgreSQL on its own: durability across a restart, an unreachable server, a schema
//! newer than the code.

use std::time::Instant;

use urumi_core::ErrorKind;
use urumi_core::audit::AuditQuery;
use urumi_core::state::{self, conformance::mk_store};
use urumi_core::store::{AuditEvent, Outcome, StoreName};

#[tokio::test]
async fn store_and_audit_trail_survive_a_restart() {
    let url = crate::postgres_schema_url().await;
    let event = AuditEvent::new("key:ops", "store.create", Outcome::Success).store("shop1");
    let inserted = {
        let store = state::open(&url).await.expect("first open");
        let s = store
            .insert(&mk_store("shop1", "acme"), &Default::default())
            .await
            .expect("insert");
        store.append_audit(&event).await.expect("audit");
        s
    };
    let reopened = state::open(&url).await.expect("reopen");
    let got = reopened
        .get(&StoreName::new("shop1").unwrap())
        .await
        .expect("get");
    assert_eq!(got, inserted);
    let trail = reopened
        .query_audit(&AuditQuery {
            store: Some("shop1".into()),
            ..Default::default()
        })
        .await
        .expect("audit");
    assert_eq!(trail.items, vec![event]);
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_retryable_error() {
    let started = Instant::now();
    let err = state::open("postgres://urumi:s3cret-pw@127.0.0.1:1/urumi")
        .await
        .expect_err("nothing listens on port 1");
    let msg = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{msg}");
    assert!(err.is_retryable());
    assert!(
        msg.contains("cannot reach") && msg.contains("127.0.0.1:1"),
        "{msg}"
    );
    assert!(!msg.contains("s3cret-pw"), "the password leaked: {msg}");
    assert!(msg.contains("refused"), "says why: {msg}");
    assert!(
        started.elapsed().as_secs() < 2,
        "a refused connection fails at once"
    );
}

#[tokio::test]
async fn a_schema_newer_than_the_code_is_refused_without_data_loss() {
    let url = crate::postgres_schema_url().await;
    let store = state::open(&url).await.expect("create");
    store
        .insert(&mk_store("shop1", "acme"), &Default::default())
        .await
        .unwrap();
    drop(store);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, '\\x00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let err = state::open(&url).await.expect_err("newer schema");
    let msg = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Internal, "{msg}");
    assert!(
        msg.contains("9999") && msg.contains("newer"),
        "unclear: {msg}"
    );
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 9999")
        .execute(&pool)
        .await
        .unwrap();
    let store = state::open(&url).await.expect("reopen");
    store
        .get(&StoreName::new("shop1").unwrap())
        .await
        .expect("data kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_never_claim_the_same_store() {
    use std::collections::HashSet;
    use std::time::Duration;
    let url = crate::postgres_schema_url().await;
    let a = state::open(&url).await.expect("replica a");
    let b = state::open(&url).await.expect("replica b");
    for i in 0..40 {
        a.insert(
            &mk_store(&format!("work-{i}"), "acme"),
            &urumi_core::state::conformance::unlimited(),
        )
        .await
        .unwrap();
    }
    let tasks = (0..8).map(|w| {
        let st = if w % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = st
                    .claim_next(&format!("w{w}"), Duration::from_secs(60), 3)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|s| s.name.to_string()));
            }
        })
    });
    let mut seen = HashSet::new();
    let mut total = 0;
    for t in futures::future::join_all(tasks).await {
        let mine = t.unwrap();
        total += mine.len();
        seen.extend(mine);
    }
    assert_eq!(
        total, 40,
        "every store claimed exactly once across replicas"
    );
    assert_eq!(seen.len(), 40);
}

#[tokio::test]
async fn a_wrong_password_is_a_permanent_error_that_does_not_echo_it() {
    let url = crate::postgres_url();
    let wrong = url.replacen("urumi:", "urumi:not-the-password-", 1);
    assert_ne!(
        wrong, url,
        "the test URL has the shape tests/postgres/up prints"
    );
    let err = state::open(&wrong).await.expect_err("wrong password");
    let msg = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Internal, "{msg}");
    assert!(msg.contains("password authentication failed"), "{msg}");
    assert!(
        !msg.contains("not-the-password-"),
        "the password leaked: {msg}"
    );
}
