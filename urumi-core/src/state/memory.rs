//! [`MemoryStore`]: everything in one mutex-guarded struct; gone when the process ends.
//!
//! ```text
//!  any call ──lock(Inner)──▶ BTreeMap<name, Entry{store, lease}> + creations + idempotency + audit ──unlock
//! ```
//!
//! One mutex makes every operation atomic, limits included. For tests, demos and
//! embedding where persistence does not matter.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    Change, ChangeKind, ChangeQuery, IdempotencyKey, IdempotentInsert, InsertOptions, Lease,
    ListQuery, Page, StateStore, StoredResponse, cursor, expiry,
};
use crate::audit::AuditQuery;
use crate::error::{Error, Result};
use crate::limits::Usage;
use crate::store::{self, AuditEvent, Store, StoreName, TenantId};

#[derive(Debug)]
struct Entry {
    store: Store,
    lease: Option<(String, DateTime<Utc>)>,
}

/// The same record, and the same decision rules, as the SQL backends use.
type IdemRecord = super::rows::IdemRow;

#[derive(Debug, Default)]
struct Inner {
    stores: BTreeMap<StoreName, Entry>,
    /// How many stores each tenant has (kept with `stores`, so limits are O(1)).
    per_tenant: HashMap<TenantId, u64>,
    creations: HashMap<TenantId, Vec<DateTime<Utc>>>,
    idempotency: HashMap<IdempotencyKey, IdemRecord>,
    audit: Vec<AuditEvent>,
    /// The change feed, oldest first; `seq` of the last one appended, and of the last
    /// one purged.
    changes: std::collections::VecDeque<Change>,
    last_seq: u64,
    purged_through: u64,
}

/// An in-process state store. Cheap to create; nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-written (every
        // operation validates before it mutates), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// Appends `event` unless one with its `id` is there already.
    fn append_audit(&mut self, event: &AuditEvent) {
        if !self.audit.iter().any(|e| e.id == event.id) {
            let mut e = event.clone();
            e.at = store::truncate_micros(e.at);
            self.audit.push(e);
        }
    }

    fn append_change(&mut self, kind: ChangeKind, store: &Store) {
        self.last_seq += 1;
        self.changes.push_back(Change {
            seq: self.last_seq,
            at: store::now(),
            kind,
            store: store.clone(),
        });
    }

    /// Validates and stores a completed idempotency key (called under the lock, before
    /// anything else is written, so a refusal changes nothing).
    fn check_key(&self, idem: &IdempotentInsert, now: DateTime<Utc>) -> Result<()> {
        super::rows::insert_decision(self.idempotency.get(&idem.key), &idem.request_hash, now)
    }

    fn complete_key(&mut self, idem: &IdempotentInsert, now: DateTime<Utc>) -> Result<()> {
        let created_at = self
            .idempotency
            .get(&idem.key)
            .filter(|r| r.expires_at > now)
            .map_or(now, |r| r.created_at);
        self.idempotency.insert(
            idem.key.clone(),
            IdemRecord {
                request_hash: idem.request_hash.clone(),
                response: Some(idem.response.clone()),
                created_at,
                expires_at: expiry(created_at, super::IDEMPOTENCY_TTL)?,
            },
        );
        Ok(())
    }

    fn count_out(&mut self, tenant: &TenantId) {
        if let Some(n) = self.per_tenant.get_mut(tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_tenant.remove(tenant);
            }
        }
    }
}

fn lease_free(lease: &Option<(String, DateTime<Utc>)>, owner: &str, now: DateTime<Utc>) -> bool {
    match lease {
        None => true,
        Some((o, exp)) => o == owner || *exp <= now,
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn insert(&self, store: &Store, opts: &InsertOptions) -> Result<Store> {
        let now = store::now();
        let mut inner = self.lock();
        if inner.stores.contains_key(&store.name) {
            return Err(Error::StoreExists {
                name: store.name.to_string(),
            });
        }
        if let Some(idem) = &opts.idempotency {
            inner.check_key(idem, now)?;
        }
        let window_start = opts.limits.window_start(now);
        let recent: Vec<DateTime<Utc>> = inner
            .creations
            .get(&store.tenant)
            .map(|v| v.iter().copied().filter(|t| *t >= window_start).collect())
            .unwrap_or_default();
        let usage = Usage {
            tenant_stores: inner.per_tenant.get(&store.tenant).copied().unwrap_or(0),
            total_stores: inner.stores.len() as u64,
            tenant_recent_creations: recent.len() as u64,
            oldest_recent_creation: recent.iter().min().copied(),
        };
        opts.limits.check(&usage, now)?;

        let mut stored = store.clone();
        stored.version = 1;
        stored.created_at = store::truncate_micros(stored.created_at);
        stored.updated_at = store::truncate_micros(stored.updated_at);
        let mut kept = recent;
        kept.push(stored.created_at);
        inner.creations.insert(store.tenant.clone(), kept);
        if let Some(idem) = &opts.idempotency {
            inner.complete_key(idem, now)?;
        }
        inner.append_change(ChangeKind::Created, &stored);
        if let Some(event) = &opts.audit {
            inner.append_audit(event);
        }
        *inner.per_tenant.entry(stored.tenant.clone()).or_insert(0) += 1;
        inner.stores.insert(
            stored.name.clone(),
            Entry {
                store: stored.clone(),
                lease: None,
            },
        );
        Ok(stored)
    }

    async fn get(&self, name: &StoreName) -> Result<Store> {
        self.lock()
            .stores
            .get(name)
            .map(|e| e.store.clone())
            .ok_or_else(|| Error::store_not_found(name.as_str()))
    }

    async fn list(&self, query: &ListQuery) -> Result<Page<Store>> {
        let limit = query.page_size()? as usize;
        let pos = query.cursor.as_deref().map(cursor::decode).transpose()?;
        let inner = self.lock();
        let mut items: Vec<&Store> = inner
            .stores
            .values()
            .map(|e| &e.store)
            .filter(|s| query.tenant.as_ref().is_none_or(|t| s.tenant == *t))
            .filter(|s| query.status.is_none_or(|st| s.status == st))
            .filter(|s| {
                pos.as_ref()
                    .is_none_or(|p| cursor::is_after(s.created_at, s.name.as_str(), p))
            })
            .collect();
        let newest_first =
            |a: &&Store, b: &&Store| (b.created_at, &b.name).cmp(&(a.created_at, &a.name));
        if items.len() > limit + 1 {
            // Only the page (and one more, for the cursor) needs sorting.
            items.select_nth_unstable_by(limit + 1, newest_first);
            items.truncate(limit + 1);
        }
        items.sort_unstable_by(newest_first);
        let items: Vec<Store> = items.into_iter().cloned().collect();
        Ok(super::page_of(items, limit, |s| {
            cursor::encode(s.created_at, s.name.as_str())
        }))
    }

    async fn update_with(
        &self,
        store: &Store,
        idempotency: Option<&IdempotentInsert>,
    ) -> Result<Store> {
        let now = store::now();
        let mut inner = self.lock();
        if let Some(idem) = idempotency {
            inner.check_key(idem, now)?;
        }
        let entry = inner
            .stores
            .get_mut(&store.name)
            .ok_or_else(|| Error::store_not_found(store.name.as_str()))?;
        if entry.store.version != store.version {
            return Err(Error::conflict(format!(
                "store {:?} was changed (version {} is stale; current is {})",
                store.name.as_str(),
                store.version,
                entry.store.version
            )));
        }
        let mut next = store.clone();
        next.version += 1;
        next.created_at = entry.store.created_at;
        next.updated_at = store::truncate_micros(next.updated_at);
        let old_tenant = std::mem::replace(&mut entry.store, next.clone()).tenant;
        if old_tenant != next.tenant {
            inner.count_out(&old_tenant);
            *inner.per_tenant.entry(next.tenant.clone()).or_insert(0) += 1;
        }
        if let Some(idem) = idempotency {
            inner.complete_key(idem, now)?;
        }
        inner.append_change(ChangeKind::Updated, &next);
        Ok(next)
    }

    async fn delete(&self, name: &StoreName) -> Result<()> {
        let mut inner = self.lock();
        let entry = inner
            .stores
            .remove(name)
            .ok_or_else(|| Error::store_not_found(name.as_str()))?;
        inner.count_out(&entry.store.tenant);
        inner.append_change(ChangeKind::Deleted, &entry.store);
        Ok(())
    }

    async fn changes(&self, query: &ChangeQuery) -> Result<Vec<Change>> {
        let inner = self.lock();
        super::feed::check_cursor(query.after, inner.purged_through, inner.last_seq)?;
        let after = query.after.unwrap_or(0);
        // Sequences are dense in memory: the first wanted change is at a known offset.
        let first = inner.changes.front().map_or(0, |c| c.seq);
        let skip = usize::try_from((after + 1).saturating_sub(first)).unwrap_or(usize::MAX);
        Ok(inner
            .changes
            .iter()
            .skip(skip)
            .filter(|c| query.tenant.as_ref().is_none_or(|t| c.store.tenant == *t))
            .take(query.batch() as usize)
            .cloned()
            .collect())
    }

    async fn change_head(&self) -> Result<u64> {
        Ok(self.lock().last_seq)
    }

    async fn purge_changes(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut inner = self.lock();
        let mut n = 0;
        while inner.changes.front().is_some_and(|c| c.at < before) {
            if let Some(c) = inner.changes.pop_front() {
                inner.purged_through = c.seq;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn idempotency_begin(
        &self,
        key: &IdempotencyKey,
        request_hash: &str,
        ttl: Duration,
    ) -> Result<Option<StoredResponse>> {
        let now = store::now();
        let mut inner = self.lock();
        if let Some(resp) =
            super::rows::begin_decision(inner.idempotency.get(key), request_hash, now)?
        {
            return Ok(Some(resp));
        }
        inner.idempotency.insert(
            key.clone(),
            IdemRecord {
                request_hash: request_hash.to_owned(),
                response: None,
                created_at: now,
                expires_at: expiry(now, ttl)?,
            },
        );
        Ok(None)
    }

    async fn idempotency_complete(
        &self,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<()> {
        let now = store::now();
        let mut inner = self.lock();
        match inner
            .idempotency
            .get_mut(key)
            .filter(|r| r.expires_at > now)
        {
            Some(r) => {
                r.response = Some(response.clone());
                Ok(())
            }
            None => Err(Error::NotFound {
                what: "idempotency key".to_owned(),
            }),
        }
    }

    async fn idempotency_release(&self, key: &IdempotencyKey) -> Result<()> {
        let mut inner = self.lock();
        if inner
            .idempotency
            .get(key)
            .is_some_and(|r| r.response.is_none())
        {
            inner.idempotency.remove(key);
        }
        Ok(())
    }

    async fn idempotency_purge(&self) -> Result<u64> {
        let now = store::now();
        let mut inner = self.lock();
        let before = inner.idempotency.len();
        inner.idempotency.retain(|_, r| r.expires_at > now);
        Ok((before - inner.idempotency.len()) as u64)
    }

    async fn claim_lease(&self, name: &StoreName, owner: &str, ttl: Duration) -> Result<Lease> {
        let now = store::now();
        let mut inner = self.lock();
        let entry = inner
            .stores
            .get_mut(name)
            .ok_or_else(|| Error::store_not_found(name.as_str()))?;
        if !lease_free(&entry.lease, owner, now) {
            return Err(Error::conflict(format!(
                "store {:?} is leased by another worker",
                name.as_str()
            )));
        }
        let expires_at = expiry(now, ttl)?;
        entry.lease = Some((owner.to_owned(), expires_at));
        Ok(Lease {
            store: name.clone(),
            owner: owner.to_owned(),
            expires_at,
        })
    }

    async fn renew_lease(&self, name: &StoreName, owner: &str, ttl: Duration) -> Result<Lease> {
        let now = store::now();
        let mut inner = self.lock();
        let entry = inner
            .stores
            .get_mut(name)
            .ok_or_else(|| Error::store_not_found(name.as_str()))?;
        match &entry.lease {
            Some((o, _)) if o == owner => {
                let expires_at = expiry(now, ttl)?;
                entry.lease = Some((owner.to_owned(), expires_at));
                Ok(Lease {
                    store: name.clone(),
                    owner: owner.to_owned(),
                    expires_at,
                })
            }
            _ => Err(Error::conflict(format!(
                "lease on store {:?} is not held by {owner:?}",
                name.as_str()
            ))),
        }
    }

    async fn release_lease(&self, name: &StoreName, owner: &str) -> Result<()> {
        let mut inner = self.lock();
        if let Some(entry) = inner.stores.get_mut(name)
            && entry.lease.as_ref().is_some_and(|(o, _)| o == owner)
        {
            entry.lease = None;
        }
        Ok(())
    }

    async fn claim_next(&self, owner: &str, ttl: Duration, limit: u32) -> Result<Vec<Store>> {
        let now = store::now();
        let expires_at = expiry(now, ttl)?;
        let mut inner = self.lock();
        let mut candidates: Vec<&mut Entry> = inner
            .stores
            .values_mut()
            .filter(|e| !e.store.status.is_at_rest())
            .filter(|e| e.lease.as_ref().is_none_or(|(_, exp)| *exp <= now))
            .collect();
        let oldest_first = |a: &&mut Entry, b: &&mut Entry| {
            (a.store.updated_at, &a.store.name).cmp(&(b.store.updated_at, &b.store.name))
        };
        let take = limit as usize;
        if take > 0 && candidates.len() > take {
            candidates.select_nth_unstable_by(take, oldest_first);
            candidates.truncate(take);
        }
        candidates.sort_unstable_by(oldest_first);
        Ok(candidates
            .into_iter()
            .take(limit as usize)
            .map(|e| {
                e.lease = Some((owner.to_owned(), expires_at));
                e.store.clone()
            })
            .collect())
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<()> {
        self.lock().append_audit(event);
        Ok(())
    }

    async fn query_audit(&self, query: &AuditQuery) -> Result<Page<AuditEvent>> {
        let limit = query.page_size()? as usize;
        let pos = query.cursor.as_deref().map(cursor::decode).transpose()?;
        let inner = self.lock();
        let mut items: Vec<AuditEvent> = inner
            .audit
            .iter()
            .filter(|e| query.matches(e))
            .filter(|e| {
                pos.as_ref()
                    .is_none_or(|p| cursor::is_after(e.at, &e.id.to_string(), p))
            })
            .cloned()
            .collect();
        items.sort_by_key(|e| std::cmp::Reverse((e.at, e.id)));
        Ok(super::page_of(items, limit, |e| {
            cursor::encode(e.at, &e.id.to_string())
        }))
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
