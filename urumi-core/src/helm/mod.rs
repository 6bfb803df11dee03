//! Installing, upgrading and removing Helm releases: the [`HelmDriver`] port and
//! [`HelmCli`], its implementation over the real `helm` binary.
//!
//! ```text
//!  orchestrator (holds the store's lease)
//!       │ upgrade_install(release, namespace, chart, values, opts)
//!       ▼
//!  HelmCli ──history──▶ last revision pending-*?  (an interrupted run)
//!       │   read_history_from(client): helm's release Secrets, one API call (storage.rs);
//!       │   otherwise `helm history -o json`
//!       │                         ├─ pending-install / uninstalling ─▶ helm uninstall
//!       │                         └─ pending-upgrade / -rollback   ─▶ helm rollback <last deployed>
//!       │
//!       ├─ values ──▶ 0600 temp file (removed on return, error, timeout or drop)
//!       ├─ semaphore: at most N helm processes at once
//!       ▼
//!  helm upgrade --install --reset-values -f values.json -o json   (no --wait)
//!       │ exit 0 ──▶ stdout JSON ──parse──▶ Release
//!       │ exit ≠ 0 ─▶ stderr ──scrub secrets──▶ classify ──▶ HelmError { kind, message }
//!       │ deadline ─▶ SIGTERM (helm marks the release failed), grace, SIGKILL ─▶ Timeout
//!       │ call dropped (task cancelled) ─▶ SIGKILL at once (kill_on_drop)
//!       ▼
//!  HelmError ──From──▶ crate::Error (kind() / is_retryable() for the caller)
//! ```
//!
//! With [`HelmCliBuilder::resident`], the same commands go to one long-lived
//! `urumi-helm-resident` process (helm's own library, in Go; `resident.rs`) instead of a
//! helm process each: the same arguments, answers, records and errors, without helm's start,
//! kubeconfig loading and API discovery on every call.
//!
//! Readiness is not helm's job here: releases are installed without `--wait` and the
//! orchestrator watches the workloads. Secrets never reach helm's command line (process
//! lists) nor a log line: values travel in a private file, and every error message is
//! scrubbed of the secret strings of the values before it leaves this module.
//!
//! [`conformance`] holds the behaviour every [`HelmDriver`] must have, as one public
//! async function per case; `tests/helm_cluster.rs` runs it against a real cluster.

pub mod cli;
pub mod conformance;
mod error;
mod output;
mod process;
mod repair;
mod resident;
mod scrub;
mod storage;

use std::fmt;
use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use cli::{HelmCli, HelmCliBuilder};
pub use error::{HelmError, HelmErrorKind};
pub use scrub::Scrubber;

/// The status of one revision of a Helm release, as helm reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ReleaseStatus {
    /// The revision is the live one.
    Deployed,
    /// The install, upgrade or rollback that made this revision failed.
    Failed,
    /// An install started and has not finished (or its helm process died).
    PendingInstall,
    /// An upgrade started and has not finished (or its helm process died).
    PendingUpgrade,
    /// A rollback started and has not finished (or its helm process died).
    PendingRollback,
    /// An uninstall started and has not finished.
    Uninstalling,
    /// The release was uninstalled with its history kept.
    Uninstalled,
    /// A later revision replaced this one.
    Superseded,
    /// A status helm reported that this version of urumi does not know.
    #[serde(other)]
    Unknown,
}

impl ReleaseStatus {
    /// Whether an operation on the release is (or was, if its process died) under way:
    /// helm refuses to upgrade such a release with "another operation is in progress".
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            ReleaseStatus::PendingInstall
                | ReleaseStatus::PendingUpgrade
                | ReleaseStatus::PendingRollback
        )
    }

    /// helm's own spelling of the status, e.g. `pending-install`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::Deployed => "deployed",
            ReleaseStatus::Failed => "failed",
            ReleaseStatus::PendingInstall => "pending-install",
            ReleaseStatus::PendingUpgrade => "pending-upgrade",
            ReleaseStatus::PendingRollback => "pending-rollback",
            ReleaseStatus::Uninstalling => "uninstalling",
            ReleaseStatus::Uninstalled => "uninstalled",
            ReleaseStatus::Superseded => "superseded",
            ReleaseStatus::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A release as it stands after a successful [`HelmDriver::upgrade_install`].
///
/// Deliberately leaves out what helm prints besides (the values, the manifest, the
/// chart's files): those may hold secrets and are not needed by a caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The release name.
    pub name: String,
    /// The namespace the release lives in.
    pub namespace: String,
    /// The revision number (1 for a first install, +1 for every upgrade or rollback).
    pub revision: u32,
    /// The status of that revision.
    pub status: ReleaseStatus,
    /// The chart's name and version, `name-version`, e.g. `woocommerce-store-0.1.0`.
    pub chart: String,
    /// The chart's `appVersion`, if it declares one.
    pub app_version: Option<String>,
    /// helm's description of the revision, e.g. `Install complete`.
    pub description: String,
    /// When the revision was deployed, if helm said.
    pub last_deployed: Option<DateTime<Utc>>,
}

/// One entry of a release's history (`helm history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// The revision number.
    pub revision: u32,
    /// When the revision was last updated, if helm said.
    pub updated: Option<DateTime<Utc>>,
    /// Its status.
    pub status: ReleaseStatus,
    /// The chart's name and version, `name-version`.
    pub chart: String,
    /// The chart's `appVersion` (empty when the chart declares none).
    pub app_version: String,
    /// helm's description, e.g. `Upgrade complete` or `Rollback to 1`.
    pub description: String,
}

/// Options of one [`HelmDriver::upgrade_install`] call.
///
/// Build with [`UpgradeOptions::new`] and the chaining methods. Its `Debug` output
/// never shows the secrets.
#[derive(Clone, Default)]
pub struct UpgradeOptions {
    secrets: Vec<String>,
    description: Option<String>,
}

impl UpgradeOptions {
    /// No extra secrets, helm's default description.
    pub fn new() -> Self {
        Self::default()
    }

    /// A string that must never appear in an error message or a log line, in addition
    /// to the values found under secret-looking keys (see [`Scrubber`]).
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Several such strings at once.
    pub fn secrets<I, S>(mut self, secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.secrets.extend(secrets.into_iter().map(Into::into));
        self
    }

    /// The description recorded on the new revision (`helm upgrade --description`).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// The extra secret strings given with [`UpgradeOptions::secret`].
    pub fn secret_strings(&self) -> &[String] {
        &self.secrets
    }

    /// The description given with [`UpgradeOptions::description`].
    pub fn description_text(&self) -> Option<&str> {
        self.description.as_deref()
    }
}

impl fmt::Debug for UpgradeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeOptions")
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("description", &self.description)
            .finish()
    }
}

/// Installs and maintains Helm releases: the port the orchestrator drives.
///
/// Object safe and `Send + Sync`: hold it as `Arc<dyn HelmDriver>`. A mock,
/// `MockHelmDriver`, is generated for this crate's unit tests and, with the `mock`
/// feature, for other crates.
///
/// # Contract
///
/// Every method is safe to call again after it failed or after its future was dropped
/// (a crash, a cancelled task): [`upgrade_install`](HelmDriver::upgrade_install) and
/// [`uninstall`](HelmDriver::uninstall) converge on the asked-for state from wherever
/// an earlier, interrupted call left the release. Repairing a release left `pending-*`
/// is only correct when no other helm process works on it, so **the caller must hold
/// the store's lease** for the whole call: the driver cannot tell a dead helm process
/// from a live one on another replica.
///
/// Errors carry a [`HelmErrorKind`]; [`HelmError::is_retryable`] says whether the same
/// call may succeed later, unchanged. Every method may fail with
/// [`Unavailable`](HelmErrorKind::Unavailable) (the API server could not be reached),
/// [`Timeout`](HelmErrorKind::Timeout) (the call outlived its deadline and helm was
/// stopped), [`InProgress`](HelmErrorKind::InProgress) (another helm operation holds
/// the release), [`Binary`](HelmErrorKind::Binary) (helm could not be run),
/// [`Output`](HelmErrorKind::Output) (helm said something unparseable) and
/// [`Failed`](HelmErrorKind::Failed) (anything helm reported that is none of these).
/// Error messages never contain the secret strings of the values passed in.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait HelmDriver: Send + Sync {
    /// Installs `release` in `namespace` from `chart` (a chart directory or a packaged
    /// `.tgz`) with exactly `values` (a JSON object; earlier values are not reused), or
    /// upgrades it if it exists. Does not wait for the workloads to become ready.
    ///
    /// Idempotent: the same call twice leaves the release deployed with the same
    /// values (helm records a new revision each time). A release left `pending-install`
    /// (or `uninstalling`) by an interrupted run is uninstalled first; one left
    /// `pending-upgrade` or `pending-rollback` is rolled back to its last deployed
    /// revision first. The caller must hold the store's lease (see the trait docs).
    ///
    /// Errors: [`Rejected`](HelmErrorKind::Rejected), permanent, when the chart is
    /// missing or invalid, the values break the chart's schema, a template fails to
    /// render or the API server refuses a rendered object; its message holds helm's
    /// reason. Plus the kinds every method may return.
    async fn upgrade_install(
        &self,
        release: &str,
        namespace: &str,
        chart: &Path,
        values: serde_json::Value,
        opts: &UpgradeOptions,
    ) -> Result<Release, HelmError>;

    /// Uninstalls `release` from `namespace` (its history included).
    ///
    /// Idempotent: a release that does not exist is `Ok`, so a second call, or a call
    /// after a crash half-way through, succeeds. Leaves the namespace and what helm
    /// does not own (PVCs of StatefulSets) in place: deleting the namespace is the
    /// caller's job. Errors: the kinds every method may return.
    async fn uninstall(&self, release: &str, namespace: &str) -> Result<(), HelmError>;

    /// The status of the latest revision of `release`, or `None` if there is no such
    /// release. Read-only. Errors: the kinds every method may return.
    async fn status(
        &self,
        release: &str,
        namespace: &str,
    ) -> Result<Option<ReleaseStatus>, HelmError>;

    /// Rolls `release` back to `revision`, recording a new revision (`revision` 0
    /// means the one before the latest, as with `helm rollback`).
    ///
    /// Not idempotent in the revision count (each call records one), but rolling back
    /// to the same revision twice leaves the same objects. Errors:
    /// [`NotFound`](HelmErrorKind::NotFound) when the release or the revision does not
    /// exist, plus the kinds every method may return. This call is given no values, so
    /// its messages cannot be scrubbed of them: a chart that quotes a secret in a
    /// rendering error could show it here (the repair rollback inside
    /// `upgrade_install` is scrubbed).
    async fn rollback(
        &self,
        release: &str,
        namespace: &str,
        revision: u32,
    ) -> Result<(), HelmError>;

    /// The recorded revisions of `release`, oldest first; empty if there is no such
    /// release. Read-only. Errors: the kinds every method may return.
    async fn history(&self, release: &str, namespace: &str) -> Result<Vec<Revision>, HelmError>;
}

/// The executable `name` as `PATH` finds it (a name with a `/` is taken as a path).
pub fn find_in_path(name: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |p: &std::path::Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = std::path::PathBuf::from(name);
        return executable(&p).then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| executable(p))
    })
}
