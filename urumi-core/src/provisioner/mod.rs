//! The [`Provisioner`]: what a platform calls. [`KubeProvisioner`] is its implementation.
//!
//! ```text
//!  create(caller, request, {idempotency_key}) ── validate (name, tenant, engine, plan): bad input creates nothing
//!        └─▶ key begun? replay the first outcome │ in progress │ mismatch
//!        └─▶ StateStore::insert (name unique, limits, key completed, change appended: one transaction)
//!              └─▶ audit store.create ─▶ wake the worker            (runs to the end even if the
//!  delete / retry / update(plan) ── the same, through StateStore::update_with (update: Ready → Updating;
//!        a smaller plan is checked against the store's volumes, claims and pods first)        caller's future is dropped)
//!  suspend / resume ── Ready → Updating (suspended flipped) → the worker upgrades the release → Ready
//!  upgrade ── outdated Ready → Updating (rollback_to = the deployed revision) → Ready on the bundled
//!        chart, or (failed) helm rollback to that revision → Ready on the previous chart
//!  get / list / events / audit ── tenant-scoped reads (another tenant's store is not_found)
//!  credentials(caller, name) ── read from the store's Secret, audited (never stored)
//!  changes(caller, after) ── the durable feed: replay after the cursor, then live (all replicas)
//!  wait(name, status) / wait_deleted(name) ── built on changes()
//!  usage(caller, name) ── quota used/hard and volumes, read now │ plans() ── every plan's size
//!  verify(caller, name) ── Ready only: storefront → cart → product → add → COD checkout → order
//!  receive_webhook(name, topic, body, signature) ── HMAC-SHA256 with the store's secret ─▶ audit woocommerce.<topic>
//! ```

mod feed;
mod idempotency;
mod kube;
mod settings;
#[cfg(test)]
mod tests;
mod webhook;

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

pub use self::feed::FEED_POLL;
pub use self::idempotency::MAX_IDEMPOTENCY_KEY_LEN;
pub use self::kube::{KubeProvisioner, KubeProvisionerBuilder};
pub use self::settings::ProvisionerSettings;
pub use self::webhook::sign as sign_webhook;
use crate::audit::AuditQuery;
use crate::error::{Error, ErrorKind, Result};
use crate::guardrails::SecretString;
use crate::state::{Change, ChangeKind, ListQuery, Page};
use crate::store::{AuditEvent, PlanEntry, Status, Store, StoreRevision, StoreUsage, TenantId};

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

/// A change to a store ([`Provisioner::update`]). Strings, validated by the provisioner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStore {
    /// The new plan (`small`, `medium`, `large`).
    #[serde(default)]
    pub plan: Option<String>,
}

impl UpdateStore {
    /// A plan change.
    pub fn plan(plan: impl Into<String>) -> Self {
        UpdateStore {
            plan: Some(plan.into()),
        }
    }
}

/// Options of the calls that change something ([`Provisioner::create`],
/// [`delete`](Provisioner::delete), [`retry`](Provisioner::retry)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// Makes the call safe to repeat: the same key with the same request returns the
    /// first outcome (for 24 hours), the same key with another request is
    /// `idempotency_mismatch`, and while the first is still running a repeat is
    /// `idempotency_in_progress`. Keys are scoped to the caller's tenant. An HTTP
    /// adapter passes the `Idempotency-Key` header here; the operator a Store's UID.
    pub idempotency_key: Option<String>,
    /// The Kubernetes object the call is made for (`Store <namespace>/<name>`), set only by
    /// the operator: a store created with it records it as `managedBy`, and a store that
    /// has one may be deleted only by a call naming the same object (any other is
    /// `managed_externally`). Adapters serving tenants never set it.
    pub managed_by: Option<String>,
    /// A precondition (HTTP `If-Match`): the call changes the store only if its record is
    /// at this `version`; otherwise `precondition_failed` and nothing changes. Honoured by
    /// the calls that change an existing store (delete, retry, update, suspend, resume).
    pub if_version: Option<u64>,
}

impl RequestOptions {
    /// Options with an idempotency key.
    pub fn idempotency_key(key: impl Into<String>) -> Self {
        RequestOptions {
            idempotency_key: Some(key.into()),
            ..Default::default()
        }
    }

    /// These options, with the precondition that the store is at `version`.
    pub fn if_version(mut self, version: u64) -> Self {
        self.if_version = Some(version);
        self
    }

    /// These options, on behalf of the managing object `manager`.
    pub fn managed_by(mut self, manager: impl Into<String>) -> Self {
        self.managed_by = Some(manager.into());
        self
    }
}

/// The options of [`Provisioner::create`]: the same as every other changing call's.
pub type CreateOptions = RequestOptions;

/// A store's admin login. `Debug` never shows the password; serializing it (to answer
/// an authorised credentials read) does.
#[derive(Clone)]
pub struct StoreCredentials {
    /// The WordPress admin URL.
    pub admin_url: Option<String>,
    /// The admin user name.
    pub username: String,
    /// The admin password (zeroed when dropped).
    pub password: SecretString,
}

impl StoreCredentials {
    /// The password, for the caller who asked for it.
    pub fn expose_password(&self) -> &str {
        self.password.expose()
    }
}

impl Serialize for StoreCredentials {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("StoreCredentials", 3)?;
        st.serialize_field("adminUrl", &self.admin_url)?;
        st.serialize_field("username", &self.username)?;
        st.serialize_field("password", self.password.expose())?;
        st.end()
    }
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

/// A stream of the change feed, as [`Provisioner::changes`] returns it.
pub type ChangeStream = BoxStream<'static, Result<Change>>;

/// Provisions stores. Object-safe; adapters hold an `Arc<dyn Provisioner>`.
///
/// Every call is scoped by its [`Caller`]: a tenant never sees, changes or learns the
/// existence of another tenant's store (`not_found`). Calls that change something are
/// audited with the caller as actor. Provisioning itself runs in the background: `create`,
/// `delete` and `retry` return as soon as the request is recorded, and once it is
/// recorded their audit event, change and wake-up happen even if the caller's future is
/// dropped (an HTTP client that disconnects, a cancelled asyncio task).
///
/// Messages a tenant reads (`Store.message`, audit `detail`, error messages) name the
/// step, a short class of cause and what to do; never an internal URL, host, path or
/// raw tool output. The full cause goes to `tracing`, once, with the store's name.
#[async_trait]
pub trait Provisioner: Send + Sync {
    /// Accepts a new store (`Pending`) and starts provisioning it in the background.
    /// Validation happens first: on any error nothing is created anywhere.
    /// Idempotent with `opts.idempotency_key` (a repeat replays the first outcome).
    /// Errors: `invalid_name`, `invalid_spec` (unknown engine or plan, bad tenant),
    /// `forbidden` (a tenant naming another tenant), `store_exists`, `quota_exceeded`,
    /// `rate_limited`, `idempotency_mismatch`, `idempotency_in_progress`, `unavailable`.
    async fn create(
        &self,
        caller: &Caller,
        request: CreateStore,
        opts: RequestOptions,
    ) -> Result<Store>;

    /// One store. Errors: `not_found` (also for another tenant's store).
    async fn get(&self, caller: &Caller, name: &str) -> Result<Store>;

    /// Stores the caller may see, newest first, one page. A tenant's `query.tenant` is
    /// forced to its own. Errors: `invalid_spec` (bad limit or cursor).
    async fn list(&self, caller: &Caller, query: ListQuery) -> Result<Page<Store>>;

    /// Starts deleting a store: status `Deleting`, then release, namespace, volumes and
    /// record go in the background. Idempotent while the store exists (deleting a
    /// `Deleting` store returns it as is), and with `opts.idempotency_key` a repeat
    /// replays the first answer even once the store is gone.
    /// Errors: `not_found` once it is gone, idempotency errors.
    async fn delete(&self, caller: &Caller, name: &str, opts: RequestOptions) -> Result<Store>;

    /// Provisions a `Failed` store again from the step that failed (from the release
    /// when readiness failed: a new revision, so a failed setup Job runs again), keeping
    /// its credentials. Errors: `not_found`, `conflict` when it is not `Failed`,
    /// idempotency errors.
    async fn retry(&self, caller: &Caller, name: &str, opts: RequestOptions) -> Result<Store>;

    /// Changes a `Ready` store's plan: status `Updating` while its quota and limits are
    /// resized and its release upgraded with the new plan's sizes, then `Ready` again
    /// (or `Failed` with the reason; retry resumes the change). The same plan returns
    /// the store unchanged. A smaller plan is refused when the store already holds more
    /// volumes, claims or pods than it allows (read from the cluster), and then nothing
    /// changes. Idempotent with `opts.idempotency_key`.
    /// Errors: `invalid_spec` (no or unknown plan), `not_found`, `conflict` (not Ready),
    /// `plan_too_small` (the numbers in the message), `managed_externally`,
    /// idempotency errors.
    async fn update(
        &self,
        caller: &Caller,
        name: &str,
        change: UpdateStore,
        opts: RequestOptions,
    ) -> Result<Store>;

    /// Moves a store to the chart its engine bundles now (its `chart.outdated`): status
    /// `Updating` while the release is upgraded with it, then `Ready` on the new chart.
    /// If the upgrade fails, the release is rolled back to the revision it came from and
    /// the store is `Ready` on its previous chart, the failure in its message and the
    /// audit (`store.upgrade` failure). A store already on the bundled chart is returned
    /// unchanged. Idempotent with `opts.idempotency_key`.
    /// Errors: `not_found`, `conflict` (not Ready or Degraded), `managed_externally`,
    /// `precondition_failed`, idempotency errors.
    async fn upgrade(&self, caller: &Caller, name: &str, opts: RequestOptions) -> Result<Store>;

    /// Suspends a `Ready` store: status `Updating` while its release is upgraded with its
    /// workloads at zero replicas and no Ingress (volumes and credentials kept), then
    /// `Ready` with `suspended: true` once no pod of it runs. A Ready store already
    /// suspended (or one being suspended): returned unchanged. A `Failed` store that was
    /// Ready before may be suspended too (the release runs again). Suspended stores are
    /// not started again by drift repair. Idempotent with `opts.idempotency_key`.
    /// Errors: `not_found`, `conflict` (not Ready, or a resume in progress),
    /// `managed_externally`, idempotency errors.
    async fn suspend(&self, caller: &Caller, name: &str, opts: RequestOptions) -> Result<Store>;

    /// Resumes a suspended store: `Updating` while its workloads start again on the same
    /// volumes and credentials, then `Ready` with `suspended: false`. A Ready store that
    /// is not suspended (or one being resumed): returned unchanged. Errors as
    /// [`suspend`](Provisioner::suspend).
    async fn resume(&self, caller: &Caller, name: &str, opts: RequestOptions) -> Result<Store>;

    /// The store's admin login, read from its Secret; each read is audited.
    /// Errors: `not_found` (no such store, or its Secret does not exist yet).
    async fn credentials(&self, caller: &Caller, name: &str) -> Result<StoreCredentials>;

    /// What the store uses of its plan: its quota's `used` against `hard` for CPU,
    /// memory, pods, claims and storage, and its volumes, read now from the cluster
    /// (nothing is cached or stored). Errors: `not_found`, `conflict` while the store
    /// has no quota yet (before its guardrails step) or no longer (deleted),
    /// `unavailable` while the cluster has not counted its use yet.
    async fn usage(&self, caller: &Caller, name: &str) -> Result<StoreUsage>;

    /// The plans a store may be created with, and what each grants.
    fn plans(&self) -> Vec<PlanEntry>;

    /// The revisions of the store's release as helm recorded them, oldest first: each
    /// one's chart and app version, status, time and cause. Empty before its release
    /// step. Errors: `not_found`.
    async fn revisions(&self, caller: &Caller, name: &str) -> Result<Vec<StoreRevision>>;

    /// Proves a Ready store sells: storefront, Store API cart, the cheapest product added,
    /// a cash-on-delivery checkout, the order read back (it stays, marked as a test
    /// order; see [`crate::verify`]). Runs from this process against the store's URL, or
    /// the address `verifyTarget` names. Audited as `store.verify`. A failing step is
    /// reported in the result (`ok: false`), not as an error.
    /// Errors: `not_found`, `conflict` when the store is not Ready.
    async fn verify(&self, caller: &Caller, name: &str) -> Result<crate::verify::VerifyReport>;

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

    /// Accepts a WooCommerce webhook delivery for store `name`: `signature` (the
    /// `X-WC-Webhook-Signature` header) must be the base64 HMAC-SHA256 of `body` keyed
    /// by the store's webhook secret (compared in constant time). An accepted delivery
    /// becomes the audit event `woocommerce.<topic>`. Errors: `not_found` (no such
    /// store), `unauthorized` (no or wrong signature, or the store has no webhook
    /// secret; nothing is recorded), `invalid_spec` (a topic that is not
    /// `resource.event`).
    async fn receive_webhook(
        &self,
        name: &str,
        topic: &str,
        body: &[u8],
        signature: &str,
    ) -> Result<()>;

    /// The durable change feed, as the caller may see it (a tenant: its own stores):
    /// every change after `after` in sequence order, then each new change as it is
    /// written — by this process at once, by other replicas sharing the state store
    /// within about [`FEED_POLL`]. `after: None` follows from the moment of the call. Each item's
    /// `seq` is the cursor to resume after. The stream yields `cursor_expired` (and
    /// ends) when `after` is older than the retention: list again, then follow.
    /// It ends when the provisioner shuts down.
    fn changes(&self, caller: &Caller, after: Option<u64>) -> ChangeStream;

    /// Checks that the state store and the Kubernetes API answer.
    /// Errors: `unavailable` naming which does not.
    async fn check_ready(&self) -> Result<()>;

    /// Stops claiming work, lets a running helm finish (or stops it with SIGTERM and a
    /// grace period), releases the leases, stops the watches and returns when done.
    /// Unfinished stores resume on the next start. Idempotent.
    async fn shutdown(&self);

    /// Waits until the store has `status`, at most `timeout`, and returns it.
    /// Errors: `timeout`, `not_found` (it does not exist, or is gone while waiting),
    /// `store_failed` (carrying the store) when it reached `Failed` while waiting for
    /// another status.
    async fn wait(
        &self,
        caller: &Caller,
        name: &str,
        status: Status,
        timeout: Duration,
    ) -> Result<Store> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Follow before reading, so no change after the read is missed; changes the
        // read already covers (an older or equal version) are skipped.
        let mut changes = self.changes(caller, None);
        let mut current = self.get(caller, name).await?;
        loop {
            if current.status == status {
                return Ok(current);
            }
            if current.status == Status::Failed {
                return Err(Error::StoreFailed(Box::new(current)));
            }
            current = loop {
                match next_change_of(&mut changes, name, deadline).await {
                    // Quiet for a while: read again (covers a change written between
                    // the read and the start of the follow).
                    Some(Err(e)) if e.kind() == ErrorKind::Timeout => {
                        break self.get(caller, name).await?;
                    }
                    Some(Ok(change)) if change.kind == ChangeKind::Deleted => {
                        if change.store.version >= current.version {
                            return Err(Error::store_not_found(name));
                        }
                    }
                    Some(Ok(change)) if change.store.version > current.version => {
                        break change.store;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Err(waited_too_long(name, status.as_str(), timeout)),
                }
            };
        }
    }

    /// Waits until the store is gone (its record dropped after teardown), at most
    /// `timeout`. Returns at once if it does not exist. Errors: `timeout`.
    async fn wait_deleted(&self, caller: &Caller, name: &str, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.changes(caller, None);
        match self.get(caller, name).await {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        loop {
            match next_change_of(&mut changes, name, deadline).await {
                Some(Ok(change)) if change.kind == ChangeKind::Deleted => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(e)) if e.kind() == ErrorKind::Timeout => {
                    match self.get(caller, name).await {
                        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                        Err(e) => return Err(e),
                        Ok(_) => {}
                    }
                }
                Some(Err(e)) => return Err(e),
                None => return Err(waited_too_long(name, "deleted", timeout)),
            }
        }
    }
}

/// How long a wait listens to a quiet feed before it reads the store again.
const WAIT_RECHECK: Duration = Duration::from_secs(2);

/// The next change of store `name` on `changes`; `None` at the deadline; a `timeout`
/// error when nothing came for [`WAIT_RECHECK`] (time to read the store again).
async fn next_change_of(
    changes: &mut ChangeStream,
    name: &str,
    deadline: tokio::time::Instant,
) -> Option<Result<Change>> {
    let recheck = tokio::time::Instant::now() + WAIT_RECHECK;
    loop {
        match tokio::time::timeout_at(deadline.min(recheck), changes.next()).await {
            Err(_) if tokio::time::Instant::now() >= deadline => return None,
            Err(_) => {
                return Some(Err(Error::Timeout {
                    operation: "a quiet change feed".to_owned(),
                    after: WAIT_RECHECK,
                }));
            }
            Ok(None) => {
                return Some(Err(Error::Unavailable {
                    message: "the provisioner was shut down".to_owned(),
                }));
            }
            Ok(Some(Ok(change))) if change.store.name.as_str() != name => {}
            Ok(Some(item)) => return Some(item),
        }
    }
}

fn waited_too_long(name: &str, what: &str, timeout: Duration) -> Error {
    Error::Timeout {
        operation: format!("waiting for store {name} to be {what}"),
        after: timeout,
    }
}
