//! A store's credentials: generated once from the OS random number generator, kept in
//! one Secret in the store's namespace, never logged.
//!
//! ```text
//!  engine ──CredentialsLayout {secret_name, generated keys, fixed entries}──┐
//!                                                                          ▼
//!  Guardrails::ensure_credentials ──GET──▶ absent?  ──generate (OsRng)──▶ create ─▶ Created
//!                                           │ present, every key there ─────────▶ Existing
//!                                           └ present, keys missing ──merge-patch only the
//!                                                missing keys (resourceVersion precondition) ─▶ Completed
//!  Guardrails::read_admin_credentials ──GET──▶ AdminCredentials { user, password: SecretString }
//! ```
//!
//! Passwords are never applied with server-side apply: applying fresh random values
//! on a retry would rotate them under a running database. A value already in the
//! Secret is never replaced.
//!
//! [`SecretString`] is the only type holding a password. Its `Debug` prints
//! `<redacted>` and it has no `Display`, so a password cannot end up in a log line or
//! an error by accident; [`SecretString::expose`] is the one explicit way out.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use rand::TryRngCore;
use rand::rngs::OsRng;

use super::StoreContext;
use crate::error::{Error, Result};

/// Length of every generated password.
pub const PASSWORD_LEN: usize = 32;

const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A secret string (password, webhook secret). `Debug` is redacted; there is no
/// `Display`; [`expose`](Self::expose) hands the value out.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(zeroize::Zeroizing<String>);

impl SecretString {
    /// Wraps a secret value; its memory is zeroed when the last copy is dropped.
    pub fn new(value: impl Into<String>) -> Self {
        SecretString(zeroize::Zeroizing::new(value.into()))
    }

    /// The secret value. Call it only where the value must leave the process (a
    /// response to an authorised credentials read, an HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// A fresh password of [`PASSWORD_LEN`] ASCII letters and digits from the operating
/// system's random number generator (unbiased: bytes ≥ 248 are drawn again).
///
/// Errors: `Unavailable` if the OS generator fails (retry later).
pub fn generate_password() -> Result<SecretString> {
    let mut out = String::with_capacity(PASSWORD_LEN);
    let mut buf = [0u8; 64];
    while out.len() < PASSWORD_LEN {
        OsRng
            .try_fill_bytes(&mut buf)
            .map_err(|e| Error::Unavailable {
                message: format!("the operating system's random number generator failed: {e}"),
            })?;
        for b in buf {
            // 248 = 4 × 62: keeping only bytes below it makes every character equally likely.
            if b < 248 && out.len() < PASSWORD_LEN {
                out.push(char::from(ALPHANUMERIC[usize::from(b % 62)]));
            }
        }
    }
    Ok(SecretString::new(out))
}

/// How an engine wants its credentials Secret laid out. Pure data; the engine builds
/// it, the guardrails create and read the Secret from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsLayout {
    /// The Secret's name (the chart's `existingSecret`).
    pub secret_name: String,
    /// Keys whose values are generated passwords (e.g. `db-password`).
    pub generated_keys: Vec<String>,
    /// Keys with fixed, non-secret values (e.g. `admin-user` → `admin`).
    pub fixed: BTreeMap<String, String>,
    /// The key holding the administrator's user name.
    pub admin_user_key: String,
    /// The key holding the administrator's password.
    pub admin_password_key: String,
    /// The key holding the secret that signs the store's webhooks, if it has one.
    pub webhook_secret_key: Option<String>,
}

impl CredentialsLayout {
    /// Every key the Secret must have.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.generated_keys
            .iter()
            .map(String::as_str)
            .chain(self.fixed.keys().map(String::as_str))
    }

    /// Values for `missing` keys: fresh passwords for generated keys, the fixed
    /// values for the others.
    ///
    /// Errors: `Unavailable` if the OS random number generator fails.
    pub fn generate<'a>(&self, missing: impl IntoIterator<Item = &'a str>) -> Result<Credentials> {
        let mut entries = BTreeMap::new();
        for key in missing {
            let value = match self.fixed.get(key) {
                Some(v) => SecretString::new(v.clone()),
                None => generate_password()?,
            };
            entries.insert(key.to_owned(), value);
        }
        Ok(Credentials { entries })
    }
}

/// The entries of a credentials Secret. `Debug` shows the keys only.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    entries: BTreeMap<String, SecretString>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("keys", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Credentials {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&SecretString> {
        self.entries.get(key)
    }

    /// The keys present, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Reads the entries of a Secret as the API returned it (`data`, base64-decoded
    /// by the client). Values that are not UTF-8 are skipped.
    pub fn from_secret(secret: &Secret) -> Self {
        let entries = secret
            .data
            .iter()
            .flatten()
            .filter_map(|(k, v)| {
                String::from_utf8(v.0.clone())
                    .ok()
                    .map(|s| (k.clone(), SecretString::new(s)))
            })
            .collect();
        Credentials { entries }
    }

    /// The administrator's credentials under `layout`.
    ///
    /// Errors: `Internal` naming the missing key (never a value).
    pub fn admin(&self, layout: &CredentialsLayout) -> Result<AdminCredentials> {
        let need = |key: &str| {
            self.get(key).cloned().ok_or_else(|| {
                Error::internal(format!(
                    "Secret {:?} has no key {key:?}",
                    layout.secret_name
                ))
            })
        };
        Ok(AdminCredentials {
            user: need(&layout.admin_user_key)?.expose().to_owned(),
            password: need(&layout.admin_password_key)?,
        })
    }

    /// The secret that signs the store's webhooks, if the layout has one and the
    /// Secret holds it (the key to check `X-WC-Webhook-Signature` with).
    pub fn webhook_secret(&self, layout: &CredentialsLayout) -> Option<&SecretString> {
        layout
            .webhook_secret_key
            .as_deref()
            .and_then(|k| self.get(k))
    }

    pub(crate) fn data(&self) -> BTreeMap<String, ByteString> {
        self.entries
            .iter()
            .map(|(k, v)| (k.clone(), ByteString(v.expose().as_bytes().to_vec())))
            .collect()
    }
}

/// A store administrator's login. `Debug` redacts the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCredentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: SecretString,
}

/// The credentials Secret of a store: type `Opaque`, the store's labels, `values` as
/// its data. Never print it with `Debug`: its data is the passwords.
pub fn credentials_secret(
    ctx: &StoreContext,
    layout: &CredentialsLayout,
    values: &Credentials,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(layout.secret_name.clone()),
            namespace: Some(ctx.namespace.clone()),
            labels: Some(ctx.labels()),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(values.data()),
        ..Secret::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardrails::fixtures::mk_ctx;
    use crate::store::Plan;

    fn mk_layout() -> CredentialsLayout {
        CredentialsLayout {
            secret_name: "shop1-credentials".to_owned(),
            generated_keys: vec!["db-password".to_owned(), "admin-password".to_owned()],
            fixed: BTreeMap::from([("admin-user".to_owned(), "admin".to_owned())]),
            admin_user_key: "admin-user".to_owned(),
            admin_password_key: "admin-password".to_owned(),
            webhook_secret_key: None,
        }
    }

    #[test]
    fn passwords_are_long_alphanumeric_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let p = generate_password().expect("os rng");
            assert_eq!(p.expose().len(), PASSWORD_LEN);
            assert!(p.expose().bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(seen.insert(p.expose().to_owned()), "a password repeated");
        }
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let layout = mk_layout();
        let creds = layout.generate(layout.keys()).expect("os rng");
        let pw = creds
            .get("db-password")
            .expect("generated")
            .expose()
            .to_owned();
        let admin = creds.admin(&layout).expect("admin");
        for printed in [
            format!("{creds:?}"),
            format!("{admin:?}"),
            format!("{:?}", admin.password),
            format!("{:#?}", creds),
        ] {
            assert!(!printed.contains(&pw), "{printed}");
            assert!(!printed.contains(admin.password.expose()), "{printed}");
        }
        assert_eq!(admin.user, "admin");
    }

    #[test]
    fn generate_fills_exactly_the_missing_keys() {
        let layout = mk_layout();
        let creds = layout.generate(["admin-password"]).expect("os rng");
        assert_eq!(creds.keys().collect::<Vec<_>>(), vec!["admin-password"]);
        let all = layout.generate(layout.keys()).expect("os rng");
        assert_eq!(
            all.keys().collect::<Vec<_>>(),
            vec!["admin-password", "admin-user", "db-password"]
        );
        assert_eq!(
            all.get("admin-user").map(SecretString::expose),
            Some("admin")
        );
    }

    #[test]
    fn secret_round_trips_and_missing_keys_are_named() {
        let layout = mk_layout();
        let ctx = mk_ctx("shop1", Plan::Small);
        let creds = layout.generate(layout.keys()).expect("os rng");
        let secret = credentials_secret(&ctx, &layout, &creds);
        assert_eq!(secret.metadata.namespace.as_deref(), Some("store-shop1"));
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
        assert_eq!(Credentials::from_secret(&secret), creds);

        assert!(
            creds.webhook_secret(&layout).is_none(),
            "layout has no webhook key"
        );
        let with_hook = CredentialsLayout {
            generated_keys: vec!["webhook-secret".to_owned()],
            webhook_secret_key: Some("webhook-secret".to_owned()),
            ..mk_layout()
        };
        let hooked = with_hook.generate(with_hook.keys()).expect("os rng");
        assert_eq!(
            hooked.webhook_secret(&with_hook).map(|s| s.expose().len()),
            Some(PASSWORD_LEN)
        );

        let partial = layout.generate(["admin-user"]).expect("os rng");
        let err = partial.admin(&layout).expect_err("no password");
        assert!(err.to_string().contains("admin-password"), "{err}");
    }
}
