//! The store lifecycle through `KubeProvisioner` against the local cluster (real API
//! server, controllers, helm; KWOK runs the pods), with SQLite state:
//!
//! ```text
//!  eval "$(tests/cluster/up)"
//!  cargo test -p urumi-core --test lifecycle_cluster -- --nocapture
//! ```
//!
//! create → Ready with every object checked; every step idempotent; a release the API
//! server refuses → Failed → fixed → retry → Ready; delete leaves nothing; bad input
//! creates nothing. Every test uses its own store names and deletes what it made, so the
//! tests run in parallel with each other and with others on the same cluster. Without
//! KUBECONFIG they fail (never skip).

mod lifecycle_support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Client;
use kube::api::{Api, ListParams};
use lifecycle_support::*;
use urumi_core::audit::Outcome;
use urumi_core::engine::{Engine, EngineSettings, Engines, WooCommerce, Workload};
use urumi_core::guardrails::quantity::{bytes, cpu_millis};
use urumi_core::guardrails::{
    CredentialsLayout, Guardrails, GuardrailsConfig, NetworkProfile, STORE_LABEL, StoreContext,
};
use urumi_core::helm::{
    HelmCli, HelmDriver, HelmError, Release, ReleaseStatus, Revision, UpgradeOptions,
};
use urumi_core::limits::Limits;
use urumi_core::orchestrator::{KubeRuntime, KubeRuntimeSettings, ReadinessWatcher, StoreRuntime};
use urumi_core::provisioner::CreateOptions;
use urumi_core::store::{EngineId, Plan, Plans, Status, Step, StoreName, Urls};
use urumi_core::{Caller, CreateStore, ErrorKind, Provisioner, RequestOptions};

/// The NetworkPolicies every WooCommerce store gets (no extra egress is configured).
const POLICIES: &[&str] = &[
    "urumi-default-deny",
    "urumi-allow-ingress-controller",
    "urumi-allow-db",
    "urumi-allow-egress-dns",
    "urumi-allow-egress-db",
    "urumi-allow-egress-internet",
];

async fn create(p: &dyn Provisioner, name: &str, plan: Plan) {
    p.create(
        &admin(),
        CreateStore::named(name).plan(plan.as_str()),
        CreateOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("create {name}: {e}"));
}

fn label<'a>(ns: &'a Namespace, key: &str) -> Option<&'a str> {
    ns.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_store_becomes_ready_with_every_object_in_place() {
    let client = kube_client().await;
    let (state, _dir) = sqlite_state().await;
    let p = provisioner(state, fast_settings()).await;
    let name = unique("lc-ready");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    let ns_name = namespace_of(&name);
    let plan = Plan::Medium;

    create(&p, &name, plan).await;
    let store = wait_ready(&p, &name).await;

    // The record, as the HTTP API shows it.
    let json = serde_json::to_value(&store).expect("store as JSON");
    assert_eq!(json["status"], "Ready", "{json}");
    assert_eq!(json["step"], "done", "{json}");
    assert_eq!(json["attempts"], 1, "{json}");
    assert_eq!(json["namespace"], ns_name.as_str(), "{json}");
    assert_eq!(
        json["urls"]["storefront"],
        format!("http://{name}.127.0.0.1.nip.io"),
        "{json}"
    );
    assert_eq!(
        json["urls"]["admin"],
        format!("http://{name}.127.0.0.1.nip.io/wp-admin/"),
        "{json}"
    );
    assert!(json["readyAt"].is_string(), "readyAt missing: {json}");
    let seconds = json["provisioningSeconds"].as_f64().expect("seconds");
    assert!(seconds > 0.0, "provisioningSeconds {seconds}");

    // The namespace: labels and Pod Security.
    let ns = namespace(&client, &name).await.expect("namespace exists");
    assert_eq!(label(&ns, "app.kubernetes.io/managed-by"), Some("urumi"));
    assert_eq!(label(&ns, "urumi.dev/store"), Some(name.as_str()));
    assert_eq!(label(&ns, "urumi.dev/tenant"), Some("acme"));
    assert_eq!(
        label(&ns, "pod-security.kubernetes.io/enforce"),
        Some("baseline")
    );
    assert_eq!(
        namespaces_labelled(&client, &name).await,
        vec![ns_name.clone()]
    );

    // The quota is the plan's, value for value.
    let size = Plans::default().size(plan).clone();
    let quota = Api::<ResourceQuota>::namespaced(client.clone(), &ns_name)
        .get("urumi-quota")
        .await
        .expect("quota");
    let hard = quota.spec.and_then(|s| s.hard).expect("quota hard");
    let cpu = |k: &str| cpu_millis(&hard[k].0).expect("cpu quantity");
    let mem = |k: &str| bytes(&hard[k].0).expect("byte quantity");
    assert_eq!(
        cpu("requests.cpu"),
        cpu_millis(&size.cpu_request).expect("plan")
    );
    assert_eq!(
        cpu("limits.cpu"),
        cpu_millis(&size.cpu_limit).expect("plan")
    );
    assert_eq!(
        mem("requests.memory"),
        bytes(&size.memory_request).expect("plan")
    );
    assert_eq!(
        mem("limits.memory"),
        bytes(&size.memory_limit).expect("plan")
    );
    assert_eq!(mem("requests.storage"), bytes(&size.storage).expect("plan"));
    assert_eq!(hard["pods"].0, size.pods.to_string());
    assert_eq!(hard["persistentvolumeclaims"].0, size.pvcs.to_string());

    // LimitRange and NetworkPolicies.
    let lr = Api::<LimitRange>::namespaced(client.clone(), &ns_name)
        .get("urumi-limits")
        .await
        .expect("limit range");
    assert!(
        !lr.spec.map(|s| s.limits).unwrap_or_default().is_empty(),
        "the LimitRange has limits"
    );
    let mut policies: Vec<String> = Api::<NetworkPolicy>::namespaced(client.clone(), &ns_name)
        .list(&ListParams::default())
        .await
        .expect("policies")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    policies.sort();
    let mut want: Vec<String> = POLICIES.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(policies, want);

    // The credentials Secret, with long passwords.
    let secret = credentials_secret(&client, &name)
        .await
        .expect("credentials Secret");
    let values: BTreeMap<String, String> = secret_values(&secret).into_iter().collect();
    for key in [
        "db-password",
        "db-root-password",
        "admin-password",
        "webhook-secret",
    ] {
        let v = values.get(key).unwrap_or_else(|| panic!("{key} missing"));
        assert!(v.len() >= 24, "{key} is {} characters", v.len());
    }

    // Exactly one release, deployed, revision 1.
    let releases = helm_list(&ns_name).await;
    assert_eq!(releases.len(), 1, "{releases:?}");
    assert_eq!(releases[0].name, name);
    assert_eq!(releases[0].status, "deployed", "{releases:?}");
    assert_eq!(releases[0].revision, "1", "{releases:?}");

    // The audit trail, in order.
    let events = trail(&p, &name).await;
    let actions: Vec<&str> = events
        .iter()
        .filter(|e| e.outcome == Outcome::Success)
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "store.create",
            "provision.namespace",
            "provision.guardrails",
            "provision.credentials",
            "provision.release",
            "provision.readiness",
            "store.ready",
        ],
        "trail:\n{}",
        describe_trail(&events)
    );

    // Credentials: the Secret's, audited, and never written anywhere else.
    let creds = p.credentials(&admin(), &name).await.expect("credentials");
    assert_eq!(creds.username, values["admin-user"]);
    assert_eq!(creds.username, "admin");
    assert_eq!(creds.expose_password(), values["admin-password"]);
    assert_eq!(
        creds.admin_url.as_deref(),
        Some(format!("http://{name}.127.0.0.1.nip.io/wp-admin/").as_str())
    );
    assert!(!format!("{creds:?}").contains(creds.expose_password()));
    let events = trail(&p, &name).await;
    let reads: Vec<_> = events
        .iter()
        .filter(|e| e.action == "store.credentials.read")
        .collect();
    assert_eq!(reads.len(), 1, "trail:\n{}", describe_trail(&events));
    assert_eq!(reads[0].outcome, Outcome::Success);
    assert_eq!(reads[0].actor, "lifecycle-test");
    let everything = format!(
        "{}\n{}\n{}",
        serde_json::to_string(&events).expect("events as JSON"),
        serde_json::to_string(&p.get(&admin(), &name).await.expect("get")).expect("JSON"),
        serde_json::to_string(&p.list(&admin(), Default::default()).await.expect("list"))
            .expect("JSON"),
    );
    for (key, value) in &values {
        if key != "admin-user" {
            assert!(
                !everything.contains(value.as_str()),
                "the value of {key} is in the audit trail or a store record"
            );
        }
    }

    delete_and_wait(&p, &name).await;
    p.shutdown().await;
}

/// What a user could see change in a store's objects.
#[derive(Debug, PartialEq)]
struct Versions {
    namespace: String,
    /// The quota's status changes with usage; what urumi applies is its managed fields.
    quota_applied: String,
    limit_range: String,
    policies: BTreeMap<String, String>,
    secret: String,
    revisions: Vec<String>,
}

async fn versions(client: &Client, name: &str) -> Versions {
    let ns = namespace_of(name);
    let rv = |m: &kube::api::ObjectMeta| m.resource_version.clone().unwrap_or_default();
    let namespace = rv(&namespace(client, name).await.expect("namespace").metadata);
    let quota = Api::<ResourceQuota>::namespaced(client.clone(), &ns)
        .get("urumi-quota")
        .await
        .expect("quota");
    let quota_applied = quota
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|f| f.manager.as_deref() == Some("urumi"))
        .map(|f| serde_json::to_string(f).expect("managed fields as JSON"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!quota_applied.is_empty(), "urumi manages the quota");
    let limit_range = rv(&Api::<LimitRange>::namespaced(client.clone(), &ns)
        .get("urumi-limits")
        .await
        .expect("limit range")
        .metadata);
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("policies")
        .items
        .into_iter()
        .map(|p| (p.metadata.name.clone().unwrap_or_default(), rv(&p.metadata)))
        .collect();
    let secret = rv(&Api::<Secret>::namespaced(client.clone(), &ns)
        .get(&format!("{name}-credentials"))
        .await
        .expect("secret")
        .metadata);
    let revisions = helm_list(&ns)
        .await
        .into_iter()
        .map(|r| format!("{} r{} {}", r.name, r.revision, r.status))
        .collect();
    Versions {
        namespace,
        quota_applied,
        limit_range,
        policies,
        secret,
        revisions,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_run_again_on_a_ready_store_changes_nothing() {
    let client = kube_client().await;
    let (state, _dir) = sqlite_state().await;
    let p = provisioner(state, fast_settings()).await;
    let name = unique("lc-idem");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    create(&p, &name, Plan::Small).await;
    let store = wait_ready(&p, &name).await;
    let before = versions(&client, &name).await;
    assert_eq!(before.revisions, vec![format!("{name} r1 deployed")]);

    // A second runtime, as a second replica (or this one after a restart) would have.
    let runtime = KubeRuntime::new(
        Guardrails::new(client.clone(), GuardrailsConfig::default()),
        Engines::default(),
        Arc::new(HelmCli::new()),
        ReadinessWatcher::start(&client, STORE_LABEL),
        KubeRuntimeSettings::default(),
    );
    for round in 1..=2 {
        runtime.namespace(&store).await.expect("namespace again");
        runtime.guardrails(&store).await.expect("guardrails again");
        runtime
            .credentials(&store)
            .await
            .expect("credentials again");
        runtime.release(&store).await.expect("release again");
        runtime
            .readiness(&store, Duration::from_secs(60))
            .await
            .expect("readiness again");
        assert_eq!(
            runtime.urls(&store),
            Urls {
                storefront: Some(format!("http://{name}.127.0.0.1.nip.io")),
                admin: Some(format!("http://{name}.127.0.0.1.nip.io/wp-admin/")),
            }
        );
        let after = versions(&client, &name).await;
        assert_eq!(after, before, "round {round} changed something");
    }
    let creds = p.credentials(&admin(), &name).await.expect("credentials");
    let secret = credentials_secret(&client, &name).await.expect("secret");
    let values: BTreeMap<String, String> = secret_values(&secret).into_iter().collect();
    assert_eq!(
        creds.expose_password(),
        values["admin-password"],
        "not rotated"
    );

    delete_and_wait(&p, &name).await;
    p.shutdown().await;
}

/// WooCommerce, except that while `broken` is set its values give WordPress a CPU
/// request the API server refuses ("lots"), and while `stuck_job` is set its setup
/// Job's pod fits no node and the Job gives up after 3 s (Failed, DeadlineExceeded).
#[derive(Debug)]
struct BreakableWoo {
    inner: WooCommerce,
    broken: Arc<AtomicBool>,
    stuck_job: Arc<AtomicBool>,
    /// The setup Job's pod needs a node with this label (`yes`), and gives up after 10 s.
    setup_node_label: Option<String>,
}

impl Engine for BreakableWoo {
    fn id(&self) -> &EngineId {
        self.inner.id()
    }
    fn chart(&self) -> urumi_core::Result<PathBuf> {
        self.inner.chart()
    }
    fn release_name(&self, store: &StoreName) -> String {
        self.inner.release_name(store)
    }
    fn credentials(&self, store: &StoreContext) -> CredentialsLayout {
        self.inner.credentials(store)
    }
    fn network(&self) -> NetworkProfile {
        self.inner.network()
    }
    fn values(
        &self,
        store: &StoreContext,
        settings: &EngineSettings,
    ) -> urumi_core::Result<serde_json::Value> {
        let mut values = self.inner.values(store, settings)?;
        if self.broken.load(Ordering::SeqCst) {
            values["wordpress"]["resources"]["requests"]["cpu"] = "lots".into();
        }
        if let Some(key) = &self.setup_node_label {
            values["setup"]["nodeSelector"] = serde_json::json!({ key: "yes" });
            values["setup"]["activeDeadlineSeconds"] = 10.into();
        }
        if self.stuck_job.load(Ordering::SeqCst) {
            values["setup"]["nodeSelector"] = serde_json::json!({"urumi.test/no-such-node": "x"});
            values["setup"]["activeDeadlineSeconds"] = 3.into();
        }
        Ok(values)
    }
    fn workloads(&self, store: &StoreContext, revision: u32) -> Vec<Workload> {
        self.inner.workloads(store, revision)
    }
    fn urls(&self, store: &StoreName, settings: &EngineSettings) -> Urls {
        self.inner.urls(store, settings)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_release_fails_the_store_and_retry_after_the_fix_makes_it_ready() {
    let client = kube_client().await;
    let (state, _dir) = sqlite_state().await;
    let broken = Arc::new(AtomicBool::new(true));
    let mut engines = Engines::empty();
    engines.register(Arc::new(BreakableWoo {
        inner: WooCommerce::new(),
        broken: broken.clone(),
        stuck_job: Arc::new(AtomicBool::new(false)),
        setup_node_label: None,
    }));
    let p = urumi_core::KubeProvisioner::builder(client.clone(), state)
        .engines(engines)
        .settings(fast_settings())
        .build()
        .expect("build");
    let name = unique("lc-fail");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    create(&p, &name, Plan::Small).await;

    let err = p
        .wait(&admin(), &name, Status::Ready, READY_TIMEOUT)
        .await
        .expect_err("the release is refused");
    assert_eq!(err.kind(), ErrorKind::StoreFailed, "{err}");
    let failed = p.get(&admin(), &name).await.expect("get");
    assert_eq!(failed.status, Status::Failed, "{failed:?}");
    assert_eq!(failed.step, Step::Release, "{failed:?}");
    assert_eq!(failed.attempts, 1);
    let msg = failed.message.clone();
    eprintln!("{name} failed as expected: {msg}");
    assert!(msg.starts_with("release failed"), "{msg}");
    assert!(
        msg.contains("rejected by the") && msg.contains("—"),
        "the reason says what happened and what to do, in the tenant's words: {msg}"
    );
    assert_tenant_safe(&p, &name).await;
    let secret = credentials_secret(&client, &name).await.expect("secret");
    for (key, value) in secret_values(&secret) {
        if key != "admin-user" {
            assert!(!msg.contains(&value), "{key} in the failure message");
        }
    }
    let events = trail(&p, &name).await;
    let failures: Vec<_> = events
        .iter()
        .filter(|e| e.outcome == Outcome::Failure)
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        failures,
        ["provision.release", "store.failed"],
        "{}",
        describe_trail(&events)
    );

    // Fix the cause, retry; a second retry while it works is refused.
    broken.store(false, Ordering::SeqCst);
    let retried = p
        .retry(&admin(), &name, RequestOptions::default())
        .await
        .expect("retry");
    assert_eq!(retried.status, Status::Provisioning);
    let again = p
        .retry(&admin(), &name, RequestOptions::default())
        .await
        .expect_err("not Failed any more");
    assert_eq!(again.kind(), ErrorKind::Conflict, "{again}");
    let ready = wait_ready(&p, &name).await;
    assert_eq!(ready.attempts, 2, "{ready:?}");
    assert_eq!(ready.step, Step::Done);
    let releases = helm_list(&namespace_of(&name)).await;
    eprintln!("{name} after retry: {releases:?}");
    assert_eq!(releases.len(), 1, "{releases:?}");
    assert_eq!(releases[0].status, "deployed", "{releases:?}");
    let creds = p.credentials(&admin(), &name).await.expect("credentials");
    let values: BTreeMap<String, String> = secret_values(&secret).into_iter().collect();
    assert_eq!(
        creds.expose_password(),
        values["admin-password"],
        "kept across retry"
    );

    delete_and_wait(&p, &name).await;
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_setup_job_fails_the_store_and_retry_after_the_fix_makes_it_ready() {
    let client = kube_client().await;
    let (state, _dir) = sqlite_state().await;
    let stuck_job = Arc::new(AtomicBool::new(true));
    let mut engines = Engines::empty();
    engines.register(Arc::new(BreakableWoo {
        inner: WooCommerce::new(),
        broken: Arc::new(AtomicBool::new(false)),
        stuck_job: stuck_job.clone(),
        setup_node_label: None,
    }));
    let p = urumi_core::KubeProvisioner::builder(client.clone(), state)
        .engines(engines)
        .settings(fast_settings())
        .build()
        .expect("build");
    let name = unique("lc-job");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    create(&p, &name, Plan::Small).await;

    let err = p
        .wait(&admin(), &name, Status::Ready, READY_TIMEOUT)
        .await
        .expect_err("the setup Job fails");
    assert_eq!(err.kind(), ErrorKind::StoreFailed, "{err}");
    let failed = p.get(&admin(), &name).await.expect("get");
    eprintln!("{name} failed as expected: {}", failed.message);
    assert_eq!(failed.status, Status::Failed, "{failed:?}");
    assert_eq!(failed.step, Step::Readiness, "{failed:?}");
    assert!(
        failed.message.contains(&format!("{name}-setup-1")),
        "the reason names the Job: {}",
        failed.message
    );
    assert_tenant_safe(&p, &name).await;

    // The cause is fixed (the Job fits a node again); a retry must make a new Job run.
    stuck_job.store(false, Ordering::SeqCst);
    p.retry(&admin(), &name, RequestOptions::default())
        .await
        .expect("retry");
    let ready = wait_ready(&p, &name).await;
    assert_eq!(ready.attempts, 2, "{ready:?}");
    let releases = helm_list(&namespace_of(&name)).await;
    assert_eq!(releases.len(), 1, "{releases:?}");
    assert_eq!(releases[0].status, "deployed", "{releases:?}");

    delete_and_wait(&p, &name).await;
    p.shutdown().await;
}

/// Removes a node label from every node when dropped.
struct UnlabelNodes(String);

impl Drop for UnlabelNodes {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kubectl")
            .args(["label", "nodes", "--all", &format!("{}-", self.0)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_job_failed_for_a_reason_outside_the_values_runs_again_on_retry() {
    let client = kube_client().await;
    let (state, _dir) = sqlite_state().await;
    let name = unique("lc-node");
    // The cause lives in the cluster, not in the values: no node has the label yet.
    let key = format!("urumi.test/{name}");
    let mut engines = Engines::empty();
    engines.register(Arc::new(BreakableWoo {
        inner: WooCommerce::new(),
        broken: Arc::new(AtomicBool::new(false)),
        stuck_job: Arc::new(AtomicBool::new(false)),
        setup_node_label: Some(key.clone()),
    }));
    let p = urumi_core::KubeProvisioner::builder(client.clone(), state)
        .engines(engines)
        .settings(fast_settings())
        .build()
        .expect("build");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    let _unlabel = UnlabelNodes(key.clone());
    create(&p, &name, Plan::Small).await;
    let err = p
        .wait(&admin(), &name, Status::Ready, READY_TIMEOUT)
        .await
        .expect_err("the setup Job fits no node");
    assert_eq!(err.kind(), ErrorKind::StoreFailed, "{err}");
    let failed = p.get(&admin(), &name).await.expect("get");
    assert_eq!(failed.step, Step::Readiness, "{failed:?}");
    assert!(
        failed.message.contains("DeadlineExceeded"),
        "{}",
        failed.message
    );

    // Fix the cluster (the nodes get the label), then retry: the same values, a new Job.
    let labelled = std::process::Command::new("kubectl")
        .args([
            "label",
            "nodes",
            "--all",
            "--overwrite",
            &format!("{key}=yes"),
        ])
        .status()
        .expect("run kubectl label");
    assert!(labelled.success(), "kubectl label nodes");
    p.retry(&admin(), &name, RequestOptions::default())
        .await
        .expect("retry");
    let ready = wait_ready(&p, &name).await;
    assert_eq!(ready.attempts, 2, "{ready:?}");
    let releases = helm_list(&namespace_of(&name)).await;
    assert_eq!(releases.len(), 1, "{releases:?}");
    assert_eq!(
        releases[0].revision, "2",
        "a new revision for the retry: {releases:?}"
    );
    assert_eq!(releases[0].status, "deployed", "{releases:?}");

    delete_and_wait(&p, &name).await;
    p.shutdown().await;
}

/// helm as it behaves when the API server goes away at the end of an install: it
/// exits 0 and prints the release as deployed, but the record says otherwise (here: the
/// first install is reported and never made). Everything else is the real helm.
struct ForgetfulHelm {
    real: HelmCli,
    forget_next_install: AtomicBool,
}

#[async_trait::async_trait]
impl HelmDriver for ForgetfulHelm {
    async fn upgrade_install(
        &self,
        release: &str,
        namespace: &str,
        chart: &std::path::Path,
        values: serde_json::Value,
        opts: &UpgradeOptions,
    ) -> Result<Release, HelmError> {
        if self.forget_next_install.swap(false, Ordering::SeqCst) {
            return Ok(Release {
                name: release.to_owned(),
                namespace: namespace.to_owned(),
                revision: 1,
                status: ReleaseStatus::Deployed,
                chart: "woocommerce-store".to_owned(),
                app_version: None,
                description: "Install complete".to_owned(),
                last_deployed: None,
            });
        }
        self.real
            .upgrade_install(release, namespace, chart, values, opts)
            .await
    }
    async fn uninstall(&self, release: &str, namespace: &str) -> Result<(), HelmError> {
        self.real.uninstall(release, namespace).await
    }
    async fn status(
        &self,
        release: &str,
        namespace: &str,
    ) -> Result<Option<ReleaseStatus>, HelmError> {
        self.real.status(release, namespace).await
    }
    async fn rollback(
        &self,
        release: &str,
        namespace: &str,
        revision: u32,
    ) -> Result<(), HelmError> {
        self.real.rollback(release, namespace, revision).await
    }
    async fn history(&self, release: &str, namespace: &str) -> Result<Vec<Revision>, HelmError> {
        self.real.history(release, namespace).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_helm_reports_installed_but_did_not_record_is_installed_again() {
    let client = kube_client().await;
    let (state, _dir) = sqlite_state().await;
    let helm = Arc::new(ForgetfulHelm {
        real: HelmCli::new(),
        forget_next_install: AtomicBool::new(true),
    });
    let p = urumi_core::KubeProvisioner::builder(client.clone(), state)
        .helm(helm.clone())
        .settings(fast_settings())
        .build()
        .expect("build");
    let name = unique("lc-forgot");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    create(&p, &name, Plan::Small).await;
    let ready = wait_ready(&p, &name).await;
    assert!(
        !helm.forget_next_install.load(Ordering::SeqCst),
        "the lie was told"
    );
    assert_eq!(ready.attempts, 1, "{ready:?}");
    let releases = helm_list(&namespace_of(&name)).await;
    assert_eq!(releases.len(), 1, "{releases:?}");
    assert_eq!(releases[0].status, "deployed", "{releases:?}");
    let events = trail(&p, &name).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "provision.release")
            .count(),
        1,
        "{}",
        describe_trail(&events)
    );
    delete_and_wait(&p, &name).await;
    p.shutdown().await;
}

/// Rewrites the latest record of `release` in `namespace` to `pending-install`, as an
/// install interrupted after its objects were created leaves it (helm's storage: a
/// Secret whose `release` is base64(gzip(JSON))).
fn mark_pending_install(namespace: &str, release: &str) {
    const SCRIPT: &str = r#"
import base64, gzip, json, subprocess, sys
ns, rel = sys.argv[1], sys.argv[2]
name = "sh.helm.release.v1.%s.v1" % rel
s = json.loads(subprocess.check_output(["kubectl", "get", "secret", name, "-n", ns, "-o", "json"]))
r = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(s["data"]["release"]))))
r["info"]["status"] = "pending-install"
blob = base64.b64encode(gzip.compress(json.dumps(r).encode()))
s["data"]["release"] = base64.b64encode(blob).decode()
s["metadata"]["labels"]["status"] = "pending-install"
subprocess.run(["kubectl", "replace", "-f", "-"], input=json.dumps(s).encode(), check=True,
               stdout=subprocess.DEVNULL)
"#;
    let status = std::process::Command::new("python3")
        .args(["-c", SCRIPT, namespace, release])
        .status()
        .expect("run python3");
    assert!(status.success(), "could not mark {release} pending-install");
}

/// The real helm, except that the first install's record is left `pending-install`
/// while helm reports success (the API server went away as helm finished).
struct PendingOnceHelm {
    real: HelmCli,
    mark_next_install: AtomicBool,
}

#[async_trait::async_trait]
impl HelmDriver for PendingOnceHelm {
    async fn upgrade_install(
        &self,
        release: &str,
        namespace: &str,
        chart: &std::path::Path,
        values: serde_json::Value,
        opts: &UpgradeOptions,
    ) -> Result<Release, HelmError> {
        let installed = self
            .real
            .upgrade_install(release, namespace, chart, values, opts)
            .await?;
        if self.mark_next_install.swap(false, Ordering::SeqCst) {
            mark_pending_install(namespace, release);
        }
        Ok(installed)
    }
    async fn uninstall(&self, release: &str, namespace: &str) -> Result<(), HelmError> {
        self.real.uninstall(release, namespace).await
    }
    async fn status(
        &self,
        release: &str,
        namespace: &str,
    ) -> Result<Option<ReleaseStatus>, HelmError> {
        self.real.status(release, namespace).await
    }
    async fn rollback(
        &self,
        release: &str,
        namespace: &str,
        revision: u32,
    ) -> Result<(), HelmError> {
        self.real.rollback(release, namespace, revision).await
    }
    async fn history(&self, release: &str, namespace: &str) -> Result<Vec<Revision>, HelmError> {
        self.real.history(release, namespace).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_left_pending_install_with_its_objects_running_is_repaired() {
    let client = kube_client().await;
    let (state, _dir) = sqlite_state().await;
    let helm = Arc::new(PendingOnceHelm {
        real: HelmCli::new(),
        mark_next_install: AtomicBool::new(true),
    });
    let p = urumi_core::KubeProvisioner::builder(client.clone(), state)
        .helm(helm.clone())
        .settings(fast_settings())
        .build()
        .expect("build");
    let name = unique("lc-pending");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    let mut changes = p.changes(&admin(), None);
    create(&p, &name, Plan::Small).await;
    let ready = wait_ready(&p, &name).await;
    let mut messages = Vec::new();
    // The feed is durable: every change up to Ready is there to read.
    while let Ok(Some(change)) =
        tokio::time::timeout(Duration::from_millis(500), changes.next()).await
    {
        let change = change.expect("change feed");
        if change.store.name.as_str() == name {
            messages.push(change.store.message.clone());
        }
    }
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("release: ") && m.contains("attempt 1 of")),
        "the release step saw the pending record and ran again: {messages:#?}"
    );
    assert!(
        !helm.mark_next_install.load(Ordering::SeqCst),
        "the record was rewritten"
    );
    assert_eq!(ready.attempts, 1, "{ready:?}");
    let releases = helm_list(&namespace_of(&name)).await;
    assert_eq!(releases.len(), 1, "{releases:?}");
    assert_eq!(releases[0].status, "deployed", "{releases:?}");
    delete_and_wait(&p, &name).await;
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_leaves_nothing_behind_and_is_idempotent() {
    let client = kube_client().await;
    let (state, _dir) = sqlite_state().await;
    let p = provisioner(state, fast_settings()).await;
    let name = unique("lc-del");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    create(&p, &name, Plan::Small).await;
    wait_ready(&p, &name).await;
    assert!(
        !leftovers(&client, &name).await.is_empty(),
        "a store exists"
    );

    let first = p
        .delete(&admin(), &name, RequestOptions::default())
        .await
        .expect("delete");
    assert_eq!(first.status, Status::Deleting);
    // Asked again while it is being deleted: the same store, still Deleting.
    let second = p
        .delete(&admin(), &name, RequestOptions::default())
        .await
        .expect("delete again");
    assert_eq!(second.status, Status::Deleting);
    assert_eq!(second.name.as_str(), name);

    p.wait_deleted(&admin(), &name, GONE_TIMEOUT)
        .await
        .expect("gone");
    assert_eq!(
        p.get(&admin(), &name).await.expect_err("no record").kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        p.delete(&admin(), &name, RequestOptions::default())
            .await
            .expect_err("deleting a gone store")
            .kind(),
        ErrorKind::NotFound
    );
    // Strict: once the record is gone (the user is told "deleted"), nothing of the
    // store may remain, its volumes included.
    let left = leftovers(&client, &name).await;
    assert!(
        left.is_empty(),
        "left behind when the record was dropped: {left:?} (after 30 s: {:?})",
        leftovers_after_grace(&client, &name).await
    );
    let events = trail(&p, &name).await;
    let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "store.delete").count(),
        1,
        "one delete request recorded: {}",
        describe_trail(&events)
    );
    assert_eq!(actions.last(), Some(&"store.deleted"), "{actions:?}");
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_still_provisioning_can_be_deleted() {
    let client = kube_client().await;
    let (state, _dir) = sqlite_state().await;
    let p = provisioner(state, fast_settings()).await;
    let name = unique("lc-delprov");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    let mut changes = p.changes(&admin(), None);
    create(&p, &name, Plan::Small).await;
    // Delete as soon as it has something in the cluster (namespace made, more to come).
    let reached = tokio::time::timeout(READY_TIMEOUT, async {
        loop {
            let change = changes.next().await.expect("feed open").expect("changes");
            let s = &change.store;
            if s.name.as_str() == name
                && s.status == Status::Provisioning
                && s.step >= Step::Guardrails
            {
                return s.clone();
            }
        }
    })
    .await
    .expect("provisioning reaches the guardrails step");
    assert_ne!(reached.status, Status::Ready);
    let deleting = p
        .delete(&admin(), &name, RequestOptions::default())
        .await
        .expect("delete");
    assert_eq!(deleting.status, Status::Deleting);
    p.wait_deleted(&admin(), &name, GONE_TIMEOUT)
        .await
        .expect("gone");
    let left = leftovers_after_grace(&client, &name).await;
    assert!(left.is_empty(), "left behind: {left:?}");
    // Nothing comes back: once the worker has stopped (shutdown waits for every task
    // it ran), nothing of the store exists.
    p.shutdown().await;
    let left = leftovers(&client, &name).await;
    assert!(left.is_empty(), "came back: {left:?}");
    assert_eq!(
        p.get(&admin(), &name).await.expect_err("gone").kind(),
        ErrorKind::NotFound
    );
}

/// Refused `request` with `kind`, and nothing of `name` anywhere.
async fn refused(
    p: &dyn Provisioner,
    client: &Client,
    caller: &Caller,
    request: CreateStore,
    kind: ErrorKind,
) {
    let name = request.name.clone();
    let err = p
        .create(caller, request, CreateOptions::default())
        .await
        .expect_err(&format!("{name} is refused"));
    assert_eq!(err.kind(), kind, "{name}: {err}");
    assert_eq!(
        p.get(caller, &name).await.expect_err("no record").kind(),
        ErrorKind::NotFound,
        "{name}"
    );
    assert!(
        namespace(client, &name.to_lowercase()).await.is_none(),
        "{name}: a namespace was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_anything_is_created() {
    let client = kube_client().await;
    let (state, _dir) = sqlite_state().await;
    let p = provisioner(state, fast_settings()).await;
    // Nothing here should ever reach the cluster; stop the worker so a wrongly
    // accepted store would show as a record rather than race the checks.
    p.shutdown().await;
    let caller = admin();
    let tag = unique("x");
    let tag = tag.trim_start_matches("x-");
    for bad in [
        format!("Shop-{tag}"),
        "ab".to_owned(),
        "admin".to_owned(),
        format!("kube-{tag}"),
        format!("-lead-{tag}"),
        format!("{tag}-{}", "x".repeat(40)),
    ] {
        refused(
            &p,
            &client,
            &caller,
            CreateStore::named(bad),
            ErrorKind::InvalidName,
        )
        .await;
    }
    refused(
        &p,
        &client,
        &caller,
        CreateStore::named(format!("lc-plan-{tag}")).plan("huge"),
        ErrorKind::InvalidSpec,
    )
    .await;
    refused(
        &p,
        &client,
        &caller,
        CreateStore::named(format!("lc-engine-{tag}")).engine("medusa"),
        ErrorKind::InvalidSpec,
    )
    .await;
    let list = p.list(&caller, Default::default()).await.expect("list");
    assert!(list.items.is_empty(), "records: {:?}", list.items);
    let denied = p
        .audit(&caller, Default::default())
        .await
        .expect("audit")
        .items;
    assert_eq!(denied.len(), 8, "every refusal is audited");
    assert!(denied.iter().all(|e| e.outcome == Outcome::Denied));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_cap_or_its_rate_is_refused_before_anything_is_created() {
    let client = kube_client().await;
    let tag = unique("x");
    let tag = tag.trim_start_matches("x-").to_owned();

    // Tenant cap: one store per tenant.
    let (state, _dir) = sqlite_state().await;
    let mut settings = fast_settings();
    settings.limits = Limits {
        stores_per_tenant: 1,
        ..Limits::unlimited()
    };
    let p = provisioner(state, settings).await;
    p.shutdown().await; // the accepted store stays Pending: nothing in the cluster
    let caller = Caller::tenant("key:cap", tenant(&format!("cap-{tag}")));
    p.create(
        &caller,
        CreateStore::named(format!("lc-cap1-{tag}")),
        CreateOptions::default(),
    )
    .await
    .expect("the first store fits");
    refused(
        &p,
        &client,
        &caller,
        CreateStore::named(format!("lc-cap2-{tag}")),
        ErrorKind::QuotaExceeded,
    )
    .await;
    // Another tenant is not affected.
    let other = Caller::tenant("key:other", tenant(&format!("other-{tag}")));
    p.create(
        &other,
        CreateStore::named(format!("lc-cap3-{tag}")),
        CreateOptions::default(),
    )
    .await
    .expect("another tenant's first store fits");

    // Rate: one creation per hour per tenant, even after the first store is gone.
    let (state, _dir2) = sqlite_state().await;
    let mut settings = fast_settings();
    settings.limits = Limits {
        creations_per_hour: 1,
        ..Limits::unlimited()
    };
    let p = provisioner(state, settings).await;
    p.shutdown().await;
    let caller = Caller::tenant("key:rate", tenant(&format!("rate-{tag}")));
    p.create(
        &caller,
        CreateStore::named(format!("lc-rate1-{tag}")),
        CreateOptions::default(),
    )
    .await
    .expect("the first creation fits");
    refused(
        &p,
        &client,
        &caller,
        CreateStore::named(format!("lc-rate2-{tag}")),
        ErrorKind::RateLimited,
    )
    .await;
    let events = p
        .audit(&caller, Default::default())
        .await
        .expect("audit")
        .items;
    assert!(
        events
            .iter()
            .any(|e| e.action == "store.create" && e.outcome == Outcome::Denied),
        "the refusal is audited: {}",
        describe_trail(&events)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_is_recorded_only_with_the_stores_own_signature() {
    let client = kube_client().await;
    let (state, _dir) = sqlite_state().await;
    let p = provisioner(state, fast_settings()).await;
    let name = unique("lc-hook");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    create(&p, &name, Plan::Small).await;
    wait_ready(&p, &name).await;
    let secret = credentials_secret(&client, &name).await.expect("secret");
    let values: BTreeMap<String, String> = secret_values(&secret).into_iter().collect();
    let key = &values["webhook-secret"];
    let body = br#"{"id":1042,"status":"processing"}"#;

    let forged = urumi_core::provisioner::sign_webhook("not-the-secret", body);
    let err = p
        .receive_webhook(&name, "order.created", body, &forged)
        .await
        .expect_err("a forged signature");
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    let tampered = urumi_core::provisioner::sign_webhook(key, br#"{"id":1}"#);
    assert_eq!(
        p.receive_webhook(&name, "order.created", body, &tampered)
            .await
            .expect_err("signature of another body")
            .kind(),
        ErrorKind::Unauthorized
    );
    assert!(
        !trail(&p, &name)
            .await
            .iter()
            .any(|e| e.action.starts_with("woocommerce.")),
        "nothing recorded for refused deliveries"
    );

    let good = urumi_core::provisioner::sign_webhook(key, body);
    p.receive_webhook(&name, "order.created", body, &good)
        .await
        .expect("the store's own signature");
    let events = trail(&p, &name).await;
    let hook = events
        .iter()
        .find(|e| e.action == "woocommerce.order.created")
        .expect("recorded");
    assert_eq!(hook.tenant.as_deref(), Some("acme"));
    assert!(
        !hook.detail.contains(key.as_str()),
        "no secret in the event"
    );
    delete_and_wait(&p, &name).await;
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_the_quotas_count_and_the_stores_volumes_read_now() {
    let client = kube_client().await;
    let (state, _dir) = sqlite_state().await;
    let p = provisioner(state, fast_settings()).await;
    let name = unique("lc-usage");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    let ns_name = namespace_of(&name);
    create(&p, &name, Plan::Small).await;
    wait_ready(&p, &name).await;

    let usage = p.usage(&admin(), &name).await.expect("usage");
    assert_eq!(usage.name, name);
    assert_eq!(usage.plan, Plan::Small);
    let resources: Vec<_> = usage
        .resources
        .iter()
        .map(|r| r.resource.as_str())
        .collect();
    assert_eq!(
        resources,
        [
            "requests.cpu",
            "limits.cpu",
            "requests.memory",
            "limits.memory",
            "pods",
            "persistentvolumeclaims",
            "requests.storage",
            "limits.ephemeral-storage"
        ]
    );
    // Each number is the quota controller's, in the resource's unit; hard is the plan's.
    let quota = Api::<ResourceQuota>::namespaced(client.clone(), &ns_name)
        .get("urumi-quota")
        .await
        .expect("quota");
    let status = quota.status.expect("quota counted");
    let (used, hard) = (status.used.expect("used"), status.hard.expect("hard"));
    let size = Plans::default().size(Plan::Small).clone();
    for r in &usage.resources {
        let parse = |q: &str| {
            if r.resource.ends_with("cpu") {
                cpu_millis(q).expect("cpu quantity")
            } else {
                bytes(q).expect("quantity")
            }
        };
        assert_eq!(r.used, parse(&used[&r.resource].0), "{r:?}");
        assert_eq!(r.hard, parse(&hard[&r.resource].0), "{r:?}");
    }
    let get = |k: &str| usage.resources.iter().find(|r| r.resource == k).expect(k);
    assert_eq!(
        get("requests.cpu").hard,
        cpu_millis(&size.cpu_request).expect("plan")
    );
    assert_eq!(get("pods").hard, u64::from(size.pods));
    // A Ready store's WordPress and MariaDB hold pods, CPU and memory.
    assert!(get("pods").used >= 2, "{:?}", get("pods"));
    assert!(get("requests.cpu").used > 0 && get("requests.memory").used > 0);
    // Its volumes: the claims in its namespace, which the quota counts.
    let claims = Api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>::namespaced(
        client.clone(),
        &ns_name,
    )
    .list(&ListParams::default())
    .await
    .expect("claims");
    let mut names: Vec<_> = claims
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    names.sort();
    let volumes: Vec<_> = usage.volumes.iter().map(|v| v.claim.clone()).collect();
    assert!(!volumes.is_empty(), "a store keeps its data on volumes");
    assert_eq!(volumes, names);
    assert_eq!(get("persistentvolumeclaims").used, volumes.len() as u64);
    assert_eq!(
        get("requests.storage").used,
        usage.volumes.iter().map(|v| v.requested).sum::<u64>()
    );
    // As the HTTP API, Python and Node show it.
    let json = serde_json::to_value(&usage).expect("json");
    assert_eq!(json["resources"][0]["unit"], "millicores", "{json}");
    assert_eq!(json["resources"][4]["unit"], "count", "{json}");
    assert!(json["observedAt"].is_string(), "{json}");
    assert!(json["volumes"][0]["phase"].is_string(), "{json}");

    // Another tenant learns nothing; a name that is no store is not_found.
    let globex = Caller::tenant("globex-billing", tenant("globex"));
    assert_eq!(
        p.usage(&globex, &name).await.expect_err("hidden").kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        p.usage(&admin(), "no-such-store")
            .await
            .expect_err("none")
            .kind(),
        ErrorKind::NotFound
    );
    // The plans, as configured, smallest first.
    let plans = p.plans();
    let listed: Vec<_> = plans.iter().map(|e| e.name).collect();
    assert_eq!(listed, Plan::ALL);
    assert_eq!(plans[0].size, size);
    p.shutdown().await;
}

/// The WordPress container's CPU request, millicores (its share of the plan).
async fn wordpress_cpu_request(client: &Client, name: &str) -> u64 {
    let deployment = Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(
        client.clone(),
        &namespace_of(name),
    )
    .get(&format!("{name}-wordpress"))
    .await
    .expect("wordpress deployment");
    let requests = deployment
        .spec
        .template
        .spec
        .and_then(|s| s.containers.into_iter().find(|c| c.name == "wordpress"))
        .and_then(|c| c.resources)
        .and_then(|r| r.requests)
        .expect("wordpress requests");
    cpu_millis(&requests["cpu"].0).expect("cpu quantity")
}

/// The quota's hard `requests.cpu` and `pods`.
async fn quota_cpu_and_pods(client: &Client, name: &str) -> (u64, u64) {
    let quota = Api::<ResourceQuota>::namespaced(client.clone(), &namespace_of(name))
        .get("urumi-quota")
        .await
        .expect("quota");
    let hard = quota.spec.and_then(|s| s.hard).expect("hard");
    (
        cpu_millis(&hard["requests.cpu"].0).expect("cpu"),
        bytes(&hard["pods"].0).expect("pods"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_change_resizes_quota_and_release_and_a_downsize_below_use_changes_nothing() {
    use urumi_core::UpdateStore;
    let client = kube_client().await;
    let (state, _dir) = sqlite_state().await;
    let p = provisioner(state, fast_settings()).await;
    let name = unique("lc-plan");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    let plans = Plans::default();
    let plan_numbers = |plan: Plan| {
        let size = plans.size(plan);
        (
            cpu_millis(&size.cpu_request).expect("plan cpu"),
            u64::from(size.pods),
        )
    };
    create(&p, &name, Plan::Small).await;
    let first = wait_ready(&p, &name).await;
    let small_cpu = wordpress_cpu_request(&client, &name).await;
    assert_eq!(
        quota_cpu_and_pods(&client, &name).await,
        plan_numbers(Plan::Small)
    );
    let change = |plan: &str| UpdateStore::plan(plan);

    // small → large: Updating, then Ready with the large quota and the release resized.
    let updating = p
        .update(&admin(), &name, change("large"), RequestOptions::default())
        .await
        .expect("update to large");
    assert_eq!(
        (updating.status, updating.plan),
        (Status::Updating, Plan::Large)
    );
    let large = wait_ready(&p, &name).await;
    assert_eq!(large.plan, Plan::Large);
    assert_eq!(
        large.ready_at, first.ready_at,
        "readyAt is when it first became Ready"
    );
    assert_eq!(
        quota_cpu_and_pods(&client, &name).await,
        plan_numbers(Plan::Large)
    );
    assert_eq!(
        wordpress_cpu_request(&client, &name).await,
        4 * small_cpu,
        "the release was upgraded with the large plan's shares"
    );
    // The same plan again: nothing to change, the same record.
    let same = p
        .update(&admin(), &name, change("large"), RequestOptions::default())
        .await
        .expect("same plan");
    assert_eq!((same.status, same.version), (Status::Ready, large.version));

    // A claim of 20Gi (a customer's media volume, say) fits large's 40Gi but not small's
    // 10Gi: the downsize is refused, naming storage, and changes nothing.
    let claims = Api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>::namespaced(
        client.clone(),
        &namespace_of(&name),
    );
    let extra: k8s_openapi::api::core::v1::PersistentVolumeClaim =
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "media"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "urumi-test-unbound",
                "resources": {"requests": {"storage": "20Gi"}}
            }
        }))
        .expect("claim");
    claims
        .create(&Default::default(), &extra)
        .await
        .expect("extra claim");
    let refused = p
        .update(&admin(), &name, change("small"), RequestOptions::default())
        .await
        .expect_err("downsize below use");
    assert_eq!(refused.kind(), ErrorKind::PlanTooSmall, "{refused}");
    assert!(
        refused.tenant_message().contains("requests.storage")
            && refused.tenant_message().contains("10Gi"),
        "{}",
        refused.tenant_message()
    );
    let unchanged = p.get(&admin(), &name).await.expect("get");
    assert_eq!(
        (unchanged.status, unchanged.plan, unchanged.version),
        (Status::Ready, Plan::Large, large.version)
    );
    assert_eq!(
        quota_cpu_and_pods(&client, &name).await,
        plan_numbers(Plan::Large)
    );
    // Another tenant cannot change it, nor learn it exists.
    let globex = Caller::tenant("globex-billing", tenant("globex"));
    assert_eq!(
        p.update(&globex, &name, change("small"), RequestOptions::default())
            .await
            .expect_err("hidden")
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        p.update(&admin(), &name, change("huge"), RequestOptions::default())
            .await
            .expect_err("unknown plan")
            .kind(),
        ErrorKind::InvalidSpec
    );

    // Without the extra claim (once the quota controller has counted it gone), large →
    // small: the quota and the release follow.
    claims
        .delete("media", &Default::default())
        .await
        .expect("delete claim");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let small = loop {
        match p
            .update(&admin(), &name, change("small"), RequestOptions::default())
            .await
        {
            Ok(s) => break s,
            Err(e)
                if e.kind() == ErrorKind::PlanTooSmall && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("downsize once the claim is gone: {e}"),
        }
    };
    assert_eq!((small.status, small.plan), (Status::Updating, Plan::Small));
    let back = wait_ready(&p, &name).await;
    assert_eq!(back.plan, Plan::Small);
    assert_eq!(
        quota_cpu_and_pods(&client, &name).await,
        plan_numbers(Plan::Small),
        "the quota settled to the small plan"
    );
    assert_eq!(wordpress_cpu_request(&client, &name).await, small_cpu);

    let events = trail(&p, &name).await;
    let updates: Vec<_> = events
        .iter()
        .filter(|e| e.action == "store.update")
        .map(|e| (e.outcome, e.detail.clone()))
        .collect();
    let successes: Vec<_> = updates
        .iter()
        .filter(|(o, _)| *o == Outcome::Success)
        .collect();
    assert_eq!(successes.len(), 2, "{}", describe_trail(&events));
    let failures: Vec<_> = updates
        .iter()
        .filter(|(o, _)| *o == Outcome::Failure)
        .collect();
    assert!(
        !failures.is_empty()
            && failures.iter().all(
                |(_, d)| d.starts_with("plan large → small:") && d.contains("requests.storage")
            ),
        "the refusal is recorded with its numbers: {}",
        describe_trail(&events)
    );
    assert!(
        updates
            .iter()
            .any(|(o, d)| *o == Outcome::Success && d == "plan small → large"),
        "{}",
        describe_trail(&events)
    );
    assert!(
        updates
            .iter()
            .any(|(o, d)| *o == Outcome::Success && d == "plan large → small"),
        "{}",
        describe_trail(&events)
    );
    p.shutdown().await;
}

/// The store's claims and the volumes bound to them, `claim → volume`.
async fn claims_and_volumes(client: &Client, name: &str) -> BTreeMap<String, String> {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), &namespace_of(name))
        .list(&ListParams::default())
        .await
        .expect("list claims")
        .items
        .into_iter()
        .filter_map(|c| {
            let claim = c.metadata.name?;
            Some((claim, c.spec?.volume_name.unwrap_or_default()))
        })
        .collect()
}

/// The names of the pods in the store's namespace (terminating ones included).
async fn pod_names(client: &Client, name: &str) -> Vec<String> {
    use k8s_openapi::api::core::v1::Pod;
    Api::<Pod>::namespaced(client.clone(), &namespace_of(name))
        .list(&ListParams::default())
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_store_runs_no_pod_keeps_its_volumes_through_resync_and_restart_and_resumes_on_them()
 {
    use k8s_openapi::api::networking::v1::Ingress;
    let client = kube_client().await;
    let (state, _dir) = sqlite_state().await;
    let mut settings = fast_settings();
    // Drift repair every 2 s: it must leave a suspended store stopped.
    settings.orchestrator.resync_interval = Duration::from_secs(2);
    let p = provisioner(state.clone(), settings.clone()).await;
    let name = unique("lc-suspend");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    let ns = namespace_of(&name);
    let ingresses = Api::<Ingress>::namespaced(client.clone(), &ns);
    create(&p, &name, Plan::Small).await;
    let ready = wait_ready(&p, &name).await;
    let volumes = claims_and_volumes(&client, &name).await;
    assert_eq!(volumes.len(), 2, "two claims: {volumes:?}");
    assert!(
        volumes.values().all(|v| !v.is_empty()),
        "bound: {volumes:?}"
    );
    let secret = secret_values(&credentials_secret(&client, &name).await.expect("secret"));
    assert!(!pod_names(&client, &name).await.is_empty());
    assert_eq!(
        ingresses
            .list(&ListParams::default())
            .await
            .expect("ingresses")
            .items
            .len(),
        1
    );

    let started = std::time::Instant::now();
    let suspending = p
        .suspend(
            &admin(),
            &name,
            RequestOptions::idempotency_key("suspend-1"),
        )
        .await
        .expect("suspend");
    assert_eq!(
        (suspending.status, suspending.suspended),
        (Status::Updating, true)
    );
    let suspended = wait_ready(&p, &name).await;
    let suspend_secs = started.elapsed().as_secs_f64();
    assert!(suspended.suspended, "{suspended:?}");
    assert_eq!(suspended.ready_at, ready.ready_at, "readyAt is kept");
    assert!(
        suspended.message.starts_with("suspended"),
        "{}",
        suspended.message
    );
    // Idempotent: again (and the same key replayed) changes nothing.
    let again = p
        .suspend(&admin(), &name, RequestOptions::default())
        .await
        .expect("suspend again");
    assert_eq!(again.version, suspended.version);
    let replay = p
        .suspend(
            &admin(),
            &name,
            RequestOptions::idempotency_key("suspend-1"),
        )
        .await
        .expect("replayed key");
    assert_eq!(replay.name, suspended.name);
    // No pod left (the readiness waited for the workloads' replicas to reach zero; the
    // pods' own deletion follows within moments), no Ingress, the same claims and volumes.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !pod_names(&client, &name).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "pods still there 30 s after suspend: {:?}",
            pod_names(&client, &name).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        ingresses
            .list(&ListParams::default())
            .await
            .expect("ingresses")
            .items
            .is_empty()
    );
    assert_eq!(claims_and_volumes(&client, &name).await, volumes);
    let err = p
        .verify(&admin(), &name)
        .await
        .expect_err("verify a suspended store");
    assert_eq!(err.kind(), ErrorKind::Conflict);

    // A restart (a new provisioner on the same state) and three drift-repair rounds later it
    // is still suspended and still runs nothing.
    p.shutdown().await;
    drop(p);
    let p = provisioner(state, settings).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let after = p.get(&admin(), &name).await.expect("get");
    assert_eq!((after.status, after.suspended), (Status::Ready, true));
    assert!(
        pod_names(&client, &name).await.is_empty(),
        "resync started it again"
    );
    let releases = helm_list(&ns).await;
    assert_eq!(releases.len(), 1, "{releases:?}");
    assert_eq!(releases[0].status, "deployed", "{releases:?}");

    let started = std::time::Instant::now();
    let resuming = p
        .resume(&admin(), &name, RequestOptions::default())
        .await
        .expect("resume");
    assert_eq!(
        (resuming.status, resuming.suspended),
        (Status::Updating, false)
    );
    let resumed = wait_ready(&p, &name).await;
    let resume_secs = started.elapsed().as_secs_f64();
    assert!(!resumed.suspended);
    assert!(
        resumed.message.starts_with("ready on plan"),
        "{}",
        resumed.message
    );
    assert_eq!(
        claims_and_volumes(&client, &name).await,
        volumes,
        "the same volumes"
    );
    // Compared, never printed: a failure must not show the passwords.
    let same_secret =
        secret_values(&credentials_secret(&client, &name).await.expect("secret")) == secret;
    assert!(same_secret, "the same credentials");
    assert!(!pod_names(&client, &name).await.is_empty());
    assert_eq!(
        ingresses
            .list(&ListParams::default())
            .await
            .expect("ingresses")
            .items
            .len(),
        1
    );
    let actions: Vec<_> = trail(&p, &name)
        .await
        .into_iter()
        .map(|e| (e.action, e.outcome))
        .collect();
    for action in ["store.suspend", "store.resume"] {
        assert!(
            actions.contains(&(action.to_owned(), Outcome::Success)),
            "{action} audited: {actions:?}"
        );
    }
    report_count(&format!(
        "suspend {suspend_secs:.1} s, resume {resume_secs:.1} s (lifecycle_cluster)"
    ));
    delete_and_wait(&p, &name).await;
}

/// Sets the Ready condition of pod `pod` in `namespace` (KWOK keeps what is written).
async fn set_pod_ready(client: &Client, namespace: &str, pod: &str, ready: bool) {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Patch, PatchParams};
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    let mut status = pods
        .get_status(pod)
        .await
        .expect("pod")
        .status
        .expect("status");
    let flag = if ready { "True" } else { "False" };
    for c in status.conditions.iter_mut().flatten() {
        if c.type_ == "Ready" || c.type_ == "ContainersReady" {
            c.status = flag.to_owned();
        }
    }
    for c in status.container_statuses.iter_mut().flatten() {
        c.ready = ready;
    }
    pods.patch_status(
        pod,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await
    .expect("patch the pod's status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_store_whose_database_loses_its_ready_replica_turns_degraded_and_back() {
    let client = kube_client().await;
    let (state, _dir) = sqlite_state().await;
    let p = provisioner(state, fast_settings()).await;
    let name = unique("lc-health");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    let ns = namespace_of(&name);
    create(&p, &name, Plan::Small).await;
    wait_ready(&p, &name).await;
    let database = format!("{name}-mariadb");

    let started = std::time::Instant::now();
    set_pod_ready(&client, &ns, &format!("{database}-0"), false).await;
    let degraded = p
        .wait(&admin(), &name, Status::Degraded, Duration::from_secs(60))
        .await
        .expect("Degraded within a minute");
    let to_degraded = started.elapsed().as_secs_f64();
    assert!(
        degraded
            .message
            .contains(&format!("StatefulSet {database}: 0/1 replicas ready")),
        "names the workload: {}",
        degraded.message
    );
    assert!(
        degraded.message.contains("degraded since "),
        "{}",
        degraded.message
    );
    // The rest of the store is untouched and other calls still work on it.
    assert_eq!(p.usage(&admin(), &name).await.expect("usage").name, name);

    let started = std::time::Instant::now();
    set_pod_ready(&client, &ns, &format!("{database}-0"), true).await;
    let recovered = p
        .wait(&admin(), &name, Status::Ready, Duration::from_secs(60))
        .await
        .expect("Ready again");
    let to_ready = started.elapsed().as_secs_f64();
    assert!(
        recovered.message.contains("recovered"),
        "{}",
        recovered.message
    );
    let events = trail(&p, &name).await;
    let degraded_event = events
        .iter()
        .find(|e| e.action == "store.degraded")
        .expect("store.degraded audited");
    assert_eq!(degraded_event.outcome, Outcome::Failure);
    assert!(
        degraded_event.detail.contains(&database),
        "{}",
        degraded_event.detail
    );
    assert!(
        events
            .iter()
            .any(|e| e.action == "store.ready" && e.detail.starts_with("recovered")),
        "{}",
        describe_trail(&events)
    );
    assert_tenant_safe(&p, &name).await;
    report_count(&format!(
        "health: Degraded {to_degraded:.1} s after the database lost its ready replica, \
         Ready {to_ready:.1} s after it came back (degradedAfter 5 s; lifecycle_cluster)"
    ));
    delete_and_wait(&p, &name).await;
}

/// `charts/woocommerce-store` packaged by `helm package` with its version set to
/// `version` (and `extra_template` added as `templates/zz-extra.yaml`): the chart of a
/// provisioner built with another chart than this build's.
fn store_chart_with(version: &str, extra_template: Option<&str>) -> &'static [u8] {
    let dir = tempfile::tempdir().expect("temporary directory");
    let tgz = packaged_store_chart(dir.path(), version, extra_template);
    Box::leak(
        std::fs::read(tgz)
            .expect("packaged chart")
            .into_boxed_slice(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_records_its_chart_and_is_outdated_for_a_provisioner_with_a_newer_one() {
    use urumi_core::engine::BundledChart;
    let (state, _dir) = sqlite_state().await;
    let p = provisioner(state.clone(), fast_settings()).await;
    let name = unique("lc-chart");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    create(&p, &name, Plan::Small).await;
    let ready = wait_ready(&p, &name).await;
    let built = BundledChart::woocommerce()
        .version()
        .expect("bundled version");
    let chart = ready.chart.clone().expect("the chart is recorded");
    assert_eq!(
        (&chart.version, &chart.app_version, chart.outdated),
        (&built.version, &built.app_version, false)
    );
    let revisions = p.revisions(&admin(), &name).await.expect("revisions");
    assert_eq!(revisions.len(), 1, "{revisions:?}");
    assert_eq!(
        (revisions[0].status.as_str(), &revisions[0].chart_version),
        ("deployed", &built.version)
    );
    p.shutdown().await;
    drop(p);

    // A provisioner bundling 9.9.9 sees the store as outdated; upgrade moves it.
    let p = provisioner_with_chart(&state, "9.9.9", None).await;
    let seen = p.get(&admin(), &name).await.expect("get");
    assert!(seen.chart.as_ref().is_some_and(|c| c.outdated), "{seen:?}");
    let listed = p
        .list(&admin(), Default::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .find(|s| s.name.as_str() == name)
        .expect("listed");
    assert!(
        listed.chart.is_some_and(|c| c.outdated),
        "outdated in lists too"
    );
    let started = std::time::Instant::now();
    let upgrading = p
        .upgrade(&admin(), &name, RequestOptions::default())
        .await
        .expect("upgrade");
    assert_eq!(upgrading.status, Status::Updating);
    let moved = wait_ready(&p, &name).await;
    let upgrade_secs = started.elapsed().as_secs_f64();
    let chart = moved.chart.expect("chart");
    assert_eq!((chart.version.as_str(), chart.outdated), ("9.9.9", false));
    let revisions = p.revisions(&admin(), &name).await.expect("revisions");
    let statuses: Vec<_> = revisions
        .iter()
        .map(|r| (r.revision, r.status.as_str(), r.chart_version.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [
            (1, "superseded", built.version.as_str()),
            (2, "deployed", "9.9.9")
        ]
    );
    let again = p
        .upgrade(&admin(), &name, RequestOptions::default())
        .await
        .expect("not outdated");
    assert_eq!(
        again.version, moved.version,
        "an upgrade to the chart it runs changes nothing"
    );
    p.shutdown().await;
    drop(p);

    // 9.9.10 has a template the API server refuses: the upgrade fails, the release is rolled
    // back to revision 2 and the store is Ready on 9.9.9, the failure recorded.
    let broken = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Valid_Name\ndata: {}\n";
    let p = provisioner_with_chart(&state, "9.9.10", Some(broken)).await;
    let started = std::time::Instant::now();
    p.upgrade(&admin(), &name, RequestOptions::default())
        .await
        .expect("upgrade accepted");
    let back = wait_ready(&p, &name).await;
    let rollback_secs = started.elapsed().as_secs_f64();
    let chart = back.chart.clone().expect("chart");
    assert_eq!(
        (chart.version.as_str(), chart.outdated),
        ("9.9.9", true),
        "{back:?}"
    );
    assert!(
        back.message.contains("rolled back to revision 2"),
        "{}",
        back.message
    );
    let statuses: Vec<_> = p
        .revisions(&admin(), &name)
        .await
        .expect("revisions")
        .into_iter()
        .map(|r| (r.revision, r.status, r.chart_version))
        .collect();
    let last_two: Vec<_> = statuses.iter().rev().take(2).rev().cloned().collect();
    assert_eq!(
        last_two,
        [
            (3, "failed".to_owned(), "9.9.10".to_owned()),
            (4, "deployed".to_owned(), "9.9.9".to_owned())
        ],
        "{statuses:?}"
    );
    let events = trail(&p, &name).await;
    assert!(
        events
            .iter()
            .any(|e| e.action == "store.upgrade" && e.outcome == Outcome::Failure),
        "{}",
        describe_trail(&events)
    );
    assert_tenant_safe(&p, &name).await;
    report_count(&format!(
        "upgrade to a new chart → Ready {upgrade_secs:.1} s; a failing upgrade → rolled back, \
         Ready {rollback_secs:.1} s (lifecycle_cluster)"
    ));
    delete_and_wait(&p, &name).await;
}

/// A provisioner on `state` whose WooCommerce engine bundles the store chart at `version`
/// (with `extra_template`, if any).
async fn provisioner_with_chart(
    state: &Arc<dyn urumi_core::state::StateStore>,
    version: &str,
    extra_template: Option<&str>,
) -> urumi_core::KubeProvisioner {
    use urumi_core::engine::BundledChart;
    let chart = BundledChart::new(
        "woocommerce-store",
        store_chart_with(version, extra_template),
    );
    let mut engines = Engines::empty();
    engines.register(Arc::new(WooCommerce::new().with_chart(chart)));
    urumi_core::KubeProvisioner::builder(kube_client().await, state.clone())
        .settings(fast_settings())
        .engines(engines)
        .build()
        .expect("a provisioner with another chart")
}
