//! The state port: store records, idempotency keys, work leases, the audit table.
//!
//! ```text
//!  state::open("sqlite://urumi.db" | "postgres://…" | "memory:") ──▶ Arc<dyn StateStore>
//!
//!  create:   idempotency_begin(key) ─▶ insert(store, {limits, key→response}) ─▶ (atomic: name unique,
//!            limits checked, key completed)          ─▶ get / list / update(version) / delete
//!  worker:   claim_next(owner, ttl, n) ─▶ renew_lease … ─▶ release_lease   (Postgres: SKIP LOCKED)
//!  audit:    append_audit(event) ─▶ query_audit(filter, cursor)
//! ```
//!
//! An idempotent create, as an adapter runs it:
//!
//! ```text
//!  idempotency_begin(key, request_hash(..)) ─┬─ Ok(Some(resp)) ─▶ replay resp (same status, same body)
//!                                            ├─ Err(in_progress | mismatch) ─▶ 409 / 422
//!                                            └─ Ok(None): this request owns the key
//!     insert(store, {key, hash, 202 + body}) ─┬─ Ok ─▶ store and completed key, in one transaction
//!                                             ├─ Err 4xx ─▶ idempotency_complete(key, problem response)
//!                                             └─ Err unavailable ─▶ idempotency_release(key)
//! ```
//!
//! Three implementations run the same conformance suite ([`conformance`]):
//! [`MemoryStore`] (one mutex), [`SqliteStore`] (one file, WAL, `BEGIN IMMEDIATE`),
//! [`PostgresStore`] (advisory lock per insert, `FOR UPDATE SKIP LOCKED` leases).
//! Passwords and API keys never enter a state store.

mod cursor;
pub(crate) mod feed;
mod memory;
mod postgres;
mod rows;
mod sqlite;

#[doc(hidden)]
pub mod conformance;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use feed::{Change, ChangeKind, ChangeQuery, DEFAULT_CHANGE_RETENTION};
pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use crate::audit::AuditQuery;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::store::{AuditEvent, Status, Store, StoreName, TenantId};

/// How long an idempotency record is kept (24 hours).
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

/// How long an "in progress" idempotency record blocks duplicates before it is
/// considered abandoned (its request crashed) and may be taken over.
pub const IDEMPOTENCY_IN_PROGRESS_TIMEOUT: Duration = Duration::from_secs(300);

/// The default and the largest page size of a list.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// The largest page size a list accepts.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// A filter and page request for [`StateStore::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only this tenant's stores.
    pub tenant: Option<TenantId>,
    /// Only stores with this status.
    pub status: Option<Status>,
    /// Page size (default [`DEFAULT_PAGE_SIZE`], 1..=[`MAX_PAGE_SIZE`]).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The effective page size; `invalid_spec` when out of range.
    pub fn page_size(&self) -> Result<u32> {
        page_size(self.limit)
    }
}

pub(crate) fn page_size(limit: Option<u32>) -> Result<u32> {
    match limit.unwrap_or(DEFAULT_PAGE_SIZE) {
        n @ 1..=MAX_PAGE_SIZE => Ok(n),
        n => Err(Error::InvalidSpec {
            field: "limit",
            message: format!("{n} is not between 1 and {MAX_PAGE_SIZE}"),
        }),
    }
}

/// One page of a list, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass this as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A work lease on one store, held by one worker until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The leased store.
    pub store: StoreName,
    /// Who holds it (a worker id, unique per process).
    pub owner: String,
    /// When it lapses unless renewed.
    pub expires_at: DateTime<Utc>,
}

/// An idempotency key, scoped to its caller (e.g. the API key's tenant).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    /// Whose key it is; the same key from two scopes is two keys.
    pub scope: String,
    /// The `Idempotency-Key` header value.
    pub key: String,
}

/// The response first given to a request, replayed for its duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// The body, as sent (JSON text).
    pub body: String,
}

impl IdempotencyKey {
    /// A key from its caller's scope and the `Idempotency-Key` value.
    pub fn new(scope: impl Into<String>, key: impl Into<String>) -> Self {
        IdempotencyKey {
            scope: scope.into(),
            key: key.into(),
        }
    }
}

/// The request hash to pass with an idempotency key: SHA-256 (hex) of the method, the
/// path and the body, so "the same key with a different body" is detected.
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b"\n");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

/// Complete an idempotency key in the same transaction as an insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentInsert {
    /// The key.
    pub key: IdempotencyKey,
    /// A hash of the request (method, path, body) that began it.
    pub request_hash: String,
    /// The response to replay for duplicates.
    pub response: StoredResponse,
}

/// Options of [`StateStore::insert`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsertOptions {
    /// The limits checked atomically with the insert.
    pub limits: Limits,
    /// An idempotency key completed atomically with the insert.
    pub idempotency: Option<IdempotentInsert>,
    /// An audit event appended atomically with the insert (as by
    /// [`StateStore::append_audit`], so appending it again later keeps this one): whoever
    /// can read the store can read the event that created it.
    pub audit: Option<AuditEvent>,
}

/// Where store records, idempotency keys, leases and the audit table live.
///
/// Object-safe; used as `Arc<dyn StateStore>`. Every method is safe to call from many
/// tasks and, for SQLite and Postgres, from many processes sharing one database.
#[async_trait]
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// `sqlite`, `postgres` or `memory`.
    fn backend(&self) -> &'static str;

    /// Inserts a new store record with `version` 1 and returns it as stored.
    ///
    /// Atomic: the name's uniqueness, `opts.limits` and `opts.idempotency` are checked
    /// and written in one transaction (one lock), so concurrent inserts cannot create
    /// two stores of one name, overshoot a limit, or create two stores from one key.
    /// Errors: `store_exists`, `quota_exceeded`, `rate_limited`,
    /// `idempotency_mismatch` (the key began with another request), `conflict` (the key
    /// already completed), `unavailable`.
    async fn insert(&self, store: &Store, opts: &InsertOptions) -> Result<Store>;

    /// The store named `name`. Errors: `not_found`.
    async fn get(&self, name: &StoreName) -> Result<Store>;

    /// Stores matching `query`, newest first (`created_at`, then name), one page.
    /// Errors: `invalid_spec` for a bad limit or cursor.
    async fn list(&self, query: &ListQuery) -> Result<Page<Store>>;

    /// Replaces the record if its stored version equals `store.version`; returns it
    /// with the version bumped, and appends an `updated` change in the same transaction.
    /// Errors: `conflict` (stale version), `not_found`.
    async fn update(&self, store: &Store) -> Result<Store> {
        self.update_with(store, None).await
    }

    /// [`update`](Self::update), and completes `idempotency` (when given) in the same
    /// transaction, so a duplicate request can never see the change without its
    /// response, nor the response without the change. Errors: those of `update`, and
    /// `idempotency_mismatch` / `conflict` as for [`insert`](Self::insert).
    async fn update_with(
        &self,
        store: &Store,
        idempotency: Option<&IdempotentInsert>,
    ) -> Result<Store>;

    /// Drops the record (and its lease) and appends a `deleted` change carrying the last
    /// record, in one transaction. Errors: `not_found`. Audit events and the tenant's
    /// creation history stay.
    async fn delete(&self, name: &StoreName) -> Result<()>;

    /// The change feed: changes after `query.after`, in sequence (commit) order, at most
    /// `query.batch()`. Every insert, update and delete appended one, in its own
    /// transaction. Errors: `cursor_expired` when `after` is older than what retention
    /// kept, or beyond the newest change (a cursor of another database).
    async fn changes(&self, query: &ChangeQuery) -> Result<Vec<Change>>;

    /// The `seq` of the newest change (0 when none was ever written): where a follower
    /// that wants only what happens from now on starts.
    async fn change_head(&self) -> Result<u64>;

    /// Drops changes written before `before` (retention); returns how many. Cursors
    /// older than what remains become `cursor_expired`.
    async fn purge_changes(&self, before: DateTime<Utc>) -> Result<u64>;

    /// Begins a request under `key`. `Ok(None)`: the caller owns the key and must
    /// finish it with [`insert`](Self::insert), [`idempotency_complete`](Self::idempotency_complete)
    /// or [`idempotency_release`](Self::idempotency_release). `Ok(Some(response))`:
    /// a duplicate; replay `response`. Errors: `idempotency_in_progress`,
    /// `idempotency_mismatch` (same key, another `request_hash`). Expired records
    /// (older than `ttl`) are replaced.
    async fn idempotency_begin(
        &self,
        key: &IdempotencyKey,
        request_hash: &str,
        ttl: Duration,
    ) -> Result<Option<StoredResponse>>;

    /// Records the response of a request begun under `key`. Idempotent.
    /// Errors: `not_found` if the key was never begun (or expired).
    async fn idempotency_complete(
        &self,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<()>;

    /// Forgets an in-progress key (the request failed transiently) so a retry may run.
    /// Completed keys are kept. Idempotent.
    async fn idempotency_release(&self, key: &IdempotencyKey) -> Result<()>;

    /// Deletes expired idempotency records; returns how many.
    async fn idempotency_purge(&self) -> Result<u64>;

    /// Takes (or re-takes, if `owner` already holds it) the lease on `name` for `ttl`.
    /// Errors: `conflict` (another owner holds an unexpired lease), `not_found`.
    async fn claim_lease(&self, name: &StoreName, owner: &str, ttl: Duration) -> Result<Lease>;

    /// Extends a lease `owner` holds. Errors: `conflict` (lost to another owner),
    /// `not_found`.
    async fn renew_lease(&self, name: &StoreName, owner: &str, ttl: Duration) -> Result<Lease>;

    /// Gives up a lease `owner` holds. Idempotent: a lease held by someone else, or a
    /// store already gone, is left as is and is not an error.
    async fn release_lease(&self, name: &StoreName, owner: &str) -> Result<()>;

    /// Leases up to `limit` stores that are not at rest (`Pending`, `Provisioning`,
    /// `Updating`, `Deleting`) and whose lease is free or expired, least recently updated first,
    /// and returns them. Two concurrent callers never receive the same store.
    async fn claim_next(&self, owner: &str, ttl: Duration, limit: u32) -> Result<Vec<Store>>;

    /// Appends an audit event. Appending the same `id` twice keeps the first.
    async fn append_audit(&self, event: &AuditEvent) -> Result<()>;

    /// Audit events matching `query`, newest first, one page.
    async fn query_audit(&self, query: &AuditQuery) -> Result<Page<AuditEvent>>;

    /// Checks that the backend answers (for readiness probes). Errors: `unavailable`.
    async fn ping(&self) -> Result<()>;

    /// How many stores have each status (every status listed, zeros included, in
    /// [`Status::ALL`] order): the "stores by status" metric. The default pages through
    /// [`list`](Self::list); SQL backends answer with one `GROUP BY`.
    async fn status_counts(&self) -> Result<Vec<(Status, u64)>> {
        let mut counts: Vec<(Status, u64)> = Status::ALL.iter().map(|s| (*s, 0)).collect();
        let mut query = ListQuery {
            limit: Some(MAX_PAGE_SIZE),
            ..Default::default()
        };
        loop {
            let page = self.list(&query).await?;
            for store in &page.items {
                if let Some(c) = counts.iter_mut().find(|(s, _)| *s == store.status) {
                    c.1 += 1;
                }
            }
            match page.next_cursor {
                Some(next) => query.cursor = Some(next),
                None => return Ok(counts),
            }
        }
    }
}

/// Opens a state store from a URL: `sqlite://PATH` (created if missing),
/// `postgres://…` / `postgresql://…`, or `memory:`.
///
/// Errors: `unsupported` for another scheme, `invalid_config` for a malformed URL, and
/// the backend's own errors (an unreachable server, a corrupt or foreign file, a schema
/// newer than this code) with a message naming the problem.
pub async fn open(url: &str) -> Result<Arc<dyn StateStore>> {
    if url == "memory:" || url == "memory://" {
        return Ok(Arc::new(MemoryStore::new()));
    }
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err(Error::InvalidConfig {
                message: "state URL sqlite:// needs a file path, e.g. sqlite://urumi.db".into(),
            });
        }
        return Ok(Arc::new(SqliteStore::open(path).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStore::connect(url).await?));
    }
    let scheme = url.split(':').next().unwrap_or_default();
    Err(Error::Unsupported {
        what: format!(
            "state URL scheme {:?}; use sqlite://PATH, postgres://… or memory:",
            scheme.chars().take(32).collect::<String>()
        ),
    })
}

/// `url` with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

/// The lease expiry for a lease taken now for `ttl`.
pub(crate) fn expiry(now: DateTime<Utc>, ttl: Duration) -> Result<DateTime<Utc>> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| Error::InvalidSpec {
            field: "ttl",
            message: format!("{ttl:?} is too long"),
        })
}

/// Cuts a sorted list to one page and makes the cursor from its last item.
pub(crate) fn page_of<T>(
    mut items: Vec<T>,
    limit: usize,
    cursor_of: impl Fn(&T) -> String,
) -> Page<T> {
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor_of)
    } else {
        None
    };
    Page { items, next_cursor }
}

/// Folds `(status, count)` rows from a `GROUP BY status` into [`StateStore::status_counts`]'s shape.
pub(crate) fn fold_counts(
    backend: &'static str,
    rows: Vec<(String, i64)>,
) -> Result<Vec<(Status, u64)>> {
    let mut counts: Vec<(Status, u64)> = Status::ALL.iter().map(|s| (*s, 0)).collect();
    for (status, n) in rows {
        let status: Status = status
            .parse()
            .map_err(|_| rows::corrupt(backend, "unknown status in stores"))?;
        if let Some(c) = counts.iter_mut().find(|(s, _)| *s == status) {
            c.1 = u64::try_from(n).unwrap_or(0);
        }
    }
    Ok(counts)
}
