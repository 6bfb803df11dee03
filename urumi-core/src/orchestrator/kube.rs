//! [`KubeRuntime`]: the provisioning steps on a real cluster.
//!
//! ```text
//!  namespace   ── guardrails::Guardrails::apply_namespace        (server-side apply)
//!  guardrails  ── Guardrails::apply_policies(engine.network())   (quota, limits, policies)
//!  credentials ── Guardrails::ensure_credentials(engine layout)  (created once, never rotated)
//!  release     ── HelmDriver::upgrade_install(engine.chart(), engine.values())
//!  readiness   ── ReadinessWatcher::wait(engine.workloads(revision))
//!  teardown    ── HelmDriver::uninstall ── Guardrails::delete_namespace (waits until gone)
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::StoreRuntime;
use super::readiness::ReadinessWatcher;
use crate::engine::{Engine, EngineSettings, Engines};
use crate::error::{Error, Result};
use crate::guardrails::{AdminCredentials, Guardrails, StoreContext};
use crate::helm::{HelmDriver, ReleaseStatus, UpgradeOptions};
use crate::store::{Plans, Store, Urls};

/// Settings of the Kubernetes runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeRuntimeSettings {
    /// Plan sizes (quotas).
    pub plans: Plans,
    /// Domain, TLS, ingress and storage classes, webhook URL.
    pub engine: EngineSettings,
    /// How long a namespace may take to disappear on delete.
    pub namespace_deletion_timeout: Duration,
}

impl Default for KubeRuntimeSettings {
    fn default() -> Self {
        KubeRuntimeSettings {
            plans: Plans::default(),
            engine: EngineSettings::default(),
            namespace_deletion_timeout: Duration::from_secs(300),
        }
    }
}

/// Runs the provisioning steps against a Kubernetes cluster with helm.
pub struct KubeRuntime {
    guardrails: Guardrails,
    engines: Engines,
    helm: Arc<dyn HelmDriver>,
    readiness: Arc<ReadinessWatcher>,
    settings: KubeRuntimeSettings,
}

impl std::fmt::Debug for KubeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeRuntime")
            .field("guardrails", &self.guardrails)
            .field("engines", &self.engines)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl KubeRuntime {
    /// A runtime over `guardrails` (which holds the client), `engines` and `helm`,
    /// reading readiness from `readiness`.
    pub fn new(
        guardrails: Guardrails,
        engines: Engines,
        helm: Arc<dyn HelmDriver>,
        readiness: Arc<ReadinessWatcher>,
        settings: KubeRuntimeSettings,
    ) -> Self {
        KubeRuntime {
            guardrails,
            engines,
            helm,
            readiness,
            settings,
        }
    }

    fn engine(&self, store: &Store) -> Result<Arc<dyn Engine>> {
        self.engines.get(&store.engine)
    }

    fn context(&self, store: &Store) -> Result<StoreContext> {
        StoreContext::new(
            store.name.clone(),
            store.tenant.clone(),
            store.namespace.clone(),
            store.plan,
            self.settings.plans.size(store.plan).clone(),
        )
    }

    /// The store's admin user and password, read from its Secret.
    /// Errors: `not_found` while the Secret does not exist yet.
    pub async fn admin_credentials(&self, store: &Store) -> Result<AdminCredentials> {
        let engine = self.engine(store)?;
        let ctx = self.context(store)?;
        self.guardrails
            .read_admin_credentials(&store.namespace, &engine.credentials(&ctx))
            .await
    }
}

#[async_trait]
impl StoreRuntime for KubeRuntime {
    async fn namespace(&self, store: &Store) -> Result<()> {
        self.guardrails
            .apply_namespace(&self.context(store)?)
            .await?;
        Ok(())
    }

    async fn guardrails(&self, store: &Store) -> Result<()> {
        let engine = self.engine(store)?;
        self.guardrails
            .apply_policies(&self.context(store)?, &engine.network())
            .await?;
        Ok(())
    }

    async fn credentials(&self, store: &Store) -> Result<()> {
        let engine = self.engine(store)?;
        let ctx = self.context(store)?;
        self.guardrails
            .ensure_credentials(&ctx, &engine.credentials(&ctx))
            .await?;
        Ok(())
    }

    async fn release(&self, store: &Store) -> Result<()> {
        let engine = self.engine(store)?;
        let ctx = self.context(store)?;
        let chart = engine.chart()?;
        let values = engine.values(&ctx, &self.settings.engine)?;
        let release = engine.release_name(&store.name);
        // The same chart with the same values is already deployed: nothing to do (an
        // upgrade would only add a revision, and a new setup Job with it).
        let digest = release_digest(&chart, &values);
        let history = self.helm.history(&release, &store.namespace).await?;
        if let Some(last) = history.iter().max_by_key(|r| r.revision)
            && last.status == ReleaseStatus::Deployed
            && last.description.contains(&digest)
        {
            return Ok(());
        }
        let opts = UpgradeOptions::new().description(format!(
            "urumi: store {} ({} plan) {digest}",
            store.name, store.plan
        ));
        self.helm
            .upgrade_install(&release, &store.namespace, &chart, values, &opts)
            .await?;
        Ok(())
    }

    async fn readiness(&self, store: &Store, timeout: Duration) -> Result<()> {
        let engine = self.engine(store)?;
        let ctx = self.context(store)?;
        let release = engine.release_name(&store.name);
        let history = self.helm.history(&release, &store.namespace).await?;
        let revision =
            history
                .iter()
                .map(|r| r.revision)
                .max()
                .ok_or_else(|| Error::Provisioning {
                    message: format!(
                        "release {release} has no revision; run the release step again"
                    ),
                })?;
        let workloads = engine.workloads(&ctx, revision);
        self.readiness
            .wait(&store.namespace, &workloads, timeout)
            .await
    }

    fn urls(&self, store: &Store) -> Urls {
        match self.engine(store) {
            Ok(engine) => engine.urls(&store.name, &self.settings.engine),
            Err(_) => Urls::default(),
        }
    }

    async fn teardown(&self, store: &Store) -> Result<()> {
        // An unknown engine cannot name its release; the namespace still goes.
        if let Ok(engine) = self.engine(store) {
            self.helm
                .uninstall(&engine.release_name(&store.name), &store.namespace)
                .await?;
        }
        self.guardrails
            .delete_namespace(&store.namespace, self.settings.namespace_deletion_timeout)
            .await?;
        Ok(())
    }
}

/// `values:<hex>`: a digest of what a release is made of (the content-addressed chart
/// path and the values), recorded in the revision's description.
fn release_digest(chart: &std::path::Path, values: &serde_json::Value) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(chart.to_string_lossy().as_bytes());
    h.update([0]);
    h.update(values.to_string().as_bytes());
    format!("digest:{}", &hex::encode(h.finalize())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_changes_with_chart_or_values_only() {
        let chart = std::path::Path::new("/cache/woocommerce-store-0.1.0-abc.tgz");
        let v1 = serde_json::json!({"store": {"name": "shop1"}});
        let v2 = serde_json::json!({"store": {"name": "shop2"}});
        assert_eq!(release_digest(chart, &v1), release_digest(chart, &v1));
        assert_ne!(release_digest(chart, &v1), release_digest(chart, &v2));
        let other = std::path::Path::new("/cache/woocommerce-store-0.1.0-def.tgz");
        assert_ne!(release_digest(chart, &v1), release_digest(other, &v1));
    }
}
