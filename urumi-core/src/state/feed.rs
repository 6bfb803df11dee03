//! The durable change feed: every change of a store record, in the order the database
//! committed it.
//!
//! ```text
//!  insert / update_with / delete ──same transaction──▶ store_changes (seq assigned by the DB)
//!  changes(ChangeQuery { after, tenant, limit }) ──▶ [Change { seq, at, kind, store }] in seq order
//!        after older than the retention (purged) or beyond the head ──▶ cursor_expired
//!  purge_changes(before) ──▶ rows older than `before` go; the purge mark remembers the last seq
//! ```
//!
//! The SQL backends share one body ([`sql_feed!`]): the feed's table has the same columns
//! and types on SQLite and PostgreSQL (`at` in microseconds, the record as JSON text),
//! and both accept `$N` placeholders, so each statement is written once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::{Store, TenantId};

/// What happened to a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// The record was inserted.
    Created,
    /// The record changed (status, step, message, …).
    Updated,
    /// The store is gone: torn down and its record dropped. `store` is its last record.
    Deleted,
}

impl ChangeKind {
    /// The lowercase name used in JSON and in the feed table.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Deleted => "deleted",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "created" => Some(ChangeKind::Created),
            "updated" => Some(ChangeKind::Updated),
            "deleted" => Some(ChangeKind::Deleted),
            _ => None,
        }
    }
}

/// One entry of the change feed.
///
/// JSON: `{"seq","at","kind","store"}`; `seq` is the cursor to resume after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// Assigned by the database; strictly increasing in commit order, never reused.
    pub seq: u64,
    /// When the change was written.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: ChangeKind,
    /// The record after the change (for `Deleted`, the last record).
    pub store: Store,
}

/// A read of the change feed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeQuery {
    /// Only changes with a larger `seq`; `None` reads from the oldest retained change.
    pub after: Option<u64>,
    /// Only this tenant's stores.
    pub tenant: Option<TenantId>,
    /// At most this many (default and maximum 1000).
    pub limit: Option<u32>,
}

impl ChangeQuery {
    /// The effective batch size: 1..=1000 (1000 when absent).
    pub fn batch(&self) -> u32 {
        self.limit.unwrap_or(1000).clamp(1, 1000)
    }
}

/// How long changes are kept by default (7 days); older cursors are `cursor_expired`.
pub const DEFAULT_CHANGE_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(7 * 24 * 3600);

/// Decides whether `after` is still a valid cursor given the purge mark and the head.
pub(crate) fn check_cursor(after: Option<u64>, purged_through: u64, head: u64) -> Result<()> {
    match after {
        Some(a) if a < purged_through => Err(Error::CursorExpired {
            message: format!(
                "changes up to {purged_through} were purged (retention); list the stores again and follow from the newest change"
            ),
        }),
        Some(a) if a > head => Err(Error::CursorExpired {
            message: format!(
                "cursor {a} is beyond the newest change ({head}); it belongs to another database — list the stores again"
            ),
        }),
        _ => Ok(()),
    }
}

/// The change feed's statements and row decoding, written once for both SQL backends.
/// `$lock` runs before a change is appended (PostgreSQL: the advisory lock that makes
/// sequence order commit order; SQLite: nothing, writes are already serialized).
macro_rules! sql_feed {
    ($db:ty, $backend:expr, $lock:expr) => {
        /// Appends a change in the caller's transaction.
        pub(crate) async fn append_change(
            conn: &mut <$db as sqlx::Database>::Connection,
            kind: $crate::state::ChangeKind,
            store: &$crate::store::Store,
        ) -> $crate::error::Result<()> {
            let lock: Option<&str> = $lock;
            if let Some(lock) = lock {
                sqlx::query(lock)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| $crate::state::rows::db_error($backend, "append_change", e))?;
            }
            let json = serde_json::to_string(store).map_err(|e| $crate::error::Error::Internal {
                message: format!("encoding a change: {e}"),
            })?;
            sqlx::query(
                "INSERT INTO store_changes (at, tenant, name, kind, store) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind($crate::store::now().timestamp_micros())
            .bind(store.tenant.as_str())
            .bind(store.name.as_str())
            .bind(kind.as_str())
            .bind(json)
            .execute(&mut *conn)
            .await
            .map_err(|e| $crate::state::rows::db_error($backend, "append_change", e))?;
            Ok(())
        }

        /// Reads changes after the query's cursor, in `seq` order.
        pub(crate) async fn read_changes(
            pool: &sqlx::Pool<$db>,
            q: &$crate::state::ChangeQuery,
        ) -> $crate::error::Result<Vec<$crate::state::Change>> {
            use sqlx::Row;
            let err = |e| $crate::state::rows::db_error($backend, "changes", e);
            let mut conn = pool.acquire().await.map_err(err)?;
            let (purged, head) = purge_mark_and_head(&mut *conn).await?;
            $crate::state::feed::check_cursor(q.after, purged, head)?;
            let after = i64::try_from(q.after.unwrap_or(0)).unwrap_or(i64::MAX);
            let rows = sqlx::query(
                "SELECT seq, at, kind, store FROM store_changes WHERE seq > $1 \
                 AND ($2 IS NULL OR tenant = $2) ORDER BY seq LIMIT $3",
            )
            .bind(after)
            .bind(q.tenant.as_ref().map(|t| t.as_str().to_owned()))
            .bind(i64::from(q.batch()))
            .fetch_all(&mut *conn)
            .await
            .map_err(err)?;
            let corrupt = |what: &str| $crate::state::rows::corrupt($backend, what);
            rows.iter()
                .map(|row| {
                    let seq: i64 = row.try_get("seq").map_err(err)?;
                    let at: i64 = row.try_get("at").map_err(err)?;
                    let kind: String = row.try_get("kind").map_err(err)?;
                    let store: String = row.try_get("store").map_err(err)?;
                    Ok($crate::state::Change {
                        seq: u64::try_from(seq).map_err(|_| corrupt("change seq"))?,
                        at: chrono::DateTime::from_timestamp_micros(at)
                            .ok_or_else(|| corrupt("change time"))?,
                        kind: $crate::state::ChangeKind::parse(&kind)
                            .ok_or_else(|| corrupt("change kind"))?,
                        store: serde_json::from_str(&store)
                            .map_err(|_| corrupt("change record"))?,
                    })
                })
                .collect()
        }

        /// The purge mark and the newest `seq` (never below the mark).
        async fn purge_mark_and_head(
            conn: &mut <$db as sqlx::Database>::Connection,
        ) -> $crate::error::Result<(u64, u64)> {
            let (purged, head): (i64, i64) = sqlx::query_as(
                "SELECT CAST((SELECT value FROM urumi_meta WHERE key = 'changes_purged_through') AS BIGINT), \
                 COALESCE((SELECT MAX(seq) FROM store_changes), 0)",
            )
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| $crate::state::rows::db_error($backend, "change_head", e))?;
            let purged = u64::try_from(purged).unwrap_or(0);
            Ok((purged, u64::try_from(head).unwrap_or(0).max(purged)))
        }

        /// The newest `seq` (or the purge mark when every change was purged).
        pub(crate) async fn read_change_head(
            pool: &sqlx::Pool<$db>,
        ) -> $crate::error::Result<u64> {
            let mut conn = pool
                .acquire()
                .await
                .map_err(|e| $crate::state::rows::db_error($backend, "change_head", e))?;
            Ok(purge_mark_and_head(&mut *conn).await?.1)
        }

        /// Drops changes older than `before` and moves the purge mark past them.
        pub(crate) async fn purge_changes_in(
            conn: &mut <$db as sqlx::Database>::Connection,
            before: chrono::DateTime<chrono::Utc>,
        ) -> $crate::error::Result<u64> {
            let err = |e| $crate::state::rows::db_error($backend, "purge_changes", e);
            let last: Option<i64> =
                sqlx::query_scalar("SELECT MAX(seq) FROM store_changes WHERE at < $1")
                    .bind(before.timestamp_micros())
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(err)?;
            let Some(last) = last else { return Ok(0) };
            let done = sqlx::query("DELETE FROM store_changes WHERE seq <= $1")
                .bind(last)
                .execute(&mut *conn)
                .await
                .map_err(err)?;
            sqlx::query(
                "UPDATE urumi_meta SET value = $1 WHERE key = 'changes_purged_through' \
                 AND CAST(value AS BIGINT) < $2",
            )
            .bind(last.to_string())
            .bind(last)
            .execute(&mut *conn)
            .await
            .map_err(err)?;
            Ok(done.rows_affected())
        }
    };
}
pub(crate) use sql_feed;
