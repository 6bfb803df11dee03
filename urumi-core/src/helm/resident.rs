//! The resident helm: one long-lived `urumi-helm-resident` process (Go, helm's own library;
//! source in `urumi-core/helm-resident/`) that answers every helm call of a [`HelmCli`]
//! built with [`HelmCliBuilder::resident`], instead of a new `helm` process per call.
//!
//! ```text
//!  Runner::run(args) ──▶ Resident::call ── {"id","args"} line ──▶ stdin ┐
//!        ▲                    │ waits (deadline)                       │ urumi-helm-resident
//!        │                    │                                        │ (one goroutine per call,
//!        └── Answer ◀── reader task ◀── {"id","code","stdout","stderr"} ┘  discovery done once)
//!                             │
//!   deadline passed ─▶ {"id","cancel"}: helm marks the release failed and answers; then
//!                      (or after the grace) the process is killed, and the next call starts
//!                      a new one
//!   call dropped    ─▶ {"id","cancel"}, the same; the next call in that namespace first
//!                      waits for the cancelled one to end (grace)
//!   process exits   ─▶ every call in flight fails `unavailable`; the next call starts a new one
//! ```
//!
//! Why a cancelled call ends its process: helm's library stops waiting on a cancelled
//! context and records the release as failed, but the goroutine applying the release goes
//! on, and could later record its revision as deployed over a newer one. helm's CLI exits
//! right after (its SIGTERM handling); so does this, by being killed. Calls of other
//! releases in flight on that process then fail `unavailable` (retryable), and a retry
//! repairs what they left `pending-*`, as after any crash.
//!
//! A process saves what a new helm process pays on every call: starting (0.08 CPU-s: Go's
//! runtime and every Kubernetes type registered), reading the kubeconfig and discovering
//! the API. The answers are what helm prints (the same JSON, "Error: …" and exit code 1),
//! so parsing, scrubbing and classification are shared with the process mode.
//!
//! [`HelmCli`]: super::HelmCli
//! [`HelmCliBuilder::resident`]: super::HelmCliBuilder::resident

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Notify, oneshot};

use super::process::{MAX_STDERR, helm_environment};

/// What the resident process answered to one call: helm's exit code and output.
#[derive(Debug, Deserialize)]
pub(super) struct Answer {
    id: u64,
    pub(super) code: i32,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

#[derive(Serialize)]
struct Request<'a> {
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<&'a [String]>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cancel: bool,
}

/// Why a call got no answer.
#[derive(Debug)]
pub(super) enum CallError {
    /// The process could not be started.
    Spawn(std::io::Error),
    /// The process exited (or was killed) before answering; its last words.
    Exited(String),
    /// The deadline passed; the call was cancelled (and, if it did not end within the
    /// grace, the process was killed).
    TimedOut,
    /// An argument is not UTF-8 (the protocol is JSON).
    NotUtf8,
}

/// The resident helm of one driver: started on the first call, started again after it
/// exits.
#[derive(Debug)]
pub(super) struct Resident {
    pub(super) binary: PathBuf,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    current: Mutex<Option<Arc<Connection>>>,
    next_id: AtomicU64,
}

/// A call sent and not answered yet.
#[derive(Debug)]
struct Pending {
    namespace: String,
    /// Whoever waits for the answer; `None` once the caller gave up on it.
    reply: Option<oneshot::Sender<Answer>>,
}

/// What the reader task and the callers share.
#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<HashMap<u64, Pending>>,
    /// Notified whenever a call is answered or the process exits.
    settled: Notify,
    alive: AtomicBool,
    /// The process's pid (it is not reaped before the [`Connection`] drops, so the pid
    /// cannot be reused while this is held).
    pid: std::sync::atomic::AtomicU32,
    stderr_tail: Mutex<String>,
}

/// One running resident process. Dropping the last handle closes its stdin, on which it
/// cancels what is in flight and exits.
#[derive(Debug)]
struct Connection {
    stdin: tokio::sync::Mutex<ChildStdin>,
    child: Mutex<Child>,
    shared: Arc<Shared>,
}

impl Resident {
    pub(super) fn new(
        binary: PathBuf,
        kubeconfig: Option<PathBuf>,
        context: Option<String>,
    ) -> Self {
        Resident {
            binary,
            kubeconfig,
            context,
            current: Mutex::new(None),
            next_id: AtomicU64::new(1),
        }
    }

    /// Runs one helm command (`args` as helm's CLI takes them, `--namespace` included) and
    /// waits for its answer, at most `timeout`; a cancelled call gets `grace` to end.
    pub(super) async fn call(
        &self,
        namespace: &str,
        args: Vec<OsString>,
        timeout: Duration,
        grace: Duration,
    ) -> Result<Answer, CallError> {
        let args: Vec<String> = args
            .into_iter()
            .map(OsString::into_string)
            .collect::<Result<_, _>>()
            .map_err(|_| CallError::NotUtf8)?;
        let conn = self.connection()?;
        // A call on this namespace that was dropped may still be at work (its cancellation
        // reaches helm between API calls): wait for it, as the process mode waits for a
        // stopped helm, so that the caller's retry does not race it. Its end ends the
        // process, so the connection is asked for again.
        if !conn.shared.wait_abandoned_gone(namespace, grace).await {
            tracing::warn!(
                namespace,
                "a cancelled call of the resident helm did not end in time; restarting it"
            );
            conn.kill();
        }
        let mut conn = self.connection()?;

        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = Request {
            id,
            args: Some(&args),
            cancel: false,
        };
        // A process that just died (killed, crashed) may not have been noticed yet: its
        // pipe is broken. The request never reached it, so it is sent once more to a new one.
        let mut attempt = 0;
        let (answer, mut guard) = loop {
            let (reply, answer) = oneshot::channel();
            conn.shared.pending_lock().insert(
                id,
                Pending {
                    namespace: namespace.to_owned(),
                    reply: Some(reply),
                },
            );
            let guard = AbandonOnDrop {
                conn: Some(conn.clone()),
                id,
            };
            match conn.send(&request).await {
                Ok(()) => break (answer, guard),
                Err(e) => {
                    let mut guard = guard;
                    guard.conn = None;
                    conn.shared.pending_lock().remove(&id);
                    conn.kill();
                    attempt += 1;
                    if attempt == 2 {
                        return Err(CallError::Exited(format!("writing to it: {e}")));
                    }
                    conn = self.connection()?;
                }
            }
        };
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => {
                guard.conn = None;
                Ok(answer)
            }
            Ok(Err(_closed)) => {
                guard.conn = None;
                Err(CallError::Exited(conn.shared.last_words()))
            }
            Err(_elapsed) => {
                guard.conn = None;
                conn.shared.abandon(id);
                let _ = conn.send_cancel(id).await;
                if !conn.shared.wait_gone(id, grace).await {
                    tracing::warn!(
                        namespace,
                        "the resident helm did not end a timed-out call within the grace"
                    );
                }
                conn.kill();
                Err(CallError::TimedOut)
            }
        }
    }

    /// The running process, started if there is none or it exited.
    fn connection(&self) -> Result<Arc<Connection>, CallError> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(conn) = current.as_ref()
            && conn.shared.alive.load(Ordering::Acquire)
        {
            return Ok(conn.clone());
        }
        let conn = Arc::new(self.spawn()?);
        *current = Some(conn.clone());
        Ok(conn)
    }

    /// The pid of the running process, if one runs.
    pub(super) fn pid(&self) -> Option<u32> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let conn = current.as_ref()?;
        if !conn.shared.alive.load(Ordering::Acquire) {
            return None;
        }
        conn.child.lock().unwrap_or_else(|p| p.into_inner()).id()
    }

    fn spawn(&self) -> Result<Connection, CallError> {
        let mut cmd = Command::new(&self.binary);
        if let Some(kubeconfig) = &self.kubeconfig {
            cmd.arg("--kubeconfig").arg(kubeconfig);
        }
        if let Some(context) = &self.context {
            cmd.arg("--kube-context").arg(context);
        }
        cmd.env_clear()
            .envs(helm_environment(self.kubeconfig.is_none()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(CallError::Spawn)?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(CallError::Spawn(std::io::Error::other("no pipes")));
        };
        let shared = Arc::new(Shared::default());
        shared.alive.store(true, Ordering::Release);
        shared
            .pid
            .store(child.id().unwrap_or_default(), Ordering::Release);
        tracing::debug!(pid = child.id(), binary = %self.binary.display(), "resident helm started");
        tokio::spawn(read_answers(shared.clone(), stdout));
        tokio::spawn(keep_stderr_tail(shared.clone(), stderr));
        Ok(Connection {
            stdin: tokio::sync::Mutex::new(stdin),
            child: Mutex::new(child),
            shared,
        })
    }
}

impl Shared {
    fn pending_lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn abandon(&self, id: u64) {
        if let Some(p) = self.pending_lock().get_mut(&id) {
            p.reply = None;
        }
    }

    /// Waits until no abandoned call on `namespace` is in flight; `false` after `grace`.
    async fn wait_abandoned_gone(&self, namespace: &str, grace: Duration) -> bool {
        self.wait_until(grace, |pending| {
            !pending
                .values()
                .any(|p| p.reply.is_none() && p.namespace == namespace)
        })
        .await
    }

    /// Waits until call `id` is answered (or the process exited); `false` after `grace`.
    async fn wait_gone(&self, id: u64, grace: Duration) -> bool {
        self.wait_until(grace, |pending| !pending.contains_key(&id))
            .await
    }

    async fn wait_until(
        &self,
        grace: Duration,
        done: impl Fn(&HashMap<u64, Pending>) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            if done(&self.pending_lock()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                return done(&self.pending_lock());
            }
        }
    }

    /// Kills the process (SIGKILL): no new call goes to it, every call in flight fails,
    /// and the next call starts a new one.
    fn retire(&self) {
        self.alive.store(false, Ordering::Release);
        let pid = self.pid.load(Ordering::Acquire);
        if let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            && let Err(e) = rustix::process::kill_process(pid, rustix::process::Signal::KILL)
        {
            tracing::debug!(error = %e, "the resident helm was already gone");
        }
    }

    fn last_words(&self) -> String {
        let tail = self
            .stderr_tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .trim()
            .to_owned();
        if tail.is_empty() {
            "the resident helm process exited".to_owned()
        } else {
            format!("the resident helm process exited: {tail}")
        }
    }
}

impl Connection {
    async fn send(&self, request: &Request<'_>) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(request).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut stdin = self.stdin.lock().await;
        stdin.write_all(&line).await?;
        stdin.flush().await
    }

    async fn send_cancel(&self, id: u64) -> std::io::Result<()> {
        self.send(&Request {
            id,
            args: None,
            cancel: true,
        })
        .await
    }

    /// Kills the process; every call in flight fails and the next call starts a new one.
    fn kill(&self) {
        self.shared.retire();
    }
}

/// Marks a call abandoned and cancels it when its caller drops the future.
struct AbandonOnDrop {
    conn: Option<Arc<Connection>>,
    id: u64,
}

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        conn.shared.abandon(self.id);
        let id = self.id;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = conn.send_cancel(id).await;
            });
        }
    }
}

/// Hands each answer to its caller; when the process exits, fails every call in flight.
async fn read_answers(shared: Arc<Shared>, stdout: tokio::process::ChildStdout) {
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => match serde_json::from_str::<Answer>(&line) {
                Ok(answer) => {
                    let pending = shared.pending_lock().remove(&answer.id);
                    match pending {
                        Some(Pending {
                            reply: Some(reply), ..
                        }) => {
                            let _ = reply.send(answer);
                        }
                        // A cancelled call ended: its goroutine may still be applying the
                        // release, so the process goes (see the module docs).
                        Some(Pending { reply: None, .. }) => shared.retire(),
                        None => {}
                    }
                    shared.settled.notify_waiters();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "an unreadable answer from the resident helm");
                }
            },
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "reading the resident helm's answers");
                break;
            }
        }
    }
    shared.alive.store(false, Ordering::Release);
    // Dropping the senders fails every call still waiting.
    shared.pending_lock().clear();
    shared.settled.notify_waiters();
    tracing::debug!("resident helm exited");
}

/// Keeps the last few KiB of what the process says on stderr, for the error when it exits.
async fn keep_stderr_tail(shared: Arc<Shared>, mut stderr: tokio::process::ChildStderr) {
    let mut buf = [0u8; 4096];
    loop {
        match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let mut tail = shared.stderr_tail.lock().unwrap_or_else(|p| p.into_inner());
                tail.push_str(&String::from_utf8_lossy(&buf[..n]));
                if tail.len() > MAX_STDERR {
                    let mut start = tail.len() - MAX_STDERR;
                    while !tail.is_char_boundary(start) {
                        start += 1;
                    }
                    tail.replace_range(..start, "");
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "resident_tests.rs"]
mod tests;
