//! Pure store types: what a store is, what it asks for, where it stands.
//!
//! ```text
//!  StoreSpec {name, tenant, engine, plan} ──Store::new(spec, namespace)──▶ Store (Pending, step Namespace)
//!
//!  Pending ──▶ Provisioning ──▶ Ready            (at rest)
//!                  │   Namespace → Guardrails → Credentials → Release → Readiness → Done
//!                  └──────────▶ Failed           (at rest; retry resumes from `step`)
//!  Ready ──update(plan)──▶ Updating ──▶ Ready   (Guardrails → Credentials → Release → Readiness
//!                              └──────▶ Failed     again; the quota settles to the plan at the end)
//!  any ──delete──▶ Deleting ──▶ (record dropped)
//! ```
//!
//! No I/O here: these types are validated on construction and serialize to the JSON of
//! the HTTP API (camelCase). `version` is the record's optimistic-concurrency counter:
//! the state store bumps it on every successful update and refuses a stale one.

mod event;
mod name;
mod plan;
mod usage;

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

pub use event::{AuditEvent, Outcome};
pub use name::{
    EngineId, MAX_NAME_LEN, MIN_NAME_LEN, NameRule, RESERVED_NAMES, RESERVED_PREFIXES, StoreName,
    TenantId,
};
pub use plan::{Plan, PlanEntry, PlanSize, Plans};
pub use usage::{ResourceUsage, StoreUsage, UsageUnit, VolumeUsage};

use crate::error::{Error, Result};

/// The current time truncated to microseconds, the precision every state backend keeps.
pub fn now() -> DateTime<Utc> {
    truncate_micros(Utc::now())
}

/// `t` truncated to microseconds, so a value survives a round trip through any backend.
pub fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// Where a store stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Accepted; no work started yet.
    Pending,
    /// The orchestrator is running its steps.
    Provisioning,
    /// Serving; at rest.
    Ready,
    /// Stopped at `step` with `message` as the reason; at rest until retried.
    Failed,
    /// Being torn down; the record disappears when nothing is left.
    Deleting,
    /// Was Ready; a change asked for (a plan change) is being applied from `step`, then
    /// Ready again (or Failed with the reason, retryable).
    Updating,
    /// Was Ready; a workload became unavailable (`message` names it, since when, and its
    /// last Event). Back to `Ready` on its own when the workloads recover.
    Degraded,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 7] = [
        Status::Pending,
        Status::Provisioning,
        Status::Ready,
        Status::Failed,
        Status::Deleting,
        Status::Updating,
        Status::Degraded,
    ];

    /// The name used in JSON and in the state backends.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "Pending",
            Status::Provisioning => "Provisioning",
            Status::Ready => "Ready",
            Status::Failed => "Failed",
            Status::Deleting => "Deleting",
            Status::Updating => "Updating",
            Status::Degraded => "Degraded",
        }
    }

    /// `Ready`, `Degraded` and `Failed` are at rest: no background work is owed to them.
    pub fn is_at_rest(self) -> bool {
        matches!(self, Status::Ready | Status::Degraded | Status::Failed)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Status::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| Error::InvalidSpec {
                field: "status",
                message: format!(
                    "unknown status {:?}",
                    s.chars().take(32).collect::<String>()
                ),
            })
    }
}

/// A provisioning step, in the order the orchestrator runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Create the namespace with its labels.
    Namespace,
    /// Apply ResourceQuota, LimitRange and NetworkPolicies.
    Guardrails,
    /// Generate the store's passwords into its Secret.
    Credentials,
    /// `helm upgrade --install` the engine's chart.
    Release,
    /// Wait until the engine says the store is ready.
    Readiness,
    /// Nothing left to do.
    Done,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 6] = [
        Step::Namespace,
        Step::Guardrails,
        Step::Credentials,
        Step::Release,
        Step::Readiness,
        Step::Done,
    ];

    /// The lowercase name used in JSON, in audit actions (`provision.<step>`) and in
    /// the state backends.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Namespace => "namespace",
            Step::Guardrails => "guardrails",
            Step::Credentials => "credentials",
            Step::Release => "release",
            Step::Readiness => "readiness",
            Step::Done => "done",
        }
    }

    /// The step after this one (`Done` stays `Done`).
    pub fn next(self) -> Step {
        match self {
            Step::Namespace => Step::Guardrails,
            Step::Guardrails => Step::Credentials,
            Step::Credentials => Step::Release,
            Step::Release => Step::Readiness,
            Step::Readiness | Step::Done => Step::Done,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Step {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Step::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| Error::InvalidSpec {
                field: "step",
                message: format!("unknown step {:?}", s.chars().take(32).collect::<String>()),
            })
    }
}

/// What a caller asks for when creating a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreSpec {
    /// The store's unique name.
    pub name: StoreName,
    /// The tenant that owns it.
    pub tenant: TenantId,
    /// What it runs (`woocommerce` by default).
    #[serde(default)]
    pub engine: EngineId,
    /// How big it may grow (`small` by default).
    #[serde(default)]
    pub plan: Plan,
}

impl StoreSpec {
    /// A spec with the default engine and plan.
    pub fn new(name: StoreName, tenant: TenantId) -> Self {
        StoreSpec {
            name,
            tenant,
            engine: EngineId::default(),
            plan: Plan::default(),
        }
    }

    /// Sets the engine.
    pub fn engine(mut self, engine: EngineId) -> Self {
        self.engine = engine;
        self
    }

    /// Sets the plan.
    pub fn plan(mut self, plan: Plan) -> Self {
        self.plan = plan;
        self
    }
}

/// Where a store answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Urls {
    /// The shop's public URL, once known.
    pub storefront: Option<String>,
    /// The store's admin URL, once known.
    pub admin: Option<String>,
}

/// A store record, as the state store keeps it and the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Store {
    /// The store's unique name.
    pub name: StoreName,
    /// The owning tenant.
    pub tenant: TenantId,
    /// What it runs.
    pub engine: EngineId,
    /// Its plan.
    pub plan: Plan,
    /// Where it stands.
    pub status: Status,
    /// The step in progress, or the one that failed.
    pub step: Step,
    /// The last progress note or failure reason, for a human.
    pub message: String,
    /// Its Kubernetes namespace (`store-<name>` unless configured).
    pub namespace: String,
    /// Where it answers.
    pub urls: Urls,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When the record last changed.
    pub updated_at: DateTime<Utc>,
    /// When it first became `Ready`.
    pub ready_at: Option<DateTime<Utc>>,
    /// Seconds from acceptance to `Ready`.
    pub provisioning_seconds: Option<f64>,
    /// How many provisioning attempts were made (1 on the first run).
    pub attempts: u32,
    /// The optimistic-concurrency version; the state store sets and bumps it.
    pub version: u64,
    /// Suspended: its workloads are stopped and its Ingress removed, its volumes and
    /// credentials kept (`suspend`/`resume`). A suspended store is `Ready` once stopped.
    #[serde(default)]
    pub suspended: bool,
    /// The chart it runs, recorded when its release is installed or upgraded (`None`
    /// before that).
    #[serde(default)]
    pub chart: Option<StoreChart>,
    /// While an upgrade runs: the release revision it came from, rolled back to if the
    /// upgrade fails (so the store stays Ready on its previous chart). Internal: not in
    /// the store's JSON.
    #[serde(skip)]
    pub rollback_to: Option<u32>,
    /// The Kubernetes object that manages this store (`Store <namespace>/<name>`, operator
    /// mode); absent for stores created through the API. Only that object may delete it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
}

/// The chart a store runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreChart {
    /// The chart's version, e.g. `0.2.0`.
    pub version: String,
    /// The application version it installs (WordPress), e.g. `7.1.0`.
    pub app_version: String,
    /// The provisioner bundles another chart version than the store runs: an upgrade
    /// would move it. Computed by the provisioner when it hands the store out (not stored).
    #[serde(default)]
    pub outdated: bool,
}

/// One revision of a store's release, as helm recorded it (`revisions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreRevision {
    /// Helm's revision number, from 1.
    pub revision: u32,
    /// The chart's version.
    pub chart_version: String,
    /// The application version it installed.
    pub app_version: String,
    /// `deployed`, `superseded`, `failed`, `pending-upgrade`, …
    pub status: String,
    /// When it was recorded, if helm said.
    pub updated_at: Option<DateTime<Utc>>,
    /// What made it (`Install complete`, `Upgrade complete`, `Rollback to 2`, …).
    pub description: String,
}

impl Store {
    /// A new `Pending` record for `spec`, created now, in `namespace`.
    pub fn new(spec: StoreSpec, namespace: impl Into<String>) -> Self {
        let now = now();
        Store {
            name: spec.name,
            tenant: spec.tenant,
            engine: spec.engine,
            plan: spec.plan,
            status: Status::Pending,
            step: Step::Namespace,
            message: "accepted".to_owned(),
            namespace: namespace.into(),
            urls: Urls::default(),
            created_at: now,
            updated_at: now,
            ready_at: None,
            provisioning_seconds: None,
            attempts: 0,
            version: 0,
            suspended: false,
            chart: None,
            rollback_to: None,
            managed_by: None,
        }
    }

    /// The spec this store was created from.
    pub fn spec(&self) -> StoreSpec {
        StoreSpec {
            name: self.name.clone(),
            tenant: self.tenant.clone(),
            engine: self.engine.clone(),
            plan: self.plan,
        }
    }

    /// Marks the store `Ready` now, recording `ready_at` and `provisioning_seconds`.
    pub fn mark_ready(&mut self) {
        let now = now();
        self.status = Status::Ready;
        self.step = Step::Done;
        self.updated_at = now;
        self.ready_at = Some(now);
        let millis = (now - self.created_at).num_milliseconds().max(0);
        self.provisioning_seconds = Some(millis as f64 / 1000.0);
    }
}
