//! # urumi-http
//!
//! The HTTP adapter over [`urumi_core`]: [`router`] builds the whole API (mount it in your
//! own axum server), and the `urumi-server` binary serves it with the dashboard.
//!
//! ```text
//!  request ─▶ x-request-id (set / propagate) ─▶ trace span ─▶ body checks (64 KiB: 413, JSON: 415,
//!             chunked bodies read here; one Content-Type)
//!     ─▶ routing ─┬─ matched:  metrics (route TEMPLATE) ─▶ auth (API key ─▶ Caller) ─▶ timeout ─▶ handler
//!                 │                                                  handler: parse ─▶ Provisioner ─▶ map
//!                 ├─ unknown path ─▶ 404 problem        wrong method ─▶ 405 problem
//!                 └─ every error: AppError ─▶ application/problem+json (RFC 9457)
//! ```
//!
//! Handlers hold no rule of their own: validation, tenancy (another tenant's store is
//! `not_found`), idempotency, limits and audit all live in [`urumi_core::Provisioner`].
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
mod dashboard;
pub mod error;
pub mod metrics;
pub mod routes;
pub mod schema;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use urumi_core::Provisioner;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{ApiKeyConfig, KeyRing};
pub use error::{AppError, Problem};
pub use metrics::Metrics;

/// The largest request body accepted (64 KiB); larger is 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Oversized bodies up to this size are read (under the request timeout) and dropped before
/// the 413 answer: a client still sending when the connection closes gets a reset (broken
/// pipe) instead of the answer. At 1 MiB, the bad-input corpus's 3 MiB body lost that race
/// in 4 of 10 runs on a busy machine; at 8 MiB in none of 16.
const DRAIN_LIMIT: usize = 8 * 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The core.
    pub provisioner: Arc<dyn Provisioner>,
    /// The API keys.
    pub keys: KeyRing,
    /// Request and store metrics.
    pub metrics: Metrics,
    /// Cancelled when the server shuts down: open event streams end.
    pub shutdown: CancellationToken,
    /// How long a request may take before it is answered 504 (SSE excluded: only the
    /// time to the response head counts).
    pub request_timeout: Duration,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("keys", &self.keys)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over `provisioner` with `keys`, fresh metrics, a 30 s request timeout.
    pub fn new(provisioner: Arc<dyn Provisioner>, keys: KeyRing) -> Self {
        AppState {
            provisioner,
            keys,
            metrics: Metrics::default(),
            shutdown: CancellationToken::new(),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The OpenAPI document served at `/openapi.json`, as JSON text.
#[derive(Clone, Debug)]
pub struct OpenApiDoc(pub Arc<String>);

#[derive(OpenApi)]
#[openapi(
    info(title = "Urumi", description = "Provision isolated WooCommerce stores on Kubernetes.", version = "1"),
    modifiers(&BearerAuth),
    components(schemas(error::FieldError, schema::UrlsDoc, schema::VerifyStepDoc))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key from the server's configuration"))
                    .build(),
            ),
        );
    }
}

/// The router and its OpenAPI document, built from the same route list.
pub fn router_and_spec(state: AppState) -> (axum::Router, utoipa::openapi::OpenApi) {
    let authenticated = OpenApiRouter::new()
        .routes(routes!(routes::stores::create, routes::stores::list))
        .routes(routes!(
            routes::stores::get,
            routes::stores::update,
            routes::stores::delete
        ))
        .routes(routes!(routes::stores::retry))
        .routes(routes!(routes::stores::upgrade))
        .routes(routes!(routes::stores::suspend))
        .routes(routes!(routes::stores::resume))
        .routes(routes!(routes::stores::credentials))
        .routes(routes!(routes::stores::verify))
        .routes(routes!(routes::stores::usage))
        .routes(routes!(routes::stores::revisions))
        .routes(routes!(routes::stores::plans))
        .routes(routes!(routes::stores::events))
        .routes(routes!(routes::stores::audit))
        .routes(routes!(routes::events::stream))
        .route_layer(middleware::from_fn_with_state(
            state.keys.clone(),
            auth::authenticate,
        ));
    let open = OpenApiRouter::new()
        .routes(routes!(routes::webhooks::receive))
        .routes(routes!(routes::ops::healthz))
        .routes(routes!(routes::ops::readyz))
        .routes(routes!(routes::ops::metrics))
        .routes(routes!(routes::ops::openapi))
        .routes(routes!(routes::ops::dashboard));
    let (router, mut spec) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(authenticated)
        .merge(open)
        .split_for_parts();
    schema::document_common_problems(&mut spec);
    let doc = OpenApiDoc(Arc::new(spec.to_json().unwrap_or_default()));
    let request_id = HeaderName::from_static("x-request-id");
    let router = router
        .route_layer(middleware::from_fn_with_state(state.clone(), timeout))
        .route_layer(middleware::from_fn_with_state(state.clone(), record_metrics))
        .fallback(|| async { AppError::no_route() })
        .method_not_allowed_fallback(|| async { AppError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), check_body))
        .layer(Extension(doc))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            // The path only: a query string never carries secrets here, but keep logs short.
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state);
    (router, spec)
}

/// The whole API, the operations endpoints and the dashboard.
pub fn router(state: AppState) -> axum::Router {
    router_and_spec(state).0
}

/// Answers 413 for a declared body over [`BODY_LIMIT`] and 415 for a body that is not
/// JSON (the webhook receiver takes whatever WooCommerce sends).
async fn check_body(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(l) = length.filter(|l| *l > BODY_LIMIT as u64) {
        // Read (and drop) a moderately large body first, so the client sees the 413
        // instead of a connection reset while it is still sending.
        if l <= DRAIN_LIMIT as u64 {
            let drain = axum::body::to_bytes(req.into_body(), DRAIN_LIMIT);
            let _ = tokio::time::timeout(state.request_timeout, drain).await;
        }
        return AppError::too_large(BODY_LIMIT).into_response();
    }
    let has_body = length.is_some_and(|l| l > 0) || headers.contains_key(header::TRANSFER_ENCODING);
    let webhook = req.uri().path().starts_with("/api/v1/webhooks/");
    if has_body && !webhook && req.method() != Method::GET {
        // Two Content-Types (say JSON, then text) leave the body's type ambiguous.
        let single = headers
            .get_all(header::CONTENT_TYPE)
            .iter()
            .nth(1)
            .is_none();
        let json = single
            && headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .map(|m| {
                    let m = m.trim().to_ascii_lowercase();
                    m == "application/json"
                        || (m.starts_with("application/") && m.ends_with("+json"))
                })
                .unwrap_or(false);
        if !json {
            return AppError::unsupported_media_type().into_response();
        }
    }
    if length.is_none() && req.headers().contains_key(header::TRANSFER_ENCODING) {
        // Read under the request timeout, as a handler would have read it.
        return match tokio::time::timeout(state.request_timeout, buffer_chunked(req)).await {
            Ok(Ok(req)) => next.run(req).await,
            Ok(Err(refused)) => refused,
            Err(_) => AppError::from(urumi_core::Error::Timeout {
                operation: "reading the request body".to_owned(),
                after: state.request_timeout,
            })
            .into_response(),
        };
    }
    next.run(req).await
}

/// A body without a declared length (chunked), read here: up to [`BODY_LIMIT`] it goes on
/// to the handler; a larger one is read on (to [`DRAIN_LIMIT`]) and dropped, then 413 —
/// the same as a declared length, so the client sees the answer, not a reset.
async fn buffer_chunked(req: Request) -> Result<Request, Response> {
    use futures::StreamExt;
    let (parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let (mut kept, mut seen) = (Vec::new(), 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            AppError::http(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_spec",
                "the request body could not be read",
            )
            .into_response()
        })?;
        seen = seen.saturating_add(chunk.len());
        if seen <= BODY_LIMIT {
            kept.extend_from_slice(&chunk);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > BODY_LIMIT {
        return Err(AppError::too_large(BODY_LIMIT).into_response());
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(kept)))
}

/// Counts the request by its route template and times it.
async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    state.metrics.record_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Answers 504 `timeout` when the handler takes longer than the request timeout.
async fn timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => AppError::from(urumi_core::Error::Timeout {
            operation: "the request".to_owned(),
            after: state.request_timeout,
        })
        .into_response(),
    }
}
