//! The change feed as a Python iterator: [`ChangeStream`] (`async for`) and
//! [`SyncChangeStream`] (`for`).
//!
//! ```text
//!  __anext__() ──future_into_py──▶ lock Arc<tokio::Mutex<stream>> (on a tokio thread)
//!                                   └─▶ next().await ─▶ Change │ UrumiError │ StopAsyncIteration
//!  __next__()  ──block_on (GIL released)──▶ the same
//! ```
//!
//! The stream's mutex is only ever locked on tokio threads, never while holding the GIL.
//! A stream ends when the provisioner closes, or after a `CursorExpiredError`.

use std::sync::Arc;

use crate::bridge::future_into_py;
use futures::StreamExt;
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use tokio::sync::Mutex;

use crate::errors::to_py;
use crate::types::Change;

type Inner = Arc<Mutex<Option<urumi_core::provisioner::ChangeStream>>>;

/// The next change; `None` once the stream has ended (it is dropped then).
async fn next(inner: Inner) -> PyResult<Option<Change>> {
    let mut guard = inner.lock().await;
    let Some(stream) = guard.as_mut() else {
        return Ok(None);
    };
    match stream.next().await {
        Some(Ok(change)) => Ok(Some(Change::from(change))),
        Some(Err(e)) => {
            *guard = None;
            Err(to_py(e))
        }
        None => {
            *guard = None;
            Ok(None)
        }
    }
}

async fn close(inner: Inner) -> PyResult<()> {
    inner.lock().await.take();
    Ok(())
}

/// The change feed, for `async for change in p.changes(after=cursor)`.
///
/// Yields a `Change` per store change, in order, none twice; `change.seq` is the cursor
/// to resume after. Ends when the provisioner closes; raises `CursorExpiredError` (and
/// ends) for a cursor older than the retention. `await stream.aclose()` stops it early.
#[pyclass(frozen, module = "urumi")]
pub struct ChangeStream {
    inner: Inner,
}

impl ChangeStream {
    pub(crate) fn new(stream: urumi_core::provisioner::ChangeStream) -> Self {
        ChangeStream {
            inner: Arc::new(Mutex::new(Some(stream))),
        }
    }
}

#[pymethods]
impl ChangeStream {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move {
            match next(inner).await? {
                Some(change) => Ok(change),
                None => Err(PyStopAsyncIteration::new_err(())),
            }
        })
    }

    /// Stops following the feed.
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        future_into_py(py, close(self.inner.clone()))
    }
}

/// The change feed, for `for change in p.changes(after=cursor)` (blocking, the GIL
/// released while waiting; Ctrl-C interrupts it). As [`ChangeStream`] otherwise.
#[pyclass(frozen, module = "urumi")]
pub struct SyncChangeStream {
    inner: Inner,
}

impl SyncChangeStream {
    pub(crate) fn new(stream: urumi_core::provisioner::ChangeStream) -> Self {
        SyncChangeStream {
            inner: Arc::new(Mutex::new(Some(stream))),
        }
    }
}

#[pymethods]
impl SyncChangeStream {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Change> {
        match crate::block_on(py, next(self.inner.clone()))? {
            Some(change) => Ok(change),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    /// Stops following the feed.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        crate::block_on(py, close(self.inner.clone()))
    }
}
