//! Following the change feed: replay from a cursor, then live — local changes at once,
//! other replicas' within [`FEED_POLL`].
//!
//! ```text
//!  FeedPump (one task per provisioner)
//!     ├─ local write (orchestrator broadcast) ──▶ read change_head ──▶ head: watch<u64>
//!     └─ every FEED_POLL ───────────────────────▶ read change_head ──▶ (other replicas)
//!  follow(after) ─▶ StateStore::changes(after, tenant) ─▶ yield each ─▶ none left? wait head > cursor
//! ```
//!
//! Followers never poll the database on their own: they wait on the pump's head, so a
//! hundred subscribers cost one query per poll interval, plus one per change they read.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::error::{ErrorKind, Result};
use crate::orchestrator::StoreChange;
use crate::state::{Change, ChangeQuery, StateStore};
use crate::store::TenantId;

/// How often the pump looks for changes written by other processes.
pub const FEED_POLL: Duration = Duration::from_secs(1);

/// Keeps `head` at the newest `seq` of the feed.
pub(crate) struct FeedPump {
    head: watch::Receiver<u64>,
}

impl FeedPump {
    pub(crate) fn start(
        state: Arc<dyn StateStore>,
        mut local: broadcast::Receiver<StoreChange>,
        stop: CancellationToken,
    ) -> Self {
        let (tx, head) = watch::channel(0);
        tokio::spawn(async move {
            loop {
                match state.change_head().await {
                    Ok(seq) => {
                        tx.send_if_modified(|h| {
                            let newer = seq > *h;
                            if newer {
                                *h = seq;
                            }
                            newer
                        });
                    }
                    Err(e) => tracing::debug!(error = %e, "change feed: cannot read the head"),
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(FEED_POLL) => {}
                    r = local.recv() => if let Err(broadcast::error::RecvError::Closed) = r {
                        // The worker is gone; keep polling for other replicas' changes.
                        local = broadcast::channel(1).1;
                    },
                }
            }
        });
        FeedPump { head }
    }

    /// Changes after `after` (`None`: from now on) that `tenant` may see (`None`: all),
    /// then every new one as it is written. The stream yields `Err(cursor_expired)` and
    /// ends when `after` is no longer retained; transient state errors are retried.
    ///
    /// A task of its own reads the feed from the moment of the call (the stream is a
    /// channel's receiving end, so dropping a `next()` in flight loses nothing); it
    /// stops when the stream is dropped or the provisioner stops.
    pub(crate) fn follow(
        &self,
        state: Arc<dyn StateStore>,
        tenant: Option<TenantId>,
        after: Option<u64>,
        stop: CancellationToken,
    ) -> BoxStream<'static, Result<Change>> {
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let follower = Follower {
            state,
            tenant,
            cursor: after,
            buffer: VecDeque::new(),
            head: self.head.clone(),
            stop,
            done: false,
        };
        tokio::spawn(follower.run(tx));
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            let item = rx.recv().await?;
            Some((item, rx))
        }))
    }
}

struct Follower {
    state: Arc<dyn StateStore>,
    tenant: Option<TenantId>,
    /// The last `seq` handed out (or asked to start after); `None` until the head is read.
    cursor: Option<u64>,
    buffer: VecDeque<Change>,
    head: watch::Receiver<u64>,
    stop: CancellationToken,
    done: bool,
}

impl Follower {
    async fn run(mut self, tx: tokio::sync::mpsc::Sender<Result<Change>>) {
        loop {
            let item = tokio::select! {
                _ = tx.closed() => return,
                item = self.next() => item,
            };
            let Some(item) = item else { return };
            if tx.send(item).await.is_err() {
                return;
            }
        }
    }

    async fn next(&mut self) -> Option<Result<Change>> {
        let mut backoff = Duration::from_millis(200);
        loop {
            if self.done || self.stop.is_cancelled() {
                return None;
            }
            if let Some(change) = self.buffer.pop_front() {
                self.cursor = Some(change.seq);
                return Some(Ok(change));
            }
            let cursor = match self.cursor {
                Some(c) => c,
                None => match self.state.change_head().await {
                    Ok(head) => {
                        self.cursor = Some(head);
                        head
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "change feed: cannot read the head; retrying");
                        self.pause(&mut backoff).await;
                        continue;
                    }
                },
            };
            // Mark what we have seen of the head before reading, so a change written
            // during the read wakes us again.
            self.head.borrow_and_update();
            let query = ChangeQuery {
                after: Some(cursor),
                tenant: self.tenant.clone(),
                limit: Some(500),
            };
            match self.state.changes(&query).await {
                Ok(batch) if !batch.is_empty() => {
                    backoff = Duration::from_millis(200);
                    self.buffer.extend(batch);
                }
                Ok(_) => {
                    tokio::select! {
                        _ = self.stop.cancelled() => return None,
                        changed = self.head.changed() => if changed.is_err() {
                            // The pump stopped (the provisioner is gone).
                            return None;
                        },
                    }
                }
                Err(e) if e.kind() == ErrorKind::CursorExpired => {
                    self.done = true;
                    return Some(Err(e));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "change feed: read failed; retrying");
                    self.pause(&mut backoff).await;
                }
            }
        }
    }

    async fn pause(&self, backoff: &mut Duration) {
        tokio::select! {
            _ = self.stop.cancelled() => {}
            _ = tokio::time::sleep(*backoff) => {}
        }
        *backoff = (*backoff * 2).min(Duration::from_secs(5));
    }
}
