//! The WooCommerce engine end to end against a real Kubernetes API (tests/cluster: the
//! ResourceQuota and LimitRanger admission plugins are real, KWOK runs the pods):
//!
//! ```text
//!  guardrails.apply_all ─▶ ensure_credentials ─▶ helm upgrade --install <bundled chart> -f engine values
//!        ─▶ await every engine workload (Deployment available, StatefulSet ready, Job Complete)
//!        ─▶ the quota's status.used ≤ status.hard ─▶ helm uninstall ─▶ delete_namespace
//! ```
//!
//! This is the check that a plan's quota really admits WordPress, MariaDB and the setup
//! Job side by side. `eval "$(tests/cluster/up)"` first (KUBECONFIG, and helm on PATH);
//! without it the test fails, it is never skipped.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, ResourceQuota};
use kube::Client;
use kube::api::{Api, ListParams};
use kube::runtime::wait::{await_condition, conditions};
use rand::Rng;
use urumi_core::engine::{Engine, EngineSettings, WooCommerce, WorkloadKind};
use urumi_core::guardrails::quantity::{bytes, cpu_millis};
use urumi_core::guardrails::{Guardrails, GuardrailsConfig};
use urumi_core::helm::{HelmCli, HelmDriver, UpgradeOptions};
use urumi_core::store::{Plan, Plans, StoreName, StoreSpec, TenantId};

const READY_TIMEOUT: Duration = Duration::from_secs(240);

async fn client() -> Client {
    if std::env::var_os("KUBECONFIG").is_none() {
        panic!(
            "KUBECONFIG is not set: run `eval \"$(tests/cluster/up)\"` from the repository root \
             (tests/cluster/up starts the local Kubernetes and puts helm on PATH)"
        );
    }
    Client::try_default()
        .await
        .expect("a client from KUBECONFIG (is tests/cluster/up running?)")
}

fn deployment_available(d: Option<&Deployment>) -> bool {
    let Some(d) = d else { return false };
    let want = d.spec.replicas.unwrap_or(1);
    let st = d.status.as_ref();
    st.and_then(|s| s.observed_generation) >= d.metadata.generation
        && st.and_then(|s| s.available_replicas).unwrap_or(0) >= want
        && st.and_then(|s| s.updated_replicas).unwrap_or(0) >= want
}

fn statefulset_ready(s: Option<&StatefulSet>) -> bool {
    let Some(s) = s else { return false };
    let want = s.spec.replicas.unwrap_or(1);
    let st = s.status.as_ref();
    st.and_then(|s| s.observed_generation) >= s.metadata.generation
        && st.and_then(|s| s.ready_replicas).unwrap_or(0) >= want
}

/// Why pods were not created, from the namespace's events (quota refusals show here).
async fn failed_creates(client: &Client, ns: &str) -> String {
    let events = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    events
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter_map(|e| {
            Some(format!(
                "{}: {}",
                e.reason.as_deref()?,
                e.message.as_deref().unwrap_or("")
            ))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn woocommerce_installs_and_gets_ready_within_the_small_plan() {
    let client = client().await;
    let suffix: u32 = rand::rng().random_range(0..0x10000);
    let spec = StoreSpec::new(
        StoreName::new(format!("eng-small-{suffix:04x}")).expect("valid name"),
        TenantId::new("acme").expect("valid tenant"),
    )
    .plan(Plan::Small);
    let cfg = GuardrailsConfig::default();
    let ctx = cfg.context(&spec, &Plans::default()).expect("valid plans");
    let guardrails = Guardrails::new(client.clone(), cfg);
    let cache = tempfile::tempdir().expect("tempdir");
    let engine = WooCommerce::new().with_cache_dir(cache.path());
    let helm = HelmCli::new();
    let release = engine.release_name(&ctx.name);
    let started = Instant::now();

    guardrails
        .apply_all(&ctx, &engine.network())
        .await
        .expect("guardrails");
    guardrails
        .ensure_credentials(&ctx, &engine.credentials(&ctx))
        .await
        .expect("credentials");
    // Admission enforces a quota only once the controller has computed its status.
    let quotas = Api::<ResourceQuota>::namespaced(client.clone(), &ctx.namespace);
    let computed = |rq: Option<&ResourceQuota>| {
        rq.and_then(|r| r.status.as_ref())
            .and_then(|s| s.hard.as_ref())
            .is_some()
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(quotas.clone(), "urumi-quota", computed),
    )
    .await
    .expect("the quota controller computes the quota")
    .expect("watch");

    let values = engine
        .values(&ctx, &EngineSettings::default())
        .expect("values");
    let chart = engine.chart().expect("chart");
    let rel = helm
        .upgrade_install(
            &release,
            &ctx.namespace,
            &chart,
            values,
            &UpgradeOptions::new(),
        )
        .await
        .expect("helm install");

    for w in engine.workloads(&ctx, rel.revision) {
        let ns = ctx.namespace.as_str();
        let wait = async {
            match w.kind {
                WorkloadKind::Deployment => await_condition(
                    Api::<Deployment>::namespaced(client.clone(), ns),
                    &w.name,
                    deployment_available,
                )
                .await
                .map(|_| ()),
                WorkloadKind::StatefulSet => await_condition(
                    Api::<StatefulSet>::namespaced(client.clone(), ns),
                    &w.name,
                    statefulset_ready,
                )
                .await
                .map(|_| ()),
                WorkloadKind::Job => await_condition(
                    Api::<Job>::namespaced(client.clone(), ns),
                    &w.name,
                    conditions::is_job_completed(),
                )
                .await
                .map(|_| ()),
            }
        };
        match tokio::time::timeout(READY_TIMEOUT, wait).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("watching {} {}: {e}", w.kind, w.name),
            Err(_) => panic!(
                "{} {} not ready after {READY_TIMEOUT:?}; warnings in {ns}:\n{}",
                w.kind,
                w.name,
                failed_creates(&client, ns).await
            ),
        }
    }
    eprintln!(
        "guardrails + credentials + helm install + ready ({}): {} ms",
        ctx.plan,
        started.elapsed().as_millis()
    );

    // What the quota controller counted stays within what the plan grants.
    let rq = quotas.get("urumi-quota").await.expect("quota");
    let status = rq.status.expect("status");
    let (hard, used) = (status.hard.expect("hard"), status.used.expect("used"));
    for key in ["requests.cpu", "limits.cpu"] {
        let (h, u) = (
            cpu_millis(&hard[key].0).expect("cpu"),
            cpu_millis(&used[key].0).expect("cpu"),
        );
        assert!(u <= h, "{key}: used {u:?} > hard {h:?}");
    }
    for key in ["requests.memory", "limits.memory", "requests.storage"] {
        let (h, u) = (
            bytes(&hard[key].0).expect("bytes"),
            bytes(&used[key].0).expect("bytes"),
        );
        assert!(u <= h, "{key}: used {u:?} > hard {h:?}");
    }
    eprintln!(
        "quota used: {:?}",
        used.iter()
            .map(|(k, v)| format!("{k}={}", v.0))
            .collect::<Vec<_>>()
    );

    let store_pvs = |items: Vec<k8s_openapi::api::core::v1::PersistentVolume>| -> Vec<String> {
        items
            .into_iter()
            .filter(|pv| {
                pv.spec
                    .as_ref()
                    .and_then(|s| s.claim_ref.as_ref())
                    .and_then(|c| c.namespace.as_deref())
                    == Some(ctx.namespace.as_str())
            })
            .map(|pv| pv.metadata.name.unwrap_or_default())
            .collect()
    };
    // Both volumes are bound while the store runs (checked before the uninstall: MariaDB's
    // claim goes with its StatefulSet, `whenDeleted: Delete`). KWOK makes the pods Ready
    // without waiting for their claims, so the binding may come moments later (30 s).
    let pvs = Api::<k8s_openapi::api::core::v1::PersistentVolume>::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    let bound = loop {
        let bound = store_pvs(
            pvs.list(&ListParams::default())
                .await
                .expect("list PVs")
                .items,
        );
        if bound.len() >= 2 || Instant::now() > deadline {
            break bound;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(bound.len(), 2, "WordPress and MariaDB volumes: {bound:?}");
    helm.uninstall(&release, &ctx.namespace)
        .await
        .expect("helm uninstall");

    let took = guardrails
        .delete_namespace(&ctx.namespace, Duration::from_secs(120))
        .await
        .expect("namespace deleted");
    eprintln!(
        "namespace deletion with the store's workloads and volumes: {} ms",
        took.as_millis()
    );
    let pvcs = Api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>::namespaced(
        client.clone(),
        &ctx.namespace,
    )
    .list(&ListParams::default())
    .await
    .expect("list PVCs");
    assert!(pvcs.items.is_empty(), "no PVC of the store remains");
    // The volumes themselves are released and deleted by their reclaim policy.
    let mut left = Vec::new();
    for _ in 0..60 {
        left = store_pvs(
            pvs.list(&ListParams::default())
                .await
                .expect("list PVs")
                .items,
        );
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        left.is_empty(),
        "PersistentVolumes of the store remain: {left:?}"
    );
}
