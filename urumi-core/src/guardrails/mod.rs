//! Guardrails: the typed Kubernetes objects that fence one store in, and the small
//! part that applies them.
//!
//! ```text
//!  StoreSpec + Plans ──GuardrailsConfig::context──▶ StoreContext {name, tenant, namespace, size}
//!                                                        │
//!        pure builders (no client; table-tested)         ▼
//!   namespace()  resource_quota()  limit_range()  network_policies(profile)  credentials_secret()
//!        │               │               │                 │                        │
//!        └───────────────┴───────┬───────┴─────────────────┘                        │
//!                                ▼                                                  ▼
//!   Guardrails (kube::Client) ── server-side apply, field manager "urumi", force ── create if absent
//!        apply_namespace()  apply_policies()                               ensure_credentials()
//!        delete_namespace() ── foreground delete ── await_condition(is_deleted(uid)) ── timeout
//!                                                    └─ stuck? read status.conditions → why
//! ```
//!
//! Every apply is idempotent: the objects are a pure function of the store, so applying
//! them again leaves every `resourceVersion` unchanged. The credentials Secret is the
//! exception by design: it is created once from the OS random number generator and
//! never re-applied, so a retry never rotates a password (see [`credentials`]).
//!
//! What the store *runs* is not known here: the engine describes its pods with a
//! [`NetworkProfile`] and its Secret with a [`CredentialsLayout`].
//!
//! NetworkPolicies are enforced only by a CNI that implements them (Calico, Cilium,
//! kube-router in k3s, kindnet in recent kind); elsewhere they are stored and ignored.

mod apply;
pub mod credentials;
mod delete;
mod network;
mod objects;
pub mod quantity;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::{Plan, PlanSize, Plans, Store, StoreName, StoreSpec, TenantId};

pub use apply::{Applied, CredentialsOutcome, Guardrails};
pub use credentials::{
    AdminCredentials, Credentials, CredentialsLayout, SecretString, credentials_secret,
};
pub use delete::namespace_stuck_reason;
pub use network::{NetworkProfile, network_policies};
pub use objects::{ContainerDefaults, container_defaults, limit_range, namespace, resource_quota};

/// The one field manager every urumi server-side apply uses.
pub const FIELD_MANAGER: &str = "urumi";

/// `app.kubernetes.io/managed-by`: the label key that marks urumi's objects.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`] on urumi's objects.
pub const MANAGED_BY: &str = "urumi";
/// The label carrying the store's name.
pub const STORE_LABEL: &str = "urumi.dev/store";
/// The label carrying the owning tenant.
pub const TENANT_LABEL: &str = "urumi.dev/tenant";
/// The label carrying the store's plan.
pub const PLAN_LABEL: &str = "urumi.dev/plan";

/// The private, link-local and loopback ranges that store pods may not reach on the
/// web ports: pod and service networks of most clusters, other stores, the platform,
/// cloud metadata endpoints (169.254.169.254).
pub const PRIVATE_IPV4: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "127.0.0.0/8",
];
/// The IPv6 counterparts of [`PRIVATE_IPV4`]: unique local, link-local, loopback.
pub const PRIVATE_IPV6: &[&str] = &["fc00::/7", "fe80::/10", "::1/128"];

/// Namespaces a store may open an egress connection to besides DNS and the internet,
/// e.g. the platform's webhook receiver. Empty by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressAllow {
    /// The namespace (matched by `kubernetes.io/metadata.name`).
    pub namespace: String,
    /// Pods of that namespace, by label; empty: every pod.
    #[serde(default, alias = "pod_labels")]
    pub pod_labels: BTreeMap<String, String>,
    /// TCP ports; empty: every port.
    #[serde(default)]
    pub ports: Vec<u16>,
}

/// How guardrails are laid out in a cluster. [`Default`] fits ingress-nginx on a
/// cluster whose DNS is the usual `kube-dns` Service in `kube-system`. Deserializes
/// from configuration (snake_case keys, every one optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GuardrailsConfig {
    /// A store's namespace is this prefix + its name (`store-` by default).
    pub namespace_prefix: String,
    /// The namespace of the ingress controller, the only one allowed to reach a
    /// store's web pods: `ingress-nginx` (default), `kube-system` for k3s' Traefik.
    pub ingress_namespace: String,
    /// The namespace of the cluster DNS (`kube-system`).
    pub dns_namespace: String,
    /// The labels of the cluster DNS pods (`k8s-app=kube-dns`, which CoreDNS keeps).
    pub dns_pod_labels: BTreeMap<String, String>,
    /// Whether store pods may open HTTP(S) connections (TCP 80/443) to public
    /// addresses: WordPress and its setup Job download plugins and themes. Private
    /// ranges ([`PRIVATE_IPV4`], [`PRIVATE_IPV6`]) stay closed either way.
    pub internet_egress: bool,
    /// Extra egress destinations inside the cluster (e.g. the platform's webhook
    /// receiver). None by default.
    pub egress_allow: Vec<EgressAllow>,
    /// Pod Security level enforced on store namespaces (`baseline`). `warn` and
    /// `audit` are always `restricted`.
    pub pod_security_enforce: String,
}

impl Default for GuardrailsConfig {
    fn default() -> Self {
        GuardrailsConfig {
            namespace_prefix: "store-".to_owned(),
            ingress_namespace: "ingress-nginx".to_owned(),
            dns_namespace: "kube-system".to_owned(),
            dns_pod_labels: BTreeMap::from([("k8s-app".to_owned(), "kube-dns".to_owned())]),
            internet_egress: true,
            egress_allow: Vec::new(),
            pod_security_enforce: "baseline".to_owned(),
        }
    }
}

impl GuardrailsConfig {
    /// The namespace of the store `name`: [`namespace_prefix`](Self::namespace_prefix)
    /// followed by the name, e.g. `store-shop1`.
    pub fn namespace_for(&self, name: &StoreName) -> String {
        format!("{}{}", self.namespace_prefix, name)
    }

    /// Everything the builders need to know about a new store.
    ///
    /// Errors: `InvalidConfig` when the plan's size is not made of valid quantities.
    pub fn context(&self, spec: &StoreSpec, plans: &Plans) -> Result<StoreContext> {
        StoreContext::new(
            spec.name.clone(),
            spec.tenant.clone(),
            self.namespace_for(&spec.name),
            spec.plan,
            plans.size(spec.plan).clone(),
        )
    }

    /// The context of a store already recorded: its recorded namespace wins over
    /// [`namespace_for`](Self::namespace_for), so a store resumed or deleted after the
    /// prefix changed still finds its namespace.
    ///
    /// Errors: as [`context`](Self::context).
    pub fn context_for_store(&self, store: &Store, plans: &Plans) -> Result<StoreContext> {
        StoreContext::new(
            store.name.clone(),
            store.tenant.clone(),
            store.namespace.clone(),
            store.plan,
            plans.size(store.plan).clone(),
        )
    }
}

/// One store as the guardrails and the engine see it. Built by
/// [`GuardrailsConfig::context`] (or [`StoreContext::new`]), which checks the plan size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreContext {
    /// The store's name.
    pub name: StoreName,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its namespace, e.g. `store-shop1`.
    pub namespace: String,
    /// Its plan.
    pub plan: Plan,
    /// The plan's size.
    pub size: PlanSize,
    /// Suspended: the engine stops its workloads and removes its Ingress, keeping
    /// volumes and credentials (see [`StoreContext::suspended`]).
    pub suspended: bool,
}

impl StoreContext {
    /// A context; refuses a plan size whose quantities do not parse.
    ///
    /// Errors: `InvalidConfig` naming the plan and the field.
    pub fn new(
        name: StoreName,
        tenant: TenantId,
        namespace: impl Into<String>,
        plan: Plan,
        size: PlanSize,
    ) -> Result<Self> {
        check_size(plan, &size)?;
        Ok(StoreContext {
            name,
            tenant,
            namespace: namespace.into(),
            plan,
            size,
            suspended: false,
        })
    }

    /// The same context for a store that is (or is not) suspended.
    pub fn suspended(mut self, suspended: bool) -> Self {
        self.suspended = suspended;
        self
    }

    /// The labels every guardrail object of this store carries.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
            (STORE_LABEL.to_owned(), self.name.to_string()),
            (TENANT_LABEL.to_owned(), self.tenant.to_string()),
            (PLAN_LABEL.to_owned(), self.plan.as_str().to_owned()),
        ])
    }
}

/// The plan size in numbers: millicores and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeNumbers {
    /// `requests.cpu`, millicores.
    pub cpu_request: u64,
    /// `limits.cpu`, millicores.
    pub cpu_limit: u64,
    /// `requests.memory`, bytes.
    pub memory_request: u64,
    /// `limits.memory`, bytes.
    pub memory_limit: u64,
    /// `requests.storage`, bytes.
    pub storage: u64,
    /// `limits.ephemeral-storage`, bytes (None: the plan sets no such quota).
    pub ephemeral_storage: Option<u64>,
}

impl SizeNumbers {
    /// Parses a plan size.
    ///
    /// Errors: `InvalidConfig` naming the plan and the field that does not parse.
    pub fn of(plan: Plan, size: &PlanSize) -> Result<Self> {
        let bad = |field: &str, e: quantity::QuantityError| Error::InvalidConfig {
            message: format!("plan {plan}: {field}: {e}"),
        };
        Ok(SizeNumbers {
            cpu_request: quantity::cpu_millis(&size.cpu_request)
                .map_err(|e| bad("cpuRequest", e))?,
            cpu_limit: quantity::cpu_millis(&size.cpu_limit).map_err(|e| bad("cpuLimit", e))?,
            memory_request: quantity::bytes(&size.memory_request)
                .map_err(|e| bad("memoryRequest", e))?,
            memory_limit: quantity::bytes(&size.memory_limit).map_err(|e| bad("memoryLimit", e))?,
            storage: quantity::bytes(&size.storage).map_err(|e| bad("storage", e))?,
            ephemeral_storage: size
                .ephemeral_storage
                .as_deref()
                .map(quantity::bytes)
                .transpose()
                .map_err(|e| bad("ephemeralStorage", e))?,
        })
    }
}

fn check_size(plan: Plan, size: &PlanSize) -> Result<()> {
    let n = SizeNumbers::of(plan, size)?;
    let problem = if n.cpu_request == 0 || n.memory_request == 0 {
        Some("cpuRequest and memoryRequest must be above zero")
    } else if n.cpu_limit < n.cpu_request || n.memory_limit < n.memory_request {
        Some("limits must be at least the requests")
    } else if size.pods == 0 {
        Some("pods must be at least 1")
    } else if n
        .ephemeral_storage
        .is_some_and(|e| e / u64::from(size.pods) < 1 << 20)
    {
        Some("ephemeralStorage must give each pod at least 1Mi")
    } else {
        None
    };
    match problem {
        Some(p) => Err(Error::InvalidConfig {
            message: format!("plan {plan}: {p}"),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! `mk_*` builders for the unit tests of this module and of the engine.
    use super::*;

    /// A context for store `name` of tenant `acme` on `plan` with the default sizes.
    pub fn mk_ctx(name: &str, plan: Plan) -> StoreContext {
        let cfg = GuardrailsConfig::default();
        let spec = StoreSpec::new(
            StoreName::new(name).expect("valid name"),
            TenantId::new("acme").expect("valid tenant"),
        )
        .plan(plan);
        cfg.context(&spec, &Plans::default())
            .expect("default plans are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::mk_ctx;
    use super::*;

    #[test]
    fn namespace_is_prefix_plus_name() {
        let mut cfg = GuardrailsConfig::default();
        let name = StoreName::new("shop1").expect("valid");
        assert_eq!(cfg.namespace_for(&name), "store-shop1");
        cfg.namespace_prefix = "wc-".to_owned();
        assert_eq!(cfg.namespace_for(&name), "wc-shop1");
    }

    #[test]
    fn a_recorded_store_keeps_its_namespace() {
        let ctx = mk_ctx("shop1", Plan::Large);
        let spec = StoreSpec::new(ctx.name.clone(), ctx.tenant.clone()).plan(Plan::Large);
        let store = Store::new(spec, "legacy-shop1");
        let cfg = GuardrailsConfig::default();
        let got = cfg
            .context_for_store(&store, &Plans::default())
            .expect("valid");
        assert_eq!(got.namespace, "legacy-shop1");
        assert_eq!(got.size, Plans::default().large);
    }

    #[test]
    fn config_deserializes_with_defaults() {
        let cfg: GuardrailsConfig = serde_json::from_value(serde_json::json!({
            "ingress_namespace": "kube-system",
            "egress_allow": [{"namespace": "urumi-system", "ports": [8080]}],
        }))
        .expect("partial config");
        assert_eq!(cfg.ingress_namespace, "kube-system");
        assert_eq!(cfg.namespace_prefix, "store-");
        assert_eq!(cfg.egress_allow[0].ports, [8080]);
        assert!(cfg.egress_allow[0].pod_labels.is_empty());
    }

    #[test]
    fn context_labels_name_the_store() {
        let ctx = mk_ctx("shop1", Plan::Medium);
        let labels = ctx.labels();
        assert_eq!(labels[MANAGED_BY_LABEL], "urumi");
        assert_eq!(labels[STORE_LABEL], "shop1");
        assert_eq!(labels[TENANT_LABEL], "acme");
        assert_eq!(labels[PLAN_LABEL], "medium");
    }

    #[test]
    fn bad_plan_sizes_are_invalid_config() {
        let good = Plans::default().small;
        let cases: Vec<(&str, PlanSize)> = vec![
            (
                "cpu",
                PlanSize {
                    cpu_request: "lots".into(),
                    ..good.clone()
                },
            ),
            (
                "memory",
                PlanSize {
                    memory_limit: "1e9".into(),
                    ..good.clone()
                },
            ),
            (
                "limit < request",
                PlanSize {
                    cpu_limit: "10m".into(),
                    ..good.clone()
                },
            ),
            (
                "zero pods",
                PlanSize {
                    pods: 0,
                    ..good.clone()
                },
            ),
        ];
        for (what, size) in cases {
            let err = StoreContext::new(
                StoreName::new("shop1").expect("valid"),
                TenantId::new("acme").expect("valid"),
                "store-shop1",
                Plan::Small,
                size,
            )
            .expect_err(what);
            assert_eq!(err.kind(), crate::error::ErrorKind::InvalidConfig, "{what}");
            assert!(err.to_string().contains("plan small"), "{what}: {err}");
        }
    }
}
