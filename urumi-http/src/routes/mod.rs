//! The handlers, one module per resource, and the extractors they share.
//!
//! ```text
//!  stores  ── /api/v1/stores…, /api/v1/audit          (authenticated)
//!  events  ── /api/v1/events (SSE)                    (authenticated)
//!  webhooks── /api/v1/webhooks/woocommerce/{name}     (HMAC, checked by the core)
//!  ops     ── /healthz /readyz /metrics /openapi.json /   (open)
//!  AppPath / AppQuery: axum's Path / Query whose rejections are problems
//! ```

pub mod events;
pub mod ops;
pub mod stores;
pub mod webhooks;

use axum::extract::FromRequestParts;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::StatusCode;
use serde::Serialize;

use crate::error::AppError;

/// `Path<T>` answering problems.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct AppPath<T>(pub T);

/// `Query<T>` answering problems.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct AppQuery<T>(pub T);

impl From<PathRejection> for AppError {
    fn from(r: PathRejection) -> Self {
        AppError::http(StatusCode::BAD_REQUEST, "invalid_spec", r.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        AppError::http(
            StatusCode::BAD_REQUEST,
            "invalid_spec",
            format!("invalid query string: {}", r.body_text()),
        )
    }
}

/// A JSON response (`application/json`).
pub fn json<T: Serialize>(value: &T) -> axum::response::Response {
    use axum::response::IntoResponse;
    match serde_json::to_vec(value) {
        Ok(body) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => {
            AppError::from(urumi_core::Error::internal(format!("serializing: {e}"))).into_response()
        }
    }
}
