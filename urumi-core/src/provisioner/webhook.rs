//! WooCommerce webhook deliveries: the topic's shape and the HMAC-SHA256 signature.
//!
//! ```text
//!  X-WC-Webhook-Topic "order.created" ─check_topic─▶ audit action "woocommerce.order.created"
//!  X-WC-Webhook-Signature = base64(HMAC-SHA256(store's webhook secret, body)) ─verify (constant time)
//! ```

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::guardrails::SecretString;

/// A topic is `resource.event` (`order.created`, `product.updated`): lowercase letters
/// and underscores, at most 64 characters. Errors: `invalid_spec`.
pub(crate) fn check_topic(topic: &str) -> Result<&str> {
    let ok_part = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    match topic.split_once('.') {
        Some((resource, event)) if topic.len() <= 64 && ok_part(resource) && ok_part(event) => {
            Ok(topic)
        }
        _ => Err(Error::InvalidSpec {
            field: "topic",
            message: "a WooCommerce webhook topic is resource.event, e.g. order.created".into(),
        }),
    }
}

/// Checks `signature` (base64) against HMAC-SHA256(`secret`, `body`) in constant time.
/// Errors: `unauthorized`, with a message that says nothing about the secret.
pub(crate) fn verify(secret: &SecretString, body: &[u8], signature: &str) -> Result<()> {
    let refused = || Error::Unauthorized {
        message: "the webhook signature does not match".to_owned(),
    };
    let given = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| refused())?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).map_err(|_| refused())?;
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| refused())
}

/// The signature WooCommerce sends for `body` (for tests and for clients of the API).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_made_with_the_secret_is_accepted_and_any_other_refused() {
        let secret = SecretString::new("s3cret");
        let body = br#"{"id":42}"#;
        let good = sign("s3cret", body);
        assert!(verify(&secret, body, &good).is_ok());
        assert!(
            verify(&secret, br#"{"id":43}"#, &good).is_err(),
            "body changed"
        );
        assert!(
            verify(&secret, body, &sign("other", body)).is_err(),
            "other key"
        );
        assert!(verify(&secret, body, "").is_err(), "empty");
        assert!(verify(&secret, body, "!!not base64").is_err(), "garbage");
        let e = verify(&secret, body, &sign("other", body)).expect_err("refused");
        assert_eq!(e.kind(), crate::ErrorKind::Unauthorized);
        assert!(!e.to_string().contains("s3cret"));
    }

    #[test]
    fn only_resource_dot_event_topics_pass() {
        assert!(check_topic("order.created").is_ok());
        assert!(check_topic("action.woocommerce_order_refunded").is_ok());
        for bad in [
            "",
            "order",
            "store.deleted.x",
            "Order.created",
            "order.",
            ".x",
            "a.b c",
        ] {
            assert!(check_topic(bad).is_err(), "{bad:?}");
        }
    }
}
