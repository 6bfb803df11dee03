//! The audit port: an append-only trail of who did what to which store.
//!
//! ```text
//!  AuditEvent ──AuditSink::record──┬──▶ StateSink    (the state store's table; queryable)
//!                                  ├──▶ TracingSink  (a `tracing` event at INFO, target "urumi::audit")
//!                                  ├──▶ JsonLinesSink (one JSON object per line, appended, flushed)
//!                                  └──▶ FanOut([..]) (records to every sink; queries the first that can)
//!  AuditQuery {store, tenant, action, since, until, limit, cursor} ──AuditSink::query──▶ Page<AuditEvent>
//! ```
//!
//! Sinks that cannot answer a query return `unsupported`. No sink ever rewrites or
//! deletes an event. Events carry no secrets (see [`AuditEvent`]).

mod fanout;
mod jsonl;
mod sinks;

#[doc(hidden)]
pub mod conformance;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use crate::store::{AuditEvent, Outcome};
pub use fanout::FanOut;
pub use jsonl::JsonLinesSink;
pub use sinks::{StateSink, TracingSink};

use crate::error::{Error, Result};
use crate::state::Page;

/// A filter and page request over the audit trail; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only events about this store.
    pub store: Option<String>,
    /// Only events of this tenant.
    pub tenant: Option<String>,
    /// Only this action (exact, e.g. `store.create`), or every action under a prefix
    /// when it ends in `.*` (e.g. `provision.*`).
    pub action: Option<String>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
    /// Page size (default 50, at most 1000).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl AuditQuery {
    /// The effective page size; `invalid_spec` when out of range.
    pub fn page_size(&self) -> Result<u32> {
        crate::state::page_size(self.limit)
    }

    /// Whether `event` passes the filters (not the cursor).
    pub fn matches(&self, event: &AuditEvent) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_deref() == Some(w))
        };
        eq(&self.store, &event.store)
            && eq(&self.tenant, &event.tenant)
            && self.action.as_ref().is_none_or(|a| match action_prefix(a) {
                Some(prefix) => event.action.starts_with(prefix),
                None => event.action == *a,
            })
            && self.since.is_none_or(|s| event.at >= s)
            && self.until.is_none_or(|u| event.at < u)
    }
}

/// `Some("provision.")` for `provision.*`; `None` for an exact action.
pub(crate) fn action_prefix(action: &str) -> Option<&str> {
    action.strip_suffix('*').filter(|p| p.ends_with('.'))
}

/// Where audit events go.
///
/// `record` is append-only: an event once recorded is never changed. Object-safe; use
/// as `Arc<dyn AuditSink>`.
#[async_trait]
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    /// Appends `event`. Recording the same event id twice keeps one copy where the sink
    /// can tell (the state table); line-oriented sinks append what they are given.
    /// Errors: `unavailable` (the sink could not be written).
    async fn record(&self, event: &AuditEvent) -> Result<()>;

    /// Events matching `query`, newest first. Errors: `unsupported` for sinks that only
    /// write (tracing, JSON lines), `invalid_spec` for a bad limit or cursor.
    async fn query(&self, query: &AuditQuery) -> Result<Page<AuditEvent>> {
        let _ = query;
        Err(Error::Unsupported {
            what: format!("querying the {} audit sink", self.name()),
        })
    }

    /// A short name for messages: `state`, `tracing`, `jsonl`, `fanout`.
    fn name(&self) -> &'static str;
}
