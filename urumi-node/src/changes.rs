//! `ChangeStream`: one subscription to the change feed, read a change at a time.
//!
//! ```text
//!  Provisioner.changes(after) ──▶ ChangeStream { core stream }
//!     next() ──▶ Promise<Change | null>  (null: the provisioner shut down)
//!     close() ──▶ the core stream is dropped: the subscription ends
//! ```
//!
//! The JS shim wraps it in an `async function*`, whose `finally` calls `close()` when a
//! `for await` loop breaks; garbage collection drops it too.

use std::sync::Arc;

use futures::StreamExt;
use napi_derive::napi;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::error::{IntoJs, to_json};

/// One subscription to the change feed. Each `next()` resolves with the next change
/// `{ seq, at, kind, store }` (`kind`: `created`, `updated`, `deleted`), or `null` when
/// the feed ended (closed, or the provisioner shut down).
#[napi]
pub struct ChangeStream {
    /// The core stream; `None` once closed or ended.
    inner: Arc<Mutex<Option<urumi_core::provisioner::ChangeStream>>>,
}

impl ChangeStream {
    /// Wraps a core stream.
    pub fn new(stream: urumi_core::provisioner::ChangeStream) -> Self {
        ChangeStream {
            inner: Arc::new(Mutex::new(Some(stream))),
        }
    }
}

#[napi]
impl ChangeStream {
    /// The next change, waiting for it; `null` once the feed ended. Rejects with
    /// `cursor_expired` (the cursor is older than the retention: list, then follow).
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn next(&self) -> napi::Result<Option<Value>> {
        let inner = self.inner.clone();
        let mut guard = inner.lock().await;
        let Some(stream) = guard.as_mut() else {
            return Ok(None);
        };
        match stream.next().await {
            Some(item) => Ok(Some(to_json(&item.js()?)?)),
            None => {
                *guard = None;
                Ok(None)
            }
        }
    }

    /// Ends the subscription; a pending `next()` resolves first, later ones with `null`.
    #[napi]
    pub fn close(&self) {
        if let Ok(mut guard) = self.inner.try_lock() {
            *guard = None;
            return;
        }
        let inner = self.inner.clone();
        napi::bindgen_prelude::spawn(async move {
            *inner.lock().await = None;
        });
    }
}
