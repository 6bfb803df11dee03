//! Shared by the `lifecycle_*` test binaries: a real cluster, a real state store, a
//! `KubeProvisioner` with short timings, unique store names, and what a user can see of
//! a store in the cluster (namespace, helm releases, volumes).
//!
//! ```text
//!  kube_client()   ── KUBECONFIG from `eval "$(tests/cluster/up)"`, or the test fails
//!  postgres_url()  ── URUMI_TEST_POSTGRES_URL from `eval "$(tests/postgres/up)"`, or it fails
//!  fast_settings() ── ProvisionerSettings: unlimited limits, 3 s leases, 200 ms polls
//!  Cleanup         ── on drop (also on panic): `kubectl delete namespace store-<name>`
//!  report_count()  ── a figure for the end of `tests/all` (the file $URUMI_COUNTS names)
//! ```
#![allow(dead_code)]

mod chart;
// Not every test binary that includes this module packages a chart.
#[allow(unused_imports)]
pub use chart::packaged_store_chart;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim, Secret};
use kube::Client;
use kube::api::{Api, ListParams};
use rand::Rng;
use sqlx::Connection;
use urumi_core::audit::AuditQuery;
use urumi_core::limits::Limits;
use urumi_core::orchestrator::RetryPolicy;
use urumi_core::state::{self, StateStore};
use urumi_core::store::{AuditEvent, Status, Store, TenantId};
use urumi_core::{
    Caller, ErrorKind, KubeProvisioner, Provisioner, ProvisionerSettings, RequestOptions,
};

/// Prints `line` and appends it to the file named by `URUMI_COUNTS` (set by `tests/all`,
/// which prints every suite's counts together at its end).
pub fn report_count(line: &str) {
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("URUMI_COUNTS") {
        use std::io::Write as _;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// How long a store may take to become Ready on the local cluster (it takes ~4 s).
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a store may take to disappear (the namespace controller takes up to ~30 s).
pub const GONE_TIMEOUT: Duration = Duration::from_secs(180);

/// A client of the local cluster; fails the test, naming the script, without one.
pub async fn kube_client() -> Client {
    if std::env::var_os("KUBECONFIG").is_none() {
        panic!(
            "KUBECONFIG is not set: run `eval \"$(tests/cluster/up)\"` from the repository root \
             (it starts the local Kubernetes and puts kubectl and helm on PATH), then run the \
             tests again"
        );
    }
    Client::try_default()
        .await
        .expect("a client from KUBECONFIG (is tests/cluster/up running?)")
}

/// The PostgreSQL server of `tests/postgres/up`; fails the test, naming the script, without it.
pub fn postgres_url() -> String {
    match std::env::var("URUMI_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "URUMI_TEST_POSTGRES_URL is not set: start PostgreSQL with \
             `eval \"$(tests/postgres/up)\"` (from the repository root) and run the tests again"
        ),
    }
}

/// A URL for a fresh, empty schema of its own on the test PostgreSQL server.
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

/// A SQLite state store in a temporary directory (kept alive by the returned guard).
pub async fn sqlite_state() -> (Arc<dyn StateStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("urumi.db").display());
    let store = state::open(&url).await.expect("open a new SQLite store");
    (store, dir)
}

/// `<prefix>-<6 hex>`: unique per run, so tests share the cluster with anything else.
pub fn unique(prefix: &str) -> String {
    let suffix: u32 = rand::rng().random_range(0..0x100_0000);
    format!("{prefix}-{suffix:06x}")
}

/// Settings that keep tests fast: no limits, short leases and polls, no drift repair,
/// quick retries, a bounded namespace deletion. With `URUMI_HELM_RESIDENT` set, helm's
/// work runs in the resident helm (`helmResident`), so the lifecycle suites can be run
/// against either way of running helm.
pub fn fast_settings() -> ProvisionerSettings {
    let mut s = ProvisionerSettings {
        limits: Limits::unlimited(),
        namespace_deletion_timeout_secs: 150,
        helm_resident: std::env::var("URUMI_HELM_RESIDENT")
            .ok()
            .filter(|s| !s.is_empty()),
        ..ProvisionerSettings::default()
    };
    s.orchestrator.concurrency = 4;
    s.orchestrator.lease_ttl = Duration::from_secs(3);
    s.orchestrator.poll_interval = Duration::from_millis(200);
    s.orchestrator.readiness_timeout = Duration::from_secs(90);
    s.orchestrator.resync_interval = Duration::ZERO;
    s.orchestrator.retry = RetryPolicy {
        max_attempts: 8,
        base: Duration::from_millis(300),
        cap: Duration::from_secs(5),
        unavailable_budget: Duration::from_secs(120),
    };
    s
}

/// A provisioner over `state` with `settings`, on the local cluster.
pub async fn provisioner(
    state: Arc<dyn StateStore>,
    settings: ProvisionerSettings,
) -> KubeProvisioner {
    KubeProvisioner::builder(kube_client().await, state)
        .settings(settings)
        .build()
        .expect("build the provisioner")
}

/// The admin caller every test acts as (tenant `acme`).
pub fn admin() -> Caller {
    Caller::admin("lifecycle-test", tenant("acme"))
}

/// A tenant id.
pub fn tenant(t: &str) -> TenantId {
    TenantId::new(t).expect("valid tenant")
}

/// Waits for Ready; on anything else fails with the store's last message and trail.
pub async fn wait_ready(p: &dyn Provisioner, name: &str) -> Store {
    match p.wait(&admin(), name, Status::Ready, READY_TIMEOUT).await {
        Ok(store) => store,
        other => panic!(
            "store {name} did not become Ready: {other:?}\nrecord: {:?}\ntrail:\n{}\n\
             in the cluster:\n{}",
            p.get(&admin(), name).await,
            describe_trail(&trail(p, name).await),
            describe_namespace(name)
        ),
    }
}

/// Requests deletion (a missing store is fine) and waits until the record is gone.
pub async fn delete_and_wait(p: &dyn Provisioner, name: &str) {
    match p.delete(&admin(), name, RequestOptions::default()).await {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return,
        Err(e) => panic!("delete {name}: {e}"),
    }
    if let Err(e) = p.wait_deleted(&admin(), name, GONE_TIMEOUT).await {
        panic!(
            "store {name} was not deleted: {e}\nrecord: {:?}",
            p.get(&admin(), name).await
        );
    }
}

/// The store's audit trail, oldest first (every page).
pub async fn trail(p: &dyn Provisioner, name: &str) -> Vec<AuditEvent> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = match p
            .events(
                &admin(),
                name,
                AuditQuery {
                    limit: Some(1000),
                    cursor: cursor.take(),
                    ..Default::default()
                },
            )
            .await
        {
            Ok(page) => page,
            Err(e) if e.kind() == ErrorKind::NotFound => break,
            Err(e) => panic!("audit trail of {name}: {e}"),
        };
        all.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    all.reverse();
    all
}

/// Workloads, pods, releases and events of the store's namespace (`kubectl`, `helm`),
/// for failure messages.
pub fn describe_namespace(name: &str) -> String {
    let ns = namespace_of(name);
    let run = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .map(|o| {
                format!(
                    "$ {program} {}\n{}{}",
                    args.join(" "),
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_else(|e| format!("{program}: {e}"))
    };
    [
        run(
            "kubectl",
            &[
                "get",
                "deploy,rs,sts,job,pods,pvc,resourcequota",
                "-n",
                &ns,
                "-o",
                "wide",
            ],
        ),
        run(
            "kubectl",
            &["get", "events", "-n", &ns, "--sort-by=.lastTimestamp"],
        ),
        run("helm", &["history", name, "-n", &ns]),
    ]
    .join("\n")
}

/// One line per event, for failure messages.
pub fn describe_trail(events: &[AuditEvent]) -> String {
    events
        .iter()
        .map(|e| format!("  {} {} {} {}", e.at, e.action, e.outcome, e.detail))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The namespace of store `name` (`store-<name>`).
pub fn namespace_of(name: &str) -> String {
    format!("store-{name}")
}

/// The store's namespace, if it exists (in any phase).
pub async fn namespace(client: &Client, name: &str) -> Option<Namespace> {
    Api::<Namespace>::all(client.clone())
        .get_opt(&namespace_of(name))
        .await
        .expect("read namespace")
}

/// Every namespace labelled as store `name`'s.
pub async fn namespaces_labelled(client: &Client, name: &str) -> Vec<String> {
    Api::<Namespace>::all(client.clone())
        .list(&ListParams::default().labels(&format!("urumi.dev/store={name}")))
        .await
        .expect("list namespaces")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect()
}

/// One row of `helm list -o json`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct HelmRow {
    /// Release name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Revision, as helm prints it (a string).
    pub revision: String,
    /// `deployed`, `failed`, `pending-install`, …
    pub status: String,
}

/// `helm list -n <namespace> --all -o json`: every release in the namespace, any status.
pub async fn helm_list(namespace: &str) -> Vec<HelmRow> {
    let out = tokio::process::Command::new("helm")
        .args(["list", "-n", namespace, "--all", "-o", "json"])
        .output()
        .await
        .expect("run helm (is tests/cluster/up's PATH exported?)");
    assert!(
        out.status.success(),
        "helm list -n {namespace}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "helm list output ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The store's credentials Secret (`<name>-credentials`), if it exists.
pub async fn credentials_secret(client: &Client, name: &str) -> Option<Secret> {
    Api::<Secret>::namespaced(client.clone(), &namespace_of(name))
        .get_opt(&format!("{name}-credentials"))
        .await
        .expect("read secret")
}

/// Every value of a Secret, as strings.
pub fn secret_values(secret: &Secret) -> Vec<(String, String)> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect()
}

/// What is left of store `name` in the cluster: namespaces labelled as its, its
/// namespace, releases, PVCs in its namespace, PVs bound to its namespace. Empty: nothing.
pub async fn leftovers(client: &Client, name: &str) -> Vec<String> {
    let ns = namespace_of(name);
    let mut left = Vec::new();
    if let Some(n) = namespace(client, name).await {
        left.push(format!(
            "namespace {ns} ({:?})",
            n.status.and_then(|s| s.phase)
        ));
    }
    for other in namespaces_labelled(client, name).await {
        if other != ns {
            left.push(format!("namespace {other} labelled urumi.dev/store={name}"));
        }
    }
    for r in helm_list(&ns).await {
        left.push(format!("helm release {} ({})", r.name, r.status));
    }
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("list PVCs");
    for pvc in pvcs.items {
        left.push(format!("pvc {}", pvc.metadata.name.unwrap_or_default()));
    }
    let pvs = Api::<PersistentVolume>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("list PVs");
    for pv in pvs.items {
        let bound_ns = pv
            .spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .and_then(|c| c.namespace.clone());
        if bound_ns.as_deref() == Some(ns.as_str()) {
            left.push(format!("pv {}", pv.metadata.name.unwrap_or_default()));
        }
    }
    left
}

/// [`leftovers`], polled for up to 30 s until nothing is left: the PV controller
/// deletes a released volume asynchronously, after the namespace is gone.
pub async fn leftovers_after_grace(client: &Client, name: &str) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = leftovers(client, name).await;
        if left.is_empty() || tokio::time::Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Deletes the namespaces of the named stores when dropped, even when the test panicked,
/// so a failed test leaves nothing running on the shared cluster (the helm release's
/// records live in the namespace and go with it).
#[derive(Debug, Default)]
pub struct Cleanup(pub Vec<String>);

impl Cleanup {
    /// Remembers store `name` for cleanup.
    pub fn add(&mut self, name: &str) {
        self.0.push(name.to_owned());
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let namespaces: Vec<String> = self.0.iter().map(|n| namespace_of(n)).collect();
        let _ = std::process::Command::new("kubectl")
            .args(["delete", "namespace", "--ignore-not-found", "--wait=false"])
            .args(&namespaces)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Fails if anything a tenant reads about `name` — its record's message, its audit
/// trail, its changes in the feed — carries an URL, the API server's address, a file
/// path, a host:port, or a line of helm's stderr.
pub async fn assert_tenant_safe(p: &dyn Provisioner, name: &str) {
    use futures::StreamExt;
    let mut texts = Vec::new();
    if let Ok(store) = p.get(&admin(), name).await {
        texts.push(("message".to_owned(), store.message));
    }
    for e in trail(p, name).await {
        texts.push((format!("audit {}", e.action), e.detail));
    }
    let mut feed = p.changes(&admin(), Some(0));
    while let Ok(Some(Ok(change))) =
        tokio::time::timeout(Duration::from_millis(300), feed.next()).await
    {
        if change.store.name.as_str() == name {
            texts.push((format!("change {}", change.seq), change.store.message));
        }
    }
    let api_server = std::env::var("KUBECONFIG")
        .ok()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|config| {
            config.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("server:")
                    .map(|s| s.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "https://127.0.0.1".to_owned());
    let host = api_server.trim_start_matches("https://").to_owned();
    let forbidden = [
        "://",
        "/tmp/",
        "/root/",
        "/var/",
        "/work/",
        "127.0.0.1:",
        "Error:",
        "FAILED",
        "stderr",
    ];
    assert!(!texts.is_empty(), "nothing to check for {name}");
    for (what, text) in &texts {
        assert!(!text.contains(&host), "{what} shows the API server: {text}");
        for f in forbidden {
            assert!(!text.contains(f), "{what} contains {f:?}: {text}");
        }
    }
}
