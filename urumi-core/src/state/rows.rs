//! What the SQL backends share: row ↔ type conversion and error mapping.
//!
//! ```text
//!  SqliteRow / PgRow ──backend reads columns──▶ RawStore / RawEvent ──into_*()──▶ Store / AuditEvent
//!  sqlx::Error ──db_error(backend, op)──▶ Error::State { retryable: busy/connection, else permanent }
//! ```

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::error::Result;
use crate::store::{AuditEvent, Outcome, Store, StoreName, Urls};

/// The store columns, in the order both backends select them.
macro_rules! store_cols {
    () => {
        "name, tenant, engine, plan, status, step, message, namespace, storefront_url, \
         admin_url, created_at, updated_at, ready_at, provisioning_seconds, attempts, version, \
         managed_by, suspended, chart_version, chart_app_version, rollback_to"
    };
}
pub(crate) use store_cols;

/// The audit columns, in the order both backends select them.
macro_rules! audit_cols {
    () => {
        "id, at, actor, tenant, action, store, outcome, detail, source_ip"
    };
}
pub(crate) use audit_cols;

/// Whether an in-progress idempotency record begun at `created_at` was abandoned.
pub(crate) fn abandoned(created_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    chrono::Duration::from_std(super::IDEMPOTENCY_IN_PROGRESS_TIMEOUT)
        .is_ok_and(|t| now - created_at >= t)
}

/// A store row with its columns decoded but not yet validated.
pub(crate) struct RawStore {
    pub name: String,
    pub tenant: String,
    pub engine: String,
    pub plan: String,
    pub status: String,
    pub step: String,
    pub message: String,
    pub namespace: String,
    pub storefront_url: Option<String>,
    pub admin_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
    pub provisioning_seconds: Option<f64>,
    pub attempts: i64,
    pub version: i64,
    pub managed_by: Option<String>,
    pub suspended: bool,
    pub chart_version: Option<String>,
    pub chart_app_version: Option<String>,
    pub rollback_to: Option<i64>,
}

impl RawStore {
    /// Validates the row into a [`Store`]; a bad value is a permanent `State` error.
    pub fn into_store(self, backend: &'static str) -> Result<Store> {
        let bad =
            |what: &str, e: Error| corrupt(backend, &format!("store {:?}: {what}: {e}", self.name));
        Ok(Store {
            name: StoreName::new(self.name.clone()).map_err(|e| bad("name", e))?,
            tenant: self.tenant.parse().map_err(|e| bad("tenant", e))?,
            engine: self.engine.parse().map_err(|e| bad("engine", e))?,
            plan: self.plan.parse().map_err(|e| bad("plan", e))?,
            status: self.status.parse().map_err(|e| bad("status", e))?,
            step: self.step.parse().map_err(|e| bad("step", e))?,
            message: self.message,
            namespace: self.namespace,
            urls: Urls {
                storefront: self.storefront_url,
                admin: self.admin_url,
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
            ready_at: self.ready_at,
            provisioning_seconds: self.provisioning_seconds,
            attempts: u32::try_from(self.attempts)
                .map_err(|_| corrupt(backend, "attempts out of range"))?,
            version: u64::try_from(self.version)
                .map_err(|_| corrupt(backend, "version out of range"))?,
            managed_by: self.managed_by,
            suspended: self.suspended,
            chart: self.chart_version.map(|version| crate::store::StoreChart {
                version,
                app_version: self.chart_app_version.unwrap_or_default(),
                outdated: false,
            }),
            rollback_to: self.rollback_to.and_then(|r| u32::try_from(r).ok()),
        })
    }
}

/// An audit row with its columns decoded but not yet validated.
pub(crate) struct RawEvent {
    pub id: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub tenant: Option<String>,
    pub action: String,
    pub store: Option<String>,
    pub outcome: String,
    pub detail: String,
    pub source_ip: Option<String>,
}

impl RawEvent {
    /// Validates the row into an [`AuditEvent`].
    pub fn into_event(self, backend: &'static str) -> Result<AuditEvent> {
        Ok(AuditEvent {
            id: self
                .id
                .parse()
                .map_err(|_| corrupt(backend, "audit event id is not a UUID"))?,
            at: self.at,
            actor: self.actor,
            tenant: self.tenant,
            action: self.action,
            store: self.store,
            outcome: Outcome::parse(&self.outcome)
                .ok_or_else(|| corrupt(backend, "unknown audit outcome"))?,
            detail: self.detail,
            source_ip: self
                .source_ip
                .map(|ip| ip.parse())
                .transpose()
                .map_err(|_| corrupt(backend, "audit source IP is not an IP address"))?,
        })
    }
}

/// A permanent error: the database holds something this code cannot read.
pub(crate) fn corrupt(backend: &'static str, what: &str) -> Error {
    Error::State {
        backend,
        message: format!("unreadable record ({what})"),
        retryable: false,
        source: None,
    }
}

/// Maps a sqlx error during `op` to [`Error::State`], deciding whether it is transient.
pub(crate) fn db_error(backend: &'static str, op: &str, e: sqlx::Error) -> Error {
    let (retryable, message) = match &e {
        sqlx::Error::PoolTimedOut => (
            true,
            format!("{op}: no database connection available in time"),
        ),
        sqlx::Error::PoolClosed => (false, format!("{op}: the state store was closed")),
        sqlx::Error::Io(io) => (true, format!("{op}: connection failed: {io}")),
        sqlx::Error::Tls(_) => (true, format!("{op}: TLS handshake failed")),
        sqlx::Error::WorkerCrashed => (true, format!("{op}: the database worker stopped")),
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let transient = matches!(
                code.as_str(),
                // SQLite: BUSY, LOCKED. Postgres: serialization failure, deadlock,
                // too many connections, admin shutdown, cannot connect now.
                "5" | "6" | "517" | "261" | "40001" | "40P01" | "53300" | "57P01" | "57P03"
            ) || code.starts_with("08");
            let message = match code.as_str() {
                "26" => format!("{op}: the file is corrupt or not an SQLite database"),
                "11" => format!("{op}: the database file is corrupt"),
                "14" => format!(
                    "{op}: unable to open the database file (does its directory exist, \
                     and may this process write there?)"
                ),
                _ => format!("{op}: {}", db.message()),
            };
            (transient, message)
        }
        other => (false, format!("{op}: {other}")),
    };
    Error::State {
        backend,
        message,
        retryable,
        source: Some(Box::new(e)),
    }
}

/// Maps a migration error, naming a schema newer than this code.
pub(crate) fn migrate_error(
    backend: &'static str,
    known: i64,
    e: sqlx::migrate::MigrateError,
) -> Error {
    use sqlx::migrate::MigrateError as M;
    let message = match &e {
        M::VersionMissing(v) => format!(
            "the database schema is at migration {v}, newer than this urumi knows (up to {known}); \
             upgrade urumi or point it at another database (nothing was changed)"
        ),
        M::VersionMismatch(v) => {
            format!("migration {v} in the database differs from this urumi's; refusing to continue")
        }
        M::Dirty(v) => format!("migration {v} was left half-applied; repair the database by hand"),
        M::Execute(sqlx::Error::Database(db)) if db.code().as_deref() == Some("26") => {
            "the file is not an SQLite database".to_owned()
        }
        other => format!("migrating the schema: {other}"),
    };
    let retryable = matches!(
        &e,
        M::Execute(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut)
    );
    Error::State {
        backend,
        message,
        retryable,
        source: Some(Box::new(e)),
    }
}

/// An idempotency record as every backend keeps it.
#[derive(Debug, Clone)]
pub(crate) struct IdemRow {
    pub request_hash: String,
    pub response: Option<super::StoredResponse>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What `idempotency_begin` answers given the live record for the key, if any:
/// `Ok(Some)` replay, `Ok(None)` the caller (re)starts the key, or an error.
pub(crate) fn begin_decision(
    existing: Option<&IdemRow>,
    request_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<super::StoredResponse>> {
    let Some(r) = existing.filter(|r| r.expires_at > now) else {
        return Ok(None);
    };
    if r.request_hash != request_hash {
        return Err(Error::IdempotencyMismatch);
    }
    match &r.response {
        Some(resp) => Ok(Some(resp.clone())),
        None if !abandoned(r.created_at, now) => Err(Error::IdempotencyInProgress),
        None => Ok(None),
    }
}

/// Whether an insert may complete the key given its live record, if any.
pub(crate) fn insert_decision(
    existing: Option<&IdemRow>,
    request_hash: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    match existing.filter(|r| r.expires_at > now) {
        Some(r) if r.request_hash != request_hash => Err(Error::IdempotencyMismatch),
        Some(r) if r.response.is_some() => {
            Err(Error::conflict("idempotency key already completed"))
        }
        _ => Ok(()),
    }
}
