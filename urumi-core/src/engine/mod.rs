//! Engines: what a store runs, so that nothing in the orchestrator is
//! WooCommerce-specific.
//!
//! ```text
//!  StoreSpec.engine ──Engines::get(id)──▶ Arc<dyn Engine>     (unknown id → InvalidSpec "engine")
//!                                             │
//!        ┌──────────────┬──────────────┬──────┴───────┬───────────────┬──────────────┐
//!        ▼              ▼              ▼              ▼               ▼              ▼
//!   credentials()   network()       chart()        values()      workloads()      urls()
//!   Secret layout   pod labels      bundled .tgz   JSON for      Deployments,     storefront,
//!   → guardrails    → guardrails    on disk, once  helm -f       StatefulSets,    admin
//!                   NetworkPolicies → helm         (no secrets)  Jobs → readiness
//! ```
//!
//! An engine is a chart, its values, its readiness and its URLs. [`WooCommerce`] is
//! built in and its chart is bundled into this crate (see [`chart`]), so a program
//! embedding urumi needs nothing on disk but `helm` and a kubeconfig. Adding an
//! engine means implementing [`Engine`] and registering it in [`Engines`].

pub mod chart;
mod woocommerce;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::guardrails::{CredentialsLayout, NetworkProfile, StoreContext};
use crate::store::{EngineId, StoreName, Urls};

pub use chart::{BundledChart, ChartVersion};
pub use woocommerce::{WooCommerce, WorkloadShares};

/// The kind of a workload whose readiness makes a store `Ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    /// Ready when `status.observedGeneration ≥ metadata.generation` and every desired
    /// replica is updated and available.
    Deployment,
    /// Ready when `status.observedGeneration ≥ metadata.generation` and every desired
    /// replica is ready and current.
    StatefulSet,
    /// Ready when its `Complete` condition is `True`; its `Failed` condition `True`
    /// fails the store (with the Job's reason).
    Job,
}

impl WorkloadKind {
    /// The Kubernetes kind, e.g. `Deployment`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::Job => "Job",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One workload of a store that must be ready (or, for a Job, complete) before the
/// store is `Ready`. It lives in the store's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Its exact name.
    pub name: String,
    /// Labels it carries, enough to find it with a label selector (a cluster-wide
    /// watch filtered by them sees every store's workloads of this engine).
    pub labels: BTreeMap<String, String>,
}

/// Platform settings an engine needs to compute values and URLs. Deserializes from
/// configuration (snake_case keys, every one optional).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EngineSettings {
    /// Stores answer at `<name>.<base_domain>` (`127.0.0.1.nip.io` by default).
    pub base_domain: String,
    /// Whether stores are served over HTTPS (the ingress terminates TLS).
    pub tls: bool,
    /// The IngressClass (`nginx`, `traefik`); `None`: the cluster's default class.
    pub ingress_class: Option<String>,
    /// The StorageClass of the store's volumes; `None`: the cluster's default class.
    pub storage_class: Option<String>,
    /// The platform's base URL that stores send webhooks to (`<url>/api/v1/webhooks/…`);
    /// `None`: no webhooks.
    pub webhooks_url: Option<String>,
    /// The cert-manager ClusterIssuer for store certificates, when `tls` is on.
    pub cluster_issuer: Option<String>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            base_domain: "127.0.0.1.nip.io".to_owned(),
            tls: false,
            ingress_class: None,
            storage_class: None,
            webhooks_url: None,
            cluster_issuer: None,
        }
    }
}

impl EngineSettings {
    /// `https` with TLS, `http` otherwise.
    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// The host a store answers at: `<name>.<base_domain>`.
    pub fn host(&self, store: &StoreName) -> String {
        format!("{store}.{}", self.base_domain.trim_matches('.'))
    }
}

/// What a store runs: a chart, its values, what "ready" means, where it answers.
///
/// Object safe and `Send + Sync`: hold engines as `Arc<dyn Engine>` (see [`Engines`]).
/// Every method but [`chart`](Engine::chart) is pure: the same store and settings give
/// the same answer, so the orchestrator may call them on every attempt.
pub trait Engine: Send + Sync + fmt::Debug {
    /// The engine's id, e.g. `woocommerce`.
    fn id(&self) -> &EngineId;

    /// The chart to install, as a path on local disk (a packaged `.tgz` or a chart
    /// directory) that `helm upgrade --install` accepts. May write the chart to a
    /// cache the first time; later calls return the same path without I/O.
    ///
    /// Errors: `InvalidConfig` when the chart cannot be written to its cache.
    fn chart(&self) -> Result<PathBuf>;

    /// The version of the chart [`chart`](Engine::chart) installs (`None`: unknown, so
    /// stores of this engine are never `outdated`).
    fn chart_version(&self) -> Option<ChartVersion> {
        None
    }

    /// The Helm release name of a store.
    fn release_name(&self, store: &StoreName) -> String;

    /// The layout of the store's credentials Secret: the guardrails create it before
    /// the release (`existingSecret`), and read the admin login back from it.
    fn credentials(&self, store: &StoreContext) -> CredentialsLayout;

    /// The store's pods as its NetworkPolicies see them.
    fn network(&self) -> NetworkProfile;

    /// The chart values for a store: a JSON object passed to helm as a values file.
    /// Never contains a password (they live in the Secret of
    /// [`credentials`](Engine::credentials)). A suspended store's values stop its
    /// workloads and remove its Ingress, keeping its volumes.
    ///
    /// Errors: `InvalidConfig` when the store's plan is too small for the engine.
    fn values(&self, store: &StoreContext, settings: &EngineSettings) -> Result<serde_json::Value>;

    /// The workloads that must be ready (Jobs: complete) for the store to be `Ready`,
    /// for the release at `revision` (Helm's revision number, from 1). For a suspended
    /// store: the workloads its values scale to zero (ready once no replica is left).
    fn workloads(&self, store: &StoreContext, revision: u32) -> Vec<Workload>;

    /// The store's public URLs.
    fn urls(&self, store: &StoreName, settings: &EngineSettings) -> Urls;
}

/// The engines a provisioner knows, by id. [`Default`] holds the built-in
/// [`WooCommerce`].
#[derive(Debug, Clone)]
pub struct Engines {
    engines: BTreeMap<EngineId, Arc<dyn Engine>>,
}

impl Default for Engines {
    fn default() -> Self {
        let mut e = Engines::empty();
        e.register(Arc::new(WooCommerce::new()));
        e
    }
}

impl Engines {
    /// A registry with no engine at all.
    pub fn empty() -> Self {
        Engines {
            engines: BTreeMap::new(),
        }
    }

    /// Adds `engine`, replacing one with the same id.
    pub fn register(&mut self, engine: Arc<dyn Engine>) -> &mut Self {
        self.engines.insert(engine.id().clone(), engine);
        self
    }

    /// The engine `id`.
    ///
    /// Errors: `InvalidSpec` on field `engine` naming the unknown engine and the
    /// known ones.
    pub fn get(&self, id: &EngineId) -> Result<Arc<dyn Engine>> {
        self.engines
            .get(id)
            .cloned()
            .ok_or_else(|| Error::InvalidSpec {
                field: "engine",
                message: format!(
                    "unknown engine {:?}; known: {}",
                    id.as_str(),
                    self.ids()
                        .map(EngineId::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// The ids of every registered engine, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &EngineId> {
        self.engines.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn registry_finds_woocommerce_and_names_unknown_engines() {
        let engines = Engines::default();
        let woo = engines.get(&EngineId::default()).expect("built in");
        assert_eq!(woo.id().as_str(), "woocommerce");
        let err = engines
            .get(&EngineId::new("medusa").expect("well formed"))
            .expect_err("not registered");
        assert_eq!(err.kind(), ErrorKind::InvalidSpec);
        let msg = err.to_string();
        assert!(
            msg.contains("\"medusa\"") && msg.contains("woocommerce"),
            "{msg}"
        );
        assert!(Engines::empty().get(&EngineId::default()).is_err());
    }

    #[test]
    fn hosts_and_schemes() {
        let s = EngineSettings::default();
        let name = StoreName::new("shop1").expect("valid");
        assert_eq!(s.host(&name), "shop1.127.0.0.1.nip.io");
        assert_eq!(s.scheme(), "http");
        let tls = EngineSettings {
            tls: true,
            base_domain: "shops.example.com.".to_owned(),
            ..EngineSettings::default()
        };
        assert_eq!(tls.host(&name), "shop1.shops.example.com");
        assert_eq!(tls.scheme(), "https");
    }
}
