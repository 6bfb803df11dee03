//! The HTTP server under load, measured from other processes on loopback: wrk for request
//! rates and latencies, this process for memory (from /proc) and SSE fan-out.
//!
//! ```text
//!  for records in 0, 1,000, 10,000:   seed SQLite with Ready stores of tenant acme
//!    start the real urumi-server (release build) ─▶ settle 3 s ─▶ RSS idle
//!  on the 1,000-record server:
//!    wrk GET /api/v1/stores/{one}          ─▶ req/s, p50, p99
//!    wrk GET /api/v1/stores?limit=100      ─▶ req/s, p50, p99   (100 of 1,000)
//!    100 SSE clients on /api/v1/events ─▶ POST a store ─▶ time until all 100 have it (×5)
//!    wrk POST /api/v1/stores (a new name each, limits raised) ─▶ req/s, p50, p99, 202s
//!    RSS after the load
//!  ─▶ table; the namespaces the created stores got are deleted at the end
//! ```
//!
//! Run: `eval "$(tests/cluster/up)"` then `cargo bench -p urumi-http --bench http` (or
//! `make bench`). Needs `wrk` on PATH (`apt-get install wrk`) and KUBECONFIG; exits 1
//! saying which is missing. `URUMI_BENCH_WRK_SECS` changes the 10 s per wrk run.
//! Creates are accepted at the rate measured, but provisioned in the background by the
//! server's 4 workers on the same 2 cores: the POST figures include that competition.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::Server;
use urumi_core::limits::Limits;
use urumi_core::state::{self, InsertOptions};
use urumi_core::store::{Store, StoreName, StoreSpec, TenantId};

const SSE_CLIENTS: usize = 100;
const SSE_ROUNDS: usize = 5;

fn seeded_name(i: usize) -> String {
    format!("seed-{i:05}")
}

/// Writes `n` Ready stores of tenant acme straight into the server's SQLite file.
async fn seed(server: &Server, n: usize) {
    let url = format!("sqlite://{}", server.db_path().display());
    let st = state::open(&url).await.expect("open state");
    let opts = InsertOptions {
        limits: Limits::unlimited(),
        idempotency: None,
        audit: None,
    };
    let start = Instant::now();
    for i in 0..n {
        let spec = StoreSpec::new(
            StoreName::new(seeded_name(i)).expect("name"),
            TenantId::new("acme").expect("tenant"),
        );
        let mut store = Store::new(spec, format!("store-{}", seeded_name(i)));
        store.mark_ready();
        store.urls.storefront = Some(format!("http://{}.127.0.0.1.nip.io", seeded_name(i)));
        store.urls.admin = Some(format!(
            "http://{}.127.0.0.1.nip.io/wp-admin",
            seeded_name(i)
        ));
        st.insert(&store, &opts).await.expect("insert");
    }
    if n > 0 {
        eprintln!(
            "[bench] seeded {n} Ready stores in {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
}

/// Resident set size of `pid` in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

#[derive(Debug, Default)]
struct WrkResult {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    non_2xx: u64,
    socket_errors: String,
}

/// `12.34us` / `5.6ms` / `1.2s` → milliseconds.
fn millis(v: &str) -> f64 {
    let (num, unit) = v
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| v.split_at(i))
        .expect("latency unit");
    let n: f64 = num.parse().expect("latency number");
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        other => panic!("unknown unit {other}"),
    }
}

fn parse_wrk(out: &str) -> WrkResult {
    let mut r = WrkResult::default();
    for line in out.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            r.requests_per_sec = v.trim().parse().expect("req/s");
        } else if let Some(v) = t.strip_prefix("50%") {
            r.p50_ms = millis(v.trim());
        } else if let Some(v) = t.strip_prefix("99%") {
            r.p99_ms = millis(v.trim());
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            r.non_2xx = v.trim().parse().expect("non-2xx");
        } else if t.starts_with("Socket errors:") {
            r.socket_errors = t.to_owned();
        } else if t.contains(" requests in ") {
            r.requests = t
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .expect("requests");
        }
    }
    r
}

fn wrk_secs() -> u64 {
    std::env::var("URUMI_BENCH_WRK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// Runs wrk (2 threads, 32 connections) with `script`, passing `key` and `args` to it.
fn wrk(label: &str, url: &str, script: &str, args: &[&str]) -> WrkResult {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("script.lua");
    std::fs::write(&path, script).expect("write lua");
    let secs = wrk_secs();
    eprintln!("[bench] wrk {label}: {secs} s, 2 threads, 32 connections");
    let out = Command::new("wrk")
        .args(["-t2", "-c32", "--latency", "--timeout", "10s"])
        .arg(format!("-d{secs}s"))
        .arg("-s")
        .arg(&path)
        .arg(url)
        .arg("--")
        .args(args)
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk failed: {text}");
    let r = parse_wrk(&text);
    eprintln!(
        "[bench]   {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} requests, {} non-2xx {}",
        r.requests_per_sec, r.p50_ms, r.p99_ms, r.requests, r.non_2xx, r.socket_errors
    );
    r
}

const GET_SCRIPT: &str = r#"
function init(args)
  path = args[2]
  headers = { ["Authorization"] = "Bearer " .. args[1] }
end
function request()
  return wrk.format("GET", path, headers)
end
"#;

const POST_SCRIPT: &str = r#"
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  prefix = args[2] .. tid .. "-"
  counter = 0
  headers = {
    ["Authorization"] = "Bearer " .. args[1],
    ["Content-Type"] = "application/json",
  }
end
function request()
  counter = counter + 1
  local body = '{"name":"' .. prefix .. counter .. '"}'
  return wrk.format("POST", "/api/v1/stores", headers, body)
end
"#;

/// Opens `SSE_CLIENTS` streams, then `SSE_ROUNDS` times creates a store and times how
/// long until every stream has shown it. Returns (p50, max) in milliseconds over rounds.
async fn sse_fanout(server: &Server, created: &mut Vec<String>) -> (f64, f64) {
    let client = server.client(&server.keys.acme);
    let mut streams = Vec::with_capacity(SSE_CLIENTS);
    for _ in 0..SSE_CLIENTS {
        streams.push(client.sse(None).await);
    }
    eprintln!("[bench] {SSE_CLIENTS} SSE clients connected");
    let mut rounds = Vec::new();
    for round in 0..SSE_ROUNDS {
        let name = format!("fanout-{round}-{}", std::process::id());
        let start = Instant::now();
        let answer = client
            .post("/api/v1/stores", serde_json::json!({ "name": name }))
            .await;
        assert_eq!(answer.status, 202, "create {name}: {}", answer.json);
        created.push(name.clone());
        let waits = streams.iter_mut().map(|s| {
            let name = name.clone();
            async move {
                loop {
                    let ev = s.next(Duration::from_secs(30)).await.expect("an event");
                    if ev.event == "store" && ev.data.contains(&format!("\"name\":\"{name}\"")) {
                        return start.elapsed();
                    }
                }
            }
        });
        let times = futures::future::join_all(waits).await;
        let all = times.iter().max().copied().unwrap_or_default();
        eprintln!(
            "[bench]   round {round}: all {SSE_CLIENTS} clients had it after {:.1} ms",
            all.as_secs_f64() * 1000.0
        );
        rounds.push(all.as_secs_f64() * 1000.0);
        // Let the store's own progress events pass before the next round.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    rounds.sort_by(f64::total_cmp);
    (rounds[rounds.len() / 2], rounds[rounds.len() - 1])
}

/// Deletes the namespaces of every store created through the API during the bench.
fn delete_namespaces(prefixes: &[&str]) {
    let out = Command::new("kubectl")
        .args(["get", "namespaces", "-o", "name"])
        .output()
        .expect("kubectl");
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("namespace/"))
        .filter(|n| {
            prefixes
                .iter()
                .any(|p| n.starts_with(&format!("store-{p}")))
        })
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return;
    }
    eprintln!(
        "[bench] deleting {} namespaces of stores created by the bench",
        names.len()
    );
    let _ = Command::new("kubectl")
        .args(["delete", "namespace", "--wait=false", "--ignore-not-found"])
        .args(&names)
        .output();
}

#[tokio::main]
async fn main() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("KUBECONFIG is not set: run `eval \"$(tests/cluster/up)\"` first");
        std::process::exit(1);
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk is not on PATH: `apt-get install -y wrk` (make bench installs it)");
        std::process::exit(1);
    }
    let extra = "";
    let mut idle = Vec::new();
    for records in [0usize, 1_000, 10_000] {
        let mut server = Server::prepare(extra);
        seed(&server, records).await;
        server.spawn();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let rss = rss_mib(server.pid().expect("pid"));
        eprintln!("[bench] RSS idle with {records} records: {rss:.1} MiB");
        idle.push((records, rss));
        if records != 1_000 {
            server.terminate();
            continue;
        }

        let key = server.keys.acme.clone();
        let one = format!("/api/v1/stores/{}", seeded_name(500));
        let get = wrk("GET one store", &server.url, GET_SCRIPT, &[&key, &one]);
        let list = wrk(
            "GET list 100 of 1,000",
            &server.url,
            GET_SCRIPT,
            &[&key, "/api/v1/stores?limit=100"],
        );
        let mut created = Vec::new();
        let (fan_p50, fan_max) = sse_fanout(&server, &mut created).await;
        let prefix = format!("wb{}-", std::process::id() % 100_000);
        let post = wrk("POST create", &server.url, POST_SCRIPT, &[&key, &prefix]);
        let rss_after = rss_mib(server.pid().expect("pid"));
        server.terminate();
        delete_namespaces(&[&prefix, "fanout-"]);

        println!();
        println!(
            "| HTTP (wrk, 2 threads, 32 connections, loopback) | req/s | p50 ms | p99 ms | non-2xx |"
        );
        println!("|---|---:|---:|---:|---:|");
        for (label, r) in [
            ("GET one store", &get),
            ("GET list 100 of 1,000", &list),
            ("POST create (new name each)", &post),
        ] {
            println!(
                "| {label} | {:.0} | {:.2} | {:.2} | {} |",
                r.requests_per_sec, r.p50_ms, r.p99_ms, r.non_2xx
            );
        }
        println!();
        println!(
            "SSE fan-out, {SSE_CLIENTS} clients: a created store reached all of them in \
             {fan_p50:.1} ms (median of {SSE_ROUNDS}), {fan_max:.1} ms at worst"
        );
        println!(
            "RSS after the load (1,000 records, {} stores accepted): {rss_after:.1} MiB",
            post.requests - post.non_2xx + SSE_ROUNDS as u64
        );
    }
    println!();
    println!("| records | RSS idle MiB |");
    println!("|---:|---:|");
    for (records, rss) in &idle {
        println!("| {records} | {rss:.1} |");
    }
    if let (Some((_, base)), Some((_, big))) = (idle.first(), idle.last()) {
        println!("ratio RSS 10,000 records / empty: {:.2}", big / base);
    }
}
