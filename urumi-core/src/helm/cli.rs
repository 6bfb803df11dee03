//! [`HelmCli`]: the [`HelmDriver`] that runs the real `helm` binary.
//!
//! ```text
//!  call ──permit (semaphore, N)──▶ spawn helm (kill_on_drop) ──┬─ exit 0 ──▶ stdout
//!                                       │ deadline             └─ exit ≠ 0 ▶ scrub(stderr) ▶ classify
//!                                       └──▶ SIGTERM, grace, SIGKILL, reap ──▶ Timeout
//! ```
//!
//! helm gets its own `--timeout` (for hooks), shorter than the deadline after which
//! this driver stops it, so that normally helm ends on its own and records a `failed`
//! revision rather than leaving a `pending-*` one behind. At the deadline helm gets
//! SIGTERM (on which it marks the release `failed` and exits) and, after a short grace,
//! SIGKILL; the call returns only once the process is gone. A dropped call (a cancelled
//! task) kills helm at once instead: the caller may retry right away, and a retry must
//! not race a helm that is still shutting down.

use std::ffi::OsString;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use super::output::{parse_history, parse_release};
use super::process::{Call, Runner};
use super::repair::{self, Repair};
use super::resident::Resident;
use super::storage::{self, ReadError};
use super::{
    HelmDriver, HelmError, HelmErrorKind, Release, ReleaseStatus, Revision, Scrubber,
    UpgradeOptions,
};

/// Builds a [`HelmCli`]. Every setting has a default; `build` cannot fail.
#[derive(Debug, Clone)]
pub struct HelmCliBuilder {
    binary: PathBuf,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    timeout: Duration,
    helm_timeout: Option<Duration>,
    kill_grace: Duration,
    max_concurrent: usize,
    values_dir: Option<PathBuf>,
    history_max: u32,
    history_reader: Option<HistoryReader>,
    openapi_validation: bool,
    resident: Option<PathBuf>,
}

/// The client [`HelmCliBuilder::read_history_from`] reads release records with.
#[derive(Clone)]
struct HistoryReader(kube::Client);

impl fmt::Debug for HistoryReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HistoryReader(kube::Client)")
    }
}

impl Default for HelmCliBuilder {
    fn default() -> Self {
        Self {
            binary: PathBuf::from("helm"),
            kubeconfig: None,
            context: None,
            timeout: Duration::from_secs(300),
            helm_timeout: None,
            kill_grace: Duration::from_secs(5),
            max_concurrent: 4,
            values_dir: None,
            history_max: 10,
            history_reader: None,
            openapi_validation: true,
            resident: None,
        }
    }
}

impl HelmCliBuilder {
    /// The `helm` binary: a path, or a name looked up in `PATH`. Default `helm`.
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = binary.into();
        self
    }

    /// The kubeconfig file, passed as `--kubeconfig`. Default: helm's own lookup
    /// (`KUBECONFIG`, then `~/.kube/config`, then in-cluster).
    pub fn kubeconfig(mut self, path: impl Into<PathBuf>) -> Self {
        self.kubeconfig = Some(path.into());
        self
    }

    /// The kubeconfig context, passed as `--kube-context`. Default: the current one.
    pub fn context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }

    /// The deadline of every helm process; at it the process is stopped (see
    /// [`kill_grace`](Self::kill_grace)) and the call fails with
    /// [`HelmErrorKind::Timeout`]. Default 5 minutes.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// helm's own `--timeout` (how long it waits for hooks). Default: nine tenths of
    /// [`timeout`](Self::timeout), so helm gives up, and records the failure, first.
    pub fn helm_timeout(mut self, timeout: Duration) -> Self {
        self.helm_timeout = Some(timeout);
        self
    }

    /// How long helm may take to exit after SIGTERM at the deadline before it gets
    /// SIGKILL. Default 5 seconds.
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// How many helm processes may run at once; further calls wait their turn (the
    /// wait does not count against the deadline). Default 4; at least 1.
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n.max(1);
        self
    }

    /// Where values files are written (mode 0600, removed when the call ends).
    /// Default: the system temporary directory.
    pub fn values_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.values_dir = Some(dir.into());
        self
    }

    /// How many revisions helm keeps per release (`--history-max`). Default 10.
    pub fn history_max(mut self, n: u32) -> Self {
        self.history_max = n;
        self
    }

    /// Reads release histories (`history`, `status`, and the check for an interrupted run
    /// before every upgrade) from helm's storage Secrets with `client`, one API call each,
    /// instead of starting `helm history`: four of the five helm processes a new store
    /// took. `client` must reach the cluster helm does (the same kubeconfig and context).
    /// Ignored when `HELM_DRIVER` names a storage other than Secrets. Default: off.
    pub fn read_history_from(mut self, client: kube::Client) -> Self {
        self.history_reader = Some(HistoryReader(client));
        self
    }

    /// Whether helm checks every rendered object against the cluster's OpenAPI schema
    /// before an install or upgrade (helm's own default, `true`). `false` passes
    /// `--disable-openapi-validation`: helm no longer fetches and parses the schema on each
    /// call (about 0.3 CPU-s and 0.8 s per install on the local cluster), and the API
    /// server still validates each object (a wrong type or a missing field is refused
    /// there; an unknown field is dropped with a warning instead of failing the install).
    /// Values are still checked against the chart's `values.schema.json`.
    pub fn openapi_validation(mut self, validate: bool) -> Self {
        self.openapi_validation = validate;
        self
    }

    /// Runs every call in one long-lived `urumi-helm-resident` process (`binary`, a path or
    /// a name looked up on `PATH`) instead of a new `helm` process per call. It is helm's
    /// own library behind the same arguments and answers, so releases, histories, locks
    /// and errors are the same as with the `helm` binary, and helm's CLI keeps working
    /// on them. It saves what every helm process pays: starting, loading the kubeconfig,
    /// and discovering the cluster's API (kept in memory, refreshed every 30 s). See
    /// docs/performance.md for the figures. Build it with `make helm-resident` (Go; the
    /// source is in `urumi-core/helm-resident/`).
    ///
    /// The process starts on the first call and again after it exits. A call past its
    /// deadline, or whose future is dropped, is cancelled (helm records the release as
    /// failed) and then the process is ended, as helm's CLI exits on SIGTERM: helm's
    /// library would otherwise go on applying the cancelled release in the background.
    /// Calls of other releases then in flight fail `unavailable` (retryable), and their
    /// retry repairs what they left `pending-*`. When the driver is dropped, or this
    /// process dies, the resident process sees its input close, cancels what it was doing
    /// and exits. [`binary`](Self::binary) is not used in this mode. Default: off.
    pub fn resident(mut self, binary: impl Into<PathBuf>) -> Self {
        self.resident = Some(binary.into());
        self
    }

    /// The driver.
    pub fn build(self) -> HelmCli {
        let helm_timeout = self
            .helm_timeout
            .unwrap_or_else(|| self.timeout.mul_f64(0.9));
        let resident = self.resident.map(|binary| {
            let binary = super::find_in_path(&binary.to_string_lossy()).unwrap_or(binary);
            Resident::new(binary, self.kubeconfig.clone(), self.context.clone())
        });
        HelmCli {
            inner: Arc::new(Inner {
                runner: Runner {
                    binary: self.binary,
                    kubeconfig: self.kubeconfig,
                    context: self.context,
                    timeout: self.timeout,
                    kill_grace: self.kill_grace,
                    permits: Semaphore::new(self.max_concurrent),
                    resident,
                },
                helm_timeout,
                max_concurrent: self.max_concurrent,
                values_dir: self.values_dir,
                history_max: self.history_max,
                history_reader: self.history_reader.filter(|_| storage::helm_uses_secrets()),
                openapi_validation: self.openapi_validation,
            }),
        }
    }
}

/// The [`HelmDriver`] that runs the `helm` binary. Cheap to clone (clones share the
/// process limit).
///
/// ```no_run
/// # use std::time::Duration;
/// use urumi_core::helm::{HelmCli, HelmDriver, UpgradeOptions};
/// # async fn demo() -> Result<(), urumi_core::helm::HelmError> {
/// let helm = HelmCli::builder()
///     .kubeconfig("/etc/urumi/kubeconfig")
///     .timeout(Duration::from_secs(120))
///     .max_concurrent(8)
///     .build();
/// let values = serde_json::json!({"wordpress": {"existingSecret": "shop1-credentials"}});
/// let release = helm
///     .upgrade_install("shop1", "store-shop1", "charts/woocommerce-store".as_ref(), values, &UpgradeOptions::new())
///     .await?;
/// println!("{} is {} at revision {}", release.name, release.status, release.revision);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HelmCli {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    runner: Runner,
    helm_timeout: Duration,
    max_concurrent: usize,
    values_dir: Option<PathBuf>,
    history_max: u32,
    history_reader: Option<HistoryReader>,
    openapi_validation: bool,
}

impl Default for HelmCli {
    fn default() -> Self {
        Self::new()
    }
}

impl HelmCli {
    /// A driver with every default: `helm` from `PATH`, helm's kubeconfig lookup.
    pub fn new() -> Self {
        HelmCliBuilder::default().build()
    }

    /// A builder to configure the driver.
    pub fn builder() -> HelmCliBuilder {
        HelmCliBuilder::default()
    }

    /// The deadline of every helm process.
    pub fn timeout(&self) -> Duration {
        self.inner.runner.timeout
    }

    /// The pid of the resident process ([`HelmCliBuilder::resident`]) if it is running;
    /// `None` in process mode or before the first call.
    pub fn resident_pid(&self) -> Option<u32> {
        self.inner.runner.resident.as_ref()?.pid()
    }

    /// How many helm processes may run at once.
    pub fn max_concurrent(&self) -> usize {
        self.inner.max_concurrent
    }

    fn helm_timeout_arg(&self) -> OsString {
        let ms = self.inner.helm_timeout.as_millis().max(1000);
        OsString::from(format!("{ms}ms"))
    }

    async fn run(&self, call: &Call<'_>, args: Vec<OsString>) -> Result<Vec<u8>, HelmError> {
        self.inner.runner.run(call, args).await
    }

    async fn history_of(
        &self,
        call: &Call<'_>,
        max: Option<u32>,
    ) -> Result<Vec<Revision>, HelmError> {
        if let Some(HistoryReader(client)) = &self.inner.history_reader {
            return storage::history(client, call.namespace, call.release, max)
                .await
                .map_err(|e| match e {
                    ReadError::Unavailable(why) => call.error(
                        HelmErrorKind::Unavailable,
                        format!("reading the release record: {why}"),
                    ),
                    ReadError::Refused(why) => call.error(
                        HelmErrorKind::Failed,
                        format!("reading the release record was refused: {why}"),
                    ),
                    ReadError::Undecodable(why) => call.error(HelmErrorKind::Output, why),
                });
        }
        let mut args: Vec<OsString> = vec![
            "history".into(),
            call.release.into(),
            "--output".into(),
            "json".into(),
        ];
        if let Some(max) = max {
            args.push("--max".into());
            args.push(max.to_string().into());
        }
        match self.run(call, args).await {
            Ok(stdout) => parse_history(&stdout)
                .map_err(|e| call.error(HelmErrorKind::Output, format!("helm history: {}", e.0))),
            Err(e) if e.kind() == HelmErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// `helm uninstall`; with `wait_until_gone`, also waits (foreground cascade) until
    /// every object of the release is deleted, so that a reinstall does not adopt objects
    /// still being deleted (a PersistentVolumeClaim held by an old pod, pods still
    /// counted by the quota).
    async fn uninstall_release(
        &self,
        call: &Call<'_>,
        wait_until_gone: bool,
    ) -> Result<(), HelmError> {
        let mut args: Vec<OsString> = vec![
            "uninstall".into(),
            call.release.into(),
            "--ignore-not-found".into(),
            "--timeout".into(),
            self.helm_timeout_arg(),
        ];
        if wait_until_gone {
            args.extend(["--wait".into(), "--cascade".into(), "foreground".into()]);
        }
        match self.run(call, args).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == HelmErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn rollback_release(&self, call: &Call<'_>, revision: u32) -> Result<(), HelmError> {
        let args: Vec<OsString> = vec![
            "rollback".into(),
            call.release.into(),
            revision.to_string().into(),
            "--timeout".into(),
            self.helm_timeout_arg(),
            "--history-max".into(),
            self.inner.history_max.to_string().into(),
        ];
        self.run(call, args).await.map(drop)
    }

    /// Writes the values to a fresh 0600 file; it is removed when the handle drops.
    fn write_values(
        &self,
        call: &Call<'_>,
        values: &serde_json::Value,
    ) -> Result<tempfile::NamedTempFile, HelmError> {
        let fail = |what: &str, e: std::io::Error| {
            call.error(
                HelmErrorKind::Failed,
                format!("{what} the values file: {e}"),
            )
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix("urumi-values-").suffix(".json");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            builder.permissions(std::fs::Permissions::from_mode(0o600));
        }
        let mut file = match &self.inner.values_dir {
            Some(dir) => builder.tempfile_in(dir),
            None => builder.tempfile(),
        }
        .map_err(|e| fail("creating", e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = file
                .as_file()
                .metadata()
                .map_err(|e| fail("checking", e))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(call.error(
                    HelmErrorKind::Failed,
                    format!(
                        "the values file was created with mode {:o}, not 600",
                        mode & 0o777
                    ),
                ));
            }
        }
        serde_json::to_writer(&mut file, values)
            .map_err(|e| fail("writing", std::io::Error::other(e.to_string())))?;
        file.flush().map_err(|e| fail("writing", e))?;
        Ok(file)
    }
}

#[async_trait]
impl HelmDriver for HelmCli {
    async fn upgrade_install(
        &self,
        release: &str,
        namespace: &str,
        chart: &Path,
        values: serde_json::Value,
        opts: &UpgradeOptions,
    ) -> Result<Release, HelmError> {
        let scrubber = Scrubber::from_values(&values, opts.secret_strings());
        let call = Call {
            operation: "upgrade",
            release,
            namespace,
            scrubber: &scrubber,
        };
        let values = match values {
            serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
            v @ serde_json::Value::Object(_) => v,
            _ => {
                return Err(call.error(HelmErrorKind::Rejected, "values must be a JSON object"));
            }
        };
        if tokio::fs::metadata(chart).await.is_err() {
            return Err(call.error(
                HelmErrorKind::Rejected,
                format!(
                    "no chart at {} (a chart directory or a packaged .tgz)",
                    chart.display()
                ),
            ));
        }

        // A dead owner's helm may still be at work on this release (kill -9 orphans its
        // children): stop it before reading the history it would otherwise keep changing.
        self.inner.runner.stop_leftovers(namespace).await;
        let history = self
            .history_of(
                &Call {
                    operation: "history",
                    ..call
                },
                None,
            )
            .await?;
        match repair::plan(&history) {
            Repair::None => {}
            Repair::Uninstall => {
                let status = history
                    .last()
                    .map(|r| r.status)
                    .unwrap_or(ReleaseStatus::Unknown);
                tracing::warn!(release, namespace, %status, "uninstalling a release an interrupted helm run left behind");
                self.uninstall_release(
                    &Call {
                        operation: "uninstall",
                        ..call
                    },
                    true,
                )
                .await?;
            }
            Repair::Rollback(revision) => {
                let status = history
                    .last()
                    .map(|r| r.status)
                    .unwrap_or(ReleaseStatus::Unknown);
                tracing::warn!(release, namespace, %status, revision, "rolling back a release an interrupted helm run left behind");
                self.rollback_release(
                    &Call {
                        operation: "rollback",
                        ..call
                    },
                    revision,
                )
                .await?;
            }
        }

        let values_file = self.write_values(&call, &values)?;
        let mut args: Vec<OsString> = vec![
            "upgrade".into(),
            "--install".into(),
            release.into(),
            chart.into(),
            "--values".into(),
            values_file.path().into(),
            "--reset-values".into(),
            "--output".into(),
            "json".into(),
            "--timeout".into(),
            self.helm_timeout_arg(),
            "--history-max".into(),
            self.inner.history_max.to_string().into(),
        ];
        if let Some(description) = opts.description_text() {
            args.push("--description".into());
            args.push(description.into());
        }
        if !self.inner.openapi_validation {
            args.push("--disable-openapi-validation".into());
        }
        let outcome = self.run(&call, args).await;
        if let Err(e) = values_file.close() {
            tracing::warn!(release, namespace, error = %e, "could not remove the values file");
        }
        let stdout = outcome?;
        parse_release(&stdout)
            .map_err(|e| call.error(HelmErrorKind::Output, format!("helm upgrade: {}", e.0)))
    }

    async fn uninstall(&self, release: &str, namespace: &str) -> Result<(), HelmError> {
        self.inner.runner.stop_leftovers(namespace).await;
        let scrubber = Scrubber::default();
        self.uninstall_release(
            &Call {
                operation: "uninstall",
                release,
                namespace,
                scrubber: &scrubber,
            },
            false,
        )
        .await
    }

    async fn status(
        &self,
        release: &str,
        namespace: &str,
    ) -> Result<Option<ReleaseStatus>, HelmError> {
        let scrubber = Scrubber::default();
        let call = Call {
            operation: "status",
            release,
            namespace,
            scrubber: &scrubber,
        };
        // `history --max 1` rather than `status`: same answer, and its JSON carries no
        // values (no secrets) and no chart files.
        let history = self.history_of(&call, Some(1)).await?;
        Ok(history.last().map(|r| r.status))
    }

    async fn rollback(
        &self,
        release: &str,
        namespace: &str,
        revision: u32,
    ) -> Result<(), HelmError> {
        let scrubber = Scrubber::default();
        self.rollback_release(
            &Call {
                operation: "rollback",
                release,
                namespace,
                scrubber: &scrubber,
            },
            revision,
        )
        .await
    }

    async fn history(&self, release: &str, namespace: &str) -> Result<Vec<Revision>, HelmError> {
        let scrubber = Scrubber::default();
        self.history_of(
            &Call {
                operation: "history",
                release,
                namespace,
                scrubber: &scrubber,
            },
            None,
        )
        .await
    }
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
