//! # verify — prove that a Ready store sells
//!
//! A store is done when a shopper can place a cash-on-delivery order. [`verify_store`]
//! proves it from the outside, as a shopper's browser would, through the storefront and
//! the WooCommerce Store API (`/wp-json/wc/store/v1`). It is plain HTTP: no Kubernetes
//! here; the caller says where the store answers ([`VerifyTarget`]).
//!
//! ```text
//!  storefront  GET  /                                   200, not the coming-soon page
//!      │
//!  cart        GET  /wp-json/wc/store/v1/cart           200 ─▶ Nonce, Cart-Token headers
//!      │
//!  product     GET  …/products?orderby=price&order=asc  the cheapest simple, in-stock,
//!      │                                                purchasable product ─▶ id
//!  add_item    POST …/cart/add-item {"id","quantity":1} 201/200, the item is in the cart
//!      │            (Nonce + Cart-Token sent; both refreshed from every answer)
//!  checkout    POST …/checkout  billing + shipping address, payment_method "cod",
//!      │            customer_note ─▶ {"order_id","status","order_key"}; status accepted
//!  order       GET  …/order/{id}?key=…&billing_email=…  the same id, an accepted status
//! ```
//!
//! **Steps stop at the first failure**: the failed step is the last one in
//! [`VerifyReport::steps`] and the steps after it are not listed (they did not run).
//! [`VerifyReport::ok`] is true only when all six ran and passed.
//!
//! **What counts as a COD order** ([`ACCEPTED_STATUSES`]): WooCommerce's COD gateway puts
//! an order it accepts in `processing` (`on-hold` when it holds downloadable items, and
//! `completed` when a zero-total order of virtual downloads is paid at once). A `pending`
//! order is one the gateway never processed (the checkout did not take), `failed` or
//! `cancelled` are refusals: all fail the `checkout` step. When the checkout answer carries
//! `payment_result.payment_status`, it must be `success`.
//!
//! **Each step**: one request under [`VerifyOptions::step_timeout`] (connect, answer and
//! body), its wall time in `ms`, the HTTP `status` when there was an answer, and on failure
//! a one-line `detail` of at most 300 characters: the WordPress REST error as
//! `code: message`, the visible text of an HTML page (never its markup), or the transport
//! failure's class (`connection refused`, `timed out after 15 s`, `DNS lookup failed…`,
//! `TLS error: …`). Redirects are not followed: a redirect of the storefront usually means
//! WordPress's `home`/`siteurl` is not the store's URL, and it is reported as such. No step
//! is retried.
//!
//! ## The order stays in the store
//!
//! Each successful run **creates one real order** in the store, and it is not removed: the
//! Store API cannot delete or cancel orders (that needs the admin REST API and its keys,
//! which this module deliberately never holds). The order is marked as a verification
//! order so people and reports can tell it apart: its customer note is
//! [`VerifyOptions::customer_note`] ("urumi verification order …"), the customer is
//! [`TestCustomer::default`] (`Urumi Verify`), and the billing email is
//! `verify@urumi.invalid` — the reserved `.invalid` TLD passes WordPress's `is_email`
//! (which checks syntax, not DNS) and guarantees the order emails reach nobody. Removing
//! these orders, if wanted, belongs to whoever holds admin credentials (e.g. the
//! provisioner running `wp wc shop_order delete` in the store's pod); the report's
//! `orderId` names the order. It also takes one unit of the cheapest product's stock
//! when the store manages stock.
//!
//! ## Example
//!
//! ```no_run
//! use std::time::Duration;
//! use urumi_core::verify::{verify_store, VerifyOptions, VerifyTarget};
//!
//! # async fn demo() -> Result<(), url::ParseError> {
//! // Through the ingress, by name:
//! let target = VerifyTarget::new("http://shop1.127.0.0.1.nip.io".parse()?);
//! // Or in the cluster, through the store's Service, with the store's host name:
//! let _in_cluster = VerifyTarget::new("http://wordpress.store-shop1.svc".parse()?)
//!     .with_host("shop1.127.0.0.1.nip.io");
//! let opts = VerifyOptions { step_timeout: Duration::from_secs(10), ..Default::default() };
//! let report = verify_store(&target, &opts).await;
//! println!("{}", serde_json::to_string(&report).unwrap_or_default());
//! # Ok(())
//! # }
//! ```

mod excerpt;
mod flow;
mod http;
mod store_api;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

pub use excerpt::MAX_DETAIL;

/// The steps of a verification, in the order they run.
pub const STEPS: [&str; 6] = [
    "storefront",
    "cart",
    "product",
    "add_item",
    "checkout",
    "order",
];

/// Order statuses that prove a COD checkout went through (see the module docs).
pub const ACCEPTED_STATUSES: [&str; 3] = ["processing", "on-hold", "completed"];

/// Where to reach the store: its storefront base URL (e.g. `http://shop1.127.0.0.1.nip.io`),
/// or an in-cluster Service URL plus the `Host` header to send (the store's host name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyTarget {
    /// Where requests go. A path (WordPress in a sub-directory) is kept: the Store API is
    /// looked for under it.
    pub base_url: Url,
    /// The `Host` header to send instead of `base_url`'s host; over `https` it is also the
    /// name the certificate must carry. `None`: `base_url`'s own host.
    pub host: Option<String>,
}

impl VerifyTarget {
    /// A store reached at its own URL.
    pub fn new(base_url: Url) -> Self {
        Self {
            base_url,
            host: None,
        }
    }

    /// The same target, sending `host` as the `Host` header (an ingress or WordPress
    /// routes by it when `base_url` is a Service address).
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }
}

/// How to verify: the per-step deadline and who the test order is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Deadline of each step: connecting, the answer and its body. Default 15 s (a cold
    /// WordPress can take several seconds on its first page).
    pub step_timeout: Duration,
    /// The shopper whose billing and shipping address the test order carries.
    pub customer: TestCustomer,
    /// The order's customer note, marking it as a verification order.
    pub customer_note: String,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            step_timeout: Duration::from_secs(15),
            customer: TestCustomer::default(),
            customer_note: "urumi verification order: placed automatically to prove the \
                            store takes cash-on-delivery orders; not a real sale"
                .to_owned(),
        }
    }
}

/// The test shopper. The default is a fixed, valid US address with the email
/// `verify@urumi.invalid` (`.invalid` is reserved: the order's emails reach nobody).
/// Fields are named as the Store API names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCustomer {
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Street address.
    pub address_1: String,
    /// City.
    pub city: String,
    /// State or county code as WooCommerce knows it for `country` (e.g. `CA` in `US`).
    pub state: String,
    /// Postal code, valid for `country` (WooCommerce checks its format).
    pub postcode: String,
    /// ISO 3166-1 alpha-2 country code; the store must sell to it.
    pub country: String,
    /// Billing email; the order endpoint asks for it back to show a guest order.
    pub email: String,
    /// Phone number (some stores require one).
    pub phone: String,
}

impl Default for TestCustomer {
    fn default() -> Self {
        Self {
            first_name: "Urumi".to_owned(),
            last_name: "Verify".to_owned(),
            address_1: "1 Verification Way".to_owned(),
            city: "San Francisco".to_owned(),
            state: "CA".to_owned(),
            postcode: "94103".to_owned(),
            country: "US".to_owned(),
            email: "verify@urumi.invalid".to_owned(),
            phone: "555-0100".to_owned(),
        }
    }
}

/// The outcome of [`verify_store`], serialized as the API's
/// `{"ok","steps":[…],"orderId"?}`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// True when every step in [`STEPS`] ran and passed.
    pub ok: bool,
    /// The steps that ran, in order; when `ok` is false the last one is the failure.
    pub steps: Vec<VerifyStep>,
    /// The order the checkout created, once it created one (also when a later check
    /// failed: the order exists in the store and this names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<u64>,
}

impl VerifyReport {
    /// The step that failed, if one did.
    pub fn failed_step(&self) -> Option<&VerifyStep> {
        self.steps.iter().find(|s| !s.ok)
    }
}

/// One step of a verification: `{"name","ok","ms","status"?,"detail"?}`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VerifyStep {
    /// One of [`STEPS`].
    pub name: String,
    /// Whether the step passed.
    pub ok: bool,
    /// Its wall time in milliseconds.
    pub ms: u64,
    /// The HTTP status the store answered, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// On failure, why, on one line of at most [`MAX_DETAIL`] characters; on success,
    /// sometimes what was found (the product, the order and its status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Verifies that the store at `target` takes a cash-on-delivery order: the six [`STEPS`],
/// stopping at the first failure. Never fails as a call: every problem, including an
/// unusable target, is a failed step in the report.
///
/// Not idempotent: each successful run leaves one test order in the store (see the
/// module docs).
pub async fn verify_store(target: &VerifyTarget, opts: &VerifyOptions) -> VerifyReport {
    flow::run(target, opts).await
}
