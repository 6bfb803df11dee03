//! The `Provisioner` class: a [`KubeProvisioner`] and the [`Caller`] it acts as.
//!
//! ```text
//!  Provisioner.open(OpenOptions) ──settings JSON──▶ ProvisionerSettings (serde, camelCase)
//!        └─▶ KubeProvisioner::open(state, kubeconfig, settings)   (starts the worker)
//!  p.create / get / list / update / suspend / resume / delete / retry / credentials / usage / plans / verify / events / wait / waitDeleted
//!        └─▶ the same core call with the handle's Caller; the answer ──serde_json──▶ JS object
//!  p.close() ──▶ shutdown, awaited │ GC ──▶ Drop: the core handle goes, the worker stops
//! ```

use std::sync::Mutex;
use std::time::Duration;

use napi_derive::napi;
use serde_json::{Map, Value};
use urumi_core::audit::AuditQuery;
use urumi_core::state::ListQuery;
use urumi_core::store::{Status, TenantId};
use urumi_core::{
    Caller, CreateStore, Error, KubeProvisioner, Provisioner as _, ProvisionerSettings,
    RequestOptions,
};

use crate::changes::ChangeStream;
use crate::error::{IntoJs, invalid, to_js, to_json};

/// How `Provisioner.open` is told where to keep state and how to provision.
#[napi(object)]
pub struct OpenOptions {
    /// Where store records live: `sqlite://PATH`, `postgres://…` (several processes may
    /// share it) or `memory:`.
    pub state: String,
    /// The kubeconfig file of the cluster to provision into; `$KUBECONFIG`, then
    /// in-cluster, when absent.
    pub kubeconfig: Option<String>,
    /// Stores answer at `<name>.<baseDomain>` (default `127.0.0.1.nip.io`).
    pub base_domain: Option<String>,
    /// Plan sizes, as in the server's settings (`{ small: {...}, ... }`).
    pub plans: Option<Value>,
    /// Creation limits: `{ storesPerTenant?, creationsPerHour?, storesTotal?, rateWindowSecs? }`.
    pub limits: Option<Value>,
    /// Any other provisioner setting, camelCase as in the server's TOML
    /// (`{ orchestrator: { leaseTtl: 3 }, namespacePrefix: 'store-' }`); an unknown key is
    /// an `invalid_config` error naming it. `baseDomain`, `plans` and `limits` above win.
    pub settings: Option<Value>,
    /// Scope this handle to one tenant: it sees and creates only that tenant's stores.
    /// Without it the handle acts as an admin of every tenant, and its new stores belong
    /// to the tenant `default`.
    pub tenant: Option<String>,
    /// The name audit events record as the actor (default `node`); never a secret.
    pub actor: Option<String>,
}

/// A store to create.
#[napi(object)]
pub struct CreateRequest {
    /// The store's name: a DNS label of 3–40 characters, unique across the platform.
    pub name: String,
    /// The plan (`small`, the default, `medium`, `large`).
    pub plan: Option<String>,
    /// The engine (`woocommerce`, the default).
    pub engine: Option<String>,
    /// The owning tenant; only an admin handle may name another tenant than its own.
    pub tenant: Option<String>,
}

/// Options of the calls that change something.
#[napi(object)]
pub struct RequestOpts {
    /// Makes the call safe to repeat (an order id, a job id): the same key with the same
    /// request returns the first outcome for 24 hours; with another request it is
    /// `idempotency_mismatch`; while the first still runs, `idempotency_in_progress`.
    pub idempotency_key: Option<String>,
    /// Changes the store only if its record is at this `version` (what `get` returned),
    /// else rejects with `precondition_failed` and changes nothing. For calls on an
    /// existing store (delete, retry, update, suspend, resume).
    pub if_version: Option<i64>,
}

/// The change of `update`.
#[napi(object)]
pub struct UpdateRequest {
    /// The new plan (`small`, `medium`, `large`).
    pub plan: Option<String>,
}

/// A filter and page of `list`.
#[napi(object)]
pub struct ListOptions {
    /// Only stores with this status (`Pending`, `Provisioning`, `Ready`, `Updating`,
    /// `Degraded`, `Failed`, `Deleting`).
    pub status: Option<String>,
    /// Only this tenant's stores (a tenant handle always sees only its own).
    pub tenant: Option<String>,
    /// Page size, 1–1000 (default 50).
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of `events`.
#[napi(object)]
pub struct PageOptions {
    /// Page size, 1–1000 (default 50).
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// What `wait` waits for.
#[napi(object)]
pub struct WaitOptions {
    /// The status to wait for (default `Ready`).
    pub status: Option<String>,
    /// How long to wait at most, in milliseconds (default 300000).
    pub timeout_ms: Option<u32>,
}

/// How long `waitDeleted` waits.
#[napi(object)]
pub struct WaitDeletedOptions {
    /// How long to wait at most, in milliseconds (default 300000).
    pub timeout_ms: Option<u32>,
}

/// The default of `timeoutMs`.
const DEFAULT_TIMEOUT_MS: u32 = 300_000;

/// Provisions isolated WooCommerce stores on Kubernetes. Open one with
/// `Provisioner.open({ state })`; its background worker provisions and deletes stores
/// until `close()` (or until it is garbage-collected). Every method returns a Promise of
/// a plain object shaped like the HTTP API's JSON, or rejects with an `Error` whose
/// message starts with `[code]` (the `@urumi/node` wrapper turns it into `UrumiError`).
#[napi(js_name = "NativeProvisioner")]
pub struct Provisioner {
    /// The core handle; `None` once closed.
    inner: Mutex<Option<KubeProvisioner>>,
    /// Who this handle acts as.
    caller: Caller,
    /// The runtime the provisioner runs on, entered when the handle is dropped from
    /// JavaScript's thread (the core begins its shutdown there).
    runtime: tokio::runtime::Handle,
}

impl Drop for Provisioner {
    fn drop(&mut self) {
        let handle = self.inner.get_mut().ok().and_then(Option::take);
        if let Some(p) = handle {
            let _entered = self.runtime.enter();
            drop(p);
        }
    }
}

/// The settings `options` ask for: `settings`, then `baseDomain`, `plans` and `limits`
/// over it, read by urumi-core's own (camelCase) deserializer.
fn settings_of(options: &OpenOptions) -> urumi_core::Result<ProvisionerSettings> {
    let mut map = match &options.settings {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => {
            return Err(Error::InvalidConfig {
                message: "settings must be an object".to_owned(),
            });
        }
    };
    if let Some(domain) = &options.base_domain {
        map.insert("baseDomain".to_owned(), Value::String(domain.clone()));
    }
    for (key, value) in [("plans", &options.plans), ("limits", &options.limits)] {
        if let Some(value) = value {
            map.insert(key.to_owned(), value.clone());
        }
    }
    serde_json::from_value(Value::Object(map)).map_err(|e| Error::InvalidConfig {
        message: format!("settings: {e}"),
    })
}

/// The caller `options` ask for: a tenant, or an admin whose stores go to `default`.
fn caller_of(options: &OpenOptions) -> urumi_core::Result<Caller> {
    let actor = options.actor.clone().unwrap_or_else(|| "node".to_owned());
    Ok(match &options.tenant {
        Some(tenant) => Caller::tenant(actor, TenantId::new(tenant.clone())?),
        None => Caller::admin(actor, TenantId::new("default")?),
    })
}

fn request_options(opts: Option<RequestOpts>) -> napi::Result<RequestOptions> {
    let Some(opts) = opts else {
        return Ok(RequestOptions::default());
    };
    let if_version = opts
        .if_version
        .map(|v| {
            u64::try_from(v).map_err(|_| crate::error::invalid("ifVersion", "must be 0 or more"))
        })
        .transpose()?;
    Ok(RequestOptions {
        idempotency_key: opts.idempotency_key,
        if_version,
        ..Default::default()
    })
}

fn timeout(ms: Option<u32>) -> Duration {
    Duration::from_millis(u64::from(ms.unwrap_or(DEFAULT_TIMEOUT_MS)))
}

#[napi]
impl Provisioner {
    /// Opens the state store, connects to the cluster and starts the background worker.
    /// Rejects with `invalid_config` (bad settings, unreadable kubeconfig, `helm` not on
    /// PATH), `unsupported` (unknown state URL scheme) or `unavailable` (the state store
    /// does not answer); nothing is started then.
    #[napi(factory)]
    pub async fn open(options: OpenOptions) -> napi::Result<Provisioner> {
        let settings = settings_of(&options).js()?;
        let caller = caller_of(&options).js()?;
        let kubeconfig = options.kubeconfig.as_deref().map(std::path::Path::new);
        let inner = KubeProvisioner::open(&options.state, kubeconfig, settings)
            .await
            .js()?;
        Ok(Provisioner {
            inner: Mutex::new(Some(inner)),
            caller,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// The core handle, or `unavailable` once closed.
    fn handle(&self) -> napi::Result<KubeProvisioner> {
        let guard = self
            .inner
            .lock()
            .map_err(|_| to_js(Error::internal("the provisioner's lock is poisoned")))?;
        guard.clone().ok_or_else(|| {
            to_js(Error::Unavailable {
                message: "the provisioner is closed".to_owned(),
            })
        })
    }

    /// Accepts a new store (status `Pending`); provisioning runs in the background.
    /// Rejects with `invalid_name`, `invalid_spec`, `forbidden`, `store_exists`,
    /// `quota_exceeded`, `rate_limited`, `idempotency_mismatch`,
    /// `idempotency_in_progress`, `unavailable`. Once accepted, the store is provisioned
    /// even if nobody awaits the Promise.
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn create(
        &self,
        request: CreateRequest,
        opts: Option<RequestOpts>,
    ) -> napi::Result<Value> {
        let p = self.handle()?;
        let request = CreateStore {
            name: request.name,
            engine: request.engine,
            plan: request.plan,
            tenant: request.tenant,
        };
        let store = p
            .create(&self.caller, request, request_options(opts)?)
            .await
            .js()?;
        to_json(&store)
    }

    /// One store. Rejects with `not_found` (also for another tenant's store).
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn get(&self, name: String) -> napi::Result<Value> {
        let p = self.handle()?;
        to_json(&p.get(&self.caller, &name).await.js()?)
    }

    /// One page of the stores this handle may see, newest first:
    /// `{ items, nextCursor }`. Rejects with `invalid_spec` (bad status, limit, cursor).
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn list(&self, query: Option<ListOptions>) -> napi::Result<Value> {
        let p = self.handle()?;
        let query = query.unwrap_or(ListOptions {
            status: None,
            tenant: None,
            limit: None,
            cursor: None,
        });
        let status = match query.status {
            Some(s) => Some(s.parse::<Status>().js()?),
            None => None,
        };
        let tenant = match query.tenant {
            Some(t) => Some(TenantId::new(t).js()?),
            None => None,
        };
        let query = ListQuery {
            tenant,
            status,
            limit: query.limit,
            cursor: query.cursor,
        };
        to_json(&p.list(&self.caller, query).await.js()?)
    }

    /// Starts deleting a store (status `Deleting`); teardown runs in the background.
    /// Idempotent while the store exists. Rejects with `not_found` once it is gone (or,
    /// with an idempotency key, replays the first answer).
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn delete(&self, name: String, opts: Option<RequestOpts>) -> napi::Result<Value> {
        let p = self.handle()?;
        let store = p
            .delete(&self.caller, &name, request_options(opts)?)
            .await
            .js()?;
        to_json(&store)
    }

    /// Changes a Ready store's plan: status `Updating`, then `Ready`. Rejects with
    /// `invalid_spec` (no or unknown plan), `not_found`, `conflict` (not Ready),
    /// `plan_too_small` (the store holds more than the plan allows; nothing changed),
    /// idempotency errors.
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn update(
        &self,
        name: String,
        change: UpdateRequest,
        opts: Option<RequestOpts>,
    ) -> napi::Result<Value> {
        let p = self.handle()?;
        let change = urumi_core::UpdateStore { plan: change.plan };
        let store = p
            .update(&self.caller, &name, change, request_options(opts)?)
            .await
            .js()?;
        to_json(&store)
    }

    /// Provisions a `Failed` store again from the step that failed.
    /// Rejects with `not_found`, `conflict` (it is not `Failed`), idempotency errors.
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn retry(&self, name: String, opts: Option<RequestOpts>) -> napi::Result<Value> {
        let p = self.handle()?;
        let store = p
            .retry(&self.caller, &name, request_options(opts)?)
            .await
            .js()?;
        to_json(&store)
    }

    /// Moves an outdated store (`chart.outdated`) to the bundled chart: `Updating`, then
    /// `Ready` on it; a failed upgrade is rolled back and the store is Ready on its previous
    /// chart. Not outdated: unchanged. Rejects with `not_found`, `conflict` (not Ready),
    /// `managed_externally`, `precondition_failed`.
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn upgrade(&self, name: String, opts: Option<RequestOpts>) -> napi::Result<Value> {
        let p = self.handle()?;
        let store = p
            .upgrade(&self.caller, &name, request_options(opts)?)
            .await
            .js()?;
        to_json(&store)
    }

    /// Stops a Ready store: `Updating`, then `Ready` with `suspended: true` (no pod, no
    /// Ingress; volumes and credentials kept). Already suspended: unchanged.
    /// Rejects with `not_found`, `conflict` (not Ready), `managed_externally`.
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn suspend(&self, name: String, opts: Option<RequestOpts>) -> napi::Result<Value> {
        let p = self.handle()?;
        let store = p
            .suspend(&self.caller, &name, request_options(opts)?)
            .await
            .js()?;
        to_json(&store)
    }

    /// Starts a suspended store again on the same volumes and credentials: `Updating`,
    /// then `Ready` with `suspended: false`. Not suspended: unchanged. Rejects as `suspend`.
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn resume(&self, name: String, opts: Option<RequestOpts>) -> napi::Result<Value> {
        let p = self.handle()?;
        let store = p
            .resume(&self.caller, &name, request_options(opts)?)
            .await
            .js()?;
        to_json(&store)
    }

    /// The store's admin login `{ adminUrl, username, password }`, read from its Secret;
    /// each read is audited. Rejects with `not_found`.
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn credentials(&self, name: String) -> napi::Result<Value> {
        let p = self.handle()?;
        to_json(&p.credentials(&self.caller, &name).await.js()?)
    }

    /// What the store uses of its plan, read from the cluster now: `{ name, plan,
    /// resources: [{ resource, unit, used, hard }], volumes, observedAt }`. Rejects with
    /// `not_found`, `conflict` (no quota yet or any more), `unavailable` (not counted yet).
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn usage(&self, name: String) -> napi::Result<Value> {
        let p = self.handle()?;
        to_json(&p.usage(&self.caller, &name).await.js()?)
    }

    /// The revisions of the store's release, oldest first (helm's history): `[{ revision,
    /// chartVersion, appVersion, status, updatedAt, description }]`. Rejects with
    /// `not_found`.
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn revisions(&self, name: String) -> napi::Result<Value> {
        let p = self.handle()?;
        to_json(&p.revisions(&self.caller, &name).await.js()?)
    }

    /// Every plan and what it grants, smallest first: `[{ name, cpuRequest, … }]`.
    #[napi(ts_return_type = "unknown")]
    pub fn plans(&self) -> napi::Result<Value> {
        to_json(&self.handle()?.plans())
    }

    /// Proves a Ready store sells (storefront, cart, cash-on-delivery checkout):
    /// `{ ok, steps, orderId? }`. Rejects with `not_found`, `conflict` (not Ready).
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn verify(&self, name: String) -> napi::Result<Value> {
        let p = self.handle()?;
        to_json(&p.verify(&self.caller, &name).await.js()?)
    }

    /// The store's audit trail, newest first: `{ items, nextCursor }`.
    /// Rejects with `not_found`, `invalid_spec`.
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn events(&self, name: String, page: Option<PageOptions>) -> napi::Result<Value> {
        let p = self.handle()?;
        let page = page.unwrap_or(PageOptions {
            limit: None,
            cursor: None,
        });
        let query = AuditQuery {
            limit: page.limit,
            cursor: page.cursor,
            ..Default::default()
        };
        to_json(&p.events(&self.caller, &name, query).await.js()?)
    }

    /// Waits until the store has the status (default `Ready`), and returns it. Rejects
    /// with `timeout`, `not_found` (gone while waiting), `store_failed` (it reached
    /// `Failed` instead). Abandoning the Promise stops nothing but the wait.
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn wait(&self, name: String, opts: Option<WaitOptions>) -> napi::Result<Value> {
        let p = self.handle()?;
        let (status, timeout_ms) = opts.map_or((None, None), |o| (o.status, o.timeout_ms));
        let status = match status {
            Some(s) => s.parse::<Status>().js()?,
            None => Status::Ready,
        };
        let store = p
            .wait(&self.caller, &name, status, timeout(timeout_ms))
            .await
            .js()?;
        to_json(&store)
    }

    /// Waits until the store is gone (resolves at once if it does not exist).
    /// Rejects with `timeout`.
    #[napi]
    pub async fn wait_deleted(
        &self,
        name: String,
        opts: Option<WaitDeletedOptions>,
    ) -> napi::Result<()> {
        let p = self.handle()?;
        let timeout_ms = opts.and_then(|o| o.timeout_ms);
        p.wait_deleted(&self.caller, &name, timeout(timeout_ms))
            .await
            .js()
    }

    /// The durable change feed: every change after `after` (a change's `seq`), then
    /// each new one as it is written, by this process or another sharing the state.
    /// `after` absent: from now on. Its `next()` rejects with `cursor_expired` when
    /// `after` is older than the retention.
    #[napi]
    pub fn changes(&self, after: Option<i64>) -> napi::Result<ChangeStream> {
        let p = self.handle()?;
        let after = match after {
            None => None,
            Some(n) => Some(
                u64::try_from(n)
                    .map_err(|_| invalid("after", "must be a sequence number (0 or more)"))?,
            ),
        };
        let _entered = self.runtime.enter();
        Ok(ChangeStream::new(p.changes(&self.caller, after)))
    }

    /// Stops the background worker: no new work is claimed, a running step reaches a
    /// safe point, leases are released. Unfinished stores resume at the next open.
    /// Idempotent; every other method rejects with `unavailable` afterwards.
    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        let handle = self
            .inner
            .lock()
            .map_err(|_| to_js(Error::internal("the provisioner's lock is poisoned")))?
            .take();
        if let Some(p) = handle {
            p.shutdown().await;
        }
        Ok(())
    }
}
