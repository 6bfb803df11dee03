//! [`PostgresStore`]: state shared by several server replicas through one database.
//!
//! ```text
//!  connect(url) ─▶ pool (connect timeout) ─▶ migrate (sqlx advisory lock; a newer schema ─▶ Err)
//!  insert:     BEGIN ─▶ pg_advisory_xact_lock(urumi, schema) ─▶ name? key? usage? ─▶ INSERT ─▶ COMMIT
//!  claim_next: UPDATE … WHERE name IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT n) RETURNING …
//! ```
//!
//! Tables live in the connection's current schema; put `options[search_path]=NAME` in
//! the URL to give urumi its own schema in a shared database.

mod ops;
mod work;

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row};

use super::redact_url;
use super::rows::{RawEvent, RawStore, db_error, migrate_error};
use crate::error::{Error, Result};

const BACKEND: &str = "postgres";
/// How long connecting (and waiting for a pooled connection) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A state store in a PostgreSQL database (schema per the URL's `search_path`).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db?options[search_path]=s`)
    /// and brings the schema up to date.
    ///
    /// Errors: `invalid_config` for a malformed URL; `State` retryable ("cannot reach")
    /// when the server does not answer within 10 s; `State` permanent when the schema is
    /// newer than this code. Messages show the URL with its password redacted.
    pub async fn connect(url: &str) -> Result<Self> {
        let shown = redact_url(url);
        let opts = PgConnectOptions::from_str(url).map_err(|e| Error::InvalidConfig {
            message: format!("postgres URL {shown}: {}", strip_url(&e.to_string(), url)),
        })?;
        let reach = |message: String, retryable: bool, source: Option<crate::error::BoxError>| {
            Error::State {
                backend: BACKEND,
                message: format!("cannot reach {shown}: {message}"),
                retryable,
                source,
            }
        };
        // One direct attempt first: the pool would retry a refused connection until its
        // acquire timeout and then only say "timed out".
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&opts)).await {
            Err(_) => {
                return Err(reach(
                    format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                    true,
                    None,
                ));
            }
            Ok(Err(e)) => {
                return Err(match db_error(BACKEND, "connecting", e) {
                    Error::State {
                        message,
                        retryable,
                        source,
                        ..
                    } => reach(message, retryable, source),
                    other => other,
                });
            }
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(opts)
            .await
            .map_err(|e| db_error(BACKEND, "connecting", e))?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool (its connections' `search_path` decides the schema) and
    /// brings the schema up to date.
    pub async fn from_pool(pool: PgPool) -> Result<Self> {
        let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| migrate_error(BACKEND, known, e))?;
        Ok(PostgresStore { pool })
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

// Appends take this lock so that `seq` order is commit order (see the migration).
crate::state::feed::sql_feed!(
    sqlx::Postgres,
    BACKEND,
    Some(
        "SELECT pg_advisory_xact_lock(1970435437, hashtext(current_schema() || '.store_changes'))"
    )
);

/// Removes `url` from a message, in case a parser echoed it with its password.
fn strip_url(message: &str, url: &str) -> String {
    message.replace(url, "<url>")
}

fn get<'r, T>(row: &'r PgRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(col)
        .map_err(|e| db_error(BACKEND, &format!("reading column {col}"), e))
}

pub(crate) fn raw_store(row: &PgRow) -> Result<RawStore> {
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
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        ready_at: get(row, "ready_at")?,
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

pub(crate) fn raw_event(row: &PgRow) -> Result<RawEvent> {
    Ok(RawEvent {
        id: get(row, "id")?,
        at: get(row, "at")?,
        actor: get(row, "actor")?,
        tenant: get(row, "tenant")?,
        action: get(row, "action")?,
        store: get(row, "store")?,
        outcome: get(row, "outcome")?,
        detail: get(row, "detail")?,
        source_ip: get(row, "source_ip")?,
    })
}
