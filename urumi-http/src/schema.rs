//! The request bodies, and the OpenAPI shapes of the core's response types.
//!
//! ```text
//!  request JSON ──AppJson<CreateStoreBody>──▶ urumi_core::CreateStore   (unknown fields refused)
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
    /// A DNS-1123 label of 3–40 characters, unique across the platform.
    #[schema(example = "shop1")]
    pub name: String,
    /// `woocommerce` (the default).
    #[serde(default)]
    pub engine: Option<String>,
    /// `small` (the default), `medium` or `large`.
    #[serde(default)]
    pub plan: Option<String>,
    /// The owning tenant; only an admin may name another tenant than its own.
    #[serde(default)]
    pub tenant: Option<String>,
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
        struct ObjectOnly;
        impl<'de> Visitor<'de> for ObjectOnly {
            type Value = CreateStoreBody;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let f = CreateStoreFields::deserialize(MapAccessDeserializer::new(map))?;
                Ok(CreateStoreBody {
                    name: f.name,
                    engine: f.engine,
                    plan: f.plan,
                    tenant: f.tenant,
                })
            }
        }
        deserializer.deserialize_map(ObjectOnly)
    }
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
    /// `Pending`, `Provisioning`, `Ready`, `Failed`, `Deleting`.
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
