//! The one mapping from urumi-core errors to JavaScript errors.
//!
//! ```text
//!  urumi_core::Error ──kind().as_str()──▶ napi::Error { reason: "[not_found] store \"x\" not found" }
//!                                              └─ index.js parses the code back into err.code
//! ```
//!
//! napi 3 cannot give a Promise rejection a custom `code` (async fns only take
//! `Error<Status>`, napi-rs/napi-rs#1632), so the code travels at the front of the
//! message and the JS shim moves it to `.code` on a `UrumiError`. The message is the
//! core error's `Display`, which never carries a secret.

use urumi_core::{Error, ErrorKind};

/// A core error as the error a Promise rejects with: `"[<code>] <message>"`.
pub fn to_js(e: Error) -> napi::Error {
    napi::Error::from_reason(format!("[{}] {}", e.kind().as_str(), e))
}

/// Results of urumi-core calls, mapped with [`to_js`].
pub trait IntoJs<T> {
    /// The value, or the error mapped with [`to_js`].
    fn js(self) -> napi::Result<T>;
}

impl<T> IntoJs<T> for urumi_core::Result<T> {
    fn js(self) -> napi::Result<T> {
        self.map_err(to_js)
    }
}

/// An argument that could not be converted, as a core `invalid_spec` naming `field`.
pub fn invalid(field: &'static str, message: impl Into<String>) -> napi::Error {
    to_js(Error::InvalidSpec {
        field,
        message: message.into(),
    })
}

/// A core value as a plain JS-ready JSON value (camelCase, as in the HTTP API).
pub fn to_json<T: serde::Serialize>(value: &T) -> napi::Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| to_js(Error::internal(format!("serialize: {e}"))))
}

/// The code of a kind, re-exported for tests of the mapping.
pub fn code(kind: ErrorKind) -> &'static str {
    kind.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_starts_with_the_code() {
        let e = to_js(Error::store_not_found("shop1"));
        assert_eq!(e.reason, "[not_found] store \"shop1\" not found");
    }

    #[test]
    fn every_kind_has_a_distinct_snake_case_code() {
        let codes: std::collections::BTreeSet<_> = ErrorKind::ALL.into_iter().map(code).collect();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        assert!(
            codes
                .iter()
                .all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
        );
    }
}
