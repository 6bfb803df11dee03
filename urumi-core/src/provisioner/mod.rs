//! The [`Provisioner`]: what a platform calls. [`KubeProvisioner`] is its implementation.
//!
//! ```text
//!  create(caller, request) ── validate (name, tenant, engine, plan) ── nothing created on bad input
//!        └─▶ StateStore::insert (name unique, limits, idempotency: one transaction)
//!              └─▶ audit store.create ─▶ publish Updated ─▶ orchestrator.wake()  ─▶ 202-style return
//!  delete(caller, name) ── status Deleting ─▶ audit store.delete ─▶ interrupt + wake
//!  retry(caller, name)  ── Failed only: Provisioning from the failed step (readiness → release) ─▶ wake
//!  get / list / events / audit ── tenant-scoped reads (another tenant's store is not_found)
//!  credentials(caller, name) ── read from the store's Secret, audited (never stored)
//!  subscribe() ── every change, as it happens;  wait(name, status, timeout)
//! ```

mod kube;
mod settings;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub use self::kube::{KubeProvisioner, KubeProvisionerBuilder};
pub use self::settings::ProvisionerSettings;
use crate::audit::AuditQuery;
use crate::error::{Error, Result};
use crate::orchestrator::StoreChange;
use crate::state::{IdempotentInsert, ListQuery, Page};
use crate::store::{AuditEvent, Status, Store, TenantId};

/// What a caller may see and do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every tenant's stores.
    Admin,
    /// Only the caller's own tenant's stores.
    Tenant,
}

/// Who is asking: recorded in audit events and used to scope what they see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// A name for audit events (an API key's name, a user); never a secret.
    pub actor: String,
    /// The caller's tenant; new stores belong to it.
    pub tenant: TenantId,
    /// Admin or tenant.
    pub role: Role,
    /// Where the request came from, when it came over the network.
    pub source_ip: Option<IpAddr>,
}

impl Caller {
    /// A tenant-scoped caller.
    pub fn tenant(actor: impl Into<String>, tenant: TenantId) -> Self {
        Caller {
            actor: actor.into(),
            tenant,
            role: Role::Tenant,
            source_ip: None,
        }
    }

    /// An admin caller whose new stores belong to `tenant`.
    pub fn admin(actor: impl Into<String>, tenant: TenantId) -> Self {
        Caller {
            role: Role::Admin,
            ..Caller::tenant(actor, tenant)
        }
    }

    /// Sets the source address.
    pub fn with_source_ip(mut self, ip: IpAddr) -> Self {
        self.source_ip = Some(ip);
        self
    }

    /// Whether this caller may see `store`.
    pub fn can_see(&self, store: &Store) -> bool {
        self.role == Role::Admin || store.tenant == self.tenant
    }

    pub(crate) fn event(&self, action: &str, outcome: crate::audit::Outcome) -> AuditEvent {
        let mut e = AuditEvent::new(self.actor.clone(), action, outcome);
        if let Some(ip) = self.source_ip {
            e = e.source_ip(ip);
        }
        e
    }
}

/// A request to create a store. Strings, validated by the provisioner, so that every
/// adapter refuses bad input the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateStore {
    /// The store's name (a DNS label, 3–40 characters, not reserved).
    pub name: String,
    /// The engine; `woocommerce` when absent.
    #[serde(default)]
    pub engine: Option<String>,
    /// The plan; `small` when absent.
    #[serde(default)]
    pub plan: Option<String>,
    /// The tenant that will own it; only an admin may name another tenant than its own.
    #[serde(default)]
    pub tenant: Option<String>,
}

impl CreateStore {
    /// A request for `name` with the default engine and plan.
    pub fn named(name: impl Into<String>) -> Self {
        CreateStore {
            name: name.into(),
            ..Default::default()
        }
    }

    /// Sets the plan.
    pub fn plan(mut self, plan: impl Into<String>) -> Self {
        self.plan = Some(plan.into());
        self
    }

    /// Sets the engine.
    pub fn engine(mut self, engine: impl Into<String>) -> Self {
        self.engine = Some(engine.into());
        self
    }
}

/// Options of [`Provisioner::create`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Complete this idempotency key atomically with the insert.
    pub idempotency: Option<IdempotentInsert>,
}

/// A store's admin login. `Debug` never shows the password.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreCredentials {
    /// The WordPress admin URL.
    pub admin_url: Option<String>,
    /// The admin user name.
    pub username: String,
    /// The admin password.
    pub password: String,
}

impl std::fmt::Debug for StoreCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCredentials")
            .field("admin_url", &self.admin_url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Provisions stores. Object-safe; adapters hold an `Arc<dyn Provisioner>`.
///
/// Every call is scoped by its [`Caller`]: a tenant never sees, changes or learns the
/// existence of another tenant's store (`not_found`). Calls that change something are
/// audited with the caller as actor. Provisioning itself runs in the background: `create`,
/// `delete` and `retry` return as soon as the request is recorded.
#[async_trait]
pub trait Provisioner: Send + Sync {
    /// Accepts a new store (`Pending`) and starts provisioning it in the background.
    /// Validation happens first: on any error nothing is created anywhere.
    /// Errors: `invalid_name`, `invalid_spec` (unknown engine or plan, bad tenant),
    /// `forbidden` (a tenant naming another tenant), `store_exists`, `quota_exceeded`,
    /// `rate_limited`, idempotency errors, `unavailable`.
    async fn create(
        &self,
        caller: &Caller,
        request: CreateStore,
        opts: CreateOptions,
    ) -> Result<Store>;

    /// One store. Errors: `not_found` (also for another tenant's store).
    async fn get(&self, caller: &Caller, name: &str) -> Result<Store>;

    /// Stores the caller may see, newest first, one page. A tenant's `query.tenant` is
    /// forced to its own. Errors: `invalid_spec` (bad limit or cursor).
    async fn list(&self, caller: &Caller, query: ListQuery) -> Result<Page<Store>>;

    /// Starts deleting a store: status `Deleting`, then release, namespace, volumes and
    /// record go in the background. Idempotent while the store exists (deleting a
    /// `Deleting` store returns it as is). Errors: `not_found` once it is gone.
    async fn delete(&self, caller: &Caller, name: &str) -> Result<Store>;

    /// Provisions a `Failed` store again from the step that failed (from the release
    /// when readiness failed: a new revision, so a failed setup Job runs again), keeping
    /// its credentials. Errors: `not_found`, `conflict` when it is not `Failed`.
    async fn retry(&self, caller: &Caller, name: &str) -> Result<Store>;

    /// The store's admin login, read from its Secret; each read is audited.
    /// Errors: `not_found` (no such store, or its Secret does not exist yet).
    async fn credentials(&self, caller: &Caller, name: &str) -> Result<StoreCredentials>;

    /// The store's audit trail, newest first. Errors: `not_found`, `invalid_spec`.
    async fn events(
        &self,
        caller: &Caller,
        name: &str,
        query: AuditQuery,
    ) -> Result<Page<AuditEvent>>;

    /// Every audit event the caller may see (a tenant: its own). Errors: `invalid_spec`,
    /// `unsupported` when the audit sink cannot be queried.
    async fn audit(&self, caller: &Caller, query: AuditQuery) -> Result<Page<AuditEvent>>;

    /// Records an event about a store that came from outside (e.g. a WooCommerce
    /// webhook), after the adapter authenticated it. Errors: `not_found`.
    async fn record_store_event(&self, name: &str, action: &str, detail: String) -> Result<()>;

    /// Every change to every store, as it happens (filter by caller as needed).
    fn subscribe(&self) -> broadcast::Receiver<StoreChange>;

    /// Waits until the store has `status` (or, for `None`, is gone), at most `timeout`.
    /// Returns the store as last seen. Errors: `timeout`, `not_found` (gone while
    /// waiting for a status), and `conflict` when it reached `Failed` while waiting for
    /// another status (the message is the failure reason).
    async fn wait(
        &self,
        caller: &Caller,
        name: &str,
        status: Option<Status>,
        timeout: Duration,
    ) -> Result<Option<Store>> {
        let mut changes = self.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let current = match self.get(caller, name).await {
                Ok(store) => Some(store),
                Err(e) if e.kind() == crate::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            match (&current, status) {
                (None, None) => return Ok(None),
                (None, Some(_)) => return Err(Error::store_not_found(name)),
                (Some(s), Some(want)) if s.status == want => return Ok(current),
                (Some(s), Some(_)) if s.status == Status::Failed => {
                    return Err(Error::conflict(format!(
                        "store {name} failed: {}",
                        s.message
                    )));
                }
                _ => {}
            }
            // Wake on the next change to this store, or re-read after a short while
            // (changes made by other replicas are not broadcast here).
            let next = async {
                loop {
                    match changes.recv().await {
                        Ok(change) if change.store().name.as_str() == name => return,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => return,
                        Err(broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await
                        }
                    }
                }
            };
            let tick = tokio::time::sleep(Duration::from_secs(2));
            tokio::select! {
                _ = next => {}
                _ = tick => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(Error::Timeout {
                        operation: format!(
                            "waiting for store {name} to be {}",
                            status.map_or("deleted", Status::as_str)
                        ),
                        after: timeout,
                    });
                }
            }
        }
    }
}
