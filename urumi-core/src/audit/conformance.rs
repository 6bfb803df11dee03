//! The conformance suite every queryable [`AuditSink`] runs.
//!
//! ```text
//!  tests/audit_sinks.rs ── one #[tokio::test] per case per sink ──▶ case_*(Arc<dyn AuditSink>)
//! ```
#![allow(missing_docs)]

use std::sync::Arc;

use super::{AuditQuery, AuditSink};
use crate::store::{self, AuditEvent, Outcome};

fn ev(action: &str, store_name: &str, offset_s: i64) -> AuditEvent {
    AuditEvent::new("system", action, Outcome::Success)
        .tenant("acme")
        .store(store_name)
        .at(store::now() - chrono::Duration::minutes(5) + chrono::Duration::seconds(offset_s))
}

pub async fn case_recorded_events_are_queryable(sink: Arc<dyn AuditSink>) {
    let events = [
        ev("store.create", "shop1", 0),
        ev("provision.namespace", "shop1", 1),
        ev("store.create", "shop2", 2),
    ];
    for e in &events {
        sink.record(e).await.expect("record");
    }
    let q = AuditQuery {
        store: Some("shop1".into()),
        ..Default::default()
    };
    let page = sink.query(&q).await.expect("query by store");
    let ids: Vec<_> = page.items.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        [events[1].id, events[0].id],
        "the store's trail, newest first"
    );
    assert_eq!(
        page.items[0], events[1],
        "events come back exactly as recorded"
    );
}

pub async fn case_query_pages_through_everything(sink: Arc<dyn AuditSink>) {
    let events: Vec<_> = (0..7).map(|i| ev("store.retry", "shop1", i)).collect();
    for e in &events {
        sink.record(e).await.expect("record");
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let q = AuditQuery {
            limit: Some(3),
            cursor: cursor.clone(),
            ..Default::default()
        };
        let page = sink.query(&q).await.expect("page");
        seen.extend(page.items.into_iter().map(|e| e.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let want: Vec<_> = events.iter().rev().map(|e| e.id).collect();
    assert_eq!(seen, want, "pages cover every event once, newest first");
}
