//! `POST /api/v1/webhooks/woocommerce/{name}`: WooCommerce deliveries, verified by the core.
//!
//! ```text
//!  X-WC-Webhook-Topic missing ─▶ 200 (WooCommerce's ping when a webhook is saved; nothing recorded)
//!  body bytes + X-WC-Webhook-Signature ─▶ Provisioner::receive_webhook(name, topic, body, sig)
//!        ├─ ok              ─▶ 200, audit `woocommerce.<topic>`
//!        ├─ unauthorized    ─▶ 401 problem, nothing recorded
//!        └─ not_found       ─▶ 404 problem
//! ```

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};

use crate::AppState;
use crate::error::{AppError, Problem, bytes_rejection};
use crate::routes::AppPath;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Receives one WooCommerce webhook delivery for a store.
#[utoipa::path(post, path = "/api/v1/webhooks/woocommerce/{name}", tag = "webhooks",
    params(("name" = String, Path),
        ("X-WC-Webhook-Topic" = Option<String>, Header, description = "e.g. order.created; absent on the ping"),
        ("X-WC-Webhook-Signature" = Option<String>, Header, description = "base64 HMAC-SHA256 of the body")),
    request_body(content = String, content_type = "application/json"),
    responses((status = 200, description = "accepted (or the ping)"),
        (status = 401, description = "bad signature; nothing recorded", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn receive(
    State(state): State<AppState>,
    AppPath(name): AppPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, AppError> {
    let body = body.map_err(bytes_rejection)?;
    let Some(topic) = header(&headers, "x-wc-webhook-topic") else {
        return Ok(StatusCode::OK);
    };
    let signature = header(&headers, "x-wc-webhook-signature").unwrap_or_default();
    state
        .provisioner
        .receive_webhook(&name, topic, &body, signature)
        .await?;
    Ok(StatusCode::OK)
}
