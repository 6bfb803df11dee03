//! `urumi.Provisioner`: the asyncio API. Each method converts its arguments, clones the
//! core handle and returns `future_into_py(..)`: an awaitable whose Rust future runs on
//! the module's tokio runtime, without the GIL.
//!
//! ```text
//!  Provisioner { Shared { slot: Mutex<Option<KubeProvisioner>>, caller } }
//!     .create(..) ──handle()──▶ Handle { p, caller }.create(..) ──future_into_py──▶ awaitable
//!     .close()    ──take()────▶ shutdown().await   (later calls: UnavailableError)
//!     garbage-collected ──Drop──▶ the handle is dropped inside the runtime ─▶ worker stops
//! ```
//!
//! Cancelling the awaitable (asyncio.wait_for, task.cancel()) drops the Rust future; the
//! core runs every write on a task of its own, so a store is never left half recorded.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::bridge::future_into_py;
use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use pyo3::types::PyType;
use urumi_core::audit::AuditQuery;
use urumi_core::state::ListQuery;
use urumi_core::store::Status;
use urumi_core::{
    Caller, CreateStore, Error, KubeProvisioner, Provisioner as _, ProvisionerSettings,
    RequestOptions,
};

use crate::errors::to_py;
use crate::stream::ChangeStream;
use crate::types::{Credentials, RawEventPage, RawJson, RawStorePage, Store};
use crate::{args, runtime};

/// The core provisioner behind one Python object, and who its calls are made as.
pub(crate) struct Shared {
    /// `None` once closed.
    slot: Mutex<Option<KubeProvisioner>>,
    caller: Caller,
}

impl Shared {
    pub(crate) fn new(p: KubeProvisioner, caller: Caller) -> Self {
        Shared {
            slot: Mutex::new(Some(p)),
            caller,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<KubeProvisioner>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A handle for one call. Errors: `unavailable` once closed.
    pub(crate) fn handle(&self) -> PyResult<Handle> {
        match self.lock().as_ref() {
            Some(p) => Ok(Handle {
                p: p.clone(),
                caller: self.caller.clone(),
            }),
            None => Err(to_py(Error::Unavailable {
                message: "the provisioner is closed".to_owned(),
            })),
        }
    }

    /// Another object on the same provisioner, calling as `caller`.
    pub(crate) fn sibling(&self, caller: Caller) -> PyResult<Shared> {
        let handle = self.handle()?;
        Ok(Shared::new(handle.p, caller))
    }

    /// Takes the handle out (closing this object); `None` when already closed.
    pub(crate) fn take(&self) -> Option<KubeProvisioner> {
        self.lock().take()
    }

    /// Who this object's calls are made as.
    pub(crate) fn caller(&self) -> &Caller {
        &self.caller
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().is_none()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Dropped inside the runtime, the last handle's drop spawns the full shutdown.
        if let Some(p) = self.take() {
            let _guard = runtime().enter();
            drop(p);
        }
    }
}

/// Closes: stops claiming work, lets a running helm finish, stops the watches.
pub(crate) async fn close(p: Option<KubeProvisioner>) -> PyResult<()> {
    if let Some(p) = p {
        p.shutdown().await;
    }
    Ok(())
}

/// What both constructors need, converted while the GIL is held.
pub(crate) struct OpenArgs {
    state: String,
    kubeconfig: Option<PathBuf>,
    settings: ProvisionerSettings,
    pub(crate) caller: Caller,
}

impl OpenArgs {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        state: String,
        kubeconfig: Option<PathBuf>,
        base_domain: Option<String>,
        plans: Option<&Bound<'_, PyAny>>,
        limits: Option<&Bound<'_, PyAny>>,
        settings: Option<&Bound<'_, PyAny>>,
        tenant: &str,
        actor: &str,
        role: &str,
    ) -> PyResult<Self> {
        Ok(OpenArgs {
            state,
            kubeconfig,
            settings: args::settings(base_domain, plans, limits, settings)?,
            caller: args::caller(tenant, actor, role)?,
        })
    }

    /// Opens the state store, the cluster client and helm, and starts the worker.
    pub(crate) async fn open(self) -> PyResult<Shared> {
        let p = KubeProvisioner::open(&self.state, self.kubeconfig.as_deref(), self.settings)
            .await
            .map_err(to_py)?;
        Ok(Shared::new(p, self.caller))
    }
}

/// One call's core handle and caller (cheap to clone; moved into the call's future).
#[derive(Clone)]
pub(crate) struct Handle {
    p: KubeProvisioner,
    caller: Caller,
}

/// The core calls, shared by the async and the sync API; errors already mapped.
impl Handle {
    pub(crate) async fn create(self, req: CreateStore, opts: RequestOptions) -> PyResult<Store> {
        self.p
            .create(&self.caller, req, opts)
            .await
            .map(Store::from)
            .map_err(to_py)
    }
    pub(crate) async fn get(self, name: String) -> PyResult<Store> {
        self.p
            .get(&self.caller, &name)
            .await
            .map(Store::from)
            .map_err(to_py)
    }
    pub(crate) async fn list(self, query: ListQuery) -> PyResult<RawStorePage> {
        self.p
            .list(&self.caller, query)
            .await
            .map(RawStorePage)
            .map_err(to_py)
    }
    pub(crate) async fn delete(self, name: String, opts: RequestOptions) -> PyResult<Store> {
        self.p
            .delete(&self.caller, &name, opts)
            .await
            .map(Store::from)
            .map_err(to_py)
    }
    pub(crate) async fn retry(self, name: String, opts: RequestOptions) -> PyResult<Store> {
        self.p
            .retry(&self.caller, &name, opts)
            .await
            .map(Store::from)
            .map_err(to_py)
    }
    pub(crate) async fn upgrade(self, name: String, opts: RequestOptions) -> PyResult<Store> {
        self.p
            .upgrade(&self.caller, &name, opts)
            .await
            .map(Store::from)
            .map_err(to_py)
    }
    pub(crate) async fn suspend(self, name: String, opts: RequestOptions) -> PyResult<Store> {
        self.p
            .suspend(&self.caller, &name, opts)
            .await
            .map(Store::from)
            .map_err(to_py)
    }
    pub(crate) async fn resume(self, name: String, opts: RequestOptions) -> PyResult<Store> {
        self.p
            .resume(&self.caller, &name, opts)
            .await
            .map(Store::from)
            .map_err(to_py)
    }
    pub(crate) async fn update(
        self,
        name: String,
        change: urumi_core::UpdateStore,
        opts: RequestOptions,
    ) -> PyResult<Store> {
        self.p
            .update(&self.caller, &name, change, opts)
            .await
            .map(Store::from)
            .map_err(to_py)
    }
    pub(crate) async fn credentials(self, name: String) -> PyResult<Credentials> {
        self.p
            .credentials(&self.caller, &name)
            .await
            .map(Credentials::from)
            .map_err(to_py)
    }
    pub(crate) async fn usage(self, name: String) -> PyResult<RawJson> {
        let usage = self.p.usage(&self.caller, &name).await.map_err(to_py)?;
        serde_json::to_value(usage)
            .map(RawJson)
            .map_err(|e| to_py(Error::internal(format!("usage: {e}"))))
    }
    pub(crate) async fn revisions(self, name: String) -> PyResult<RawJson> {
        let revisions = self.p.revisions(&self.caller, &name).await.map_err(to_py)?;
        serde_json::to_value(revisions)
            .map(RawJson)
            .map_err(|e| to_py(Error::internal(format!("revisions: {e}"))))
    }
    pub(crate) fn plans(&self) -> PyResult<RawJson> {
        serde_json::to_value(self.p.plans())
            .map(RawJson)
            .map_err(|e| to_py(Error::internal(format!("plans: {e}"))))
    }
    pub(crate) async fn verify(self, name: String) -> PyResult<RawJson> {
        let report = self.p.verify(&self.caller, &name).await.map_err(to_py)?;
        serde_json::to_value(report)
            .map(RawJson)
            .map_err(|e| to_py(Error::internal(format!("verify report: {e}"))))
    }
    pub(crate) async fn events(self, name: String, query: AuditQuery) -> PyResult<RawEventPage> {
        self.p
            .events(&self.caller, &name, query)
            .await
            .map(RawEventPage)
            .map_err(to_py)
    }
    pub(crate) async fn audit(self, query: AuditQuery) -> PyResult<RawEventPage> {
        self.p
            .audit(&self.caller, query)
            .await
            .map(RawEventPage)
            .map_err(to_py)
    }
    pub(crate) async fn wait(
        self,
        name: String,
        status: Status,
        timeout: Duration,
    ) -> PyResult<Store> {
        self.p
            .wait(&self.caller, &name, status, timeout)
            .await
            .map(Store::from)
            .map_err(to_py)
    }
    pub(crate) async fn wait_deleted(self, name: String, timeout: Duration) -> PyResult<()> {
        self.p
            .wait_deleted(&self.caller, &name, timeout)
            .await
            .map_err(to_py)
    }
    pub(crate) async fn check_ready(self) -> PyResult<()> {
        self.p.check_ready().await.map_err(to_py)
    }
    pub(crate) async fn receive_webhook(
        self,
        name: String,
        topic: String,
        body: Vec<u8>,
        signature: String,
    ) -> PyResult<()> {
        self.p
            .receive_webhook(&name, &topic, &body, &signature)
            .await
            .map_err(to_py)
    }
    /// The change feed after `after` (then live), as the caller may see it.
    pub(crate) fn changes(&self, after: Option<u64>) -> urumi_core::provisioner::ChangeStream {
        let _guard = runtime().enter();
        self.p.changes(&self.caller, after)
    }
}

/// A create request from the Python arguments.
pub(crate) fn create_request(
    name: String,
    plan: Option<String>,
    engine: Option<String>,
    tenant: Option<String>,
) -> CreateStore {
    CreateStore {
        name,
        plan,
        engine,
        tenant,
    }
}

/// A list query from the Python arguments. Errors: `invalid_spec`.
pub(crate) fn list_query(
    status: Option<&str>,
    tenant: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
) -> PyResult<ListQuery> {
    Ok(ListQuery {
        tenant: args::tenant(tenant)?,
        status: status.map(args::status).transpose()?,
        limit,
        cursor,
    })
}

/// An audit query from the Python arguments.
pub(crate) fn audit_query(
    action: Option<String>,
    tenant: Option<String>,
    store: Option<String>,
    since: Option<DateTime<Utc>>,
    limit: Option<u32>,
    cursor: Option<String>,
) -> AuditQuery {
    AuditQuery {
        store,
        tenant,
        action,
        since,
        until: None,
        limit,
        cursor,
    }
}

fn options(idempotency_key: Option<String>) -> RequestOptions {
    RequestOptions {
        idempotency_key,
        ..Default::default()
    }
}

/// The options of a call on an existing store: the key, and `if_version` (the store
/// must be at that version, else `PreconditionFailedError`).
pub(crate) fn options_at(
    idempotency_key: Option<String>,
    if_version: Option<u64>,
) -> RequestOptions {
    RequestOptions {
        idempotency_key,
        if_version,
        ..Default::default()
    }
}

/// Provisions isolated WooCommerce stores on Kubernetes (asyncio API).
///
/// `Provisioner(state, ...)` opens the state store (`sqlite://PATH`, `postgres://...`,
/// `memory:`), a client of the cluster (`kubeconfig`, else `$KUBECONFIG`, else
/// in-cluster) and `helm` from PATH, and starts the background worker, blocking until
/// that is done (a moment); `await Provisioner.open(...)` does the same without
/// blocking the event loop. Settings are the server's (`settings=` takes every key of
/// its configuration, camelCase or snake_case); `base_domain`, `plans` and `limits`
/// may be given on their own.
///
/// Calls are made as one caller: by default an admin (`role="admin"`) of tenant
/// `"default"` named `"python"` in audit events: the embedding program is trusted.
/// `with_caller(tenant, ...)` gives a handle scoped to one tenant.
///
/// `await p.close()` (or `async with`) stops the worker; so does garbage collection of
/// the last object on it. Unfinished stores resume on the next open.
#[pyclass(frozen, module = "urumi")]
pub struct Provisioner {
    shared: Shared,
}

#[pymethods]
impl Provisioner {
    #[new]
    #[pyo3(signature = (state, *, kubeconfig=None, base_domain=None, plans=None, limits=None, settings=None, tenant="default", actor="python", role="admin"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        state: String,
        kubeconfig: Option<PathBuf>,
        base_domain: Option<String>,
        plans: Option<&Bound<'_, PyAny>>,
        limits: Option<&Bound<'_, PyAny>>,
        settings: Option<&Bound<'_, PyAny>>,
        tenant: &str,
        actor: &str,
        role: &str,
    ) -> PyResult<Self> {
        let args = OpenArgs::new(
            state,
            kubeconfig,
            base_domain,
            plans,
            limits,
            settings,
            tenant,
            actor,
            role,
        )?;
        let shared = crate::block_on(py, args.open())?;
        Ok(Provisioner { shared })
    }

    /// Opens a provisioner without blocking the event loop; the same arguments as the
    /// constructor.
    #[classmethod]
    #[pyo3(signature = (state, *, kubeconfig=None, base_domain=None, plans=None, limits=None, settings=None, tenant="default", actor="python", role="admin"))]
    #[allow(clippy::too_many_arguments)]
    fn open<'py>(
        _cls: &Bound<'py, PyType>,
        py: Python<'py>,
        state: String,
        kubeconfig: Option<PathBuf>,
        base_domain: Option<String>,
        plans: Option<&Bound<'py, PyAny>>,
        limits: Option<&Bound<'py, PyAny>>,
        settings: Option<&Bound<'py, PyAny>>,
        tenant: &str,
        actor: &str,
        role: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = OpenArgs::new(
            state,
            kubeconfig,
            base_domain,
            plans,
            limits,
            settings,
            tenant,
            actor,
            role,
        )?;
        future_into_py(py, async move {
            let shared = args.open().await?;
            Ok(Provisioner { shared })
        })
    }

    /// A handle on the same provisioner whose calls are made as `tenant`'s caller
    /// (`role="tenant"`: only its own stores are visible; another tenant's are
    /// `NotFoundError`). Closing either closes the worker for both.
    #[pyo3(signature = (tenant, *, actor=None, role="tenant"))]
    fn with_caller(&self, tenant: &str, actor: Option<&str>, role: &str) -> PyResult<Self> {
        let caller = args::caller(tenant, actor.unwrap_or(&self.shared.caller.actor), role)?;
        Ok(Provisioner {
            shared: self.shared.sibling(caller)?,
        })
    }

    /// Accepts a new store (`Pending`) and provisions it in the background.
    #[pyo3(signature = (name, plan=None, engine=None, *, tenant=None, idempotency_key=None))]
    fn create<'py>(
        &self,
        py: Python<'py>,
        name: String,
        plan: Option<String>,
        engine: Option<String>,
        tenant: Option<String>,
        idempotency_key: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        let req = create_request(name, plan, engine, tenant);
        future_into_py(py, h.create(req, options(idempotency_key)))
    }

    /// One store.
    fn get<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        future_into_py(py, h.get(name))
    }

    /// One page of the stores the caller may see, newest first.
    #[pyo3(signature = (*, status=None, tenant=None, limit=None, cursor=None))]
    fn list<'py>(
        &self,
        py: Python<'py>,
        status: Option<&str>,
        tenant: Option<String>,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        let query = list_query(status, tenant, limit, cursor)?;
        future_into_py(py, h.list(query))
    }

    /// Starts deleting a store (status `Deleting`).
    #[pyo3(signature = (name, *, idempotency_key=None, if_version=None))]
    fn delete<'py>(
        &self,
        py: Python<'py>,
        name: String,
        idempotency_key: Option<String>,
        if_version: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        future_into_py(py, h.delete(name, options_at(idempotency_key, if_version)))
    }

    /// Provisions a `Failed` store again from the step that failed.
    #[pyo3(signature = (name, *, idempotency_key=None, if_version=None))]
    fn retry<'py>(
        &self,
        py: Python<'py>,
        name: String,
        idempotency_key: Option<String>,
        if_version: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        future_into_py(py, h.retry(name, options_at(idempotency_key, if_version)))
    }

    /// Moves an outdated store to the bundled chart (`Updating`, then `Ready` on it; a
    /// failed upgrade is rolled back and the store is Ready on its previous chart). Not
    /// outdated: unchanged.
    #[pyo3(signature = (name, *, idempotency_key=None, if_version=None))]
    fn upgrade<'py>(
        &self,
        py: Python<'py>,
        name: String,
        idempotency_key: Option<String>,
        if_version: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        future_into_py(py, h.upgrade(name, options_at(idempotency_key, if_version)))
    }

    /// Stops a Ready store (`Updating`, then `Ready` with `suspended` true): no pod runs,
    /// no Ingress; volumes and credentials kept. Already suspended: unchanged.
    #[pyo3(signature = (name, *, idempotency_key=None, if_version=None))]
    fn suspend<'py>(
        &self,
        py: Python<'py>,
        name: String,
        idempotency_key: Option<String>,
        if_version: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        future_into_py(py, h.suspend(name, options_at(idempotency_key, if_version)))
    }

    /// Starts a suspended store again on the same volumes and credentials (`Updating`,
    /// then `Ready` with `suspended` false). Not suspended: unchanged.
    #[pyo3(signature = (name, *, idempotency_key=None, if_version=None))]
    fn resume<'py>(
        &self,
        py: Python<'py>,
        name: String,
        idempotency_key: Option<String>,
        if_version: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        future_into_py(py, h.resume(name, options_at(idempotency_key, if_version)))
    }

    /// Changes a Ready store's plan (status `Updating`, then `Ready`); refused with
    /// `PlanTooSmallError` when the store holds more than the new plan allows.
    #[pyo3(signature = (name, *, plan, idempotency_key=None, if_version=None))]
    fn update<'py>(
        &self,
        py: Python<'py>,
        name: String,
        plan: String,
        idempotency_key: Option<String>,
        if_version: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        let change = urumi_core::UpdateStore::plan(plan);
        future_into_py(
            py,
            h.update(name, change, options_at(idempotency_key, if_version)),
        )
    }

    /// The store's admin login (audited).
    fn credentials<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        future_into_py(py, h.credentials(name))
    }

    /// What the store uses of its plan (quota used/hard, volumes), read from the
    /// cluster now; as the HTTP API's JSON.
    fn usage<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        future_into_py(py, h.usage(name))
    }

    /// The revisions of the store's release, oldest first (helm's history); as the HTTP
    /// API's JSON items.
    fn revisions<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        future_into_py(py, h.revisions(name))
    }

    /// Every plan and what it grants, smallest first (no I/O: not awaited).
    fn plans(&self) -> PyResult<RawJson> {
        self.shared.handle()?.plans()
    }

    /// Proves a Ready store sells; the report as the HTTP API's JSON.
    fn verify<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        future_into_py(py, h.verify(name))
    }

    /// One page of the store's audit trail, newest first.
    #[pyo3(signature = (name, *, limit=None, cursor=None))]
    fn events<'py>(
        &self,
        py: Python<'py>,
        name: String,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        let query = audit_query(None, None, None, None, limit, cursor);
        future_into_py(py, h.events(name, query))
    }

    /// One page of every audit event the caller may see, newest first.
    #[pyo3(signature = (*, action=None, tenant=None, store=None, since=None, limit=None, cursor=None))]
    #[allow(clippy::too_many_arguments)]
    fn audit<'py>(
        &self,
        py: Python<'py>,
        action: Option<String>,
        tenant: Option<String>,
        store: Option<String>,
        since: Option<DateTime<Utc>>,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        let query = audit_query(action, tenant, store, since, limit, cursor);
        future_into_py(py, h.audit(query))
    }

    /// Waits until the store has `status` (at most `timeout` seconds) and returns it.
    #[pyo3(signature = (name, status="Ready", timeout=300.0))]
    fn wait<'py>(
        &self,
        py: Python<'py>,
        name: String,
        status: &str,
        timeout: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        let status = args::status(status)?;
        let timeout = args::seconds(timeout)?;
        future_into_py(py, h.wait(name, status, timeout))
    }

    /// Waits until the store is gone (at most `timeout` seconds).
    #[pyo3(signature = (name, timeout=300.0))]
    fn wait_deleted<'py>(
        &self,
        py: Python<'py>,
        name: String,
        timeout: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        let timeout = args::seconds(timeout)?;
        future_into_py(py, h.wait_deleted(name, timeout))
    }

    /// Checks that the state store and the Kubernetes API answer.
    fn check_ready<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        future_into_py(py, h.check_ready())
    }

    /// Accepts a WooCommerce webhook delivery for store `name` (HMAC-SHA256 checked).
    fn receive_webhook<'py>(
        &self,
        py: Python<'py>,
        name: String,
        topic: String,
        body: Vec<u8>,
        signature: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle()?;
        future_into_py(py, h.receive_webhook(name, topic, body, signature))
    }

    /// The durable change feed: every change after `after`, then each new one.
    #[pyo3(signature = (after=None))]
    fn changes(&self, after: Option<u64>) -> PyResult<ChangeStream> {
        let h = self.shared.handle()?;
        Ok(ChangeStream::new(h.changes(after)))
    }

    /// Stops the background worker and releases the provisioner. Idempotent.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        future_into_py(py, close(self.shared.take()))
    }

    /// Whether `close()` was called on this object.
    #[getter]
    fn closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// The caller's tenant.
    #[getter]
    fn tenant(&self) -> &str {
        self.shared.caller.tenant.as_str()
    }

    fn __aenter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let me = slf.unbind();
        future_into_py(py, async move { Ok(me) })
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc: &Bound<'py, pyo3::types::PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        future_into_py(py, close(self.shared.take()))
    }

    fn __repr__(&self) -> String {
        format!(
            "Provisioner(tenant={:?}, role={:?}, closed={})",
            self.shared.caller.tenant.as_str(),
            match self.shared.caller.role {
                urumi_core::Role::Admin => "admin",
                urumi_core::Role::Tenant => "tenant",
            },
            self.shared.is_closed()
        )
    }
}
