//! [`Scrubber`]: removes secret strings from text that leaves the helm module.

use std::fmt;

/// What replaces a secret in scrubbed text.
pub const REDACTED: &str = "[REDACTED]";

/// Parts of a values key that mark its value as secret (matched case-insensitively
/// anywhere in the key, so `dbPassword`, `apiKey` and `existingSecret` all count).
const SECRET_KEY_PARTS: [&str; 6] = ["password", "passwd", "secret", "token", "key", "credential"];

/// Values shorter than this under a secret-looking key are not scrubbed: they are
/// identifiers (`key: "db"`), and replacing every `db` in a message would bury helm's
/// reason. Secrets given explicitly are scrubbed whatever their length.
const MIN_KEYED_SECRET_LEN: usize = 4;

/// Removes secret strings from text: every string value (at any depth) under a
/// secret-looking key of a values object, plus the strings given explicitly.
///
/// ```
/// use urumi_core::helm::Scrubber;
/// let values = serde_json::json!({"db": {"rootPassword": "hunter2-long"}, "replicas": 1});
/// let s = Scrubber::from_values(&values, ["api-token-123"]);
/// assert_eq!(
///     s.scrub("login hunter2-long failed, token api-token-123"),
///     "login [REDACTED] failed, token [REDACTED]"
/// );
/// ```
#[derive(Clone, Default)]
pub struct Scrubber {
    /// Longest first, so a secret containing another is replaced whole.
    secrets: Vec<String>,
}

impl Scrubber {
    /// A scrubber for `values` (a Helm values object) and the `extra` strings.
    pub fn from_values<I, S>(values: &serde_json::Value, extra: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut secrets = Vec::new();
        collect(values, false, &mut secrets);
        secrets.retain(|s| s.chars().count() >= MIN_KEYED_SECRET_LEN);
        secrets.extend(
            extra
                .into_iter()
                .map(|s| s.as_ref().to_owned())
                .filter(|s| !s.is_empty()),
        );
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Self { secrets }
    }

    /// `text` with every secret replaced by `[REDACTED]`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }

    /// How many distinct secret strings this scrubber removes.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Whether it removes nothing.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scrubber({} secrets)", self.secrets.len())
    }
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

fn collect(value: &serde_json::Value, secret: bool, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) if secret && !s.is_empty() => out.push(s.clone()),
        serde_json::Value::Array(items) => {
            for item in items {
                collect(item, secret, out);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                collect(v, secret || is_secret_key(k), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scrubs_values_under_secret_keys_at_any_depth() {
        let values = json!({
            "wordpress": {"adminPassword": "wp-admin-pass", "title": "My Shop"},
            "mariadb": {"auth": {"rootPassword": "root-pass-1", "database": "shop"}},
            "apiKey": "ak-123456",
            "tokens": ["tok-aaaa", "tok-bbbb"],
            "Secret": {"nested": {"deep": "deep-value"}},
            "replicas": 1,
        });
        let s = Scrubber::from_values(&values, Vec::<String>::new());
        let text = "wp-admin-pass root-pass-1 ak-123456 tok-aaaa tok-bbbb deep-value My Shop shop";
        assert_eq!(
            s.scrub(text),
            "[REDACTED] [REDACTED] [REDACTED] [REDACTED] [REDACTED] [REDACTED] My Shop shop"
        );
        assert_eq!(s.len(), 6);
    }

    #[test]
    fn scrubs_explicit_secrets_of_any_length_but_not_short_keyed_values() {
        let values = json!({"existingSecretKey": "db", "password": ""});
        let s = Scrubber::from_values(&values, ["xyz", ""]);
        assert_eq!(s.scrub("db xyz"), "db [REDACTED]");
    }

    #[test]
    fn replaces_the_longer_of_overlapping_secrets_whole() {
        let s = Scrubber::from_values(&json!({}), ["abcd", "abcdefgh"]);
        assert_eq!(s.scrub("x abcdefgh y abcd"), "x [REDACTED] y [REDACTED]");
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let s = Scrubber::from_values(&json!({"password": "p4ssw0rd!"}), ["other-secret"]);
        let shown = format!("{s:?}");
        assert!(!shown.contains("p4ssw0rd"), "{shown}");
        assert!(!shown.contains("other-secret"), "{shown}");
    }
}
