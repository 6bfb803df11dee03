//! What a tenant may read about a failure: the step, a short class of cause and what to
//! do — never an internal URL, a host, a file path or raw tool output.
//!
//! ```text
//!  Error ──tenant_message()──▶ "release rejected by the cluster: the chart asks for more
//!                               than the plan's quota — choose a larger plan, then retry"
//!        └─(full Display)──▶ tracing, once, with the store's name (for operators)
//! ```
//!
//! Messages built from structured fields (names, limits, plans) are safe as they are;
//! anything that may carry text from outside (the API server, helm, a database driver)
//! is reduced to its class. [`scrub`] is a last line of defence for any text that still
//! reaches a tenant.

use super::{Error, ErrorKind};

impl Error {
    /// A message for the store's owner: what kind of failure, and what to do. Safe for
    /// `Store.message`, audit `detail` and API responses; the full cause (this error's
    /// `Display`) belongs in the operator's log.
    pub fn tenant_message(&self) -> String {
        let text = match self {
            Error::InvalidName { .. }
            | Error::InvalidSpec { .. }
            | Error::StoreExists { .. }
            | Error::NotFound { .. }
            | Error::QuotaExceeded { .. }
            | Error::RateLimited { .. }
            | Error::Conflict { .. }
            | Error::IdempotencyMismatch
            | Error::IdempotencyInProgress
            | Error::Unauthorized { .. }
            | Error::Forbidden { .. }
            | Error::CursorExpired { .. }
            | Error::ManagedExternally { .. }
            | Error::PlanTooSmall { .. }
            | Error::VersionMismatch { .. }
            | Error::Replayed { .. }
            | Error::StoreFailed(_) => self.to_string(),
            // Urumi writes these (which wait, on which of the store's objects).
            Error::Timeout { .. } => format!(
                "{self} — retry the store; if it keeps timing out, contact the platform operator"
            ),
            Error::InvalidConfig { .. } => {
                "the platform is misconfigured — contact the platform operator".to_owned()
            }
            Error::Unsupported { .. } => "this operation is not supported here".to_owned(),
            Error::State {
                retryable: true, ..
            } => "the platform's state store is unavailable — try again shortly".to_owned(),
            Error::State { .. } => {
                "the platform's state store failed — contact the platform operator".to_owned()
            }
            Error::Kubernetes(e) => kube_class(e),
            Error::Helm(h) => helm_class(&h.message, h.retryable),
            Error::Unavailable { .. } => {
                "a service the platform depends on is unavailable — try again shortly".to_owned()
            }
            Error::Provisioning { message } => provisioning_class(message),
            Error::Internal { .. } => {
                "an internal error occurred — contact the platform operator".to_owned()
            }
        };
        scrub(&text)
    }
}

fn kube_class(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            let msg = status.message.to_ascii_lowercase();
            if msg.contains("exceeded quota") {
                "the cluster refused an object: the store's quota is used up — choose a larger plan, then retry".to_owned()
            } else {
                match status.code {
                    401 | 403 => "the cluster refused the request (permission denied) — contact the platform operator".to_owned(),
                    404 => "an object the store needs was not found in the cluster — retry the store".to_owned(),
                    409 => "a conflicting change happened in the cluster — retry the store".to_owned(),
                    400 | 422 => "the cluster rejected an object as invalid — contact the platform operator".to_owned(),
                    429 | 500..=599 => "the cluster's API is unavailable — retry the store shortly".to_owned(),
                    _ => "the cluster refused the request — contact the platform operator".to_owned(),
                }
            }
        }
        _ => "the cluster's API could not be reached — retry the store shortly".to_owned(),
    }
}

fn helm_class(message: &str, retryable: bool) -> String {
    let m = message.to_ascii_lowercase();
    let class = if m.contains("exceeded quota") || m.contains("must specify limits") {
        "release rejected by the cluster: the chart asks for more than the plan's quota — choose a larger plan, then retry"
    } else if m.contains("admission") || m.contains("denied the request") {
        "release rejected by an admission policy of the cluster — contact the platform operator"
    } else if m.contains("forbidden") {
        "release rejected by the cluster: permission denied — contact the platform operator"
    } else if m.contains("another operation") {
        "another release operation was in progress — retry the store"
    } else if m.contains("timed out") || m.contains("deadline") || m.contains("timeout") {
        "the release did not finish in time — retry the store"
    } else if m.contains("connection refused")
        || m.contains("unreachable")
        || m.contains("no such host")
        || m.contains("eof")
    {
        "the cluster's API could not be reached during the release — retry the store shortly"
    } else if m.contains("schema") || m.contains("specifications") {
        "release rejected by the chart: the store's settings do not fit it — contact the platform operator"
    } else if m.contains("is invalid") || m.contains("validation") || m.contains("quantit") {
        "release rejected by the cluster: an object of the chart is invalid — contact the platform operator"
    } else if retryable {
        "the release failed for a passing reason — retry the store"
    } else {
        "the release could not be installed — contact the platform operator"
    };
    class.to_owned()
}

/// Readiness failures name the store's own workloads (safe); anything after them that
/// comes from the platform (watch errors, logs) is dropped.
fn provisioning_class(message: &str) -> String {
    let first = message
        .split(" (the watch")
        .next()
        .unwrap_or(message)
        .lines()
        .next()
        .unwrap_or_default();
    let first: String = first.chars().take(240).collect();
    let lower = first.to_ascii_lowercase();
    let hint = if lower.contains("job") {
        "the store's setup did not complete — retry the store; if it fails again, contact the platform operator"
    } else {
        "retry the store; if it fails again, contact the platform operator"
    };
    if first.is_empty() {
        hint.to_owned()
    } else {
        format!("{first} — {hint}")
    }
}

/// Replaces anything that looks like a URL, an absolute file path or a network address
/// in `text` by a placeholder: the last defence for text a tenant reads.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, token) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let core = token.trim_matches(|c: char| "\"'()[]{},;<>`".contains(c));
        let replacement = if core.contains("://") {
            Some("<url>")
        } else if core.starts_with('/') && core[1..].contains('/') {
            Some("<path>")
        } else if looks_like_address(core) {
            Some("<address>")
        } else {
            None
        };
        match replacement {
            Some(r) => out.push_str(&token.replace(core, r)),
            None => out.push_str(token),
        }
    }
    out
}

/// `10.0.0.1`, `10.0.0.1:5432`, `[::1]:6443`, `db.internal:5432`.
fn looks_like_address(s: &str) -> bool {
    let host = match s.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => {
            h.trim_matches(|c| c == '[' || c == ']')
        }
        _ => s,
    };
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    // host:port with a dotted host name
    s.contains(':')
        && host.contains('.')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// The kind's code, parsed back (for replayed idempotent outcomes).
impl ErrorKind {
    /// The kind whose [`as_str`](ErrorKind::as_str) is `code`.
    pub fn from_code(code: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::HelmFailure;

    #[test]
    fn helm_stderr_never_reaches_the_tenant() {
        let e = Error::Helm(HelmFailure {
            operation: "upgrade".into(),
            message: "Error: INSTALLATION FAILED: pods \"x\" is forbidden: exceeded quota: store-quota, requested: cpu=4 (https://10.0.0.1:6443/api/v1/namespaces)".into(),
            retryable: false,
        });
        let m = e.tenant_message();
        assert!(m.contains("quota"), "{m}");
        assert!(!m.contains("https://"), "{m}");
        assert!(!m.contains("10.0.0.1"), "{m}");
        assert!(!m.contains("INSTALLATION FAILED"), "{m}");
    }

    #[test]
    fn state_errors_hide_the_host_and_path() {
        let e = Error::State {
            backend: "postgres",
            message: "cannot reach postgres://urumi:***@db.internal:5432/urumi: refused".into(),
            retryable: true,
            source: None,
        };
        let m = e.tenant_message();
        assert!(!m.contains("db.internal"), "{m}");
        let e = Error::State {
            backend: "sqlite",
            message: "/var/lib/urumi/urumi.db: unable to open".into(),
            retryable: false,
            source: None,
        };
        assert!(!e.tenant_message().contains("/var/lib"));
    }

    #[test]
    fn scrub_replaces_urls_paths_and_addresses() {
        let s = scrub(
            "GET https://127.0.0.1:6443/api failed, see /tmp/x/values.yaml on db.internal:5432 (10.1.2.3)",
        );
        assert_eq!(s, "GET <url> failed, see <path> on <address> (<address>)");
        assert_eq!(scrub("plan small: cpu 500m"), "plan small: cpu 500m");
    }

    #[test]
    fn readiness_keeps_the_workload_and_drops_watch_errors() {
        let e = Error::Provisioning {
            message: "not ready after 600 s: deployment wordpress (the watch of Jobs fails: forbidden https://x)".into(),
        };
        let m = e.tenant_message();
        assert!(
            m.starts_with("not ready after 600 s: deployment wordpress"),
            "{m}"
        );
        assert!(!m.contains("watch"), "{m}");
    }

    #[test]
    fn every_code_parses_back() {
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_code(k.as_str()), Some(k));
        }
        assert_eq!(ErrorKind::from_code("nope"), None);
    }
}
