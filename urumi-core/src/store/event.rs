//! [`AuditEvent`]: one line of the append-only audit trail.
//!
//! ```text
//!  provisioner / adapter ──AuditEvent::new(actor, action, outcome)──.tenant().store().detail()
//!        └──▶ audit::AuditSink::record ──▶ state table / tracing / JSON lines
//! ```
//!
//! An event never carries a password or an API key: `actor` is a key's *name* or
//! tenant, never the key; `detail` is a human sentence written by urumi.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It did what was asked.
    Success,
    /// It was attempted and failed.
    Failure,
    /// It was refused (authorization, quota, validation).
    Denied,
}

impl Outcome {
    /// The lowercase name used in JSON and in the state table.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            "denied" => Some(Outcome::Denied),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One audited action: who did what to which store, when, and how it ended.
///
/// JSON: `{"id","at","actor","tenant","action","store","outcome","detail","sourceIp"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// A time-ordered unique id (UUID v7).
    pub id: Uuid,
    /// When it happened (UTC, microsecond precision).
    pub at: DateTime<Utc>,
    /// Who did it: an API key's name, `system` for the background worker, or a webhook.
    pub actor: String,
    /// The tenant concerned, if any.
    pub tenant: Option<String>,
    /// What was done: `store.create`, `provision.release`, `woocommerce.order.created`, …
    pub action: String,
    /// The store concerned, if any.
    pub store: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// A short human explanation (never a secret); may be empty.
    pub detail: String,
    /// The client's address, when the action came over the network.
    pub source_ip: Option<IpAddr>,
}

impl AuditEvent {
    /// A new event happening now, with a fresh id and no tenant, store or detail.
    pub fn new(actor: impl Into<String>, action: impl Into<String>, outcome: Outcome) -> Self {
        AuditEvent {
            id: Uuid::now_v7(),
            at: crate::store::now(),
            actor: actor.into(),
            tenant: None,
            action: action.into(),
            store: None,
            outcome,
            detail: String::new(),
            source_ip: None,
        }
    }

    /// Sets the tenant.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Sets the store.
    pub fn store(mut self, store: impl Into<String>) -> Self {
        self.store = Some(store.into());
        self
    }

    /// Sets the detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Sets the client address.
    pub fn source_ip(mut self, ip: IpAddr) -> Self {
        self.source_ip = Some(ip);
        self
    }

    /// Sets the time (useful for imports and tests).
    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.at = crate::store::truncate_micros(at);
        self
    }
}
