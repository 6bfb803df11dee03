//! Capped exponential backoff with full jitter, for transient step failures.
//!
//! ```text
//!  attempt 1 ─fail─▶ sleep U(0, base) ─▶ attempt 2 ─fail─▶ sleep U(0, 2·base) ─▶ … ≤ cap
//!  after max_attempts transient failures the step fails for good — except while the
//!  cluster is `unavailable` (API server down, connection refused): that is retried until
//!  `unavailableBudget` has passed since the step's first failure (default 5 min, enough
//!  for a managed control plane's restart), then the step fails with a reason that
//!  `retry` clears.
//! ```

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// How often and how patiently a transient failure is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts of one step before it fails for good (at least 1).
    #[serde(alias = "max_attempts")]
    pub max_attempts: u32,
    /// The first delay's upper bound.
    #[serde(with = "millis")]
    pub base: Duration,
    /// No delay is longer than this.
    #[serde(with = "millis")]
    pub cap: Duration,
    /// How long (milliseconds) an `unavailable` failure — the cluster out of reach — is
    /// retried past `max_attempts`, counted from the step's first failure. Zero: only
    /// `max_attempts` counts.
    #[serde(with = "millis", alias = "unavailable_budget")]
    pub unavailable_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            unavailable_budget: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// Whether a step that failed `tries` times, last with `kind`, `since` its first
    /// failure, is tried again.
    pub fn retries(&self, kind: crate::error::ErrorKind, tries: u32, since: Duration) -> bool {
        kind.is_retryable()
            && (tries < self.max_attempts
                || (kind == crate::error::ErrorKind::Unavailable
                    && since < self.unavailable_budget))
    }

    /// The upper bound of the delay after the `attempt`-th failure (1-based):
    /// `min(cap, base · 2^(attempt-1))`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A jittered delay in `[ceiling/2, ceiling]` after the `attempt`-th failure, so that
    /// many stores failing together do not retry in lockstep.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        let spread = (ceiling - half).as_millis() as u64;
        half + Duration::from_millis(rand::rng().random_range(0..=spread))
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let p = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
            unavailable_budget: Duration::ZERO,
        };
        let ceilings: Vec<u128> = (1..=6).map(|a| p.ceiling(a).as_millis()).collect();
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.ceiling(u32::MAX), Duration::from_millis(1000));
    }

    #[test]
    fn an_unavailable_cluster_is_waited_for_within_the_budget_only() {
        use crate::error::ErrorKind::{Internal, Timeout, Unavailable};
        let p = RetryPolicy::default();
        let min = Duration::from_secs(60);
        assert!(p.retries(Timeout, 7, min));
        assert!(
            !p.retries(Timeout, 8, min),
            "other kinds stop at max_attempts"
        );
        assert!(
            p.retries(Unavailable, 8, min),
            "a 60 s outage is waited out"
        );
        assert!(p.retries(Unavailable, 40, Duration::from_secs(299)));
        assert!(!p.retries(Unavailable, 40, Duration::from_secs(300)));
        assert!(
            !p.retries(Internal, 1, Duration::ZERO),
            "permanent errors never"
        );
        let no_budget = RetryPolicy {
            unavailable_budget: Duration::ZERO,
            ..p
        };
        assert!(!no_budget.retries(Unavailable, 8, Duration::ZERO));
    }

    #[test]
    fn delay_stays_between_half_and_full_ceiling() {
        let p = RetryPolicy::default();
        for attempt in 1..=12 {
            let c = p.ceiling(attempt);
            for _ in 0..50 {
                let d = p.delay(attempt);
                assert!(
                    d >= c / 2 && d <= c,
                    "attempt {attempt}: {d:?} outside [{:?}, {c:?}]",
                    c / 2
                );
            }
        }
    }
}
