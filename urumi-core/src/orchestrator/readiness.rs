//! Readiness of every store from three cluster-wide watches.
//!
//! ```text
//!  watch Deployments ─┐  (label selector: every object the store chart labels
//!  watch StatefulSets ├─▶ reflector caches ──any event──▶ generation += 1 (tokio watch)
//!  watch Jobs ────────┘   urumi.dev/store; re-listed with backoff after an API outage)
//!
//!  wait(namespace, workloads, timeout):
//!     loop { check(caches) → Ready | Waiting(what) | Failed(why); await next generation }
//! ```
//!
//! One watch per kind serves every store at once: no per-store watch, no polling loop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::reflector::{self, ObjectRef, Store as Cache};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::engine::{Workload, WorkloadKind};
use crate::error::{Error, Result};

/// Cluster-wide caches of the workloads of every store, kept fresh by watches.
pub struct ReadinessWatcher {
    client: Client,
    deployments: Cache<Deployment>,
    statefulsets: Cache<StatefulSet>,
    jobs: Cache<Job>,
    generation: watch::Receiver<u64>,
    /// The last error of each watch that has not recovered yet (e.g. `forbidden`).
    errors: WatchErrors,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

type WatchErrors = Arc<std::sync::Mutex<std::collections::BTreeMap<&'static str, String>>>;

impl std::fmt::Debug for ReadinessWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadinessWatcher")
            .field("deployments", &self.deployments.state().len())
            .field("statefulsets", &self.statefulsets.state().len())
            .field("jobs", &self.jobs.state().len())
            .finish()
    }
}

impl Drop for ReadinessWatcher {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ReadinessWatcher {
    /// Stops the watches; waiting for readiness afterwards fails as `unavailable`.
    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What a check of one store's workloads found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Every workload is ready (Jobs complete).
    Ready,
    /// Not yet; says what is being waited for.
    Waiting(String),
    /// Will not become ready without a change (a Job failed); says why.
    Failed(String),
}

fn spawn_watch<K>(
    client: &Client,
    label_selector: &str,
    bump: watch::Sender<u64>,
    errors: WatchErrors,
    kind: &'static str,
) -> (Cache<K>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (cache, writer) = reflector::store();
    let api: Api<K> = Api::all(client.clone());
    let stream = watcher(api, watcher::Config::default().labels(label_selector))
        .default_backoff()
        .reflect(writer);
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Ok(mut errors) = errors.lock() {
                match &event {
                    Err(e) => {
                        tracing::debug!(kind, error = %e, "readiness watch interrupted; it re-lists");
                        errors.insert(kind, e.to_string());
                    }
                    Ok(_) => {
                        errors.remove(kind);
                    }
                }
            }
            bump.send_modify(|g| *g = g.wrapping_add(1));
        }
    });
    (cache, task)
}

impl ReadinessWatcher {
    /// Starts the three watches over objects matching `label_selector` (e.g.
    /// `urumi.dev/store`), cluster-wide.
    pub fn start(client: &Client, label_selector: &str) -> Arc<Self> {
        let (bump, generation) = watch::channel(0u64);
        let errors = WatchErrors::default();
        let (deployments, t1) = spawn_watch::<Deployment>(
            client,
            label_selector,
            bump.clone(),
            errors.clone(),
            "Deployments",
        );
        let (statefulsets, t2) = spawn_watch::<StatefulSet>(
            client,
            label_selector,
            bump.clone(),
            errors.clone(),
            "StatefulSets",
        );
        let (jobs, t3) = spawn_watch::<Job>(client, label_selector, bump, errors.clone(), "Jobs");
        Arc::new(ReadinessWatcher {
            client: client.clone(),
            deployments,
            statefulsets,
            jobs,
            generation,
            errors,
            tasks: vec![t1, t2, t3],
        })
    }

    /// Waits until every one of `workloads` in `namespace` is ready, at most `timeout`.
    /// Errors: `Provisioning` when a workload failed or the time ran out (naming what
    /// was still not ready); neither is retried as is.
    pub async fn wait(
        &self,
        namespace: &str,
        workloads: &[Workload],
        timeout: Duration,
    ) -> Result<()> {
        let mut generation = self.generation.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            generation.borrow_and_update();
            match self.check(namespace, workloads) {
                Readiness::Ready => return Ok(()),
                Readiness::Failed(why) => return Err(Error::Provisioning { message: why }),
                Readiness::Waiting(what) => {
                    match tokio::time::timeout_at(deadline, generation.changed()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => {
                            return Err(Error::Unavailable {
                                message: "the readiness watches stopped".to_owned(),
                            });
                        }
                        Err(_) => {
                            return Err(Error::Provisioning {
                                message: format!(
                                    "not ready after {:.0} s: {what}{}",
                                    timeout.as_secs_f64(),
                                    self.watch_errors()
                                ),
                            });
                        }
                    }
                }
            }
        }
    }

    /// ` (the watch of Jobs fails: …)` while a watch has not recovered from an error,
    /// so a readiness timeout names a cause like missing permissions; empty otherwise.
    fn watch_errors(&self) -> String {
        let Ok(errors) = self.errors.lock() else {
            return String::new();
        };
        errors
            .iter()
            .map(|(kind, e)| format!(" (the watch of {kind} fails: {e})"))
            .collect()
    }

    /// Checks `workloads` in `namespace` against the caches, now.
    pub fn check(&self, namespace: &str, workloads: &[Workload]) -> Readiness {
        let mut waiting = Vec::new();
        for w in workloads {
            let state = match w.kind {
                WorkloadKind::Deployment => self
                    .deployments
                    .get(&ObjectRef::new(&w.name).within(namespace))
                    .map(|d| deployment_readiness(&d)),
                WorkloadKind::StatefulSet => self
                    .statefulsets
                    .get(&ObjectRef::new(&w.name).within(namespace))
                    .map(|s| statefulset_readiness(&s)),
                WorkloadKind::Job => self
                    .jobs
                    .get(&ObjectRef::new(&w.name).within(namespace))
                    .map(|j| job_readiness(&j)),
            };
            match state {
                None => waiting.push(format!("{} {} does not exist yet", w.kind, w.name)),
                Some(Readiness::Ready) => {}
                Some(Readiness::Waiting(what)) => {
                    waiting.push(format!("{} {}: {what}", w.kind, w.name))
                }
                Some(Readiness::Failed(why)) => {
                    return Readiness::Failed(format!("{} {} failed: {why}", w.kind, w.name));
                }
            }
        }
        if waiting.is_empty() {
            Readiness::Ready
        } else {
            Readiness::Waiting(waiting.join("; "))
        }
    }
}

#[async_trait::async_trait]
impl super::HealthSource for ReadinessWatcher {
    fn changed(&self) -> watch::Receiver<u64> {
        self.generation.clone()
    }

    async fn synced(&self) {
        // A writer dropped (the watch stopped) is never synced: wait forever, the loop
        // ends with the shutdown.
        let deployments = self.deployments.wait_until_ready();
        let statefulsets = self.statefulsets.wait_until_ready();
        if deployments.await.is_err() || statefulsets.await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    fn unavailable(&self) -> BTreeMap<String, Vec<super::Unavailable>> {
        let mut out: BTreeMap<String, Vec<super::Unavailable>> = BTreeMap::new();
        let deployments = self.deployments.state().into_iter().map(|d| {
            let health = deployment_health(&d);
            ("Deployment", d.metadata.clone(), health)
        });
        let statefulsets = self.statefulsets.state().into_iter().map(|s| {
            let health = statefulset_health(&s);
            ("StatefulSet", s.metadata.clone(), health)
        });
        for (kind, meta, health) in deployments.chain(statefulsets) {
            let Some(what) = health else { continue };
            if meta.deletion_timestamp.is_some() {
                continue;
            }
            let store = meta
                .labels
                .as_ref()
                .and_then(|l| l.get(crate::guardrails::STORE_LABEL));
            if let (Some(store), Some(name)) = (store, meta.name) {
                out.entry(store.clone())
                    .or_default()
                    .push(super::Unavailable { kind, name, what });
            }
        }
        out
    }

    async fn last_event(&self, namespace: &str, workload: &str) -> Option<String> {
        use k8s_openapi::api::core::v1::Event;
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let events = api.list(&kube::api::ListParams::default()).await.ok()?;
        // The workload's own Events and its pods' (`<workload>-…`).
        events
            .items
            .into_iter()
            .filter(|e| {
                e.involved_object
                    .name
                    .as_deref()
                    .is_some_and(|n| n == workload || n.starts_with(&format!("{workload}-")))
            })
            .max_by_key(|e| {
                e.last_timestamp
                    .as_ref()
                    .map(|t| t.0)
                    .or(e.event_time.as_ref().map(|t| t.0))
            })
            .and_then(|e| e.reason)
    }
}

/// What is missing of a Deployment that should serve (`None`: available, scaled to
/// zero, or still rolling out a new spec — that is the worker's readiness, not health).
pub fn deployment_health(d: &Deployment) -> Option<String> {
    let want = d.spec.replicas.unwrap_or(1);
    let status = d.status.as_ref()?;
    if want == 0 || !observed(d.metadata.generation, status.observed_generation) {
        return None;
    }
    let available = status.available_replicas.unwrap_or(0);
    (available < want).then(|| format!("{available}/{want} replicas available"))
}

/// What is missing of a StatefulSet that should serve (`None`: every replica ready, or
/// scaled to zero).
pub fn statefulset_health(s: &StatefulSet) -> Option<String> {
    let want = s.spec.replicas.unwrap_or(1);
    let status = s.status.as_ref()?;
    if want == 0 || !observed(s.metadata.generation, status.observed_generation) {
        return None;
    }
    let ready = status.ready_replicas.unwrap_or(0);
    (ready < want).then(|| format!("{ready}/{want} replicas ready"))
}

fn observed(generation: Option<i64>, observed: Option<i64>) -> bool {
    observed.unwrap_or(0) >= generation.unwrap_or(0)
}

/// A Deployment is ready when its controller saw the latest spec and every replica is
/// updated and available; one scaled to zero (a suspended store) when no replica is
/// left. Pure.
pub fn deployment_readiness(d: &Deployment) -> Readiness {
    let want = d.spec.replicas.unwrap_or(1);
    let Some(status) = d.status.as_ref() else {
        return Readiness::Waiting("no status yet".to_owned());
    };
    if !observed(d.metadata.generation, status.observed_generation) {
        return Readiness::Waiting("the controller has not seen the latest spec".to_owned());
    }
    if want == 0 {
        return stopped(status.replicas.unwrap_or(0));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated >= want && available >= want {
        Readiness::Ready
    } else {
        Readiness::Waiting(format!(
            "{available}/{want} replicas available, {updated} updated"
        ))
    }
}

/// A StatefulSet is ready when every replica is ready on the current revision; one
/// scaled to zero (a suspended store) when no replica is left. Pure.
pub fn statefulset_readiness(s: &StatefulSet) -> Readiness {
    let want = s.spec.replicas.unwrap_or(1);
    let Some(status) = s.status.as_ref() else {
        return Readiness::Waiting("no status yet".to_owned());
    };
    if !observed(s.metadata.generation, status.observed_generation) {
        return Readiness::Waiting("the controller has not seen the latest spec".to_owned());
    }
    if want == 0 {
        return stopped(status.replicas);
    }
    let ready = status.ready_replicas.unwrap_or(0);
    if ready >= want {
        Readiness::Ready
    } else {
        Readiness::Waiting(format!("{ready}/{want} replicas ready"))
    }
}

/// A workload scaled to zero is done stopping when its controller counts no replica.
fn stopped(replicas: i32) -> Readiness {
    if replicas == 0 {
        Readiness::Ready
    } else {
        Readiness::Waiting(format!("stopping: {replicas} replicas still running"))
    }
}

/// A Job is ready when complete; failed when its `Failed` condition is true. Pure.
pub fn job_readiness(j: &Job) -> Readiness {
    let conditions = j
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    for c in conditions {
        if c.status != "True" {
            continue;
        }
        match c.type_.as_str() {
            "Complete" => return Readiness::Ready,
            "Failed" => {
                let reason = c.reason.as_deref().unwrap_or("Failed");
                let message = c.message.as_deref().unwrap_or("");
                return Readiness::Failed(
                    format!("{reason}: {message}")
                        .trim_end_matches(": ")
                        .to_owned(),
                );
            }
            _ => {}
        }
    }
    let active = j.status.as_ref().and_then(|s| s.active).unwrap_or(0);
    let failed = j.status.as_ref().and_then(|s| s.failed).unwrap_or(0);
    Readiness::Waiting(format!(
        "not complete ({active} running, {failed} failed attempts)"
    ))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{
        DeploymentSpec, DeploymentStatus, StatefulSetSpec, StatefulSetStatus,
    };
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};

    use super::*;

    fn mk_deployment(
        replicas: i32,
        generation: i64,
        observed: i64,
        available: i32,
        updated: i32,
    ) -> Deployment {
        let mut d = Deployment::default();
        d.metadata.generation = Some(generation);
        d.spec = DeploymentSpec {
            replicas: Some(replicas),
            ..Default::default()
        };
        d.status = Some(DeploymentStatus {
            observed_generation: Some(observed),
            available_replicas: Some(available),
            updated_replicas: Some(updated),
            ..Default::default()
        });
        d
    }

    fn mk_job(conditions: &[(&str, &str, &str)]) -> Job {
        Job {
            status: Some(JobStatus {
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, s, r)| JobCondition {
                            type_: (*t).to_owned(),
                            status: (*s).to_owned(),
                            reason: Some((*r).to_owned()),
                            message: Some("the setup script exited 1".to_owned()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn deployments() {
        assert_eq!(
            deployment_readiness(&mk_deployment(2, 3, 3, 2, 2)),
            Readiness::Ready
        );
        assert!(matches!(
            deployment_readiness(&mk_deployment(2, 3, 2, 2, 2)),
            Readiness::Waiting(_)
        ));
        assert!(
            matches!(deployment_readiness(&mk_deployment(2, 1, 1, 1, 2)), Readiness::Waiting(w) if w.contains("1/2"))
        );
        assert!(matches!(
            deployment_readiness(&Deployment::default()),
            Readiness::Waiting(_)
        ));
    }

    #[test]
    fn statefulsets() {
        let mk = |ready| StatefulSet {
            spec: StatefulSetSpec {
                replicas: Some(1),
                ..Default::default()
            },
            status: Some(StatefulSetStatus {
                ready_replicas: Some(ready),
                replicas: 1,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(matches!(
            statefulset_readiness(&mk(0)),
            Readiness::Waiting(_)
        ));
        assert_eq!(statefulset_readiness(&mk(1)), Readiness::Ready);
    }

    #[test]
    fn scaled_to_zero_is_ready_once_no_replica_is_left() {
        let mut d = mk_deployment(0, 4, 4, 0, 0);
        if let Some(status) = d.status.as_mut() {
            status.replicas = Some(1);
        }
        assert!(
            matches!(deployment_readiness(&d), Readiness::Waiting(w) if w.contains("1 replicas still running"))
        );
        if let Some(status) = d.status.as_mut() {
            status.replicas = None;
        }
        assert_eq!(deployment_readiness(&d), Readiness::Ready);
        let sts = |running| StatefulSet {
            spec: StatefulSetSpec {
                replicas: Some(0),
                ..Default::default()
            },
            status: Some(StatefulSetStatus {
                ready_replicas: Some(running),
                replicas: running,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(matches!(
            statefulset_readiness(&sts(1)),
            Readiness::Waiting(_)
        ));
        assert_eq!(statefulset_readiness(&sts(0)), Readiness::Ready);
    }

    #[tokio::test]
    async fn a_timeout_names_the_watch_that_fails() {
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("valid url"));
        let client = Client::try_from(config).expect("client");
        let watcher = ReadinessWatcher::start(&client, "urumi.dev/store");
        let workloads = [Workload {
            kind: WorkloadKind::Deployment,
            name: "shop1-wordpress".to_owned(),
            labels: Default::default(),
        }];
        let err = watcher
            .wait("store-shop1", &workloads, Duration::from_secs(2))
            .await
            .expect_err("nothing can be ready");
        let message = err.to_string();
        assert!(message.contains("not ready after 2 s"), "{message}");
        assert!(
            message.contains("Deployment shop1-wordpress does not exist yet"),
            "{message}"
        );
        assert!(
            message.contains("the watch of Deployments fails"),
            "{message}"
        );
        assert!(!err.is_retryable(), "a readiness timeout fails the store");
    }

    #[test]
    fn jobs() {
        assert_eq!(
            job_readiness(&mk_job(&[("Complete", "True", "Completed")])),
            Readiness::Ready
        );
        assert!(matches!(
            job_readiness(&mk_job(&[("Complete", "False", "")])),
            Readiness::Waiting(_)
        ));
        match job_readiness(&mk_job(&[("Failed", "True", "BackoffLimitExceeded")])) {
            Readiness::Failed(why) => assert!(
                why.contains("BackoffLimitExceeded") && why.contains("exited 1"),
                "{why}"
            ),
            other => panic!("expected Failed, got {other:?}"),
        }
    }
}
