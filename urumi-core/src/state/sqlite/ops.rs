//! The [`StateStore`] operations of [`SqliteStore`].
//!
//! ```text
//!  insert: gate ─▶ BEGIN IMMEDIATE ─▶ name taken? ─▶ key state ─▶ usage ─▶ Limits::check
//!          ─▶ INSERT store + creation + key ─▶ COMMIT
//!  reads:  pool (WAL readers run beside the writer)
//! ```

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{BACKEND, SqliteStore, micros, raw_event, raw_store};
use crate::audit::{AuditQuery, action_prefix};
use crate::error::{Error, Result};
use crate::limits::Usage;
use crate::state::rows::{IdemRow, audit_cols, db_error, insert_decision, store_cols};
use crate::state::{
    Change, ChangeKind, ChangeQuery, IdempotencyKey, IdempotentInsert, InsertOptions, Lease,
    ListQuery, Page, StateStore, StoredResponse, cursor, expiry,
};
use crate::store::{self, AuditEvent, Store, StoreName};

pub(super) fn err(op: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| db_error(BACKEND, op, e)
}

pub(super) fn to_store(row: &SqliteRow) -> Result<Store> {
    raw_store(row)?.into_store(BACKEND)
}

pub(super) fn idem_row(row: &SqliteRow) -> Result<IdemRow> {
    let status: Option<i64> = row.try_get("response_status").map_err(err("idempotency"))?;
    let body: Option<String> = row.try_get("response_body").map_err(err("idempotency"))?;
    let t = |c: &str| -> Result<DateTime<Utc>> {
        let v: i64 = row.try_get(c).map_err(err("idempotency"))?;
        DateTime::from_timestamp_micros(v)
            .ok_or_else(|| crate::state::rows::corrupt(BACKEND, "idempotency time"))
    };
    Ok(IdemRow {
        request_hash: row.try_get("request_hash").map_err(err("idempotency"))?,
        response: match (status, body) {
            (Some(s), Some(b)) => Some(StoredResponse {
                status: u16::try_from(s).unwrap_or(500),
                body: b,
            }),
            _ => None,
        },
        created_at: t("created_at")?,
        expires_at: t("expires_at")?,
    })
}

pub(super) const IDEM_SELECT: &str = "SELECT request_hash, response_status, response_body, created_at, \
                           expires_at FROM idempotency_keys WHERE scope = ?1 AND key = ?2";

#[async_trait]
impl StateStore for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn insert(&self, s: &Store, opts: &InsertOptions) -> Result<Store> {
        let now = store::now();
        let (_gate, mut tx) = self.write("insert").await?;
        let taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM stores WHERE name = ?1")
            .bind(s.name.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(err("insert"))?;
        if taken.is_some() {
            return Err(Error::StoreExists {
                name: s.name.to_string(),
            });
        }
        if let Some(idem) = &opts.idempotency {
            complete_key(&mut tx, idem, now).await?;
        }
        let window_start = micros(opts.limits.window_start(now));
        let (tenant_stores, total_stores): (i64, i64) =
            sqlx::query_as("SELECT COALESCE(SUM(tenant = ?1), 0), COUNT(*) FROM stores")
                .bind(s.tenant.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(err("insert"))?;
        let (recent, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(at) FROM store_creations WHERE tenant = ?1 AND at >= ?2",
        )
        .bind(s.tenant.as_str())
        .bind(window_start)
        .fetch_one(&mut *tx)
        .await
        .map_err(err("insert"))?;
        let usage = Usage {
            tenant_stores: tenant_stores.max(0) as u64,
            total_stores: total_stores.max(0) as u64,
            tenant_recent_creations: recent.max(0) as u64,
            oldest_recent_creation: oldest.and_then(DateTime::from_timestamp_micros),
        };
        opts.limits.check(&usage, now)?;

        let row = sqlx::query(concat!(
            "INSERT INTO stores (",
            store_cols!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 1, ?16, ?17, ?18, ?19, ?20) RETURNING ",
            store_cols!()
        ))
        .bind(s.name.as_str())
        .bind(s.tenant.as_str())
        .bind(s.engine.as_str())
        .bind(s.plan.as_str())
        .bind(s.status.as_str())
        .bind(s.step.as_str())
        .bind(&s.message)
        .bind(&s.namespace)
        .bind(&s.urls.storefront)
        .bind(&s.urls.admin)
        .bind(micros(s.created_at))
        .bind(micros(s.updated_at))
        .bind(s.ready_at.map(micros))
        .bind(s.provisioning_seconds)
        .bind(i64::from(s.attempts))
        .bind(&s.managed_by)
        .bind(s.suspended)
        .bind(s.chart.as_ref().map(|c| c.version.as_str()))
        .bind(s.chart.as_ref().map(|c| c.app_version.as_str()))
        .bind(s.rollback_to.map(i64::from))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => Error::StoreExists {
                name: s.name.to_string(),
            },
            e => db_error(BACKEND, "insert", e),
        })?;
        sqlx::query("DELETE FROM store_creations WHERE tenant = ?1 AND at < ?2")
            .bind(s.tenant.as_str())
            .bind(window_start)
            .execute(&mut *tx)
            .await
            .map_err(err("insert"))?;
        sqlx::query("INSERT INTO store_creations (tenant, at) VALUES (?1, ?2)")
            .bind(s.tenant.as_str())
            .bind(micros(s.created_at))
            .execute(&mut *tx)
            .await
            .map_err(err("insert"))?;
        let stored = to_store(&row)?;
        super::append_change(&mut tx, ChangeKind::Created, &stored).await?;
        if let Some(event) = &opts.audit {
            append_audit_in(&mut tx, event).await?;
        }
        tx.commit().await.map_err(err("insert"))?;
        Ok(stored)
    }

    async fn get(&self, name: &StoreName) -> Result<Store> {
        let row = sqlx::query(concat!(
            "SELECT ",
            store_cols!(),
            " FROM stores WHERE name = ?1"
        ))
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(err("get"))?;
        match row {
            Some(row) => to_store(&row),
            None => Err(Error::store_not_found(name.as_str())),
        }
    }

    async fn list(&self, q: &ListQuery) -> Result<Page<Store>> {
        let limit = q.page_size()?;
        let pos = q.cursor.as_deref().map(cursor::decode).transpose()?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            store_cols!(),
            " FROM stores WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR status = ?2) \
             AND (?3 IS NULL OR created_at < ?3 OR (created_at = ?3 AND name < ?4)) \
             ORDER BY created_at DESC, name DESC LIMIT ?5"
        ))
        .bind(q.tenant.as_ref().map(|t| t.as_str()))
        .bind(q.status.map(|s| s.as_str()))
        .bind(pos.as_ref().map(|p| micros(p.0)))
        .bind(pos.as_ref().map(|p| p.1.as_str()))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(err("list"))?;
        let items = rows.iter().map(to_store).collect::<Result<Vec<_>>>()?;
        Ok(crate::state::page_of(items, limit as usize, |s| {
            cursor::encode(s.created_at, s.name.as_str())
        }))
    }

    async fn update_with(
        &self,
        s: &Store,
        idempotency: Option<&IdempotentInsert>,
    ) -> Result<Store> {
        let (_gate, mut tx) = self.write("update").await?;
        if let Some(idem) = idempotency {
            complete_key(&mut tx, idem, store::now()).await?;
        }
        let row = sqlx::query(concat!(
            "UPDATE stores SET tenant = ?2, engine = ?3, plan = ?4, status = ?5, step = ?6, \
             message = ?7, namespace = ?8, storefront_url = ?9, admin_url = ?10, \
             updated_at = ?11, ready_at = ?12, provisioning_seconds = ?13, attempts = ?14, \
             suspended = ?16, chart_version = ?17, chart_app_version = ?18, \
             rollback_to = ?19, \
             version = version + 1 WHERE name = ?1 AND version = ?15 RETURNING ",
            store_cols!()
        ))
        .bind(s.name.as_str())
        .bind(s.tenant.as_str())
        .bind(s.engine.as_str())
        .bind(s.plan.as_str())
        .bind(s.status.as_str())
        .bind(s.step.as_str())
        .bind(&s.message)
        .bind(&s.namespace)
        .bind(&s.urls.storefront)
        .bind(&s.urls.admin)
        .bind(micros(s.updated_at))
        .bind(s.ready_at.map(micros))
        .bind(s.provisioning_seconds)
        .bind(i64::from(s.attempts))
        .bind(i64::try_from(s.version).unwrap_or(i64::MAX))
        .bind(s.suspended)
        .bind(s.chart.as_ref().map(|c| c.version.as_str()))
        .bind(s.chart.as_ref().map(|c| c.app_version.as_str()))
        .bind(s.rollback_to.map(i64::from))
        .fetch_optional(&mut *tx)
        .await
        .map_err(err("update"))?;
        let Some(row) = row else {
            let current: Option<i64> =
                sqlx::query_scalar("SELECT version FROM stores WHERE name = ?1")
                    .bind(s.name.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(err("update"))?;
            return Err(match current {
                None => Error::store_not_found(s.name.as_str()),
                Some(v) => Error::conflict(format!(
                    "store {:?} was changed (version {} is stale; current is {v})",
                    s.name.as_str(),
                    s.version
                )),
            });
        };
        let stored = to_store(&row)?;
        super::append_change(&mut tx, ChangeKind::Updated, &stored).await?;
        tx.commit().await.map_err(err("update"))?;
        Ok(stored)
    }

    async fn delete(&self, name: &StoreName) -> Result<()> {
        let (_gate, mut tx) = self.write("delete").await?;
        let row = sqlx::query(concat!(
            "DELETE FROM stores WHERE name = ?1 RETURNING ",
            store_cols!()
        ))
        .bind(name.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(err("delete"))?;
        let Some(row) = row else {
            return Err(Error::store_not_found(name.as_str()));
        };
        let last = to_store(&row)?;
        super::append_change(&mut tx, ChangeKind::Deleted, &last).await?;
        tx.commit().await.map_err(err("delete"))
    }

    async fn changes(&self, query: &ChangeQuery) -> Result<Vec<Change>> {
        super::read_changes(&self.pool, query).await
    }

    async fn change_head(&self) -> Result<u64> {
        super::read_change_head(&self.pool).await
    }

    async fn purge_changes(&self, before: DateTime<Utc>) -> Result<u64> {
        let (_gate, mut tx) = self.write("purge_changes").await?;
        let n = super::purge_changes_in(&mut tx, before).await?;
        tx.commit().await.map_err(err("purge_changes"))?;
        Ok(n)
    }

    async fn idempotency_begin(
        &self,
        key: &IdempotencyKey,
        request_hash: &str,
        ttl: Duration,
    ) -> Result<Option<StoredResponse>> {
        self.idempotency_begin_impl(key, request_hash, ttl).await
    }

    async fn idempotency_complete(
        &self,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<()> {
        self.idempotency_complete_impl(key, response).await
    }

    async fn idempotency_release(&self, key: &IdempotencyKey) -> Result<()> {
        self.idempotency_release_impl(key).await
    }

    async fn idempotency_purge(&self) -> Result<u64> {
        self.idempotency_purge_impl().await
    }

    async fn claim_lease(&self, name: &StoreName, owner: &str, ttl: Duration) -> Result<Lease> {
        self.lease(name, owner, ttl, true).await
    }

    async fn renew_lease(&self, name: &StoreName, owner: &str, ttl: Duration) -> Result<Lease> {
        self.lease(name, owner, ttl, false).await
    }

    async fn release_lease(&self, name: &StoreName, owner: &str) -> Result<()> {
        self.release_lease_impl(name, owner).await
    }

    async fn claim_next(&self, owner: &str, ttl: Duration, limit: u32) -> Result<Vec<Store>> {
        self.claim_next_impl(owner, ttl, limit).await
    }

    async fn append_audit(&self, e: &AuditEvent) -> Result<()> {
        let (_gate, mut tx) = self.write("append_audit").await?;
        append_audit_in(&mut tx, e).await?;
        tx.commit().await.map_err(err("append_audit"))
    }

    async fn query_audit(&self, q: &AuditQuery) -> Result<Page<AuditEvent>> {
        let limit = q.page_size()?;
        let pos = q.cursor.as_deref().map(cursor::decode).transpose()?;
        let (exact, prefix) = match q.action.as_deref() {
            Some(a) => match action_prefix(a) {
                Some(p) => (None, Some(p)),
                None => (Some(a), None),
            },
            None => (None, None),
        };
        let rows = sqlx::query(concat!(
            "SELECT ",
            audit_cols!(),
            " FROM audit_events WHERE (?1 IS NULL OR store = ?1) AND (?2 IS NULL OR tenant = ?2) \
             AND (?3 IS NULL OR action = ?3) AND (?4 IS NULL OR substr(action, 1, length(?4)) = ?4) \
             AND (?5 IS NULL OR at >= ?5) AND (?6 IS NULL OR at < ?6) \
             AND (?7 IS NULL OR at < ?7 OR (at = ?7 AND id < ?8)) \
             ORDER BY at DESC, id DESC LIMIT ?9"
        ))
        .bind(q.store.as_deref())
        .bind(q.tenant.as_deref())
        .bind(exact)
        .bind(prefix)
        .bind(q.since.map(micros))
        .bind(q.until.map(micros))
        .bind(pos.as_ref().map(|p| micros(p.0)))
        .bind(pos.as_ref().map(|p| p.1.as_str()))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(err("query_audit"))?;
        let items = rows
            .iter()
            .map(|r| raw_event(r)?.into_event(BACKEND))
            .collect::<Result<Vec<_>>>()?;
        Ok(crate::state::page_of(items, limit as usize, |e| {
            cursor::encode(e.at, &e.id.to_string())
        }))
    }

    async fn status_counts(&self) -> Result<Vec<(crate::store::Status, u64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM stores GROUP BY status")
                .fetch_all(&self.pool)
                .await
                .map_err(err("status_counts"))?;
        crate::state::fold_counts(BACKEND, rows)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(err("ping"))
    }
}

/// Completes an idempotency key inside a write transaction: refuses a key begun with
/// another request or already completed, then stores the response.
/// Appends `e` to the audit table inside `tx`; an `id` already there keeps the first.
async fn append_audit_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    e: &AuditEvent,
) -> Result<()> {
    sqlx::query(concat!(
        "INSERT INTO audit_events (",
        audit_cols!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (id) DO NOTHING"
    ))
    .bind(e.id.to_string())
    .bind(micros(e.at))
    .bind(&e.actor)
    .bind(&e.tenant)
    .bind(&e.action)
    .bind(&e.store)
    .bind(e.outcome.as_str())
    .bind(&e.detail)
    .bind(e.source_ip.map(|ip| ip.to_string()))
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(err("append_audit"))
}

async fn complete_key(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    idem: &IdempotentInsert,
    now: DateTime<Utc>,
) -> Result<()> {
    let row = sqlx::query(IDEM_SELECT)
        .bind(&idem.key.scope)
        .bind(&idem.key.key)
        .fetch_optional(&mut **tx)
        .await
        .map_err(err("idempotency"))?;
    let existing = row.as_ref().map(idem_row).transpose()?;
    insert_decision(existing.as_ref(), &idem.request_hash, now)?;
    let created = existing
        .filter(|r| r.expires_at > now)
        .map_or(now, |r| r.created_at);
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, request_hash, response_status, \
         response_body, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash, \
         response_status = excluded.response_status, response_body = excluded.response_body, \
         created_at = excluded.created_at, expires_at = excluded.expires_at",
    )
    .bind(&idem.key.scope)
    .bind(&idem.key.key)
    .bind(&idem.request_hash)
    .bind(i64::from(idem.response.status))
    .bind(&idem.response.body)
    .bind(micros(created))
    .bind(micros(expiry(created, crate::state::IDEMPOTENCY_TTL)?))
    .execute(&mut **tx)
    .await
    .map_err(err("idempotency"))?;
    Ok(())
}
