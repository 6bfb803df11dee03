//! `ProvisionerSettings` as a user writes it in TOML: camelCase keys (snake_case
//! accepted), every nested section, unknown keys refused by name, round trips; and what
//! the settings turn into (an in-cluster webhook URL opens exactly that egress; the
//! cluster issuer reaches the store's ingress values).
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use urumi_core::ProvisionerSettings;
use urumi_core::engine::{Engine, WooCommerce};
use urumi_core::guardrails::{GuardrailsConfig, NetworkProfile, network_policies};
use urumi_core::store::{Plan, Plans, StoreName, TenantId};

const FULL: &str = r#"
baseDomain = "shops.example.com"
tls = true
clusterIssuer = "letsencrypt-prod"
ingressClass = "traefik"
ingressNamespace = "kube-system"
storageClass = "longhorn"
namespacePrefix = "shop-"
webhooksUrl = "http://urumi.platform.svc.cluster.local:8080"
internetEgress = false
dnsNamespace = "kube-system"
dnsPodLabels = { "k8s-app" = "kube-dns" }
namespaceDeletionTimeoutSecs = 120
changeRetentionSecs = 86400
verifyTarget = "http://{name}-wordpress.{namespace}.svc"

[[egressAllow]]
namespace = "monitoring"
podLabels = { app = "collector" }
ports = [4317]

[plans.small]
cpuRequest = "500m"
cpuLimit = "1"
memoryRequest = "512Mi"
memoryLimit = "1Gi"
pods = 8
pvcs = 3
storage = "5Gi"

[limits]
storesPerTenant = 3
creationsPerHour = 2
storesTotal = 50
rateWindowSecs = 600

[orchestrator]
concurrency = 2
leaseTtl = 20
pollInterval = 1.5
readinessTimeout = 300
resyncInterval = 0
shutdownGrace = 10
retry = { maxAttempts = 5, base = 250, cap = 4000 }

[storeAccess]
clusterRole = "urumi-store"
serviceAccount = "urumi"
serviceAccountNamespace = "urumi-system"
"#;

#[test]
fn every_setting_reads_from_camel_case_toml() {
    let s: ProvisionerSettings = toml::from_str(FULL).unwrap();
    s.validate().unwrap();
    assert_eq!(s.base_domain, "shops.example.com");
    assert_eq!(s.cluster_issuer.as_deref(), Some("letsencrypt-prod"));
    assert_eq!(s.namespace_prefix, "shop-");
    assert!(!s.internet_egress);
    assert_eq!(s.egress_allow[0].ports, [4317]);
    assert_eq!(s.plans.small.cpu_request, "500m");
    assert_eq!(
        s.plans.medium,
        Plans::default().medium,
        "unset plans keep defaults"
    );
    assert_eq!(s.limits.stores_per_tenant, 3);
    assert_eq!(s.orchestrator.concurrency, 2);
    assert_eq!(s.orchestrator.poll_interval, Duration::from_millis(1500));
    assert_eq!(s.orchestrator.shutdown_grace, Duration::from_secs(10));
    assert_eq!(s.orchestrator.retry.max_attempts, 5);
    assert_eq!(s.store_access.as_ref().unwrap().service_account, "urumi");
    assert_eq!(s.change_retention_secs, 86400);
    // And back: what it serializes reads again to the same settings.
    let again: ProvisionerSettings = toml::from_str(&toml::to_string(&s).unwrap()).unwrap();
    assert_eq!(again, s);
}

#[test]
fn snake_case_keys_are_accepted_too() {
    let s: ProvisionerSettings = toml::from_str(
        r#"
base_domain = "a.example.com"
namespace_prefix = "x-"
[limits]
stores_per_tenant = 7
[orchestrator]
lease_ttl = 12
[plans.large]
cpu_request = "2"
cpu_limit = "4"
memory_request = "2Gi"
memory_limit = "4Gi"
pods = 20
pvcs = 8
storage = "40Gi"
"#,
    )
    .unwrap();
    assert_eq!(
        s.base_domain, "a.example.com",
        "base_domain is no longer ignored"
    );
    assert_eq!(s.namespace_prefix, "x-");
    assert_eq!(s.limits.stores_per_tenant, 7);
    assert_eq!(s.orchestrator.lease_ttl, Duration::from_secs(12));
    assert_eq!(s.plans.large.cpu_limit, "4");
}

#[test]
fn an_unknown_key_is_refused_with_its_name() {
    for (toml_text, key) in [
        ("baseDomian = \"typo.example.com\"", "baseDomian"),
        ("[limits]\nstoresPerTennant = 3", "storesPerTennant"),
        ("[orchestrator]\nconcurency = 3", "concurency"),
        ("[plans.small]\ncpu = \"1\"", "cpu"),
        ("[orchestrator.retry]\nattempts = 3", "attempts"),
    ] {
        let err = toml::from_str::<ProvisionerSettings>(toml_text)
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains(key), "{key}: {err}");
    }
}

fn ctx(plan: Plan) -> urumi_core::guardrails::StoreContext {
    GuardrailsConfig::default()
        .context(
            &urumi_core::store::StoreSpec::new(
                StoreName::new("shop1").unwrap(),
                TenantId::new("acme").unwrap(),
            )
            .plan(plan),
            &Plans::default(),
        )
        .unwrap()
}

#[test]
fn an_in_cluster_webhook_url_opens_exactly_that_egress() {
    let s = ProvisionerSettings {
        webhooks_url: Some("http://urumi.platform.svc.cluster.local:8080".to_owned()),
        ..Default::default()
    };
    let cfg = s.guardrails().unwrap();
    assert_eq!(cfg.egress_allow.len(), 1);
    assert_eq!(cfg.egress_allow[0].namespace, "platform");
    assert_eq!(cfg.egress_allow[0].ports, [8080]);
    assert!(cfg.egress_allow[0].pod_labels.is_empty());
    let profile: NetworkProfile = WooCommerce::new().network();
    let policies = network_policies(&ctx(Plan::Small), &cfg, &profile);
    let json = serde_json::to_string(&policies).unwrap();
    assert!(
        json.contains("\"platform\""),
        "the platform namespace is allowed"
    );
    assert!(json.contains("8080"), "on its port");
    // A public receiver adds no in-cluster egress; a non-URL is a config error.
    let public = ProvisionerSettings {
        webhooks_url: Some("https://hooks.example.com".to_owned()),
        ..Default::default()
    };
    assert!(public.guardrails().unwrap().egress_allow.is_empty());
    let bad = ProvisionerSettings {
        webhooks_url: Some("not a url".to_owned()),
        ..Default::default()
    };
    assert_eq!(
        bad.validate().unwrap_err().kind(),
        urumi_core::ErrorKind::InvalidConfig
    );
}
