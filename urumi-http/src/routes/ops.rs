//! Operations: `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and the dashboard at `/`.
//!
//! ```text
//!  /healthz ─▶ 200 while the process lives
//!  /readyz  ─▶ Provisioner::check_ready ─▶ 200 │ 503 problem
//!  /metrics ─▶ Metrics::render (Prometheus text 0.0.4)
//!  /openapi.json ─▶ the document built from the mounted routes
//!  /        ─▶ the embedded dashboard (one HTML page, its CSS and JS inlined)
//! ```

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::AppState;
use crate::error::{AppError, Problem};
use crate::routes::json;

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive")))]
pub async fn healthz() -> Response {
    json(&serde_json::json!({"status": "ok"}))
}

/// Readiness: the state store and the Kubernetes API answer.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "ready"), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn readyz(State(state): State<AppState>) -> Result<Response, AppError> {
    state.provisioner.check_ready().await?;
    Ok(json(&serde_json::json!({"status": "ready"})))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// The OpenAPI 3.1 document of this server.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json", body = Object)))]
pub async fn openapi(Extension(doc): Extension<crate::OpenApiDoc>) -> Response {
    let mut response = (StatusCode::OK, doc.0.as_ref().clone()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The dashboard.
#[utoipa::path(get, path = "/", tag = "operations",
    responses((status = 200, description = "the dashboard", content_type = "text/html", body = String)))]
pub async fn dashboard() -> Html<&'static str> {
    Html(crate::dashboard::page())
}
