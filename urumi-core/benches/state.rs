//! State store throughput: operations per second on each backend, and each backend's
//! ratio to the in-memory store.
//!
//! ```text
//!  for backend in memory, sqlite (temp file), postgres (if URUMI_TEST_POSTGRES_URL):
//!    insert 10k stores ─▶ get ─▶ list (first page of 50 of 10k) ─▶ claim_next(1)
//!  ─▶ table: ops/s per operation, ratio to memory
//! ```
//!
//! Run: `cargo bench -p urumi-core --bench state` (Postgres: `eval "$(tests/postgres/up)"`
//! first). Single task, sequential calls: these are latencies turned into rates, the
//! cost one request pays, not the backend's parallel capacity.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Connection;
use urumi_core::limits::Limits;
use urumi_core::state::{self, InsertOptions, ListQuery, MemoryStore, StateStore};
use urumi_core::store::{Store, StoreName, StoreSpec, TenantId};

const ROWS: usize = 10_000;
/// Each read benchmark stops after this many calls or this much time.
const MAX_CALLS: usize = 5_000;
const MAX_TIME: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy)]
struct Rates {
    insert: f64,
    get: f64,
    list: f64,
    claim: f64,
}

fn store(i: usize) -> Store {
    let name = StoreName::new(format!("bench-{i:05}")).expect("valid name");
    let tenant = TenantId::new(format!("t{}", i % 50)).expect("valid tenant");
    Store::new(StoreSpec::new(name, tenant), format!("store-bench-{i:05}"))
}

/// Calls `op(i)` until MAX_CALLS or MAX_TIME; returns calls per second.
async fn rate<F, Fut>(mut op: F) -> f64
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    let mut n = 0;
    while n < MAX_CALLS && start.elapsed() < MAX_TIME {
        op(n).await;
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn run(label: &str, st: Arc<dyn StateStore>) -> Rates {
    eprintln!("[bench] {label}: inserting {ROWS} stores");
    let opts = InsertOptions {
        limits: Limits::unlimited(),
        idempotency: None,
        audit: None,
    };
    let start = Instant::now();
    for i in 0..ROWS {
        st.insert(&store(i), &opts).await.expect("insert");
    }
    let insert = ROWS as f64 / start.elapsed().as_secs_f64();

    let get = rate(|i| {
        let st = Arc::clone(&st);
        async move {
            let name = StoreName::new(format!("bench-{:05}", (i * 7919) % ROWS)).expect("name");
            st.get(&name).await.expect("get");
        }
    })
    .await;
    let list = rate(|_| {
        let st = Arc::clone(&st);
        async move {
            let page = st.list(&ListQuery::default()).await.expect("list");
            assert_eq!(page.items.len(), 50);
        }
    })
    .await;
    let claim = rate(|i| {
        let st = Arc::clone(&st);
        async move {
            let got = st
                .claim_next(&format!("w{}", i % 4), Duration::from_secs(600), 1)
                .await
                .expect("claim_next");
            assert_eq!(got.len(), 1, "a pending store was claimable");
        }
    })
    .await;
    Rates {
        insert,
        get,
        list,
        claim,
    }
}

async fn postgres() -> Option<Arc<dyn StateStore>> {
    let url = std::env::var("URUMI_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .expect("create schema");
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options[search_path]={schema}");
    let st = state::open(&scoped).await.expect("open postgres");
    Some(st)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let mut results = vec![("memory", run("memory", Arc::new(MemoryStore::new())).await)];
    let sqlite = state::open(&sqlite_url).await.expect("open sqlite");
    results.push(("sqlite", run("sqlite", sqlite).await));
    match postgres().await {
        Some(pg) => results.push(("postgres", run("postgres", pg).await)),
        None => eprintln!("[bench] postgres skipped: URUMI_TEST_POSTGRES_URL is not set"),
    }

    let base = results[0].1;
    println!(
        "\nstate store ops/s ({ROWS} rows; list = first page of 50; single task)\n\
         {:<9} {:>18} {:>18} {:>18} {:>18}",
        "backend", "insert", "get", "list", "claim"
    );
    for (name, r) in &results {
        let cell = |v: f64, b: f64| format!("{v:>9.0} (x{:.3})", v / b);
        println!(
            "{:<9} {:>18} {:>18} {:>18} {:>18}",
            name,
            cell(r.insert, base.insert),
            cell(r.get, base.get),
            cell(r.list, base.list),
            cell(r.claim, base.claim),
        );
    }
}
