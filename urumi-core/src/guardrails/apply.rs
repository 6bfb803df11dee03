//! The edge that talks to the API server: server-side apply of the pure builders'
//! objects, create-if-absent of the credentials Secret, reading it back.
//!
//! ```text
//!  builders ──obj──▶ Api<K>::patch(name, PatchParams::apply("urumi").force(), Patch::Apply(obj))
//!                        └──▶ Applied { "Kind/name" → resourceVersion }
//! ```

use std::collections::BTreeMap;
use std::fmt::Debug;

use futures::future::try_join_all;
use k8s_openapi::api::core::v1::{
    LimitRange, Namespace, PersistentVolumeClaim, ResourceQuota, Secret,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::credentials::{AdminCredentials, Credentials, CredentialsLayout, credentials_secret};
use super::network::{NetworkProfile, network_policies};
use super::objects::{QUOTA_NAME, limit_range, namespace, resource_quota};
use super::{
    FIELD_MANAGER, GuardrailsConfig, MANAGED_BY, MANAGED_BY_LABEL, STORE_LABEL, StoreContext,
};
use crate::error::{Error, Result};

/// Raises each of `wanted`'s hard limits to `applied`'s where that is larger (CPU
/// compared in millicores, everything else in bytes or counts); values that do not parse
/// are left as the plan says.
fn keep_larger(wanted: &mut ResourceQuota, applied: &ResourceQuota) {
    use super::quantity::{bytes, cpu_millis};
    let Some(old) = applied.spec.as_ref().and_then(|s| s.hard.as_ref()) else {
        return;
    };
    let Some(new) = wanted.spec.as_mut().and_then(|s| s.hard.as_mut()) else {
        return;
    };
    for (resource, value) in new.iter_mut() {
        let Some(previous) = old.get(resource) else {
            continue;
        };
        let parse = |q: &str| {
            if resource.ends_with("cpu") {
                cpu_millis(q)
            } else {
                bytes(q)
            }
        };
        if let (Ok(before), Ok(now)) = (parse(&previous.0), parse(&value.0))
            && before > now
        {
            *value = previous.clone();
        }
    }
}

/// What an apply left in the cluster: `"Kind/name"` → `resourceVersion` of every
/// object it applied. Two applies of the same store yield equal maps when the second
/// changed nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// `"Kind/name"` → `resourceVersion`.
    pub resource_versions: BTreeMap<String, String>,
}

impl Applied {
    fn record<K: Resource<DynamicType = ()>>(&mut self, obj: &K) {
        self.resource_versions.insert(
            format!("{}/{}", K::kind(&()), obj.name_any()),
            obj.resource_version().unwrap_or_default(),
        );
    }

    fn merge(&mut self, other: Applied) {
        self.resource_versions.extend(other.resource_versions);
    }
}

/// What [`Guardrails::ensure_credentials`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsOutcome {
    /// The Secret did not exist; it was created with fresh values.
    Created,
    /// The Secret existed with every key; nothing was changed.
    Existing,
    /// The Secret existed without some keys; only those were added (named here),
    /// the values already there were kept.
    Completed {
        /// The keys that were added.
        added: Vec<String>,
    },
}

/// Applies a store's guardrails through a [`kube::Client`]. Cheap to clone.
///
/// Every method is idempotent and safe to call again after it failed or was
/// cancelled. Errors: `Kubernetes` for API failures (retryable when transient: 409,
/// 429, 5xx, connection errors; see [`crate::Error::is_retryable`]).
#[derive(Clone)]
pub struct Guardrails {
    client: Client,
    cfg: GuardrailsConfig,
}

impl Debug for Guardrails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guardrails")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K>
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Ok(api.patch(&name, &params, &Patch::Apply(obj)).await?)
}

impl Guardrails {
    /// Guardrails over `client` laid out by `cfg`.
    pub fn new(client: Client, cfg: GuardrailsConfig) -> Self {
        Guardrails { client, cfg }
    }

    /// The configuration.
    pub fn config(&self) -> &GuardrailsConfig {
        &self.cfg
    }

    /// Creates or updates the store's Namespace (labels, Pod Security). Idempotent.
    ///
    /// Errors: `Unavailable` (retryable) while a namespace of that name is still
    /// terminating (a store re-created right after its deletion); API errors.
    pub async fn apply_namespace(&self, ctx: &StoreContext) -> Result<Applied> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = apply(&api, &namespace(ctx, &self.cfg)).await?;
        if ns.metadata.deletion_timestamp.is_some() {
            return Err(Error::Unavailable {
                message: format!(
                    "namespace {} is still being deleted; retry once it is gone",
                    ctx.namespace
                ),
            });
        }
        let mut out = Applied::default();
        out.record(&ns);
        Ok(out)
    }

    /// Creates or updates the ResourceQuota, the LimitRange and the NetworkPolicies of
    /// the store (its namespace must exist), and deletes urumi's NetworkPolicies of the
    /// store that the configuration no longer asks for. Idempotent; the objects are
    /// applied concurrently.
    ///
    /// Errors: `InvalidConfig` for a plan size that does not parse, plus API errors.
    pub async fn apply_policies(
        &self,
        ctx: &StoreContext,
        profile: &NetworkProfile,
    ) -> Result<Applied> {
        self.apply_policies_with(ctx, profile, false).await
    }

    /// As [`apply_policies`](Self::apply_policies), but each quota resource keeps its
    /// applied value where that is larger than the plan's: while a plan change rolls the
    /// workloads, the pods of the old plan and of the new one must both fit. Applying
    /// with [`apply_policies`](Self::apply_policies) afterwards settles it to the plan.
    pub async fn apply_policies_keeping_larger_quota(
        &self,
        ctx: &StoreContext,
        profile: &NetworkProfile,
    ) -> Result<Applied> {
        self.apply_policies_with(ctx, profile, true).await
    }

    async fn apply_policies_with(
        &self,
        ctx: &StoreContext,
        profile: &NetworkProfile,
        keep_larger_quota: bool,
    ) -> Result<Applied> {
        let ns = ctx.namespace.as_str();
        let quotas: Api<ResourceQuota> = Api::namespaced(self.client.clone(), ns);
        let limits: Api<LimitRange> = Api::namespaced(self.client.clone(), ns);
        let netpols: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), ns);
        let mut rq = resource_quota(ctx);
        if keep_larger_quota && let Some(applied) = quotas.get_opt(QUOTA_NAME).await? {
            keep_larger(&mut rq, &applied);
        }
        let lr = limit_range(ctx)?;
        let policies = network_policies(ctx, &self.cfg, profile);
        let (rq, lr, nps) = futures::try_join!(
            apply(&quotas, &rq),
            apply(&limits, &lr),
            try_join_all(policies.iter().map(|p| apply(&netpols, p))),
        )?;
        let mut out = Applied::default();
        out.record(&rq);
        out.record(&lr);
        for np in &nps {
            out.record(np);
        }
        self.prune_policies(&netpols, ctx, &policies).await?;
        Ok(out)
    }

    /// Deletes urumi's NetworkPolicies of the store that are no longer wanted (e.g.
    /// `urumi-allow-egress-internet` once internet egress is turned off).
    async fn prune_policies(
        &self,
        api: &Api<NetworkPolicy>,
        ctx: &StoreContext,
        wanted: &[NetworkPolicy],
    ) -> Result<()> {
        let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY},{STORE_LABEL}={}", ctx.name);
        let existing = api.list(&ListParams::default().labels(&selector)).await?;
        for np in existing.items {
            let name = np.name_any();
            if wanted
                .iter()
                .all(|w| w.metadata.name.as_deref() != Some(name.as_str()))
            {
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// [`apply_namespace`](Self::apply_namespace) then
    /// [`apply_policies`](Self::apply_policies).
    pub async fn apply_all(&self, ctx: &StoreContext, profile: &NetworkProfile) -> Result<Applied> {
        let mut out = self.apply_namespace(ctx).await?;
        out.merge(self.apply_policies(ctx, profile).await?);
        Ok(out)
    }

    /// Makes sure the store's credentials Secret exists with every key of `layout`,
    /// without ever replacing a value already there (see [`super::credentials`]).
    /// The namespace must exist.
    ///
    /// Idempotent: a second call returns [`CredentialsOutcome::Existing`] and the
    /// passwords are unchanged. Errors: `Unavailable` if the OS random number
    /// generator fails; `Kubernetes` (409 is retryable) for API failures.
    pub async fn ensure_credentials(
        &self,
        ctx: &StoreContext,
        layout: &CredentialsLayout,
    ) -> Result<CredentialsOutcome> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &ctx.namespace);
        if let Some(existing) = api.get_opt(&layout.secret_name).await? {
            return self.complete(&api, layout, &existing).await;
        }
        let values = layout.generate(layout.keys())?;
        let secret = credentials_secret(ctx, layout, &values);
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => Ok(CredentialsOutcome::Created),
            // Another caller created it between our GET and POST: keep theirs.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let existing = api.get(&layout.secret_name).await?;
                self.complete(&api, layout, &existing).await
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn complete(
        &self,
        api: &Api<Secret>,
        layout: &CredentialsLayout,
        existing: &Secret,
    ) -> Result<CredentialsOutcome> {
        let have = Credentials::from_secret(existing);
        let missing: Vec<&str> = layout.keys().filter(|k| have.get(k).is_none()).collect();
        if missing.is_empty() {
            return Ok(CredentialsOutcome::Existing);
        }
        let added = layout.generate(missing.iter().copied())?;
        // A JSON merge patch adds keys and leaves the others alone; the resourceVersion
        // makes it fail (409, retryable) if the Secret changed since we read it.
        let patch = serde_json::json!({
            "metadata": { "resourceVersion": existing.resource_version() },
            "data": added.data(),
        });
        api.patch(
            &layout.secret_name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        Ok(CredentialsOutcome::Completed {
            added: missing.into_iter().map(str::to_owned).collect(),
        })
    }

    /// The store's ResourceQuota (as the quota controller last counted it) and its
    /// PersistentVolumeClaims, by name, both read now.
    ///
    /// Errors: `NotFound` when the quota does not exist (not applied yet, or the
    /// namespace is gone); API errors.
    pub async fn read_usage(
        &self,
        namespace: &str,
    ) -> Result<(ResourceQuota, Vec<PersistentVolumeClaim>)> {
        let quotas: Api<ResourceQuota> = Api::namespaced(self.client.clone(), namespace);
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), namespace);
        let all = ListParams::default();
        let (quota, claims) = futures::try_join!(quotas.get_opt(QUOTA_NAME), claims.list(&all))?;
        let quota = quota.ok_or_else(|| Error::NotFound {
            what: format!("ResourceQuota {namespace}/{}", QUOTA_NAME),
        })?;
        let mut claims = claims.items;
        claims.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok((quota, claims))
    }

    /// Every entry of the store's credentials Secret in `namespace`.
    ///
    /// Errors: `NotFound` when the Secret does not exist; API errors.
    pub async fn read_credentials(
        &self,
        namespace: &str,
        layout: &CredentialsLayout,
    ) -> Result<Credentials> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(&layout.secret_name).await? {
            Some(s) => Ok(Credentials::from_secret(&s)),
            None => Err(Error::NotFound {
                what: format!("Secret {namespace}/{}", layout.secret_name),
            }),
        }
    }

    /// The administrator's user name and password from the store's Secret.
    ///
    /// Errors: `NotFound` when the Secret does not exist; `Internal` when it lacks the
    /// admin keys; API errors.
    pub async fn read_admin_credentials(
        &self,
        namespace: &str,
        layout: &CredentialsLayout,
    ) -> Result<AdminCredentials> {
        self.read_credentials(namespace, layout)
            .await?
            .admin(layout)
    }

    /// The client these guardrails talk through.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::ResourceQuotaSpec;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;

    fn quota(hard: &[(&str, &str)]) -> ResourceQuota {
        let hard: BTreeMap<String, Quantity> = hard
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
            .collect();
        ResourceQuota {
            spec: Some(ResourceQuotaSpec {
                hard: Some(hard),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn hard(q: &ResourceQuota) -> Vec<(String, String)> {
        q.spec
            .as_ref()
            .and_then(|s| s.hard.as_ref())
            .map(|h| h.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
            .unwrap_or_default()
    }

    #[test]
    fn keeps_each_larger_applied_value_and_takes_the_plans_otherwise() {
        // A downsize in progress: large applied, small wanted — every value stays large;
        // a resource the old quota lacked comes from the plan; units compare by value.
        let mut wanted = quota(&[
            ("requests.cpu", "1"),
            ("requests.memory", "1Gi"),
            ("pods", "10"),
            ("limits.ephemeral-storage", "4Gi"),
        ]);
        let applied = quota(&[
            ("requests.cpu", "4000m"),
            ("requests.memory", "512Mi"),
            ("pods", "40"),
        ]);
        keep_larger(&mut wanted, &applied);
        assert_eq!(
            hard(&wanted),
            [
                ("limits.ephemeral-storage".to_owned(), "4Gi".to_owned()),
                ("pods".to_owned(), "40".to_owned()),
                ("requests.cpu".to_owned(), "4000m".to_owned()),
                ("requests.memory".to_owned(), "1Gi".to_owned()),
            ]
        );
    }
}
