//! [`ProvisionerSettings`]: everything a [`KubeProvisioner`](super::KubeProvisioner) can
//! be told, from code or from the server's TOML.
//!
//! ```text
//!  ProvisionerSettings ──validate()──▶ guardrails(): GuardrailsConfig  (namespaces, policies)
//!                                  └─▶ engine():     EngineSettings    (domain, classes, webhooks)
//! ```

use serde::{Deserialize, Serialize};

use crate::engine::EngineSettings;
use crate::error::{Error, Result};
use crate::guardrails::GuardrailsConfig;
use crate::limits::Limits;
use crate::orchestrator::{Settings, StoreAccess};
use crate::store::{Plan, Plans};

/// Everything a [`KubeProvisioner`](super::KubeProvisioner) can be told; deserializes from the server's TOML
/// (camelCase or the field names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProvisionerSettings {
    /// Stores answer at `<name>.<base_domain>`.
    pub base_domain: String,
    /// Serve stores over https (cert-manager issues the certificates).
    pub tls: bool,
    /// The cert-manager ClusterIssuer to annotate ingresses with, when TLS is on.
    pub cluster_issuer: Option<String>,
    /// The ingress class of store ingresses; the cluster default when absent.
    pub ingress_class: Option<String>,
    /// The namespace of the ingress controller (allowed in by the network policies).
    pub ingress_namespace: String,
    /// The storage class of store volumes; the cluster default when absent.
    pub storage_class: Option<String>,
    /// Store namespaces are `<prefix><name>`.
    pub namespace_prefix: String,
    /// Where stores send WooCommerce webhooks (the platform's public URL), if anywhere.
    pub webhooks_url: Option<String>,
    /// Plan sizes.
    pub plans: Plans,
    /// Creation limits.
    pub limits: Limits,
    /// The background worker.
    pub orchestrator: Settings,
    /// How long a namespace may take to disappear on delete, in seconds.
    pub namespace_deletion_timeout_secs: u64,
    /// Run with least privilege: bind this store role to this service account in each
    /// store namespace (see charts/urumi). `None` when the identity is already allowed.
    pub store_access: Option<StoreAccess>,
}

impl Default for ProvisionerSettings {
    fn default() -> Self {
        let guardrails = GuardrailsConfig::default();
        ProvisionerSettings {
            base_domain: EngineSettings::default().base_domain,
            tls: false,
            cluster_issuer: None,
            ingress_class: None,
            ingress_namespace: guardrails.ingress_namespace,
            storage_class: None,
            namespace_prefix: guardrails.namespace_prefix,
            webhooks_url: None,
            plans: Plans::default(),
            limits: Limits::default(),
            orchestrator: Settings::default(),
            namespace_deletion_timeout_secs: 300,
            store_access: None,
        }
    }
}

impl ProvisionerSettings {
    pub(crate) fn guardrails(&self) -> GuardrailsConfig {
        GuardrailsConfig {
            namespace_prefix: self.namespace_prefix.clone(),
            ingress_namespace: self.ingress_namespace.clone(),
            ..GuardrailsConfig::default()
        }
    }

    pub(crate) fn engine(&self) -> EngineSettings {
        EngineSettings {
            base_domain: self.base_domain.clone(),
            tls: self.tls,
            ingress_class: self.ingress_class.clone(),
            storage_class: self.storage_class.clone(),
            webhooks_url: self.webhooks_url.clone(),
        }
    }

    /// Checks what can be checked without a cluster. Errors: `invalid_config`.
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| Err(Error::InvalidConfig { message });
        if self.base_domain.trim_matches('.').is_empty() {
            return bad("baseDomain must not be empty".to_owned());
        }
        if self.namespace_prefix.len() > 20 {
            return bad("namespacePrefix must be at most 20 characters".to_owned());
        }
        if self.orchestrator.concurrency == 0 {
            return bad("orchestrator.concurrency must be at least 1".to_owned());
        }
        for plan in Plan::ALL {
            crate::guardrails::SizeNumbers::of(plan, self.plans.size(plan))?;
        }
        Ok(())
    }
}
