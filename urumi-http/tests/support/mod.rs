//! Runs the real `urumi-server` binary against the real local cluster.
//!
//! ```text
//!  require_cluster() ── KUBECONFIG from `eval "$(tests/cluster/up)"`, or the test FAILS
//!  Server::start()   ── temp dir: urumi.toml (keys: tenants acme + globex, an admin; fast
//!                       orchestrator; no limits) + SQLite ─▶ spawn, read "listening on URL"
//!        .restart() (same state)  .kill9()  .terminate() -> exit status
//!  Client            ── reqwest with a key; json()/problem() helpers
//!  Sse               ── a raw text/event-stream reader: (id, event, data) triples
//!  Cleanup           ── on drop: kubectl delete namespace store-<name> (also on panic)
//! ```
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::Rng;
use serde_json::Value;

/// How long a store may take to become Ready on the local cluster.
pub const READY_TIMEOUT: Duration = Duration::from_secs(150);
/// How long a store may take to disappear.
pub const GONE_TIMEOUT: Duration = Duration::from_secs(200);

/// Fails the test, naming the script, when there is no cluster.
pub fn require_cluster() {
    if std::env::var_os("KUBECONFIG").is_none() {
        panic!(
            "KUBECONFIG is not set: run `eval \"$(tests/cluster/up)\"` from the repository root \
             (it starts the local Kubernetes and puts kubectl and helm on PATH), then run the \
             tests again"
        );
    }
}

/// `<prefix>-<6 hex>`.
pub fn unique(prefix: &str) -> String {
    let n: u32 = rand::rng().random_range(0..0x100_0000);
    format!("{prefix}-{n:06x}")
}

fn random_key(who: &str) -> String {
    let n: u64 = rand::rng().random();
    format!("{who}-{n:016x}")
}

/// The keys a test server accepts.
#[derive(Clone, Debug)]
pub struct Keys {
    /// Tenant `acme`.
    pub acme: String,
    /// Tenant `globex`.
    pub globex: String,
    /// Admin (tenant `ops`).
    pub admin: String,
}

/// A running `urumi-server`.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its keys.
    pub keys: Keys,
    dir: tempfile::TempDir,
    extra: String,
    /// Top-level TOML lines (before any table), e.g. `operator = true`.
    pub top: String,
    /// `[provisioner.limits] storesPerTenant`.
    pub stores_per_tenant: u32,
    /// Lines inside `[provisioner]`, e.g. `storageClass = "missing"`.
    pub provisioner: String,
    /// `[provisioner.orchestrator] readinessTimeout`, seconds.
    pub readiness_timeout_secs: u32,
    /// The state URL; `None`: SQLite in the server's temp dir.
    pub state: Option<String>,
    /// A directory put first on the server's PATH (a wrapper `helm`, say).
    pub path_first: Option<PathBuf>,
}

impl Server {
    /// Starts a server with a fresh SQLite state; `extra` is appended to its TOML.
    pub fn start_with(extra: &str) -> Server {
        let mut server = Self::prepare(extra);
        server.spawn();
        server
    }

    /// Writes the config of a server with a fresh SQLite state (at [`Server::db_path`]) but
    /// does not start it: a bench seeds the state first, then calls [`Server::spawn`].
    pub fn prepare(extra: &str) -> Server {
        require_cluster();
        let dir = tempfile::tempdir().expect("temp dir");
        let keys = Keys {
            acme: random_key("acme"),
            globex: random_key("globex"),
            admin: random_key("admin"),
        };
        let server = Server {
            child: None,
            url: String::new(),
            keys,
            dir,
            extra: extra.to_owned(),
            top: String::new(),
            stores_per_tenant: 100_000,
            provisioner: String::new(),
            readiness_timeout_secs: 90,
            state: None,
            path_first: None,
        };
        server.write_config();
        server
    }

    /// Writes [`faulty_helm`] into `dir`, puts `dir` first on the server's PATH, adds
    /// `provisioner` lines to its `[provisioner]` section, and starts it.
    pub fn start_with_faulty_helm(dir: &std::path::Path, provisioner: &str) -> Server {
        faulty_helm(dir);
        let mut server = Server::prepare("");
        server.path_first = Some(dir.to_path_buf());
        server.provisioner = provisioner.to_owned();
        server.write_config();
        server.spawn();
        server
    }

    /// The SQLite file of its state.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("urumi.db")
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts a server with the default test settings.
    pub fn start() -> Server {
        Self::start_with("")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("urumi.toml")
    }

    /// Writes the config again (after changing `top` or `stores_per_tenant`).
    pub fn write_config(&self) {
        let db = self.db_path();
        let sha = urumi_http::auth::sha256_hex(&self.keys.globex);
        let text = format!(
            r#"listen = "127.0.0.1:0"
state = "{state}"
log_level = "info,urumi_core=info"
{top}

[[api_keys]]
name = "acme-billing"
key = "{acme}"
tenant = "acme"
role = "tenant"

[[api_keys]]
name = "globex-billing"
key_sha256 = "{sha}"
tenant = "globex"
role = "tenant"

[[api_keys]]
name = "ops"
key = "{admin}"
tenant = "ops"
role = "admin"

[provisioner]
namespaceDeletionTimeoutSecs = 150
{provisioner}

[provisioner.limits]
storesPerTenant = {stores_per_tenant}
creationsPerHour = 100000
storesTotal = 100000

[provisioner.orchestrator]
concurrency = 4
leaseTtl = 3
pollInterval = 0.2
readinessTimeout = {readiness_timeout_secs}
resyncInterval = 0
shutdownGrace = 10

[provisioner.orchestrator.retry]
maxAttempts = 8
base = 300
cap = 5000
{extra}
"#,
            acme = self.keys.acme,
            admin = self.keys.admin,
            extra = self.extra,
            top = self.top,
            stores_per_tenant = self.stores_per_tenant,
            provisioner = self.provisioner,
            readiness_timeout_secs = self.readiness_timeout_secs,
            state = self
                .state
                .clone()
                .unwrap_or_else(|| format!("sqlite://{}", db.display())),
        );
        std::fs::write(self.config_path(), text).expect("write config");
    }

    /// Starts the process on the written config and waits for its "listening on" line.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_urumi-server"));
        if let Some(dir) = &self.path_first {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", dir.display()));
        }
        let mut child = cmd
            .arg("--config")
            .arg(self.config_path())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn urumi-server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "urumi-server did not start; its log:\n{}",
                    std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
                )
            });
        self.url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        self.child = Some(child);
    }

    /// kill -9, then start again on the same state (a new port).
    pub fn kill9_and_restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM; waits for the exit and returns its code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts it again on the same state.
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A client with `key`.
    pub fn client(&self, key: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: self.url.clone(),
            key: Some(key.to_owned()),
        }
    }

    /// A client without a key.
    pub fn anonymous(&self) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: self.url.clone(),
            key: None,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// An answer: status, headers, JSON body (Null when not JSON).
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body.
    pub json: Value,
}

impl Answer {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json answer with `status` and `code`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.json);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.json
        );
        assert_eq!(self.json["code"], code, "{}", self.json);
        assert_eq!(self.json["status"], status, "{}", self.json);
        assert!(self.json["title"].is_string() && self.json["detail"].is_string());
    }
}

/// A key-holding HTTP client.
#[derive(Clone)]
pub struct Client {
    /// The reqwest client.
    pub http: reqwest::Client,
    /// Base URL.
    pub base: String,
    key: Option<String>,
}

impl Client {
    /// A request builder with the key.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(k) = &self.key {
            r = r.bearer_auth(k);
        }
        r
    }

    /// Sends and reads the answer.
    pub async fn send(&self, r: reqwest::RequestBuilder) -> Answer {
        let res = r.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            json,
        }
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    /// POST JSON.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(self.request(reqwest::Method::POST, path).json(&body))
            .await
    }

    /// PATCH JSON.
    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.send(self.request(reqwest::Method::PATCH, path).json(&body))
            .await
    }

    /// POST with no body.
    pub async fn post_empty(&self, path: &str) -> Answer {
        self.send(self.request(reqwest::Method::POST, path)).await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Answer {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    /// Sends `method path` with `idempotency_key` (and `body`) until the server answers, as a
    /// client whose call broke while the server restarted would: its status. Panics after
    /// 120 s without an answer.
    pub async fn until_answered(
        &self,
        method: reqwest::Method,
        path: &str,
        idempotency_key: &str,
        body: Option<&Value>,
    ) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mut r = self
                .request(method.clone(), path)
                .header("idempotency-key", idempotency_key);
            if let Some(b) = body {
                r = r.json(b);
            }
            match r.send().await {
                Ok(res) => return res.status().as_u16(),
                Err(e) => {
                    assert!(Instant::now() < deadline, "{method} {path}: no answer: {e}");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    }

    /// Polls GET /stores/{name} until `status` (panics on Failed or timeout).
    pub async fn wait_status(&self, name: &str, status: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let a = self.get(&format!("/api/v1/stores/{name}")).await;
            if a.status == 200 && a.json["status"] == status {
                return a.json;
            }
            if a.status == 200 && a.json["status"] == "Failed" && status != "Failed" {
                panic!("{name} failed: {}", a.json);
            }
            assert!(
                Instant::now() < deadline,
                "{name} not {status} in time: {}",
                a.json
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Polls until GET answers 404.
    pub async fn wait_gone(&self, name: &str) {
        let deadline = Instant::now() + GONE_TIMEOUT;
        loop {
            let a = self.get(&format!("/api/v1/stores/{name}")).await;
            if a.status == 404 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} not gone in time: {}",
                a.json
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Opens `/api/v1/events` (with `Last-Event-ID` when given).
    pub async fn sse(&self, last_event_id: Option<&str>) -> Sse {
        let mut r = self.request(reqwest::Method::GET, "/api/v1/events");
        if let Some(id) = last_event_id {
            r = r.header("last-event-id", id);
        }
        let res = r.send().await.expect("events");
        assert_eq!(res.status().as_u16(), 200);
        assert_eq!(
            res.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Sse {
            body: Box::pin(res.bytes_stream().map(|r| r.map(|b| b.to_vec()))),
            buf: String::new(),
        }
    }
}

/// One SSE event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// `id:`.
    pub id: Option<String>,
    /// `event:`.
    pub event: String,
    /// `data:` (joined).
    pub data: String,
}

/// A text/event-stream reader.
pub struct Sse {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<Vec<u8>>> + Send>>,
    buf: String,
}

impl Sse {
    /// The next event with data (comments and `retry:` skipped); None when the stream
    /// ends or nothing comes within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while let Some(cut) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..cut + 2).collect();
                let mut ev = SseEvent {
                    id: None,
                    event: "message".to_owned(),
                    data: String::new(),
                };
                let mut has_data = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        ev.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        ev.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if has_data {
                            ev.data.push('\n');
                        }
                        ev.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        has_data = true;
                    }
                }
                if has_data {
                    return Some(ev);
                }
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }
}

/// kubectl's stdout for `args` (from the cluster of `tests/cluster/up`).
pub fn kubectl(args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .args(args)
        .output()
        .expect("kubectl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `helm list -a -n namespace` as JSON rows (empty when there are none).
pub fn releases_in(namespace: &str) -> Vec<serde_json::Value> {
    let out = Command::new("helm")
        .args(["list", "-a", "-n", namespace, "-o", "json"])
        .output()
        .expect("helm");
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// Every value of store `name`'s credentials Secret (`<name>-credentials`), decoded:
/// (key, value) pairs, read with kubectl.
pub fn credential_values(name: &str) -> Vec<(String, String)> {
    let out = Command::new("kubectl")
        .args([
            "get",
            "secret",
            "-n",
            &format!("store-{name}"),
            &format!("{name}-credentials"),
            "-o",
            r#"go-template={{range $k, $v := .data}}{{$k}}={{$v | base64decode}}{{"\n"}}{{end}}"#,
        ])
        .output()
        .expect("kubectl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The `webhook-secret` of a store's credentials Secret.
pub fn webhook_secret(name: &str) -> String {
    credential_values(name)
        .into_iter()
        .find(|(k, _)| k == "webhook-secret")
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// Writes into `dir` a `helm` that fails or hangs on demand, else runs the real one; put
/// `dir` first on the server's PATH (`Server::path_first`).
///
/// ```text
///  helm upgrade … --namespace store-X   while dir/reject-X exists ─▶ exit 1, an "admission
///                                         webhook … denied the request" error on stderr
///                                        while dir/hang-X exists   ─▶ sleeps an hour
///  anything else                                                    ─▶ exec the real helm
/// ```
pub fn faulty_helm(dir: &std::path::Path) {
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v helm"])
            .output()
            .expect("sh")
            .stdout,
    )
    .expect("utf-8");
    let script = format!(
        r#"#!/bin/sh
# A helm that fails or hangs on demand (urumi-http/tests/support), else the real one.
ns=""; prev=""; op="$1"
for a in "$@"; do [ "$prev" = "--namespace" ] && ns="$a"; prev="$a"; done
store="${{ns#store-}}"
if [ "$op" = "upgrade" ] && [ -e "{dir}/reject-$store" ]; then
  echo 'Error: UPGRADE FAILED: admission webhook "deny.example" denied the request: pods are not allowed here' >&2
  exit 1
fi
if [ "$op" = "upgrade" ] && [ -e "{dir}/hang-$store" ]; then
  exec sleep 3600
fi
exec {real} "$@"
"#,
        dir = dir.display(),
        real = real.trim()
    );
    let path = dir.join("helm");
    std::fs::write(&path, script).expect("write the faulty helm");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Prints `line` and appends it to the file named by `URUMI_COUNTS` (set by `tests/all`,
/// which prints every suite's counts together at the end): the figures the fault, input and
/// secret suites must hold at zero.
pub fn report_count(line: &str) {
    println!("{line}");
    if let Some(path) = std::env::var_os("URUMI_COUNTS") {
        use std::io::Write as _;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// Deletes the namespaces of the named stores on drop (also when a test panics).
#[derive(Default)]
pub struct Cleanup(pub Vec<String>);

impl Cleanup {
    /// Adds a store.
    pub fn add(&mut self, name: &str) {
        self.0.push(name.to_owned());
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("kubectl")
                .args([
                    "delete",
                    "namespace",
                    &format!("store-{name}"),
                    "--wait=false",
                    "--ignore-not-found",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
