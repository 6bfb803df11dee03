//! [`ProvisionerSettings`]: everything a [`KubeProvisioner`](super::KubeProvisioner) can
//! be told, from code or from the server's TOML.
//!
//! ```text
//!  ProvisionerSettings ──validate()──▶ guardrails(): GuardrailsConfig  (namespaces, policies)
//!                                  └─▶ engine():     EngineSettings    (domain, classes, webhooks)
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::EngineSettings;
use crate::error::{Error, Result};
use crate::guardrails::{EgressAllow, GuardrailsConfig};
use crate::limits::Limits;
use crate::orchestrator::{Settings, StoreAccess};
use crate::store::{Plan, Plans};

/// Everything a [`KubeProvisioner`](super::KubeProvisioner) can be told; deserializes
/// from the server's TOML. Keys are camelCase everywhere (`baseDomain`, `[orchestrator]
/// leaseTtl`); the snake_case spelling of each is accepted too. An unknown key is an
/// error naming it, so a typo never passes silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ProvisionerSettings {
    /// Stores answer at `<name>.<base_domain>`.
    #[serde(alias = "base_domain")]
    pub base_domain: String,
    /// Serve stores over https (cert-manager issues the certificates).
    pub tls: bool,
    /// The cert-manager ClusterIssuer that store ingresses are annotated with, when TLS
    /// is on (`cert-manager.io/cluster-issuer`).
    #[serde(alias = "cluster_issuer")]
    pub cluster_issuer: Option<String>,
    /// The ingress class of store ingresses; the cluster default when absent.
    #[serde(alias = "ingress_class")]
    pub ingress_class: Option<String>,
    /// The namespace of the ingress controller (allowed in by the network policies).
    #[serde(alias = "ingress_namespace")]
    pub ingress_namespace: String,
    /// The storage class of store volumes; the cluster default when absent.
    #[serde(alias = "storage_class")]
    pub storage_class: Option<String>,
    /// Store namespaces are `<prefix><name>`.
    #[serde(alias = "namespace_prefix")]
    pub namespace_prefix: String,
    /// Where stores send WooCommerce webhooks (the platform's base URL), if anywhere.
    /// An in-cluster URL (`http://svc.ns.svc…:port`) also opens the stores' egress to
    /// exactly that namespace and port.
    #[serde(alias = "webhooks_url")]
    pub webhooks_url: Option<String>,
    /// Whether store pods may reach public addresses on 80/443 (plugin downloads).
    /// Private ranges stay closed either way.
    #[serde(alias = "internet_egress")]
    pub internet_egress: bool,
    /// Extra egress destinations inside the cluster.
    #[serde(alias = "egress_allow")]
    pub egress_allow: Vec<EgressAllow>,
    /// The namespace of the cluster DNS.
    #[serde(alias = "dns_namespace")]
    pub dns_namespace: String,
    /// The labels of the cluster DNS pods.
    #[serde(alias = "dns_pod_labels")]
    pub dns_pod_labels: BTreeMap<String, String>,
    /// Plan sizes.
    pub plans: Plans,
    /// Creation limits.
    pub limits: Limits,
    /// The background worker.
    pub orchestrator: Settings,
    /// How long a namespace may take to disappear on delete, in seconds.
    #[serde(alias = "namespace_deletion_timeout_secs")]
    pub namespace_deletion_timeout_secs: u64,
    /// How long one helm process (install, upgrade, uninstall) may run, in seconds,
    /// before it is stopped and the step counts as timed out (helm's own `--timeout` is
    /// nine tenths of it, so helm records the failure first).
    #[serde(alias = "helm_timeout_secs")]
    pub helm_timeout_secs: u64,
    /// Whether helm checks each rendered object against the cluster's OpenAPI schema
    /// before sending it (helm's default; see
    /// [`HelmCliBuilder::openapi_validation`](crate::helm::HelmCliBuilder::openapi_validation)).
    /// Off by default: the API server validates every object itself, and fetching and
    /// parsing the schema was two thirds of helm's CPU per install (0.3 of 0.45 CPU-s).
    /// Turn it on for engines whose charts are not tested against the cluster's API.
    #[serde(alias = "helm_openapi_validation")]
    pub helm_openapi_validation: bool,
    /// Run helm's work in one long-lived `urumi-helm-resident` process (a path, or a name
    /// looked up on `PATH`; see
    /// [`HelmCliBuilder::resident`](crate::helm::HelmCliBuilder::resident)) instead of a
    /// `helm` process per call: the same releases and errors for 0.37–0.45 of the CPU per
    /// store (docs/performance.md). `None` (the default): the `helm` binary from `PATH`.
    #[serde(alias = "helm_resident")]
    pub helm_resident: Option<String>,
    /// How long the change feed keeps changes, in seconds (7 days); an older cursor
    /// is `cursor_expired`.
    #[serde(alias = "change_retention_secs")]
    pub change_retention_secs: u64,
    /// Where `verify` sends its requests: a URL template with `{name}` and `{namespace}`
    /// (e.g. `http://{name}-wordpress.{namespace}.svc` to go through the store's Service
    /// from inside the cluster), sent with the store's host name as `Host`. `None`: the
    /// store's own storefront URL.
    #[serde(alias = "verify_target")]
    pub verify_target: Option<String>,
    /// Run with least privilege: bind this store role to this service account in each
    /// store namespace (see charts/urumi). `None` when the identity is already allowed.
    #[serde(alias = "store_access")]
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
            internet_egress: guardrails.internet_egress,
            egress_allow: Vec::new(),
            dns_namespace: guardrails.dns_namespace,
            dns_pod_labels: guardrails.dns_pod_labels,
            plans: Plans::default(),
            limits: Limits::default(),
            orchestrator: Settings::default(),
            namespace_deletion_timeout_secs: 300,
            helm_timeout_secs: 300,
            helm_openapi_validation: false,
            helm_resident: None,
            change_retention_secs: crate::state::DEFAULT_CHANGE_RETENTION.as_secs(),
            verify_target: None,
            store_access: None,
        }
    }
}

impl ProvisionerSettings {
    /// The guardrails these settings ask for: the egress to an in-cluster webhook
    /// receiver is added to `egress_allow`. Errors: `invalid_config` for a webhook URL
    /// that cannot be parsed.
    pub fn guardrails(&self) -> Result<GuardrailsConfig> {
        let mut egress_allow = self.egress_allow.clone();
        if let Some(allow) = self.webhook_egress()? {
            egress_allow.push(allow);
        }
        Ok(GuardrailsConfig {
            namespace_prefix: self.namespace_prefix.clone(),
            ingress_namespace: self.ingress_namespace.clone(),
            dns_namespace: self.dns_namespace.clone(),
            dns_pod_labels: self.dns_pod_labels.clone(),
            internet_egress: self.internet_egress,
            egress_allow,
            ..GuardrailsConfig::default()
        })
    }

    /// Where `verify` reaches `store`. Errors: `conflict` when the store has no URL yet,
    /// `invalid_config` for a template that does not make a URL.
    pub fn verify_target(
        &self,
        store: &crate::store::Store,
    ) -> Result<crate::verify::VerifyTarget> {
        let storefront = store.urls.storefront.as_deref().ok_or_else(|| {
            Error::conflict(format!("store {} has no storefront URL yet", store.name))
        })?;
        let own = url::Url::parse(storefront).map_err(|e| Error::Internal {
            message: format!("store {} has an unparseable URL: {e}", store.name),
        })?;
        match &self.verify_target {
            None => Ok(crate::verify::VerifyTarget::new(own)),
            Some(template) => {
                let raw = template
                    .replace("{name}", store.name.as_str())
                    .replace("{namespace}", &store.namespace);
                let base = url::Url::parse(&raw).map_err(|e| Error::InvalidConfig {
                    message: format!("verifyTarget does not make a URL: {e}"),
                })?;
                let host = own.host_str().unwrap_or_default().to_owned();
                Ok(crate::verify::VerifyTarget::new(base).with_host(host))
            }
        }
    }

    /// The change feed's retention.
    pub fn change_retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.change_retention_secs)
    }

    /// For an in-cluster webhook URL (`http://NAME.NAMESPACE.svc[.cluster.local][:PORT]`),
    /// the egress rule to exactly that namespace and port; `None` for any other URL (a
    /// public receiver is reached through the internet egress).
    pub fn webhook_egress(&self) -> Result<Option<EgressAllow>> {
        let Some(raw) = self.webhooks_url.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let url = url::Url::parse(raw).map_err(|e| Error::InvalidConfig {
            message: format!("webhooksUrl is not a URL: {e}"),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidConfig {
                message: "webhooksUrl must be http:// or https://".to_owned(),
            });
        }
        let host = url.host_str().unwrap_or_default();
        let labels: Vec<&str> = host.split('.').collect();
        let in_cluster = labels.len() >= 3
            && labels[2] == "svc"
            && (labels.len() == 3 || labels[3..] == ["cluster", "local"]);
        if !in_cluster {
            return Ok(None);
        }
        let port = url.port_or_known_default().unwrap_or(80);
        Ok(Some(EgressAllow {
            namespace: labels[1].to_owned(),
            pod_labels: BTreeMap::new(),
            ports: vec![port],
        }))
    }

    pub(crate) fn engine(&self) -> EngineSettings {
        EngineSettings {
            base_domain: self.base_domain.clone(),
            tls: self.tls,
            ingress_class: self.ingress_class.clone(),
            storage_class: self.storage_class.clone(),
            webhooks_url: self.webhooks_url.clone(),
            cluster_issuer: self.cluster_issuer.clone(),
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
        if self.helm_timeout_secs < 5 {
            return bad("helmTimeoutSecs must be at least 5".to_owned());
        }
        if self.change_retention_secs < 60 {
            return bad("changeRetentionSecs must be at least 60".to_owned());
        }
        self.webhook_egress()?;
        Ok(())
    }
}
