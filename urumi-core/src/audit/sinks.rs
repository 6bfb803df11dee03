//! Two simple sinks: [`StateSink`] (the state store's audit table) and [`TracingSink`].
//!
//! ```text
//!  AuditEvent ──StateSink──▶ StateStore::append_audit ──▶ table `audit_events` (queryable)
//!  AuditEvent ──TracingSink──▶ tracing::info!(target: "urumi::audit", action, store, …)
//! ```

use std::sync::Arc;

use async_trait::async_trait;

use super::{AuditQuery, AuditSink};
use crate::error::Result;
use crate::state::{Page, StateStore};
use crate::store::AuditEvent;

/// Records events into the state store's own audit table; answers queries from it.
#[derive(Debug, Clone)]
pub struct StateSink {
    state: Arc<dyn StateStore>,
}

impl StateSink {
    /// A sink writing into `state`.
    pub fn new(state: Arc<dyn StateStore>) -> Self {
        StateSink { state }
    }
}

#[async_trait]
impl AuditSink for StateSink {
    async fn record(&self, event: &AuditEvent) -> Result<()> {
        self.state.append_audit(event).await
    }

    async fn query(&self, query: &AuditQuery) -> Result<Page<AuditEvent>> {
        self.state.query_audit(query).await
    }

    fn name(&self) -> &'static str {
        "state"
    }
}

/// Emits each event as a `tracing` event at INFO level with target `urumi::audit`.
/// Write-only: queries answer `unsupported`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

#[async_trait]
impl AuditSink for TracingSink {
    async fn record(&self, e: &AuditEvent) -> Result<()> {
        tracing::info!(
            target: "urumi::audit",
            id = %e.id,
            at = %e.at.to_rfc3339(),
            actor = %e.actor,
            tenant = e.tenant.as_deref().unwrap_or(""),
            action = %e.action,
            store = e.store.as_deref().unwrap_or(""),
            outcome = %e.outcome,
            source_ip = e.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            "{}",
            e.detail
        );
        Ok(())
    }

    fn name(&self) -> &'static str {
        "tracing"
    }
}
