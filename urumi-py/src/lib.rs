//! # urumi-py
//!
//! The Python bindings of [`urumi_core`]: the `urumi._native` extension module that the
//! `urumi` wheel (built by maturin) re-exports as `urumi`.
//!
//! ```text
//!  Python (asyncio)                       Rust (one multi-thread tokio runtime)
//!  urumi.Provisioner.create(..) ──args──▶ CreateStore / RequestOptions / Caller
//!        ◀── awaitable (future_into_py) ── KubeProvisioner::create(..)  (GIL released)
//!  urumi.SyncProvisioner.create(..) ───▶ the same call, block_on with the GIL released
//!  async for c in p.changes(after) ────▶ ChangeStream (Arc<Mutex<stream>>, locked on tokio)
//!  urumi_core::Error ──errors::to_py──▶ urumi.<Kind>Error (.code, .store, .retry_after)
//! ```
//!
//! Nothing here decides anything: arguments are converted, the core is called, its
//! results and errors are converted back, and the provisioner's lifetime follows its
//! Python object (closing it, or its garbage collection, stops the background worker).
//! At interpreter exit an `atexit` hook lets the futures still handing results to asyncio
//! finish first.
#![forbid(unsafe_code)]

mod args;
mod bridge;
mod errors;
mod provisioner;
mod stream;
mod sync;
mod types;

use std::future::Future;
use std::time::Duration;

use pyo3::prelude::*;

/// How often a blocking call wakes to let Python handle signals (Ctrl-C).
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// The module's one tokio runtime (multi-thread), shared by the async and the sync API.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Runs `fut` to completion on the module's runtime with the GIL released, waking every
/// [`SIGNAL_CHECK`] to run Python's signal handlers: a `KeyboardInterrupt` drops the
/// future (the core finishes any write it had begun, with its audit event).
pub(crate) fn block_on<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = PyResult<T>> + Send,
    T: Send,
{
    let rt = runtime();
    let mut fut = Box::pin(fut);
    loop {
        // The timer is made inside `block_on`: it needs the runtime's context.
        let step =
            py.detach(|| rt.block_on(async { tokio::time::timeout(SIGNAL_CHECK, &mut fut).await }));
        match step {
            Ok(result) => return result,
            Err(_) => py.check_signals()?,
        }
    }
}

/// The `urumi._native` module.
#[pymodule]
#[pyo3(name = "_native")]
fn urumi_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add_class::<provisioner::Provisioner>()?;
    m.add_class::<sync::SyncProvisioner>()?;
    m.add_class::<types::Store>()?;
    m.add_class::<types::Urls>()?;
    m.add_class::<types::Credentials>()?;
    m.add_class::<types::Change>()?;
    m.add_class::<types::AuditEvent>()?;
    m.add_class::<types::StorePage>()?;
    m.add_class::<types::EventPage>()?;
    m.add_class::<stream::ChangeStream>()?;
    m.add_class::<stream::SyncChangeStream>()?;
    let drain = wrap_pyfunction!(bridge::drain_before_exit, m)?;
    m.py()
        .import("atexit")?
        .call_method1("register", (drain,))?;
    Ok(())
}
