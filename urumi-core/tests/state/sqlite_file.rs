//! SQLite on its own: a record and its audit trail survive a restart; a corrupt,
//! foreign or newer-schema file is refused with a clear error and left untouched.

use std::path::Path;

use sqlx::{Connection, SqliteConnection};
use urumi_core::ErrorKind;
use urumi_core::audit::AuditQuery;
use urumi_core::state::{self, conformance::mk_store};
use urumi_core::store::{AuditEvent, Outcome, StoreName};

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .expect("raw connection")
}

#[tokio::test]
async fn store_and_audit_trail_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("urumi.db");
    let event = AuditEvent::new("key:ops", "store.create", Outcome::Success).store("shop1");
    let inserted = {
        let store = state::open(&url(&path)).await.expect("first open");
        let s = store
            .insert(&mk_store("shop1", "acme"), &Default::default())
            .await
            .expect("insert");
        store.append_audit(&event).await.expect("audit");
        s
    }; // dropped: the "process" ends
    let reopened = state::open(&url(&path)).await.expect("reopen");
    let got = reopened
        .get(&StoreName::new("shop1").unwrap())
        .await
        .expect("get after restart");
    assert_eq!(got, inserted);
    let trail = reopened
        .query_audit(&AuditQuery {
            store: Some("shop1".into()),
            ..Default::default()
        })
        .await
        .expect("audit after restart");
    assert_eq!(trail.items, vec![event]);
}

async fn refused(path: &Path, expect_in_message: &str) {
    let before = std::fs::read(path).expect("read file before");
    let err = state::open(&url(path))
        .await
        .expect_err("must refuse the file");
    let msg = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Internal, "a permanent error: {msg}");
    assert!(!err.is_retryable());
    assert!(
        msg.contains(expect_in_message),
        "message {msg:?} should say {expect_in_message:?}"
    );
    assert!(
        msg.contains(&path.display().to_string()),
        "message {msg:?} should name the file"
    );
    let after = std::fs::read(path).expect("read file after");
    assert!(before == after, "the refused file was modified");
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    std::fs::write(&path, b"these are my notes, not a database\n".repeat(200)).unwrap();
    refused(&path, "not an SQLite database").await;
}

#[tokio::test]
async fn a_corrupt_sqlite_file_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.db");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend((0..8192u32).map(|i| (i * 7919 % 251) as u8));
    std::fs::write(&path, &bytes).unwrap();
    refused(&path, "").await;
}

#[tokio::test]
async fn another_programs_sqlite_file_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    {
        let mut conn = raw(&path).await;
        sqlx::query("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO customers (name) VALUES ('Ada')")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    refused(&path, "another program (tables: customers)").await;
}

#[tokio::test]
async fn a_schema_newer_than_the_code_is_refused_without_data_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("urumi.db");
    {
        let store = state::open(&url(&path)).await.expect("create");
        store
            .insert(&mk_store("shop1", "acme"), &Default::default())
            .await
            .unwrap();
    }
    let mut conn = raw(&path).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, x'00', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let err = state::open(&url(&path))
        .await
        .expect_err("a newer schema must be refused");
    let msg = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert!(
        msg.contains("9999") && msg.contains("newer"),
        "unclear message: {msg}"
    );

    let mut conn = raw(&path).await;
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 9999")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let store = state::open(&url(&path))
        .await
        .expect("open once the future is gone");
    store
        .get(&StoreName::new("shop1").unwrap())
        .await
        .expect("the data survived the refused open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_share_the_limits_like_two_processes() {
    use urumi_core::limits::Limits;
    use urumi_core::state::InsertOptions;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let a = state::open(&url(&path)).await.unwrap();
    let b = state::open(&url(&path)).await.unwrap();
    let opts = InsertOptions {
        limits: Limits {
            stores_per_tenant: 10,
            ..Limits::unlimited()
        },
        idempotency: None,
        audit: None,
    };
    let tasks = (0..40).map(|i| {
        let st = if i % 2 == 0 { a.clone() } else { b.clone() };
        let opts = opts.clone();
        tokio::spawn(async move {
            st.insert(&mk_store(&format!("twin-{i}"), "acme"), &opts)
                .await
        })
    });
    let results = futures::future::join_all(tasks).await;
    let ok = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    assert_eq!(
        ok, 10,
        "two handles on one file (no shared in-process lock) still admit exactly 10"
    );
    for r in results {
        if let Ok(Err(e)) = r {
            assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}");
        }
    }
}

#[tokio::test]
async fn a_cleanly_closed_file_reopens() {
    use urumi_core::state::{SqliteStore, StateStore};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("urumi.db");
    let first = SqliteStore::open(&path).await.unwrap();
    first
        .insert(&mk_store("shop1", "acme"), &Default::default())
        .await
        .unwrap();
    first.close().await;
    drop(first);
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    eprintln!("files after a clean close: {leftovers:?}");
    let again = SqliteStore::open(&path)
        .await
        .expect("reopen after a clean close");
    again
        .get(&StoreName::new("shop1").unwrap())
        .await
        .expect("record kept");
}
