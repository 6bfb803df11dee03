//! Store limits: a per-tenant cap, a per-tenant creation rate, a global cap.
//!
//! ```text
//!  StateStore::insert ──(inside its one write transaction / lock)──┐
//!     count tenant stores, all stores, tenant creations in window  │
//!        └──▶ Usage ──Limits::check(usage, now)──▶ Ok ──▶ insert row + creation record
//!                                  └──▶ Err(QuotaExceeded{Tenant|Global}) / Err(RateLimited{retry_after})
//! ```
//!
//! The check is pure; each state backend gathers [`Usage`] and inserts under the same
//! lock, so concurrent creates cannot overshoot a limit. Creations are remembered
//! separately from store records, so deleting a store does not refund the hourly rate.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, QuotaScope, Result};

/// Configurable limits on store creation. `u32::MAX` means "no limit". Deserializes
/// from the server's TOML with camelCase keys (snake_case accepted); missing keys keep
/// their defaults; unknown keys are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// How many stores one tenant may have at once (default 10).
    #[serde(alias = "stores_per_tenant")]
    pub stores_per_tenant: u32,
    /// How many stores one tenant may create per rate window (default 5).
    #[serde(alias = "creations_per_hour")]
    pub creations_per_hour: u32,
    /// How many stores the platform may have at once (default 100).
    #[serde(alias = "stores_total")]
    pub stores_total: u32,
    /// The rate window in seconds (default 3600).
    #[serde(alias = "rate_window_secs")]
    pub rate_window_secs: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            stores_per_tenant: 10,
            creations_per_hour: 5,
            stores_total: 100,
            rate_window_secs: 3600,
        }
    }
}

/// What a tenant and the platform use now, as counted by a state backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Stores the tenant has (any status, `Deleting` included).
    pub tenant_stores: u64,
    /// Stores on the platform.
    pub total_stores: u64,
    /// Creations by the tenant since [`Limits::window_start`].
    pub tenant_recent_creations: u64,
    /// The oldest of those creations, if any (it decides `Retry-After`).
    pub oldest_recent_creation: Option<DateTime<Utc>>,
}

impl Limits {
    /// No limits at all (for tests and single-user embedding).
    pub fn unlimited() -> Self {
        Limits {
            stores_per_tenant: u32::MAX,
            creations_per_hour: u32::MAX,
            stores_total: u32::MAX,
            rate_window_secs: 3600,
        }
    }

    /// The rate window.
    pub fn window(&self) -> ChronoDuration {
        ChronoDuration::seconds(i64::from(self.rate_window_secs))
    }

    /// The start of the rate window ending at `now`: creations at or after it count.
    pub fn window_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.window()
    }

    /// Whether one more store may be created given `usage`.
    ///
    /// Checked in this order: tenant cap, global cap, hourly rate.
    /// Errors: `quota_exceeded` (tenant or global cap), `rate_limited` (carries the
    /// seconds until the oldest creation in the window leaves it, at least 1).
    pub fn check(&self, usage: &Usage, now: DateTime<Utc>) -> Result<()> {
        if usage.tenant_stores >= u64::from(self.stores_per_tenant) {
            return Err(Error::QuotaExceeded {
                scope: QuotaScope::Tenant,
                limit: self.stores_per_tenant,
            });
        }
        if usage.total_stores >= u64::from(self.stores_total) {
            return Err(Error::QuotaExceeded {
                scope: QuotaScope::Global,
                limit: self.stores_total,
            });
        }
        if usage.tenant_recent_creations >= u64::from(self.creations_per_hour) {
            let free_at = usage
                .oldest_recent_creation
                .map_or(now + self.window(), |t| t + self.window());
            let millis = (free_at - now).num_milliseconds().max(0);
            let secs = u64::try_from((millis + 999) / 1000).unwrap_or(1).max(1);
            return Err(Error::RateLimited {
                limit: self.creations_per_hour,
                retry_after_secs: secs,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn usage(tenant: u64, total: u64, recent: u64) -> Usage {
        Usage {
            tenant_stores: tenant,
            total_stores: total,
            tenant_recent_creations: recent,
            oldest_recent_creation: None,
        }
    }

    #[test]
    fn each_limit_refuses_at_its_value_and_not_below() {
        let l = Limits::default();
        let now = Utc::now();
        let kind = |u: Usage| l.check(&u, now).err().map(|e| e.kind());
        assert_eq!(kind(usage(9, 99, 4)), None);
        assert_eq!(kind(usage(10, 10, 0)), Some(ErrorKind::QuotaExceeded));
        assert_eq!(kind(usage(0, 100, 0)), Some(ErrorKind::QuotaExceeded));
        assert_eq!(kind(usage(0, 0, 5)), Some(ErrorKind::RateLimited));
    }

    #[test]
    fn rate_limit_says_when_the_oldest_creation_leaves_the_window() {
        let l = Limits::default();
        let now = Utc::now();
        let u = Usage {
            oldest_recent_creation: Some(now - ChronoDuration::minutes(40)),
            ..usage(1, 1, 5)
        };
        let err = l.check(&u, now).err();
        let secs = err
            .as_ref()
            .and_then(|e| e.retry_after())
            .map(|d| d.as_secs());
        assert_eq!(secs, Some(20 * 60));
    }

    #[test]
    fn configuration_overrides_only_what_it_names() {
        let l: Limits = serde_json::from_str(r#"{"stores_per_tenant": 3}"#).expect("parse");
        assert_eq!(l.stores_per_tenant, 3);
        assert_eq!(l.creations_per_hour, Limits::default().creations_per_hour);
        assert_eq!(l.stores_total, 100);
    }

    #[test]
    fn tenant_cap_is_reported_before_the_rate() {
        let err = Limits::default().check(&usage(10, 10, 5), Utc::now()).err();
        assert!(matches!(
            err,
            Some(Error::QuotaExceeded {
                scope: QuotaScope::Tenant,
                limit: 10
            })
        ));
    }
}
