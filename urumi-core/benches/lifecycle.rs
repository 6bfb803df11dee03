//! Urumi against the usual helm loop, side by side in one run on the local cluster: how
//! fast stores come up and go away, and what each way costs in CPU and API requests per store.
//!
//! ```text
//!  the loop (bash, 1 and 3 workers), per store:              Urumi (release build, in process;
//!    kubectl create namespace                                 SQLite state; concurrency 1, 4, 8;
//!                                                             the driver now, as before
//!                                                             (`helm history`, OpenAPI check),
//!                                                             and with the resident helm):
//!    kubectl apply  quota + limits + default-deny (Urumi's      create N at once ─▶ change feed
//!                   own builders, so the objects are equal)     timed per store and per step
//!    kubectl create secret (5 keys, openssl rand)             delete N at once ─▶ feed: Deleted
//!    helm upgrade --install --wait --wait-for-jobs (the bundled chart, Urumi's values)
//!    delete: helm uninstall --wait; kubectl delete namespace --wait
//!
//!  around every create and delete phase:
//!    /proc/self        utime+stime (Urumi in process) and cutime+cstime (its helm children; the
//!                      loop's bash, kubectl, helm and openssl)
//!    /proc/<pid>       kube-apiserver, etcd, kube-controller-manager, kube-scheduler, kwok
//!                      (pids from the cluster's state dir: the floor both ways share)
//!    /metrics          apiserver_request_total, summed (every client's requests)
//!  helm's anatomy (N_A samples): `helm version` (process start), `helm template` (+ chart load
//!    and render), `helm upgrade --install` without --wait (+ API calls, release record); the
//!    loop's helm with --wait minus the last = waiting
//!  ─▶ target/bench/lifecycle.md and .json: stores/min, p50/p95 create→Ready, delete time,
//!     CPU-s per store by process, API requests per store, ratios Urumi / loop; Urumi's steps
//! ```
//!
//! Run: `make bench`, or `eval "$(tests/cluster/up)"` then `cargo bench -p urumi-core --bench
//! lifecycle`. Without KUBECONFIG it exits 1 saying so. `URUMI_BENCH_STORES` (default 30),
//! `URUMI_BENCH_CONCURRENCY` (`1,4,8`), `URUMI_BENCH_LOOP` (workers, `1,3`),
//! `URUMI_BENCH_ANATOMY` (samples, 5); `URUMI_BENCH_HELM_HISTORY=0` skips the rounds of the
//! driver before (histories read by `helm history` processes, helm's OpenAPI check on),
//! `URUMI_BENCH_RESIDENT=0` those of the resident helm (`urumi-helm-resident`, whose CPU is
//! read from its own /proc entry while it lives). Pods never really run (KWOK marks them Ready), so this
//! measures Urumi, helm, kubectl and the control plane, not WordPress. CPU is read from /proc
//! while nothing else should run: a busy machine inflates times, not CPU-seconds.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde_json::{Value, json};
use urumi_core::engine::{Engine, EngineSettings, WooCommerce};
use urumi_core::guardrails::{GuardrailsConfig, limit_range, network_policies, resource_quota};
use urumi_core::limits::Limits;
use urumi_core::provisioner::CreateOptions;
use urumi_core::state::ChangeKind;
use urumi_core::store::{Plans, Status, Step, StoreName, StoreSpec, TenantId};
use urumi_core::{
    Caller, CreateStore, KubeProvisioner, Provisioner, ProvisionerSettings, RequestOptions,
};

// ── CPU and API requests ────────────────────────────────────────────────────────────────────

/// The control plane's processes, as `tests/cluster/up` recorded them.
const PLANE: [&str; 5] = [
    "kube-apiserver",
    "etcd",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
];

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// (utime + stime, cutime + cstime) of `pid` ("self" for this process), in clock ticks.
fn proc_ticks(pid: &str) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name in parentheses: state is field 3; utime is 14.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<u64> = rest
        .split(' ')
        .skip(11)
        .take(4)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    Some((f[0] + f[1], f[2] + f[3]))
}

fn plane_pids() -> Vec<(&'static str, String)> {
    let kubeconfig = PathBuf::from(std::env::var_os("KUBECONFIG").expect("KUBECONFIG"));
    let dir = kubeconfig.parent().expect("state dir").join("pids");
    PLANE
        .iter()
        .filter_map(|name| {
            let pid = std::fs::read_to_string(dir.join(name)).ok()?;
            Some((*name, pid.trim().to_owned()))
        })
        .collect()
}

/// Every request the API server has answered so far (`apiserver_request_total`, summed).
fn api_requests() -> f64 {
    let out = Command::new("kubectl")
        .args(["get", "--raw", "/metrics"])
        .output()
        .expect("kubectl get --raw /metrics");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[derive(Debug, Clone)]
struct Snapshot {
    own: u64,
    children: u64,
    plane: BTreeMap<&'static str, u64>,
    requests: f64,
}

impl Snapshot {
    /// Before a phase: the API requests first, so kubectl's own CPU falls outside.
    fn before(pids: &[(&'static str, String)]) -> Snapshot {
        let requests = api_requests();
        let mut s = Snapshot::ticks(pids);
        s.requests = requests;
        s
    }

    /// After a phase: the ticks first.
    fn after(pids: &[(&'static str, String)]) -> Snapshot {
        let mut s = Snapshot::ticks(pids);
        s.requests = api_requests();
        s
    }

    fn ticks(pids: &[(&'static str, String)]) -> Snapshot {
        let (own, children) = proc_ticks("self").expect("/proc/self/stat");
        let plane = pids
            .iter()
            .map(|(name, pid)| (*name, proc_ticks(pid).map_or(0, |(t, _)| t)))
            .collect();
        Snapshot {
            own,
            children,
            plane,
            requests: 0.0,
        }
    }
}

/// What one phase cost, per store: CPU-seconds by process and API requests.
#[derive(Debug, Clone, Default)]
struct Cost {
    /// Urumi in this process (0 for the loop).
    own: f64,
    /// Child processes: Urumi's helm; the loop's bash, kubectl, helm, openssl.
    children: f64,
    plane: BTreeMap<&'static str, f64>,
    requests: f64,
}

impl Cost {
    fn between(a: &Snapshot, b: &Snapshot, stores: usize, tick: f64) -> Cost {
        let per = |d: u64| d as f64 / tick / stores as f64;
        Cost {
            own: per(b.own - a.own),
            children: per(b.children - a.children),
            plane: b
                .plane
                .iter()
                .map(|(k, v)| {
                    (
                        *k,
                        per(v.saturating_sub(a.plane.get(k).copied().unwrap_or(0))),
                    )
                })
                .collect(),
            requests: (b.requests - a.requests) / stores as f64,
        }
    }

    /// The cost of the way itself (Urumi and its helm; the loop's processes).
    fn way(&self) -> f64 {
        self.own + self.children
    }

    fn plane_total(&self) -> f64 {
        self.plane.values().sum()
    }

    fn json(&self) -> Value {
        json!({
            "inProcessCpuSecs": self.own,
            "childProcessesCpuSecs": self.children,
            "controlPlaneCpuSecs": self.plane,
            "apiRequests": self.requests,
        })
    }
}

// ── Urumi ───────────────────────────────────────────────────────────────────────────────────

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
    history: History,
    concurrency: usize,
    create_cost: Cost,
    delete_cost: Cost,
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

/// Which helm driver Urumi runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum History {
    /// The provisioner's default: histories from helm's release Secrets through the API,
    /// no client-side OpenAPI check.
    Records,
    /// The driver before: a `helm history` process per read, helm's OpenAPI check on.
    Helm,
    /// As `Records`, with installs, upgrades and uninstalls answered by the resident helm
    /// (`helmResident`): one long-lived process instead of a helm process per call.
    Resident,
}

impl History {
    fn label(self) -> &'static str {
        match self {
            History::Records => "",
            History::Helm => " (driver before)",
            History::Resident => " (resident helm)",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            History::Records => {
                "now: a helm process per install/uninstall, release records, no OpenAPI check"
            }
            History::Helm => "before: helm history, OpenAPI check",
            History::Resident => {
                "resident: one urumi-helm-resident process, release records, no OpenAPI check"
            }
        }
    }
}

/// CPU ticks (user + system) of the live process `pid`, and of its reaped children.
fn live_ticks(pid: Option<u32>) -> u64 {
    pid.and_then(|p| proc_ticks(&p.to_string()))
        .map_or(0, |(own, children)| own + children)
}

async fn round(
    client: &kube::Client,
    history: History,
    concurrency: usize,
    stores: usize,
    pids: &[(&'static str, String)],
    tick: f64,
) -> Round {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("urumi.db").display());
    let state = urumi_core::state::open(&url).await.expect("SQLite state");
    let mut builder =
        KubeProvisioner::builder(client.clone(), state).settings(settings(concurrency));
    let mut resident = None;
    match history {
        History::Records => {}
        History::Helm => {
            builder = builder.helm(std::sync::Arc::new(
                urumi_core::helm::HelmCli::builder()
                    .timeout(Duration::from_secs(300))
                    .build(),
            ));
        }
        History::Resident => {
            // As the provisioner builds it with `helmResident`; built here to read the
            // process's CPU while it lives (a child's CPU reaches /proc/self only when it
            // is reaped).
            let binary = urumi_core::helm::find_in_path("urumi-helm-resident")
                .expect("urumi-helm-resident on PATH (tests/cluster/up puts it there)");
            let cli = urumi_core::helm::HelmCli::builder()
                .timeout(Duration::from_secs(300))
                .openapi_validation(false)
                .read_history_from(client.clone())
                .resident(binary)
                .build();
            resident = Some(cli.clone());
            builder = builder.helm(std::sync::Arc::new(cli));
        }
    }
    let resident_ticks = || live_ticks(resident.as_ref().and_then(|h| h.resident_pid()));
    let p: KubeProvisioner = builder.build().expect("provisioner");
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
    let mut s0 = Snapshot::before(pids);
    s0.children += resident_ticks();
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
    let mut s1 = Snapshot::after(pids);
    s1.children += resident_ticks();
    for (name, t) in &timelines {
        if let Some(why) = &t.failed {
            panic!("{name} failed: {why}");
        }
    }

    // Delete them all at once.
    let mut s2 = Snapshot::before(pids);
    s2.children += resident_ticks();
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
    let mut s3 = Snapshot::after(pids);
    s3.children += resident_ticks();
    let resident_pid = resident.as_ref().and_then(|h| h.resident_pid());
    p.shutdown().await;
    drop(p);
    drop(resident);
    // The resident helm exits when its driver is dropped; wait until it is reaped, so that
    // its CPU lands in /proc/self between rounds, not inside the next one's phases.
    if let Some(pid) = resident_pid {
        let gone = Instant::now() + Duration::from_secs(20);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < gone {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

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
        history,
        concurrency,
        create_cost: Cost::between(&s0, &s1, stores, tick),
        delete_cost: Cost::between(&s2, &s3, stores, tick),
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

// ── The usual loop ──────────────────────────────────────────────────────────────────────────

/// The loop a platform would script around helm. `create NAME…` / `delete NAME…`; prints
/// `helm NAME T`, `ready NAME T`, `gone NAME T` (T: seconds since the epoch) or `failed NAME`.
const LOOP_SCRIPT: &str = r#"set -u
op=$1 chart=$2 dir=$3; shift 3
create() {
  local n=$1 ns=store-$1
  kubectl create namespace "$ns" >/dev/null &&
    kubectl apply -f "$dir/$n-guardrails.json" >/dev/null &&
    kubectl create secret generic "$n-credentials" -n "$ns" --from-literal=admin-user=admin \
      --from-literal=admin-password="$(openssl rand -hex 16)" \
      --from-literal=db-password="$(openssl rand -hex 16)" \
      --from-literal=db-root-password="$(openssl rand -hex 16)" \
      --from-literal=webhook-secret="$(openssl rand -hex 16)" >/dev/null &&
    echo "helm $n $EPOCHREALTIME" &&
    helm upgrade --install "$n" "$chart" -n "$ns" -f "$dir/$n-values.json" \
      --wait --wait-for-jobs --timeout 5m >/dev/null &&
    echo "ready $n $EPOCHREALTIME" || echo "failed $n"
}
delete() {
  local n=$1
  helm uninstall "$n" -n "store-$n" --wait >/dev/null &&
    kubectl delete namespace "store-$n" --wait >/dev/null &&
    echo "gone $n $EPOCHREALTIME" || echo "failed $n"
}
for n in "$@"; do "$op" "$n"; done
"#;

fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Writes, for each store, the guardrail objects the loop applies (Urumi's own builders:
/// quota, limits, default-deny) and the chart values Urumi would pass.
fn prepare_loop_files(dir: &Path, names: &[String], woo: &WooCommerce) {
    let cfg = GuardrailsConfig::default();
    for name in names {
        let spec = StoreSpec::new(
            StoreName::new(name).expect("valid name"),
            TenantId::new("bench").expect("tenant"),
        );
        let ctx = cfg.context(&spec, &Plans::default()).expect("context");
        let deny = network_policies(&ctx, &cfg, &woo.network())
            .into_iter()
            .find(|p| p.metadata.name.as_deref() == Some("urumi-default-deny"))
            .expect("a default-deny policy");
        let mut items = vec![
            serde_json::to_value(resource_quota(&ctx)).expect("json"),
            serde_json::to_value(limit_range(&ctx).expect("limit range")).expect("json"),
            serde_json::to_value(deny).expect("json"),
        ];
        for (item, (api, kind)) in items.iter_mut().zip([
            ("v1", "ResourceQuota"),
            ("v1", "LimitRange"),
            ("networking.k8s.io/v1", "NetworkPolicy"),
        ]) {
            item["apiVersion"] = json!(api);
            item["kind"] = json!(kind);
        }
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
        std::fs::write(
            dir.join(format!("{name}-guardrails.json")),
            list.to_string(),
        )
        .expect("write guardrails");
        let values = woo
            .values(&ctx, &EngineSettings::default())
            .expect("values");
        std::fs::write(dir.join(format!("{name}-values.json")), values.to_string())
            .expect("write values");
    }
}

/// Runs `op` over `names` with `workers` bash processes (store i to worker i mod workers);
/// the time each line was printed, by (event, name).
fn run_loop(
    op: &str,
    names: &[String],
    workers: usize,
    chart: &Path,
    dir: &Path,
) -> HashMap<(String, String), f64> {
    let script = dir.join("loop.sh");
    std::fs::write(&script, LOOP_SCRIPT).expect("write the loop");
    let children: Vec<_> = (0..workers)
        .map(|w| {
            let mine: Vec<&String> = names.iter().skip(w).step_by(workers).collect();
            Command::new("bash")
                .arg(&script)
                .arg(op)
                .arg(chart)
                .arg(dir)
                .args(mine)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("bash")
        })
        .collect();
    let mut events = HashMap::new();
    for child in children {
        let out = child.wait_with_output().expect("the loop");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["failed", n] => panic!("the loop failed to {op} {n}"),
                [event, n, t] => {
                    events.insert(((*event).to_owned(), (*n).to_owned()), t.parse().unwrap());
                }
                _ => {}
            }
        }
    }
    events
}

#[derive(Debug)]
struct LoopRound {
    workers: usize,
    create_to_ready: Vec<f64>,
    release_with_wait: Vec<f64>,
    stores_per_minute: f64,
    batch_ready_secs: f64,
    batch_delete_secs: f64,
    delete_to_gone: Vec<f64>,
    create_cost: Cost,
    delete_cost: Cost,
}

fn loop_round(
    workers: usize,
    stores: usize,
    woo: &WooCommerce,
    pids: &[(&'static str, String)],
    tick: f64,
) -> LoopRound {
    let dir = tempfile::tempdir().expect("temporary directory");
    let chart = woo.chart().expect("the bundled chart");
    let tag: u32 = rand::rng().random_range(0..0x10000);
    let names: Vec<String> = (0..stores)
        .map(|i| format!("loop-w{workers}-{tag:04x}-{i:02}"))
        .collect();
    prepare_loop_files(dir.path(), &names, woo);

    let s0 = Snapshot::before(pids);
    let t0 = epoch_secs();
    let started = Instant::now();
    let created = run_loop("create", &names, workers, &chart, dir.path());
    let batch_ready_secs = started.elapsed().as_secs_f64();
    let s1 = Snapshot::after(pids);
    let at = |event: &str, n: &String| created.get(&(event.to_owned(), n.clone())).copied();
    let create_to_ready = names
        .iter()
        .filter_map(|n| Some(at("ready", n)? - t0))
        .collect();
    let release_with_wait = names
        .iter()
        .filter_map(|n| Some(at("ready", n)? - at("helm", n)?))
        .collect();

    let s2 = Snapshot::before(pids);
    let t0 = epoch_secs();
    let deleting = Instant::now();
    let gone = run_loop("delete", &names, workers, &chart, dir.path());
    let batch_delete_secs = deleting.elapsed().as_secs_f64();
    let s3 = Snapshot::after(pids);
    LoopRound {
        workers,
        create_to_ready,
        release_with_wait,
        stores_per_minute: stores as f64 / batch_ready_secs * 60.0,
        batch_ready_secs,
        batch_delete_secs,
        delete_to_gone: gone.values().map(|t| t - t0).collect(),
        create_cost: Cost::between(&s0, &s1, stores, tick),
        delete_cost: Cost::between(&s2, &s3, stores, tick),
    }
}

// ── helm's anatomy ──────────────────────────────────────────────────────────────────────────

#[derive(Debug, Default)]
struct Anatomy {
    /// (what, wall seconds per call, CPU-seconds per call of helm itself)
    rows: Vec<(&'static str, Vec<f64>, f64)>,
}

/// Runs `args` `n` times, each after `before(i)`: wall times and the children's CPU per call.
fn timed_helm(n: usize, tick: f64, mut args: impl FnMut(usize) -> Vec<String>) -> (Vec<f64>, f64) {
    let (_, c0) = proc_ticks("self").expect("stat");
    let mut walls = Vec::new();
    for i in 0..n {
        let a = args(i);
        let t = Instant::now();
        let out = Command::new("helm").args(&a).output().expect("helm");
        walls.push(t.elapsed().as_secs_f64());
        assert!(
            out.status.success(),
            "helm {}: {}",
            a.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (_, c1) = proc_ticks("self").expect("stat");
    (walls, (c1 - c0) as f64 / tick / n as f64)
}

fn anatomy(samples: usize, woo: &WooCommerce, tick: f64) -> Anatomy {
    let dir = tempfile::tempdir().expect("temporary directory");
    let chart = woo.chart().expect("the bundled chart");
    let chart = chart.to_string_lossy().into_owned();
    let tag: u32 = rand::rng().random_range(0..0x10000);
    // The first `samples` install without helm's OpenAPI check, the next `samples` with it.
    let names: Vec<String> = (0..2 * samples)
        .map(|i| format!("helm-{tag:04x}-{i:02}"))
        .collect();
    prepare_loop_files(dir.path(), &names, woo);
    let values = |n: &String| {
        dir.path()
            .join(format!("{n}-values.json"))
            .display()
            .to_string()
    };
    let mut a = Anatomy::default();

    let (w, c) = timed_helm(samples, tick, |_| vec!["version".into(), "--short".into()]);
    a.rows.push(("helm version: process start", w, c));
    let (w, c) = timed_helm(samples, tick, |i| {
        let n = &names[i];
        vec![
            "template".into(),
            n.clone(),
            chart.clone(),
            "-n".into(),
            format!("store-{n}"),
            "-f".into(),
            values(n),
        ]
    });
    a.rows
        .push(("helm template: + chart load and render", w, c));
    // Namespaces, guardrails and Secrets first (not measured), then the install alone.
    for n in &names {
        let ns = format!("store-{n}");
        let ok = Command::new("kubectl")
            .args(["create", "namespace", &ns])
            .output()
            .expect("kubectl")
            .status
            .success()
            && Command::new("kubectl")
                .args(["apply", "-f"])
                .arg(dir.path().join(format!("{n}-guardrails.json")))
                .output()
                .expect("kubectl")
                .status
                .success()
            && Command::new("kubectl")
                .args([
                    "create",
                    "secret",
                    "generic",
                    &format!("{n}-credentials"),
                    "-n",
                    &ns,
                ])
                .args(
                    [
                        "db-password",
                        "db-root-password",
                        "admin-password",
                        "webhook-secret",
                    ]
                    .map(|k| format!("--from-literal={k}={:032x}", rand::rng().random::<u128>())),
                )
                .arg("--from-literal=admin-user=admin")
                .output()
                .expect("kubectl")
                .status
                .success();
        assert!(ok, "preparing {ns}");
    }
    let install = |n: &String, validate: bool| {
        let mut args: Vec<String> = vec![
            "upgrade".into(),
            "--install".into(),
            n.clone(),
            chart.clone(),
            "-n".into(),
            format!("store-{n}"),
            "-f".into(),
            values(n),
        ];
        if !validate {
            args.push("--disable-openapi-validation".into());
        }
        args
    };
    let (w, c) = timed_helm(samples, tick, |i| install(&names[i], false));
    a.rows.push((
        "helm upgrade --install --disable-openapi-validation, no wait: + API calls and release record",
        w,
        c,
    ));
    let (w, c) = timed_helm(samples, tick, |i| install(&names[samples + i], true));
    a.rows.push((
        "helm upgrade --install, no wait: + helm's OpenAPI check (the loop's way)",
        w,
        c,
    ));
    let (w, c) = timed_helm(2 * samples, tick, |i| {
        let n = &names[i];
        vec![
            "uninstall".into(),
            n.clone(),
            "-n".into(),
            format!("store-{n}"),
            "--wait".into(),
        ]
    });
    a.rows.push(("helm uninstall --wait", w, c));
    for n in &names {
        let _ = Command::new("kubectl")
            .args(["delete", "namespace", &format!("store-{n}"), "--wait=false"])
            .output();
    }
    a
}

// ── main and the report ─────────────────────────────────────────────────────────────────────

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|s| s.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn main() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!(
            "lifecycle bench: KUBECONFIG is not set. Start the local cluster first:\n  \
             eval \"$(tests/cluster/up)\"   (from the repository root)"
        );
        std::process::exit(1);
    }
    let stores = env_list("URUMI_BENCH_STORES", &[30])[0];
    let levels = env_list("URUMI_BENCH_CONCURRENCY", &[1, 4, 8]);
    let loop_workers = env_list("URUMI_BENCH_LOOP", &[1, 3]);
    let samples = env_list("URUMI_BENCH_ANATOMY", &[5])[0];
    // The driver before (a helm process per history read) runs too unless
    // URUMI_BENCH_HELM_HISTORY=0.
    let mut histories = vec![History::Records];
    if std::env::var("URUMI_BENCH_HELM_HISTORY").as_deref() != Ok("0") {
        histories.push(History::Helm);
    }
    if std::env::var("URUMI_BENCH_RESIDENT").as_deref() != Ok("0") {
        histories.push(History::Resident);
    }
    let tick = clock_ticks_per_second();
    let pids = plane_pids();
    let woo = WooCommerce::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let mut loops = Vec::new();
    for w in loop_workers {
        eprintln!("the loop, {w} worker(s): {stores} stores …");
        let r = loop_round(w, stores, &woo, &pids, tick);
        eprintln!(
            "the loop, {w} worker(s): Ready in {:.1} s, deleted in {:.1} s",
            r.batch_ready_secs, r.batch_delete_secs
        );
        loops.push(r);
    }
    let rounds = rt.block_on(async {
        let client = kube::Client::try_default()
            .await
            .expect("a client from KUBECONFIG (is tests/cluster/up running?)");
        let mut rounds = Vec::new();
        for history in &histories {
            for &c in &levels {
                let label = history.label();
                eprintln!("Urumi{label}, concurrency {c}: {stores} stores …");
                let r = round(&client, *history, c, stores, &pids, tick).await;
                eprintln!(
                    "Urumi{label}, concurrency {c}: Ready in {:.1} s, deleted in {:.1} s",
                    r.batch_ready_secs, r.batch_delete_secs
                );
                rounds.push(r);
            }
        }
        rounds
    });
    eprintln!("helm's anatomy: {samples} samples …");
    let anatomy = anatomy(samples, &woo, tick);
    let (md, json) = report(stores, &loops, &rounds, &anatomy);
    println!("{md}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    std::fs::write(out.join("lifecycle.md"), &md).expect("write lifecycle.md");
    std::fs::write(
        out.join("lifecycle.json"),
        serde_json::to_string_pretty(&json).expect("json"),
    )
    .expect("write lifecycle.json");
    eprintln!("written: target/bench/lifecycle.md, target/bench/lifecycle.json");
}

fn pair(v: &[f64]) -> String {
    format!("{:.1} / {:.1}", percentile(v, 50.0), percentile(v, 95.0))
}

/// One table row of a way at one concurrency.
struct Row<'a> {
    way: String,
    stores_per_minute: f64,
    ready: &'a [f64],
    batch_delete_secs: f64,
    create: &'a Cost,
    delete: &'a Cost,
}

fn report(
    stores: usize,
    loops: &[LoopRound],
    rounds: &[Round],
    anatomy: &Anatomy,
) -> (String, Value) {
    use std::fmt::Write as _;
    let mut md = String::new();
    let rows: Vec<Row> = loops
        .iter()
        .map(|l| Row {
            way: format!("loop ×{}", l.workers),
            stores_per_minute: l.stores_per_minute,
            ready: &l.create_to_ready,
            batch_delete_secs: l.batch_delete_secs,
            create: &l.create_cost,
            delete: &l.delete_cost,
        })
        .chain(rounds.iter().map(|r| Row {
            way: format!("Urumi c={}{}", r.concurrency, r.history.label()),
            stores_per_minute: r.stores_per_minute,
            ready: &r.create_to_ready,
            batch_delete_secs: r.batch_delete_secs,
            create: &r.create_cost,
            delete: &r.delete_cost,
        }))
        .collect();
    let _ = writeln!(
        md,
        "## Create → Ready and delete, {stores} stores per row (one run, one cluster)\n\n\
         CPU-seconds per store over create and delete together: the way itself (Urumi in \
         process + its helm children; the loop's bash, kubectl, helm, openssl), then the \
         control plane both ways share. API requests per store: every client's.\n"
    );
    let _ = writeln!(
        md,
        "| way | stores/min | create→Ready p50 / p95 s | all deleted s | way CPU-s | of it in process | apiserver | etcd | controllers | scheduler | kwok | API requests |"
    );
    let _ = writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let both = |r: &Row, k: &str| {
        r.create.plane.get(k).copied().unwrap_or(0.0)
            + r.delete.plane.get(k).copied().unwrap_or(0.0)
    };
    for r in &rows {
        let _ = writeln!(
            md,
            "| {} | {:.1} | {} | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.0} |",
            r.way,
            r.stores_per_minute,
            pair(r.ready),
            r.batch_delete_secs,
            r.create.way() + r.delete.way(),
            r.create.own + r.delete.own,
            both(r, "kube-apiserver"),
            both(r, "etcd"),
            both(r, "kube-controller-manager"),
            both(r, "kube-scheduler"),
            both(r, "kwok"),
            r.create.requests + r.delete.requests,
        );
    }
    let _ = writeln!(
        md,
        "\n### Ratios Urumi / loop (above 1: Urumi more; stores/min: faster, CPU and requests: costlier)\n"
    );
    let _ = writeln!(
        md,
        "| Urumi | vs | stores/min | create→Ready p50 | all deleted | way CPU-s | control-plane CPU-s | API requests |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for u in rows.iter().filter(|r| r.way.starts_with("Urumi")) {
        for l in rows.iter().filter(|r| r.way.starts_with("loop")) {
            let cpu = |r: &Row| r.create.way() + r.delete.way();
            let plane = |r: &Row| r.create.plane_total() + r.delete.plane_total();
            let req = |r: &Row| r.create.requests + r.delete.requests;
            let ratio = (
                u.stores_per_minute / l.stores_per_minute,
                percentile(u.ready, 50.0) / percentile(l.ready, 50.0),
                u.batch_delete_secs / l.batch_delete_secs,
                cpu(u) / cpu(l),
                plane(u) / plane(l),
                req(u) / req(l),
            );
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                u.way, l.way, ratio.0, ratio.1, ratio.2, ratio.3, ratio.4, ratio.5
            );
            ratios.push(json!({
                "urumi": u.way, "loop": l.way, "storesPerMinute": ratio.0,
                "createToReadyP50": ratio.1, "allDeletedSecs": ratio.2, "wayCpuSecs": ratio.3,
                "controlPlaneCpuSecs": ratio.4, "apiRequests": ratio.5,
            }));
        }
    }

    let mut driver_ratios = Vec::new();
    let others: Vec<&Round> = rounds
        .iter()
        .filter(|r| r.history != History::Records)
        .collect();
    if !others.is_empty() {
        let _ = writeln!(
            md,
            "\n### Drivers compared, same concurrency: now / before (histories from release records instead of `helm history`; no client-side OpenAPI check), resident helm / now (one long-lived process instead of a helm process per call)\n"
        );
        let _ = writeln!(
            md,
            "| ratio | concurrency | stores/min | create→Ready p50 | all deleted | way CPU-s | of it helm processes | API requests |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for other in others {
            let Some(now) = rounds
                .iter()
                .find(|r| r.history == History::Records && r.concurrency == other.concurrency)
            else {
                continue;
            };
            // Always the newer driver over the older one.
            let (a, b, what) = match other.history {
                History::Helm => (now, other, "now / before"),
                _ => (other, now, "resident / now"),
            };
            let cpu = |r: &Round| r.create_cost.way() + r.delete_cost.way();
            let helm = |r: &Round| r.create_cost.children + r.delete_cost.children;
            let req = |r: &Round| r.create_cost.requests + r.delete_cost.requests;
            let ratio = (
                a.stores_per_minute / b.stores_per_minute,
                percentile(&a.create_to_ready, 50.0) / percentile(&b.create_to_ready, 50.0),
                a.batch_delete_secs / b.batch_delete_secs,
                cpu(a) / cpu(b),
                helm(a) / helm(b),
                req(a) / req(b),
            );
            let _ = writeln!(
                md,
                "| {what} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                a.concurrency, ratio.0, ratio.1, ratio.2, ratio.3, ratio.4, ratio.5
            );
            driver_ratios.push(json!({
                "ratio": what, "concurrency": a.concurrency, "storesPerMinute": ratio.0,
                "createToReadyP50": ratio.1, "allDeletedSecs": ratio.2, "wayCpuSecs": ratio.3,
                "helmProcessesCpuSecs": ratio.4, "apiRequests": ratio.5,
            }));
        }
    }

    let _ = writeln!(
        md,
        "\n## Where Urumi's time goes, per step (seconds, p50 / p95; create→Ready includes waiting for a worker)\n"
    );
    let _ = writeln!(
        md,
        "| concurrency | create→Ready | namespace | guardrails | credentials | release | readiness | delete→gone |"
    );
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rounds {
        let step = |s: Step| pair(r.steps.get(&s).map(Vec::as_slice).unwrap_or(&[]));
        let _ = writeln!(
            md,
            "| {}{} | {} | {} | {} | {} | {} | {} | {} |",
            r.concurrency,
            r.history.label(),
            pair(&r.create_to_ready),
            step(Step::Namespace),
            step(Step::Guardrails),
            step(Step::Credentials),
            step(Step::Release),
            step(Step::Readiness),
            pair(&r.delete_to_gone),
        );
    }
    let _ = writeln!(
        md,
        "\n## Inside helm ({} samples; wall p50 s, CPU-s of helm per call)\n",
        anatomy.rows.first().map_or(0, |r| r.1.len())
    );
    let _ = writeln!(md, "| call | wall p50 | wall p95 | CPU-s |");
    let _ = writeln!(md, "|---|---:|---:|---:|");
    for (what, walls, cpu) in &anatomy.rows {
        let _ = writeln!(
            md,
            "| {what} | {:.3} | {:.3} | {cpu:.3} |",
            percentile(walls, 50.0),
            percentile(walls, 95.0)
        );
    }
    for l in loops {
        let _ = writeln!(
            md,
            "| the loop's helm upgrade --install --wait --wait-for-jobs (×{}; all its stores) | {:.3} | {:.3} | |",
            l.workers,
            percentile(&l.release_with_wait, 50.0),
            percentile(&l.release_with_wait, 95.0)
        );
    }

    let json = json!({
        "stores": stores,
        "loop": loops.iter().map(|l| json!({
            "workers": l.workers,
            "storesPerMinute": l.stores_per_minute,
            "createToReadySecs": {"p50": percentile(&l.create_to_ready, 50.0), "p95": percentile(&l.create_to_ready, 95.0)},
            "releaseWithWaitSecs": {"p50": percentile(&l.release_with_wait, 50.0), "p95": percentile(&l.release_with_wait, 95.0)},
            "allReadySecs": l.batch_ready_secs,
            "allDeletedSecs": l.batch_delete_secs,
            "deleteToGoneSecs": {"p50": percentile(&l.delete_to_gone, 50.0), "p95": percentile(&l.delete_to_gone, 95.0)},
            "perStoreCreate": l.create_cost.json(),
            "perStoreDelete": l.delete_cost.json(),
        })).collect::<Vec<_>>(),
        "urumi": rounds.iter().map(|r| json!({
            "concurrency": r.concurrency,
            "driver": r.history.describe(),
            "storesPerMinute": r.stores_per_minute,
            "createToReadySecs": {"p50": percentile(&r.create_to_ready, 50.0), "p95": percentile(&r.create_to_ready, 95.0)},
            "allReadySecs": r.batch_ready_secs,
            "allDeletedSecs": r.batch_delete_secs,
            "deleteToGoneSecs": {"p50": percentile(&r.delete_to_gone, 50.0), "p95": percentile(&r.delete_to_gone, 95.0)},
            "stepsP50Secs": STEPS.iter().map(|s| (s.to_string(), percentile(r.steps.get(s).map(Vec::as_slice).unwrap_or(&[]), 50.0))).collect::<BTreeMap<_, _>>(),
            "perStoreCreate": r.create_cost.json(),
            "perStoreDelete": r.delete_cost.json(),
        })).collect::<Vec<_>>(),
        "ratios": ratios,
        "driverRatios": driver_ratios,
        "helm": anatomy.rows.iter().map(|(what, walls, cpu)| json!({
            "call": what, "wallP50Secs": percentile(walls, 50.0), "cpuSecs": cpu,
        })).collect::<Vec<_>>(),
    });
    (md, json)
}
