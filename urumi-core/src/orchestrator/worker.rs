//! One claimed store, worked on until it is at rest, gone, or interrupted.
//!
//! ```text
//!  run(store) ── lease renewer (every ttl/3; a lost lease interrupts the work)
//!     ├─ Pending/Provisioning ─▶ provision: for step in store.step..Done
//!     │        persist(step, "running") ─▶ attempt (retry transient, capped backoff)
//!     │        ─▶ audit provision.<step> ─▶ next   …   ─▶ Ready, audit store.ready
//!     │        permanent error ─▶ Failed(reason), audit store.failed (step kept for retry)
//!     ├─ Updating (a plan change) ─▶ the same steps from Guardrails, the quota kept at the
//!     │        larger of both plans while the workloads roll ─▶ quota settled to the plan
//!     │        ─▶ Ready (readyAt kept), audit store.ready
//!     │   (suspend/resume) ─▶ from Release with the release's workloads at 0 (or 1) ─▶
//!     │        readiness (no replica left, or all ready) ─▶ Ready, suspended or serving
//!     └─ Deleting ─▶ teardown (retried until it works, reason shown) ─▶ drop record,
//!              audit store.deleted
//! ```
//!
//! Every write goes through [`persist`]: an optimistic update that, on a version conflict,
//! re-reads the record; if someone else moved the store (a delete request), the work stops
//! and the lease is released so the next claim sees the new status.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Shared, StoreChange};
use crate::audit::{AuditEvent, Outcome};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{Status, Step, Store};

/// The actor named in audit events the worker records.
pub(crate) const SYSTEM_ACTOR: &str = "system";

/// Why a store's work stopped before it came to rest.
enum Stop {
    /// Shutdown, a lost lease, or an interrupt (e.g. a delete request).
    Interrupted,
    /// The record changed under us (another writer); the claim loop will look again.
    Superseded,
}

pub(crate) async fn run(shared: &Shared, store: Store, token: CancellationToken) {
    let name = store.name.clone();
    let renewer = tokio::spawn(renew_lease(
        shared.state.clone(),
        store.clone(),
        shared.owner.clone(),
        shared.settings.lease_ttl,
        token.clone(),
    ));
    let outcome = match store.status {
        Status::Pending | Status::Provisioning | Status::Updating => {
            provision(shared, store, &token).await
        }
        Status::Deleting => teardown(shared, store, &token).await,
        Status::Ready | Status::Degraded | Status::Failed => Ok(()),
    };
    match outcome {
        Ok(()) => {}
        Err(Stop::Interrupted) => {
            tracing::info!(store = %name, "work interrupted; it resumes later")
        }
        Err(Stop::Superseded) => tracing::debug!(store = %name, "record changed elsewhere"),
    }
    renewer.abort();
    if let Err(e) = shared.state.release_lease(&name, &shared.owner).await {
        tracing::warn!(store = %name, error = %e, "could not release lease; it lapses on its own");
    }
    // Whatever changed (a delete arrived, a retry), let the loop look again now.
    shared.wake.notify_one();
}

async fn renew_lease(
    state: std::sync::Arc<dyn crate::state::StateStore>,
    store: Store,
    owner: String,
    ttl: Duration,
    token: CancellationToken,
) {
    let period = (ttl / 3).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(period).await;
        match state.renew_lease(&store.name, &owner, ttl).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Conflict || e.kind() == ErrorKind::NotFound => {
                tracing::warn!(store = %store.name, "lease lost; stopping work on it");
                token.cancel();
                return;
            }
            // A transient failure: try again next period; the lease has 2/3 of its life.
            Err(e) => tracing::warn!(store = %store.name, error = %e, "could not renew lease"),
        }
    }
}

/// Writes `store` (optimistic), broadcasting the new record.
async fn persist(shared: &Shared, store: &mut Store) -> std::result::Result<(), Stop> {
    store.updated_at = crate::store::now();
    let mut attempt = 0;
    loop {
        match shared.state.update(store).await {
            Ok(saved) => {
                *store = saved;
                shared.publish(StoreChange::Updated(store.clone()));
                return Ok(());
            }
            Err(e) if matches!(e.kind(), ErrorKind::Conflict | ErrorKind::NotFound) => {
                return Err(Stop::Superseded);
            }
            Err(e) => {
                attempt += 1;
                if attempt >= shared.settings.retry.max_attempts {
                    tracing::error!(store = %store.name, error = %e, "could not save progress");
                    return Err(Stop::Interrupted);
                }
                tokio::time::sleep(shared.settings.retry.delay(attempt)).await;
            }
        }
    }
}

/// Records `action` about `store` as the system actor; a failure to record is logged.
pub(super) async fn audit(
    shared: &Shared,
    store: &Store,
    action: &str,
    outcome: Outcome,
    detail: String,
) {
    let event = AuditEvent::new(SYSTEM_ACTOR, action, outcome)
        .tenant(store.tenant.as_str())
        .store(store.name.as_str())
        .detail(detail);
    if let Err(e) = shared.audit.record(&event).await {
        tracing::error!(store = %store.name, action, error = %e, "could not record audit event");
    }
}

/// What a running step does when the orchestrator shuts down.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnShutdown {
    /// Stop at once (waiting for readiness changes nothing outside).
    Stop,
    /// Let it finish within the shutdown grace period (a helm run: stopping it midway
    /// could leave the release `pending-*`); past the grace, helm gets SIGTERM.
    Finish,
}

/// Runs one attempt, honouring an interrupt at once and a shutdown per `on_shutdown`.
async fn attempt_once<Fut>(
    shared: &Shared,
    token: &CancellationToken,
    on_shutdown: OnShutdown,
    attempt: Fut,
) -> std::result::Result<Result<()>, Stop>
where
    Fut: Future<Output = Result<()>>,
{
    tokio::pin!(attempt);
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = token.cancelled() => return Err(Stop::Interrupted),
            _ = shared.shutdown.cancelled(), if deadline.is_none() => {
                if on_shutdown == OnShutdown::Stop {
                    return Err(Stop::Interrupted);
                }
                deadline = Some(tokio::time::Instant::now() + shared.settings.shutdown_grace);
            }
            _ = async { if let Some(d) = deadline { tokio::time::sleep_until(d).await } }, if deadline.is_some() => {
                tracing::warn!("shutdown grace period over; stopping the step");
                return Err(Stop::Interrupted);
            }
            result = &mut attempt => return Ok(result),
        }
    }
}

/// Runs `attempt` until it succeeds, fails permanently, runs out of retries, or the work
/// is interrupted. Each transient failure is shown in the store's message (its
/// tenant-safe form; the full cause goes to the log).
async fn with_retries<F, Fut>(
    shared: &Shared,
    store: &mut Store,
    what: &str,
    token: &CancellationToken,
    on_shutdown: OnShutdown,
    mut attempt: F,
) -> std::result::Result<Result<()>, Stop>
where
    F: FnMut(Store) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let policy = shared.settings.retry;
    let mut tries = 0;
    let mut first_failure: Option<std::time::Instant> = None;
    loop {
        tries += 1;
        let result = attempt_once(shared, token, on_shutdown, attempt(store.clone())).await?;
        let since = first_failure
            .get_or_insert_with(std::time::Instant::now)
            .elapsed();
        match result {
            Ok(()) => return Ok(Ok(())),
            Err(e) if policy.retries(e.kind(), tries, since) => {
                let delay = policy.delay(tries);
                tracing::info!(store = %store.name, what, error = %e, ?delay, "transient failure; retrying");
                store.message = if tries < policy.max_attempts {
                    format!(
                        "{what}: {} (attempt {tries} of {}; retrying in {:.1} s)",
                        e.tenant_message(),
                        policy.max_attempts,
                        delay.as_secs_f64()
                    )
                } else {
                    format!(
                        "{what}: {} (unavailable for {:.0} s; waiting up to {:.0} s in all, \
                         retrying in {:.1} s)",
                        e.tenant_message(),
                        since.as_secs_f64(),
                        policy.unavailable_budget.as_secs_f64(),
                        delay.as_secs_f64()
                    )
                };
                persist(shared, store).await?;
                tokio::select! {
                    _ = token.cancelled() => return Err(Stop::Interrupted),
                    _ = shared.shutdown.cancelled() => return Err(Stop::Interrupted),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            Err(e) => return Ok(Err(e)),
        }
    }
}

async fn provision(
    shared: &Shared,
    mut store: Store,
    token: &CancellationToken,
) -> std::result::Result<(), Stop> {
    if store.status == Status::Pending {
        store.status = Status::Provisioning;
        store.attempts += 1;
        store.message = "provisioning started".to_owned();
        persist(shared, &mut store).await?;
    }
    let runtime = shared.runtime.clone();
    let readiness_timeout = shared.settings.readiness_timeout;
    while store.step != Step::Done {
        if token.is_cancelled() || shared.shutdown.is_cancelled() {
            return Err(Stop::Interrupted);
        }
        let step = store.step;
        store.message = format!("{}: running", step_label(step));
        persist(shared, &mut store).await?;
        let started = std::time::Instant::now();
        let runtime = runtime.clone();
        let on_shutdown = if step == Step::Readiness {
            OnShutdown::Stop
        } else {
            OnShutdown::Finish
        };
        let result = with_retries(
            shared,
            &mut store,
            step_label(step),
            token,
            on_shutdown,
            |s| {
                let runtime = runtime.clone();
                async move {
                    match step {
                        Step::Namespace => runtime.namespace(&s).await,
                        Step::Guardrails => runtime.guardrails(&s).await,
                        Step::Credentials => runtime.credentials(&s).await,
                        Step::Release => runtime.release(&s).await,
                        Step::Readiness => runtime.readiness(&s, readiness_timeout).await,
                        Step::Done => Ok(()),
                    }
                }
            },
        )
        .await?;
        let took = started.elapsed().as_secs_f64();
        let action = format!("provision.{}", step.as_str());
        match result {
            Ok(()) => {
                audit(
                    shared,
                    &store,
                    &action,
                    Outcome::Success,
                    format!("{} done in {took:.1} s", step_label(step)),
                )
                .await;
                if step == Step::Release {
                    // Saved with the next step's progress.
                    store.chart = shared.runtime.chart(&store).or(store.chart.take());
                }
                store.step = step.next();
            }
            Err(e) => {
                tracing::warn!(store = %store.name, step = step.as_str(), error = %e, "step failed; the store is Failed");
                let reason = failure_reason(step, &e);
                audit(shared, &store, &action, Outcome::Failure, reason.clone()).await;
                if store.status == Status::Updating && store.rollback_to.is_some() {
                    return roll_back(shared, store, reason, token).await;
                }
                return fail(shared, &mut store, reason).await;
            }
        }
    }
    if store.status == Status::Updating {
        return finish_update(shared, store, token).await;
    }
    store.urls = shared.runtime.urls(&store);
    store.mark_ready();
    store.message = "ready".to_owned();
    persist(shared, &mut store).await?;
    let seconds = store.provisioning_seconds.unwrap_or_default();
    audit(
        shared,
        &store,
        "store.ready",
        Outcome::Success,
        format!("ready after {seconds:.1} s"),
    )
    .await;
    Ok(())
}

/// The end of a change (a plan change, a suspend or a resume): the workloads run with the
/// plan's sizes (or are stopped), so the quota, which kept the larger of both plans while
/// they rolled, is settled to exactly the plan (guardrails applied as for a Ready store);
/// then Ready again (suspended or serving).
async fn finish_update(
    shared: &Shared,
    mut store: Store,
    token: &CancellationToken,
) -> std::result::Result<(), Stop> {
    let runtime = shared.runtime.clone();
    let result = with_retries(
        shared,
        &mut store,
        "quota",
        token,
        OnShutdown::Finish,
        |s| {
            let runtime = runtime.clone();
            async move {
                let mut settled = s;
                settled.status = Status::Ready;
                runtime.guardrails(&settled).await
            }
        },
    )
    .await?;
    if let Err(e) = result {
        tracing::warn!(store = %store.name, error = %e, "settling the quota failed; the store is Failed");
        store.step = Step::Guardrails;
        return fail(shared, &mut store, failure_reason(Step::Guardrails, &e)).await;
    }
    store.status = Status::Ready;
    store.step = Step::Done;
    store.rollback_to = None;
    let detail = if store.suspended {
        store.message =
            "suspended: no pod runs, volumes and credentials kept; resume to serve again"
                .to_owned();
        format!("suspended on plan {}: no pod runs", store.plan)
    } else {
        store.message = format!("ready on plan {}", store.plan);
        format!("plan {} in effect, serving", store.plan)
    };
    persist(shared, &mut store).await?;
    audit(shared, &store, "store.ready", Outcome::Success, detail).await;
    Ok(())
}

/// A failed upgrade: the release goes back to the revision the upgrade came from and the
/// store is Ready again on it, the failure recorded (`store.upgrade` failure). If the
/// rollback fails too, the store is `Failed` (retry runs the upgrade again).
async fn roll_back(
    shared: &Shared,
    mut store: Store,
    reason: String,
    token: &CancellationToken,
) -> std::result::Result<(), Stop> {
    let Some(revision) = store.rollback_to else {
        return fail(shared, &mut store, reason).await;
    };
    store.message = format!("{reason}; rolling back to revision {revision}");
    persist(shared, &mut store).await?;
    let runtime = shared.runtime.clone();
    let timeout = shared.settings.readiness_timeout;
    let chart = std::sync::Arc::new(std::sync::Mutex::new(None));
    let result = with_retries(
        shared,
        &mut store,
        "rollback",
        token,
        OnShutdown::Finish,
        |s| {
            let (runtime, chart) = (runtime.clone(), chart.clone());
            async move {
                let running = runtime.roll_back(&s, revision, timeout).await?;
                if let Ok(mut slot) = chart.lock() {
                    *slot = running;
                }
                Ok(())
            }
        },
    )
    .await?;
    if let Err(e) = result {
        tracing::warn!(store = %store.name, error = %e, "the rollback of a failed upgrade failed; the store is Failed");
        let both = format!("{reason}; the rollback failed too: {}", e.tenant_message());
        return fail(shared, &mut store, both).await;
    }
    if let Some(running) = chart.lock().ok().and_then(|mut c| c.take()) {
        store.chart = Some(running);
    }
    let on = store
        .chart
        .as_ref()
        .map_or_else(String::new, |c| format!(" (chart {})", c.version));
    store.status = Status::Ready;
    store.step = Step::Done;
    store.rollback_to = None;
    store.message = format!("{reason}; rolled back to revision {revision}{on}, ready");
    persist(shared, &mut store).await?;
    let detail = format!("{reason}; rolled back to revision {revision}{on}");
    audit(
        shared,
        &store,
        "store.upgrade",
        Outcome::Failure,
        detail.clone(),
    )
    .await;
    audit(shared, &store, "store.ready", Outcome::Success, detail).await;
    Ok(())
}

/// The store stops as `Failed` with `reason` (its step kept, for retry): saved, then
/// audited as `store.failed`.
async fn fail(shared: &Shared, store: &mut Store, reason: String) -> std::result::Result<(), Stop> {
    store.status = Status::Failed;
    store.message = reason.clone();
    persist(shared, store).await?;
    audit(shared, store, "store.failed", Outcome::Failure, reason).await;
    Ok(())
}

/// A reason a human understands: which step, what happened, what to do.
fn failure_reason(step: Step, e: &Error) -> String {
    let message = e.tenant_message();
    // A message that already says what to do (a timeout's) keeps its own advice.
    let hint = if !e.is_retryable() {
        ""
    } else if message.contains("retry the store") {
        " — gave up after repeated attempts"
    } else {
        " — gave up after repeated transient failures; retry the store when the cause is fixed"
    };
    format!("{} failed: {message}{hint}", step_label(step))
}

fn step_label(step: Step) -> &'static str {
    match step {
        Step::Namespace => "namespace",
        Step::Guardrails => "guardrails",
        Step::Credentials => "credentials",
        Step::Release => "release",
        Step::Readiness => "readiness",
        Step::Done => "done",
    }
}

async fn teardown(
    shared: &Shared,
    mut store: Store,
    token: &CancellationToken,
) -> std::result::Result<(), Stop> {
    store.message = "deleting: removing the release and the namespace".to_owned();
    persist(shared, &mut store).await?;
    let runtime = shared.runtime.clone();
    let mut round = 0;
    loop {
        let result = with_retries(
            shared,
            &mut store,
            "delete",
            token,
            OnShutdown::Finish,
            |s| {
                let runtime = runtime.clone();
                async move { runtime.teardown(&s).await }
            },
        )
        .await?;
        match result {
            Ok(()) => break,
            Err(e) => {
                // Deletion is never abandoned: keep the reason visible and try again later.
                round += 1;
                let delay = shared.settings.retry.delay(round.min(10));
                tracing::warn!(store = %store.name, error = %e, "deletion failed; trying again");
                store.message = format!(
                    "deleting: {}; trying again in {:.0} s",
                    e.tenant_message(),
                    delay.as_secs_f64()
                );
                audit(
                    shared,
                    &store,
                    "store.delete",
                    Outcome::Failure,
                    store.message.clone(),
                )
                .await;
                persist(shared, &mut store).await?;
                tokio::select! {
                    _ = token.cancelled() => return Err(Stop::Interrupted),
                    _ = shared.shutdown.cancelled() => return Err(Stop::Interrupted),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    match shared.state.delete(&store.name).await {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(store = %store.name, error = %e, "could not drop the record; will retry");
            return Err(Stop::Interrupted);
        }
    }
    audit(
        shared,
        &store,
        "store.deleted",
        Outcome::Success,
        "release, namespace and volumes removed".to_owned(),
    )
    .await;
    shared.publish(StoreChange::Deleted(store));
    Ok(())
}

/// Re-applies the namespace and guardrails of every Ready store, every resync interval,
/// under each store's lease (stores busy elsewhere are skipped this round).
pub(crate) async fn resync_loop(shared: std::sync::Arc<Shared>) {
    let interval = shared.settings.resync_interval;
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if let Err(e) = resync_once(&shared).await {
            tracing::warn!(error = %e, "resync round failed; next round retries");
        }
    }
}

async fn resync_once(shared: &Shared) -> Result<()> {
    let mut cursor = None;
    loop {
        let page = shared
            .state
            .list(&crate::state::ListQuery {
                status: Some(Status::Ready),
                limit: Some(200),
                cursor: cursor.take(),
                ..Default::default()
            })
            .await?;
        for store in page.items {
            if shared.shutdown.is_cancelled() {
                return Ok(());
            }
            if shared
                .state
                .claim_lease(&store.name, &shared.owner, shared.settings.lease_ttl)
                .await
                .is_err()
            {
                continue;
            }
            // Under the lease, re-read: a store deleted since the list must not get its
            // namespace re-created.
            let repaired = async {
                let current = shared.state.get(&store.name).await?;
                if current.status != Status::Ready {
                    return Ok(());
                }
                shared.runtime.namespace(&current).await?;
                shared.runtime.guardrails(&current).await
            }
            .await;
            if let Err(e) = repaired {
                tracing::warn!(store = %store.name, error = %e, "drift repair failed");
            }
            let _ = shared.state.release_lease(&store.name, &shared.owner).await;
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_failure_reason_gives_its_advice_once() {
        let timed_out = failure_reason(
            Step::Readiness,
            &Error::Timeout {
                operation: "the store's workloads".to_owned(),
                after: Duration::from_secs(20),
            },
        );
        assert_eq!(
            timed_out.matches("retry the store").count(),
            1,
            "{timed_out}"
        );
        assert!(
            timed_out.ends_with("gave up after repeated attempts"),
            "{timed_out}"
        );

        let unreachable = failure_reason(
            Step::Release,
            &Error::Unavailable {
                message: "the API server could not be reached".to_owned(),
            },
        );
        assert!(unreachable.starts_with("release failed: "), "{unreachable}");
        assert!(
            unreachable.ends_with("retry the store when the cause is fixed"),
            "{unreachable}"
        );

        let refused = failure_reason(
            Step::Release,
            &Error::Provisioning {
                message: "release rejected".to_owned(),
            },
        );
        assert!(!refused.contains("gave up"), "{refused}");
    }
}
