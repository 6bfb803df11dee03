//! Opaque page cursors: `(timestamp, tiebreak)` of the last item, base64url-encoded.
//!
//! ```text
//!  last item (created_at, name) ──encode──▶ "MTcwMDAw…" ──client──▶ decode ──▶ WHERE (t, k) < (ts, key)
//! ```

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// Encodes the position after an item with time `at` and tiebreak `key`.
pub(crate) fn encode(at: DateTime<Utc>, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{key}", at.timestamp_micros()))
}

/// Decodes a cursor made by [`encode`]. Errors: `invalid_spec` (field `cursor`).
pub(crate) fn decode(cursor: &str) -> Result<(DateTime<Utc>, String)> {
    let bad = || Error::InvalidSpec {
        field: "cursor",
        message: "not a cursor returned by this API".to_owned(),
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (micros, key) = text.split_once(':').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    Ok((at, key.to_owned()))
}

/// Whether an item `(at, key)` comes after the cursor position in newest-first order.
pub(crate) fn is_after(at: DateTime<Utc>, key: &str, pos: &(DateTime<Utc>, String)) -> bool {
    at < pos.0 || (at == pos.0 && key < pos.1.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let at = crate::store::now();
        let c = encode(at, "shop1");
        assert_eq!(decode(&c).ok(), Some((at, "shop1".to_owned())));
        for bad in ["", "!!", "bm9jb2xvbg", "YWJjOmRlZg"] {
            assert!(decode(bad).is_err(), "{bad:?} accepted");
        }
    }
}
