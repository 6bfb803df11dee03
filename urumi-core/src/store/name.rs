//! Validated identifiers: [`StoreName`], [`TenantId`], [`EngineId`].
//!
//! ```text
//!  "Shop_1" ──StoreName::new──▶ Err(InvalidName { rule: InvalidCharacter('S') })
//!  "shop1"  ──StoreName::new──▶ Ok(StoreName)  ──▶ namespace "store-shop1", release, labels
//! ```
//!
//! A value of these types is valid by construction (deserialization validates too), so
//! code that receives one never re-checks it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Names a store may never take: they collide with routes, hostnames or system
/// namespaces. Names starting with `kube-` are refused as well.
pub const RESERVED_NAMES: &[&str] = &[
    "api",
    "admin",
    "dashboard",
    "www",
    "default",
    "mail",
    "smtp",
    "ftp",
    "static",
    "assets",
    "status",
    "health",
    "metrics",
    "login",
    "auth",
    "root",
    "system",
    "urumi",
    "localhost",
    "ingress-nginx",
    "cert-manager",
];

/// Reserved prefixes: any name starting with one of these is refused.
pub const RESERVED_PREFIXES: &[&str] = &["kube-"];

/// The shortest store name allowed.
pub const MIN_NAME_LEN: usize = 3;
/// The longest store name allowed (leaves room for `store-` and chart suffixes within
/// Kubernetes' 63-character label limit).
pub const MAX_NAME_LEN: usize = 40;

/// The naming rule a rejected store name broke.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameRule {
    /// Shorter than [`MIN_NAME_LEN`].
    TooShort,
    /// Longer than [`MAX_NAME_LEN`].
    TooLong,
    /// The first character is not a lowercase ASCII letter.
    MustStartWithLetter,
    /// The last character is not a lowercase ASCII letter or digit.
    MustEndWithLetterOrDigit,
    /// A character other than `a-z`, `0-9` or `-`.
    InvalidCharacter(char),
    /// A reserved name (or a reserved prefix such as `kube-`).
    Reserved,
}

impl fmt::Display for NameRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameRule::TooShort => write!(f, "must be at least {MIN_NAME_LEN} characters"),
            NameRule::TooLong => write!(f, "must be at most {MAX_NAME_LEN} characters"),
            NameRule::MustStartWithLetter => f.write_str("must start with a lowercase letter"),
            NameRule::MustEndWithLetterOrDigit => {
                f.write_str("must end with a lowercase letter or a digit")
            }
            NameRule::InvalidCharacter(c) => write!(
                f,
                "may contain only lowercase letters, digits and '-' (found {c:?})"
            ),
            NameRule::Reserved => f.write_str("is reserved"),
        }
    }
}

/// A store's name: a DNS-1123 label of 3–40 characters matching
/// `^[a-z][a-z0-9-]*[a-z0-9]$`, not reserved. Unique across the platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StoreName(String);

impl StoreName {
    /// Validates `name`; the error names the first rule it breaks.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        match check_name(&name) {
            Ok(()) => Ok(StoreName(name)),
            Err(rule) => Err(Error::InvalidName {
                name: name.chars().take(64).collect(),
                rule,
            }),
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_name(name: &str) -> std::result::Result<(), NameRule> {
    let len = name.chars().count();
    if len < MIN_NAME_LEN {
        return Err(NameRule::TooShort);
    }
    if len > MAX_NAME_LEN {
        return Err(NameRule::TooLong);
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(NameRule::InvalidCharacter(c));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(NameRule::MustStartWithLetter);
    }
    if name.ends_with('-') {
        return Err(NameRule::MustEndWithLetterOrDigit);
    }
    if RESERVED_NAMES.contains(&name) || RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Err(NameRule::Reserved);
    }
    Ok(())
}

/// A tenant id: 1–63 characters of `a-z`, `0-9` and `-`, starting and ending with a
/// letter or digit (a DNS label, so it can be a Kubernetes label value).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    /// Validates a tenant id.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        let ok = (1..=63).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !id.starts_with('-')
            && !id.ends_with('-');
        if ok {
            Ok(TenantId(id))
        } else {
            Err(Error::InvalidSpec {
                field: "tenant",
                message: format!(
                    "{:?} must be 1-63 lowercase letters, digits or '-', not starting or ending with '-'",
                    id.chars().take(64).collect::<String>()
                ),
            })
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An engine id such as `woocommerce`: 1–32 characters, a lowercase letter followed by
/// lowercase letters, digits, `-` or `_`. Which engines exist is the provisioner's
/// business; this type only guarantees the id is well-formed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EngineId(String);

impl EngineId {
    /// The default engine, `woocommerce`.
    pub const DEFAULT: &'static str = "woocommerce";

    /// Validates an engine id.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        let ok = (1..=32).contains(&id.len())
            && id.starts_with(|c: char| c.is_ascii_lowercase())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(EngineId(id))
        } else {
            Err(Error::InvalidSpec {
                field: "engine",
                message: format!(
                    "{:?} must be 1-32 characters: a lowercase letter, then lowercase letters, digits, '-' or '_'",
                    id.chars().take(64).collect::<String>()
                ),
            })
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for EngineId {
    fn default() -> Self {
        EngineId(Self::DEFAULT.to_owned())
    }
}

macro_rules! string_newtype {
    ($t:ident) => {
        impl TryFrom<String> for $t {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                $t::new(s)
            }
        }
        impl TryFrom<&str> for $t {
            type Error = Error;
            fn try_from(s: &str) -> Result<Self> {
                $t::new(s)
            }
        }
        impl std::str::FromStr for $t {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                $t::new(s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

string_newtype!(StoreName);
string_newtype!(TenantId);
string_newtype!(EngineId);
