//! A provisioning process killed with SIGKILL mid-provisioning, then started again:
//! the store still reaches Ready, with one namespace and one helm release.
//!
//! ```text
//!  eval "$(tests/cluster/up)"
//!  cargo build -p urumi-core --example lifecycle     # the test also runs this itself
//!  cargo test -p urumi-core --test lifecycle_crash -- --nocapture
//!
//!  lifecycle up NAME --state sqlite://… --lease-ttl 60 ──stderr "[NAME] Provisioning release"──▶
//!     kill -9 (the whole process group: the example and its helm, as a dead pod would;
//!     or the example alone, leaving its helm orphaned and running)
//!  lifecycle up NAME … ──▶ exit 0, Ready ──▶ one namespace, `helm list` one row, deployed
//!  lifecycle down NAME … ──▶ nothing remains
//!
//!  lifecycle resize NAME --plan large … ──"[NAME] Updating release"──▶ kill -9 (group)
//!  lifecycle resize NAME --plan large … ──▶ Ready on large, quota settled, one deployed release
//!
//!  lifecycle upgrade NAME --chart 9.9.9.tgz … ──"[NAME] Updating release"──▶ kill -9 (group)
//!  lifecycle upgrade NAME --chart 9.9.9.tgz … ──▶ Ready on 9.9.9, one deployed release,
//!     no pending-*
//! ```
//!
//! SQLite has one owner process: the restarted one takes the store back at once (Ready
//! long before the dead process's 60 s lease would lapse), and a second process on the
//! file is refused. PostgreSQL serves several processes, so a restart waits for the lease
//! TTL (20 s there); both times are printed.
//!
//! The example binary is the one under `target/<profile>/examples/` next to this test.
//! Without KUBECONFIG the tests fail (never skip).

mod lifecycle_support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use lifecycle_support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use urumi_core::store::{Status, Step, StoreName};

/// `target/<profile>/examples/lifecycle`, built first when run under cargo.
fn lifecycle_binary() -> PathBuf {
    if let Ok(cargo) = std::env::var("CARGO") {
        let status = std::process::Command::new(cargo)
            .args(["build", "-q", "-p", "urumi-core", "--example", "lifecycle"])
            .status()
            .expect("run cargo build --example lifecycle");
        assert!(
            status.success(),
            "cargo build -p urumi-core --example lifecycle failed"
        );
    }
    let exe = std::env::current_exe().expect("this test's path");
    // target/<profile>/deps/lifecycle_crash-<hash> → target/<profile>/examples/lifecycle
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let bin = profile_dir.join("examples").join("lifecycle");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p urumi-core --example lifecycle`",
        bin.display()
    );
    bin
}

/// The lease TTL of the SQLite runs: a restart that waited it out could not be Ready
/// before it.
const SQLITE_LEASE_SECS: u64 = 60;
/// The lease TTL of the PostgreSQL run (a restart waits it out: other replicas may live).
const POSTGRES_LEASE_SECS: u64 = 20;

fn up(bin: &PathBuf, name: &str, state: &str, lease_secs: u64) -> Command {
    let mut cmd = Command::new(bin);
    let ttl = lease_secs.to_string();
    cmd.args(["up", name, "--state", state, "--lease-ttl", &ttl])
        .args(["--timeout", "240"])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Starts `cmd` in a process group of its own and reads its stderr until a line starts
/// with `marker` (failing the test, with what it printed, if none does in time). Returns
/// the child, its pid (the group's id) and its stderr, which the caller keeps open so that
/// the child's progress lines still have somewhere to go.
async fn started_until(
    mut cmd: Command,
    marker: &str,
) -> (
    tokio::process::Child,
    u32,
    tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start the lifecycle example");
    let pid = child.id().expect("pid");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(READY_TIMEOUT, async {
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            let hit = line.starts_with(marker);
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(found, "never saw {marker:?}; stderr:\n{}", seen.join("\n"));
    (child, pid, lines)
}

/// When to kill, once the progress shows the step.
#[derive(Debug, Clone, Copy, PartialEq)]
enum When {
    /// At once.
    Now,
    /// As soon as helm has recorded the release (usually `pending-install`: helm is
    /// still running and dies with the process).
    HelmStarted,
}

/// Which state the crashed process used.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Sqlite,
    Postgres,
}

/// Runs `lifecycle up`, kills it with SIGKILL at step `at` (`when`) — its whole process
/// group, or (`orphan_helm`) the example alone so that its helm keeps running — then runs
/// `up` again and checks the store came out right.
async fn killed_at_then_restarted(at: Step, when: When, state: State, orphan_helm: bool) {
    let client = kube_client().await;
    let bin = lifecycle_binary();
    let dir = tempfile::tempdir().expect("temporary directory");
    let (state_url, lease_secs) = match state {
        State::Sqlite => (
            format!("sqlite://{}", dir.path().join("urumi.db").display()),
            SQLITE_LEASE_SECS,
        ),
        State::Postgres => (postgres_schema_url().await, POSTGRES_LEASE_SECS),
    };
    let name = unique(&format!("lc-kill-{}", &at.as_str()[..3]));
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);

    // 1. Start, and kill at the step.
    let marker = format!("[{name}] Provisioning {}", at.as_str());
    let (mut child, pid, _stderr) =
        started_until(up(&bin, &name, &state_url, lease_secs), &marker).await;
    if when == When::HelmStarted {
        let ns = namespace_of(&name);
        tokio::time::timeout(Duration::from_secs(60), async {
            while helm_list(&ns).await.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("helm records the release");
    }
    let target = if orphan_helm {
        pid.to_string()
    } else {
        format!("-{pid}")
    };
    let killed = std::process::Command::new("kill")
        .args(["-KILL", "--", &target])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -9 {target}");
    let status = child.wait().await.expect("wait for the killed process");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "killed by SIGKILL: {status:?}"
    );

    // What the crash left: a record neither Ready nor Failed, at or past the step.
    let record = {
        let state = urumi_core::state::open(&state_url)
            .await
            .expect("open the state file");
        state
            .get(&StoreName::new(name.clone()).expect("name"))
            .await
            .expect("the record survived")
    };
    eprintln!(
        "killed at {}: record {} {} ({}); releases: {:?}",
        at.as_str(),
        record.status,
        record.step,
        record.message,
        helm_list(&namespace_of(&name)).await
    );
    assert_eq!(record.status, Status::Provisioning, "{record:?}");
    assert_eq!(record.attempts, 1, "{record:?}");
    assert!(record.step >= at, "{record:?}");

    // 2. Start again: it picks the store up at once (SQLite: the file's new owner), or
    // once the dead process's lease lapses (PostgreSQL).
    let started = std::time::Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        up(&bin, &name, &state_url, lease_secs).output(),
    )
    .await
    .expect("the restarted process finishes")
    .expect("run lifecycle up again");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "restarted up exited {:?}; stderr:\n{stderr}",
        out.status
    );
    let store: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is the store as JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let resumed = started.elapsed();
    eprintln!(
        "{state:?}, killed at {}{}: restart → {} in {:.1} s (lease TTL {lease_secs} s)",
        at.as_str(),
        if orphan_helm { ", helm orphaned" } else { "" },
        store["status"],
        resumed.as_secs_f64()
    );
    if state == State::Sqlite {
        assert!(
            resumed < Duration::from_secs(SQLITE_LEASE_SECS),
            "the restarted owner of the SQLite file waited out the dead process's lease \
             ({:.1} s)",
            resumed.as_secs_f64()
        );
    }
    assert_eq!(store["status"], "Ready", "{store}");
    assert_eq!(store["step"], "done", "{store}");
    report_count(&format!(
        "crash: {state:?}, kill -9 in the {} step{}: restart → Ready in {:.1} s (lease TTL \
         {lease_secs} s)",
        at.as_str(),
        if orphan_helm {
            ", helm left running"
        } else {
            ""
        },
        resumed.as_secs_f64()
    ));
    assert_eq!(
        store["attempts"], 1,
        "a resumed store is not a retry: {store}"
    );

    // 3. One of everything.
    let ns = namespace_of(&name);
    assert_eq!(namespaces_labelled(&client, &name).await, vec![ns.clone()]);
    let releases = helm_list(&ns).await;
    assert_eq!(releases.len(), 1, "{releases:?}");
    assert_eq!(releases[0].name, name);
    assert_eq!(releases[0].status, "deployed", "{releases:?}");
    let secret = credentials_secret(&client, &name)
        .await
        .expect("credentials Secret");
    assert!(!secret_values(&secret).is_empty());

    // 4. Down: nothing remains.
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        Command::new(&bin)
            .args(["down", &name, "--state", &state_url])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("down finishes")
    .expect("run lifecycle down");
    assert!(
        out.status.success(),
        "down exited {:?}; stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let left = leftovers_after_grace(&client, &name).await;
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_the_release_step_then_restarted_reaches_ready_once() {
    killed_at_then_restarted(Step::Release, When::HelmStarted, State::Sqlite, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_the_release_step_with_helm_left_running_then_restarted() {
    killed_at_then_restarted(Step::Release, When::HelmStarted, State::Sqlite, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_the_readiness_step_then_restarted_reaches_ready_once() {
    killed_at_then_restarted(Step::Readiness, When::Now, State::Sqlite, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_restart_resumes_within_the_lease_ttl() {
    killed_at_then_restarted(Step::Release, When::HelmStarted, State::Postgres, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_sqlite_file_is_refused() {
    let bin = lifecycle_binary();
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("urumi.db");
    let state_url = format!("sqlite://{}", path.display());
    // This process owns the file…
    let owner = urumi_core::state::SqliteStore::open(&path)
        .await
        .expect("open");
    // …so another one is refused before it changes anything, naming this pid.
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        up(&bin, "refused1", &state_url, 3).output(),
    )
    .await
    .expect("the second process gives up at once")
    .expect("run lifecycle up");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second owner was let in: {stderr}");
    assert!(
        stderr.contains("in use by another process")
            && stderr.contains(&format!("pid {}", std::process::id())),
        "{stderr}"
    );
    let client = kube_client().await;
    assert!(namespace(&client, "refused1").await.is_none());
    // A second store of this same process shares the file.
    let second = urumi_core::state::SqliteStore::open(&path)
        .await
        .expect("the same process may open it again");
    drop(second);
    drop(owner);
    // Once its owner is gone (closed or dead), the file is free.
    let again = urumi_core::state::SqliteStore::open(&path).await;
    assert!(again.is_ok(), "{again:?}");
}

/// A Ready store `name` (made by `lifecycle up` on `state_url`) whose change — `lifecycle
/// <args>` — is killed with SIGKILL (the whole process group, its helm included) while its
/// release step runs, then asked for again by a new process, which must exit 0. Returns the
/// store it printed and the seconds the restart took; checks one deployed release, no
/// `pending-*`, and removes the store.
async fn change_killed_in_its_release_step_then_restarted(
    name: &str,
    state_url: &str,
    args: &[&std::ffi::OsStr],
) -> (serde_json::Value, f64) {
    let bin = lifecycle_binary();
    let ns = namespace_of(name);
    let out = up(&bin, name, state_url, SQLITE_LEASE_SECS)
        .output()
        .await
        .expect("run lifecycle up");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let change = |bin: &PathBuf| {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .args(["--state", state_url, "--timeout", "240", "--lease-ttl"])
            .arg(SQLITE_LEASE_SECS.to_string())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    };
    let marker = format!("[{name}] Updating release");
    let (mut child, pid, _stderr) = started_until(change(&bin), &marker).await;
    let killed = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status()
        .expect("run kill");
    assert!(killed.success());
    child.wait().await.expect("wait for the killed process");
    let record = urumi_core::state::open(state_url)
        .await
        .expect("open the state file")
        .get(&StoreName::new(name).expect("name"))
        .await
        .expect("the record survived");
    assert_eq!(record.status, Status::Updating, "{record:?}");

    let started = std::time::Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(300), change(&bin).output())
        .await
        .expect("the restarted process finishes")
        .expect("run the change again");
    assert!(
        out.status.success(),
        "the restarted change exited {:?}; stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let took = started.elapsed().as_secs_f64();
    let store: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the store as JSON");
    let releases = helm_list(&ns).await;
    assert_eq!(releases.len(), 1, "{releases:?}");
    assert_eq!(releases[0].status, "deployed", "{releases:?}");
    (store, took)
}

/// Removes store `name` with `lifecycle down`.
async fn down(name: &str, state_url: &str) {
    let out = Command::new(lifecycle_binary())
        .args(["down", name, "--state", state_url])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run lifecycle down");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A plan change killed in its release step, then asked for again: the store ends Ready on
/// the new plan, its quota settled to it, one deployed release, no `pending-*`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_change_killed_in_its_release_step_then_restarted_ends_on_the_new_plan() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let state_url = format!("sqlite://{}", dir.path().join("urumi.db").display());
    let name = unique("lc-kill-plan");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    let args = ["resize", &name, "--plan", "large"].map(std::ffi::OsStr::new);
    let (store, took) =
        change_killed_in_its_release_step_then_restarted(&name, &state_url, &args).await;
    assert_eq!(
        (&store["status"], &store["plan"]),
        (&serde_json::json!("Ready"), &serde_json::json!("large")),
        "{store}"
    );
    report_count(&format!(
        "crash: kill -9 in a plan change's release step: restart → Ready on the new plan in {took:.1} s"
    ));
    let client = kube_client().await;
    let quota = kube::Api::<k8s_openapi::api::core::v1::ResourceQuota>::namespaced(
        client,
        &namespace_of(&name),
    )
    .get("urumi-quota")
    .await
    .expect("quota");
    let pods = quota.spec.and_then(|s| s.hard).expect("hard")["pods"]
        .0
        .clone();
    assert_eq!(pods, "40", "the quota settled to the large plan");
    down(&name, &state_url).await;
}

/// An upgrade to a new chart killed in its release step, then asked for again: the store
/// ends Ready on the new chart, one deployed release, no `pending-*` revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_killed_in_its_release_step_then_restarted_ends_on_the_new_chart() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let state_url = format!("sqlite://{}", dir.path().join("urumi.db").display());
    let chart = packaged_store_chart(dir.path(), "9.9.9", None);
    let name = unique("lc-kill-upgrade");
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    let args = [
        std::ffi::OsStr::new("upgrade"),
        std::ffi::OsStr::new(&name),
        std::ffi::OsStr::new("--chart"),
        chart.as_os_str(),
    ];
    let (store, took) =
        change_killed_in_its_release_step_then_restarted(&name, &state_url, &args).await;
    assert_eq!(
        (&store["status"], &store["chart"]["version"]),
        (&serde_json::json!("Ready"), &serde_json::json!("9.9.9")),
        "{store}"
    );
    report_count(&format!(
        "crash: kill -9 in an upgrade's release step: restart → Ready on the new chart in {took:.1} s"
    ));
    down(&name, &state_url).await;
}
