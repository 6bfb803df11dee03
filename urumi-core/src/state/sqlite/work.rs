//! Idempotency keys and work leases of [`SqliteStore`] (the trait methods delegate here).
//!
//! ```text
//!  begin:  gate ─▶ BEGIN IMMEDIATE ─▶ read key ─▶ begin_decision ─▶ upsert in-progress ─▶ COMMIT
//!  leases: gate ─▶ BEGIN IMMEDIATE ─▶ conditional UPDATE (… RETURNING for claim_next) ─▶ COMMIT
//! ```

use std::time::Duration;

use super::ops::{IDEM_SELECT, err, idem_row, to_store};
use super::{SqliteStore, micros};
use crate::error::{Error, Result};
use crate::state::rows::{begin_decision, store_cols};
use crate::state::{IdempotencyKey, Lease, StoredResponse, expiry};
use crate::store::{self, Store, StoreName};

impl SqliteStore {
    pub(super) async fn idempotency_begin_impl(
        &self,
        key: &IdempotencyKey,
        request_hash: &str,
        ttl: Duration,
    ) -> Result<Option<StoredResponse>> {
        let now = store::now();
        let (_gate, mut tx) = self.write("idempotency_begin").await?;
        let row = sqlx::query(IDEM_SELECT)
            .bind(&key.scope)
            .bind(&key.key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err("idempotency_begin"))?;
        let existing = row.as_ref().map(idem_row).transpose()?;
        if let Some(resp) = begin_decision(existing.as_ref(), request_hash, now)? {
            return Ok(Some(resp));
        }
        sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, response_status, \
             response_body, created_at, expires_at) VALUES (?1, ?2, ?3, NULL, NULL, ?4, ?5) \
             ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash, \
             response_status = NULL, response_body = NULL, created_at = excluded.created_at, \
             expires_at = excluded.expires_at",
        )
        .bind(&key.scope)
        .bind(&key.key)
        .bind(request_hash)
        .bind(micros(now))
        .bind(micros(expiry(now, ttl)?))
        .execute(&mut *tx)
        .await
        .map_err(err("idempotency_begin"))?;
        tx.commit().await.map_err(err("idempotency_begin"))?;
        Ok(None)
    }

    pub(super) async fn idempotency_complete_impl(
        &self,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<()> {
        let (_gate, mut tx) = self.write("idempotency_complete").await?;
        let done = sqlx::query(
            "UPDATE idempotency_keys SET response_status = ?3, response_body = ?4 \
             WHERE scope = ?1 AND key = ?2 AND expires_at > ?5",
        )
        .bind(&key.scope)
        .bind(&key.key)
        .bind(i64::from(response.status))
        .bind(&response.body)
        .bind(micros(store::now()))
        .execute(&mut *tx)
        .await
        .map_err(err("idempotency_complete"))?;
        tx.commit().await.map_err(err("idempotency_complete"))?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound {
                what: "idempotency key".to_owned(),
            });
        }
        Ok(())
    }

    pub(super) async fn idempotency_release_impl(&self, key: &IdempotencyKey) -> Result<()> {
        let (_gate, mut tx) = self.write("idempotency_release").await?;
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = ?1 AND key = ?2 AND response_status IS NULL",
        )
        .bind(&key.scope)
        .bind(&key.key)
        .execute(&mut *tx)
        .await
        .map_err(err("idempotency_release"))?;
        tx.commit().await.map_err(err("idempotency_release"))
    }

    pub(super) async fn idempotency_purge_impl(&self) -> Result<u64> {
        let (_gate, mut tx) = self.write("idempotency_purge").await?;
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= ?1")
            .bind(micros(store::now()))
            .execute(&mut *tx)
            .await
            .map_err(err("idempotency_purge"))?;
        tx.commit().await.map_err(err("idempotency_purge"))?;
        Ok(done.rows_affected())
    }

    pub(super) async fn release_lease_impl(&self, name: &StoreName, owner: &str) -> Result<()> {
        let (_gate, mut tx) = self.write("release_lease").await?;
        sqlx::query(
            "UPDATE stores SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE name = ?1 AND lease_owner = ?2",
        )
        .bind(name.as_str())
        .bind(owner)
        .execute(&mut *tx)
        .await
        .map_err(err("release_lease"))?;
        tx.commit().await.map_err(err("release_lease"))
    }

    pub(super) async fn claim_next_impl(
        &self,
        owner: &str,
        ttl: Duration,
        limit: u32,
    ) -> Result<Vec<Store>> {
        let now = store::now();
        let expires = expiry(now, ttl)?;
        let (_gate, mut tx) = self.write("claim_next").await?;
        let rows = sqlx::query(concat!(
            "UPDATE stores SET lease_owner = ?1, lease_expires_at = ?2 WHERE name IN (\
             SELECT name FROM stores WHERE status IN ('Pending', 'Provisioning', 'Updating', 'Deleting') \
             AND (lease_owner IS NULL OR lease_expires_at <= ?3) \
             ORDER BY updated_at, name LIMIT ?4) RETURNING ",
            store_cols!()
        ))
        .bind(owner)
        .bind(micros(expires))
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(err("claim_next"))?;
        let mut stores = rows.iter().map(to_store).collect::<Result<Vec<_>>>()?;
        tx.commit().await.map_err(err("claim_next"))?;
        stores.sort_by(|a, b| (a.updated_at, &a.name).cmp(&(b.updated_at, &b.name)));
        Ok(stores)
    }

    pub(super) async fn lease(
        &self,
        name: &StoreName,
        owner: &str,
        ttl: Duration,
        claim: bool,
    ) -> Result<Lease> {
        let now = store::now();
        let expires_at = expiry(now, ttl)?;
        let (_gate, mut tx) = self.write("lease").await?;
        let sql = if claim {
            "UPDATE stores SET lease_owner = ?2, lease_expires_at = ?3 WHERE name = ?1 AND \
             (lease_owner IS NULL OR lease_owner = ?2 OR lease_expires_at <= ?4)"
        } else {
            "UPDATE stores SET lease_owner = ?2, lease_expires_at = ?3 WHERE name = ?1 AND \
             lease_owner = ?2 AND ?4 IS NOT NULL"
        };
        let done = sqlx::query(sql)
            .bind(name.as_str())
            .bind(owner)
            .bind(micros(expires_at))
            .bind(micros(now))
            .execute(&mut *tx)
            .await
            .map_err(err("lease"))?;
        if done.rows_affected() == 0 {
            let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM stores WHERE name = ?1")
                .bind(name.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(err("lease"))?;
            return Err(match exists {
                None => Error::store_not_found(name.as_str()),
                Some(_) => Error::conflict(format!(
                    "store {:?} is leased by another worker",
                    name.as_str()
                )),
            });
        }
        tx.commit().await.map_err(err("lease"))?;
        Ok(Lease {
            store: name.clone(),
            owner: owner.to_owned(),
            expires_at,
        })
    }
}
