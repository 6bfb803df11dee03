//! State store tests: the shared conformance suite on every backend, and what each
//! backend promises on its own (durability across restarts, refusing foreign files,
//! schemas newer than the code, unreachable servers).
//!
//! PostgreSQL tests need a server: `eval "$(tests/postgres/up)"` sets
//! `URUMI_TEST_POSTGRES_URL`; without it they fail and say so.
#![allow(clippy::unwrap_used, missing_docs)]

mod conformance;
mod open_url;
mod pagination;
mod postgres_server;
mod sqlite_file;

use std::any::Any;
use std::sync::Arc;

use sqlx::Connection;
use urumi_core::state::{self, MemoryStore, StateStore};

/// Keeps a backend's resources (a temporary directory) alive for the test.
pub type Guard = Box<dyn Any + Send>;

pub async fn memory() -> (Arc<dyn StateStore>, Guard) {
    (Arc::new(MemoryStore::new()), Box::new(()))
}

pub async fn sqlite() -> (Arc<dyn StateStore>, Guard) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("urumi.db").display());
    let store = state::open(&url).await.expect("open a new SQLite store");
    (store, Box::new(dir))
}

/// The server URL from `tests/postgres/up`; panics (fails the test) when unset.
pub fn postgres_url() -> String {
    match std::env::var("URUMI_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "URUMI_TEST_POSTGRES_URL is not set: start PostgreSQL with \
             `eval \"$(tests/postgres/up)\"` (from the repository root) and run the tests again"
        ),
    }
}

/// A URL for a fresh, empty schema of its own on the test server.
pub async fn postgres_schema_url() -> String {
    let url = postgres_url();
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!("cannot connect to URUMI_TEST_POSTGRES_URL ({e}); is tests/postgres/up running?")
    });
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .expect("create a test schema");
    let _ = conn.close().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options[search_path]={schema}")
}

pub async fn postgres() -> (Arc<dyn StateStore>, Guard) {
    let url = postgres_schema_url().await;
    let store = state::open(&url).await.expect("open the Postgres store");
    (store, Box::new(()))
}

/// One `#[tokio::test]` per conformance case, each on a fresh store from `$factory`.
macro_rules! state_cases {
    ($factory:path) => {
        $crate::state_cases!(@each $factory;
            case_insert_then_get_round_trips,
            case_duplicate_name_is_store_exists,
            case_missing_store_is_not_found,
            case_list_is_newest_first_and_pages_without_gaps,
            case_list_filters_by_tenant_and_status,
            case_list_rejects_bad_limit_and_cursor,
            case_update_bumps_version_and_refuses_stale,
            case_delete_removes_the_record,
            case_audit_is_append_only_and_queryable,
            case_insert_appends_its_audit_event_atomically,
            case_status_counts_cover_every_status,
            case_concurrent_same_name_exactly_one_wins,
            case_concurrent_creates_respect_tenant_cap,
            case_concurrent_creates_respect_hourly_rate,
            case_concurrent_creates_respect_global_cap,
            case_rate_window_ignores_old_and_remembers_deleted,
            case_idempotency_replays_and_refuses_mismatch,
            case_idempotency_concurrent_begin_has_one_owner,
            case_idempotent_insert_never_makes_two_stores,
            case_idempotency_release_and_expiry,
            case_lease_is_exclusive_until_released,
            case_lease_expires_and_can_be_taken_over,
            case_claim_next_takes_only_unleased_work,
            case_claim_next_concurrent_workers_are_disjoint,
            case_changes_record_create_update_delete_in_order,
            case_changes_resume_from_any_cursor_without_gaps,
            case_changes_are_scoped_by_tenant,
            case_changes_purged_or_foreign_cursors_expire,
            case_concurrent_writes_appear_once_each_in_commit_order,
            case_idempotent_update_completes_its_key_with_the_write,
        );
    };
    (@each $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (store, _guard) = $factory().await;
                urumi_core::state::conformance::$case(store).await;
            }
        )*
    };
}
pub(crate) use state_cases;
