//! Day-2 operations on a fleet, timed on the local cluster: every store moved to a new
//! chart version with the worker's concurrency at 1 and at 4, and one store suspended and
//! resumed.
//!
//! ```text
//!  N stores created (the build's chart) ─▶ all Ready
//!  for c in URUMI_BENCH_FLEET_CONCURRENCY (1,4):
//!     a provisioner bundling the chart at version 9.<round>.0 (helm package of a copy),
//!     orchestrator concurrency c ─▶ upgrade every store at once (they queue; c at a time)
//!     ─▶ the change feed: each store Ready on the new chart ─▶ all done: seconds, stores/min,
//!        p50/p95 from the request to Ready
//!  suspend one store ─▶ Ready (suspended); resume ─▶ Ready: seconds each, 3 times
//!  ─▶ target/bench/fleet.md
//! ```
//!
//! Run: `make bench`, or `eval "$(tests/cluster/up)"` then `cargo bench -p urumi-core --bench
//! fleet`. `URUMI_BENCH_FLEET` (stores, default 20). Pods never really run (KWOK marks them
//! Ready): this measures Urumi, helm and the control plane, not WordPress starting.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/lifecycle_support/chart.rs"]
mod chart;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use urumi_core::engine::{BundledChart, Engines, WooCommerce};
use urumi_core::limits::Limits;
use urumi_core::provisioner::CreateOptions;
use urumi_core::state::StateStore;
use urumi_core::store::{Status, TenantId};
use urumi_core::{
    Caller, CreateStore, KubeProvisioner, Provisioner, ProvisionerSettings, RequestOptions,
};

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

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len().max(1)) - 1)
        .copied()
        .unwrap_or(f64::NAN)
}

/// The store chart packaged with its version set to `version`, held for the whole run.
fn chart_at(version: &str) -> &'static [u8] {
    let dir = tempfile::tempdir().expect("temporary directory");
    let tgz = chart::packaged_store_chart(dir.path(), version, None);
    Box::leak(std::fs::read(tgz).expect("packaged").into_boxed_slice())
}

async fn provisioner(
    client: &kube::Client,
    state: &Arc<dyn StateStore>,
    concurrency: usize,
    chart: Option<&'static [u8]>,
) -> KubeProvisioner {
    let mut builder =
        KubeProvisioner::builder(client.clone(), state.clone()).settings(settings(concurrency));
    if let Some(bytes) = chart {
        let mut engines = Engines::empty();
        engines.register(Arc::new(
            WooCommerce::new().with_chart(BundledChart::new("woocommerce-store", bytes)),
        ));
        builder = builder.engines(engines);
    }
    builder.build().expect("provisioner")
}

/// Waits on the change feed until every one of `names` is Ready with `chart` (if given)
/// and not Updating; each store's seconds from `started`.
async fn all_ready(
    p: &KubeProvisioner,
    caller: &Caller,
    names: &[String],
    chart: Option<&str>,
    started: Instant,
    timeout: Duration,
) -> Vec<f64> {
    let mut pending: std::collections::BTreeSet<String> = names.iter().cloned().collect();
    let mut took = Vec::new();
    for name in names {
        let s = p.get(caller, name).await.expect("get");
        let on_chart = chart.is_none_or(|v| s.chart.as_ref().is_some_and(|c| c.version == v));
        if s.status == Status::Ready && on_chart {
            pending.remove(name);
            took.push(started.elapsed().as_secs_f64());
        }
    }
    let mut feed = p.changes(caller, None);
    let deadline = tokio::time::Instant::now() + timeout;
    while !pending.is_empty() {
        let change = tokio::time::timeout_at(deadline, feed.next())
            .await
            .unwrap_or_else(|_| panic!("not all Ready in time: {pending:?}"))
            .expect("feed open")
            .expect("feed");
        let s = change.store;
        let on_chart = chart.is_none_or(|v| s.chart.as_ref().is_some_and(|c| c.version == v));
        assert_ne!(s.status, Status::Failed, "{}: {}", s.name, s.message);
        if s.status == Status::Ready && on_chart && pending.remove(s.name.as_str()) {
            took.push(started.elapsed().as_secs_f64());
        }
    }
    took
}

fn main() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!(
            "fleet bench: KUBECONFIG is not set. Start the local cluster first:\n  eval \"$(tests/cluster/up)\""
        );
        std::process::exit(1);
    }
    let stores: usize = std::env::var("URUMI_BENCH_FLEET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let levels = [1usize, 4];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let report = rt.block_on(async move {
        let client = kube::Client::try_default().await.expect("cluster client");
        let dir = tempfile::tempdir().expect("state dir");
        let url = format!("sqlite://{}", dir.path().join("fleet.db").display());
        let state = urumi_core::state::open(&url).await.expect("state");
        let caller = Caller::admin("fleet-bench", TenantId::new("bench").expect("tenant"));
        let prefix = format!("fleet-{:04x}", rand::random::<u16>());
        let names: Vec<String> = (0..stores).map(|i| format!("{prefix}-{i:02}")).collect();

        let p = provisioner(&client, &state, 8, None).await;
        let started = Instant::now();
        for name in &names {
            p.create(&caller, CreateStore::named(name), CreateOptions::default())
                .await
                .expect("create");
        }
        all_ready(&p, &caller, &names, None, started, Duration::from_secs(900)).await;
        eprintln!(
            "fleet: {stores} stores Ready in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        p.shutdown().await;
        drop(p);

        let mut rows = Vec::new();
        for (round, c) in levels.iter().enumerate() {
            let version = format!("9.{}.0", round + 1);
            let p = provisioner(&client, &state, *c, Some(chart_at(&version))).await;
            let started = Instant::now();
            for name in &names {
                p.upgrade(&caller, name, RequestOptions::default())
                    .await
                    .expect("upgrade");
            }
            let took = all_ready(
                &p,
                &caller,
                &names,
                Some(&version),
                started,
                Duration::from_secs(1800),
            )
            .await;
            let total = started.elapsed().as_secs_f64();
            eprintln!("fleet: concurrency {c}: {stores} stores on chart {version} in {total:.1} s");
            rows.push((*c, version, total, took));
            p.shutdown().await;
        }

        let p = provisioner(&client, &state, 4, Some(chart_at("9.2.0"))).await;
        let mut suspend = Vec::new();
        let mut resume = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            p.suspend(&caller, &names[0], RequestOptions::default())
                .await
                .expect("suspend");
            p.wait(&caller, &names[0], Status::Ready, Duration::from_secs(300))
                .await
                .expect("suspended");
            suspend.push(started.elapsed().as_secs_f64());
            let started = Instant::now();
            p.resume(&caller, &names[0], RequestOptions::default())
                .await
                .expect("resume");
            p.wait(&caller, &names[0], Status::Ready, Duration::from_secs(300))
                .await
                .expect("resumed");
            resume.push(started.elapsed().as_secs_f64());
        }
        for name in &names {
            p.delete(&caller, name, RequestOptions::default())
                .await
                .expect("delete");
        }
        for name in &names {
            let _ = p
                .wait_deleted(&caller, name, Duration::from_secs(600))
                .await;
        }
        p.shutdown().await;

        let mut md = String::new();
        md.push_str(&format!(
            "# Fleet: {stores} stores moved to a new chart version (upgrade), and suspend/resume\n\n\
             | concurrency | all on the new chart, s | stores/min | p50 / p95 s request → Ready |\n\
             |---:|---:|---:|---:|\n"
        ));
        for (c, _, total, took) in &rows {
            md.push_str(&format!(
                "| {c} | {total:.1} | {:.1} | {:.1} / {:.1} |\n",
                stores as f64 / total * 60.0,
                percentile(took, 50.0),
                percentile(took, 95.0)
            ));
        }
        if let [(_, _, one, _), (_, _, four, _)] = rows.as_slice() {
            md.push_str(&format!(
                "\nRatio concurrency 4 / 1 of the time to move the fleet: {:.2}\n",
                four / one
            ));
        }
        let list = |v: &[f64]| {
            v.iter()
                .map(|s| format!("{s:.1}"))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        md.push_str(&format!(
            "\nOne store: suspend → Ready (no pod) {} s; resume → Ready {} s (3 runs).\n",
            list(&suspend),
            list(&resume)
        ));
        md
    });
    println!("{report}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench/fleet.md");
    if let Some(dir) = std::path::Path::new(path).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(path, &report) {
        eprintln!("fleet bench: could not write {path}: {e}");
    }
}
