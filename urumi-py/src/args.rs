//! Argument conversion: Python values to the core's request types. No rule is decided
//! here; every value is checked by the core, which raises the same errors as over HTTP.
//!
//! ```text
//!  settings= dict ─┐
//!  plans= / limits= / base_domain= ─┴─▶ JSON object ──serde──▶ ProvisionerSettings (camelCase, snake_case aliases)
//!  tenant= / actor= / role=  ──▶ Caller        status="Ready" ──▶ Status
//!  timeout=300.0 (seconds)   ──▶ Duration
//! ```

use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Value};
use urumi_core::store::{Status, TenantId};
use urumi_core::{Caller, Error, ProvisionerSettings};

use crate::errors::to_py;

/// Converts plain Python data (dict with str keys, list, tuple, str, int, float, bool,
/// None) to JSON; anything else is a `TypeError` naming where it was found.
pub(crate) fn py_to_json(value: &Bound<'_, PyAny>, at: &str) -> PyResult<Value> {
    if value.is_none() {
        Ok(Value::Null)
    } else if let Ok(b) = value.cast::<PyBool>() {
        Ok(Value::Bool(b.is_true()))
    } else if value.is_instance_of::<PyInt>() {
        if let Ok(i) = value.extract::<i64>() {
            Ok(Value::from(i))
        } else {
            Ok(Value::from(value.extract::<u64>()?))
        }
    } else if let Ok(f) = value.cast::<PyFloat>() {
        serde_json::Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| PyValueError::new_err(format!("{at}: not a finite number")))
    } else if let Ok(s) = value.cast::<PyString>() {
        Ok(Value::String(s.to_cow()?.into_owned()))
    } else if let Ok(d) = value.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in d.iter() {
            let key = k
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err(format!("{at}: keys must be str")))?
                .to_cow()?
                .into_owned();
            let inner = py_to_json(&v, &format!("{at}.{key}"))?;
            map.insert(key, inner);
        }
        Ok(Value::Object(map))
    } else if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in value.try_iter()?.enumerate() {
            items.push(py_to_json(&item?, &format!("{at}[{i}]"))?);
        }
        Ok(Value::Array(items))
    } else {
        Err(PyTypeError::new_err(format!(
            "{at}: expected dict, list, str, int, float, bool or None, got {}",
            value.get_type().name()?
        )))
    }
}

/// The settings: `settings` (a dict of `ProvisionerSettings` keys), with `base_domain`,
/// `plans` and `limits` given on their own taking precedence. Errors: `invalid_config`
/// naming an unknown key or a bad value.
pub(crate) fn settings(
    base_domain: Option<String>,
    plans: Option<&Bound<'_, PyAny>>,
    limits: Option<&Bound<'_, PyAny>>,
    settings: Option<&Bound<'_, PyAny>>,
) -> PyResult<ProvisionerSettings> {
    let mut map = match settings {
        None => Map::new(),
        Some(s) => match py_to_json(s, "settings")? {
            Value::Object(map) => map,
            _ => return Err(PyTypeError::new_err("settings must be a dict")),
        },
    };
    if let Some(domain) = base_domain {
        map.remove("base_domain");
        map.insert("baseDomain".to_owned(), Value::String(domain));
    }
    if let Some(plans) = plans {
        map.insert("plans".to_owned(), py_to_json(plans, "plans")?);
    }
    if let Some(limits) = limits {
        map.insert("limits".to_owned(), py_to_json(limits, "limits")?);
    }
    serde_json::from_value(Value::Object(map)).map_err(|e| {
        to_py(Error::InvalidConfig {
            message: format!("settings: {e}"),
        })
    })
}

/// The caller every call of a provisioner is made as. `role` is `admin` (sees every
/// tenant) or `tenant` (only `tenant`'s stores). Errors: `invalid_spec`.
pub(crate) fn caller(tenant: &str, actor: &str, role: &str) -> PyResult<Caller> {
    let tenant = TenantId::new(tenant).map_err(to_py)?;
    match role {
        "admin" => Ok(Caller::admin(actor, tenant)),
        "tenant" => Ok(Caller::tenant(actor, tenant)),
        other => Err(to_py(Error::InvalidSpec {
            field: "role",
            message: format!(
                "{:?} is not a role: use \"admin\" or \"tenant\"",
                other.chars().take(32).collect::<String>()
            ),
        })),
    }
}

/// A status name (`Ready`, ...). Errors: `invalid_spec`.
pub(crate) fn status(status: &str) -> PyResult<Status> {
    status.parse().map_err(to_py)
}

/// An optional tenant filter. Errors: `invalid_spec`.
pub(crate) fn tenant(tenant: Option<String>) -> PyResult<Option<TenantId>> {
    tenant.map(TenantId::new).transpose().map_err(to_py)
}

/// Seconds as a duration: `ValueError` when negative or not finite.
pub(crate) fn seconds(secs: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| PyValueError::new_err("timeout must be a finite number of seconds >= 0"))
}
