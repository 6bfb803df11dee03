//! `urumi.SyncProvisioner`: the same calls as `urumi.Provisioner`, blocking, for
//! scripts. Each runs the core call on the module's runtime with `block_on` and the GIL
//! released; Ctrl-C interrupts a wait (the core finishes any write it had begun).
//!
//! ```text
//!  SyncProvisioner.create(..) ──args──▶ Handle.create(..) ──block_on (detached)──▶ Store
//! ```

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use urumi_core::RequestOptions;

use crate::args;
use crate::block_on;
use crate::provisioner::{
    OpenArgs, Shared, audit_query, close, create_request, list_query, options_at,
};
use crate::stream::SyncChangeStream;
use crate::types::{Credentials, RawEventPage, RawJson, RawStorePage, Store};

fn options(idempotency_key: Option<String>) -> RequestOptions {
    RequestOptions {
        idempotency_key,
        ..Default::default()
    }
}

/// Provisions isolated WooCommerce stores on Kubernetes (blocking API, for scripts).
///
/// The same constructor, methods, caller and lifetime as `urumi.Provisioner`, each
/// method returning its result instead of an awaitable; use it as a context manager
/// (`with urumi.SyncProvisioner(...) as p:`) or call `close()`. Do not call it from a
/// running event loop: it would block the loop.
#[pyclass(frozen, module = "urumi")]
pub struct SyncProvisioner {
    shared: Shared,
}

#[pymethods]
impl SyncProvisioner {
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
        let shared = block_on(py, args.open())?;
        Ok(SyncProvisioner { shared })
    }

    /// A handle on the same provisioner whose calls are made as `tenant`'s caller.
    #[pyo3(signature = (tenant, *, actor=None, role="tenant"))]
    fn with_caller(&self, tenant: &str, actor: Option<&str>, role: &str) -> PyResult<Self> {
        let caller = args::caller(tenant, actor.unwrap_or(&self.shared_actor()), role)?;
        Ok(SyncProvisioner {
            shared: self.shared.sibling(caller)?,
        })
    }

    /// Accepts a new store (`Pending`) and provisions it in the background.
    #[pyo3(signature = (name, plan=None, engine=None, *, tenant=None, idempotency_key=None))]
    fn create(
        &self,
        py: Python<'_>,
        name: String,
        plan: Option<String>,
        engine: Option<String>,
        tenant: Option<String>,
        idempotency_key: Option<String>,
    ) -> PyResult<Store> {
        let h = self.shared.handle()?;
        let req = create_request(name, plan, engine, tenant);
        block_on(py, h.create(req, options(idempotency_key)))
    }

    /// One store.
    fn get(&self, py: Python<'_>, name: String) -> PyResult<Store> {
        let h = self.shared.handle()?;
        block_on(py, h.get(name))
    }

    /// One page of the stores the caller may see, newest first.
    #[pyo3(signature = (*, status=None, tenant=None, limit=None, cursor=None))]
    fn list(
        &self,
        py: Python<'_>,
        status: Option<&str>,
        tenant: Option<String>,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<RawStorePage> {
        let h = self.shared.handle()?;
        let query = list_query(status, tenant, limit, cursor)?;
        block_on(py, h.list(query))
    }

    /// Starts deleting a store (status `Deleting`).
    #[pyo3(signature = (name, *, idempotency_key=None, if_version=None))]
    fn delete(
        &self,
        py: Python<'_>,
        name: String,
        idempotency_key: Option<String>,
        if_version: Option<u64>,
    ) -> PyResult<Store> {
        let h = self.shared.handle()?;
        block_on(py, h.delete(name, options_at(idempotency_key, if_version)))
    }

    /// Provisions a `Failed` store again from the step that failed.
    #[pyo3(signature = (name, *, idempotency_key=None, if_version=None))]
    fn retry(
        &self,
        py: Python<'_>,
        name: String,
        idempotency_key: Option<String>,
        if_version: Option<u64>,
    ) -> PyResult<Store> {
        let h = self.shared.handle()?;
        block_on(py, h.retry(name, options_at(idempotency_key, if_version)))
    }

    /// Moves an outdated store to the bundled chart (`Updating`, then `Ready` on it; a
    /// failed upgrade is rolled back and the store is Ready on its previous chart). Not
    /// outdated: unchanged.
    #[pyo3(signature = (name, *, idempotency_key=None, if_version=None))]
    fn upgrade(
        &self,
        py: Python<'_>,
        name: String,
        idempotency_key: Option<String>,
        if_version: Option<u64>,
    ) -> PyResult<Store> {
        let h = self.shared.handle()?;
        block_on(py, h.upgrade(name, options_at(idempotency_key, if_version)))
    }

    /// Stops a Ready store (`Updating`, then `Ready` with `suspended` true): no pod runs,
    /// no Ingress; volumes and credentials kept. Already suspended: unchanged.
    #[pyo3(signature = (name, *, idempotency_key=None, if_version=None))]
    fn suspend(
        &self,
        py: Python<'_>,
        name: String,
        idempotency_key: Option<String>,
        if_version: Option<u64>,
    ) -> PyResult<Store> {
        let h = self.shared.handle()?;
        block_on(py, h.suspend(name, options_at(idempotency_key, if_version)))
    }

    /// Starts a suspended store again on the same volumes and credentials (`Updating`,
    /// then `Ready` with `suspended` false). Not suspended: unchanged.
    #[pyo3(signature = (name, *, idempotency_key=None, if_version=None))]
    fn resume(
        &self,
        py: Python<'_>,
        name: String,
        idempotency_key: Option<String>,
        if_version: Option<u64>,
    ) -> PyResult<Store> {
        let h = self.shared.handle()?;
        block_on(py, h.resume(name, options_at(idempotency_key, if_version)))
    }

    /// Changes a Ready store's plan (status `Updating`, then `Ready`); refused with
    /// `PlanTooSmallError` when the store holds more than the new plan allows.
    #[pyo3(signature = (name, *, plan, idempotency_key=None, if_version=None))]
    fn update(
        &self,
        py: Python<'_>,
        name: String,
        plan: String,
        idempotency_key: Option<String>,
        if_version: Option<u64>,
    ) -> PyResult<Store> {
        let h = self.shared.handle()?;
        let change = urumi_core::UpdateStore::plan(plan);
        block_on(
            py,
            h.update(name, change, options_at(idempotency_key, if_version)),
        )
    }

    /// The store's admin login (audited).
    fn credentials(&self, py: Python<'_>, name: String) -> PyResult<Credentials> {
        let h = self.shared.handle()?;
        block_on(py, h.credentials(name))
    }

    /// What the store uses of its plan (quota used/hard, volumes), read from the
    /// cluster now; as the HTTP API's JSON.
    fn usage(&self, py: Python<'_>, name: String) -> PyResult<RawJson> {
        let h = self.shared.handle()?;
        block_on(py, h.usage(name))
    }

    /// The revisions of the store's release, oldest first (helm's history); as the HTTP
    /// API's JSON items.
    fn revisions(&self, py: Python<'_>, name: String) -> PyResult<RawJson> {
        let h = self.shared.handle()?;
        block_on(py, h.revisions(name))
    }

    /// Every plan and what it grants, smallest first.
    fn plans(&self) -> PyResult<RawJson> {
        self.shared.handle()?.plans()
    }

    /// Proves a Ready store sells; the report as the HTTP API's JSON.
    fn verify(&self, py: Python<'_>, name: String) -> PyResult<RawJson> {
        let h = self.shared.handle()?;
        block_on(py, h.verify(name))
    }

    /// One page of the store's audit trail, newest first.
    #[pyo3(signature = (name, *, limit=None, cursor=None))]
    fn events(
        &self,
        py: Python<'_>,
        name: String,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<RawEventPage> {
        let h = self.shared.handle()?;
        block_on(
            py,
            h.events(name, audit_query(None, None, None, None, limit, cursor)),
        )
    }

    /// One page of every audit event the caller may see, newest first.
    #[pyo3(signature = (*, action=None, tenant=None, store=None, since=None, limit=None, cursor=None))]
    #[allow(clippy::too_many_arguments)]
    fn audit(
        &self,
        py: Python<'_>,
        action: Option<String>,
        tenant: Option<String>,
        store: Option<String>,
        since: Option<DateTime<Utc>>,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<RawEventPage> {
        let h = self.shared.handle()?;
        let query = audit_query(action, tenant, store, since, limit, cursor);
        block_on(py, h.audit(query))
    }

    /// Waits until the store has `status` (at most `timeout` seconds) and returns it.
    #[pyo3(signature = (name, status="Ready", timeout=300.0))]
    fn wait(&self, py: Python<'_>, name: String, status: &str, timeout: f64) -> PyResult<Store> {
        let h = self.shared.handle()?;
        let status = args::status(status)?;
        let timeout = args::seconds(timeout)?;
        block_on(py, h.wait(name, status, timeout))
    }

    /// Waits until the store is gone (at most `timeout` seconds).
    #[pyo3(signature = (name, timeout=300.0))]
    fn wait_deleted(&self, py: Python<'_>, name: String, timeout: f64) -> PyResult<()> {
        let h = self.shared.handle()?;
        let timeout = args::seconds(timeout)?;
        block_on(py, h.wait_deleted(name, timeout))
    }

    /// Checks that the state store and the Kubernetes API answer.
    fn check_ready(&self, py: Python<'_>) -> PyResult<()> {
        let h = self.shared.handle()?;
        block_on(py, h.check_ready())
    }

    /// Accepts a WooCommerce webhook delivery for store `name` (HMAC-SHA256 checked).
    fn receive_webhook(
        &self,
        py: Python<'_>,
        name: String,
        topic: String,
        body: Vec<u8>,
        signature: String,
    ) -> PyResult<()> {
        let h = self.shared.handle()?;
        block_on(py, h.receive_webhook(name, topic, body, signature))
    }

    /// The durable change feed: every change after `after`, then each new one (blocking).
    #[pyo3(signature = (after=None))]
    fn changes(&self, after: Option<u64>) -> PyResult<SyncChangeStream> {
        let h = self.shared.handle()?;
        Ok(SyncChangeStream::new(h.changes(after)))
    }

    /// Stops the background worker and releases the provisioner. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        block_on(py, close(self.shared.take()))
    }

    /// Whether `close()` was called on this object.
    #[getter]
    fn closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// The caller's tenant.
    #[getter]
    fn tenant(&self) -> String {
        self.shared.caller().tenant.as_str().to_owned()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<()> {
        block_on(py, close(self.shared.take()))
    }

    fn __repr__(&self) -> String {
        format!(
            "SyncProvisioner(tenant={:?}, closed={})",
            self.shared.caller().tenant.as_str(),
            self.shared.is_closed()
        )
    }
}

impl SyncProvisioner {
    fn shared_actor(&self) -> String {
        self.shared.caller().actor.clone()
    }
}
