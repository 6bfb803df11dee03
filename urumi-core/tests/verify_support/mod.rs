//! A WooCommerce Store API double for the `verify` tests: a local axum server on
//! 127.0.0.1:0 that answers as WooCommerce's documented Store API does (`Nonce` and
//! `Cart-Token` headers, the JSON of cart, products, add-item, checkout and order, WP REST
//! error bodies `{"code","message","data":{"status"}}`) and enforces its rules, so a
//! client that skips one fails:
//!
//! ```text
//!  GET  /                          storefront page
//!  GET  …/cart                     new cart: Cart-Token + Nonce headers
//!  GET  …/products?orderby&order   catalogue; only documented orderby values; per_page
//!  POST …/cart/add-item            401 no Nonce, 403 stale Nonce; 400 variable/out of stock
//!  POST …/checkout                 same nonce rules; 400 empty cart (no Cart-Token),
//!                                  no payment_method, not COD, no billing email
//!  GET  …/order/{id}?key&billing_email   401 wrong key or email
//! ```
//!
//! Stricter than WordPress on one point, on purpose: every answer carries a new nonce and
//! only the newest is accepted (WordPress accepts a nonce for 12–24 h), so the client must
//! keep the nonce the Store API sends back, as its docs ask. Failures are injected by the
//! switches of [`Faults`].
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

mod cart;
mod routes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use urumi_core::verify::VerifyTarget;

/// Switches that make the double fail the way a broken store does.
#[derive(Default, Clone)]
pub struct Faults {
    /// `GET /` answers WordPress's critical-error page with 500.
    pub storefront_500: bool,
    /// `GET /` answers WooCommerce's coming-soon page (200).
    pub coming_soon_page: bool,
    /// `GET /` redirects to another host (WordPress `home` set to something else).
    pub storefront_redirect: bool,
    /// Every Store API route answers 403 `rest_forbidden`.
    pub store_api_forbidden: bool,
    /// The catalogue is empty.
    pub no_products: bool,
    /// The cart answer has no `Nonce` header (only the legacy `X-WC-Store-API-Nonce`).
    pub no_nonce_header: bool,
    /// The cart answer has no `Cart-Token` header.
    pub no_cart_token: bool,
    /// The `Nonce` request header never arrives (a proxy in front drops it).
    pub nonce_dropped_on_the_way: bool,
    /// Cash on delivery is not enabled: checkout answers 400.
    pub cod_disabled: bool,
    /// Checkout creates orders that stay `pending`.
    pub pending_orders: bool,
    /// Requests whose path starts with this never get an answer.
    pub hang_on: Option<&'static str>,
    /// Answer 404 (as an ingress does for an unknown host) unless `Host` is this.
    pub expect_host: Option<&'static str>,
}

/// An order the double holds.
#[derive(Clone, Debug)]
pub struct StoredOrder {
    pub id: u64,
    pub key: String,
    pub status: String,
    pub payment_method: String,
    pub billing_email: String,
    pub customer_note: String,
    pub items: Vec<u64>,
}

/// The product `verify` must pick from [`CATALOGUE`].
pub const CHEAPEST_PURCHASABLE: u64 = 13;
/// The first order id the double hands out.
pub const FIRST_ORDER_ID: u64 = 4201;

#[derive(Default)]
struct Inner {
    nonce_seq: u64,
    cart_seq: u64,
    carts: HashMap<String, Vec<u64>>,
    orders: Vec<StoredOrder>,
    hosts: Vec<String>,
    requests: Vec<String>,
}

struct Shared {
    faults: Faults,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The running double; the server stops with the test's runtime.
pub struct StoreDouble {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl StoreDouble {
    pub async fn start(faults: Faults) -> Self {
        let shared = Arc::new(Shared {
            faults,
            inner: Mutex::new(Inner::default()),
        });
        let app = routes::router(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared }
    }

    /// The double's storefront URL.
    pub fn url(&self) -> url::Url {
        format!("http://{}/", self.addr).parse().expect("url")
    }

    /// A target reaching the double by its address.
    pub fn target(&self) -> VerifyTarget {
        VerifyTarget::new(self.url())
    }

    pub fn orders(&self) -> Vec<StoredOrder> {
        self.shared.lock().orders.clone()
    }

    /// The `Host` header of every request, in order.
    pub fn hosts(&self) -> Vec<String> {
        self.shared.lock().hosts.clone()
    }

    /// `METHOD path?query` of every request, in order.
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().requests.clone()
    }
}

/// An answer read by [`StoreDouble::raw`].
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl StoreDouble {
    /// One HTTP/1.1 request over a fresh connection, read to the end
    /// (`Connection: close`), to check the double's own rules.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> RawResponse {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status_line = lines.next().unwrap();
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        RawResponse {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    /// A new cart through a raw request: its `(Cart-Token, Nonce)`.
    pub async fn raw_cart(&self) -> (String, String) {
        let cart = self.raw("GET", "/wp-json/wc/store/v1/cart", &[], "").await;
        (
            cart.header("cart-token").unwrap(),
            cart.header("nonce").unwrap(),
        )
    }
}
