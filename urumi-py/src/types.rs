//! The values the bindings return: [`Store`], [`Urls`], [`Credentials`], [`Change`],
//! [`AuditEvent`] and the pages of `list` / `events` / `audit`.
//!
//! ```text
//!  urumi_core::store::Store ──▶ urumi.Store   (attributes; to_dict() = the HTTP JSON, camelCase)
//!  StoreCredentials         ──▶ urumi.Credentials (repr hides the password)
//!  state::Change            ──▶ urumi.Change  (seq = the cursor to resume after)
//!  serde_json::Value        ──json_to_py──▶ dict / list / str / int / float / bool / None
//! ```
//!
//! Each wraps the core value, immutable (`frozen`); `to_dict()` serializes it with the
//! core's own serde, so it is exactly what the HTTP API answers.

use chrono::{DateTime, Utc};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde::Serialize;
use urumi_core::provisioner::StoreCredentials;
use urumi_core::state::Page;

/// Converts a JSON value to the Python value `json.loads` would give.
pub(crate) fn json_to_py<'py>(
    py: Python<'py>,
    value: &serde_json::Value,
) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// `value` serialized by the core's serde, as Python data.
pub(crate) fn to_dict<'py, T: Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_value(value)
        .map_err(|e| PyValueError::new_err(format!("cannot serialize: {e}")))?;
    json_to_py(py, &json)
}

/// A store: what it is, where it stands and where it answers.
///
/// Attributes mirror the HTTP API's Store JSON in snake_case; `to_dict()` returns
/// exactly that JSON (camelCase keys, RFC 3339 timestamps). Stores hold no secret.
#[pyclass(frozen, eq, module = "urumi")]
#[derive(Clone, PartialEq)]
pub struct Store {
    pub(crate) inner: urumi_core::store::Store,
}

impl From<urumi_core::store::Store> for Store {
    fn from(inner: urumi_core::store::Store) -> Self {
        Store { inner }
    }
}

#[pymethods]
impl Store {
    /// The store's unique name (a DNS label).
    #[getter]
    fn name(&self) -> &str {
        self.inner.name.as_str()
    }
    /// The owning tenant.
    #[getter]
    fn tenant(&self) -> &str {
        self.inner.tenant.as_str()
    }
    /// What it runs (`woocommerce`).
    #[getter]
    fn engine(&self) -> &str {
        self.inner.engine.as_str()
    }
    /// Its plan (`small`, `medium`, `large`).
    #[getter]
    fn plan(&self) -> &str {
        self.inner.plan.as_str()
    }
    /// `Pending`, `Provisioning`, `Ready`, `Updating`, `Degraded`, `Failed` or `Deleting`.
    #[getter]
    fn status(&self) -> &str {
        self.inner.status.as_str()
    }
    /// The step in progress, or the one that failed.
    #[getter]
    fn step(&self) -> &str {
        self.inner.step.as_str()
    }
    /// The last progress note or failure reason, for the store's owner.
    #[getter]
    fn message(&self) -> &str {
        &self.inner.message
    }
    /// Its Kubernetes namespace.
    #[getter]
    fn namespace(&self) -> &str {
        &self.inner.namespace
    }
    /// Where it answers (each URL is `None` until known).
    #[getter]
    fn urls(&self) -> Urls {
        Urls {
            storefront: self.inner.urls.storefront.clone(),
            admin: self.inner.urls.admin.clone(),
        }
    }
    /// When it was accepted (UTC).
    #[getter]
    fn created_at(&self) -> DateTime<Utc> {
        self.inner.created_at
    }
    /// When the record last changed (UTC).
    #[getter]
    fn updated_at(&self) -> DateTime<Utc> {
        self.inner.updated_at
    }
    /// When it first became Ready (UTC), if it has.
    #[getter]
    fn ready_at(&self) -> Option<DateTime<Utc>> {
        self.inner.ready_at
    }
    /// Seconds from acceptance to Ready, once Ready.
    #[getter]
    fn provisioning_seconds(&self) -> Option<f64> {
        self.inner.provisioning_seconds
    }
    /// Provisioning attempts made (1 on the first run).
    #[getter]
    fn attempts(&self) -> u32 {
        self.inner.attempts
    }
    /// Increases with every change of the record.
    #[getter]
    fn version(&self) -> u64 {
        self.inner.version
    }
    /// The Kubernetes object managing the store (``Store <namespace>/<name>``, operator
    /// mode), or ``None``.
    #[getter]
    fn managed_by(&self) -> Option<String> {
        self.inner.managed_by.clone()
    }
    /// Suspended: no pod runs and no Ingress exists; volumes and credentials are kept.
    #[getter]
    fn suspended(&self) -> bool {
        self.inner.suspended
    }
    /// The chart it runs, ``{"version", "appVersion", "outdated"}``, or ``None`` before
    /// its release step.
    #[getter]
    fn chart<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.inner.chart)
    }
    /// The HTTP API's Store JSON as a dict (camelCase keys).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "Store(name={:?}, tenant={:?}, plan={:?}, status={:?}, step={:?}, version={})",
            self.inner.name.as_str(),
            self.inner.tenant.as_str(),
            self.inner.plan.as_str(),
            self.inner.status.as_str(),
            self.inner.step.as_str(),
            self.inner.version
        )
    }
}

/// Where a store answers: its storefront and its admin URL, each `None` until known.
#[pyclass(frozen, eq, module = "urumi")]
#[derive(Clone, PartialEq)]
pub struct Urls {
    /// The shop's public URL.
    #[pyo3(get)]
    storefront: Option<String>,
    /// The WordPress admin URL.
    #[pyo3(get)]
    admin: Option<String>,
}

#[pymethods]
impl Urls {
    fn __repr__(&self) -> String {
        format!(
            "Urls(storefront={:?}, admin={:?})",
            self.storefront, self.admin
        )
    }
}

/// A store's admin login. Reading it is audited (`store.credentials.read`).
///
/// The password is only in `password` and `to_dict()`; `repr()` and `str()` hide it.
#[pyclass(frozen, module = "urumi")]
pub struct Credentials {
    inner: StoreCredentials,
}

impl From<StoreCredentials> for Credentials {
    fn from(inner: StoreCredentials) -> Self {
        Credentials { inner }
    }
}

#[pymethods]
impl Credentials {
    /// The WordPress admin URL, if known.
    #[getter]
    fn admin_url(&self) -> Option<&str> {
        self.inner.admin_url.as_deref()
    }
    /// The admin user name.
    #[getter]
    fn username(&self) -> &str {
        &self.inner.username
    }
    /// The admin password, for the caller who asked for it. Never log it.
    #[getter]
    fn password(&self) -> &str {
        self.inner.expose_password()
    }
    /// The HTTP API's credentials JSON (`adminUrl`, `username`, `password`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "Credentials(username={:?}, admin_url={:?}, password=<hidden>)",
            self.inner.username, self.inner.admin_url
        )
    }
}

/// One entry of the durable change feed. `seq` is the cursor: pass it as
/// `changes(after=seq)` to resume after this change, none twice.
#[pyclass(frozen, module = "urumi")]
pub struct Change {
    inner: urumi_core::Change,
}

impl From<urumi_core::Change> for Change {
    fn from(inner: urumi_core::Change) -> Self {
        Change { inner }
    }
}

#[pymethods]
impl Change {
    /// The feed's sequence number (strictly increasing; the resume cursor).
    #[getter]
    fn seq(&self) -> u64 {
        self.inner.seq
    }
    /// When the change was written (UTC).
    #[getter]
    fn at(&self) -> DateTime<Utc> {
        self.inner.at
    }
    /// `created`, `updated` or `deleted`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind.as_str()
    }
    /// The store after the change (for `deleted`, its last record).
    #[getter]
    fn store(&self) -> Store {
        Store::from(self.inner.store.clone())
    }
    /// `{"seq","at","kind","store"}` as the feed serializes it.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "Change(seq={}, kind={:?}, store={:?}, status={:?})",
            self.inner.seq,
            self.inner.kind.as_str(),
            self.inner.store.name.as_str(),
            self.inner.store.status.as_str()
        )
    }
}

/// One audited action: who did what to which store, when, and how it ended.
/// Audit events never contain passwords or API keys.
#[pyclass(frozen, module = "urumi")]
pub struct AuditEvent {
    inner: urumi_core::store::AuditEvent,
}

#[pymethods]
impl AuditEvent {
    /// A time-ordered unique id (UUID v7).
    #[getter]
    fn id(&self) -> String {
        self.inner.id.to_string()
    }
    /// When it happened (UTC).
    #[getter]
    fn at(&self) -> DateTime<Utc> {
        self.inner.at
    }
    /// Who did it (the caller's actor, `system` for the worker).
    #[getter]
    fn actor(&self) -> &str {
        &self.inner.actor
    }
    /// The tenant concerned, if any.
    #[getter]
    fn tenant(&self) -> Option<&str> {
        self.inner.tenant.as_deref()
    }
    /// What was done: `store.create`, `provision.release`, ...
    #[getter]
    fn action(&self) -> &str {
        &self.inner.action
    }
    /// The store concerned, if any.
    #[getter]
    fn store(&self) -> Option<&str> {
        self.inner.store.as_deref()
    }
    /// `success`, `failure` or `denied`.
    #[getter]
    fn outcome(&self) -> &'static str {
        self.inner.outcome.as_str()
    }
    /// A short human explanation (never a secret); may be empty.
    #[getter]
    fn detail(&self) -> &str {
        &self.inner.detail
    }
    /// The client's address, when the action came over the network.
    #[getter]
    fn source_ip(&self) -> Option<String> {
        self.inner.source_ip.map(|ip| ip.to_string())
    }
    /// The HTTP API's AuditEvent JSON (camelCase keys).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "AuditEvent(action={:?}, store={:?}, outcome={:?}, actor={:?})",
            self.inner.action,
            self.inner.store,
            self.inner.outcome.as_str(),
            self.inner.actor
        )
    }
}

/// One page of `list()`: `items`, newest first, and `next_cursor` (`None` on the last
/// page; pass it as `cursor=` for the next). Iterating a page iterates its items.
#[pyclass(frozen, module = "urumi")]
pub struct StorePage {
    /// The stores of this page.
    #[pyo3(get)]
    items: Py<PyList>,
    /// The cursor of the next page, or `None`.
    #[pyo3(get)]
    next_cursor: Option<String>,
}

/// One page of `events()` / `audit()`: `items`, newest first, and `next_cursor`.
#[pyclass(frozen, module = "urumi")]
pub struct EventPage {
    /// The events of this page.
    #[pyo3(get)]
    items: Py<PyList>,
    /// The cursor of the next page, or `None`.
    #[pyo3(get)]
    next_cursor: Option<String>,
}

/// A core page, converted once the GIL is held (pages cross from tokio as Rust values).
pub(crate) struct RawStorePage(pub(crate) Page<urumi_core::store::Store>);
/// A core page of audit events, as [`RawStorePage`].
pub(crate) struct RawEventPage(pub(crate) Page<urumi_core::store::AuditEvent>);

impl<'py> IntoPyObject<'py> for RawStorePage {
    type Target = StorePage;
    type Output = Bound<'py, StorePage>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        let items = PyList::empty(py);
        for store in self.0.items {
            items.append(Store::from(store))?;
        }
        Bound::new(
            py,
            StorePage {
                items: items.unbind(),
                next_cursor: self.0.next_cursor,
            },
        )
    }
}

impl<'py> IntoPyObject<'py> for RawEventPage {
    type Target = EventPage;
    type Output = Bound<'py, EventPage>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        let items = PyList::empty(py);
        for inner in self.0.items {
            items.append(AuditEvent { inner })?;
        }
        Bound::new(
            py,
            EventPage {
                items: items.unbind(),
                next_cursor: self.0.next_cursor,
            },
        )
    }
}

macro_rules! page_methods {
    ($page:ident) => {
        #[pymethods]
        impl $page {
            fn __len__(&self, py: Python<'_>) -> usize {
                self.items.bind(py).len()
            }
            fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                Ok(self.items.bind(py).as_any().try_iter()?.into_any())
            }
            fn __repr__(&self, py: Python<'_>) -> String {
                format!(
                    concat!(stringify!($page), "(items=<{} items>, next_cursor={:?})"),
                    self.items.bind(py).len(),
                    self.next_cursor
                )
            }
        }
    };
}
page_methods!(StorePage);
page_methods!(EventPage);

/// A `verify` report converted to a dict once the GIL is held.
pub(crate) struct RawJson(pub(crate) serde_json::Value);

impl<'py> IntoPyObject<'py> for RawJson {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        json_to_py(py, &self.0)
    }
}
