//! [`FanOut`]: one sink that records to several.
//!
//! ```text
//!  record(e) ──▶ sink[0].record(e), sink[1].record(e), …   (all are tried; the first error is returned)
//!  query(q)  ──▶ the first sink whose query is not `unsupported`
//! ```

use std::sync::Arc;

use async_trait::async_trait;

use super::{AuditQuery, AuditSink};
use crate::error::{Error, ErrorKind, Result};
use crate::state::Page;
use crate::store::AuditEvent;

/// Records every event to each of its sinks, in order.
#[derive(Debug, Clone, Default)]
pub struct FanOut {
    sinks: Vec<Arc<dyn AuditSink>>,
}

impl FanOut {
    /// A fan-out over `sinks`.
    pub fn new(sinks: Vec<Arc<dyn AuditSink>>) -> Self {
        FanOut { sinks }
    }

    /// Adds a sink.
    pub fn with(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.sinks.push(sink);
        self
    }
}

#[async_trait]
impl AuditSink for FanOut {
    /// Every sink gets the event even if an earlier one fails; the first error is
    /// returned so the caller knows the trail is incomplete somewhere.
    async fn record(&self, event: &AuditEvent) -> Result<()> {
        let mut first_err = None;
        for sink in &self.sinks {
            if let Err(e) = sink.record(event).await {
                tracing::warn!(sink = sink.name(), error = %e, "audit sink failed to record");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    async fn query(&self, query: &AuditQuery) -> Result<Page<AuditEvent>> {
        for sink in &self.sinks {
            match sink.query(query).await {
                Err(e) if e.kind() == ErrorKind::Unsupported => continue,
                other => return other,
            }
        }
        Err(Error::Unsupported {
            what: "querying audit: none of the fan-out's sinks can answer queries".to_owned(),
        })
    }

    fn name(&self) -> &'static str {
        "fanout"
    }
}
