//! Every error the API answers, as an RFC 9457 problem (`application/problem+json`).
//!
//! ```text
//!  urumi_core::Error ──kind()──┐
//!  HTTP-only kinds ────────────┼──▶ AppError ──IntoResponse──▶ status + problem+json
//!  axum rejections (AppJson) ──┘        │                       {"type","title","status","detail","code","errors"?}
//!                                       ├─ 429: Retry-After, RateLimit-Policy, RateLimit
//!                                       └─ 5xx: detail = tenant_message(); the full error is logged once
//! ```

use axum::extract::FromRequest;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use urumi_core::Error;
use utoipa::ToSchema;

/// One field-level problem of a request.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// The field (`name`, `plan`, `limit`, `body`, …).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The body of every error answer (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`urn:urumi:problem:<code>`).
    #[serde(rename = "type")]
    pub type_: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for a human; safe to show a tenant.
    pub detail: String,
    /// The stable machine string (`invalid_name`, `store_exists`, …).
    pub code: String,
    /// Field-level problems, when the request had some.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// The HTTP adapter's error: a core error, or one of the kinds only HTTP has.
#[derive(Debug)]
pub enum AppError {
    /// An error of the core; mapped through its kind.
    Core(Error),
    /// A problem the HTTP layer found itself (auth, media type, size, routing, parsing).
    Http {
        /// The status to answer.
        status: StatusCode,
        /// The problem code.
        code: &'static str,
        /// The detail.
        detail: String,
        /// Field-level problems.
        errors: Vec<FieldError>,
    },
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Core(e)
    }
}

impl AppError {
    /// A problem found by the HTTP layer.
    pub fn http(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        AppError::Http {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::http(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 404 `not_found` for a path that is not part of the API.
    pub fn no_route() -> Self {
        Self::http(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such route; see /openapi.json",
        )
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        Self::http(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this method is not allowed on this route; see /openapi.json",
        )
    }

    /// 413 `payload_too_large`.
    pub fn too_large(limit: usize) -> Self {
        Self::http(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    /// 415 `unsupported_media_type`.
    pub fn unsupported_media_type() -> Self {
        Self::http(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be JSON (Content-Type: application/json)",
        )
    }

    /// 422 `invalid_spec` about one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        AppError::Http {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_spec",
            detail: format!("invalid {field}: {message}"),
            errors: vec![FieldError {
                field: field.to_owned(),
                message,
            }],
        }
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Core(e) => StatusCode::from_u16(e.kind().http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            AppError::Http { status, .. } => *status,
        }
    }

    /// The problem `code`.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Core(e) => e.kind().as_str(),
            AppError::Http { code, .. } => code,
        }
    }

    /// The problem document (what a client reads).
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let (detail, errors) = match self {
            AppError::Core(e) => (e.tenant_message(), core_field_errors(e)),
            AppError::Http { detail, errors, .. } => (detail.clone(), errors.clone()),
        };
        let code = self.code();
        Problem {
            type_: format!("urn:urumi:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            errors,
        }
    }
}

/// The field a core validation error is about, as `errors[]`.
fn core_field_errors(e: &Error) -> Vec<FieldError> {
    match e {
        Error::InvalidName { rule, .. } => vec![FieldError {
            field: "name".to_owned(),
            message: rule.to_string(),
        }],
        Error::InvalidSpec { field, message } => vec![FieldError {
            field: (*field).to_owned(),
            message: message.clone(),
        }],
        _ => Vec::new(),
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let status = self.status();
        match &self {
            // The full cause, once, for operators; never echoed to the client.
            AppError::Core(e) if status.is_server_error() => {
                tracing::error!(code = problem.code, error = %e, "request failed");
            }
            _ => tracing::debug!(
                code = problem.code,
                status = status.as_u16(),
                "request refused"
            ),
        }
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            )],
            body,
        )
            .into_response();
        let headers = response.headers_mut();
        if let AppError::Core(e) = &self {
            rate_limit_headers(e, headers);
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is never read: the connection cannot carry another
            // request, and a client must not put it back in its pool.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"urumi\""),
            );
        }
        response.extensions_mut().insert(ProblemCode(problem.code));
        response
    }
}

/// The problem code of an error response, for the middleware that counts them.
#[derive(Debug, Clone)]
pub struct ProblemCode(pub String);

/// `Retry-After`, `RateLimit-Policy` and `RateLimit` (IETF draft) for a 429.
fn rate_limit_headers(e: &Error, headers: &mut axum::http::HeaderMap) {
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    match e {
        Error::RateLimited {
            limit,
            retry_after_secs,
        } => {
            set("retry-after", retry_after_secs.to_string());
            set("ratelimit-policy", format!("\"hourly\";q={limit};w=3600"));
            set("ratelimit", format!("\"hourly\";r=0;t={retry_after_secs}"));
        }
        Error::QuotaExceeded { scope, limit } => {
            // A store cap frees only when a store is deleted: no time window to announce.
            set("ratelimit-policy", format!("\"{scope}-stores\";q={limit}"));
            set("ratelimit", format!("\"{scope}-stores\";r=0"));
        }
        // A rate-limited request releases its idempotency key (it may succeed later), so
        // a `rate_limited` answer is never a replay: it always carries its own numbers.
        _ => {}
    }
}

/// `Json<T>` whose rejections are problems: 415 without a JSON content type, 413 over
/// the body limit, 400 for malformed JSON, 422 for the wrong fields.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct AppJson<T>(pub T);

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => AppError::unsupported_media_type(),
            JsonRejection::JsonDataError(e) => {
                // serde's message names the field ("unknown field `x`", "missing field `name`").
                let message = std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| e.body_text());
                AppError::Http {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    code: "invalid_spec",
                    detail: format!("invalid body: {message}"),
                    errors: vec![FieldError {
                        field: field_of(&message).unwrap_or("body").to_owned(),
                        message,
                    }],
                }
            }
            JsonRejection::JsonSyntaxError(e) => {
                let message = std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "malformed JSON".to_owned());
                AppError::Http {
                    status: StatusCode::BAD_REQUEST,
                    code: "invalid_spec",
                    detail: format!("the body is not valid JSON: {message}"),
                    errors: vec![FieldError {
                        field: "body".to_owned(),
                        message,
                    }],
                }
            }
            JsonRejection::BytesRejection(b) => bytes_rejection(b),
            other => AppError::http(StatusCode::BAD_REQUEST, "invalid_spec", other.body_text()),
        }
    }
}

/// A failure to read the body: 413 when over the limit.
pub fn bytes_rejection(rejection: BytesRejection) -> AppError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::too_large(crate::BODY_LIMIT)
    } else {
        AppError::http(
            StatusCode::BAD_REQUEST,
            "invalid_spec",
            "the request body could not be read",
        )
    }
}

/// The field named in serde's message: "… field `name` …" → `name`.
fn field_of(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_name_their_field() {
        assert_eq!(
            field_of("unknown field `colour`, expected one of"),
            Some("colour")
        );
        assert_eq!(field_of("missing field `name` at line 1"), Some("name"));
        assert_eq!(field_of("invalid type: integer"), None);
    }

    #[test]
    fn a_server_error_shows_the_tenant_message_not_the_cause() {
        let e = AppError::from(Error::State {
            backend: "postgres",
            message: "connection to 10.0.0.7:5432 refused".to_owned(),
            retryable: false,
            source: None,
        });
        let p = e.problem();
        assert_eq!(p.status, 500);
        assert_eq!(p.code, "internal");
        assert!(!p.detail.contains("10.0.0.7"), "{}", p.detail);
    }
}
