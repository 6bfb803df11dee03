//! Health after Ready: a `Ready` store whose workloads become unavailable turns
//! `Degraded` (naming the workload, since when, and its last Event's reason), and `Ready`
//! again when they recover. From the readiness watches' caches: no per-store polling.
//!
//! ```text
//!  ReadinessWatcher caches ──any watch event──▶ (coalesced) scan: store → unavailable workloads
//!     unavailable for ≥ degraded_after, record Ready and not suspended ─▶ Degraded, audit store.degraded
//!     record Degraded, nothing unavailable any more                   ─▶ Ready,    audit store.ready
//!  every minute: the Degraded records re-read (another replica's marks, a store deleted)
//! ```
//!
//! Writes are optimistic (the version read): a store a worker or a request changed
//! meanwhile is left alone and looked at again at the next event. Several replicas
//! running this converge on the same records.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::{Shared, StoreChange};
use crate::audit::Outcome;
use crate::error::ErrorKind;
use crate::state::ListQuery;
use crate::store::{Status, Store, StoreName};

/// Where the health of stores' workloads is read from (the readiness watches).
#[async_trait]
pub trait HealthSource: Send + Sync {
    /// Changes at every watch event.
    fn changed(&self) -> watch::Receiver<u64>;
    /// Returns once the source has seen the cluster's workloads (its first list): an
    /// empty cache must not look like every Degraded store recovered.
    async fn synced(&self);
    /// Every store with a workload that should run and is not available now: store name
    /// → one line per such workload (`StatefulSet shop1-mariadb: 0/1 replicas ready`).
    fn unavailable(&self) -> BTreeMap<String, Vec<Unavailable>>;
    /// The reason of the newest Event about `workload` or its pods in `namespace`
    /// (`BackOff`, `Unhealthy`, …), if any can be read.
    async fn last_event(&self, namespace: &str, workload: &str) -> Option<String>;
}

/// One workload of a store that is not available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// `StatefulSet` or `Deployment`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// What is missing, e.g. `0/1 replicas ready`.
    pub what: String,
}

/// How often the Degraded records are re-read besides the watch events.
const REREAD: Duration = Duration::from_secs(60);

/// How long a store found not Ready (still provisioning, being changed, suspended) is
/// not read again while its workloads stay unavailable: a rollout of many stores must
/// not turn every watch event into a read of each.
const NOT_READY_RECHECK: Duration = Duration::from_secs(2);

/// Runs until shutdown: marks stores Degraded and Ready again as their workloads go.
pub(crate) async fn health_loop(shared: Arc<Shared>, source: Arc<dyn HealthSource>) {
    let grace = shared.settings.degraded_after;
    let mut changed = source.changed();
    // Store → when this process first saw it unavailable.
    let mut first_seen: HashMap<String, (Instant, DateTime<Utc>)> = HashMap::new();
    let mut degraded: HashSet<String> = HashSet::new();
    // Store → until when it is not read again (it was not Ready when last read).
    let mut not_ready: HashMap<String, Instant> = HashMap::new();
    let mut reread_at = Instant::now();
    tokio::select! {
        _ = shared.shutdown.cancelled() => return,
        _ = source.synced() => {}
    }
    loop {
        if Instant::now() >= reread_at {
            degraded = degraded_records(&shared).await.unwrap_or(degraded);
            reread_at = Instant::now() + REREAD;
        }
        // Wake at the next event, when a pending store's grace ends, or for the re-read.
        // (A store waits for its grace to end, then — if it was not Ready — for its
        // re-check; one Degraded already needs no timer.)
        let next_due = first_seen
            .iter()
            .filter(|(name, _)| !degraded.contains(*name))
            .map(|(name, (seen, _))| {
                let due = *seen + grace;
                not_ready.get(name).map_or(due, |until| due.max(*until))
            })
            .min()
            .unwrap_or(reread_at)
            .min(reread_at);
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            r = changed.changed() => if r.is_err() { return },
            _ = tokio::time::sleep_until(next_due.into()) => {}
        }
        // Coalesce a burst of events (a rollout changes several objects at once).
        tokio::time::sleep(Duration::from_millis(200)).await;
        changed.borrow_and_update();
        let unavailable = source.unavailable();
        first_seen.retain(|name, _| unavailable.contains_key(name));
        let now = Instant::now();
        not_ready.retain(|_, until| *until > now);
        for (name, workloads) in &unavailable {
            let (seen, since) = *first_seen
                .entry(name.clone())
                .or_insert_with(|| (now, Utc::now()));
            if degraded.contains(name) || now < seen + grace || not_ready.contains_key(name) {
                continue;
            }
            if mark_degraded(&shared, &*source, name, workloads, since).await {
                degraded.insert(name.clone());
            } else {
                not_ready.insert(name.clone(), now + NOT_READY_RECHECK);
            }
        }
        let recovered: Vec<String> = degraded
            .iter()
            .filter(|name| !unavailable.contains_key(*name))
            .cloned()
            .collect();
        for name in recovered {
            if mark_recovered(&shared, &name).await {
                degraded.remove(&name);
            }
        }
    }
}

/// The names of every `Degraded` store in the state store.
async fn degraded_records(shared: &Shared) -> crate::error::Result<HashSet<String>> {
    let mut names = HashSet::new();
    let mut cursor = None;
    loop {
        let page = shared
            .state
            .list(&ListQuery {
                status: Some(Status::Degraded),
                limit: Some(200),
                cursor: cursor.take(),
                ..Default::default()
            })
            .await?;
        names.extend(page.items.into_iter().map(|s| s.name.to_string()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(names),
        }
    }
}

/// Ready → Degraded with the reason. Returns whether the store is now Degraded (also
/// when it already was); false when it is not Ready (busy, suspended, gone) or the write
/// lost a race.
async fn mark_degraded(
    shared: &Shared,
    source: &dyn HealthSource,
    name: &str,
    workloads: &[Unavailable],
    since: DateTime<Utc>,
) -> bool {
    let Ok(store_name) = StoreName::new(name) else {
        return false;
    };
    let Ok(store) = shared.state.get(&store_name).await else {
        return false;
    };
    if store.status == Status::Degraded {
        return true;
    }
    if store.status != Status::Ready || store.suspended {
        return false;
    }
    let mut lines = Vec::new();
    for w in workloads {
        let event = source
            .last_event(&store.namespace, &w.name)
            .await
            .map(|reason| format!("; last event: {reason}"))
            .unwrap_or_default();
        lines.push(format!("{} {}: {}{event}", w.kind, w.name, w.what));
    }
    let reason = format!(
        "degraded since {}: {}",
        since.format("%Y-%m-%dT%H:%M:%SZ"),
        lines.join("; ")
    );
    let mut next = store.clone();
    next.status = Status::Degraded;
    next.message = reason.clone();
    write(shared, next, "store.degraded", Outcome::Failure, reason).await
}

/// Degraded → Ready. Returns whether the store no longer needs watching as Degraded
/// (recovered, or not Degraded any more for another reason).
async fn mark_recovered(shared: &Shared, name: &str) -> bool {
    let Ok(store_name) = StoreName::new(name) else {
        return true;
    };
    let store = match shared.state.get(&store_name).await {
        Ok(store) => store,
        Err(e) => return e.kind() == ErrorKind::NotFound,
    };
    if store.status != Status::Degraded {
        return true;
    }
    let mut next = store.clone();
    next.status = Status::Ready;
    next.message = format!("ready on plan {}: its workloads recovered", store.plan);
    let detail = "recovered: every workload available again".to_owned();
    write(shared, next, "store.ready", Outcome::Success, detail).await
}

/// Saves `next` at the version it was read at, publishes and audits it.
async fn write(
    shared: &Shared,
    mut next: Store,
    action: &str,
    outcome: Outcome,
    detail: String,
) -> bool {
    next.updated_at = crate::store::now();
    match shared.state.update(&next).await {
        Ok(saved) => {
            shared.publish(StoreChange::Updated(saved.clone()));
            super::worker::audit(shared, &saved, action, outcome, detail).await;
            true
        }
        Err(e) => {
            tracing::debug!(store = %next.name, error = %e, "health mark not written; next event retries");
            false
        }
    }
}
