//! PostgreSQL stopped for 30 s under two replicas of the server sharing it: requests in
//! the meantime are answered 503 `unavailable` (never a hang, never another 5xx), and once
//! it is back every store reaches Ready on one release, through either replica.
//!
//! ```text
//!  eval "$(tests/cluster/up)"; eval "$(tests/postgres/up)"
//!  replicas A and B on one fresh schema ─▶ 6 creates through A ─▶ tests/postgres/down
//!    30 s: GET/POST on A and B → 503 unavailable ─▶ tests/postgres/up (same port)
//!  ─▶ the 6 Ready (seen through B), one deployed release each ─▶ deleted through B
//! ```
//!
//! This binary holds ONE test: it stops the shared PostgreSQL, so nothing else in it may
//! run meanwhile (other test binaries run one after another under `cargo test`).
//! PostgreSQL is started again even when the test fails.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Cleanup, READY_TIMEOUT, Server, unique};

const OUTAGE: Duration = Duration::from_secs(30);

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/postgres")
        .join(name)
}

/// A URL for a fresh schema on the test PostgreSQL server (psql creates it).
fn fresh_schema_url() -> String {
    let url = std::env::var("URUMI_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("URUMI_TEST_POSTGRES_URL is not set: run `eval \"$(tests/postgres/up)\"` first")
    });
    let schema = format!("h_{}", uuid::Uuid::new_v4().simple());
    let out = std::process::Command::new("psql")
        .arg(&url)
        .args(["-qtA", "-c", &format!("CREATE SCHEMA {schema}")])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "CREATE SCHEMA: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options[search_path]={schema}")
}

/// Starts PostgreSQL again on drop, whatever happened.
struct StartOnDrop;

impl Drop for StartOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new(script("up")).output();
    }
}

fn replica(state: &str) -> Server {
    let mut server = Server::prepare("");
    server.state = Some(state.to_owned());
    server.write_config();
    server.spawn();
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_second_postgres_outage_under_two_replicas_loses_nothing() {
    support::require_cluster();
    let url = fresh_schema_url();
    let a = replica(&url);
    let b = replica(&url);
    let via_a = a.client(&a.keys.acme);
    let names: Vec<String> = (0..6).map(|_| unique("pgo")).collect();
    let mut cleanup = Cleanup::default();
    for n in &names {
        cleanup.add(n);
        let r = via_a.post("/api/v1/stores", json!({ "name": n })).await;
        assert_eq!(r.status, 202, "{}", r.json);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let restart = StartOnDrop;
    let down = std::process::Command::new(script("down"))
        .output()
        .expect("tests/postgres/down");
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let stopped = Instant::now();
    let mut answers = Vec::new();
    for server in [&a, &b] {
        let c = server.client(&server.keys.acme);
        let started = Instant::now();
        let get = c.get(&format!("/api/v1/stores/{}", names[0])).await;
        let post = c
            .post("/api/v1/stores", json!({ "name": unique("pgo-during") }))
            .await;
        for r in [&get, &post] {
            r.assert_problem(503, "unavailable");
        }
        answers.push(started.elapsed());
    }
    println!(
        "during the outage: GET and POST on both replicas answered 503 in {:?}",
        answers
    );
    tokio::time::sleep(OUTAGE.saturating_sub(stopped.elapsed())).await;
    let up = std::process::Command::new(script("up"))
        .output()
        .expect("tests/postgres/up");
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    drop(restart);
    println!(
        "PostgreSQL back after {:.1} s",
        stopped.elapsed().as_secs_f64()
    );

    let via_b = b.client(&b.keys.acme);
    for n in &names {
        let s = via_b.wait_status(n, "Ready", READY_TIMEOUT).await;
        assert_eq!(s["attempts"], 1, "{n} resumed, not retried: {s}");
        let releases = support::releases_in(&format!("store-{n}"));
        assert_eq!(releases.len(), 1, "{n}: {releases:?}");
        assert_eq!(releases[0]["status"], "deployed", "{n}: {releases:?}");
    }
    support::report_count(&format!(
        "faults: PostgreSQL stopped for {} s under two replicas; stores affected: {}, all \
         Ready {:.1} s after it stopped; requests during the outage answered 503",
        OUTAGE.as_secs(),
        names.len(),
        stopped.elapsed().as_secs_f64()
    ));
    for n in &names {
        let r = via_b.delete(&format!("/api/v1/stores/{n}")).await;
        assert_eq!(r.status, 202, "{}", r.json);
    }
    for n in &names {
        via_b.wait_gone(n).await;
    }
}
