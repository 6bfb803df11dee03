//! Idempotency keys and work leases of [`PostgresStore`] (the trait methods delegate here).
//!
//! ```text
//!  begin:      INSERT … ON CONFLICT DO NOTHING ─▶ (taken) SELECT … FOR UPDATE ─▶ begin_decision
//!  claim_next: UPDATE … WHERE name IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT n) RETURNING …
//! ```

use std::time::Duration;

use super::PostgresStore;
use super::ops::{IDEM_SELECT_FOR_UPDATE, IDEM_UPSERT, err, idem_row, to_store};
use crate::error::{Error, Result};
use crate::state::rows::{begin_decision, store_cols};
use crate::state::{IdempotencyKey, Lease, StoredResponse, expiry};
use crate::store::{self, Store, StoreName};

impl PostgresStore {
    pub(super) async fn idempotency_begin_impl(
        &self,
        key: &IdempotencyKey,
        request_hash: &str,
        ttl: Duration,
    ) -> Result<Option<StoredResponse>> {
        let now = store::now();
        let expires = expiry(now, ttl)?;
        let mut tx = self.pool.begin().await.map_err(err("idempotency_begin"))?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, key) DO NOTHING",
        )
        .bind(&key.scope)
        .bind(&key.key)
        .bind(request_hash)
        .bind(now)
        .bind(expires)
        .execute(&mut *tx)
        .await
        .map_err(err("idempotency_begin"))?;
        if inserted.rows_affected() == 0 {
            let row = sqlx::query(IDEM_SELECT_FOR_UPDATE)
                .bind(&key.scope)
                .bind(&key.key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(err("idempotency_begin"))?;
            let existing = row.as_ref().map(idem_row).transpose()?;
            if let Some(resp) = begin_decision(existing.as_ref(), request_hash, now)? {
                return Ok(Some(resp));
            }
            sqlx::query(IDEM_UPSERT)
                .bind(&key.scope)
                .bind(&key.key)
                .bind(request_hash)
                .bind(None::<i32>)
                .bind(None::<String>)
                .bind(now)
                .bind(expires)
                .execute(&mut *tx)
                .await
                .map_err(err("idempotency_begin"))?;
        }
        tx.commit().await.map_err(err("idempotency_begin"))?;
        Ok(None)
    }

    pub(super) async fn idempotency_complete_impl(
        &self,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE idempotency_keys SET response_status = $3, response_body = $4 \
             WHERE scope = $1 AND key = $2 AND expires_at > $5",
        )
        .bind(&key.scope)
        .bind(&key.key)
        .bind(i32::from(response.status))
        .bind(&response.body)
        .bind(store::now())
        .execute(&self.pool)
        .await
        .map_err(err("idempotency_complete"))?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound {
                what: "idempotency key".to_owned(),
            });
        }
        Ok(())
    }

    pub(super) async fn idempotency_release_impl(&self, key: &IdempotencyKey) -> Result<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND response_status IS NULL",
        )
        .bind(&key.scope)
        .bind(&key.key)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(err("idempotency_release"))
    }

    pub(super) async fn idempotency_purge_impl(&self) -> Result<u64> {
        sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
            .bind(store::now())
            .execute(&self.pool)
            .await
            .map(|d| d.rows_affected())
            .map_err(err("idempotency_purge"))
    }

    pub(super) async fn release_lease_impl(&self, name: &StoreName, owner: &str) -> Result<()> {
        sqlx::query(
            "UPDATE stores SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE name = $1 AND lease_owner = $2",
        )
        .bind(name.as_str())
        .bind(owner)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(err("release_lease"))
    }

    pub(super) async fn claim_next_impl(
        &self,
        owner: &str,
        ttl: Duration,
        limit: u32,
    ) -> Result<Vec<Store>> {
        // Leases are computed from the database's clock, so replicas whose clocks
        // disagree still agree on when a lease lapses.
        let rows = sqlx::query(concat!(
            "UPDATE stores SET lease_owner = $1, \
             lease_expires_at = clock_timestamp() + make_interval(secs => $2) WHERE name IN (\
             SELECT name FROM stores WHERE status IN ('Pending', 'Provisioning', 'Updating', 'Deleting') \
             AND (lease_owner IS NULL OR lease_expires_at <= clock_timestamp()) \
             ORDER BY updated_at, name LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING ",
            store_cols!()
        ))
        .bind(owner)
        .bind(ttl_secs(ttl)?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(err("claim_next"))?;
        let mut stores = rows.iter().map(to_store).collect::<Result<Vec<_>>>()?;
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
        // The database's clock decides expiry (see claim_next_impl).
        let sql = if claim {
            "UPDATE stores SET lease_owner = $2, \
             lease_expires_at = clock_timestamp() + make_interval(secs => $3) WHERE name = $1 AND \
             (lease_owner IS NULL OR lease_owner = $2 OR lease_expires_at <= clock_timestamp()) \
             RETURNING lease_expires_at"
        } else {
            "UPDATE stores SET lease_owner = $2, \
             lease_expires_at = clock_timestamp() + make_interval(secs => $3) WHERE name = $1 AND \
             lease_owner = $2 RETURNING lease_expires_at"
        };
        let expires_at: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(sql)
            .bind(name.as_str())
            .bind(owner)
            .bind(ttl_secs(ttl)?)
            .fetch_optional(&self.pool)
            .await
            .map_err(err("lease"))?;
        let Some(expires_at) = expires_at else {
            let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM stores WHERE name = $1")
                .bind(name.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(err("lease"))?;
            return Err(match exists {
                None => Error::store_not_found(name.as_str()),
                Some(_) => Error::conflict(format!(
                    "store {:?} is leased by another worker",
                    name.as_str()
                )),
            });
        };
        Ok(Lease {
            store: name.clone(),
            owner: owner.to_owned(),
            expires_at,
        })
    }
}

/// A lease TTL in (fractional) seconds for `make_interval`; `invalid_spec` when absurd.
fn ttl_secs(ttl: Duration) -> Result<f64> {
    let secs = ttl.as_secs_f64();
    if secs.is_finite() && secs < 1e9 {
        Ok(secs)
    } else {
        Err(Error::InvalidSpec {
            field: "ttl",
            message: format!("{ttl:?} is too long"),
        })
    }
}
