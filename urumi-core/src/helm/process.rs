//! Running one helm process: the process limit, the deadline, stopping helm, and
//! turning its stderr into a secret-free, classified [`HelmError`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;
use tokio::process::Command;
use tokio::sync::Semaphore;

use super::error::classify;
use super::resident::{CallError, Resident};
use super::{HelmError, HelmErrorKind, Scrubber};

/// How much of helm's stderr an error message keeps (its tail: helm's reason is last).
pub(super) const MAX_STDERR: usize = 4096;

/// One helm invocation: what it is about (for errors) and how to scrub its output.
pub(super) struct Call<'a> {
    pub(super) operation: &'static str,
    pub(super) release: &'a str,
    pub(super) namespace: &'a str,
    pub(super) scrubber: &'a Scrubber,
}

impl Call<'_> {
    pub(super) fn error(&self, kind: HelmErrorKind, message: impl Into<String>) -> HelmError {
        HelmError::new(kind, self.operation, self.release, self.namespace, message)
    }
}

/// How helm processes are run: which binary, against which cluster, how many at once,
/// for how long.
#[derive(Debug)]
pub(super) struct Runner {
    pub(super) binary: PathBuf,
    pub(super) kubeconfig: Option<PathBuf>,
    pub(super) context: Option<String>,
    pub(super) timeout: Duration,
    pub(super) kill_grace: Duration,
    pub(super) permits: Semaphore,
    /// The long-lived process that answers every call instead, if one is configured.
    pub(super) resident: Option<Resident>,
}

impl Runner {
    /// Runs helm with `args` (plus the namespace and cluster flags) under the process
    /// limit and the deadline; returns stdout on exit 0.
    pub(super) async fn run(
        &self,
        call: &Call<'_>,
        args: Vec<OsString>,
    ) -> Result<Vec<u8>, HelmError> {
        let inner = self;
        let _permit =
            inner.permits.acquire().await.map_err(|_| {
                call.error(HelmErrorKind::Failed, "the helm process pool is closed")
            })?;
        if let Some(resident) = &inner.resident {
            return self.run_resident(resident, call, args).await;
        }

        let mut cmd = Command::new(&inner.binary);
        cmd.args(args).arg("--namespace").arg(call.namespace);
        if let Some(kubeconfig) = &inner.kubeconfig {
            cmd.arg("--kubeconfig").arg(kubeconfig);
        }
        if let Some(context) = &inner.context {
            cmd.arg("--kube-context").arg(context);
        }
        // helm gets a cleared environment plus what it needs: never the embedding
        // process's secrets (a state URL with its password, API keys).
        cmd.env_clear()
            .envs(helm_environment(inner.kubeconfig.is_none()));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());

        let started = Instant::now();
        let child = cmd.spawn().map_err(|e| {
            let hint = match e.kind() {
                std::io::ErrorKind::NotFound => {
                    " (not found: install helm or set HelmCliBuilder::binary)"
                }
                std::io::ErrorKind::PermissionDenied => " (not executable)",
                _ => "",
            };
            call.error(
                HelmErrorKind::Binary,
                format!("cannot run {}{hint}: {e}", inner.binary.display()),
            )
        })?;
        // If this future is dropped (the store's work was interrupted, the provisioner
        // shuts down), helm gets SIGTERM and a grace period to record the release as
        // failed rather than leave it `pending-*`; then SIGKILL.
        let mut guard = ChildGuard {
            child: Some(child),
            grace: inner.kill_grace,
        };
        let Some(child) = guard.child.as_mut() else {
            return Err(call.error(HelmErrorKind::Failed, "helm process vanished"));
        };
        // The pipes are drained by tasks of their own, which outlive the deadline: helm
        // reports a cancellation on stdout, and a write to a closed pipe would kill it
        // (SIGPIPE) before it records the release as failed.
        let mut stdout = tokio::spawn(read_all(child.stdout.take()));
        let mut stderr = tokio::spawn(read_all(child.stderr.take()));
        let finished = tokio::time::timeout(inner.timeout, async {
            let status = child.wait().await;
            (status, (&mut stdout).await, (&mut stderr).await)
        })
        .await;
        let (status, stdout, stderr) = match finished {
            Ok(done) => done,
            Err(_elapsed) => {
                // Stop and reap before returning, so no helm is left working on the
                // release when the caller decides what to do next.
                let how = stop(child, inner.kill_grace).await;
                stdout.abort();
                stderr.abort();
                tracing::warn!(
                    operation = call.operation,
                    release = call.release,
                    namespace = call.namespace,
                    timeout_ms = duration_ms(inner.timeout),
                    how,
                    "helm outlived its deadline and was stopped"
                );
                return Err(HelmError::timeout(
                    call.operation,
                    call.release,
                    call.namespace,
                    inner.timeout,
                ));
            }
        };
        let elapsed_ms = duration_ms(started.elapsed());
        let status = status
            .map_err(|e| call.error(HelmErrorKind::Failed, format!("waiting for helm: {e}")))?;
        let stdout = match stdout {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) => {
                let message = format!("reading helm's output: {e}");
                return Err(call.error(HelmErrorKind::Failed, message));
            }
            Err(e) => {
                let message = format!("reading helm's output: {e}");
                return Err(call.error(HelmErrorKind::Failed, message));
            }
        };
        let stderr = match stderr {
            Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            _ => String::new(),
        };

        finish(
            call,
            status.success(),
            stdout,
            &stderr,
            status.code(),
            elapsed_ms,
        )
    }

    /// [`Runner::run`] through the resident process: the same arguments, the same
    /// deadline, the same answers.
    async fn run_resident(
        &self,
        resident: &Resident,
        call: &Call<'_>,
        mut args: Vec<OsString>,
    ) -> Result<Vec<u8>, HelmError> {
        args.push("--namespace".into());
        args.push(call.namespace.into());
        let started = Instant::now();
        match resident
            .call(call.namespace, args, self.timeout, self.kill_grace)
            .await
        {
            Ok(answer) => finish(
                call,
                answer.code == 0,
                answer.stdout.into_bytes(),
                &answer.stderr,
                Some(answer.code),
                duration_ms(started.elapsed()),
            ),
            Err(CallError::Spawn(e)) => Err(call.error(
                HelmErrorKind::Binary,
                format!(
                    "cannot run the resident helm {}: {e}",
                    resident.binary.display()
                ),
            )),
            Err(CallError::Exited(words)) => Err(call.error(
                HelmErrorKind::Unavailable,
                call.scrubber.scrub(&words),
            )),
            Err(CallError::TimedOut) => {
                tracing::warn!(
                    operation = call.operation,
                    release = call.release,
                    namespace = call.namespace,
                    timeout_ms = duration_ms(self.timeout),
                    "the resident helm's call outlived its deadline and was cancelled"
                );
                Err(HelmError::timeout(
                    call.operation,
                    call.release,
                    call.namespace,
                    self.timeout,
                ))
            }
            Err(CallError::NotUtf8) => Err(call.error(
                HelmErrorKind::Failed,
                "an argument (a chart or values path) is not UTF-8, which the resident helm cannot be sent",
            )),
        }
    }
}

/// The outcome of one helm run: stdout on success; otherwise its scrubbed, classified
/// stderr.
fn finish(
    call: &Call<'_>,
    success: bool,
    stdout: Vec<u8>,
    stderr: &str,
    code: Option<i32>,
    elapsed_ms: u64,
) -> Result<Vec<u8>, HelmError> {
    if success {
        tracing::debug!(
            operation = call.operation,
            release = call.release,
            namespace = call.namespace,
            elapsed_ms,
            "helm finished"
        );
        return Ok(stdout);
    }
    let message = stderr_message(&call.scrubber.scrub(stderr), code);
    let kind = classify(&message);
    tracing::debug!(
        operation = call.operation,
        release = call.release,
        namespace = call.namespace,
        elapsed_ms,
        kind = kind.as_str(),
        "helm failed"
    );
    Err(call.error(kind, message))
}

/// Stops helm: SIGTERM, up to `grace` to exit (helm then records the release as
/// `failed`), else SIGKILL. Returns how it ended; the process is reaped either way.
/// Owns a running helm; stops it gracefully when dropped before it exited.
struct ChildGuard {
    child: Option<tokio::process::Child>,
    grace: Duration,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        let grace = self.grace;
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let how = stop(&mut child, grace).await;
                    tracing::info!(how, "helm stopped: its caller went away");
                });
            }
            Err(_) => {
                let _ = child.start_kill();
            }
        }
    }
}

/// The environment helm runs with: PATH, HOME, temp and cache locations, helm's own
/// settings, and (when no kubeconfig is given explicitly) how to find the cluster.
pub(super) fn helm_environment(cluster_from_env: bool) -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "PATH" | "HOME" | "TMPDIR" | "LANG" | "LC_ALL" | "TZ"
            ) || k.starts_with("HELM_")
                || k.starts_with("XDG_")
                || (cluster_from_env && (k == "KUBECONFIG" || k.starts_with("KUBERNETES_SERVICE_")))
        })
        .collect()
}

async fn stop(child: &mut tokio::process::Child, grace: Duration) -> &'static str {
    #[cfg(unix)]
    {
        use rustix::process::{Pid, Signal, kill_process};
        // The pid is still ours: the child has not been reaped (`id()` is `None` after).
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw);
        if let Some(pid) = pid
            && kill_process(pid, Signal::TERM).is_ok()
            && tokio::time::timeout(grace, child.wait()).await.is_ok()
        {
            return "exited on SIGTERM";
        }
    }
    match child.kill().await {
        Ok(()) => "killed",
        Err(e) => {
            tracing::warn!(error = %e, "could not kill helm");
            "could not be killed"
        }
    }
}

async fn read_all<R: tokio::io::AsyncRead + Unpin>(pipe: Option<R>) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_end(&mut buf).await?;
    }
    Ok(buf)
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The tail of helm's (scrubbed) stderr, without kubeconfig-permission noise.
pub(super) fn stderr_message(stderr: &str, code: Option<i32>) -> String {
    let kept: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with("WARNING: Kubernetes configuration file is"))
        .collect();
    let text = kept.join("\n");
    if text.is_empty() {
        return match code {
            Some(code) => format!("helm exited with status {code} and printed no reason"),
            None => "helm was killed by a signal".to_owned(),
        };
    }
    if text.len() <= MAX_STDERR {
        return text;
    }
    let mut start = text.len() - MAX_STDERR;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_stderr_keeps_its_tail() {
        let status = Some(1);
        let long = format!("{}\nError: the reason", "noise ".repeat(2000));
        let msg = stderr_message(&long, status);
        assert!(msg.len() <= MAX_STDERR + 4, "{}", msg.len());
        assert!(msg.ends_with("Error: the reason"));
        assert_eq!(
            stderr_message("", status),
            "helm exited with status 1 and printed no reason"
        );
    }
}

/// The helm processes on this machine working in `namespace` (`--namespace <ns>` on their
/// command line), with their parent's pid. Linux `/proc`; empty elsewhere.
pub(crate) fn helm_processes_in(namespace: &str) -> Vec<HelmProcess> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let is_helm = args
                .first()
                .is_some_and(|a| a.ends_with("/helm") || a == "helm");
            let in_namespace = args
                .windows(2)
                .any(|w| w[0] == "--namespace" && w[1] == namespace);
            if !(is_helm && in_namespace) {
                return None;
            }
            // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces.
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some(HelmProcess { pid, ppid, args })
        })
        .collect()
}

/// A helm process found in `/proc`.
#[derive(Debug, Clone)]
pub(crate) struct HelmProcess {
    pub(crate) pid: i32,
    pub(crate) ppid: i32,
    pub(crate) args: Vec<String>,
}

impl Runner {
    /// Stops helm processes left working in `namespace` by a dead owner: a process that
    /// was killed (kill -9, OOM) leaves its helm children running, orphaned. The caller
    /// holds the store's lease, so no live owner runs helm there; this process's own
    /// children are left alone, and so is helm pointed at another cluster (another
    /// `--kubeconfig`). SIGTERM, up to the kill grace to exit (helm records the release
    /// as failed), then SIGKILL. Returns how many were stopped.
    pub(super) async fn stop_leftovers(&self, namespace: &str) -> usize {
        let me = i32::try_from(std::process::id()).unwrap_or(-1);
        let ours = |p: &HelmProcess| {
            let kubeconfig = p
                .args
                .windows(2)
                .find(|w| w[0] == "--kubeconfig")
                .map(|w| PathBuf::from(&w[1]));
            p.ppid != me && kubeconfig == self.kubeconfig
        };
        let leftovers: Vec<HelmProcess> = helm_processes_in(namespace)
            .into_iter()
            .filter(ours)
            .collect();
        for p in &leftovers {
            tracing::warn!(
                pid = p.pid,
                namespace,
                "stopping a helm process a previous owner of this store left running"
            );
            stop_pid(p.pid, self.kill_grace).await;
        }
        leftovers.len()
    }
}

/// SIGTERM, up to `grace` for the process to go, then SIGKILL (not our child: polled).
async fn stop_pid(pid: i32, grace: Duration) {
    #[cfg(unix)]
    {
        use rustix::process::{Pid, Signal, kill_process};
        let Some(target) = Pid::from_raw(pid) else {
            return;
        };
        let alive = || std::path::Path::new(&format!("/proc/{pid}")).exists();
        if kill_process(target, Signal::TERM).is_err() {
            return;
        }
        let deadline = Instant::now() + grace;
        while alive() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if alive() {
            let _ = kill_process(target, Signal::KILL);
            while alive() && Instant::now() < deadline + Duration::from_secs(5) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (pid, grace);
}
