//! `GET /api/v1/events`: the core's durable change feed as Server-Sent Events.
//!
//! ```text
//!  Last-Event-ID header │ ?after= ──▶ Provisioner::changes(caller, after)
//!     ──▶ retry: 3000 (priming) ─▶ per change:  id: <seq>  event: store   data: Store JSON
//!                                               id: <seq>  event: deleted data: {"name"}
//!         cursor_expired ─▶ event: reset (list again, then follow) and the stream ends
//!     ── `: keep-alive` every 15 s; X-Accel-Buffering: no; ends on server shutdown (take_until)
//! ```

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt, stream};
use serde::Deserialize;
use urumi_core::{Change, ChangeKind, ErrorKind};
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::AuthedCaller;
use crate::error::AppError;
use crate::routes::AppQuery;

/// `?after=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AfterParams {
    /// Resume after this sequence (the `id` of the last event seen).
    #[param(value_type = Option<u64>, minimum = 0)]
    after: Option<String>,
}

fn parse_seq(field: &str, raw: &str) -> Result<u64, AppError> {
    raw.trim()
        .parse::<u64>()
        .map_err(|_| AppError::invalid_field(field, "must be an event id (a sequence number)"))
}

fn change_event(change: &Change) -> Event {
    let event = Event::default().id(change.seq.to_string());
    let built = if change.kind == ChangeKind::Deleted {
        event
            .event("deleted")
            .json_data(serde_json::json!({"name": change.store.name.as_str()}))
    } else {
        event.event("store").json_data(&change.store)
    };
    built.unwrap_or_else(|_| Event::default().comment("unserializable change"))
}

/// Follows every change to the stores the caller may see.
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    params(AfterParams, ("Last-Event-ID" = Option<String>, Header, description = "resume after this event id")),
    responses((status = 200, description = "text/event-stream: `store`, `deleted`, `reset` events", content_type = "text/event-stream", body = String)),
    security(("bearer" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    AuthedCaller(caller): AuthedCaller,
    headers: HeaderMap,
    AppQuery(q): AppQuery<AfterParams>,
) -> Result<Response, AppError> {
    let after = match headers.get("last-event-id") {
        Some(v) => {
            let raw = v
                .to_str()
                .map_err(|_| AppError::invalid_field("Last-Event-ID", "must be ASCII"))?;
            Some(parse_seq("Last-Event-ID", raw)?)
        }
        None => q
            .after
            .filter(|a| !a.is_empty())
            .map(|a| parse_seq("after", &a))
            .transpose()?,
    };
    let changes = state.provisioner.changes(&caller, after);
    let events = changes
        .scan(false, |ended, item| {
            if *ended {
                return futures::future::ready(None);
            }
            let event = match item {
                Ok(change) => change_event(&change),
                Err(e) if e.kind() == ErrorKind::CursorExpired => {
                    *ended = true;
                    Event::default()
                        .event("reset")
                        .json_data(serde_json::json!({"code": "cursor_expired", "detail": e.tenant_message()}))
                        .unwrap_or_default()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "change feed ended with an error");
                    *ended = true;
                    return futures::future::ready(None);
                }
            };
            futures::future::ready(Some(event))
        })
        .map(Ok::<_, Infallible>);
    let priming =
        stream::once(async { Ok(Event::default().retry(std::time::Duration::from_secs(3))) });
    let body: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> = Box::pin(
        priming
            .chain(events)
            .take_until(state.shutdown.clone().cancelled_owned()),
    );
    let mut response = Sse::new(body)
        .keep_alive(KeepAlive::default())
        .into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
