//! The background worker that carries stores to `Ready` and tears them down.
//!
//! ```text
//!            wake() / poll tick                      lease renewed every ttl/3
//!  loop ─────────────────────────▶ StateStore::claim_next(owner, ttl, free slots)
//!                                        │ one task per claimed store (bounded by `concurrency`)
//!            ┌───────────────────────────┴──────────────────────────┐
//!   Pending / Provisioning                                      Deleting
//!   Namespace → Guardrails → Credentials → Release → Readiness   teardown (helm uninstall,
//!   each step: persist "running", run (transient errors retried   namespace deleted and gone)
//!   with capped backoff + jitter), audit `provision.<step>`       → record dropped, `store.deleted`
//!   → Ready (`store.ready`)  |  permanent error → Failed (`store.failed`, reason kept)
//!
//!  resync tick: re-applies Namespace + Guardrails of every Ready store (drift repair)
//!  watch_health(source): Ready ⇄ Degraded as the stores' workloads go and come back
//! ```
//!
//! The orchestrator knows nothing of WooCommerce or of Kubernetes objects: each step is a
//! call on a [`StoreRuntime`] (the Kubernetes one is [`KubeRuntime`]). Every step is
//! idempotent, so a store whose worker died (its lease lapses) is simply run again from
//! its persisted step by whichever worker claims it next — in this process after a
//! restart, or in another replica sharing the same PostgreSQL.

mod backoff;
mod health;
mod kube;
mod readiness;
mod worker;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

pub use backoff::RetryPolicy;
pub use health::{HealthSource, Unavailable};
pub use kube::{
    KubeRuntime, KubeRuntimeSettings, STORE_ACCESS_BINDING, StoreAccess, store_access_binding,
};
pub use readiness::ReadinessWatcher;

use crate::audit::AuditSink;
use crate::error::Result;
use crate::state::StateStore;
use crate::store::{Store, StoreName, Urls};

/// What each provisioning step does to the outside world, one method per step.
///
/// Every method is idempotent: called again for the same store (after a crash, a
/// retry, or a second replica taking over) it converges to the same result and changes
/// nothing that is already right. Errors whose [`is_retryable`](crate::Error::is_retryable)
/// is true are retried by the orchestrator; any other error fails the store with the
/// error's message as its reason, so messages must be readable by a human and free of
/// secrets.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait StoreRuntime: Send + Sync {
    /// Creates or updates the store's namespace with its labels.
    async fn namespace(&self, store: &Store) -> Result<()>;
    /// Applies quotas, limits and network policies for the store's plan. For an
    /// `Updating` store (a plan change) each quota value keeps the larger of what is
    /// applied and what the plan says, so the old plan's pods fit while they roll.
    async fn guardrails(&self, store: &Store) -> Result<()>;
    /// Creates the credentials Secret if absent; never rotates existing credentials.
    async fn credentials(&self, store: &Store) -> Result<()>;
    /// Installs or upgrades the store's release (without waiting for it).
    async fn release(&self, store: &Store) -> Result<()>;
    /// Waits until the store's workloads are ready, at most `timeout`
    /// (`timeout` error when it runs out, naming what is not ready).
    async fn readiness(&self, store: &Store, timeout: Duration) -> Result<()>;
    /// The store's URLs once ready.
    fn urls(&self, store: &Store) -> Urls;
    /// The chart [`release`](StoreRuntime::release) installs for this store, recorded on
    /// the store once the release step succeeded (`None`: unknown).
    fn chart(&self, store: &Store) -> Option<crate::store::StoreChart>;
    /// Rolls the store's release back to `revision` (a failed upgrade) and waits until its
    /// workloads are ready again, at most `timeout`. Returns the chart now running.
    async fn roll_back(
        &self,
        store: &Store,
        revision: u32,
        timeout: Duration,
    ) -> Result<Option<crate::store::StoreChart>>;
    /// Removes the release and the namespace and waits until the namespace is gone.
    /// A store never (or partly) provisioned is fine: missing pieces are skipped.
    async fn teardown(&self, store: &Store) -> Result<()>;
}

/// How the orchestrator works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Stores worked on at once by this process.
    pub concurrency: usize,
    /// How long a claimed store stays leased without renewal (a dead worker's stores
    /// are taken over after this). Renewed every third of it.
    #[serde(with = "secs", alias = "lease_ttl")]
    pub lease_ttl: Duration,
    /// How often to look for work besides being woken (other replicas' work, expired
    /// leases).
    #[serde(with = "secs", alias = "poll_interval")]
    pub poll_interval: Duration,
    /// How long readiness may take before the store fails.
    #[serde(with = "secs", alias = "readiness_timeout")]
    pub readiness_timeout: Duration,
    /// How often Ready stores get their namespace and guardrails re-applied; zero turns
    /// drift repair off.
    #[serde(with = "secs", alias = "resync_interval")]
    pub resync_interval: Duration,
    /// Retries of transient step failures.
    pub retry: RetryPolicy,
    /// On shutdown, how long a running helm step may take to finish before helm is
    /// stopped (SIGTERM, then SIGKILL after helm's own grace).
    #[serde(with = "secs", alias = "shutdown_grace")]
    pub shutdown_grace: Duration,
    /// How long a Ready store's workload must stay unavailable before the store is
    /// `Degraded` (a pod restarting for a moment is not).
    #[serde(with = "secs", alias = "degraded_after")]
    pub degraded_after: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrency: 4,
            lease_ttl: Duration::from_secs(30),
            poll_interval: Duration::from_secs(2),
            readiness_timeout: Duration::from_secs(600),
            resync_interval: Duration::from_secs(300),
            retry: RetryPolicy::default(),
            shutdown_grace: Duration::from_secs(30),
            degraded_after: Duration::from_secs(5),
        }
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// A change to a store, broadcast to subscribers.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreChange {
    /// The store's record changed (status, step, message, …); the new record.
    Updated(Store),
    /// The store is gone: torn down and its record dropped. The last record.
    Deleted(Store),
}

impl StoreChange {
    /// The store concerned, as last known.
    pub fn store(&self) -> &Store {
        match self {
            StoreChange::Updated(s) | StoreChange::Deleted(s) => s,
        }
    }
}

/// Shared by the loop and its workers.
pub(crate) struct Shared {
    pub(crate) state: Arc<dyn StateStore>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) runtime: Arc<dyn StoreRuntime>,
    pub(crate) settings: Settings,
    /// This worker's lease owner id, unique per process start.
    pub(crate) owner: String,
    pub(crate) wake: Notify,
    pub(crate) changes: broadcast::Sender<StoreChange>,
    /// Stores this process works on, with the token that stops that work.
    pub(crate) in_flight: Mutex<HashMap<StoreName, CancellationToken>>,
    pub(crate) shutdown: CancellationToken,
}

impl Shared {
    /// Broadcasts a change; nobody listening is fine.
    pub(crate) fn publish(&self, change: StoreChange) {
        let _ = self.changes.send(change);
    }
}

/// A running orchestrator. Cheap to clone; every clone drives the same worker.
#[derive(Clone)]
pub struct Orchestrator {
    shared: Arc<Shared>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator")
            .field("owner", &self.shared.owner)
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

impl Orchestrator {
    /// Starts the worker loop (and the resync loop) on the current Tokio runtime.
    /// Stores not at rest are resumed as soon as their leases are free.
    pub fn start(
        state: Arc<dyn StateStore>,
        audit: Arc<dyn AuditSink>,
        runtime: Arc<dyn StoreRuntime>,
        settings: Settings,
    ) -> Self {
        let (changes, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            state,
            audit,
            runtime,
            owner: format!("urumi-{}", uuid::Uuid::new_v4()),
            settings,
            wake: Notify::new(),
            changes,
            in_flight: Mutex::new(HashMap::new()),
            shutdown: CancellationToken::new(),
        });
        let mut tasks = vec![tokio::spawn(work_loop(shared.clone()))];
        if !shared.settings.resync_interval.is_zero() {
            tasks.push(tokio::spawn(worker::resync_loop(shared.clone())));
        }
        Orchestrator {
            shared,
            tasks: Arc::new(Mutex::new(tasks)),
        }
    }

    /// Watches the health of Ready stores from `source` until shutdown: a store whose
    /// workloads become unavailable turns `Degraded`, and `Ready` when they recover.
    pub fn watch_health(&self, source: Arc<dyn health::HealthSource>) {
        let task = tokio::spawn(health::health_loop(self.shared.clone(), source));
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(task);
        }
    }

    /// Looks for work now rather than at the next poll tick.
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Stops the work on `name` in this process, if any (e.g. it is being deleted).
    /// The store's lease is released and whoever claims it next sees its new status.
    pub fn interrupt(&self, name: &StoreName) {
        if let Ok(in_flight) = self.shared.in_flight.lock()
            && let Some(token) = in_flight.get(name)
        {
            token.cancel();
        }
    }

    /// Changes to stores, as they happen. A receiver that falls behind by more than
    /// 1024 changes gets `Lagged` and should re-read what it needs.
    pub fn subscribe(&self) -> broadcast::Receiver<StoreChange> {
        self.shared.changes.subscribe()
    }

    /// Publishes a change made outside the worker (a create, a delete request).
    pub fn publish(&self, change: StoreChange) {
        self.shared.publish(change);
    }

    /// This worker's lease owner id.
    pub fn owner(&self) -> &str {
        &self.shared.owner
    }

    /// Tells the worker to stop (without waiting): no new claims; running helm steps
    /// finish within the grace period; waits stop at once. Safe from `Drop`.
    pub fn begin_shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// Whether shutdown has begun.
    pub fn is_shut_down(&self) -> bool {
        self.shared.shutdown.is_cancelled()
    }

    /// Stops claiming work, lets a running helm step finish (within
    /// [`Settings::shutdown_grace`]; then it is stopped with SIGTERM), stops waits at
    /// once, releases the leases and returns when every task has ended. Stores not
    /// finished are resumed by the next start. Idempotent.
    pub async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        let tasks = match self.tasks.lock() {
            Ok(mut tasks) => std::mem::take(&mut *tasks),
            Err(_) => Vec::new(),
        };
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// Claims work whenever woken or at every poll tick, up to `concurrency` stores at once.
async fn work_loop(shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(shared.settings.concurrency.max(1)));
    let mut workers = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(shared.settings.poll_interval) => {}
            Some(_) = workers.join_next(), if !workers.is_empty() => {}
        }
        if shared.shutdown.is_cancelled() {
            break;
        }
        let free = slots.available_permits();
        if free == 0 {
            continue;
        }
        let claimed = match shared
            .state
            .claim_next(&shared.owner, shared.settings.lease_ttl, free as u32)
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim work; will retry");
                continue;
            }
        };
        for store in claimed {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            // Interrupts (a delete, a lost lease) stop the work at once; a shutdown is
            // seen by the worker itself, which lets a running helm finish first.
            let token = CancellationToken::new();
            if let Ok(mut in_flight) = shared.in_flight.lock() {
                in_flight.insert(store.name.clone(), token.clone());
            }
            let shared = shared.clone();
            workers.spawn(async move {
                let name = store.name.clone();
                worker::run(&shared, store, token).await;
                if let Ok(mut in_flight) = shared.in_flight.lock() {
                    in_flight.remove(&name);
                }
                drop(permit);
            });
        }
    }
    // Shutdown: every worker sees the cancelled token at its next safe point.
    while workers.join_next().await.is_some() {}
}
