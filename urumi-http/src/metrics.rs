//! `/metrics`: Prometheus text, from two sources.
//!
//! ```text
//!  every matched request ──record_request(method, route TEMPLATE, status, seconds)──┐
//!  Provisioner::changes(system admin) ──follow()──▶ stores by status                 ├─▶ render()
//!        (a listing seeds it)                     ├─▶ provisioning seconds (became Ready)
//!                                                 └─▶ step failures {step, cause class} ┘
//! ```
//!
//! Labels are bounded: route templates (never a store name), statuses, steps and a fixed
//! set of cause classes. No key, tenant or store name is ever a label.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use urumi_core::state::ListQuery;
use urumi_core::store::{Status, Store, TenantId};
use urumi_core::{Caller, ChangeKind, ErrorKind, Provisioner};

const LATENCY_BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
const PROVISIONING_BUCKETS: [f64; 10] = [
    5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, buckets: &[f64], v: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; buckets.len()];
        }
        for (i, b) in buckets.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, buckets: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in buckets.iter().enumerate() {
            let c = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), self.count);
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
    /// name → (status, version) of every store the feed or listing showed.
    stores: HashMap<String, (Status, u64)>,
    provisioning: Histogram,
    failures: BTreeMap<(String, &'static str), u64>,
    seeded: bool,
}

/// The server's metrics; cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// A bounded class of a failure message (the metric's `cause` label).
pub fn cause_class(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("timed out") || m.contains("in time") || m.contains("timeout") {
        "timeout"
    } else if m.contains("quota") || m.contains("limit") {
        "quota"
    } else if m.contains("rejected") || m.contains("refused") || m.contains("invalid") {
        "rejected"
    } else if m.contains("unavailable") || m.contains("unreachable") {
        "unavailable"
    } else {
        "other"
    }
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one request by method, route template and status, with its latency.
    pub fn record_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut inner = self.lock();
        *inner
            .requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        inner
            .latency
            .entry((method.to_owned(), route.to_owned()))
            .or_default()
            .observe(&LATENCY_BUCKETS, seconds);
    }

    /// Applies one change of the feed (`live`: it happened now, so a store reaching
    /// Ready or Failed is counted in the histogram / failures).
    fn apply(&self, kind: ChangeKind, store: &Store, live: bool) {
        let mut inner = self.lock();
        let name = store.name.as_str().to_owned();
        let previous = inner.stores.get(&name).copied();
        if previous.is_some_and(|(_, v)| v > store.version) {
            return;
        }
        if kind == ChangeKind::Deleted {
            inner.stores.remove(&name);
            return;
        }
        let was = previous.map(|(s, _)| s);
        if live
            && store.status == Status::Ready
            && was != Some(Status::Ready)
            && let Some(secs) = store.provisioning_seconds
        {
            inner.provisioning.observe(&PROVISIONING_BUCKETS, secs);
        }
        if live && store.status == Status::Failed && was != Some(Status::Failed) {
            *inner
                .failures
                .entry((store.step.to_string(), cause_class(&store.message)))
                .or_default() += 1;
        }
        inner.stores.insert(name, (store.status, store.version));
    }

    /// Follows the change feed for the store metrics until the provisioner shuts down:
    /// subscribes first, then seeds from a full listing, so nothing is missed.
    pub async fn follow(self, provisioner: Arc<dyn Provisioner>) {
        let Ok(tenant) = TenantId::new("system") else {
            return;
        };
        let caller = Caller::admin("urumi-server-metrics", tenant);
        loop {
            let mut changes = provisioner.changes(&caller, None);
            let mut cursor = None;
            let mut seeded = Vec::new();
            loop {
                let query = ListQuery {
                    limit: Some(urumi_core::state::MAX_PAGE_SIZE),
                    cursor: cursor.take(),
                    ..ListQuery::default()
                };
                match provisioner.list(&caller, query).await {
                    Ok(page) => {
                        seeded.extend(page.items);
                        match page.next_cursor {
                            Some(c) => cursor = Some(c),
                            None => break,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics: listing stores failed");
                        break;
                    }
                }
            }
            {
                let mut inner = self.lock();
                inner.stores.clear();
                inner.seeded = true;
            }
            for s in &seeded {
                self.apply(ChangeKind::Updated, s, false);
            }
            loop {
                match changes.next().await {
                    Some(Ok(change)) => self.apply(change.kind, &change.store, true),
                    Some(Err(e)) if e.kind() == ErrorKind::CursorExpired => break,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "metrics: change feed failed");
                        break;
                    }
                    None => return,
                }
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        out.push_str("# HELP urumi_stores Stores by status.\n# TYPE urumi_stores gauge\n");
        for status in Status::ALL {
            let n = inner.stores.values().filter(|(s, _)| *s == status).count();
            let _ = writeln!(out, "urumi_stores{{status=\"{status}\"}} {n}");
        }
        out.push_str(
            "# HELP urumi_store_provisioning_seconds Seconds from creation to Ready.\n\
             # TYPE urumi_store_provisioning_seconds histogram\n",
        );
        inner.provisioning.render(
            &mut out,
            "urumi_store_provisioning_seconds",
            "",
            &PROVISIONING_BUCKETS,
        );
        out.push_str(
            "# HELP urumi_store_step_failures_total Stores that failed, by step and cause class.\n\
             # TYPE urumi_store_step_failures_total counter\n",
        );
        for ((step, cause), n) in &inner.failures {
            let _ = writeln!(
                out,
                "urumi_store_step_failures_total{{step=\"{step}\",cause=\"{cause}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP urumi_http_requests_total HTTP requests by route template and status.\n\
             # TYPE urumi_http_requests_total counter\n",
        );
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "urumi_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP urumi_http_request_duration_seconds HTTP latency by route template.\n\
             # TYPE urumi_http_request_duration_seconds histogram\n",
        );
        for ((method, route), h) in &inner.latency {
            h.render(
                &mut out,
                "urumi_http_request_duration_seconds",
                &format!("method=\"{method}\",route=\"{route}\""),
                &LATENCY_BUCKETS,
            );
        }
        drop(inner);
        render_process(&mut out);
        out
    }
}

/// The process's own gauges, for leak hunting (the soak watches them stay flat):
/// resident memory and open files (Linux `/proc/self`), and the Tokio tasks alive.
fn render_process(out: &mut String) {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(kib) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    {
        let _ = writeln!(
            out,
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
             # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}",
            kib * 1024
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        let _ = writeln!(
            out,
            "# HELP process_open_fds Open file descriptors.\n\
             # TYPE process_open_fds gauge\nprocess_open_fds {}",
            fds.count()
        );
    }
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        let _ = writeln!(
            out,
            "# HELP urumi_tokio_alive_tasks Tokio tasks alive in the server's runtime.\n\
             # TYPE urumi_tokio_alive_tasks gauge\nurumi_tokio_alive_tasks {}",
            handle.metrics().num_alive_tasks()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_template_with_a_latency_histogram() {
        let m = Metrics::default();
        m.record_request("GET", "/api/v1/stores/{name}", 200, 0.003);
        m.record_request("GET", "/api/v1/stores/{name}", 200, 0.2);
        let text = m.render();
        assert!(text.contains(
            "urumi_http_requests_total{method=\"GET\",route=\"/api/v1/stores/{name}\",status=\"200\"} 2"
        ), "{text}");
        assert!(text.contains(
            "urumi_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/stores/{name}\",le=\"0.005\"} 1"
        ), "{text}");
        assert!(text.contains("urumi_stores{status=\"Ready\"} 0"), "{text}");
        #[cfg(target_os = "linux")]
        for gauge in ["process_resident_memory_bytes ", "process_open_fds "] {
            assert!(text.contains(gauge), "{gauge} missing: {text}");
        }
    }

    #[test]
    fn failure_causes_fall_into_few_classes() {
        assert_eq!(
            cause_class("readiness failed: not ready in time — retry"),
            "timeout"
        );
        assert_eq!(
            cause_class("release failed: rejected by the cluster"),
            "rejected"
        );
        assert_eq!(cause_class("something new"), "other");
    }
}
