//! The request bodies, and the OpenAPI shapes of the core's response types.
//!
//! ```text
//!  request JSON ──AppJson<CreateStoreBody>──▶ urumi_core::CreateStore   (unknown fields refused)
//!  request JSON ──AppJson<UpdateStoreBody>──▶ urumi_core::UpdateStore   (the same)
//!  urumi_core::{Store, AuditEvent, VerifyReport, StoreCredentials} ──serde──▶ response JSON
//!        described for /openapi.json by StoreDoc, AuditEventDoc, … (the core has no utoipa)
//! ```

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/stores`. Only a JSON object is accepted: serde's derived `Deserialize`
/// would also take the fields as an array (`["shop1"]`), which no client means.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateStoreBody {
    /// A DNS-1123 label of 3–40 characters, unique across the platform; reserved names
    /// (`api`, `admin`, `kube-*`, …) are refused.
    #[schema(
        example = "shop1",
        pattern = "^[a-z][a-z0-9-]*[a-z0-9]$",
        min_length = 3,
        max_length = 40
    )]
    pub name: String,
    /// `woocommerce` (the default).
    #[serde(default)]
    pub engine: Option<String>,
    /// `small` (the default), `medium` or `large`.
    #[serde(default)]
    #[schema(value_type = Option<PlanName>)]
    pub plan: Option<String>,
    /// The owning tenant; only an admin may name another tenant than its own.
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", max_length = 63)]
    pub tenant: Option<String>,
}

/// `PATCH /api/v1/stores/{name}`: the change asked for. A JSON object only; unknown
/// fields are refused.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateStoreBody {
    /// The new plan.
    #[schema(value_type = Option<PlanName>)]
    pub plan: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateStoreFields {
    #[serde(default)]
    plan: Option<String>,
}

impl<'de> Deserialize<'de> for UpdateStoreBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f: UpdateStoreFields = object_only(deserializer)?;
        Ok(UpdateStoreBody { plan: f.plan })
    }
}

impl From<UpdateStoreBody> for urumi_core::UpdateStore {
    fn from(b: UpdateStoreBody) -> Self {
        urumi_core::UpdateStore { plan: b.plan }
    }
}

/// A plan's name.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
pub enum PlanName {
    /// The default.
    Small,
    /// Bigger.
    Medium,
    /// Biggest.
    Large,
}

/// A store's status, as a filter.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = Status)]
pub enum StatusName {
    /// Accepted.
    Pending,
    /// Being provisioned.
    Provisioning,
    /// Serving.
    Ready,
    /// Stopped at a step.
    Failed,
    /// Being torn down.
    Deleting,
    /// A change (plan, suspend, resume) is being applied.
    Updating,
    /// Was Ready; a workload is unavailable (`message` names it); back to Ready on its own.
    Degraded,
}

/// The fields of [`CreateStoreBody`] as serde derives them (unknown and duplicate keys
/// refused), reached only through a map.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateStoreFields {
    name: String,
    #[serde(default)]
    engine: Option<String>,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
}

impl<'de> Deserialize<'de> for CreateStoreBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f: CreateStoreFields = object_only(deserializer)?;
        Ok(CreateStoreBody {
            name: f.name,
            engine: f.engine,
            plan: f.plan,
            tenant: f.tenant,
        })
    }
}

/// `F` from a JSON object only: serde's derived `Deserialize` would also take a struct's
/// fields as an array, which no client means.
fn object_only<'de, D: Deserializer<'de>, F: Deserialize<'de>>(
    deserializer: D,
) -> Result<F, D::Error> {
    struct ObjectOnly<F>(std::marker::PhantomData<F>);
    impl<'de, F: Deserialize<'de>> Visitor<'de> for ObjectOnly<F> {
        type Value = F;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<F, A::Error> {
            F::deserialize(MapAccessDeserializer::new(map))
        }
    }
    deserializer.deserialize_map(ObjectOnly(std::marker::PhantomData))
}

impl From<CreateStoreBody> for urumi_core::CreateStore {
    fn from(b: CreateStoreBody) -> Self {
        urumi_core::CreateStore {
            name: b.name,
            engine: b.engine,
            plan: b.plan,
            tenant: b.tenant,
        }
    }
}

/// Where a store answers.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = Urls)]
pub struct UrlsDoc {
    /// The storefront.
    storefront: Option<String>,
    /// The WordPress admin.
    admin: Option<String>,
}

/// A store (JSON of `urumi_core::store::Store`).
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = Store)]
#[serde(rename_all = "camelCase")]
pub struct StoreDoc {
    /// Unique name.
    name: String,
    /// Owning tenant.
    tenant: String,
    /// `woocommerce`.
    engine: String,
    /// `small`, `medium`, `large`.
    plan: String,
    /// `Pending`, `Provisioning`, `Ready`, `Failed`, `Deleting`, `Updating`, `Degraded`
    /// (was Ready; a workload is unavailable, `message` names it; back to `Ready` on its own).
    status: String,
    /// `namespace`, `guardrails`, `credentials`, `release`, `readiness`, `done`.
    step: String,
    /// Last progress note or failure reason.
    message: String,
    /// Kubernetes namespace.
    namespace: String,
    /// Storefront and admin URLs.
    urls: UrlsDoc,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    updated_at: String,
    /// RFC 3339, once Ready.
    ready_at: Option<String>,
    /// Seconds from acceptance to Ready.
    provisioning_seconds: Option<f64>,
    /// Provisioning attempts.
    attempts: u32,
    /// Record version.
    version: u64,
    /// The Kubernetes object managing the store (`Store <namespace>/<name>`, operator
    /// mode); absent for stores created through the API.
    managed_by: Option<String>,
    /// Suspended: no pod runs and no Ingress exists; volumes and credentials are kept.
    suspended: bool,
    /// The chart it runs (null before its release step).
    chart: Option<StoreChartDoc>,
}

/// The chart a store runs.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = StoreChart)]
#[serde(rename_all = "camelCase")]
pub struct StoreChartDoc {
    /// The chart's version.
    version: String,
    /// The WordPress version it installs.
    app_version: String,
    /// This server bundles another chart version: an upgrade would move the store.
    outdated: bool,
}

/// A store's release revisions, oldest first.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RevisionList {
    /// The revisions.
    items: Vec<RevisionDoc>,
}

/// One revision of a store's release, as helm recorded it.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = StoreRevision)]
#[serde(rename_all = "camelCase")]
pub struct RevisionDoc {
    /// Helm's revision number, from 1.
    revision: u32,
    /// The chart's version.
    chart_version: String,
    /// The application version it installed.
    app_version: String,
    /// `deployed`, `superseded`, `failed`, `pending-upgrade`, …
    status: String,
    /// RFC 3339, when helm says.
    updated_at: Option<String>,
    /// What made it (`Install complete`, `Upgrade complete`, …).
    description: String,
}

/// A page of stores.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct StorePage {
    /// The stores, newest first.
    items: Vec<StoreDoc>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// An audit event (JSON of `urumi_core::store::AuditEvent`).
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = AuditEvent)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventDoc {
    /// UUID v7.
    id: String,
    /// RFC 3339.
    at: String,
    /// Key name, `system`, or a webhook.
    actor: String,
    /// Tenant concerned.
    tenant: Option<String>,
    /// `store.create`, `provision.release`, `woocommerce.order.created`, …
    action: String,
    /// Store concerned.
    store: Option<String>,
    /// `success` or `failure`.
    outcome: String,
    /// Short explanation.
    detail: String,
    /// Client address.
    source_ip: Option<String>,
}

/// A page of audit events.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    /// Newest first.
    items: Vec<AuditEventDoc>,
    /// Next page's cursor.
    next_cursor: Option<String>,
}

/// A store's admin login.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = Credentials)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsDoc {
    /// WordPress admin URL.
    admin_url: Option<String>,
    /// Admin user.
    username: String,
    /// Admin password.
    password: String,
}

/// One verification step.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = VerifyStep)]
pub struct VerifyStepDoc {
    /// Step name.
    name: String,
    /// Passed.
    ok: bool,
    /// Wall time.
    ms: u64,
    /// HTTP status the store answered.
    status: Option<u16>,
    /// Why it failed, or what was found.
    detail: Option<String>,
}

/// The result of `verify`.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = VerifyReport)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReportDoc {
    /// Every step passed.
    ok: bool,
    /// The steps that ran.
    steps: Vec<VerifyStepDoc>,
    /// The test order created.
    order_id: Option<u64>,
}

/// One quota resource of a store: used against its plan's hard limit.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = ResourceUsage)]
#[serde(rename_all = "camelCase")]
pub struct ResourceUsageDoc {
    /// The quota's name for it: `requests.cpu`, `limits.cpu`, `requests.memory`,
    /// `limits.memory`, `pods`, `persistentvolumeclaims`, `requests.storage`,
    /// `limits.ephemeral-storage`.
    resource: String,
    /// `millicores`, `bytes` or `count`.
    unit: String,
    /// What the store's objects hold now.
    used: u64,
    /// What the plan allows.
    hard: u64,
}

/// One of a store's volumes.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = VolumeUsage)]
#[serde(rename_all = "camelCase")]
pub struct VolumeUsageDoc {
    /// PersistentVolumeClaim name.
    claim: String,
    /// Requested size, bytes.
    requested: u64,
    /// Bound volume's size, bytes.
    capacity: Option<u64>,
    /// `Pending`, `Bound` or `Lost`.
    phase: String,
    /// Bound PersistentVolume's name.
    volume: Option<String>,
}

/// A store's use of its plan, read from the cluster when asked.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = StoreUsage)]
#[serde(rename_all = "camelCase")]
pub struct StoreUsageDoc {
    /// The store.
    name: String,
    /// Its plan.
    plan: String,
    /// CPU, memory, pods, claims, storage, ephemeral storage (those its quota limits).
    resources: Vec<ResourceUsageDoc>,
    /// Its volumes.
    volumes: Vec<VolumeUsageDoc>,
    /// When it was read.
    observed_at: String,
}

/// A plan and what it grants (Kubernetes quantities).
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = Plan)]
#[serde(rename_all = "camelCase")]
pub struct PlanDoc {
    /// `small`, `medium` or `large`.
    name: String,
    /// Total CPU requests.
    cpu_request: String,
    /// Total CPU limits.
    cpu_limit: String,
    /// Total memory requests.
    memory_request: String,
    /// Total memory limits.
    memory_limit: String,
    /// Pods.
    pods: u32,
    /// PersistentVolumeClaims.
    pvcs: u32,
    /// Total requested storage.
    storage: String,
    /// Node-local disk outside volumes.
    ephemeral_storage: Option<String>,
}

/// Every plan, smallest first.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PlanList {
    /// The plans.
    items: Vec<PlanDoc>,
}

/// Adds the problems every operation of a kind can answer, which the per-route annotations
/// leave out: 401 on each operation with a security requirement; 400 (malformed JSON), 413
/// and 415 on each JSON request body; 400 (a parameter twice) with query parameters and 422
/// (a value out of range) with query or header parameters; 409 `idempotency_in_progress` and 422 `idempotency_mismatch` with
/// an `Idempotency-Key`. Existing entries are kept (their descriptions name more codes).
pub fn document_common_problems(spec: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{Operation, ParameterIn};
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

    fn add(op: &mut Operation, status: &str, description: &str) {
        let problem = ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build();
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem.into());
    }

    for (path, item) in spec.paths.paths.iter_mut() {
        let webhook = path.starts_with("/api/v1/webhooks/");
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                add(op, "401", "unauthorized: no API key, or not a valid one");
            }
            if op.request_body.is_some() {
                add(op, "413", "payload_too_large: the body is over 64 KiB");
                if !webhook {
                    add(op, "400", "invalid_spec: the body is not JSON");
                    add(
                        op,
                        "415",
                        "unsupported_media_type: the body is not application/json",
                    );
                }
            }
            let params = op.parameters.as_deref().unwrap_or_default();
            let keyed = params.iter().any(|p| p.name == "Idempotency-Key");
            let query = params
                .iter()
                .any(|p| matches!(p.parameter_in, ParameterIn::Query));
            let checked = query || params.iter().any(|p| p.parameter_in == ParameterIn::Header);
            if keyed {
                add(op, "409", "idempotency_in_progress");
                add(
                    op,
                    "422",
                    "idempotency_mismatch, or an invalid Idempotency-Key",
                );
            }
            if query {
                add(
                    op,
                    "400",
                    "invalid_spec: a malformed query (a parameter given twice)",
                );
            }
            if checked {
                add(op, "422", "invalid_spec: a parameter out of range");
            }
        }
    }
}
