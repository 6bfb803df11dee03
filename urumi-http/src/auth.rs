//! API keys: `Authorization: Bearer <key>` → a [`Caller`] in the request's extensions.
//!
//! ```text
//!  [[api_keys]] key | key_sha256, tenant, role, name? ──KeyRing::new──▶ [(sha256, Caller template)]
//!  request ──Bearer token──sha256──▶ compared with EVERY entry in constant time
//!        ├─ match    ─▶ Caller { actor: name | "key-<8 hex of its hash>", tenant, role, source_ip }
//!        └─ no match ─▶ 401 problem (the token is never logged or echoed)
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use urumi_core::store::TenantId;
use urumi_core::{Caller, Role};

use crate::error::AppError;

/// One API key as written in the server's TOML (`[[api_keys]]`).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// A name for audit events (`actor`); a short hash of the key when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// The key itself (for local use); prefer `key_sha256`.
    #[serde(default)]
    pub key: Option<String>,
    /// The hex SHA-256 of the key.
    #[serde(default)]
    pub key_sha256: Option<String>,
    /// The tenant the key acts for (new stores belong to it).
    pub tenant: String,
    /// `tenant` (its own stores) or `admin` (every tenant's).
    pub role: Role,
}

impl std::fmt::Debug for ApiKeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyConfig")
            .field("name", &self.name)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("tenant", &self.tenant)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The hex SHA-256 of `key`, as `key_sha256` expects it.
pub fn sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

struct Entry {
    hash: [u8; 32],
    caller: Caller,
}

/// The configured keys, ready to check tokens against.
#[derive(Clone, Default)]
pub struct KeyRing {
    entries: Arc<Vec<Entry>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyRing({} keys)", self.entries.len())
    }
}

impl KeyRing {
    /// Checks and loads the keys. Errors name the key by position, never by value.
    pub fn new(keys: &[ApiKeyConfig]) -> Result<Self, String> {
        let mut entries = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            let at = format!("api_keys[{i}]");
            let hash: [u8; 32] = match (&k.key, &k.key_sha256) {
                (Some(key), None) if key.len() >= 8 => Sha256::digest(key.as_bytes()).into(),
                (Some(_), None) => return Err(format!("{at}: key must be at least 8 characters")),
                (None, Some(h)) => hex::decode(h.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| format!("{at}: key_sha256 must be 64 hex digits"))?,
                _ => return Err(format!("{at}: give exactly one of key or key_sha256")),
            };
            let tenant = TenantId::new(&k.tenant).map_err(|e| format!("{at}: tenant: {e}"))?;
            let actor = match &k.name {
                Some(n) if !n.trim().is_empty() => n.clone(),
                _ => format!("key-{}", &hex::encode(hash)[..8]),
            };
            let caller = match k.role {
                Role::Admin => Caller::admin(actor, tenant),
                Role::Tenant => Caller::tenant(actor, tenant),
            };
            entries.push(Entry { hash, caller });
        }
        Ok(KeyRing {
            entries: Arc::new(entries),
        })
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The caller a token stands for. Compares against every key in constant time.
    pub fn lookup(&self, token: &str) -> Option<Caller> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for e in self.entries.iter() {
            if bool::from(e.hash.ct_eq(&presented)) && found.is_none() {
                found = Some(e.caller.clone());
            }
        }
        found
    }
}

/// Middleware (as a `route_layer`): authenticates the request and stores its [`Caller`].
pub async fn authenticate(State(keys): State<KeyRing>, mut req: Request, next: Next) -> Response {
    if req
        .headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        return AppError::unauthorized("send one Authorization header, not several")
            .into_response();
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return AppError::unauthorized("send an API key as `Authorization: Bearer <key>`")
            .into_response();
    };
    let Some(mut caller) = keys.lookup(token) else {
        return AppError::unauthorized("the API key is not valid").into_response();
    };
    if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        caller = caller.with_source_ip(addr.ip());
    }
    req.extensions_mut().insert(AuthedCaller(caller));
    next.run(req).await
}

/// The authenticated caller; an extractor for handlers behind [`authenticate`].
#[derive(Debug, Clone)]
pub struct AuthedCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for AuthedCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AuthedCaller>()
            .cloned()
            .ok_or_else(|| AppError::unauthorized("authentication is required"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(key: Option<&str>, sha: Option<String>, role: Role) -> ApiKeyConfig {
        ApiKeyConfig {
            name: None,
            key: key.map(str::to_owned),
            key_sha256: sha,
            tenant: "acme".to_owned(),
            role,
        }
    }

    #[test]
    fn keys_and_their_hashes_both_authenticate_and_the_actor_is_never_the_key() {
        let ring = KeyRing::new(&[
            key(Some("plain-key-1"), None, Role::Tenant),
            key(None, Some(sha256_hex("hashed-key-2")), Role::Admin),
        ])
        .expect("valid keys");
        let a = ring.lookup("plain-key-1").expect("plain key");
        assert_eq!(a.role, Role::Tenant);
        assert!(!a.actor.contains("plain-key-1"));
        let b = ring.lookup("hashed-key-2").expect("hashed key");
        assert_eq!(b.role, Role::Admin);
        assert!(ring.lookup("plain-key-2").is_none());
        assert!(ring.lookup("").is_none());
    }

    #[test]
    fn a_bad_key_entry_is_refused_without_echoing_it() {
        let err = KeyRing::new(&[key(Some("short"), None, Role::Tenant)]).expect_err("too short");
        assert!(!err.contains("short\""), "{err}");
        assert!(KeyRing::new(&[key(None, Some("zz".into()), Role::Tenant)]).is_err());
        assert!(KeyRing::new(&[key(None, None, Role::Tenant)]).is_err());
    }
}
