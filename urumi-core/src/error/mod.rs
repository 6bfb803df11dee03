//! One error type for the whole library, and the stable kind every adapter maps.
//!
//! ```text
//!  state / limits / store validation ──┐
//!  kube::Error ──From──────────────────┼──▶ Error ──kind()──▶ ErrorKind ──as_str()──▶ "quota_exceeded"
//!  HelmFailure ──From──────────────────┘        │                 │
//!                                               │                 ├─ http_status() ─▶ 429
//!                                               │                 └─ is_retryable()
//!                                               └─ Display: safe for a client (never a secret)
//! ```
//!
//! Callers match [`Error::kind`], never the message. The message is written for a human
//! and may change; the kind's [`ErrorKind::as_str`] is the API's problem `code` and is
//! stable. No variant carries a password, an API key or a connection string with its
//! password: the state backends redact URLs before they reach an error.

mod tenant;

pub use tenant::scrub;

use std::fmt;
use std::time::Duration;

/// A boxed error kept as the `source()` of an [`Error`] (for logs, never for clients).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of every fallible urumi-core operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which limit a [`Error::QuotaExceeded`] hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuotaScope {
    /// The tenant already has as many stores as it may have.
    Tenant,
    /// The platform already has as many stores as it may have.
    Global,
}

impl fmt::Display for QuotaScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuotaScope::Tenant => "tenant",
            QuotaScope::Global => "global",
        })
    }
}

/// A failure reported by the Helm driver, folded into [`Error::Helm`].
///
/// The helm module builds these from the `helm` process; `message` must already be free
/// of secrets (values files are never echoed into it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmFailure {
    /// The helm operation that failed, e.g. `upgrade`, `uninstall`, `status`.
    pub operation: String,
    /// What went wrong, for a human (a short stderr tail, a timeout, an exit code).
    pub message: String,
    /// Whether running the same operation again may succeed (a lock held by another
    /// operation, a timeout, an unreachable API server).
    pub retryable: bool,
}

/// Everything that can go wrong in urumi-core.
///
/// `#[non_exhaustive]`: match on [`Error::kind`] rather than on the variants.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A store name broke one of the naming rules; `rule` says which.
    #[error("invalid store name {name:?}: {rule}")]
    InvalidName {
        /// The name as given (truncated to 64 characters).
        name: String,
        /// The rule it broke.
        rule: crate::store::NameRule,
    },
    /// A field of a request other than the name is invalid.
    #[error("invalid {field}: {message}")]
    InvalidSpec {
        /// The offending field, e.g. `tenant`, `plan`, `engine`, `limit`, `cursor`.
        field: &'static str,
        /// Why it is invalid.
        message: String,
    },
    /// A store with this name already exists (names are unique across tenants).
    #[error("a store named {name:?} already exists")]
    StoreExists {
        /// The name that is taken.
        name: String,
    },
    /// The thing asked for does not exist (or is not visible to the caller).
    #[error("{what} not found")]
    NotFound {
        /// What was looked up, e.g. `store "shop1"`.
        what: String,
    },
    /// A store cap was reached.
    #[error("{scope} store limit of {limit} reached")]
    QuotaExceeded {
        /// Which cap.
        scope: QuotaScope,
        /// The cap's value.
        limit: u32,
    },
    /// Too many creations in the rate window; retry after `retry_after_secs`.
    #[error(
        "rate limit of {limit} store creations per hour reached; retry in {retry_after_secs} s"
    )]
    RateLimited {
        /// Creations allowed per window.
        limit: u32,
        /// Seconds until one more creation is allowed (at least 1).
        retry_after_secs: u64,
    },
    /// The request conflicts with the current state (stale version, lease held by
    /// another owner, a transition that is not allowed from the current status).
    #[error("conflict: {message}")]
    Conflict {
        /// What conflicted.
        message: String,
    },
    /// The idempotency key was already used with a different request body.
    #[error("idempotency key was already used with a different request")]
    IdempotencyMismatch,
    /// A request with the same idempotency key is still being processed.
    #[error("a request with this idempotency key is still in progress")]
    IdempotencyInProgress,
    /// The caller did not authenticate.
    #[error("unauthorized: {message}")]
    Unauthorized {
        /// Why.
        message: String,
    },
    /// The caller authenticated but may not do this.
    #[error("forbidden: {message}")]
    Forbidden {
        /// Why.
        message: String,
    },
    /// An operation did not finish in time.
    #[error("{operation} timed out after {}s", after.as_secs_f64())]
    Timeout {
        /// What was being waited for.
        operation: String,
        /// How long we waited.
        after: Duration,
    },
    /// The configuration given to urumi is invalid (a state URL, a builder field).
    #[error("invalid configuration: {message}")]
    InvalidConfig {
        /// What is wrong, naming the setting.
        message: String,
    },
    /// The operation is not supported by this implementation (e.g. querying a
    /// write-only audit sink, an unknown state URL scheme).
    #[error("unsupported: {what}")]
    Unsupported {
        /// What is not supported.
        what: String,
    },
    /// The state backend failed. `retryable` tells a transient failure (busy, connection
    /// lost) from a permanent one (corrupt file, schema newer than this code).
    #[error("{backend} state store: {message}")]
    State {
        /// `sqlite`, `postgres` or `memory`.
        backend: &'static str,
        /// What failed, naming the problem; never a password.
        message: String,
        /// Whether trying again may succeed.
        retryable: bool,
        /// The underlying error, for logs.
        #[source]
        source: Option<BoxError>,
    },
    /// A call to the Kubernetes API failed.
    #[error("kubernetes API: {}", kube_summary(.0))]
    Kubernetes(#[source] kube::Error),
    /// The Helm driver failed.
    #[error("helm {}: {}", .0.operation, .0.message)]
    Helm(HelmFailure),
    /// A service urumi depends on is unavailable; try again later.
    #[error("unavailable: {message}")]
    Unavailable {
        /// What is unavailable.
        message: String,
    },
    /// A store could not be provisioned for a reason that retrying unchanged will not fix
    /// (its setup Job failed, it was not ready in time); `message` says why, for a human.
    #[error("{message}")]
    Provisioning {
        /// What went wrong, free of secrets.
        message: String,
    },
    /// A bug or an invariant broken; the message is safe to show, details go to logs.
    #[error("internal error: {message}")]
    Internal {
        /// What went wrong.
        message: String,
    },
    /// The store reached `Failed` while it was waited for; it carries the store, whose
    /// `message` says which step failed and what to do.
    #[error("store {} failed: {}", .0.name, .0.message)]
    StoreFailed(Box<crate::store::Store>),
    /// A change-feed cursor older than the retention, or not from this database: list
    /// the stores again, then follow the feed from its newest change.
    #[error("cursor expired: {message}")]
    CursorExpired {
        /// Why the cursor cannot be resumed.
        message: String,
    },
    /// The store is managed by a Kubernetes object (a `Store` resource, operator mode):
    /// change or delete that object instead.
    #[error("store {name} is managed by {manager}; change or delete that object instead")]
    ManagedExternally {
        /// The store.
        name: String,
        /// The managing object, `Store <namespace>/<name>`.
        manager: String,
    },
    /// A plan change to a plan smaller than what the store already uses (its volumes,
    /// claims or pods): nothing was changed. `over` names each resource and the numbers.
    #[error("store {name} uses more than plan {plan} allows: {}", .over.join("; "))]
    PlanTooSmall {
        /// The store.
        name: String,
        /// The plan asked for.
        plan: String,
        /// `"requests.storage: uses 11Gi, the plan allows 10Gi"`, one per resource.
        over: Vec<String>,
    },
    /// The caller's precondition on the record's version (HTTP `If-Match`) does not hold:
    /// someone changed the store since the caller read it; nothing was changed.
    #[error("store {name} is at version {current}, not {expected}; read it again")]
    VersionMismatch {
        /// The store.
        name: String,
        /// The version the caller expected.
        expected: u64,
        /// The record's version.
        current: u64,
    },
    /// The first outcome of an idempotent request, replayed for a duplicate: the same
    /// kind and message as the first answer.
    #[error("{message}")]
    Replayed {
        /// The kind of the first answer.
        kind: ErrorKind,
        /// Its message.
        message: String,
    },
}

/// A short, secret-free description of a Kubernetes client error.
fn kube_summary(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            format!("{} {}: {}", status.code, status.reason, status.message)
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            "the API server could not be reached".to_owned()
        }
        kube::Error::InferConfig(_) => "no kubeconfig or in-cluster configuration".to_owned(),
        other => other.to_string(),
    }
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error::Kubernetes(e)
    }
}

impl From<HelmFailure> for Error {
    fn from(e: HelmFailure) -> Self {
        Error::Helm(e)
    }
}

impl Error {
    /// The stable kind of this error; adapters map it to a status, class or code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidName { .. } => ErrorKind::InvalidName,
            Error::InvalidSpec { .. } => ErrorKind::InvalidSpec,
            Error::StoreExists { .. } => ErrorKind::StoreExists,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::QuotaExceeded { .. } => ErrorKind::QuotaExceeded,
            Error::RateLimited { .. } => ErrorKind::RateLimited,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::IdempotencyMismatch => ErrorKind::IdempotencyMismatch,
            Error::IdempotencyInProgress => ErrorKind::IdempotencyInProgress,
            Error::Unauthorized { .. } => ErrorKind::Unauthorized,
            Error::Forbidden { .. } => ErrorKind::Forbidden,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::InvalidConfig { .. } => ErrorKind::InvalidConfig,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::State { retryable, .. } | Error::Helm(HelmFailure { retryable, .. }) => {
                if *retryable {
                    ErrorKind::Unavailable
                } else {
                    ErrorKind::Internal
                }
            }
            Error::Kubernetes(e) => kube_kind(e),
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Provisioning { .. } => ErrorKind::Internal,
            Error::Internal { .. } => ErrorKind::Internal,
            Error::StoreFailed(_) => ErrorKind::StoreFailed,
            Error::CursorExpired { .. } => ErrorKind::CursorExpired,
            Error::ManagedExternally { .. } => ErrorKind::ManagedExternally,
            Error::PlanTooSmall { .. } => ErrorKind::PlanTooSmall,
            Error::VersionMismatch { .. } => ErrorKind::PreconditionFailed,
            Error::Replayed { kind, .. } => *kind,
        }
    }

    /// Whether the same operation may succeed if tried again later, unchanged.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    /// How long to wait before retrying, when the error says so (rate limits).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited {
                retry_after_secs, ..
            } => Some(Duration::from_secs(*retry_after_secs)),
            _ => None,
        }
    }

    /// `NotFound` for a store name.
    pub fn store_not_found(name: &str) -> Self {
        Error::NotFound {
            what: format!("store {name:?}"),
        }
    }

    /// `Internal` with a message.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal {
            message: message.into(),
        }
    }

    /// `Conflict` with a message.
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict {
            message: message.into(),
        }
    }
}

fn kube_kind(e: &kube::Error) -> ErrorKind {
    match e {
        kube::Error::Api(s) if s.code == 429 || s.code == 409 || s.code >= 500 => {
            ErrorKind::Unavailable
        }
        kube::Error::Api(_) => ErrorKind::Internal,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Internal,
    }
}

/// The stable classification of an [`Error`]; its string is the API's problem `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `invalid_name` (HTTP 422).
    InvalidName,
    /// `invalid_spec` (HTTP 422).
    InvalidSpec,
    /// `store_exists` (HTTP 409).
    StoreExists,
    /// `not_found` (HTTP 404).
    NotFound,
    /// `quota_exceeded` (HTTP 429).
    QuotaExceeded,
    /// `rate_limited` (HTTP 429 with `Retry-After`).
    RateLimited,
    /// `conflict` (HTTP 409).
    Conflict,
    /// `idempotency_mismatch` (HTTP 422).
    IdempotencyMismatch,
    /// `idempotency_in_progress` (HTTP 409).
    IdempotencyInProgress,
    /// `unauthorized` (HTTP 401).
    Unauthorized,
    /// `forbidden` (HTTP 403).
    Forbidden,
    /// `timeout` (HTTP 504).
    Timeout,
    /// `invalid_config` (a startup error; HTTP 500 if it ever reaches a request).
    InvalidConfig,
    /// `unavailable` (HTTP 503): transient, retry later.
    Unavailable,
    /// `unsupported` (HTTP 501).
    Unsupported,
    /// `internal` (HTTP 500): permanent, needs a human.
    Internal,
    /// `store_failed` (HTTP 409): the store waited for reached `Failed`.
    StoreFailed,
    /// `cursor_expired` (HTTP 410): re-list, then follow the change feed again.
    CursorExpired,
    /// `managed_externally` (HTTP 409): a `Store` resource manages the store.
    ManagedExternally,
    /// `plan_too_small` (HTTP 409): the store uses more than the plan asked for allows.
    PlanTooSmall,
    /// `precondition_failed` (HTTP 412): the store changed since the version the caller
    /// named (`If-Match`); read it again.
    PreconditionFailed,
}

impl ErrorKind {
    /// Every kind, in declaration order (for tables and tests).
    pub const ALL: [ErrorKind; 21] = [
        ErrorKind::InvalidName,
        ErrorKind::InvalidSpec,
        ErrorKind::StoreExists,
        ErrorKind::NotFound,
        ErrorKind::QuotaExceeded,
        ErrorKind::RateLimited,
        ErrorKind::Conflict,
        ErrorKind::IdempotencyMismatch,
        ErrorKind::IdempotencyInProgress,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::Timeout,
        ErrorKind::InvalidConfig,
        ErrorKind::Unavailable,
        ErrorKind::Unsupported,
        ErrorKind::Internal,
        ErrorKind::StoreFailed,
        ErrorKind::CursorExpired,
        ErrorKind::ManagedExternally,
        ErrorKind::PlanTooSmall,
        ErrorKind::PreconditionFailed,
    ];

    /// The stable machine string: the problem `code` of the HTTP API.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidName => "invalid_name",
            ErrorKind::InvalidSpec => "invalid_spec",
            ErrorKind::StoreExists => "store_exists",
            ErrorKind::NotFound => "not_found",
            ErrorKind::QuotaExceeded => "quota_exceeded",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Conflict => "conflict",
            ErrorKind::IdempotencyMismatch => "idempotency_mismatch",
            ErrorKind::IdempotencyInProgress => "idempotency_in_progress",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Timeout => "timeout",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Internal => "internal",
            ErrorKind::StoreFailed => "store_failed",
            ErrorKind::CursorExpired => "cursor_expired",
            ErrorKind::ManagedExternally => "managed_externally",
            ErrorKind::PlanTooSmall => "plan_too_small",
            ErrorKind::PreconditionFailed => "precondition_failed",
        }
    }

    /// The HTTP status an adapter answers with for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidName | ErrorKind::InvalidSpec | ErrorKind::IdempotencyMismatch => 422,
            ErrorKind::StoreExists
            | ErrorKind::Conflict
            | ErrorKind::IdempotencyInProgress
            | ErrorKind::StoreFailed
            | ErrorKind::ManagedExternally
            | ErrorKind::PlanTooSmall => 409,
            ErrorKind::CursorExpired => 410,
            ErrorKind::PreconditionFailed => 412,
            ErrorKind::NotFound => 404,
            ErrorKind::QuotaExceeded | ErrorKind::RateLimited => 429,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::Timeout => 504,
            ErrorKind::Unavailable => 503,
            ErrorKind::Unsupported => 501,
            ErrorKind::InvalidConfig | ErrorKind::Internal => 500,
        }
    }

    /// Whether an operation failing with this kind may succeed later, unchanged.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::IdempotencyInProgress
                | ErrorKind::Timeout
                | ErrorKind::Unavailable
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
