//! Any bytes as the JSON of a create request (`urumi_core::CreateStore`), and when they parse,
//! through every check the provisioner makes before it writes anything — the same order as
//! `KubeProvisioner::create` (name, tenant, engine, plan) — then through everything built
//! from an accepted request without a cluster: the namespace, the guardrail objects, the
//! engine's chart values, URLs and workloads. Never panics; a refusal is a 4xx with a
//! message; what is accepted makes valid Kubernetes names.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use urumi_core::engine::{EngineSettings, Engines};
use urumi_core::guardrails::{self, GuardrailsConfig};
use urumi_core::store::{EngineId, Plan, Plans, Store, StoreName, StoreSpec, TenantId};
use urumi_core::{CreateStore, Error};

static ENGINES: LazyLock<Engines> = LazyLock::new(Engines::default);
static GUARDRAILS: LazyLock<GuardrailsConfig> = LazyLock::new(GuardrailsConfig::default);
static PLANS: LazyLock<Plans> = LazyLock::new(Plans::default);
static ENGINE_SETTINGS: LazyLock<EngineSettings> = LazyLock::new(EngineSettings::default);

/// A refusal is a client error with something to say.
fn refused(e: Error) {
    let status = e.kind().http_status();
    assert!((400..500).contains(&status), "{e} answers {status}");
    assert!(!e.tenant_message().is_empty());
    let _ = e.to_string();
}

fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<CreateStore>(data) else {
        return;
    };
    // What an adapter stores for idempotency: the request, as JSON, read back the same.
    let text = serde_json::to_string(&request).expect("serializable");
    assert_eq!(serde_json::from_str::<CreateStore>(&text).expect("reads back"), request);

    let name = match StoreName::new(request.name.clone()) {
        Ok(n) => n,
        Err(e) => return refused(e),
    };
    let tenant = match request.tenant.clone().map(TenantId::new).transpose() {
        Ok(t) => t.unwrap_or_else(|| TenantId::new("acme").expect("valid")),
        Err(e) => return refused(e),
    };
    let engine_id = match request.engine.clone().map(EngineId::new).transpose() {
        Ok(id) => id.unwrap_or_default(),
        Err(e) => return refused(e),
    };
    let engine = match ENGINES.get(&engine_id) {
        Ok(engine) => engine,
        Err(e) => return refused(e),
    };
    let plan = match request.plan.as_deref().map(str::parse::<Plan>).transpose() {
        Ok(p) => p.unwrap_or_default(),
        Err(e) => return refused(e),
    };

    // Accepted: everything built from it is well-formed.
    let spec = StoreSpec::new(name.clone(), tenant).engine(engine_id).plan(plan);
    let namespace = GUARDRAILS.namespace_for(&name);
    assert!(dns_label(&namespace), "namespace {namespace:?}");
    let ctx = GUARDRAILS.context(&spec, &PLANS).expect("the default plans are valid");
    for (key, value) in ctx.labels() {
        assert!(value.len() <= 63, "label {key}={value:?}");
    }
    let _ = guardrails::namespace(&ctx, &GUARDRAILS);
    let _ = guardrails::resource_quota(&ctx);
    guardrails::limit_range(&ctx).expect("the default plans make a LimitRange");
    let _ = guardrails::network_policies(&ctx, &GUARDRAILS, &engine.network());
    let _ = engine.credentials(&ctx);
    let release = engine.release_name(&name);
    assert!(dns_label(&release) && release.len() <= 53, "release {release:?}");
    engine.values(&ctx, &ENGINE_SETTINGS).expect("the default plans fit the engine");
    let _ = engine.workloads(&ctx, 1);
    let _ = engine.urls(&name, &ENGINE_SETTINGS);

    let store = Store::new(spec, namespace);
    let json = serde_json::to_string(&store).expect("a store is JSON");
    let back: Store = serde_json::from_str(&json).expect("a store reads back");
    assert_eq!(back.name, store.name);
});
