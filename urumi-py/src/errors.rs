//! The one mapping from [`urumi_core::Error`] to Python exceptions.
//!
//! ```text
//!  Error ──kind()──▶ ErrorKind ──CLASSES──▶ urumi.<Name>Error(message)
//!                                              .code         = kind.as_str()
//!                                              .store        = the Store (store_failed)
//!                                              .retry_after  = seconds (rate_limited)
//! ```
//!
//! Every class derives from `urumi.UrumiError` (itself an `Exception`); `TimeoutError`
//! also derives from the builtin `TimeoutError`. The classes are made once, when the
//! module is imported, from the table below; `ERROR_CODES` lists every code the core
//! has and `ERROR_CLASSES` maps each code to its class, so a test can prove the table
//! covers the core.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use urumi_core::{Error, ErrorKind};

use crate::types::Store;

/// The class of each kind: its name, its docstring and an extra builtin base, if any.
const CLASSES: &[(ErrorKind, &str, &str, Option<&str>)] = &[
    (
        ErrorKind::InvalidName,
        "InvalidNameError",
        "A store name broke a naming rule (a DNS label of 3-40 characters, not reserved).",
        None,
    ),
    (
        ErrorKind::InvalidSpec,
        "InvalidSpecError",
        "An argument other than the name is invalid (plan, engine, tenant, status, limit, cursor).",
        None,
    ),
    (
        ErrorKind::StoreExists,
        "StoreExistsError",
        "A store with this name already exists (names are unique across tenants).",
        None,
    ),
    (
        ErrorKind::NotFound,
        "NotFoundError",
        "No such store, or not one the caller may see.",
        None,
    ),
    (
        ErrorKind::QuotaExceeded,
        "QuotaExceededError",
        "A store cap (per tenant or for the platform) was reached.",
        None,
    ),
    (
        ErrorKind::RateLimited,
        "RateLimitedError",
        "Too many creations in the rate window; `retry_after` says how many seconds to wait.",
        None,
    ),
    (
        ErrorKind::Conflict,
        "ConflictError",
        "The call conflicts with the store's current state (e.g. retry of a store that is not Failed).",
        None,
    ),
    (
        ErrorKind::IdempotencyMismatch,
        "IdempotencyMismatchError",
        "The idempotency key was already used with a different request.",
        None,
    ),
    (
        ErrorKind::IdempotencyInProgress,
        "IdempotencyInProgressError",
        "A request with the same idempotency key is still being processed; retry shortly.",
        None,
    ),
    (
        ErrorKind::Unauthorized,
        "UnauthorizedError",
        "Not authenticated (e.g. a webhook delivery without a valid signature).",
        None,
    ),
    (
        ErrorKind::Forbidden,
        "ForbiddenError",
        "The caller may not do this (e.g. a tenant naming another tenant).",
        None,
    ),
    (
        ErrorKind::Timeout,
        "TimeoutError",
        "An operation (e.g. wait) did not finish in time. Also a builtin TimeoutError.",
        Some("TimeoutError"),
    ),
    (
        ErrorKind::InvalidConfig,
        "InvalidConfigError",
        "The provisioner's configuration is invalid (settings, kubeconfig, helm missing).",
        None,
    ),
    (
        ErrorKind::Unavailable,
        "UnavailableError",
        "A service Urumi depends on is unavailable, or the provisioner is closed; retry later.",
        None,
    ),
    (
        ErrorKind::Unsupported,
        "UnsupportedError",
        "Not supported by this configuration (e.g. an unknown state URL scheme).",
        None,
    ),
    (
        ErrorKind::Internal,
        "InternalError",
        "A permanent failure that needs a human; details are in the logs.",
        None,
    ),
    (
        ErrorKind::StoreFailed,
        "StoreFailedError",
        "The store waited for reached Failed; `store` is the store, its `message` says why.",
        None,
    ),
    (
        ErrorKind::CursorExpired,
        "CursorExpiredError",
        "A change-feed cursor is older than the retention: list again, then follow.",
        None,
    ),
    (
        ErrorKind::ManagedExternally,
        "ManagedExternallyError",
        "A Store object in Kubernetes manages this store: change or delete that object.",
        None,
    ),
    (
        ErrorKind::PlanTooSmall,
        "PlanTooSmallError",
        "The store uses more than the plan asked for allows (the message has the numbers); nothing changed.",
        None,
    ),
    (
        ErrorKind::PreconditionFailed,
        "PreconditionFailedError",
        "The store is not at the version given as if_version (someone changed it); read it again.",
        None,
    ),
];

/// The base class and one class per kind.
struct Classes {
    base: Py<PyType>,
    by_kind: Vec<(ErrorKind, Py<PyType>)>,
}

static TABLE: PyOnceLock<Classes> = PyOnceLock::new();

fn make_class<'py>(
    py: Python<'py>,
    name: &str,
    doc: &str,
    bases: Bound<'py, PyTuple>,
    code: &str,
) -> PyResult<Bound<'py, PyType>> {
    let dict = PyDict::new(py);
    dict.set_item("__module__", "urumi")?;
    dict.set_item("__doc__", doc)?;
    dict.set_item("code", code)?;
    let class = py
        .get_type::<PyType>()
        .call1((name, bases, dict))?
        .cast_into::<PyType>()?;
    Ok(class)
}

fn build(py: Python<'_>) -> PyResult<Classes> {
    let base = make_class(
        py,
        "UrumiError",
        "Base of every Urumi error. `code` is the stable machine string of the HTTP API \
         (`not_found`, `store_exists`, ...); match on the class or the code, never the message.",
        PyTuple::new(py, [py.get_type::<PyException>()])?,
        ErrorKind::Internal.as_str(),
    )?;
    base.setattr("store", py.None())?;
    base.setattr("retry_after", py.None())?;
    let builtins = py.import("builtins")?;
    let mut by_kind = Vec::with_capacity(CLASSES.len());
    for (kind, name, doc, extra) in CLASSES {
        let mut bases = vec![base.clone().into_any()];
        if let Some(extra) = extra {
            bases.push(builtins.getattr(*extra)?);
        }
        let class = make_class(py, name, doc, PyTuple::new(py, bases)?, kind.as_str())?;
        by_kind.push((*kind, class.unbind()));
    }
    Ok(Classes {
        base: base.unbind(),
        by_kind,
    })
}

fn table(py: Python<'_>) -> PyResult<&Classes> {
    TABLE.get_or_try_init(py, || build(py))
}

/// Adds `UrumiError`, every subclass, `ERROR_CODES` and `ERROR_CLASSES` to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let classes = table(py)?;
    m.add("UrumiError", classes.base.bind(py))?;
    let by_code = PyDict::new(py);
    for (kind, class) in &classes.by_kind {
        let class = class.bind(py);
        m.add(class.name()?, class)?;
        by_code.set_item(kind.as_str(), class)?;
    }
    let codes: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
    m.add("ERROR_CODES", PyTuple::new(py, codes)?)?;
    m.add("ERROR_CLASSES", by_code)?;
    Ok(())
}

/// The Python exception for a core error: its kind's class with the core's message
/// (written to be safe to show: never a secret), `.code`, and `.store` / `.retry_after`
/// where the error carries them. A kind without a class (one added to the core later)
/// becomes a plain `UrumiError` with its code.
pub(crate) fn to_py(err: Error) -> PyErr {
    Python::attach(|py| build_err(py, &err).unwrap_or_else(|e| e))
}

fn build_err(py: Python<'_>, err: &Error) -> PyResult<PyErr> {
    let classes = table(py)?;
    let kind = err.kind();
    let class = classes
        .by_kind
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&classes.base, |(_, c)| c)
        .bind(py);
    let value = class.call1((err.to_string(),))?;
    value.setattr("code", kind.as_str())?;
    if let Error::StoreFailed(store) = err {
        value.setattr("store", Store::from((**store).clone()))?;
    }
    if let Some(after) = err.retry_after() {
        value.setattr("retry_after", after.as_secs_f64())?;
    }
    Ok(PyErr::from_value(value))
}
