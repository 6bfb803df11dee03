//! No secret leaks: after a run with a forced failure, a retry, credential reads, webhook
//! deliveries (good and forged) and refused requests, every place Urumi writes to is
//! scanned for every generated password, webhook secret and API key.
//!
//! ```text
//!  urumi-server (stores ask for a StorageClass that does not exist yet)
//!    create ─▶ Failed (readiness) ─▶ StorageClass created ─▶ retry ─▶ Ready
//!    credentials read, webhook signed + forged, refused requests, another tenant's probes
//!  secrets: the three API keys + every value of the store's credentials Secret
//!  scanned:  the server's log, every API answer except /credentials, the audit trail, the
//!            change feed (SSE replay), /metrics, the SQLite file and its WAL, helm's stored
//!            values of the release, values files left in the temp dir
//!  ─▶ "secrets found: 0"
//! ```

mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use support::{Cleanup, READY_TIMEOUT, Server, credential_values, kubectl, unique};

/// Keeps an API answer for the scan.
fn keep(answers: &mut Vec<(String, Vec<u8>)>, what: &str, a: &support::Answer) {
    answers.push((what.to_owned(), a.json.to_string().into_bytes()));
}

/// Where a secret was found.
#[derive(Debug)]
struct Hit {
    secret: &'static str,
    source: String,
}

fn scan(hits: &mut Vec<Hit>, secrets: &[(&'static str, String)], source: &str, text: &[u8]) {
    for (what, secret) in secrets {
        if secret.len() >= 8 && text.windows(secret.len()).any(|w| w == secret.as_bytes()) {
            hits.push(Hit {
                secret: what,
                source: source.to_owned(),
            });
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_webhook_secret_or_api_key_is_written_anywhere() {
    let class = unique("urumi-secrets-sc");
    let mut server = Server::prepare("");
    server.provisioner = format!("storageClass = \"{class}\"");
    server.readiness_timeout_secs = 10;
    server.write_config();
    server.spawn();
    let name = unique("sec");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    let acme = server.client(&server.keys.acme);
    let globex = server.client(&server.keys.globex);
    let admin = server.client(&server.keys.admin);
    let path = format!("/api/v1/stores/{name}");
    let mut answers: Vec<(String, Vec<u8>)> = Vec::new();

    // Refused requests, with keys and passwords where a careless log would echo them.
    let a = acme
        .post(
            "/api/v1/stores",
            json!({"name": "Bad_Name", "password": "hunter2-not-a-field"}),
        )
        .await;
    keep(&mut answers, "bad create", &a);
    let forged = server.anonymous();
    let a = forged
        .send(
            forged
                .request(Method::GET, "/api/v1/stores")
                .header("authorization", format!("Bearer {}x", server.keys.acme)),
        )
        .await;
    keep(&mut answers, "wrong key", &a);

    // A store that fails, then is fixed and retried to Ready.
    let a = acme.post("/api/v1/stores", json!({ "name": name })).await;
    assert_eq!(a.status, 202, "{}", a.json);
    keep(&mut answers, "create", &a);
    let failed = acme.wait_status(&name, "Failed", READY_TIMEOUT).await;
    answers.push(("failed".to_owned(), failed.to_string().into_bytes()));
    let out = std::process::Command::new("kubectl")
        .args(["create", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(
                json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                       "metadata": {"name": class}, "provisioner": "kubernetes.io/host-path",
                       "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"})
                .to_string()
                .as_bytes(),
            )?;
            c.wait_with_output()
        })
        .expect("kubectl create storageclass");
    assert!(out.status.success());
    // The fix takes effect once the store's volumes are bound.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let phases = kubectl(&[
            "get",
            "pvc",
            "-n",
            &format!("store-{name}"),
            "-o",
            "jsonpath={.items[*].status.phase}",
        ]);
        if !phases.trim().is_empty() && phases.split_whitespace().all(|p| p == "Bound") {
            break;
        }
        assert!(Instant::now() < deadline, "volumes never bound: {phases}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let a = acme.post_empty(&format!("{path}/retry")).await;
    keep(&mut answers, "retry", &a);
    let ready = acme.wait_status(&name, "Ready", READY_TIMEOUT).await;
    answers.push(("ready".to_owned(), ready.to_string().into_bytes()));

    // Credentials read (the one answer that carries the password), another tenant's
    // probes, webhooks signed and forged.
    let creds = acme.get(&format!("{path}/credentials")).await;
    assert_eq!(creds.status, 200);
    for probe in [
        path.clone(),
        format!("{path}/credentials"),
        format!("{path}/events"),
    ] {
        let a = globex.get(&probe).await;
        assert_eq!(a.status, 404);
        keep(&mut answers, "other tenant", &a);
    }
    let values = credential_values(&name);
    let webhook = values
        .iter()
        .find(|(k, _)| k == "webhook-secret")
        .map(|(_, v)| v.clone())
        .expect("webhook secret");
    let hook = format!("/api/v1/webhooks/woocommerce/{name}");
    let body = br#"{"id":7,"status":"processing"}"#.to_vec();
    for signature in [
        urumi_core::provisioner::sign_webhook(&webhook, &body),
        "Zm9yZ2Vk".to_owned(),
        webhook.clone(), // the secret itself as a signature: refused, and never echoed
    ] {
        let a = forged
            .send(
                forged
                    .request(Method::POST, &hook)
                    .header("x-wc-webhook-topic", "order.created")
                    .header("x-wc-webhook-signature", signature)
                    .header("content-type", "application/json")
                    .body(body.clone()),
            )
            .await;
        keep(&mut answers, "webhook", &a);
    }

    // Everything written: audit, change feed, metrics, stores, helm's stored values.
    for (what, p) in [
        ("audit", "/api/v1/audit?limit=500".to_owned()),
        ("events", format!("{path}/events?limit=200")),
        ("stores", "/api/v1/stores".to_owned()),
    ] {
        let a = admin.get(&p).await;
        keep(&mut answers, what, &a);
    }
    let mut feed = admin.sse(Some("0")).await;
    let mut feed_text = String::new();
    while let Some(ev) = feed.next(Duration::from_secs(2)).await {
        feed_text.push_str(&ev.data);
    }
    assert!(feed_text.contains(&name), "the feed replayed the store");
    answers.push(("change feed".to_owned(), feed_text.into_bytes()));
    let metrics = reqwest::get(format!("{}/metrics", server.url))
        .await
        .expect("metrics")
        .bytes()
        .await
        .expect("metrics body");
    answers.push(("metrics".to_owned(), metrics.to_vec()));
    let helm_values = std::process::Command::new("helm")
        .args([
            "get",
            "values",
            &name,
            "-n",
            &format!("store-{name}"),
            "--all",
            "-o",
            "json",
        ])
        .output()
        .expect("helm get values");
    assert!(helm_values.status.success());
    answers.push(("helm values".to_owned(), helm_values.stdout));
    let a = acme.delete(&path).await;
    keep(&mut answers, "delete", &a);
    acme.wait_gone(&name).await;
    assert_eq!(server.terminate(), Some(0));

    let mut secrets: Vec<(&'static str, String)> = vec![
        ("acme API key", server.keys.acme.clone()),
        ("globex API key", server.keys.globex.clone()),
        ("admin API key", server.keys.admin.clone()),
    ];
    for (k, v) in &values {
        let what: &'static str = match k.as_str() {
            "admin-password" => "admin password",
            "db-password" => "database password",
            "db-root-password" => "database root password",
            "webhook-secret" => "webhook secret",
            _ => continue,
        };
        secrets.push((what, v.clone()));
    }
    assert_eq!(secrets.len(), 7, "three keys and four generated secrets");
    let password = creds.json["password"].as_str().unwrap_or("");
    assert!(
        secrets.iter().any(|(_, s)| s == password),
        "the credentials answer holds the Secret's admin password"
    );

    // The scanner finds what is there: the credentials answer holds the password.
    let mut control = Vec::new();
    scan(
        &mut control,
        &secrets,
        "credentials",
        creds.json.to_string().as_bytes(),
    );
    assert!(
        control.iter().any(|h| h.secret == "admin password"),
        "the scan missed the password in the credentials answer"
    );

    let mut hits = Vec::new();
    let mut sources = 0;
    scan(&mut hits, &secrets, "server log", server.log().as_bytes());
    sources += 1;
    for (what, body) in &answers {
        scan(&mut hits, &secrets, what, body);
        sources += 1;
    }
    let db = server.db_path();
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", db.display());
        if let Ok(bytes) = std::fs::read(&file) {
            scan(&mut hits, &secrets, &file, &bytes);
            sources += 1;
        }
    }
    for entry in std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .flatten()
    {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with("urumi-values-")
            && let Ok(bytes) = std::fs::read(entry.path())
        {
            scan(&mut hits, &secrets, &file, &bytes);
            sources += 1;
        }
    }
    support::report_count(&format!(
        "secrets: found {} ({} secrets × {sources} sources: log, {} answers, state files, \
         helm values)",
        hits.len(),
        secrets.len(),
        answers.len()
    ));
    let leaks: Vec<String> = hits
        .iter()
        .map(|h| format!("{} in {}", h.secret, h.source))
        .collect();
    assert!(leaks.is_empty(), "secrets leaked: {leaks:?}");
    let _ = kubectl(&["delete", "storageclass", &class, "--ignore-not-found"]);
}
