//! Guardrails against a real Kubernetes API (tests/cluster: etcd, kube-apiserver with
//! LimitRanger and ResourceQuota admission, controller-manager, scheduler, KWOK nodes).
//!
//! ```text
//!  eval "$(tests/cluster/up)"   # exports KUBECONFIG (and PATH)
//!  cargo test -p urumi-core --test guardrails_cluster -- --nocapture
//! ```
//!
//! Each test works in its own store namespace (`store-grd-<what>-<random>`) and deletes
//! it at the end. Without `KUBECONFIG` the tests fail; they are never skipped.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, LimitRange, Namespace, Pod, ResourceQuota, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Client, ResourceExt};
use rand::Rng;
use urumi_core::engine::{Engine, WooCommerce};
use urumi_core::guardrails::quantity::{bytes, cpu_millis};
use urumi_core::guardrails::{
    CredentialsOutcome, Guardrails, GuardrailsConfig, SizeNumbers, StoreContext,
};
use urumi_core::store::{Plan, Plans, StoreName, StoreSpec, TenantId};

const DELETE_TIMEOUT: Duration = Duration::from_secs(120);

async fn client() -> Client {
    if std::env::var_os("KUBECONFIG").is_none() {
        panic!(
            "KUBECONFIG is not set: run `eval \"$(tests/cluster/up)\"` from the repository root \
             (tests/cluster/up starts the local Kubernetes these tests need)"
        );
    }
    Client::try_default()
        .await
        .expect("a client from KUBECONFIG (is tests/cluster/up running?)")
}

/// A fresh store for one test: its context and the guardrails of a fresh client.
async fn setup(what: &str, plan: Plan) -> (Guardrails, StoreContext) {
    let suffix: u32 = rand::rng().random_range(0..0x10000);
    let name = format!("grd-{what}-{suffix:04x}");
    let spec = StoreSpec::new(
        StoreName::new(name).expect("valid name"),
        TenantId::new("acme").expect("valid tenant"),
    )
    .plan(plan);
    let cfg = GuardrailsConfig::default();
    let ctx = cfg.context(&spec, &Plans::default()).expect("valid plans");
    (Guardrails::new(client().await, cfg), ctx)
}

async fn cleanup(g: &Guardrails, ctx: &StoreContext) {
    g.delete_namespace(&ctx.namespace, DELETE_TIMEOUT)
        .await
        .expect("namespace deleted");
}

fn woo() -> WooCommerce {
    WooCommerce::new()
}

fn labels_of(obj: &impl ResourceExt) -> BTreeMap<String, String> {
    obj.labels().clone()
}

fn assert_store_labels(what: &str, labels: &BTreeMap<String, String>, ctx: &StoreContext) {
    for (k, v) in [
        ("app.kubernetes.io/managed-by", "urumi"),
        ("urumi.dev/store", ctx.name.as_str()),
        ("urumi.dev/tenant", "acme"),
    ] {
        assert_eq!(
            labels.get(k).map(String::as_str),
            Some(v),
            "{what}: label {k}"
        );
    }
}

#[tokio::test]
async fn apply_creates_every_object_with_labels_and_plan_quota() {
    let (g, ctx) = setup("objects", Plan::Medium).await;
    let started = Instant::now();
    let applied = g.apply_all(&ctx, &woo().network()).await.expect("applied");
    eprintln!(
        "apply_all for one store: {} ms ({} objects)",
        started.elapsed().as_millis(),
        applied.resource_versions.len()
    );
    let client = client().await;
    let ns = Api::<Namespace>::all(client.clone())
        .get(&ctx.namespace)
        .await
        .expect("namespace");
    let ns_labels = labels_of(&ns);
    assert_store_labels("namespace", &ns_labels, &ctx);
    assert_eq!(ns_labels["pod-security.kubernetes.io/enforce"], "baseline");
    assert_eq!(ns_labels["pod-security.kubernetes.io/warn"], "restricted");

    let rq = Api::<ResourceQuota>::namespaced(client.clone(), &ctx.namespace)
        .get("urumi-quota")
        .await
        .expect("quota");
    assert_store_labels("quota", &labels_of(&rq), &ctx);
    let hard = rq.spec.and_then(|s| s.hard).expect("hard");
    let want = SizeNumbers::of(Plan::Medium, &ctx.size).expect("valid");
    assert_eq!(cpu_millis(&hard["requests.cpu"].0), Ok(want.cpu_request));
    assert_eq!(cpu_millis(&hard["limits.cpu"].0), Ok(want.cpu_limit));
    assert_eq!(bytes(&hard["requests.memory"].0), Ok(want.memory_request));
    assert_eq!(bytes(&hard["limits.memory"].0), Ok(want.memory_limit));
    assert_eq!(bytes(&hard["requests.storage"].0), Ok(want.storage));
    assert_eq!(hard["pods"].0, ctx.size.pods.to_string());
    assert_eq!(hard["persistentvolumeclaims"].0, ctx.size.pvcs.to_string());

    let lr = Api::<LimitRange>::namespaced(client.clone(), &ctx.namespace)
        .get("urumi-limits")
        .await
        .expect("limit range");
    assert_store_labels("limit range", &labels_of(&lr), &ctx);

    let nps = Api::<NetworkPolicy>::namespaced(client.clone(), &ctx.namespace)
        .list(&Default::default())
        .await
        .expect("policies");
    let mut names: Vec<String> = nps.items.iter().map(|p| p.name_any()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "urumi-allow-db",
            "urumi-allow-egress-db",
            "urumi-allow-egress-dns",
            "urumi-allow-egress-internet",
            "urumi-allow-ingress-controller",
            "urumi-default-deny",
        ]
    );
    for np in &nps.items {
        assert_store_labels(&np.name_any(), &labels_of(np), &ctx);
        // One field manager owns everything urumi applies.
        let managers: Vec<_> = np
            .managed_fields()
            .iter()
            .filter_map(|m| m.manager.as_deref())
            .collect();
        assert_eq!(managers, ["urumi"], "{}", np.name_any());
    }
    cleanup(&g, &ctx).await;
}

#[tokio::test]
async fn applying_twice_changes_nothing() {
    let (g, ctx) = setup("idem", Plan::Small).await;
    let profile = woo().network();
    g.apply_all(&ctx, &profile).await.expect("first apply");
    // The quota controller writes the quota's status once; wait for it so that its
    // resourceVersion only moves if our second apply changes something.
    let quotas = Api::<ResourceQuota>::namespaced(client().await, &ctx.namespace);
    let has_status = |rq: Option<&ResourceQuota>| {
        rq.and_then(|r| r.status.as_ref())
            .and_then(|s| s.hard.as_ref())
            .is_some()
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(quotas.clone(), "urumi-quota", has_status),
    )
    .await
    .expect("the quota controller fills the status")
    .expect("watch");
    let before = g.apply_all(&ctx, &profile).await.expect("second apply");
    let started = Instant::now();
    let after = g.apply_all(&ctx, &profile).await.expect("third apply");
    eprintln!(
        "apply_all changing nothing: {} ms",
        started.elapsed().as_millis()
    );
    assert_eq!(before, after, "a repeated apply must not change any object");
    let now = quotas.get("urumi-quota").await.expect("quota");
    assert_eq!(
        now.resource_version(),
        before
            .resource_versions
            .get("ResourceQuota/urumi-quota")
            .cloned()
    );
    assert_eq!(before.resource_versions.len(), 9, "{before:?}");
    cleanup(&g, &ctx).await;
}

#[tokio::test]
async fn credentials_are_created_once_and_never_rotated() {
    let (g, ctx) = setup("secret", Plan::Small).await;
    g.apply_namespace(&ctx).await.expect("namespace");
    let engine = woo();
    let layout = engine.credentials(&ctx);

    assert_eq!(
        g.ensure_credentials(&ctx, &layout).await.expect("first"),
        CredentialsOutcome::Created
    );
    let first = g
        .read_credentials(&ctx.namespace, &layout)
        .await
        .expect("read");
    let secrets = Api::<Secret>::namespaced(client().await, &ctx.namespace);
    let rv = secrets
        .get(&layout.secret_name)
        .await
        .expect("secret")
        .resource_version();
    assert_eq!(
        g.ensure_credentials(&ctx, &layout).await.expect("second"),
        CredentialsOutcome::Existing
    );
    let second = g
        .read_credentials(&ctx.namespace, &layout)
        .await
        .expect("read");
    assert_eq!(first, second, "a retry must not rotate a password");
    assert_eq!(
        secrets
            .get(&layout.secret_name)
            .await
            .expect("secret")
            .resource_version(),
        rv
    );
    let admin = g
        .read_admin_credentials(&ctx.namespace, &layout)
        .await
        .expect("admin");
    assert_eq!(admin.user, "admin");
    assert!(admin.password.expose().len() >= 24);
    assert!(
        admin
            .password
            .expose()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
    );
    for key in layout.keys() {
        assert!(second.get(key).is_some(), "Secret lacks {key}");
    }

    // A key lost (or added by a newer engine) is filled in; the others stay.
    let patch = serde_json::json!({"data": {"webhook-secret": null}});
    secrets
        .patch(
            &layout.secret_name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("drop a key");
    assert_eq!(
        g.ensure_credentials(&ctx, &layout).await.expect("third"),
        CredentialsOutcome::Completed {
            added: vec!["webhook-secret".to_owned()]
        }
    );
    let third = g
        .read_credentials(&ctx.namespace, &layout)
        .await
        .expect("read");
    for key in ["db-password", "db-root-password", "admin-password"] {
        assert_eq!(third.get(key), first.get(key), "{key} must be kept");
    }
    assert!(third.get("webhook-secret").is_some());
    cleanup(&g, &ctx).await;
}

fn pod(name: &str, resources: Option<serde_json::Value>) -> Pod {
    let mut container = serde_json::json!({
        "name": "main",
        "image": "registry.k8s.io/pause:3.10",
    });
    if let Some(r) = resources {
        container["resources"] = r;
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container]},
    }))
    .expect("pod")
}

#[tokio::test]
async fn pods_over_the_quota_are_refused() {
    let (g, ctx) = setup("quota", Plan::Small).await;
    g.apply_all(&ctx, &woo().network()).await.expect("applied");
    let pods = Api::<Pod>::namespaced(client().await, &ctx.namespace);

    // No resources declared: the LimitRange's defaults apply and the pod fits.
    let bare = pods
        .create(&PostParams::default(), &pod("bare", None))
        .await
        .expect("a pod without resources is admitted");
    let limits = bare.spec.as_ref().expect("spec").containers[0]
        .resources
        .as_ref()
        .and_then(|r| r.limits.clone())
        .expect("defaults filled in");
    assert!(limits.contains_key("cpu") && limits.contains_key("memory"));

    // small: requests.cpu 1 CPU in total; 600m fits once, not twice.
    let big = || {
        Some(serde_json::json!({
            "requests": {"cpu": "600m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "256Mi"},
        }))
    };
    pods.create(&PostParams::default(), &pod("first", big()))
        .await
        .expect("the first pod fits");
    let err = pods
        .create(&PostParams::default(), &pod("second", big()))
        .await
        .expect_err("the second pod exceeds requests.cpu");
    match &err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 403, "{s:?}");
            assert!(s.message.contains("exceeded quota"), "{}", s.message);
        }
        other => panic!("expected a 403 from the quota, got {other}"),
    }
    // And one container above the LimitRange's maximum is refused on its own.
    let huge = Some(serde_json::json!({"limits": {"cpu": "1500m", "memory": "256Mi"}}));
    let err = pods
        .create(&PostParams::default(), &pod("huge", huge))
        .await
        .expect_err("over the per-container max");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403 && s.message.contains("maximum")),
        "{err}"
    );
    cleanup(&g, &ctx).await;
}

#[tokio::test]
async fn delete_namespace_waits_until_it_is_gone() {
    let (g, ctx) = setup("delete", Plan::Small).await;
    let engine = woo();
    g.apply_all(&ctx, &engine.network()).await.expect("applied");
    g.ensure_credentials(&ctx, &engine.credentials(&ctx))
        .await
        .expect("secret");
    let took = g
        .delete_namespace(&ctx.namespace, DELETE_TIMEOUT)
        .await
        .expect("deleted");
    eprintln!("namespace deletion: {} ms", took.as_millis());
    let gone = Api::<Namespace>::all(client().await)
        .get_opt(&ctx.namespace)
        .await
        .expect("get");
    assert!(gone.is_none(), "the namespace must be gone");
    // Idempotent: a namespace already gone is fine.
    let again = g
        .delete_namespace(&ctx.namespace, DELETE_TIMEOUT)
        .await
        .expect("already gone");
    assert!(again < Duration::from_secs(5));
}

#[tokio::test]
async fn a_namespace_stuck_in_terminating_is_reported_with_its_reason() {
    let (g, ctx) = setup("stuck", Plan::Small).await;
    g.apply_namespace(&ctx).await.expect("namespace");
    let cms = Api::<ConfigMap>::namespaced(client().await, &ctx.namespace);
    let held: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "held", "finalizers": ["urumi.dev/test-hold"]},
    }))
    .expect("configmap");
    cms.create(&PostParams::default(), &held)
        .await
        .expect("configmap");

    let err = g
        .delete_namespace(&ctx.namespace, Duration::from_secs(20))
        .await
        .expect_err("a finalizer holds the namespace");
    let msg = err.to_string();
    eprintln!("stuck namespace reported as: {msg}");
    assert!(err.is_retryable(), "{msg}");
    assert!(msg.contains("stuck in Terminating"), "{msg}");
    assert!(
        msg.contains("urumi.dev/test-hold") || msg.contains("NamespaceContentRemaining"),
        "the reason must name what is left: {msg}"
    );

    // Release the finalizer: a second call finishes the deletion.
    let patch = serde_json::json!({"metadata": {"finalizers": null}});
    cms.patch("held", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("release");
    g.delete_namespace(&ctx.namespace, DELETE_TIMEOUT)
        .await
        .expect("deleted once released");
    let _ = cms.delete("held", &DeleteParams::default()).await;
}

#[tokio::test]
async fn a_policy_no_longer_configured_is_removed() {
    let (g, ctx) = setup("prune", Plan::Small).await;
    let profile = woo().network();
    g.apply_all(&ctx, &profile).await.expect("applied");
    let closed = Guardrails::new(
        client().await,
        GuardrailsConfig {
            internet_egress: false,
            ..GuardrailsConfig::default()
        },
    );
    let applied = closed.apply_all(&ctx, &profile).await.expect("re-applied");
    assert!(
        !applied
            .resource_versions
            .contains_key("NetworkPolicy/urumi-allow-egress-internet")
    );
    let nps = Api::<NetworkPolicy>::namespaced(client().await, &ctx.namespace);
    assert!(
        nps.get_opt("urumi-allow-egress-internet")
            .await
            .expect("get")
            .is_none(),
        "turning internet egress off must remove its policy"
    );
    assert!(
        nps.get_opt("urumi-default-deny")
            .await
            .expect("get")
            .is_some()
    );
    cleanup(&g, &ctx).await;
}

#[tokio::test]
async fn concurrent_credential_calls_agree_on_one_secret() {
    let (g, ctx) = setup("race", Plan::Small).await;
    g.apply_namespace(&ctx).await.expect("namespace");
    let layout = woo().credentials(&ctx);
    let (a, b) = tokio::join!(
        g.ensure_credentials(&ctx, &layout),
        g.ensure_credentials(&ctx, &layout)
    );
    let mut outcomes = vec![a.expect("first caller"), b.expect("second caller")];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(
        outcomes,
        [CredentialsOutcome::Created, CredentialsOutcome::Existing],
        "exactly one caller creates the Secret"
    );
    let once = g
        .read_credentials(&ctx.namespace, &layout)
        .await
        .expect("read");
    g.ensure_credentials(&ctx, &layout).await.expect("again");
    assert_eq!(
        g.read_credentials(&ctx.namespace, &layout)
            .await
            .expect("read"),
        once
    );
    cleanup(&g, &ctx).await;
}

#[tokio::test]
async fn privileged_pods_are_refused_by_pod_security() {
    let (g, ctx) = setup("psa", Plan::Small).await;
    g.apply_all(&ctx, &woo().network()).await.expect("applied");
    let pods = Api::<Pod>::namespaced(client().await, &ctx.namespace);
    let mut p = pod("privileged", None);
    if let Some(spec) = p.spec.as_mut() {
        spec.host_network = Some(true);
    }
    let err = pods
        .create(&PostParams::default(), &p)
        .await
        .expect_err("baseline forbids host networking");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403 && s.message.contains("baseline")),
        "{err}"
    );
    cleanup(&g, &ctx).await;
}
