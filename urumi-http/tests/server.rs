//! The real `urumi-server` on the real local cluster: the contract of API.md, row by row,
//! as a client sees it; concurrency; bad input; tenancy; kill -9 and SSE resume.
//!
//! ```text
//!  Server::start() (SQLite in a temp dir, keys: acme, globex, admin) ──HTTP──▶ assertions
//!  needs `eval "$(tests/cluster/up)"` (KUBECONFIG, kubectl, helm); without it every test FAILS
//! ```

mod support;

use std::collections::HashSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Cleanup, READY_TIMEOUT, Server, unique, webhook_secret};

fn store_path(name: &str) -> String {
    format!("/api/v1/stores/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_implemented_row_of_the_contract() {
    let server = Server::start();
    let acme = server.client(&server.keys.acme);
    let admin = server.client(&server.keys.admin);
    let name = unique("hc");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    let mut events = acme.sse(None).await;

    // POST /api/v1/stores → 202 + Store + Location
    let a = acme
        .post("/api/v1/stores", json!({"name": name, "plan": "small"}))
        .await;
    assert_eq!(a.status, 202, "{}", a.json);
    assert_eq!(a.header("location"), Some(store_path(&name).as_str()));
    assert_eq!(a.json["name"], name.as_str());
    assert_eq!(a.json["tenant"], "acme");
    assert_eq!(a.json["engine"], "woocommerce");
    assert_eq!(a.json["plan"], "small");
    assert_eq!(a.json["namespace"], format!("store-{name}"));
    assert!(a.header("x-request-id").is_some());
    for field in [
        "status",
        "step",
        "message",
        "createdAt",
        "updatedAt",
        "attempts",
        "version",
        "urls",
    ] {
        assert!(!a.json[field].is_null(), "{field} missing: {}", a.json);
    }
    // 409 store_exists, 422 invalid_name
    acme.post("/api/v1/stores", json!({"name": name}))
        .await
        .assert_problem(409, "store_exists");
    acme.post("/api/v1/stores", json!({"name": "Not_A_Label"}))
        .await
        .assert_problem(422, "invalid_name");
    acme.post("/api/v1/stores", json!({"name": "admin"}))
        .await
        .assert_problem(422, "invalid_name");
    acme.post("/api/v1/stores", json!({"name": "okname", "plan": "huge"}))
        .await
        .assert_problem(422, "invalid_spec");

    // POST …/verify before Ready → 409; retry while not Failed → 409
    admin
        .post_empty(&format!("{}/verify", store_path(&name)))
        .await
        .assert_problem(409, "conflict");

    // SSE: the store's changes arrive, ids increase, until Ready.
    let mut last_id = 0u64;
    let mut ready = None;
    while let Some(ev) = events.next(READY_TIMEOUT).await {
        let id: u64 = ev
            .id
            .as_deref()
            .expect("every change has an id")
            .parse()
            .expect("numeric id");
        assert!(id > last_id, "ids increase");
        last_id = id;
        assert_eq!(ev.event, "store");
        let s: Value = serde_json::from_str(&ev.data).expect("Store JSON");
        if s["name"] == name.as_str() && s["status"] == "Ready" {
            ready = Some(s);
            break;
        }
    }
    let ready = ready.unwrap_or_else(|| panic!("no Ready event; log:\n{}", server.log()));
    assert!(
        ready["urls"]["storefront"]
            .as_str()
            .is_some_and(|u| u.contains(&name))
    );
    assert!(ready["provisioningSeconds"].as_f64().is_some(), "{ready}");
    acme.post_empty(&format!("{}/retry", store_path(&name)))
        .await
        .assert_problem(409, "conflict");

    // GET one, list with filters and a cursor
    let a = acme.get(&store_path(&name)).await;
    assert_eq!((a.status, &a.json["status"]), (200, &json!("Ready")));
    let a = acme.get("/api/v1/stores?status=Ready&limit=1").await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        a.json
    );
    assert!(a.json.get("nextCursor").is_some());
    let a = admin.get("/api/v1/stores?tenant=acme&status=Ready").await;
    assert!(
        a.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|s| s["name"] == name.as_str())
    );
    let a = admin.get("/api/v1/stores?tenant=globex").await;
    assert!(
        !a.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|s| s["name"] == name.as_str())
    );

    // credentials: 200, no caching, audited
    let a = acme
        .get(&format!("{}/credentials", store_path(&name)))
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert!(a.json["password"].as_str().is_some_and(|p| p.len() >= 12));
    assert_eq!(a.json["username"], "admin");
    assert_eq!(a.header("cache-control"), Some("no-store"));
    let password = a.json["password"].as_str().unwrap_or_default().to_owned();

    // events (the store's trail) and audit, with paging and filters
    let a = acme
        .get(&format!("{}/events?limit=2", store_path(&name)))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json["items"].as_array().map(Vec::len), Some(2));
    let cursor = a.json["nextCursor"]
        .as_str()
        .expect("more pages")
        .to_owned();
    let b = acme
        .get(&format!(
            "{}/events?limit=2&cursor={cursor}",
            store_path(&name)
        ))
        .await;
    assert_eq!(b.status, 200);
    assert_ne!(a.json["items"][0]["id"], b.json["items"][0]["id"]);
    let read = &a.json["items"][0];
    assert_eq!(
        read["action"], "store.credentials.read",
        "newest first: {}",
        a.json
    );
    assert_eq!(read["actor"], "acme-billing");
    assert_eq!(read["sourceIp"], "127.0.0.1");
    let a = acme
        .get("/api/v1/audit?action=store.create&since=2020-01-01T00:00:00Z")
        .await;
    assert_eq!(a.status, 200);
    let items = a.json["items"].as_array().expect("items");
    assert!(
        items
            .iter()
            .all(|e| e["action"] == "store.create" && e["tenant"] == "acme")
    );
    assert!(items.iter().any(|e| e["store"] == name.as_str()));
    let all = admin.get("/api/v1/audit?limit=1000").await.json.to_string();
    assert!(!all.contains(&password), "no password in the audit trail");
    assert!(
        !all.contains(&server.keys.acme),
        "no key in the audit trail"
    );

    // chart and revisions: the chart the release was installed with; helm's history.
    let a = acme.get(&store_path(&name)).await;
    assert_eq!(a.json["chart"]["outdated"], false, "{}", a.json);
    let chart_version = a.json["chart"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        include_str!("../../charts/woocommerce-store/Chart.yaml")
            .contains(&format!("\nversion: {chart_version}\n")),
        "{}",
        a.json
    );
    let a = acme.get(&format!("{}/revisions", store_path(&name))).await;
    assert_eq!(a.status, 200, "{}", a.json);
    let last = a.json["items"]
        .as_array()
        .and_then(|items| items.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (&last["status"], &last["chartVersion"]),
        (&json!("deployed"), &json!(chart_version)),
        "{}",
        a.json
    );

    // usage: the quota's count against the plan, and the volumes; plans: every plan
    let a = acme.get(&format!("{}/usage", store_path(&name))).await;
    assert_eq!(a.status, 200, "{}", a.json);
    let resources = a.json["resources"].as_array().expect("resources");
    let pods = resources
        .iter()
        .find(|r| r["resource"] == "pods")
        .expect("pods");
    assert_eq!(pods["hard"], 10, "the small plan's pods: {}", a.json);
    assert!(pods["used"].as_u64().is_some_and(|n| n >= 2), "{}", a.json);
    assert!(
        a.json["volumes"].as_array().is_some_and(|v| !v.is_empty()),
        "{}",
        a.json
    );
    // PATCH: a plan change, Updating → Ready, and the quota follows; the same plan is a no-op.
    let a = acme
        .patch(&store_path(&name), json!({"plan": "large"}))
        .await;
    assert_eq!(a.status, 202, "{}", a.json);
    assert_eq!(
        (&a.json["status"], &a.json["plan"]),
        (&json!("Updating"), &json!("large"))
    );
    let large = acme.wait_status(&name, "Ready", READY_TIMEOUT).await;
    assert_eq!(large["plan"], "large", "{large}");
    let a = acme.get(&format!("{}/usage", store_path(&name))).await;
    let pods = a.json["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["resource"] == "pods"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(pods["hard"], 40, "the large plan's pods: {}", a.json);
    let a = acme
        .patch(&store_path(&name), json!({"plan": "large"}))
        .await;
    assert_eq!(
        (a.status, &a.json["version"]),
        (202, &large["version"]),
        "{}",
        a.json
    );
    let a = acme
        .patch(&store_path(&name), json!({"plan": "small", "name": "x"}))
        .await;
    a.assert_problem(422, "invalid_spec");
    // If-Match: GET gives the version as an ETag; a stale one is 412 and changes nothing;
    // a malformed one is 422.
    let current = acme.get(&store_path(&name)).await;
    let etag = current
        .headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("ETag on GET")
        .to_owned();
    assert_eq!(etag, format!("\"{}\"", current.json["version"]), "{etag}");
    let stale = format!("\"{}\"", current.json["version"].as_u64().unwrap_or(0) - 1);
    for (path, method) in [
        (store_path(&name), Method::PATCH),
        (format!("{}/suspend", store_path(&name)), Method::POST),
        (store_path(&name), Method::DELETE),
    ] {
        let mut r = acme
            .request(method.clone(), &path)
            .header("if-match", &stale);
        if method == Method::PATCH {
            r = r.json(&json!({"plan": "small"}));
        }
        acme.send(r)
            .await
            .assert_problem(412, "precondition_failed");
    }
    for bad in ["W/\"3\"", "\"x\"", "\"1\", \"2\""] {
        acme.send(
            acme.request(Method::POST, &format!("{}/suspend", store_path(&name)))
                .header("if-match", bad),
        )
        .await
        .assert_problem(422, "invalid_spec");
    }
    let unchanged = acme.get(&store_path(&name)).await;
    assert_eq!(
        (
            &unchanged.json["version"],
            &unchanged.json["plan"],
            &unchanged.json["status"]
        ),
        (&current.json["version"], &json!("large"), &json!("Ready")),
        "a failed precondition changes nothing"
    );
    let a = acme
        .send(
            acme.request(Method::PATCH, &store_path(&name))
                .header("if-match", &etag)
                .json(&json!({"plan": "small"})),
        )
        .await;
    assert_eq!(a.status, 202, "the current version matches: {}", a.json);
    acme.wait_status(&name, "Ready", READY_TIMEOUT).await;

    // suspend / resume: Updating → Ready with suspended set, idempotent; verify refuses a
    // suspended store.
    let a = acme
        .post_empty(&format!("{}/suspend", store_path(&name)))
        .await;
    assert_eq!(a.status, 202, "{}", a.json);
    assert_eq!(
        (&a.json["status"], &a.json["suspended"]),
        (&json!("Updating"), &json!(true)),
        "{}",
        a.json
    );
    let suspended = acme.wait_status(&name, "Ready", READY_TIMEOUT).await;
    assert_eq!(suspended["suspended"], true, "{suspended}");
    let a = acme
        .post_empty(&format!("{}/suspend", store_path(&name)))
        .await;
    assert_eq!(
        (a.status, &a.json["version"]),
        (202, &suspended["version"]),
        "suspending a suspended store changes nothing: {}",
        a.json
    );
    acme.post_empty(&format!("{}/verify", store_path(&name)))
        .await
        .assert_problem(409, "conflict");
    let a = acme
        .post_empty(&format!("{}/resume", store_path(&name)))
        .await;
    assert_eq!(
        (a.status, &a.json["status"], &a.json["suspended"]),
        (202, &json!("Updating"), &json!(false)),
        "{}",
        a.json
    );
    let resumed = acme.wait_status(&name, "Ready", READY_TIMEOUT).await;
    assert_eq!(resumed["suspended"], false, "{resumed}");
    let trail = acme
        .get(&format!("{}/events?limit=100", store_path(&name)))
        .await
        .json
        .to_string();
    assert!(
        trail.contains("store.suspend") && trail.contains("store.resume"),
        "{trail}"
    );

    let a = acme.get("/api/v1/plans").await;
    assert_eq!(a.status, 200, "{}", a.json);
    let plans: Vec<_> = a.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(plans, ["small", "medium", "large"], "{}", a.json);
    assert_eq!(a.json["items"][0]["pods"], 10, "{}", a.json);

    // verify: 200 + a report (no container runs here, so a failed step is reported, not an error)
    let a = acme
        .post_empty(&format!("{}/verify", store_path(&name)))
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert!(
        a.json["ok"].is_boolean() && a.json["steps"].is_array(),
        "{}",
        a.json
    );

    // webhooks: ping 200, bad signature 401 (nothing recorded), good signature → audit event
    let hook = format!("/api/v1/webhooks/woocommerce/{name}");
    let anon = server.anonymous();
    let a = anon
        .send(anon.request(Method::POST, &hook).body("webhook_id=7"))
        .await;
    assert_eq!(a.status, 200);
    let body = br#"{"id":42,"status":"processing"}"#.to_vec();
    let a = anon
        .send(
            anon.request(Method::POST, &hook)
                .header("x-wc-webhook-topic", "order.created")
                .header("x-wc-webhook-signature", "AAAA")
                .header("content-type", "application/json")
                .body(body.clone()),
        )
        .await;
    a.assert_problem(401, "unauthorized");
    let sig = urumi_core::provisioner::sign_webhook(&webhook_secret(&name), &body);
    let a = anon
        .send(
            anon.request(Method::POST, &hook)
                .header("x-wc-webhook-topic", "order.created")
                .header("x-wc-webhook-signature", sig)
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
    let trail = acme
        .get(&format!("{}/events?limit=50", store_path(&name)))
        .await
        .json;
    let hooks: Vec<_> = trail["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .is_some_and(|x| x.starts_with("woocommerce."))
        })
        .collect();
    assert_eq!(
        hooks.len(),
        1,
        "only the signed delivery is recorded: {trail}"
    );
    assert_eq!(hooks[0]["action"], "woocommerce.order.created");

    // operations
    assert_eq!(anon.get("/healthz").await.status, 200);
    assert_eq!(anon.get("/readyz").await.status, 200);
    let spec = anon.get("/openapi.json").await;
    assert_eq!(spec.json["openapi"], "3.1.0");
    let metrics = anon.send(anon.request(Method::GET, "/metrics")).await;
    assert_eq!(metrics.status, 200);
    let text = anon
        .http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .expect("m")
        .text()
        .await
        .expect("t");
    assert!(text.contains("urumi_stores{status=\"Ready\"}"), "{text}");
    assert!(
        text.contains("urumi_store_provisioning_seconds_count"),
        "{text}"
    );
    assert!(text.contains("route=\"/api/v1/stores/{name}\""), "{text}");
    assert!(!text.contains(&name), "no store name in metrics");
    let dash = anon
        .http
        .get(format!("{}/", server.url))
        .send()
        .await
        .expect("dash");
    assert!(
        dash.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html")
    );

    // DELETE → 202 Deleting; then 404, and the feed says `deleted`
    let a = acme.delete(&store_path(&name)).await;
    assert_eq!(a.status, 202, "{}", a.json);
    assert_eq!(a.json["status"], "Deleting");
    let mut saw_deleted = false;
    while let Some(ev) = events.next(support::GONE_TIMEOUT).await {
        if ev.event == "deleted" {
            assert_eq!(
                serde_json::from_str::<Value>(&ev.data).expect("json"),
                json!({"name": name})
            );
            saw_deleted = true;
            break;
        }
    }
    assert!(saw_deleted, "no deleted event; log:\n{}", server.log());
    acme.get(&store_path(&name))
        .await
        .assert_problem(404, "not_found");
    acme.delete(&store_path(&name))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_creates_make_one_store() {
    let server = Server::start();
    let acme = server.client(&server.keys.acme);
    let mut cleanup = Cleanup::default();

    // Same Idempotency-Key: the first 202 replayed, or 409 idempotency_in_progress.
    let name = unique("hk");
    cleanup.add(&name);
    let answers = futures::future::join_all((0..16).map(|_| {
        let c = acme.clone();
        let body = json!({"name": name});
        async move {
            c.send(
                c.request(Method::POST, "/api/v1/stores")
                    .header("idempotency-key", "order-77")
                    .json(&body),
            )
            .await
        }
    }))
    .await;
    let accepted: Vec<_> = answers.iter().filter(|a| a.status == 202).collect();
    assert!(!accepted.is_empty());
    for a in &answers {
        match a.status {
            202 => assert_eq!(a.json, accepted[0].json, "a replay is the first answer"),
            409 => assert_eq!(a.json["code"], "idempotency_in_progress", "{}", a.json),
            other => panic!("unexpected {other}: {}", a.json),
        }
    }
    // After the fact, the same key replays the same 202; another body is a mismatch.
    let again = acme
        .send(
            acme.request(Method::POST, "/api/v1/stores")
                .header("idempotency-key", "order-77")
                .json(&json!({"name": name})),
        )
        .await;
    assert_eq!((again.status, &again.json["name"]), (202, &json!(name)));
    assert_eq!(again.json["createdAt"], accepted[0].json["createdAt"]);
    acme.send(
        acme.request(Method::POST, "/api/v1/stores")
            .header("idempotency-key", "order-77")
            .json(&json!({"name": "other-name"})),
    )
    .await
    .assert_problem(422, "idempotency_mismatch");

    // Same name, no key: exactly one 202, the rest store_exists.
    let race = unique("hr");
    cleanup.add(&race);
    let answers = futures::future::join_all((0..16).map(|_| {
        let c = acme.clone();
        let body = json!({"name": race});
        async move { c.post("/api/v1/stores", body).await }
    }))
    .await;
    assert_eq!(answers.iter().filter(|a| a.status == 202).count(), 1);
    for a in answers.iter().filter(|a| a.status != 202) {
        a.assert_problem(409, "store_exists");
    }
    let listed = server
        .client(&server.keys.admin)
        .get("/api/v1/stores?limit=1000")
        .await;
    let names: Vec<_> = listed.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names.iter().filter(|n| **n == json!(name)).count(), 1);
    assert_eq!(names.iter().filter(|n| **n == json!(race)).count(), 1);
    for n in [&name, &race] {
        acme.wait_status(n, "Ready", READY_TIMEOUT).await;
        assert_eq!(acme.delete(&store_path(n)).await.status, 202);
    }
    for n in [&name, &race] {
        acme.wait_gone(n).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_4xx_problem_and_creates_nothing() {
    let server = Server::start();
    let acme = server.client(&server.keys.acme);
    let c = &acme;
    let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(70 * 1024));
    let post = |ct: &'static str, body: String| {
        c.request(Method::POST, "/api/v1/stores")
            .header("content-type", ct)
            .body(body)
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "empty name",
            post("application/json", r#"{"name":""}"#.into()),
            422,
            "invalid_name",
        ),
        (
            "too short",
            post("application/json", r#"{"name":"ab"}"#.into()),
            422,
            "invalid_name",
        ),
        (
            "too long",
            post(
                "application/json",
                format!(r#"{{"name":"{}"}}"#, "a".repeat(41)),
            ),
            422,
            "invalid_name",
        ),
        (
            "uppercase",
            post("application/json", r#"{"name":"Shop1"}"#.into()),
            422,
            "invalid_name",
        ),
        (
            "leading digit",
            post("application/json", r#"{"name":"1shop"}"#.into()),
            422,
            "invalid_name",
        ),
        (
            "trailing dash",
            post("application/json", r#"{"name":"shop-"}"#.into()),
            422,
            "invalid_name",
        ),
        (
            "reserved",
            post("application/json", r#"{"name":"kube-system"}"#.into()),
            422,
            "invalid_name",
        ),
        (
            "unicode",
            post("application/json", r#"{"name":"shöp"}"#.into()),
            422,
            "invalid_name",
        ),
        (
            "unknown plan",
            post(
                "application/json",
                r#"{"name":"shopx1","plan":"gold"}"#.into(),
            ),
            422,
            "invalid_spec",
        ),
        (
            "unknown engine",
            post(
                "application/json",
                r#"{"name":"shopx2","engine":"magento"}"#.into(),
            ),
            422,
            "invalid_spec",
        ),
        (
            "unknown field",
            post(
                "application/json",
                r#"{"name":"shopx3","size":"xl"}"#.into(),
            ),
            422,
            "invalid_spec",
        ),
        (
            "wrong type",
            post("application/json", r#"{"name":42}"#.into()),
            422,
            "invalid_spec",
        ),
        (
            "array body",
            post("application/json", r#"[]"#.into()),
            422,
            "invalid_spec",
        ),
        (
            "no name",
            post("application/json", r#"{}"#.into()),
            422,
            "invalid_spec",
        ),
        (
            "malformed",
            post("application/json", r#"{"name":"#.into()),
            400,
            "invalid_spec",
        ),
        (
            "empty body",
            post("application/json", String::new()),
            400,
            "invalid_spec",
        ),
        (
            "text body",
            post("text/plain", r#"{"name":"shopx4"}"#.into()),
            415,
            "unsupported_media_type",
        ),
        (
            "form body",
            post("application/x-www-form-urlencoded", "name=shopx5".into()),
            415,
            "unsupported_media_type",
        ),
        (
            "too large",
            post("application/json", big),
            413,
            "payload_too_large",
        ),
        (
            "other tenant",
            post(
                "application/json",
                r#"{"name":"shopx6","tenant":"globex"}"#.into(),
            ),
            403,
            "forbidden",
        ),
        (
            "long idempotency key",
            c.request(Method::POST, "/api/v1/stores")
                .header("idempotency-key", "k".repeat(300))
                .json(&json!({"name":"shopx7"})),
            422,
            "invalid_spec",
        ),
        (
            "bad auth scheme",
            server
                .anonymous()
                .request(Method::POST, "/api/v1/stores")
                .header("authorization", format!("Basic {}", server.keys.acme))
                .json(&json!({"name":"shopx8"})),
            401,
            "unauthorized",
        ),
        (
            "no key",
            server
                .anonymous()
                .request(Method::POST, "/api/v1/stores")
                .json(&json!({"name":"shopx9"})),
            401,
            "unauthorized",
        ),
        (
            "wrong method",
            c.request(Method::PUT, "/api/v1/stores"),
            405,
            "method_not_allowed",
        ),
        (
            "wrong method 2",
            c.request(Method::POST, "/api/v1/stores/shopx1"),
            405,
            "method_not_allowed",
        ),
        (
            "unknown route",
            c.request(Method::GET, "/api/v1/shops"),
            404,
            "not_found",
        ),
        (
            "unknown route 2",
            c.request(Method::GET, "/api/v2/stores"),
            404,
            "not_found",
        ),
        (
            "day-2 route",
            c.request(Method::POST, "/api/v1/rollouts"),
            404,
            "not_found",
        ),
        (
            "bad limit",
            c.request(Method::GET, "/api/v1/stores?limit=-1"),
            422,
            "invalid_spec",
        ),
        (
            "huge limit",
            c.request(Method::GET, "/api/v1/stores?limit=100000"),
            422,
            "invalid_spec",
        ),
        (
            "bad status",
            c.request(Method::GET, "/api/v1/stores?status=ready!"),
            422,
            "invalid_spec",
        ),
        (
            "bad cursor",
            c.request(Method::GET, "/api/v1/stores?cursor=%00nonsense"),
            422,
            "invalid_spec",
        ),
        (
            "bad since",
            c.request(Method::GET, "/api/v1/audit?since=monday"),
            422,
            "invalid_spec",
        ),
        (
            "bad last-event-id",
            c.request(Method::GET, "/api/v1/events")
                .header("last-event-id", "abc"),
            422,
            "invalid_spec",
        ),
        (
            "missing store",
            c.request(Method::GET, "/api/v1/stores/no-such-store"),
            404,
            "not_found",
        ),
        (
            "bad store name in path",
            c.request(Method::GET, "/api/v1/stores/NOT..valid"),
            404,
            "not_found",
        ),
    ];
    for (what, request, status, code) in cases {
        let a = c.send(request).await;
        assert!(a.status < 500, "{what}: 5xx {}", a.json);
        assert_eq!(a.status, status, "{what}: {}", a.json);
        assert_eq!(
            a.header("content-type"),
            Some("application/problem+json"),
            "{what}"
        );
        assert_eq!(a.json["code"], code, "{what}: {}", a.json);
    }
    let listed = server
        .client(&server.keys.admin)
        .get("/api/v1/stores")
        .await;
    assert_eq!(listed.json["items"], json!([]), "nothing was created");
    let audit = server
        .client(&server.keys.admin)
        .get("/api/v1/audit?action=store.create")
        .await;
    assert!(
        audit.json["items"]
            .as_array()
            .is_some_and(|i| i.iter().all(|e| e["outcome"] != "success")),
        "{}",
        audit.json
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_never_reaches_another_tenants_store() {
    let server = Server::start();
    let acme = server.client(&server.keys.acme);
    let globex = server.client(&server.keys.globex);
    let admin = server.client(&server.keys.admin);
    let name = unique("ht");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    let mut globex_feed = globex.sse(None).await;
    assert_eq!(
        acme.post("/api/v1/stores", json!({"name": name}))
            .await
            .status,
        202
    );
    acme.wait_status(&name, "Ready", READY_TIMEOUT).await;

    let p = store_path(&name);
    for (method, path) in [
        (Method::GET, p.clone()),
        (Method::DELETE, p.clone()),
        (Method::POST, format!("{p}/retry")),
        (Method::GET, format!("{p}/credentials")),
        (Method::GET, format!("{p}/events")),
        (Method::GET, format!("{p}/usage")),
        (Method::POST, format!("{p}/verify")),
    ] {
        let a = globex.send(globex.request(method.clone(), &path)).await;
        a.assert_problem(404, "not_found");
        assert!(
            !a.json.to_string().contains("acme"),
            "{method} {path}: {}",
            a.json
        );
    }
    let with_key = globex
        .send(
            globex
                .request(Method::DELETE, &p)
                .header("idempotency-key", "steal-1"),
        )
        .await;
    with_key.assert_problem(404, "not_found");
    let resize = globex.patch(&p, json!({"plan": "large"})).await;
    resize.assert_problem(404, "not_found");
    for action in ["suspend", "resume"] {
        globex
            .post_empty(&format!("{p}/{action}"))
            .await
            .assert_problem(404, "not_found");
    }
    globex
        .get(&format!("{p}/revisions"))
        .await
        .assert_problem(404, "not_found");
    let list = globex.get("/api/v1/stores?tenant=acme").await;
    assert!(!list.json.to_string().contains(&name), "{}", list.json);
    let audit = globex.get("/api/v1/audit?tenant=acme&limit=1000").await;
    assert!(!audit.json.to_string().contains(&name), "{}", audit.json);
    assert!(
        globex_feed.next(Duration::from_secs(2)).await.is_none(),
        "globex's feed shows nothing of acme"
    );
    // Still there, untouched: acme and the admin see it Ready.
    assert_eq!(acme.get(&p).await.json["status"], "Ready");
    assert_eq!(admin.get(&p).await.json["status"], "Ready");
    let trail = admin.get(&format!("{p}/events?limit=100")).await.json;
    assert!(
        !trail.to_string().contains("globex-billing"),
        "no action by globex was recorded: {trail}"
    );
    assert_eq!(admin.delete(&p).await.status, 202);
    acme.wait_gone(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_provisioning_then_every_store_is_ready_and_the_feed_resumes_exactly() {
    let mut server = Server::start();
    let admin = server.client(&server.keys.admin);
    let names: Vec<String> = (0..3).map(|_| unique("hk9")).collect();
    let mut cleanup = Cleanup::default();
    let mut feed = admin.sse(None).await;
    for n in &names {
        cleanup.add(n);
        assert_eq!(
            admin
                .post("/api/v1/stores", json!({"name": n}))
                .await
                .status,
            202
        );
    }
    // Read a few changes, then kill the server while stores are still provisioning.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let ev = feed
            .next(Duration::from_secs(30))
            .await
            .expect("changes before the kill");
        seen.push(ev);
    }
    let first_id: u64 = seen[0].id.as_deref().expect("id").parse().expect("n");
    let last_seen = seen.last().and_then(|e| e.id.clone()).expect("id");
    server.kill9_and_restart();
    drop(feed);
    let admin = server.client(&server.keys.admin);
    for n in &names {
        admin.wait_status(n, "Ready", READY_TIMEOUT).await;
    }
    // Reconnect with Last-Event-ID: every change after it, none twice, in order.
    let mut resumed = admin.sse(Some(&last_seen)).await;
    let mut after = Vec::new();
    while let Some(ev) = resumed.next(Duration::from_secs(3)).await {
        after.push(ev);
    }
    let ids: Vec<u64> = seen
        .iter()
        .chain(after.iter())
        .map(|e| e.id.as_deref().expect("id").parse().expect("n"))
        .collect();
    let unique_ids: HashSet<_> = ids.iter().collect();
    assert_eq!(unique_ids.len(), ids.len(), "no change twice: {ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    // Nothing missed: the full replay from before the first change is the same sequence.
    let mut full = admin.sse(Some(&(first_id - 1).to_string())).await;
    let mut all = Vec::new();
    while let Some(ev) = full.next(Duration::from_secs(3)).await {
        all.push(ev);
    }
    let all_ids: Vec<u64> = all
        .iter()
        .map(|e| e.id.as_deref().expect("id").parse().expect("n"))
        .collect();
    assert_eq!(ids, all_ids, "the resumed client saw every change");
    for n in &names {
        assert!(
            after.iter().any(|e| e.event == "store"
                && e.data.contains(&format!("\"name\":\"{n}\""))
                && e.data.contains("\"status\":\"Ready\"")),
            "{n} reached Ready in the resumed feed"
        );
    }
    // SIGTERM: exit 0; the next start serves the same stores.
    assert_eq!(server.terminate(), Some(0), "log:\n{}", server.log());
    server.restart();
    let admin = server.client(&server.keys.admin);
    for n in &names {
        assert_eq!(admin.get(&store_path(n)).await.json["status"], "Ready");
        assert_eq!(admin.delete(&store_path(n)).await.status, 202);
    }
    for n in &names {
        admin.wait_gone(n).await;
    }
}
