//! Faults against the real server on the real cluster: SIGKILL at random moments while 20
//! stores are created and some deleted, clients retrying with their idempotency keys; and
//! a namespace quota filled so the store's pods cannot start. After each fault clears,
//! nothing is lost or duplicated.
//!
//! ```text
//!  round 1: 20 creates at once ─ kill -9 after a random 0.2–2.5 s ─ restart ─ resend all
//!  round 2: 8 deletes at once  ─ kill -9 after a random 0.2–2.5 s ─ restart ─ resend all
//!  round 3: kill -9 while the rest provision                      ─ restart
//!  ─▶ 12 Ready, 8 gone; per store one namespace, one deployed release, no pending-*;
//!     the audit trail never holds an action twice, and creation precedes readiness
//!  retries: 8 stores Failed (a helm that rejects them) ─▶ fault cleared ─▶ 8 retries at once
//!           ─ kill -9 after a random 0.2–2.5 s ─ restart ─ resend all ─ kill -9 again while
//!           they provision ─ restart ─▶ 8 Ready, one release each, store.retry at most once
//!  quota: a store's namespace filled ─▶ Failed with the reason ─▶ quota freed ─▶ retry ─▶ Ready
//! ```
//!
//! Counts are printed (`--nocapture`): faults injected, stores affected, lost, duplicated.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::Method;
use serde_json::{Value, json};
use support::{Cleanup, READY_TIMEOUT, Server, kubectl, releases_in, unique};

/// The namespaces labelled for store `name`, and its helm releases: (namespaces, releases,
/// all deployed).
fn one_of_everything(name: &str) -> (usize, usize, bool) {
    let ns = kubectl(&[
        "get",
        "namespaces",
        "-l",
        &format!("urumi.dev/store={name}"),
        "-o",
        "name",
    ]);
    let releases = releases_in(&format!("store-{name}"));
    let deployed = releases.iter().all(|r| r["status"] == "deployed");
    (ns.lines().count(), releases.len(), deployed)
}

/// Of `names` (which must all exist): those with no namespace or no release (lost), and
/// those with more than one, or a release not deployed (duplicated), each with its counts.
fn lost_and_duplicated(names: &[String]) -> (Vec<String>, Vec<String>) {
    let (mut lost, mut duplicated) = (Vec::new(), Vec::new());
    for n in names {
        match one_of_everything(n) {
            (ns, r, _) if ns == 0 || r == 0 => {
                lost.push(format!("{n}: {ns} namespaces, {r} releases"));
            }
            (1, 1, true) => {}
            (ns, r, deployed) => duplicated.push(format!(
                "{n}: {ns} namespaces, {r} releases, all deployed: {deployed}"
            )),
        }
    }
    (lost, duplicated)
}

/// Store namespaces of `names` holding a helm release in a `pending-*` state.
fn pending_releases(names: &[String]) -> Vec<String> {
    let rows = kubectl(&[
        "get",
        "secrets",
        "-A",
        "-l",
        "owner=helm",
        "-o",
        "jsonpath={range .items[*]}{.metadata.namespace} {.metadata.labels.status}{\"\\n\"}{end}",
    ]);
    rows.lines()
        .filter(|l| names.iter().any(|n| l.starts_with(&format!("store-{n} "))))
        .filter(|l| l.contains("pending"))
        .map(str::to_owned)
        .collect()
}

/// Fires `requests` at once and SIGKILLs the server after a random pause; then restarts
/// it and resends every request with its key, as a client whose call broke would.
async fn kill_during(
    server: &mut Server,
    key: &str,
    requests: &[(Method, String, String, Option<Value>)],
) -> Vec<u16> {
    let client = server.client(key);
    let fired: Vec<_> = requests
        .iter()
        .map(|(m, p, k, b)| {
            let r = client
                .request(m.clone(), p)
                .header("idempotency-key", k.as_str());
            let r = match b {
                Some(b) => r.json(b),
                None => r,
            };
            tokio::spawn(async move { r.send().await.map(|res| res.status().as_u16()) })
        })
        .collect();
    let pause = rand::rng().random_range(200..2500);
    tokio::time::sleep(Duration::from_millis(pause)).await;
    server.kill9_and_restart();
    for f in fired {
        let _ = f.await;
    }
    // The restarted server listens on a new port.
    let client = server.client(key);
    let mut statuses = Vec::new();
    for (m, p, k, b) in requests {
        statuses.push(client.until_answered(m.clone(), p, k, b.as_ref()).await);
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let mut server = Server::start();
    let acme_key = server.keys.acme.clone();
    let names: Vec<String> = (0..20).map(|_| unique("flt")).collect();
    let mut cleanup = Cleanup::default();
    for n in &names {
        cleanup.add(n);
    }
    let mut faults = 0;

    // Round 1: creates.
    let creates: Vec<_> = names
        .iter()
        .map(|n| {
            (
                Method::POST,
                "/api/v1/stores".to_owned(),
                format!("create-{n}"),
                Some(json!({ "name": n })),
            )
        })
        .collect();
    let statuses = kill_during(&mut server, &acme_key, &creates).await;
    faults += 1;
    assert!(
        statuses.iter().all(|s| *s == 202),
        "a resent create with its key answers 202 (first outcome or new): {statuses:?}"
    );

    // Round 2: deletes of 8, while the others provision.
    let (deleted, kept) = names.split_at(8);
    let deletes: Vec<_> = deleted
        .iter()
        .map(|n| {
            (
                Method::DELETE,
                format!("/api/v1/stores/{n}"),
                format!("delete-{n}"),
                None,
            )
        })
        .collect();
    let statuses = kill_during(&mut server, &acme_key, &deletes).await;
    faults += 1;
    assert!(
        statuses.iter().all(|s| *s == 202 || *s == 404),
        "a resent delete answers 202 (or 404 once gone): {statuses:?}"
    );

    // Round 3: a kill while the rest provision.
    tokio::time::sleep(Duration::from_millis(rand::rng().random_range(500..3000))).await;
    server.kill9_and_restart();
    faults += 1;
    let acme = server.client(&acme_key);
    let admin = server.client(&server.keys.admin);

    for n in kept {
        acme.wait_status(n, "Ready", READY_TIMEOUT * 2).await;
    }
    for n in deleted {
        acme.wait_gone(n).await;
    }

    // One of everything for the kept; nothing for the deleted.
    let (lost, duplicated) = lost_and_duplicated(kept);
    for n in deleted {
        assert!(
            kubectl(&["get", "namespace", &format!("store-{n}"), "-o", "name"]).is_empty(),
            "{n}: its namespace remains"
        );
    }
    let pending = pending_releases(&names);
    assert!(pending.is_empty(), "pending releases: {pending:?}");

    // The audit trail: no action twice; creation before readiness.
    let mut missing_creates = 0;
    for n in &names {
        let trail = admin
            .get(&format!("/api/v1/stores/{n}/events?limit=200"))
            .await;
        let items = trail.json["items"].as_array().cloned().unwrap_or_default();
        let mut count: HashMap<String, usize> = HashMap::new();
        for e in &items {
            let action = e["action"].as_str().unwrap_or("").to_owned();
            if matches!(
                action.as_str(),
                "store.create" | "store.delete" | "store.ready" | "store.deleted"
            ) && e["outcome"] == "success"
            {
                *count.entry(action).or_default() += 1;
            }
        }
        for (action, c) in &count {
            assert!(*c <= 1, "{n}: {action} recorded {c} times: {}", trail.json);
        }
        if !count.contains_key("store.create") {
            missing_creates += 1;
        }
        let at = |action: &str| {
            items
                .iter()
                .find(|e| e["action"] == action)
                .and_then(|e| e["at"].as_str())
                .map(str::to_owned)
        };
        if let (Some(created), Some(ready)) = (at("store.create"), at("store.ready")) {
            assert!(created <= ready, "{n}: ready before created");
        }
    }
    support::report_count(&format!(
        "faults: {faults} SIGKILLs of the server during creates, deletes and provisioning; \
         stores affected: {}; lost: {}; duplicated: {}; store.create audit \
         events missing (a kill between the record and its audit event): {missing_creates}",
        names.len(),
        lost.len(),
        duplicated.len()
    ));
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(duplicated.is_empty(), "duplicated: {duplicated:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_retries_loses_and_duplicates_nothing() {
    let helm_dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start_with_faulty_helm(helm_dir.path(), "");
    let acme_key = server.keys.acme.clone();
    let names: Vec<String> = (0..8).map(|_| unique("frt")).collect();
    let mut cleanup = Cleanup::default();
    let acme = server.client(&acme_key);
    for n in &names {
        cleanup.add(n);
        std::fs::write(helm_dir.path().join(format!("reject-{n}")), "").expect("marker");
        let a = acme.post("/api/v1/stores", json!({ "name": n })).await;
        assert_eq!(a.status, 202, "{}", a.json);
    }
    for n in &names {
        acme.wait_status(n, "Failed", READY_TIMEOUT).await;
        std::fs::remove_file(helm_dir.path().join(format!("reject-{n}"))).expect("clear");
    }

    let retries: Vec<_> = names
        .iter()
        .map(|n| {
            (
                Method::POST,
                format!("/api/v1/stores/{n}/retry"),
                format!("retry-{n}"),
                None,
            )
        })
        .collect();
    let statuses = kill_during(&mut server, &acme_key, &retries).await;
    assert!(
        statuses.iter().all(|s| *s == 202),
        "a resent retry with its key answers 202: {statuses:?}"
    );
    tokio::time::sleep(Duration::from_millis(rand::rng().random_range(500..3000))).await;
    server.kill9_and_restart();
    let faults = 2;

    let acme = server.client(&acme_key);
    let admin = server.client(&server.keys.admin);
    for n in &names {
        acme.wait_status(n, "Ready", READY_TIMEOUT * 2).await;
    }
    let (lost, duplicated) = lost_and_duplicated(&names);
    let pending = pending_releases(&names);
    assert!(pending.is_empty(), "pending releases: {pending:?}");
    for n in &names {
        let trail = admin
            .get(&format!("/api/v1/stores/{n}/events?limit=200"))
            .await;
        let items = trail.json["items"].as_array().cloned().unwrap_or_default();
        let retried = items
            .iter()
            .filter(|e| e["action"] == "store.retry" && e["outcome"] == "success")
            .count();
        assert!(retried <= 1, "{n}: store.retry recorded {retried} times");
        let readies = items
            .iter()
            .filter(|e| e["action"] == "store.ready" && e["outcome"] == "success")
            .count();
        assert!(readies <= 1, "{n}: store.ready recorded {readies} times");
    }
    support::report_count(&format!(
        "faults: {faults} SIGKILLs of the server during retries; stores affected: {}; \
         lost: {}; duplicated: {}",
        names.len(),
        lost.len(),
        duplicated.len()
    ));
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(duplicated.is_empty(), "duplicated: {duplicated:?}");
    for n in &names {
        let a = acme.delete(&format!("/api/v1/stores/{n}")).await;
        assert_eq!(a.status, 202, "{}", a.json);
    }
    for n in &names {
        acme.wait_gone(n).await;
    }
}

/// Creates one List of `count` placeholder pods in `ns` (one kubectl call: fast enough
/// to take the quota before the release's pods).
fn fill_pods(ns: &str, count: usize) -> bool {
    let items: Vec<Value> = (0..count)
        .map(|i| {
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("filler-{i}"), "namespace": ns},
                "spec": {"containers": [{"name": "c", "image": "registry.invalid/filler",
                    "resources": {"requests": {"cpu": "1m", "memory": "1Mi"},
                                  "limits": {"cpu": "1m", "memory": "1Mi"}}}]}})
        })
        .collect();
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    std::process::Command::new("kubectl")
        .args(["create", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .expect("stdin")
                .write_all(list.to_string().as_bytes())?;
            c.wait_with_output()
        })
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filled_quota_fails_the_store_with_its_reason_and_retry_clears_it() {
    let mut server = Server::prepare("");
    server.readiness_timeout_secs = 20;
    server.write_config();
    server.spawn();
    let acme = server.client(&server.keys.acme);
    let mut cleanup = Cleanup::default();
    // The fillers race the release's pods for the quota; a lost race (the store went
    // Ready first) is tried again with another store.
    for _ in 0..3 {
        let name = unique("fq");
        cleanup.add(&name);
        let ns = format!("store-{name}");
        let a = acme.post("/api/v1/stores", json!({ "name": name })).await;
        assert_eq!(a.status, 202, "{}", a.json);
        let deadline = Instant::now() + Duration::from_secs(60);
        let hard_pods = loop {
            let hard = kubectl(&[
                "get",
                "resourcequota",
                "-n",
                &ns,
                "-o",
                "jsonpath={.items[0].spec.hard.pods}",
            ]);
            if let Ok(n) = hard.trim().parse::<usize>() {
                break n;
            }
            assert!(Instant::now() < deadline, "no quota in {ns}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let filled = fill_pods(&ns, hard_pods);
        let deadline = Instant::now() + READY_TIMEOUT;
        let store = loop {
            let s = acme.get(&format!("/api/v1/stores/{name}")).await.json;
            if s["status"] == "Failed" || s["status"] == "Ready" {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "{name} neither Failed nor Ready: {s}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        if store["status"] == "Ready" || !filled {
            println!("quota race lost (filled: {filled}); trying again");
            acme.delete(&format!("/api/v1/stores/{name}")).await;
            continue;
        }
        let message = store["message"].as_str().unwrap_or("").to_owned();
        println!("quota filled with {hard_pods} pods; the store failed: {message}");
        assert!(
            message.contains("not ready") || message.contains("quota"),
            "the reason says why: {message}"
        );
        for i in 0..hard_pods {
            let _ = kubectl(&[
                "delete",
                "pod",
                &format!("filler-{i}"),
                "-n",
                &ns,
                "--ignore-not-found",
            ]);
        }
        let a = acme
            .post_empty(&format!("/api/v1/stores/{name}/retry"))
            .await;
        assert_eq!(a.status, 202, "{}", a.json);
        acme.wait_status(&name, "Ready", READY_TIMEOUT).await;
        support::report_count(&format!(
            "faults: a namespace quota filled ({hard_pods} pods); stores affected: 1, Failed \
             with the reason, Ready after the quota was freed and a retry"
        ));
        let a = acme.delete(&format!("/api/v1/stores/{name}")).await;
        assert_eq!(a.status, 202);
        acme.wait_gone(&name).await;
        return;
    }
    panic!("the quota race was lost three times");
}
