//! [`SqliteStore`]: the embedded default — one file, WAL, migrations on open.
//!
//! ```text
//!  open(path) ─▶ probe (read-only): empty/missing ─ ok
//!                                   not "SQLite format 3" ─▶ Err "not an SQLite database"  (file untouched)
//!                                   tables but no urumi_meta ─▶ Err "belongs to another program"
//!             ─▶ pool (WAL, busy_timeout) ─▶ migrate (a newer schema ─▶ Err, nothing applied)
//!  writes: in-process gate ─▶ BEGIN IMMEDIATE ─▶ check + write ─▶ COMMIT   (one writer at a time,
//!          across processes too; readers never block)
//! ```

mod ops;
mod work;

use std::path::{Path, PathBuf};
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

/// A state store in one SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    pool: SqlitePool,
    write_gate: Mutex<()>,
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
        Ok(SqliteStore {
            path,
            pool,
            write_gate: Mutex::new(()),
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
