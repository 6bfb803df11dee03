//! [`KubeRuntime`]: the provisioning steps on a real cluster.
//!
//! ```text
//!  namespace   ── guardrails::Guardrails::apply_namespace        (server-side apply)
//!                 + RoleBinding of the store role to the provisioner (when configured)
//!  guardrails  ── Guardrails::apply_policies(engine.network())   (quota, limits, policies)
//!  credentials ── Guardrails::ensure_credentials(engine layout)  (created once, never rotated)
//!  release     ── HelmDriver::upgrade_install(engine.chart(), engine.values())
//!  readiness   ── ReadinessWatcher::wait(engine.workloads(revision))
//!  teardown    ── HelmDriver::uninstall ── Guardrails::delete_namespace (waits until gone)
//!                 ── the store's PersistentVolumes (reclaim Delete) gone too
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::PersistentVolume;
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};

use super::StoreRuntime;
use super::readiness::ReadinessWatcher;
use crate::engine::{Engine, EngineSettings, Engines, WorkloadKind};
use crate::error::{Error, Result};
use crate::guardrails::{AdminCredentials, FIELD_MANAGER, Guardrails, StoreContext};
use crate::helm::{HelmDriver, ReleaseStatus, UpgradeOptions};
use crate::store::{Plans, ResourceUsage, Store, StoreUsage, Urls, VolumeUsage};

/// Settings of the Kubernetes runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeRuntimeSettings {
    /// Plan sizes (quotas).
    pub plans: Plans,
    /// Domain, TLS, ingress and storage classes, webhook URL.
    pub engine: EngineSettings,
    /// How long a namespace may take to disappear on delete.
    pub namespace_deletion_timeout: Duration,
    /// The RoleBinding that grants the provisioner its rights inside each store
    /// namespace, when it runs with least privilege (charts/urumi); `None` when its
    /// identity already has them (an admin kubeconfig).
    pub store_access: Option<StoreAccess>,
}

/// Who gets the store role in each store namespace: the provisioner's own service
/// account, bound to the ClusterRole charts/urumi installs for stores (which it may
/// `bind`, and nothing else).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StoreAccess {
    /// The ClusterRole to bind, e.g. `urumi-system-urumi-store`.
    #[serde(alias = "cluster_role")]
    pub cluster_role: String,
    /// The provisioner's ServiceAccount name.
    #[serde(alias = "service_account")]
    pub service_account: String,
    /// The namespace of that ServiceAccount.
    #[serde(alias = "service_account_namespace")]
    pub service_account_namespace: String,
}

/// The name of the RoleBinding granting the store role in a store namespace.
pub const STORE_ACCESS_BINDING: &str = "urumi-provisioner";

/// The RoleBinding of `access` in `namespace`, labelled like the store. Pure.
pub fn store_access_binding(
    access: &StoreAccess,
    namespace: &str,
    labels: std::collections::BTreeMap<String, String>,
) -> RoleBinding {
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(STORE_ACCESS_BINDING.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "ClusterRole".to_owned(),
            name: access.cluster_role.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: access.service_account.clone(),
            namespace: Some(access.service_account_namespace.clone()),
            ..Default::default()
        }]),
    }
}

impl Default for KubeRuntimeSettings {
    fn default() -> Self {
        KubeRuntimeSettings {
            plans: Plans::default(),
            engine: EngineSettings::default(),
            namespace_deletion_timeout: Duration::from_secs(300),
            store_access: None,
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
        .map(|ctx| ctx.suspended(store.suspended))
    }

    /// Waits until no PersistentVolume that belonged to `namespace` remains (their
    /// reclaim policy `Delete` removes them shortly after the namespace's claims go).
    /// Volumes kept on purpose (`Retain`) are reported, not waited for. Without the
    /// right to read PersistentVolumes the check is skipped with a warning.
    /// Errors: a retryable `timeout` naming the volumes still there.
    async fn wait_for_volumes(&self, namespace: &str) -> Result<()> {
        let api: Api<PersistentVolume> = Api::all(self.guardrails.client().clone());
        let volumes = match api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(kube::Error::Api(status)) if status.code == 403 => {
                tracing::warn!(
                    namespace,
                    "may not list PersistentVolumes; not waiting for the store's volumes"
                );
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let timeout = self.settings.namespace_deletion_timeout;
        for pv in volumes {
            let of_store = pv
                .spec
                .as_ref()
                .and_then(|s| s.claim_ref.as_ref())
                .and_then(|c| c.namespace.as_deref())
                == Some(namespace);
            if !of_store {
                continue;
            }
            let name = pv.metadata.name.clone().unwrap_or_default();
            let policy = pv
                .spec
                .as_ref()
                .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
                .unwrap_or("Delete");
            if policy != "Delete" {
                tracing::warn!(namespace, volume = %name, policy, "the store's volume is kept by its reclaim policy");
                continue;
            }
            let uid = pv.metadata.uid.clone().unwrap_or_default();
            let gone = await_condition(api.clone(), &name, conditions::is_deleted(&uid));
            match tokio::time::timeout(timeout, gone).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(Error::Unavailable {
                        message: format!("watching volume {name}: {e}"),
                    });
                }
                Err(_) => {
                    return Err(Error::Timeout {
                        operation: format!("deleting volume {name} of namespace {namespace}"),
                        after: timeout,
                    });
                }
            }
        }
        Ok(())
    }

    /// What the store uses of its plan, read now from its quota and claims.
    /// Errors: `conflict` while its quota does not exist (not applied yet, or its
    /// namespace is gone), `unavailable` while the quota controller has not counted it.
    pub async fn usage(&self, store: &Store) -> Result<StoreUsage> {
        let (quota, claims) = match self.guardrails.read_usage(&store.namespace).await {
            Err(Error::NotFound { .. }) => {
                return Err(Error::conflict(format!(
                    "store {} has no quota yet (status {}, step {}); its usage can be read \
                     once its guardrails are applied",
                    store.name, store.status, store.step
                )));
            }
            other => other?,
        };
        Ok(StoreUsage {
            name: store.name.as_str().to_owned(),
            plan: store.plan,
            resources: ResourceUsage::from_quota(&quota)?,
            volumes: claims.iter().map(VolumeUsage::from_claim).collect(),
            observed_at: chrono::Utc::now(),
        })
    }

    /// The latest `deployed` revision of the store's release, if any: where a failed
    /// upgrade comes back to.
    pub async fn deployed_revision(&self, store: &Store) -> Result<Option<u32>> {
        let engine = self.engine(store)?;
        let history = self
            .helm
            .history(&engine.release_name(&store.name), &store.namespace)
            .await?;
        Ok(history
            .iter()
            .filter(|r| r.status == ReleaseStatus::Deployed)
            .map(|r| r.revision)
            .max())
    }

    /// The recorded revisions of the store's release, oldest first (none before its
    /// release step).
    pub async fn revisions(&self, store: &Store) -> Result<Vec<crate::store::StoreRevision>> {
        let engine = self.engine(store)?;
        let history = self
            .helm
            .history(&engine.release_name(&store.name), &store.namespace)
            .await?;
        Ok(history
            .into_iter()
            .map(|r| crate::store::StoreRevision {
                revision: r.revision,
                chart_version: chart_version_of(&r.chart),
                app_version: r.app_version,
                status: r.status.to_string(),
                updated_at: r.updated,
                description: r.description,
            })
            .collect())
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

    /// The store's webhook secret, read from its Secret; `None` when the engine's
    /// layout has none (webhooks off). Errors: `not_found` while the Secret is absent.
    pub async fn webhook_secret(
        &self,
        store: &Store,
    ) -> Result<Option<crate::guardrails::SecretString>> {
        let engine = self.engine(store)?;
        let layout = engine.credentials(&self.context(store)?);
        if layout.webhook_secret_key.is_none() {
            return Ok(None);
        }
        let creds = self
            .guardrails
            .read_credentials(&store.namespace, &layout)
            .await?;
        Ok(creds.webhook_secret(&layout).cloned())
    }

    /// Stops the cluster-wide readiness watches (on shutdown).
    pub fn stop_watches(&self) {
        self.readiness.stop();
    }
}

#[async_trait]
impl StoreRuntime for KubeRuntime {
    async fn namespace(&self, store: &Store) -> Result<()> {
        let ctx = self.context(store)?;
        self.guardrails.apply_namespace(&ctx).await?;
        if let Some(access) = &self.settings.store_access {
            let binding = store_access_binding(access, &store.namespace, ctx.labels());
            let api: Api<RoleBinding> =
                Api::namespaced(self.guardrails.client().clone(), &store.namespace);
            let params = PatchParams::apply(FIELD_MANAGER).force();
            api.patch(STORE_ACCESS_BINDING, &params, &Patch::Apply(&binding))
                .await?;
        }
        Ok(())
    }

    async fn guardrails(&self, store: &Store) -> Result<()> {
        let engine = self.engine(store)?;
        let (ctx, network) = (self.context(store)?, engine.network());
        if store.status == crate::store::Status::Updating {
            // A plan change: the old plan's pods must keep fitting while they roll.
            self.guardrails
                .apply_policies_keeping_larger_quota(&ctx, &network)
                .await?;
        } else {
            self.guardrails.apply_policies(&ctx, &network).await?;
        }
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
        // The same chart with the same values is already deployed by this attempt:
        // nothing to do (an upgrade would only add a revision, and a new setup Job with
        // it). A retry (a new attempt) upgrades, so a failed setup Job runs again.
        let digest = release_digest(&chart, &values, store.attempts);
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
        // helm exits 0 even when it could not record the release's final status (the
        // API server went away after the objects were created): the release stays
        // `pending-*`, and a later run would uninstall or roll back a live store. Trust
        // the record, not the exit status; a pending release is retried (and repaired).
        let recorded = self.helm.history(&release, &store.namespace).await?;
        match recorded.iter().max_by_key(|r| r.revision) {
            Some(last) if last.status == ReleaseStatus::Deployed => Ok(()),
            last => Err(Error::Unavailable {
                message: format!(
                    "helm reported release {release} installed, but it is recorded as {}; \
                     installing it again",
                    last.map_or("absent".to_owned(), |r| r.status.to_string())
                ),
            }),
        }
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

    fn chart(&self, store: &Store) -> Option<crate::store::StoreChart> {
        let version = self.engine(store).ok()?.chart_version()?;
        Some(crate::store::StoreChart {
            version: version.version,
            app_version: version.app_version,
            outdated: false,
        })
    }

    async fn roll_back(
        &self,
        store: &Store,
        revision: u32,
        timeout: Duration,
    ) -> Result<Option<crate::store::StoreChart>> {
        let engine = self.engine(store)?;
        let release = engine.release_name(&store.name);
        let history = self.helm.history(&release, &store.namespace).await?;
        let latest = history.iter().max_by_key(|r| r.revision);
        // Already rolled back (a retry after the rollback itself was recorded): the latest
        // revision is a rollback to `revision`, deployed.
        let done = latest.is_some_and(|r| {
            r.status == ReleaseStatus::Deployed
                && r.description.trim() == format!("Rollback to {revision}")
        });
        // The rolled-back manifest is the one of `revision`: its Jobs carry that revision's
        // number. A Job is immutable, and the one left from `revision` (its generated
        // selector) cannot take the manifest again: remove it, the rollback recreates it
        // (the setup script is idempotent).
        let ctx = self.context(store)?;
        let workloads = engine.workloads(&ctx, revision);
        if !done {
            let jobs: Api<k8s_openapi::api::batch::v1::Job> =
                Api::namespaced(self.guardrails.client().clone(), &store.namespace);
            for job in workloads.iter().filter(|w| w.kind == WorkloadKind::Job) {
                match jobs.delete(&job.name, &DeleteParams::background()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            self.helm
                .rollback(&release, &store.namespace, revision)
                .await?;
        }
        self.readiness
            .wait(&store.namespace, &workloads, timeout)
            .await?;
        let history = self.helm.history(&release, &store.namespace).await?;
        Ok(history
            .iter()
            .find(|r| r.revision == revision)
            .map(|r| crate::store::StoreChart {
                version: chart_version_of(&r.chart),
                app_version: r.app_version.clone(),
                outdated: false,
            }))
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
        self.wait_for_volumes(&store.namespace).await
    }
}

/// The version in helm's `<chart name>-<version>` (`woocommerce-store-0.2.0` → `0.2.0`,
/// `x-1.0.0-rc-1` → `1.0.0-rc-1`): what follows the first `-` that precedes a digit.
fn chart_version_of(chart: &str) -> String {
    chart
        .char_indices()
        .filter(|(i, c)| *c == '-' && chart[i + 1..].starts_with(|d: char| d.is_ascii_digit()))
        .map(|(i, _)| i)
        .next()
        .map_or_else(|| chart.to_owned(), |i| chart[i + 1..].to_owned())
}

/// `digest:<hex>`: a digest of what a release is made of (the content-addressed chart
/// path, the values, the provisioning attempt), recorded in the revision's description.
fn release_digest(chart: &std::path::Path, values: &serde_json::Value, attempt: u32) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(chart.to_string_lossy().as_bytes());
    h.update([0]);
    h.update(values.to_string().as_bytes());
    h.update([0]);
    h.update(attempt.to_be_bytes());
    format!("digest:{}", &hex::encode(h.finalize())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_access_binds_the_store_role_to_the_service_account_only() {
        let access = StoreAccess {
            cluster_role: "urumi-system-urumi-store".to_owned(),
            service_account: "urumi".to_owned(),
            service_account_namespace: "urumi-system".to_owned(),
        };
        let labels =
            std::collections::BTreeMap::from([("urumi.dev/store".to_owned(), "shop1".to_owned())]);
        let b = store_access_binding(&access, "store-shop1", labels);
        assert_eq!(b.metadata.namespace.as_deref(), Some("store-shop1"));
        assert_eq!(b.role_ref.kind, "ClusterRole");
        assert_eq!(b.role_ref.name, "urumi-system-urumi-store");
        let subjects = b.subjects.expect("one subject");
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(subjects[0].name, "urumi");
        assert_eq!(subjects[0].namespace.as_deref(), Some("urumi-system"));
    }

    #[test]
    fn the_chart_version_is_read_from_helms_chart_name() {
        assert_eq!(chart_version_of("woocommerce-store-0.2.0"), "0.2.0");
        assert_eq!(chart_version_of("x-1.0.0-rc-1"), "1.0.0-rc-1");
        assert_eq!(chart_version_of("noversion"), "noversion");
    }

    #[test]
    fn digest_changes_with_chart_values_or_attempt_only() {
        let chart = std::path::Path::new("/cache/woocommerce-store-0.1.0-abc.tgz");
        let v1 = serde_json::json!({"store": {"name": "shop1"}});
        let v2 = serde_json::json!({"store": {"name": "shop2"}});
        assert_eq!(release_digest(chart, &v1, 1), release_digest(chart, &v1, 1));
        assert_ne!(release_digest(chart, &v1, 1), release_digest(chart, &v2, 1));
        let other = std::path::Path::new("/cache/woocommerce-store-0.1.0-def.tgz");
        assert_ne!(release_digest(chart, &v1, 1), release_digest(other, &v1, 1));
        assert_ne!(release_digest(chart, &v1, 1), release_digest(chart, &v1, 2));
    }
}
