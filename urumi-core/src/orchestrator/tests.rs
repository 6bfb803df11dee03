//! Unit tests of the worker's failure paths, with a mocked [`StoreRuntime`] and the real
//! in-memory state store. The cluster-level behaviour is tested in `tests/lifecycle_*`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::*;
use crate::audit::{AuditQuery, StateSink};
use crate::error::{Error, ErrorKind};
use crate::state::{InsertOptions, MemoryStore};
use crate::store::{Status, Step, StoreName, StoreSpec, TenantId};

fn fast_settings() -> Settings {
    Settings {
        concurrency: 4,
        lease_ttl: Duration::from_millis(600),
        poll_interval: Duration::from_millis(50),
        readiness_timeout: Duration::from_secs(5),
        resync_interval: Duration::ZERO,
        retry: RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(20),
            unavailable_budget: Duration::ZERO,
        },
        shutdown_grace: Duration::from_secs(5),
        degraded_after: Duration::from_millis(300),
    }
}

async fn insert(state: &Arc<dyn StateStore>, name: &str) -> Store {
    let spec = StoreSpec::new(
        StoreName::new(name).expect("valid name"),
        TenantId::new("acme").expect("valid tenant"),
    );
    let store = Store::new(spec, format!("store-{name}"));
    state
        .insert(
            &store,
            &InsertOptions {
                limits: crate::limits::Limits::unlimited(),
                ..Default::default()
            },
        )
        .await
        .expect("insert")
}

type StepFn = Box<dyn Fn() -> crate::Result<()> + Send + Sync>;

/// What some steps do instead of succeeding.
#[derive(Default)]
struct Script {
    namespace: Option<StepFn>,
    release: Option<StepFn>,
    readiness: Option<StepFn>,
    teardown: Option<StepFn>,
}

/// A runtime counting the calls of each step; steps succeed unless `script` says
/// otherwise.
fn runtime(calls: Arc<[AtomicU32; 6]>, script: Script) -> MockStoreRuntime {
    fn step(
        calls: &Arc<[AtomicU32; 6]>,
        i: usize,
        f: Option<StepFn>,
    ) -> impl Fn() -> crate::Result<()> + Send + Sync + 'static {
        let calls = calls.clone();
        move || {
            calls[i].fetch_add(1, Ordering::SeqCst);
            f.as_ref().map_or(Ok(()), |f| f())
        }
    }
    let mut rt = MockStoreRuntime::new();
    let f = step(&calls, 0, script.namespace);
    rt.expect_namespace().returning(move |_| f());
    let f = step(&calls, 1, None);
    rt.expect_guardrails().returning(move |_| f());
    let f = step(&calls, 2, None);
    rt.expect_credentials().returning(move |_| f());
    let f = step(&calls, 3, script.release);
    rt.expect_release().returning(move |_| f());
    let f = step(&calls, 4, script.readiness);
    rt.expect_readiness().returning(move |_, _| f());
    let f = step(&calls, 5, script.teardown);
    rt.expect_teardown().returning(move |_| f());
    rt.expect_chart().returning(|_| {
        Some(crate::store::StoreChart {
            version: "0.2.0".to_owned(),
            app_version: "7.1.0".to_owned(),
            outdated: false,
        })
    });
    rt.expect_urls().returning(|s| Urls {
        storefront: Some(format!("http://{}.example", s.name)),
        admin: None,
    });
    rt
}

fn succeeding(calls: Arc<[AtomicU32; 6]>) -> MockStoreRuntime {
    runtime(calls, Script::default())
}

fn counters() -> Arc<[AtomicU32; 6]> {
    Arc::new(Default::default())
}

async fn wait_for_status(state: &Arc<dyn StateStore>, name: &str, want: Status) -> Store {
    let name = StoreName::new(name).expect("valid");
    for _ in 0..400 {
        if let Ok(s) = state.get(&name).await
            && s.status == want
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "store {name} never reached {want}: {:?}",
        state.get(&name).await
    );
}

async fn actions(state: &Arc<dyn StateStore>, name: &str) -> Vec<String> {
    let page = state
        .query_audit(&AuditQuery {
            store: Some(name.to_owned()),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .expect("query audit");
    let mut actions: Vec<String> = page.items.into_iter().map(|e| e.action).collect();
    actions.reverse(); // oldest first
    actions
}

fn start(state: &Arc<dyn StateStore>, runtime: MockStoreRuntime) -> Orchestrator {
    Orchestrator::start(
        state.clone(),
        Arc::new(StateSink::new(state.clone())),
        Arc::new(runtime),
        fast_settings(),
    )
}

#[tokio::test]
async fn pending_store_runs_every_step_once_and_becomes_ready() {
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let calls = counters();
    let orch = start(&state, succeeding(calls.clone()));
    insert(&state, "shop1").await;
    orch.wake();
    let store = wait_for_status(&state, "shop1", Status::Ready).await;
    assert_eq!(store.step, Step::Done);
    assert_eq!(store.attempts, 1);
    assert!(store.ready_at.is_some() && store.provisioning_seconds.is_some());
    assert_eq!(
        store.chart.as_ref().map(|c| c.version.as_str()),
        Some("0.2.0"),
        "the chart of the release step is recorded"
    );
    assert_eq!(
        store.urls.storefront.as_deref(),
        Some("http://shop1.example")
    );
    let counts: Vec<u32> = calls.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert_eq!(counts, vec![1, 1, 1, 1, 1, 0]);
    assert_eq!(
        actions(&state, "shop1").await,
        vec![
            "provision.namespace",
            "provision.guardrails",
            "provision.credentials",
            "provision.release",
            "provision.readiness",
            "store.ready"
        ]
    );
    orch.shutdown().await;
}

#[tokio::test]
async fn transient_failures_are_retried_then_succeed() {
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let calls = counters();
    let release_tries = Arc::new(AtomicU32::new(0));
    let tries = release_tries.clone();
    let rt = runtime(
        calls.clone(),
        Script {
            release: Some(Box::new(move || {
                if tries.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(Error::Unavailable {
                        message: "another operation is in progress".into(),
                    })
                } else {
                    Ok(())
                }
            })),
            ..Default::default()
        },
    );
    let orch = start(&state, rt);
    insert(&state, "shop2").await;
    orch.wake();
    let store = wait_for_status(&state, "shop2", Status::Ready).await;
    assert_eq!(release_tries.load(Ordering::SeqCst), 3);
    assert_eq!(
        store.attempts, 1,
        "retries within a step are not new attempts"
    );
    orch.shutdown().await;
}

#[tokio::test]
async fn permanent_failure_fails_the_store_and_retry_resumes_at_that_step() {
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let calls = counters();
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let b = broken.clone();
    let rt = runtime(
        calls.clone(),
        Script {
            release: Some(Box::new(move || {
                if b.load(Ordering::SeqCst) {
                    Err(Error::Provisioning {
                        message: "chart rejected the values: cpu \"lots\" is not a quantity".into(),
                    })
                } else {
                    Ok(())
                }
            })),
            ..Default::default()
        },
    );
    let orch = start(&state, rt);
    insert(&state, "shop3").await;
    orch.wake();
    let failed = wait_for_status(&state, "shop3", Status::Failed).await;
    assert_eq!(failed.step, Step::Release);
    assert!(
        failed.message.contains("release failed") && failed.message.contains("lots"),
        "{}",
        failed.message
    );
    assert!(
        actions(&state, "shop3")
            .await
            .ends_with(&["provision.release".to_owned(), "store.failed".to_owned()])
    );

    // Fix the cause, then retry the way the provisioner does.
    broken.store(false, Ordering::SeqCst);
    let mut again = failed.clone();
    again.status = Status::Provisioning;
    again.attempts += 1;
    state.update(&again).await.expect("retry");
    orch.wake();
    let ready = wait_for_status(&state, "shop3", Status::Ready).await;
    assert_eq!(ready.attempts, 2);
    // Namespace, guardrails and credentials ran once: the retry resumed at release.
    assert_eq!(calls[0].load(Ordering::SeqCst), 1);
    assert_eq!(calls[2].load(Ordering::SeqCst), 1);
    orch.shutdown().await;
}

#[tokio::test]
async fn transient_failures_past_the_budget_fail_with_a_hint() {
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let rt = runtime(
        counters(),
        Script {
            namespace: Some(Box::new(|| {
                Err(Error::Unavailable {
                    message: "the API server could not be reached".into(),
                })
            })),
            ..Default::default()
        },
    );
    let orch = start(&state, rt);
    insert(&state, "shop4").await;
    orch.wake();
    let failed = wait_for_status(&state, "shop4", Status::Failed).await;
    assert_eq!(failed.step, Step::Namespace);
    assert!(
        failed.message.contains("unavailable") && failed.message.contains("retry"),
        "{}",
        failed.message
    );
    orch.shutdown().await;
}

#[tokio::test]
async fn deleting_store_is_torn_down_and_its_record_dropped() {
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let calls = counters();
    let orch = start(&state, succeeding(calls.clone()));
    let mut changes = orch.subscribe();
    let mut store = insert(&state, "shop5").await;
    store.status = Status::Deleting;
    state.update(&store).await.expect("mark deleting");
    orch.wake();
    let deleted = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(StoreChange::Deleted(s)) = changes.recv().await {
                return s;
            }
        }
    })
    .await
    .expect("deleted in time");
    assert_eq!(deleted.name.as_str(), "shop5");
    assert_eq!(calls[5].load(Ordering::SeqCst), 1);
    assert_eq!(
        calls[0].load(Ordering::SeqCst),
        0,
        "a deleted store is not provisioned"
    );
    let gone = state.get(&StoreName::new("shop5").expect("valid")).await;
    assert_eq!(
        gone.expect_err("record dropped").kind(),
        ErrorKind::NotFound
    );
    assert!(
        actions(&state, "shop5")
            .await
            .contains(&"store.deleted".to_owned())
    );
    orch.shutdown().await;
}

#[tokio::test]
async fn a_failing_teardown_keeps_the_store_deleting_with_the_reason() {
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let rt = runtime(
        counters(),
        Script {
            teardown: Some(Box::new(|| {
                Err(Error::Timeout {
                    operation:
                        "namespace store-shop6 stuck in Terminating: NamespaceFinalizersRemaining"
                            .into(),
                    after: Duration::from_secs(1),
                })
            })),
            ..Default::default()
        },
    );
    let orch = start(&state, rt);
    let mut store = insert(&state, "shop6").await;
    store.status = Status::Deleting;
    state.update(&store).await.expect("mark deleting");
    orch.wake();
    let name = StoreName::new("shop6").expect("valid");
    let mut seen = None;
    for _ in 0..200 {
        let s = state.get(&name).await.expect("still there");
        if s.message.contains("NamespaceFinalizersRemaining") {
            seen = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let s = seen.expect("the reason is shown");
    assert_eq!(s.status, Status::Deleting);
    orch.shutdown().await;
}

#[tokio::test]
async fn two_workers_sharing_a_state_store_provision_each_store_once() {
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let calls = counters();
    let a = start(&state, succeeding(calls.clone()));
    let b = start(&state, succeeding(calls.clone()));
    for i in 0..12 {
        insert(&state, &format!("twin{i}")).await;
    }
    a.wake();
    b.wake();
    for i in 0..12 {
        wait_for_status(&state, &format!("twin{i}"), Status::Ready).await;
    }
    assert_eq!(calls[0].load(Ordering::SeqCst), 12);
    assert_eq!(calls[3].load(Ordering::SeqCst), 12);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn work_stopped_by_shutdown_is_resumed_by_the_next_worker() {
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let slow = runtime(
        counters(),
        Script {
            readiness: Some(Box::new(|| {
                Err(Error::Unavailable {
                    message: "still starting".into(),
                })
            })),
            ..Default::default()
        },
    );
    let mut settings = fast_settings();
    settings.retry.max_attempts = 1000;
    let first = Orchestrator::start(
        state.clone(),
        Arc::new(StateSink::new(state.clone())),
        Arc::new(slow),
        settings,
    );
    insert(&state, "shop7").await;
    first.wake();
    let name = StoreName::new("shop7").expect("valid");
    for _ in 0..200 {
        if state.get(&name).await.expect("exists").step == Step::Readiness {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.shutdown().await;
    let stopped = state.get(&name).await.expect("exists");
    assert_eq!(stopped.status, Status::Provisioning);
    assert_eq!(stopped.step, Step::Readiness);

    let calls = counters();
    let second = start(&state, succeeding(calls.clone()));
    second.wake();
    wait_for_status(&state, "shop7", Status::Ready).await;
    assert_eq!(
        calls[0].load(Ordering::SeqCst),
        0,
        "earlier steps are not run again"
    );
    assert_eq!(calls[4].load(Ordering::SeqCst), 1);
    second.shutdown().await;
}

#[tokio::test]
async fn resync_reapplies_guardrails_of_ready_stores_only() {
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let calls = counters();
    let mut settings = fast_settings();
    settings.resync_interval = Duration::from_millis(100);
    let orch = Orchestrator::start(
        state.clone(),
        Arc::new(StateSink::new(state.clone())),
        Arc::new(succeeding(calls.clone())),
        settings,
    );
    insert(&state, "ready1").await;
    orch.wake();
    wait_for_status(&state, "ready1", Status::Ready).await;
    let mut failed = insert(&state, "failed1").await;
    failed.status = Status::Failed;
    state.update(&failed).await.expect("mark failed");
    let before = calls[1].load(Ordering::SeqCst);
    // Wait for two more rounds (bounded), not for a fixed time.
    let started = std::time::Instant::now();
    while calls[1].load(Ordering::SeqCst) < before + 2
        && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = calls[1].load(Ordering::SeqCst);
    // The Ready store was re-applied on several rounds; the Failed one never ran a step
    // (the first guardrails call was the Ready store's provisioning).
    assert!(
        after >= before + 2,
        "guardrails re-applied {} times",
        after - before
    );
    assert_eq!(
        calls[3].load(Ordering::SeqCst),
        1,
        "resync never touches the release"
    );
    let failed_now = state.get(&failed.name).await.expect("exists");
    assert_eq!(failed_now.status, Status::Failed);
    assert_eq!(
        failed_now.version,
        failed.version + 1,
        "untouched since it was failed"
    );
    orch.shutdown().await;
}

#[tokio::test]
async fn an_updating_store_runs_from_guardrails_then_settles_its_quota_and_keeps_ready_at() {
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let calls = counters();
    let orch = start(&state, succeeding(calls.clone()));
    insert(&state, "grow1").await;
    orch.wake();
    let ready = wait_for_status(&state, "grow1", Status::Ready).await;
    orch.shutdown().await;

    // A plan change as the provisioner records it; a runtime that notes how guardrails
    // are asked for (the status tells it to keep the larger quota or settle).
    let mut updating = ready.clone();
    updating.plan = crate::store::Plan::Large;
    updating.status = Status::Updating;
    updating.step = Step::Guardrails;
    let updating = state.update(&updating).await.expect("mark updating");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut rt = MockStoreRuntime::new();
    let noted = seen.clone();
    rt.expect_guardrails().returning(move |s| {
        noted.lock().expect("lock").push(("guardrails", s.status));
        Ok(())
    });
    let noted = seen.clone();
    rt.expect_release().returning(move |s| {
        noted.lock().expect("lock").push(("release", s.status));
        Ok(())
    });
    rt.expect_credentials().returning(|_| Ok(()));
    rt.expect_readiness().returning(|_, _| Ok(()));
    rt.expect_chart().returning(|_| None);
    rt.expect_namespace().never();
    let orch = start(&state, rt);
    orch.wake();
    let done = wait_for_status(&state, "grow1", Status::Ready).await;
    assert_eq!(done.plan, crate::store::Plan::Large);
    assert_eq!(done.step, Step::Done);
    assert_eq!(
        done.ready_at, ready.ready_at,
        "readyAt stays when it first was Ready"
    );
    assert_eq!(done.provisioning_seconds, ready.provisioning_seconds);
    assert_eq!(done.message, "ready on plan large");
    assert!(done.version > updating.version);
    assert_eq!(
        *seen.lock().expect("lock"),
        vec![
            ("guardrails", Status::Updating),
            ("release", Status::Updating),
            ("guardrails", Status::Ready),
        ],
        "the quota grows first and settles to the plan last"
    );
    let trail = actions(&state, "grow1").await;
    assert_eq!(
        trail[trail.len() - 5..],
        [
            "provision.guardrails",
            "provision.credentials",
            "provision.release",
            "provision.readiness",
            "store.ready"
        ]
    );
    orch.shutdown().await;
}

/// A health source whose unavailable workloads the test sets.
struct FakeHealth {
    bump: tokio::sync::watch::Sender<u64>,
    down: std::sync::Mutex<std::collections::BTreeMap<String, Vec<Unavailable>>>,
}

impl FakeHealth {
    fn set(&self, store: &str, down: bool) {
        if let Ok(mut map) = self.down.lock() {
            if down {
                map.insert(
                    store.to_owned(),
                    vec![Unavailable {
                        kind: "StatefulSet",
                        name: format!("{store}-mariadb"),
                        what: "0/1 replicas ready".to_owned(),
                    }],
                );
            } else {
                map.remove(store);
            }
        }
        self.bump.send_modify(|g| *g += 1);
    }
}

#[async_trait::async_trait]
impl HealthSource for FakeHealth {
    fn changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.bump.subscribe()
    }
    async fn synced(&self) {}
    fn unavailable(&self) -> std::collections::BTreeMap<String, Vec<Unavailable>> {
        self.down.lock().map(|m| m.clone()).unwrap_or_default()
    }
    async fn last_event(&self, _: &str, _: &str) -> Option<String> {
        Some("Unhealthy".to_owned())
    }
}

#[tokio::test]
async fn a_ready_store_turns_degraded_after_the_grace_and_back_and_a_suspended_one_never() {
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let mut ready = insert(&state, "shop1").await;
    ready.mark_ready();
    state.update(&ready).await.expect("ready");
    let mut suspended = insert(&state, "shop2").await;
    suspended.mark_ready();
    suspended.suspended = true;
    state.update(&suspended).await.expect("suspended");
    let orch = Orchestrator::start(
        state.clone(),
        Arc::new(StateSink::new(state.clone())),
        Arc::new(MockStoreRuntime::new()),
        fast_settings(),
    );
    let (bump, _) = tokio::sync::watch::channel(0);
    let health = Arc::new(FakeHealth {
        bump,
        down: Default::default(),
    });
    orch.watch_health(health.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A blip shorter than the grace (300 ms) is not a degradation.
    health.set("shop1", true);
    tokio::time::sleep(Duration::from_millis(100)).await;
    health.set("shop1", false);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let name = StoreName::new("shop1").expect("valid");
    assert_eq!(state.get(&name).await.expect("get").status, Status::Ready);
    // Down for longer: Degraded, naming the workload and its last event.
    health.set("shop1", true);
    health.set("shop2", true);
    let degraded = wait_for_status(&state, "shop1", Status::Degraded).await;
    assert!(
        degraded
            .message
            .contains("StatefulSet shop1-mariadb: 0/1 replicas ready; last event: Unhealthy"),
        "{}",
        degraded.message
    );
    let shop2 = StoreName::new("shop2").expect("valid");
    assert_eq!(
        state.get(&shop2).await.expect("get").status,
        Status::Ready,
        "a suspended store is not degraded"
    );
    // Back: Ready, audited.
    health.set("shop1", false);
    let recovered = wait_for_status(&state, "shop1", Status::Ready).await;
    assert!(
        recovered.message.contains("recovered"),
        "{}",
        recovered.message
    );
    let actions = actions(&state, "shop1").await;
    assert!(
        actions.contains(&"store.degraded".to_owned()),
        "{actions:?}"
    );
    orch.shutdown().await;
}

/// A Ready store of `name`, then marked as the provisioner marks an upgrade.
async fn upgrading(state: &Arc<dyn StateStore>, name: &str) -> Store {
    let orch = start(state, succeeding(counters()));
    insert(state, name).await;
    orch.wake();
    let ready = wait_for_status(state, name, Status::Ready).await;
    orch.shutdown().await;
    let mut upgrading = ready;
    upgrading.status = Status::Updating;
    upgrading.step = Step::Release;
    upgrading.rollback_to = Some(1);
    state.update(&upgrading).await.expect("mark upgrading")
}

/// A runtime whose release is refused (the new chart is bad) and whose rollback does
/// `rollback`.
fn refusing_release(rollback: StepFn) -> MockStoreRuntime {
    let mut rt = MockStoreRuntime::new();
    rt.expect_release().returning(|_| {
        Err(Error::Provisioning {
            message: "release rejected by the cluster".to_owned(),
        })
    });
    rt.expect_roll_back().returning(move |_, revision, _| {
        assert_eq!(
            revision, 1,
            "back to the revision recorded with the upgrade"
        );
        rollback().map(|()| {
            Some(crate::store::StoreChart {
                version: "0.1.0".to_owned(),
                app_version: "6.8".to_owned(),
                outdated: false,
            })
        })
    });
    rt.expect_guardrails().never();
    rt
}

#[tokio::test]
async fn a_failed_upgrade_is_rolled_back_and_the_store_is_ready_on_its_previous_chart() {
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    upgrading(&state, "up1").await;
    let orch = start(&state, refusing_release(Box::new(|| Ok(()))));
    orch.wake();
    let done = wait_for_status(&state, "up1", Status::Ready).await;
    orch.shutdown().await;
    assert_eq!(done.rollback_to, None, "the upgrade is over");
    assert_eq!(
        done.chart.as_ref().map(|c| c.version.as_str()),
        Some("0.1.0"),
        "the chart it runs again"
    );
    assert!(
        done.message.contains("release rejected by the cluster")
            && done.message.contains("rolled back to revision 1"),
        "{}",
        done.message
    );
    let trail = actions(&state, "up1").await;
    assert_eq!(
        trail[trail.len() - 3..],
        ["provision.release", "store.upgrade", "store.ready"],
        "{trail:?}"
    );

    // The rollback fails too: Failed, both causes named, the upgrade kept for a retry.
    upgrading(&state, "up2").await;
    let orch = start(
        &state,
        refusing_release(Box::new(|| {
            Err(Error::Provisioning {
                message: "the rollback was refused".to_owned(),
            })
        })),
    );
    orch.wake();
    let failed = wait_for_status(&state, "up2", Status::Failed).await;
    orch.shutdown().await;
    assert!(
        failed
            .message
            .contains("the rollback failed too: the rollback was refused"),
        "{}",
        failed.message
    );
    assert_eq!(
        failed.rollback_to,
        Some(1),
        "a retry runs the upgrade again"
    );
}
