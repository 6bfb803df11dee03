//! Store lifecycle throughput on the local cluster: how long a store takes from create to
//! Ready, where that time goes, and how throughput scales with the orchestrator's
//! concurrency.
//!
//! ```text
//!  for concurrency in 1, 4, 8:   (SQLite state in a temp dir, a fresh KubeProvisioner)
//!    create 20 stores at once ─▶ every change of the feed timed as it arrives
//!      per store: create→Ready (queueing included), and each step: from its
//!      "<step>: running" to the next one's (readiness: to Ready)
//!    delete the 20 ─▶ delete→gone per store, and the whole batch
//!  ─▶ table: p50/p95 create→Ready, per-step p50/p95, stores/minute, ratio to concurrency 1
//! ```
//!
//! Run: `eval "$(tests/cluster/up)"` then `cargo bench -p urumi-core --bench lifecycle`.
//! Without KUBECONFIG it exits 1 saying so. `URUMI_BENCH_STORES` changes the 20;
//! `URUMI_BENCH_CONCURRENCY` (e.g. `1,4`) the levels. Pods never really run (KWOK marks
//! them Ready), so this measures urumi, helm and the control plane, not WordPress.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::Rng;
use urumi_core::limits::Limits;
use urumi_core::provisioner::CreateOptions;
use urumi_core::state::ChangeKind;
use urumi_core::store::{Status, Step, TenantId};
use urumi_core::{
    Caller, CreateStore, KubeProvisioner, Provisioner, ProvisionerSettings, RequestOptions,
};

const STEPS: [Step; 5] = [
    Step::Namespace,
    Step::Guardrails,
    Step::Credentials,
    Step::Release,
    Step::Readiness,
];
const TIMEOUT: Duration = Duration::from_secs(300);

/// When each thing happened to one store, as broadcast.
#[derive(Debug, Default)]
struct Timeline {
    created: Option<Instant>,
    step_started: HashMap<Step, Instant>,
    ready: Option<Instant>,
    delete_requested: Option<Instant>,
    gone: Option<Instant>,
    failed: Option<String>,
}

#[derive(Debug)]
struct Round {
    concurrency: usize,
    create_to_ready: Vec<f64>,
    steps: HashMap<Step, Vec<f64>>,
    stores_per_minute: f64,
    batch_ready_secs: f64,
    delete_to_gone: Vec<f64>,
    batch_delete_secs: f64,
}

fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn settings(concurrency: usize) -> ProvisionerSettings {
    let mut s = ProvisionerSettings {
        limits: Limits::unlimited(),
        ..ProvisionerSettings::default()
    };
    s.orchestrator.concurrency = concurrency;
    s.orchestrator.poll_interval = Duration::from_millis(500);
    s.orchestrator.resync_interval = Duration::ZERO;
    s
}

async fn round(client: &kube::Client, concurrency: usize, stores: usize) -> Round {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("urumi.db").display());
    let state = urumi_core::state::open(&url).await.expect("SQLite state");
    let p: KubeProvisioner = KubeProvisioner::builder(client.clone(), state)
        .settings(settings(concurrency))
        .build()
        .expect("provisioner");
    let caller = Caller::admin("bench", TenantId::new("bench").expect("tenant"));
    let tag: u32 = rand::rng().random_range(0..0x10000);
    let names: Vec<String> = (0..stores)
        .map(|i| format!("bench-c{concurrency}-{tag:04x}-{i:02}"))
        .collect();
    let mut timelines: HashMap<String, Timeline> = names
        .iter()
        .map(|n| (n.clone(), Timeline::default()))
        .collect();
    let mut changes = p.changes(&caller, None);

    // Create them all at once; the orchestrator works `concurrency` at a time.
    let started = Instant::now();
    for name in &names {
        let t = Instant::now();
        p.create(&caller, CreateStore::named(name), CreateOptions::default())
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
        timelines.get_mut(name).expect("known").created = Some(t);
    }
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut remaining = stores;
    while remaining > 0 {
        let change = tokio::time::timeout_at(deadline, futures::StreamExt::next(&mut changes))
            .await
            .unwrap_or_else(|_| panic!("{remaining} stores not Ready after {TIMEOUT:?}"))
            .expect("feed open")
            .expect("changes");
        let now = Instant::now();
        let s = &change.store;
        let Some(t) = timelines.get_mut(s.name.as_str()) else {
            continue;
        };
        match s.status {
            Status::Provisioning if s.message.ends_with(": running") => {
                t.step_started.entry(s.step).or_insert(now);
            }
            Status::Ready if t.ready.is_none() => {
                t.ready = Some(now);
                remaining -= 1;
            }
            Status::Failed if t.failed.is_none() => {
                t.failed = Some(s.message.clone());
                remaining -= 1;
            }
            _ => {}
        }
    }
    let batch_ready_secs = started.elapsed().as_secs_f64();
    for (name, t) in &timelines {
        if let Some(why) = &t.failed {
            panic!("{name} failed: {why}");
        }
    }

    // Delete them all at once.
    let deleting = Instant::now();
    for name in &names {
        let t = Instant::now();
        p.delete(&caller, name, RequestOptions::default())
            .await
            .unwrap_or_else(|e| panic!("delete {name}: {e}"));
        timelines.get_mut(name).expect("known").delete_requested = Some(t);
    }
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut remaining = stores;
    while remaining > 0 {
        let change = tokio::time::timeout_at(deadline, futures::StreamExt::next(&mut changes))
            .await
            .unwrap_or_else(|_| panic!("{remaining} stores not deleted after {TIMEOUT:?}"))
            .expect("feed open")
            .expect("changes");
        if change.kind == ChangeKind::Deleted
            && let Some(t) = timelines.get_mut(change.store.name.as_str())
            && t.gone.is_none()
        {
            t.gone = Some(Instant::now());
            remaining -= 1;
        }
    }
    let batch_delete_secs = deleting.elapsed().as_secs_f64();
    p.shutdown().await;

    let secs = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
        (Some(a), Some(b)) => Some(b.saturating_duration_since(a).as_secs_f64()),
        _ => None,
    };
    let mut steps: HashMap<Step, Vec<f64>> = HashMap::new();
    for t in timelines.values() {
        for (i, step) in STEPS.iter().enumerate() {
            let end = match STEPS.get(i + 1) {
                Some(next) => t.step_started.get(next).copied(),
                None => t.ready,
            };
            if let Some(d) = secs(t.step_started.get(step).copied(), end) {
                steps.entry(*step).or_default().push(d);
            }
        }
    }
    Round {
        concurrency,
        create_to_ready: timelines
            .values()
            .filter_map(|t| secs(t.created, t.ready))
            .collect(),
        steps,
        stores_per_minute: stores as f64 / batch_ready_secs * 60.0,
        batch_ready_secs,
        delete_to_gone: timelines
            .values()
            .filter_map(|t| secs(t.delete_requested, t.gone))
            .collect(),
        batch_delete_secs,
    }
}

fn main() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!(
            "lifecycle bench: KUBECONFIG is not set. Start the local cluster first:\n  \
             eval \"$(tests/cluster/up)\"   (from the repository root)"
        );
        std::process::exit(1);
    }
    let stores: usize = std::env::var("URUMI_BENCH_STORES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let levels: Vec<usize> = std::env::var("URUMI_BENCH_CONCURRENCY")
        .ok()
        .map(|s| s.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 4, 8]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let client = kube::Client::try_default()
            .await
            .expect("a client from KUBECONFIG (is tests/cluster/up running?)");
        let mut rounds = Vec::new();
        for c in levels {
            eprintln!("concurrency {c}: {stores} stores …");
            let r = round(&client, c, stores).await;
            eprintln!(
                "concurrency {c}: {stores} Ready in {:.1} s, deleted in {:.1} s",
                r.batch_ready_secs, r.batch_delete_secs
            );
            rounds.push(r);
        }
        report(stores, &rounds);
    });
}

fn report(stores: usize, rounds: &[Round]) {
    let base = rounds
        .iter()
        .find(|r| r.concurrency == 1)
        .map(|r| r.stores_per_minute);
    println!();
    println!(
        "{stores} stores per round; times in seconds (p50 / p95); create→Ready includes \
         waiting for a worker"
    );
    println!(
        "{:>4} | {:>15} | {:>13} | {:>13} | {:>13} | {:>13} | {:>13} | {:>9} | {:>6} | {:>15} | {:>8}",
        "conc",
        "create→Ready",
        "namespace",
        "guardrails",
        "credentials",
        "release",
        "readiness",
        "stores/min",
        "× c=1",
        "delete→gone",
        "all gone"
    );
    let pair = |v: &[f64]| format!("{:.2} / {:.2}", percentile(v, 50.0), percentile(v, 95.0));
    for r in rounds {
        let step = |s: Step| pair(r.steps.get(&s).map(Vec::as_slice).unwrap_or(&[]));
        println!(
            "{:>4} | {:>15} | {:>13} | {:>13} | {:>13} | {:>13} | {:>13} | {:>10.1} | {:>6} | {:>15} | {:>8.1}",
            r.concurrency,
            pair(&r.create_to_ready),
            step(Step::Namespace),
            step(Step::Guardrails),
            step(Step::Credentials),
            step(Step::Release),
            step(Step::Readiness),
            r.stores_per_minute,
            base.map_or("-".to_owned(), |b| format!(
                "{:.2}",
                r.stores_per_minute / b
            )),
            pair(&r.delete_to_gone),
            r.batch_delete_secs,
        );
    }
}
