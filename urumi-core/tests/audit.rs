//! Audit sinks: the query conformance cases on every queryable sink, and what the
//! write-only sinks and the fan-out promise.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use urumi_core::ErrorKind;
use urumi_core::audit::{
    AuditQuery, AuditSink, FanOut, JsonLinesSink, Outcome, StateSink, TracingSink,
};
use urumi_core::state::{self, MemoryStore};
use urumi_core::store::AuditEvent;

async fn state_memory() -> (Arc<dyn AuditSink>, Box<dyn std::any::Any>) {
    (
        Arc::new(StateSink::new(Arc::new(MemoryStore::new()))),
        Box::new(()),
    )
}

async fn state_sqlite() -> (Arc<dyn AuditSink>, Box<dyn std::any::Any>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let st = state::open(&url).await.unwrap();
    (Arc::new(StateSink::new(st)), Box::new(dir))
}

async fn state_postgres() -> (Arc<dyn AuditSink>, Box<dyn std::any::Any>) {
    use sqlx::Connection;
    let url = std::env::var("URUMI_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let url = url.unwrap_or_else(|| {
        panic!("URUMI_TEST_POSTGRES_URL is not set: run `eval \"$(tests/postgres/up)\"` first")
    });
    let schema = format!("a_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let st = state::open(&format!("{url}{sep}options[search_path]={schema}"))
        .await
        .unwrap();
    (Arc::new(StateSink::new(st)), Box::new(()))
}

/// Tracing first, JSON lines second, the state table last: queries fall through to it.
async fn fanout() -> (Arc<dyn AuditSink>, Box<dyn std::any::Any>) {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = JsonLinesSink::open(dir.path().join("audit.jsonl"))
        .await
        .unwrap();
    let sink = FanOut::new(vec![Arc::new(TracingSink), Arc::new(jsonl)])
        .with(Arc::new(StateSink::new(Arc::new(MemoryStore::new()))));
    (Arc::new(sink), Box::new(dir))
}

macro_rules! audit_cases {
    ($($backend:ident),*) => {
        $(
            mod $backend {
                #[tokio::test]
                async fn case_recorded_events_are_queryable() {
                    let (sink, _guard) = super::$backend().await;
                    urumi_core::audit::conformance::case_recorded_events_are_queryable(sink).await;
                }
                #[tokio::test]
                async fn case_query_pages_through_everything() {
                    let (sink, _guard) = super::$backend().await;
                    urumi_core::audit::conformance::case_query_pages_through_everything(sink).await;
                }
            }
        )*
    };
}
audit_cases!(state_memory, state_sqlite, state_postgres, fanout);

#[tokio::test]
async fn jsonl_appends_one_api_json_object_per_line_and_keeps_old_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, "{\"earlier\":true}\n").unwrap();
    let sink = JsonLinesSink::open(&path).await.unwrap();
    let a = AuditEvent::new("key:ops", "store.create", Outcome::Success).store("shop1");
    let b = AuditEvent::new("system", "store.ready", Outcome::Success).store("shop1");
    sink.record(&a).await.unwrap();
    sink.record(&b).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "appended, never truncated: {text}");
    let back: AuditEvent = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(back, a);
    assert!(lines[2].contains("\"action\":\"store.ready\""));
    let err = sink.query(&AuditQuery::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn jsonl_in_a_missing_directory_is_unavailable() {
    let err = JsonLinesSink::open("/nonexistent-urumi-dir/audit.jsonl")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.to_string()
            .contains("/nonexistent-urumi-dir/audit.jsonl"),
        "{err}"
    );
}

#[tokio::test]
async fn write_only_sinks_say_queries_are_unsupported() {
    let err = TracingSink.query(&AuditQuery::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let only_writers = FanOut::new(vec![Arc::new(TracingSink)]);
    let err = only_writers
        .query(&AuditQuery::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[derive(Debug)]
struct Broken;

#[async_trait::async_trait]
impl AuditSink for Broken {
    async fn record(&self, _: &AuditEvent) -> urumi_core::Result<()> {
        Err(urumi_core::Error::Unavailable {
            message: "disk full".into(),
        })
    }
    fn name(&self) -> &'static str {
        "broken"
    }
}

#[tokio::test]
async fn fanout_records_to_every_sink_even_after_a_failure_and_reports_it() {
    let store = Arc::new(MemoryStore::new());
    let sink = FanOut::new(vec![
        Arc::new(Broken),
        Arc::new(StateSink::new(store.clone())),
    ]);
    let e = AuditEvent::new("system", "store.failed", Outcome::Failure).store("shop1");
    let err = sink.record(&e).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Unavailable,
        "the failure is not hidden"
    );
    let page = sink.query(&AuditQuery::default()).await.unwrap();
    assert_eq!(page.items, vec![e], "the healthy sink still got the event");
}
