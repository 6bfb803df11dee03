//! The soak (`make soak`, not part of `make test`): many stores created and deleted through
//! the real server in waves, with SIGKILLs and helm rejections (a store Failed, then retried)
//! sprinkled into the first 60 % of the waves; over the last 40 % (no faults) the server's
//! resident memory, open files and Tokio tasks, read from its `/metrics`, stay flat; no
//! store is lost.
//!
//! ```text
//!  waves of 10: create 10 at once ─▶ all Ready ─▶ delete 10 ─▶ all gone ─▶ scrape /metrics
//!    waves 1, 5, 9, … of the first 60 %: kill -9 mid-wave, restart, resend with the same keys
//!    waves 3, 7, 11, … of the first 60 %: helm rejects one store ─▶ Failed ─▶ retry
//!  ─▶ table of RSS / open fds / tasks per wave; growth over the quiet part
//! ```
//!
//! `URUMI_SOAK_STORES` (default 300) stores in all; 19.6 min on 2 cores. Needs the
//! local cluster (`eval "$(tests/cluster/up)"`).

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{Cleanup, READY_TIMEOUT, Server, unique};

const WAVE: usize = 10;

/// (rss bytes, open fds, tokio tasks) from the server's /metrics.
async fn process_gauges(url: &str) -> (f64, f64, f64) {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let gauge = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    };
    (
        gauge("process_resident_memory_bytes"),
        gauge("process_open_fds"),
        gauge("urumi_tokio_alive_tasks"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the soak: run by `make soak`"]
async fn waves_of_stores_with_sigkills_keep_memory_files_and_tasks_flat() {
    let total: usize = std::env::var("URUMI_SOAK_STORES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let waves = total.div_ceil(WAVE).max(3);
    let quiet_from = waves * 6 / 10;
    let helm_dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start_with_faulty_helm(helm_dir.path(), "");
    let key = server.keys.acme.clone();
    let mut helm_faults = 0;
    let mut cleanup = Cleanup::default();
    let mut curve = Vec::new();
    let mut kills = 0;
    let started = Instant::now();
    for wave in 0..waves {
        let names: Vec<String> = (0..WAVE).map(|_| unique("soak")).collect();
        for n in &names {
            cleanup.add(n);
        }
        let kill_now = wave < quiet_from && wave % 4 == 1;
        let helm_fault_now = wave < quiet_from && wave % 4 == 3;
        if helm_fault_now {
            std::fs::write(helm_dir.path().join(format!("reject-{}", names[0])), "")
                .expect("marker");
        }
        let url = server.url.clone();
        let creates = futures::future::join_all(names.iter().map(|n| {
            let url = url.clone();
            let key = key.clone();
            async move {
                reqwest::Client::new()
                    .post(format!("{url}/api/v1/stores"))
                    .bearer_auth(&key)
                    .header("idempotency-key", format!("create-{n}"))
                    .json(&json!({ "name": n }))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }
        }));
        let _ = creates.await;
        if kill_now {
            tokio::time::sleep(Duration::from_millis(800)).await;
            server.kill9_and_restart();
            kills += 1;
        }
        let client = server.client(&key);
        for n in &names {
            let status = client
                .until_answered(
                    reqwest::Method::POST,
                    "/api/v1/stores",
                    &format!("create-{n}"),
                    Some(&json!({ "name": n })),
                )
                .await;
            assert_eq!(
                status, 202,
                "{n}: the create (resent with its key) answers 202"
            );
        }
        if helm_fault_now {
            // The rejected store fails; the fault cleared, a retry brings it up.
            client.wait_status(&names[0], "Failed", READY_TIMEOUT).await;
            std::fs::remove_file(helm_dir.path().join(format!("reject-{}", names[0])))
                .expect("clear the fault");
            let a = client
                .post_empty(&format!("/api/v1/stores/{}/retry", names[0]))
                .await;
            assert_eq!(a.status, 202, "retry: {}", a.json);
            helm_faults += 1;
        }
        for n in &names {
            client.wait_status(n, "Ready", READY_TIMEOUT * 2).await;
        }
        for n in &names {
            let status = client
                .until_answered(
                    reqwest::Method::DELETE,
                    &format!("/api/v1/stores/{n}"),
                    &format!("delete-{n}"),
                    None,
                )
                .await;
            assert!(status == 202 || status == 404, "{n}: delete {status}");
        }
        for n in &names {
            client.wait_gone(n).await;
        }
        let (rss, fds, tasks) = process_gauges(&server.url).await;
        println!(
            "wave {wave:>3}: {:>4} stores done, {kills} kills, {helm_faults} helm faults, {:>6.1} s, RSS {:>6.1} MiB, \
             {fds:>4.0} fds, {tasks:>5.0} tasks",
            (wave + 1) * WAVE,
            started.elapsed().as_secs_f64(),
            rss / 1_048_576.0
        );
        curve.push((wave, rss, fds, tasks));
    }
    let listed = server
        .client(&server.keys.admin)
        .get("/api/v1/stores?limit=100")
        .await;
    let left = listed.json["items"].as_array().map_or(0, Vec::len);
    assert_eq!(left, 0, "every soaked store was deleted: {}", listed.json);

    // Flat over the quiet part: from its second wave (caches warm) to its last.
    let quiet: Vec<_> = curve.iter().filter(|(w, ..)| *w > quiet_from).collect();
    if let (Some(first), Some(last)) = (quiet.first(), quiet.last()) {
        let growth = last.1 / first.1;
        support::report_count(&format!(
            "soak: {} stores created and deleted, {kills} SIGKILLs, {helm_faults} helm \
             rejections retried, {:.1} min, 0 lost; over waves {}..{} (no faults): RSS \
             {:.1} → {:.1} MiB (×{growth:.2}), fds {:.0} → {:.0}, tasks {:.0} → {:.0}",
            waves * WAVE,
            started.elapsed().as_secs_f64() / 60.0,
            first.0,
            last.0,
            first.1 / 1_048_576.0,
            last.1 / 1_048_576.0,
            first.2,
            last.2,
            first.3,
            last.3
        ));
        assert!(growth < 1.5, "RSS grew ×{growth:.2} with no restart");
        assert!(
            last.2 <= first.2 + 10.0,
            "open files grew: {} → {}",
            first.2,
            last.2
        );
        assert!(
            last.3 <= first.3 + 50.0,
            "tasks grew: {} → {}",
            first.3,
            last.3
        );
    }
}
