//! Rust futures as asyncio awaitables, with every hand-over counted so the interpreter
//! never finalizes under one.
//!
//! ```text
//!  future_into_py(py, fut) ── loop.create_future() ─▶ awaitable (returned to Python)
//!        │                     done-callback: cancelled? ─▶ cancel (the Rust future is dropped)
//!        ▼ IN_FLIGHT += 1
//!  tokio: fut.await (or cancelled) ─▶ blocking thread: attach the GIL,
//!        loop.call_soon_threadsafe(Completor, awaitable, set_result|set_exception, value),
//!        detach ─▶ IN_FLIGHT -= 1
//!  atexit: drain_before_exit() waits (GIL released) for IN_FLIGHT == 0, at most 2 s
//! ```
//!
//! `pyo3_async_runtimes::tokio::future_into_py` does the same hand-over on a blocking
//! thread it does not report: `call_soon_threadsafe` releases the GIL while it wakes the
//! loop, the main thread may then finish and finalize the interpreter, and the blocking
//! thread, taking the GIL back, aborts the process ("PyGILState_Release: thread state …
//! must be current when releasing") or crashes. Counting the hand-over to its very end is
//! what this module adds.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::IntoPyObjectExt as _;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};

use crate::runtime;

/// Awaitables whose result has not been fully handed to asyncio yet.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

struct InFlight;

impl InFlight {
    fn start() -> InFlight {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs on the loop's thread: completes the awaitable unless it was cancelled meanwhile.
#[pyclass]
struct Completor;

#[pymethods]
impl Completor {
    fn __call__(
        &self,
        awaitable: &Bound<'_, PyAny>,
        complete: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        if awaitable.call_method0("cancelled")?.is_truthy()? {
            return Ok(());
        }
        complete.call1((value,))?;
        Ok(())
    }
}

/// `fut` as an asyncio awaitable on the running loop: its output becomes the awaitable's
/// result (or exception); cancelling the awaitable drops `fut`.
pub(crate) fn future_into_py<F, T>(py: Python<'_>, fut: F) -> PyResult<Bound<'_, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    let locals = pyo3_async_runtimes::tokio::get_current_locals(py)?;
    let event_loop = locals.event_loop(py);
    let awaitable = event_loop.call_method0("create_future")?;

    let (cancel_tx, cancel_rx) = tokio::sync::oneshot::channel::<()>();
    let cancel_tx = Mutex::new(Some(cancel_tx));
    let on_done = PyCFunction::new_closure(
        py,
        None,
        None,
        move |args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
            if args.get_item(0)?.call_method0("cancelled")?.is_truthy()?
                && let Some(tx) = cancel_tx.lock().ok().and_then(|mut tx| tx.take())
            {
                let _ = tx.send(());
            }
            Ok(())
        },
    )?;
    awaitable.call_method1("add_done_callback", (on_done,))?;

    let in_flight = InFlight::start();
    let target: Py<PyAny> = awaitable.clone().unbind();
    let event_loop: Py<PyAny> = event_loop.unbind();
    let context: Py<PyAny> = locals.context(py).unbind();
    runtime().spawn(pyo3_async_runtimes::tokio::scope(locals, async move {
        let outcome = tokio::select! {
            output = fut => Some(output),
            _ = cancel_rx => None,
        };
        let handed_over = tokio::task::spawn_blocking(move || {
            Python::attach(move |py| {
                hand_over(py, &event_loop, &context, &target, outcome);
                // Dropped while attached: no decref is left for a later, finalizing moment.
                drop((event_loop, context, target));
            });
            drop(in_flight);
        });
        let _ = handed_over.await;
    }));
    Ok(awaitable)
}

fn hand_over<T>(
    py: Python<'_>,
    event_loop: &Py<PyAny>,
    context: &Py<PyAny>,
    target: &Py<PyAny>,
    outcome: Option<PyResult<T>>,
) where
    T: for<'py> IntoPyObject<'py>,
{
    let Some(output) = outcome else { return };
    let target = target.bind(py);
    let sent = (|| -> PyResult<()> {
        if target.call_method0("cancelled")?.is_truthy()? {
            return Ok(());
        }
        let (complete, value) = match output.and_then(|v| v.into_py_any(py)) {
            Ok(value) => (target.getattr("set_result")?, value.into_bound(py)),
            Err(e) => (
                target.getattr("set_exception")?,
                e.into_value(py).into_bound(py).into_any(),
            ),
        };
        let kwargs = PyDict::new(py);
        kwargs.set_item("context", context.bind(py))?;
        event_loop.bind(py).call_method(
            "call_soon_threadsafe",
            (Completor, target, complete, value),
            Some(&kwargs),
        )?;
        Ok(())
    })();
    // The loop is closed (the program ended without awaiting): nothing to tell.
    if let Err(e) = sent {
        e.print(py);
    }
}

/// Registered with `atexit`: before the interpreter finalizes, waits (GIL released) until
/// every awaitable's result has been handed to asyncio, at most 2 s.
#[pyfunction]
pub(crate) fn drain_before_exit(py: Python<'_>) {
    py.detach(|| {
        let deadline = Instant::now() + Duration::from_secs(2);
        while IN_FLIGHT.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
}
