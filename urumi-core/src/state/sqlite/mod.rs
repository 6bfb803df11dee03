//! [`SqliteStore`]: the embedded default — one file, WAL, migrations on open.
//!
//! ```text
//!  open(path) ─▶ own <path>.owner (flock): held by another process ─▶ Err invalid_config naming its pid
//!             ─▶ probe (read-only): empty/missing ─ ok
//!                                   not "SQLite format 3" ─▶ Err "not an SQLite database"  (file untouched)
//!                                   tables but no urumi_meta ─▶ Err "belongs to another program"
//!             ─▶ pool (WAL, busy_timeout) ─▶ migrate (a newer schema ─▶ Err, nothing applied)
//!             ─▶ first owner in this process: every lease and in-progress idempotency key
//!                left in the file is a dead process's ─▶ released at once (no lease wait)
//!  writes: in-process gate ─▶ BEGIN IMMEDIATE ─▶ check + write ─▶ COMMIT   (one writer at a time,
//!          within the owning process; readers never block)
//! ```

mod ops;
mod work;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use super::rows::{RawEvent, RawStore, db_error, migrate_error};
use crate::error::{Error, Result};

const BACKEND: &str = "sqlite";
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A state store in one SQLite file, owned by one process at a time (several stores of
/// one process may share it; PostgreSQL serves several processes).
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    pool: SqlitePool,
    write_gate: Mutex<()>,
    _owner: Option<Arc<Ownership>>,
}

/// This process's exclusive lock on a state file: `<file>.owner`, flock'ed, holding the
/// owner's pid for the error another process gets. Released when the last store of the
/// file in this process is dropped, or when the process dies (kill -9 included).
#[derive(Debug)]
struct Ownership {
    lock: PathBuf,
    _file: std::fs::File,
}

/// The state files this process owns, so that a second store on the same file shares
/// the ownership instead of being refused by its own process.
static OWNED: std::sync::Mutex<Vec<(PathBuf, Weak<Ownership>)>> = std::sync::Mutex::new(Vec::new());

/// Takes (or shares) the ownership of `db`; `true` when this call took it, i.e. no store
/// of this process had the file open: whatever leases the file holds are a dead process's.
fn own(db: &Path) -> Result<(Arc<Ownership>, bool)> {
    let mut lock = db.as_os_str().to_owned();
    lock.push(".owner");
    let lock = PathBuf::from(lock);
    let unavailable = |e: std::io::Error| Error::Unavailable {
        message: format!("cannot open the lock file {}: {e}", lock.display()),
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
        .map_err(unavailable)?;
    let canonical = std::fs::canonicalize(&lock).map_err(unavailable)?;
    let mut owned = OWNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    owned.retain(|(_, w)| w.strong_count() > 0);
    if let Some(shared) = owned
        .iter()
        .find(|(p, _)| *p == canonical)
        .and_then(|(_, w)| w.upgrade())
    {
        return Ok((shared, false));
    }
    #[cfg(unix)]
    {
        use rustix::fs::{FlockOperation, flock};
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let holder = std::fs::read_to_string(&lock).unwrap_or_default();
            let holder = holder.trim();
            return Err(Error::InvalidConfig {
                message: format!(
                    "the SQLite state file {} is in use by another process{}: SQLite state \
                     serves one process at a time; stop that process, or use PostgreSQL \
                     (postgres://…) to run several",
                    db.display(),
                    if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {holder})")
                    }
                ),
            });
        }
    }
    {
        use std::io::Write as _;
        let mut f = &file;
        let _ = f.set_len(0);
        let _ = write!(f, "{}", std::process::id());
    }
    let ownership = Arc::new(Ownership {
        lock: canonical.clone(),
        _file: file,
    });
    owned.push((canonical, Arc::downgrade(&ownership)));
    Ok((ownership, true))
}

impl SqliteStore {
    /// Opens `path`, creating it if missing, and brings its schema up to date.
    ///
    /// Errors (`State`, permanent, the file left untouched): the file is not an SQLite
    /// database or is corrupt; it belongs to another program (it has tables but not
    /// urumi's); its schema is newer than this code. `unavailable` if it cannot be
    /// opened (permissions, missing directory).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let (owner, first) = own(&path)?;
        probe(&path).await?;
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(|e| named(&path, db_error(BACKEND, "opening", e)))?;
        let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        if let Err(e) = MIGRATOR.run(&pool).await {
            pool.close().await;
            return Err(named(&path, migrate_error(BACKEND, known, e)));
        }
        if first {
            release_dead_owners_work(&pool, &path).await?;
        }
        tracing::debug!(lock = %owner.lock.display(), "state file owned");
        Ok(SqliteStore {
            path,
            pool,
            write_gate: Mutex::new(()),
            _owner: Some(owner),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the pool, waiting for connections to finish (checkpointing the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts the one write transaction allowed at a time.
    pub(crate) async fn write(
        &self,
        op: &str,
    ) -> Result<(MutexGuard<'_, ()>, Transaction<'static, Sqlite>)> {
        let gate = self.write_gate.lock().await;
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| db_error(BACKEND, op, e))?;
        Ok((gate, tx))
    }
}

/// Releases what a dead owner of the file left held: store leases (so the orchestrator
/// takes its stores back at once instead of waiting out the lease TTL) and idempotency
/// keys still "in progress" (their requests died with it; a retry runs again instead of
/// waiting for the in-progress timeout).
async fn release_dead_owners_work(pool: &SqlitePool, path: &Path) -> Result<()> {
    let leases = sqlx::query(
        "UPDATE stores SET lease_owner = NULL, lease_expires_at = NULL \
         WHERE lease_owner IS NOT NULL",
    )
    .execute(pool)
    .await
    .map_err(|e| named(path, db_error(BACKEND, "releasing leases", e)))?
    .rows_affected();
    let keys = sqlx::query("DELETE FROM idempotency_keys WHERE response_status IS NULL")
        .execute(pool)
        .await
        .map_err(|e| named(path, db_error(BACKEND, "releasing idempotency keys", e)))?
        .rows_affected();
    if leases > 0 || keys > 0 {
        tracing::info!(
            leases,
            idempotency_keys = keys,
            "took over a state file from a process that stopped: its stores are resumed now"
        );
    }
    Ok(())
}

/// Prefixes a state error's message with the file it concerns.
fn named(path: &Path, e: Error) -> Error {
    match e {
        Error::State {
            backend,
            message,
            retryable,
            source,
        } => Error::State {
            backend,
            message: format!("{}: {message}", path.display()),
            retryable,
            source,
        },
        other => other,
    }
}

/// Refuses files that are not urumi's before anything could write to them.
async fn probe(path: &Path) -> Result<()> {
    let state = |message: String, retryable: bool| Error::State {
        backend: BACKEND,
        message: format!("{}: {message}", path.display()),
        retryable,
        source: None,
    };
    let mut header = Vec::with_capacity(16);
    match tokio::fs::File::open(path).await {
        Ok(file) => {
            use tokio::io::AsyncReadExt;
            file.take(16)
                .read_to_end(&mut header)
                .await
                .map_err(|e| state(format!("cannot read the file: {e}"), false))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(state(format!("cannot read the file: {e}"), false)),
    }
    if header.is_empty() {
        return Ok(());
    }
    if header != b"SQLite format 3\0" {
        return Err(state(
            "is not an SQLite database (no SQLite header); refusing to touch it".into(),
            false,
        ));
    }
    let opts = SqliteConnectOptions::new().filename(path).read_only(true);
    let mut conn = sqlx::ConnectOptions::connect(&opts)
        .await
        .map_err(|e| named(path, db_error(BACKEND, "probing", e)))?;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&mut conn)
            .await
            .map_err(|e| named(path, db_error(BACKEND, "probing", e)))?;
    let _ = sqlx::Connection::close(conn).await;
    if !tables.is_empty() && !tables.iter().any(|t| t == "urumi_meta") {
        let list: Vec<&str> = tables.iter().take(5).map(String::as_str).collect();
        return Err(state(
            format!(
                "is an SQLite database of another program (tables: {}); refusing to use it",
                list.join(", ")
            ),
            false,
        ));
    }
    Ok(())
}

crate::state::feed::sql_feed!(sqlx::Sqlite, BACKEND, None);

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(row: &SqliteRow, col: &str) -> Result<DateTime<Utc>> {
    let v: i64 = get(row, col)?;
    DateTime::from_timestamp_micros(v)
        .ok_or_else(|| super::rows::corrupt(BACKEND, &format!("{col} out of range")))
}

fn opt_time(row: &SqliteRow, col: &str) -> Result<Option<DateTime<Utc>>> {
    let v: Option<i64> = get(row, col)?;
    v.map(|v| {
        DateTime::from_timestamp_micros(v)
            .ok_or_else(|| super::rows::corrupt(BACKEND, &format!("{col} out of range")))
    })
    .transpose()
}

fn get<'r, T>(row: &'r SqliteRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(col)
        .map_err(|e| db_error(BACKEND, &format!("reading column {col}"), e))
}

pub(crate) fn raw_store(row: &SqliteRow) -> Result<RawStore> {
    Ok(RawStore {
        name: get(row, "name")?,
        tenant: get(row, "tenant")?,
        engine: get(row, "engine")?,
        plan: get(row, "plan")?,
        status: get(row, "status")?,
        step: get(row, "step")?,
        message: get(row, "message")?,
        namespace: get(row, "namespace")?,
        storefront_url: get(row, "storefront_url")?,
        admin_url: get(row, "admin_url")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        ready_at: opt_time(row, "ready_at")?,
        provisioning_seconds: get(row, "provisioning_seconds")?,
        attempts: get(row, "attempts")?,
        version: get(row, "version")?,
        managed_by: get(row, "managed_by")?,
        suspended: get(row, "suspended")?,
        chart_version: get(row, "chart_version")?,
        chart_app_version: get(row, "chart_app_version")?,
        rollback_to: get(row, "rollback_to")?,
    })
}

pub(crate) fn raw_event(row: &SqliteRow) -> Result<RawEvent> {
    Ok(RawEvent {
        id: get(row, "id")?,
        at: time(row, "at")?,
        actor: get(row, "actor")?,
        tenant: get(row, "tenant")?,
        action: get(row, "action")?,
        store: get(row, "store")?,
        outcome: get(row, "outcome")?,
        detail: get(row, "detail")?,
        source_ip: get(row, "source_ip")?,
    })
}
