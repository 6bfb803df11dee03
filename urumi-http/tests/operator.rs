//! Operator mode against the real cluster: `urumi-server --operator` reconciling `Store`
//! objects applied with kubectl.
//!
//! ```text
//!  CRD from charts/urumi/crds ─▶ kubectl apply ─▶ namespace op-<hex> (labelled urumi.dev/tenant)
//!  urumi-server (operator = true, SQLite) ─▶ kubectl apply Store ─▶ kubectl wait condition=Ready
//!    ─▶ the API shows managedBy; an API delete is 409 managed_externally
//!    ─▶ kubectl delete Store: finalizer ─▶ namespace, release, record gone
//! ```
//!
//! One operator at a time reconciles every namespace, so the tests take a lock; each
//! test's namespaces are removed on drop (finalizers stripped first), also on panic.
//! Timings are printed (`--nocapture`), never asserted.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{READY_TIMEOUT, Server, releases_in, unique};

/// One operator on the cluster at a time.
static OPERATOR: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../charts/urumi/crds/stores.urumi.dev.yaml"
);

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn kubectl(args: &[&str]) -> Out {
    kubectl_in(args, None)
}

fn kubectl_in(args: &[&str], stdin: Option<&str>) -> Out {
    let mut child = Command::new("kubectl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl on PATH (eval \"$(tests/cluster/up)\")");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().expect("kubectl");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn install_crd() {
    let out = kubectl(&["apply", "-f", CRD]);
    assert!(out.ok, "CRD: {}", out.stderr);
    let out = kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/stores.urumi.dev",
        "--timeout=30s",
    ]);
    assert!(out.ok, "CRD not established: {}", out.stderr);
}

fn store_yaml(name: &str, namespace: &str, plan: Option<&str>) -> String {
    let spec = plan.map_or("{}".to_owned(), |p| format!("{{plan: {p}}}"));
    format!(
        "apiVersion: urumi.dev/v1alpha1\nkind: Store\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec: {spec}\n"
    )
}

/// A namespace for Store objects; on drop, its Stores lose their finalizers and it goes,
/// with the store namespaces of `stores`.
struct Tenancy {
    name: String,
    stores: Vec<String>,
}

impl Tenancy {
    fn new(tenant: Option<&str>) -> Tenancy {
        let name = unique("op");
        let out = kubectl(&["create", "namespace", &name]);
        assert!(out.ok, "namespace: {}", out.stderr);
        if let Some(t) = tenant {
            let label = format!("urumi.dev/tenant={t}");
            let out = kubectl(&["label", "namespace", &name, &label]);
            assert!(out.ok, "label: {}", out.stderr);
        }
        Tenancy {
            name,
            stores: Vec::new(),
        }
    }

    fn apply(&mut self, name: &str, plan: Option<&str>) -> Out {
        self.stores.push(name.to_owned());
        kubectl_in(
            &["apply", "-f", "-"],
            Some(&store_yaml(name, &self.name, plan)),
        )
    }

    fn object(&self, name: &str) -> Option<Value> {
        let out = kubectl(&["get", "store", name, "-n", &self.name, "-o", "json"]);
        out.ok
            .then(|| serde_json::from_str(&out.stdout).expect("store json"))
    }

    /// Polls until the object's status.phase is `phase`.
    async fn wait_phase(&self, name: &str, phase: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(obj) = self.object(name)
                && obj["status"]["phase"] == phase
            {
                return obj;
            }
            assert!(
                Instant::now() < deadline,
                "Store {name} not {phase} in time: {:?}",
                self.object(name).map(|o| o["status"].clone())
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    fn wait_ready(&self, names: &[String], timeout: Duration) -> Out {
        let mut args = vec![
            "wait".to_owned(),
            "-n".to_owned(),
            self.name.clone(),
            "--for=condition=Ready".to_owned(),
            format!("--timeout={}s", timeout.as_secs()),
        ];
        args.extend(names.iter().map(|n| format!("store/{n}")));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        kubectl(&refs)
    }

    fn event_reasons(&self, name: &str) -> Vec<String> {
        let selector = format!("involvedObject.name={name},involvedObject.kind=Store");
        let out = kubectl(&[
            "get",
            "events",
            "-n",
            &self.name,
            "--field-selector",
            &selector,
            "-o",
            "jsonpath={range .items[*]}{.reason}{\"\\n\"}{end}",
        ]);
        out.stdout.lines().map(str::to_owned).collect()
    }
}

impl Drop for Tenancy {
    fn drop(&mut self) {
        for store in &self.stores {
            let _ = kubectl(&[
                "patch",
                "store",
                store,
                "-n",
                &self.name,
                "--type=merge",
                "-p",
                r#"{"metadata":{"finalizers":[]}}"#,
            ]);
            let _ = kubectl(&[
                "delete",
                "namespace",
                &format!("store-{store}"),
                "--wait=false",
                "--ignore-not-found",
            ]);
        }
        let _ = kubectl(&[
            "delete",
            "namespace",
            &self.name,
            "--wait=false",
            "--ignore-not-found",
        ]);
    }
}

fn operator_server(stores_per_tenant: u32) -> Server {
    install_crd();
    let mut server = Server::prepare("");
    server.top = "operator = true".to_owned();
    server.stores_per_tenant = stores_per_tenant;
    server.write_config();
    server.spawn();
    server
}

fn namespace_exists(name: &str) -> bool {
    kubectl(&["get", "namespace", name]).ok
}

/// `apiserver_request_total` for group urumi.dev, by "VERB subresource".
fn store_api_requests() -> HashMap<String, f64> {
    let out = kubectl(&["get", "--raw", "/metrics"]);
    let mut counts = HashMap::new();
    for line in out.stdout.lines() {
        if !line.starts_with("apiserver_request_total{") || !line.contains("group=\"urumi.dev\"") {
            continue;
        }
        let label = |key: &str| {
            line.split(&format!("{key}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or("")
                .to_owned()
        };
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let key = format!("{} {}", label("verb"), label("subresource"))
            .trim()
            .to_owned();
        *counts.entry(key).or_insert(0.0) += value;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_store_goes_ready_shows_its_url_and_its_deletion_leaves_nothing() {
    let _one = OPERATOR.lock().await;
    let server = operator_server(100_000);
    let mut ns = Tenancy::new(Some("acme"));
    let name = unique("opa");
    let start = Instant::now();
    let out = ns.apply(&name, Some("small"));
    assert!(out.ok, "apply: {}", out.stderr);
    let out = ns.wait_ready(std::slice::from_ref(&name), READY_TIMEOUT);
    assert!(out.ok, "kubectl wait: {}{}", out.stdout, out.stderr);
    println!(
        "operator: apply → condition Ready for 1 Store: {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let out = kubectl(&["get", "stores", "-n", &ns.name]);
    assert!(out.stdout.contains("Ready"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("http://{name}.")),
        "no URL column: {}",
        out.stdout
    );
    let obj = ns.object(&name).expect("the object");
    assert_eq!(obj["status"]["observedGeneration"], 1);
    assert_eq!(
        obj["metadata"]["finalizers"],
        serde_json::json!(["urumi.dev/store"])
    );
    let reasons = ns.event_reasons(&name);
    for want in ["Accepted", "Namespace", "Release", "Readiness", "Ready"] {
        assert!(
            reasons.iter().any(|r| r == want),
            "no {want} Event: {reasons:?}"
        );
    }

    // The HTTP door sees it as managed, and may not delete it.
    let acme = server.client(&server.keys.acme);
    let manager = format!("Store {}/{name}", ns.name);
    let a = acme.get(&format!("/api/v1/stores/{name}")).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json["managedBy"], manager.as_str());
    let a = acme.delete(&format!("/api/v1/stores/{name}")).await;
    a.assert_problem(409, "managed_externally");
    assert!(
        a.json["detail"].as_str().unwrap_or("").contains(&manager),
        "{}",
        a.json
    );
    let a = acme
        .patch(&format!("/api/v1/stores/{name}"), json!({"plan": "large"}))
        .await;
    a.assert_problem(409, "managed_externally");

    // Editing spec.plan changes the store's plan: Ready on medium, PlanApplied True.
    let start = Instant::now();
    let out = ns.apply(&name, Some("medium"));
    assert!(out.ok, "apply medium: {}", out.stderr);
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let obj = ns.object(&name).expect("the object");
        let applied = obj["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["type"] == "PlanApplied" && c["status"] == "True" && c["observedGeneration"] == 2
            });
        if applied && obj["status"]["phase"] == "Ready" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "plan not applied: {}",
            obj["status"]
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    println!(
        "operator: spec.plan small → medium → PlanApplied: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let a = acme.get(&format!("/api/v1/stores/{name}")).await;
    assert_eq!(
        (&a.json["plan"], &a.json["status"]),
        (&json!("medium"), &json!("Ready"))
    );
    let out = kubectl(&[
        "get",
        "resourcequota",
        "urumi-quota",
        "-n",
        &format!("store-{name}"),
        "-o",
        "jsonpath={.spec.hard.pods}",
    ]);
    assert_eq!(
        out.stdout, "20",
        "the quota follows the plan: {}",
        out.stderr
    );

    // A claim of 15Gi fits medium's 20Gi but not small's 10Gi: spec.plan small is refused
    // (a Warning Event with the numbers, PlanApplied False) and the store stays on medium.
    let claim = format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: media, namespace: store-{name}}}\n\
         spec: {{accessModes: [ReadWriteOnce], storageClassName: urumi-test-unbound, \
         resources: {{requests: {{storage: 15Gi}}}}}}\n"
    );
    let out = kubectl_in(&["apply", "-f", "-"], Some(&claim));
    assert!(out.ok, "claim: {}", out.stderr);
    let out = ns.apply(&name, Some("small"));
    assert!(out.ok, "apply small: {}", out.stderr);
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let refused = ns.event_reasons(&name).iter().any(|r| r == "PlanTooSmall");
        let obj = ns.object(&name).expect("the object");
        let not_applied = obj["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["type"] == "PlanApplied" && c["status"] == "False" && c["observedGeneration"] == 3
            });
        if refused && not_applied {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no refusal: {} {:?}",
            obj["status"],
            ns.event_reasons(&name)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let a = acme.get(&format!("/api/v1/stores/{name}")).await;
    assert_eq!(
        (&a.json["plan"], &a.json["status"]),
        (&json!("medium"), &json!("Ready"))
    );

    // spec.suspended: true suspends the store (condition Suspended True), false resumes it;
    // the API may not do it for the object.
    acme.post_empty(&format!("/api/v1/stores/{name}/suspend"))
        .await
        .assert_problem(409, "managed_externally");
    for (suspended, generation) in [(true, 4), (false, 5)] {
        let start = Instant::now();
        let patch = format!("{{\"spec\":{{\"suspended\":{suspended}}}}}");
        let out = kubectl(&[
            "patch",
            "store",
            &name,
            "-n",
            &ns.name,
            "--type=merge",
            "-p",
            &patch,
        ]);
        assert!(out.ok, "patch suspended={suspended}: {}", out.stderr);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let obj = ns.object(&name).expect("the object");
            let condition = obj["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| {
                    c["type"] == "Suspended"
                        && c["status"] == if suspended { "True" } else { "False" }
                        && c["observedGeneration"] == generation
                });
            if condition && obj["status"]["phase"] == "Ready" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "suspended={suspended} not applied: {}",
                obj["status"]
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let a = acme.get(&format!("/api/v1/stores/{name}")).await;
        assert_eq!(
            (&a.json["suspended"], &a.json["status"]),
            (&json!(suspended), &json!("Ready")),
            "{}",
            a.json
        );
        println!(
            "operator: spec.suspended {suspended} → Ready: {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }

    let start = Instant::now();
    let out = kubectl(&["delete", "store", &name, "-n", &ns.name, "--timeout=240s"]);
    assert!(out.ok, "delete: {}", out.stderr);
    println!(
        "operator: kubectl delete → object gone: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert!(
        !namespace_exists(&format!("store-{name}")),
        "namespace left"
    );
    assert!(
        releases_in(&format!("store-{name}")).is_empty(),
        "release left"
    );
    assert_eq!(
        acme.get(&format!("/api/v1/stores/{name}")).await.status,
        404
    );
    assert!(ns.object(&name).is_none(), "object left");
}

#[tokio::test]
async fn the_api_server_refuses_a_bad_name_or_plan_with_the_rules_message() {
    support::require_cluster();
    install_crd();
    let mut ns = Tenancy::new(Some("acme"));
    for (name, plan, message) in [
        ("admin", None, "the store name is reserved"),
        ("kube-shop", None, "the store name is reserved"),
        ("ab", None, "the store name must be 3 to 40 characters"),
        (
            "a-store-name-that-is-much-longer-than-forty",
            None,
            "the store name must be 3 to 40 characters",
        ),
        ("9shop", None, "must start with a lowercase letter"),
        (
            "shop-ok",
            Some("huge"),
            "plan must be one of small, medium, large",
        ),
    ] {
        let out = ns.apply(name, plan);
        assert!(!out.ok, "{name} ({plan:?}) was accepted");
        assert!(
            out.stderr.contains(message),
            "{name}: {message:?} not in {}",
            out.stderr
        );
        assert!(ns.object(name).is_none(), "{name} exists");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_in_an_unlabelled_namespace_changes_nothing_and_says_why() {
    let _one = OPERATOR.lock().await;
    let server = operator_server(100_000);
    let mut ns = Tenancy::new(None);
    let name = unique("opn");
    assert!(ns.apply(&name, None).ok);
    let obj = ns
        .wait_phase(&name, "Ignored", Duration::from_secs(30))
        .await;
    let message = obj["status"]["message"].as_str().unwrap_or("");
    assert!(message.contains("urumi.dev/tenant"), "{message}");
    assert!(
        obj["metadata"]["finalizers"].is_null(),
        "a finalizer was added: {}",
        obj["metadata"]
    );
    assert!(ns.event_reasons(&name).iter().any(|r| r == "NoTenant"));
    let admin = server.client(&server.keys.admin);
    assert_eq!(
        admin.get(&format!("/api/v1/stores/{name}")).await.status,
        404
    );
    assert!(!namespace_exists(&format!("store-{name}")));
    // With no finalizer, the object goes at once.
    let out = kubectl(&["delete", "store", &name, "-n", &ns.name, "--timeout=20s"]);
    assert!(out.ok, "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_mid_provisioning_resumes_to_ready_with_one_release() {
    let _one = OPERATOR.lock().await;
    let mut server = operator_server(100_000);
    let mut ns = Tenancy::new(Some("acme"));
    let name = unique("opk");
    assert!(ns.apply(&name, None).ok);
    ns.wait_phase(&name, "Provisioning", Duration::from_secs(60))
        .await;
    server.kill9_and_restart();
    let out = ns.wait_ready(std::slice::from_ref(&name), READY_TIMEOUT);
    assert!(out.ok, "kubectl wait: {}{}", out.stdout, out.stderr);
    let releases = releases_in(&format!("store-{name}"));
    assert_eq!(releases.len(), 1, "{releases:?}");
    assert_eq!(releases[0]["status"], "deployed", "{releases:?}");
    let out = kubectl(&["delete", "store", &name, "-n", &ns.name, "--timeout=240s"]);
    assert!(out.ok, "delete: {}", out.stderr);
    assert!(!namespace_exists(&format!("store-{name}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_stores_applied_at_once_are_each_provisioned_once() {
    let _one = OPERATOR.lock().await;
    let server = operator_server(100_000);
    let mut ns = Tenancy::new(Some("acme"));
    let names: Vec<String> = (0..20).map(|_| unique("opt")).collect();
    let yaml: Vec<String> = names
        .iter()
        .map(|n| store_yaml(n, &ns.name, None))
        .collect();
    ns.stores.extend(names.iter().cloned());
    let before = store_api_requests();
    let start = Instant::now();
    let out = kubectl_in(&["apply", "-f", "-"], Some(&yaml.join("---\n")));
    assert!(out.ok, "apply: {}", out.stderr);
    let out = ns.wait_ready(&names, Duration::from_secs(400));
    assert!(out.ok, "kubectl wait: {}{}", out.stdout, out.stderr);
    println!(
        "operator: apply → condition Ready for 20 Stores: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let after = store_api_requests();
    let mut per_store: Vec<String> = after
        .iter()
        .map(|(k, v)| (k, v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d > 0.0)
        .map(|(k, d)| format!("{k}: {:.1}", d / 20.0))
        .collect();
    per_store.sort();
    let events: usize = names.iter().map(|n| ns.event_reasons(n).len()).sum();
    println!(
        "operator: API requests on stores.urumi.dev per store, create → Ready: {}; Events per store: {:.1}",
        per_store.join(", "),
        events as f64 / 20.0
    );

    let admin = server.client(&server.keys.admin);
    for name in &names {
        let releases = releases_in(&format!("store-{name}"));
        assert_eq!(releases.len(), 1, "{name}: {releases:?}");
        assert_eq!(releases[0]["revision"], "1", "{name} released twice");
        let trail = admin
            .get(&format!("/api/v1/stores/{name}/events?limit=100"))
            .await;
        let creates = trail.json["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|e| e["action"] == "store.create")
                    .count()
            })
            .unwrap_or(0);
        assert_eq!(creates, 1, "{name}: {}", trail.json);
    }
    let start = Instant::now();
    let out = kubectl(&[
        "delete",
        "stores",
        "--all",
        "-n",
        &ns.name,
        "--timeout=400s",
    ]);
    assert!(out.ok, "delete: {}", out.stderr);
    println!(
        "operator: kubectl delete of 20 Stores → all gone: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    for name in &names {
        assert!(!namespace_exists(&format!("store-{name}")), "{name} left");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_limit_holds_across_the_api_and_store_objects() {
    let _one = OPERATOR.lock().await;
    const CAP: usize = 8;
    let server = operator_server(CAP as u32);
    let mut ns = Tenancy::new(Some("acme"));
    let objects: Vec<String> = (0..6).map(|_| unique("opl")).collect();
    let api_names: Vec<String> = (0..6).map(|_| unique("apl")).collect();
    let mut cleanup = support::Cleanup::default();
    for n in &api_names {
        cleanup.add(n);
    }
    ns.stores.extend(objects.iter().cloned());
    let yaml: Vec<String> = objects
        .iter()
        .map(|n| store_yaml(n, &ns.name, None))
        .collect();
    let acme = server.client(&server.keys.acme);
    let apply = tokio::task::spawn_blocking(move || {
        kubectl_in(&["apply", "-f", "-"], Some(&yaml.join("---\n")))
    });
    let posts = futures::future::join_all(api_names.iter().map(|n| {
        let acme = acme.clone();
        let n = n.clone();
        async move {
            acme.post("/api/v1/stores", serde_json::json!({ "name": n }))
                .await
        }
    }))
    .await;
    assert!(apply.await.expect("apply").ok);
    let mut accepted = 0;
    for p in &posts {
        match p.status {
            202 => accepted += 1,
            _ => p.assert_problem(429, "quota_exceeded"),
        }
    }
    // Every object ends accepted (a store) or refused for the limit.
    for name in &objects {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let obj = ns.object(name).expect("object");
            let phase = obj["status"]["phase"].as_str().unwrap_or("").to_owned();
            if phase == "Refused" {
                let failed = obj["status"]["conditions"]
                    .as_array()
                    .and_then(|c| c.iter().find(|c| c["type"] == "Failed"))
                    .cloned()
                    .unwrap_or_default();
                assert_eq!(failed["reason"], "QuotaExceeded", "{}", obj["status"]);
                break;
            }
            if !phase.is_empty() && phase != "Ignored" {
                accepted += 1;
                break;
            }
            assert!(Instant::now() < deadline, "{name}: {}", obj["status"]);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let admin = server.client(&server.keys.admin);
    let listed = admin.get("/api/v1/stores?limit=100").await;
    let stores = listed.json["items"].as_array().map_or(0, Vec::len);
    println!("limit {CAP}: {accepted} accepted of 12 (6 objects, 6 API), {stores} stores");
    assert_eq!(accepted, CAP, "accepted across both doors");
    assert_eq!(stores, CAP, "{}", listed.json);
}
