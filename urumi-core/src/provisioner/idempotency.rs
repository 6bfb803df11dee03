//! Idempotency keys, run by the core in one call: begin → operation → complete (with
//! the real outcome, in the operation's own transaction where it writes) or release.
//!
//! ```text
//!  begin(scope = caller's tenant, key, hash(op, request)) ─┬─ stored outcome ─▶ replay it
//!                                                          ├─ in progress / other request ─▶ error
//!                                                          └─ owned ─▶ operation
//!  operation writes ─▶ StateStore::insert / update_with completes the key in its transaction
//!  operation fails  ─▶ retryable: release the key (a repeat may run) | else: store the error
//! ```

use crate::error::{Error, ErrorKind, Result};
use crate::provisioner::Caller;
use crate::state::{
    IDEMPOTENCY_TTL, IdempotencyKey, IdempotentInsert, StateStore, StoredResponse, request_hash,
};
use crate::store::Store;

/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// What [`Idempotent::begin`] found.
pub(crate) enum Begun {
    /// A duplicate: answer with the first outcome.
    Replay(Outcome),
    /// This request runs (with its key, if it has one).
    Owned(Option<Idempotent>),
}

/// The first outcome of a request, as stored with its key.
pub(crate) enum Outcome {
    /// It succeeded with this store record.
    Stored(Box<Store>),
    /// It failed permanently with this kind and (tenant-safe) message.
    Failed { kind: ErrorKind, message: String },
}

impl Outcome {
    pub(crate) fn into_result(self) -> Result<Store> {
        match self {
            Outcome::Stored(store) => Ok(*store),
            Outcome::Failed { kind, message } => Err(Error::Replayed { kind, message }),
        }
    }

    fn encode(&self) -> StoredResponse {
        match self {
            Outcome::Stored(store) => StoredResponse {
                status: 202,
                body: serde_json::to_string(store).unwrap_or_default(),
            },
            Outcome::Failed { kind, message } => StoredResponse {
                status: kind.http_status(),
                body: serde_json::json!({ "code": kind.as_str(), "message": message }).to_string(),
            },
        }
    }

    fn decode(resp: &StoredResponse) -> Result<Outcome> {
        let corrupt = || Error::internal("a stored idempotent response cannot be read");
        if resp.status < 300 {
            return serde_json::from_str(&resp.body)
                .map(|s| Outcome::Stored(Box::new(s)))
                .map_err(|_| corrupt());
        }
        let v: serde_json::Value = serde_json::from_str(&resp.body).map_err(|_| corrupt())?;
        let kind = v["code"]
            .as_str()
            .and_then(ErrorKind::from_code)
            .ok_or_else(corrupt)?;
        Ok(Outcome::Failed {
            kind,
            message: v["message"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// A key this request owns until it completes or releases it.
pub(crate) struct Idempotent {
    key: IdempotencyKey,
    hash: String,
}

impl Idempotent {
    /// Begins `key` (if any) for operation `op` on `request` (its canonical form).
    /// Errors: `invalid_spec` for an empty or too long key, `idempotency_mismatch`,
    /// `idempotency_in_progress`, the state store's errors.
    pub(crate) async fn begin(
        state: &dyn StateStore,
        caller: &Caller,
        key: Option<&str>,
        op: &str,
        request: &str,
    ) -> Result<Begun> {
        let Some(key) = key else {
            return Ok(Begun::Owned(None));
        };
        if key.is_empty()
            || key.len() > MAX_IDEMPOTENCY_KEY_LEN
            || !key.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        {
            return Err(Error::InvalidSpec {
                field: "idempotency_key",
                message: format!("must be 1-{MAX_IDEMPOTENCY_KEY_LEN} printable ASCII characters"),
            });
        }
        let key = IdempotencyKey::new(format!("tenant:{}", caller.tenant), key);
        let hash = request_hash(op, "", request.as_bytes());
        match state
            .idempotency_begin(&key, &hash, IDEMPOTENCY_TTL)
            .await?
        {
            Some(resp) => Ok(Begun::Replay(Outcome::decode(&resp)?)),
            None => Ok(Begun::Owned(Some(Idempotent { key, hash }))),
        }
    }

    /// The completion to pass to the state store's write, for the record it will return.
    pub(crate) fn completion(&self, written: &Store) -> Result<IdempotentInsert> {
        Ok(IdempotentInsert {
            key: self.key.clone(),
            request_hash: self.hash.clone(),
            response: Outcome::Stored(Box::new(written.clone())).encode(),
        })
    }

    /// Completes the key outside a write (the operation changed nothing).
    pub(crate) async fn complete(&self, state: &dyn StateStore, outcome: &Outcome) {
        if let Err(e) = state
            .idempotency_complete(&self.key, &outcome.encode())
            .await
        {
            tracing::warn!(error = %e, "could not complete an idempotency key; it lapses on its own");
        }
    }

    /// After a failed operation: a transient error releases the key (a repeat may run);
    /// a permanent one is stored and replayed.
    pub(crate) async fn finish_with_error(&self, state: &dyn StateStore, e: &Error) {
        if e.is_retryable() {
            if let Err(e) = state.idempotency_release(&self.key).await {
                tracing::warn!(error = %e, "could not release an idempotency key; it lapses on its own");
            }
        } else {
            let outcome = Outcome::Failed {
                kind: e.kind(),
                message: e.tenant_message(),
            };
            self.complete(state, &outcome).await;
        }
    }
}
