//! The six steps of a verification and the recorder that times them and stops at the
//! first failure. Each step is one request; what it needs from an earlier one (the
//! session's nonce and cart token, the product, the order) is passed along explicitly.

use std::future::Future;
use std::time::Instant;

use hyper::header::{HeaderMap, HeaderName, HeaderValue, LOCATION};
use hyper::{Method, StatusCode};
use serde::Serialize;

use super::excerpt::{body_detail, one_line, wp_error_code};
use super::http::{Answer, StoreClient};
use super::store_api::{
    AddItem, Address, CART_TOKEN, COMING_SOON_MARKER, Cart, Checkout, NONCE, Order, PRODUCT_PAGE,
    Placed, Product, ROOT,
};
use super::{ACCEPTED_STATUSES, VerifyOptions, VerifyReport, VerifyStep, VerifyTarget};

/// A step that passed: what it found for the next steps, and what to report.
struct Passed<T> {
    value: T,
    status: Option<u16>,
    detail: Option<String>,
}

impl<T> Passed<T> {
    fn new(value: T, answer: &Answer) -> Self {
        Self {
            value,
            status: Some(answer.status.as_u16()),
            detail: None,
        }
    }

    fn detail(mut self, detail: String) -> Self {
        self.detail = Some(one_line(&detail));
        self
    }
}

/// A step that failed: the HTTP status if the store answered, and why.
struct Failed {
    status: Option<u16>,
    detail: String,
}

impl Failed {
    /// The store answered, but not as a working store does.
    fn answered(answer: &Answer, detail: impl AsRef<str>) -> Self {
        Self {
            status: Some(answer.status.as_u16()),
            detail: one_line(detail.as_ref()),
        }
    }

    /// The store answered with an unexpected status: the body's gist, after `hint` if any.
    fn status(answer: &Answer, hint: Option<&str>) -> Self {
        let body = body_detail(&answer.body).unwrap_or_else(|| "empty answer".to_owned());
        match hint {
            Some(hint) => Self::answered(answer, format!("{hint}: {body}")),
            None => Self::answered(answer, body),
        }
    }

    /// The answer's status was right but its body is not the Store API's JSON.
    fn unreadable(answer: &Answer, what: &str, err: &serde_json::Error) -> Self {
        Self::answered(
            answer,
            format!("{what} is not the Store API's JSON ({err})"),
        )
    }
}

/// No answer at all (transport failure, timeout) or no request could be built.
impl From<String> for Failed {
    fn from(detail: String) -> Self {
        Self {
            status: None,
            detail: one_line(&detail),
        }
    }
}

type Outcome<T> = Result<Passed<T>, Failed>;

/// Collects the steps as they run.
#[derive(Default)]
struct Recorder {
    steps: Vec<VerifyStep>,
}

impl Recorder {
    /// Runs one step, records it, and hands its value on when it passed.
    async fn step<T>(&mut self, name: &str, step: impl Future<Output = Outcome<T>>) -> Option<T> {
        let started = Instant::now();
        let outcome = step.await;
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (ok, status, detail, value) = match outcome {
            Ok(p) => (true, p.status, p.detail, Some(p.value)),
            Err(f) => (false, f.status, Some(f.detail), None),
        };
        self.steps.push(VerifyStep {
            name: name.to_owned(),
            ok,
            ms,
            status,
            detail,
        });
        value
    }
}

/// The cart session: the latest `Nonce` and `Cart-Token` the store handed out.
struct Session {
    nonce: HeaderValue,
    cart_token: HeaderValue,
}

impl Session {
    fn headers(&self) -> [(HeaderName, HeaderValue); 2] {
        [
            (HeaderName::from_static(NONCE), self.nonce.clone()),
            (HeaderName::from_static(CART_TOKEN), self.cart_token.clone()),
        ]
    }

    /// Keeps the newest values: the Store API sends a fresh nonce with each answer.
    fn refresh(&mut self, headers: &HeaderMap) {
        if let Some(nonce) = present(headers, NONCE) {
            self.nonce = nonce;
        }
        if let Some(token) = present(headers, CART_TOKEN) {
            self.cart_token = token;
        }
    }
}

fn present(headers: &HeaderMap, name: &str) -> Option<HeaderValue> {
    headers.get(name).filter(|v| !v.is_empty()).cloned()
}

/// Runs the steps in order, stopping at the first failure.
pub(super) async fn run(target: &VerifyTarget, opts: &VerifyOptions) -> VerifyReport {
    let mut rec = Recorder::default();
    let mut order_id = None;
    let ok = steps(&mut rec, &mut order_id, target, opts).await.is_some();
    VerifyReport {
        ok,
        steps: rec.steps,
        order_id,
    }
}

async fn steps(
    rec: &mut Recorder,
    order_id: &mut Option<u64>,
    target: &VerifyTarget,
    opts: &VerifyOptions,
) -> Option<()> {
    let client = match StoreClient::new(target, opts.step_timeout) {
        Ok(client) => client,
        Err(detail) => {
            let unusable = async { Err::<Passed<()>, _>(Failed::from(detail)) };
            return rec.step("storefront", unusable).await;
        }
    };
    let c = &client;
    rec.step("storefront", storefront(c)).await?;
    let mut session = rec.step("cart", cart(c)).await?;
    let product = rec.step("product", cheapest_product(c)).await?;
    rec.step("add_item", add_item(c, &mut session, product))
        .await?;
    let placed = rec
        .step("checkout", checkout(c, &mut session, opts, order_id))
        .await?;
    rec.step("order", read_back(c, &placed, opts)).await
}

/// `GET /`: the storefront answers 200 and is not WooCommerce's coming-soon page.
async fn storefront(c: &StoreClient) -> Outcome<()> {
    let answer = c.send(Method::GET, &c.url("")?, &[], None).await?;
    let page = String::from_utf8_lossy(&answer.body);
    if page.contains(COMING_SOON_MARKER) {
        return Err(Failed::answered(
            &answer,
            "the store is in coming-soon mode (woocommerce_coming_soon=yes): shoppers get \
             the coming-soon page, not the shop",
        ));
    }
    if answer.status.is_redirection() {
        let to = answer
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("nowhere");
        return Err(Failed::answered(
            &answer,
            format!("redirected to {to}: WordPress's home/siteurl is not this store's URL"),
        ));
    }
    if answer.status != StatusCode::OK {
        return Err(Failed::status(&answer, None));
    }
    Ok(Passed::new((), &answer))
}

/// `GET /cart`: 200, with the `Nonce` and `Cart-Token` headers the cart routes need.
async fn cart(c: &StoreClient) -> Outcome<Session> {
    let url = c.url(&format!("{ROOT}cart"))?;
    let answer = c.send(Method::GET, &url, &[], None).await?;
    if answer.status != StatusCode::OK {
        let hint = match answer.status {
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => Some(
                "the Store API refuses shoppers (coming-soon mode, or a plugin blocking \
                 /wp-json)",
            ),
            StatusCode::NOT_FOUND => Some(
                "no Store API at /wp-json/wc/store/v1 (WooCommerce inactive, or pretty \
                 permalinks off)",
            ),
            _ => None,
        };
        return Err(Failed::status(&answer, hint));
    }
    let missing =
        |header: &str| Failed::answered(&answer, format!("the cart answer has no {header} header"));
    let nonce = present(&answer.headers, NONCE).ok_or_else(|| missing("Nonce"))?;
    let cart_token = present(&answer.headers, CART_TOKEN).ok_or_else(|| missing("Cart-Token"))?;
    Ok(Passed::new(Session { nonce, cart_token }, &answer))
}

/// `GET /products?orderby=price&order=asc`: the cheapest product that can be put in the
/// cart by id alone (simple, in stock, purchasable).
async fn cheapest_product(c: &StoreClient) -> Outcome<u64> {
    let mut url = c.url(&format!("{ROOT}products"))?;
    url.query_pairs_mut()
        .append_pair("orderby", "price")
        .append_pair("order", "asc")
        .append_pair("per_page", &PRODUCT_PAGE.to_string());
    let answer = c.send(Method::GET, &url, &[], None).await?;
    if answer.status != StatusCode::OK {
        return Err(Failed::status(&answer, None));
    }
    let products: Vec<Product> = serde_json::from_slice(&answer.body)
        .map_err(|e| Failed::unreadable(&answer, "the product list", &e))?;
    let Some(product) = products.iter().find(|p| p.can_be_added_directly()) else {
        let why = if products.is_empty() {
            "the store has no purchasable product".to_owned()
        } else {
            format!(
                "the store has no purchasable product: none of the {} cheapest is simple, \
                 in stock and purchasable",
                products.len()
            )
        };
        return Err(Failed::answered(&answer, why));
    };
    let price = match &product.prices {
        Some(p) if !p.price.is_empty() => format!(", price {} {}", p.price, p.currency_code),
        _ => String::new(),
    };
    let name = store_api_text(&product.name);
    Ok(Passed::new(product.id, &answer).detail(format!("product {} ({name}{price})", product.id)))
}

/// `POST /cart/add-item`: 201 (or 200), and the answered cart holds the product.
async fn add_item(c: &StoreClient, session: &mut Session, product: u64) -> Outcome<()> {
    let url = c.url(&format!("{ROOT}cart/add-item"))?;
    let body = json(&AddItem {
        id: product,
        quantity: 1,
    })?;
    let answer = c
        .send(Method::POST, &url, &session.headers(), Some(&body))
        .await?;
    if !matches!(answer.status, StatusCode::CREATED | StatusCode::OK) {
        return Err(Failed::status(&answer, None));
    }
    session.refresh(&answer.headers);
    let cart: Cart = serde_json::from_slice(&answer.body)
        .map_err(|e| Failed::unreadable(&answer, "the add-item answer", &e))?;
    if !cart.items.iter().any(|item| item.id == product) {
        return Err(Failed::answered(
            &answer,
            format!("the cart does not hold product {product} after add-item"),
        ));
    }
    Ok(Passed::new((), &answer))
}

/// `POST /checkout` with the test customer and `payment_method: "cod"`: an order in an
/// accepted status. Records the order id as soon as the store names one.
async fn checkout(
    c: &StoreClient,
    session: &mut Session,
    opts: &VerifyOptions,
    order_id: &mut Option<u64>,
) -> Outcome<Placed> {
    let url = c.url(&format!("{ROOT}checkout"))?;
    let body = json(&Checkout {
        billing_address: Address::of(&opts.customer, true),
        shipping_address: Address::of(&opts.customer, false),
        customer_note: &opts.customer_note,
        payment_method: "cod",
    })?;
    let answer = c
        .send(Method::POST, &url, &session.headers(), Some(&body))
        .await?;
    if answer.status != StatusCode::OK {
        let payment = wp_error_code(&answer.body).is_some_and(|code| code.contains("payment"));
        let hint = payment.then_some("is Cash on delivery enabled?");
        return Err(Failed::status(&answer, hint));
    }
    session.refresh(&answer.headers);
    let placed: Placed = serde_json::from_slice(&answer.body)
        .map_err(|e| Failed::unreadable(&answer, "the checkout answer", &e))?;
    *order_id = Some(placed.order_id);
    let payment = placed
        .payment_result
        .as_ref()
        .map(|r| r.payment_status.as_str())
        .unwrap_or_default();
    if !payment.is_empty() && payment != "success" {
        return Err(Failed::answered(
            &answer,
            format!(
                "order {} is {}: the payment was {payment}",
                placed.order_id, placed.status
            ),
        ));
    }
    if !ACCEPTED_STATUSES.contains(&placed.status.as_str()) {
        return Err(Failed::answered(
            &answer,
            not_accepted(placed.order_id, &placed.status),
        ));
    }
    let detail = format!("order {} {}", placed.order_id, placed.status);
    Ok(Passed::new(placed, &answer).detail(detail))
}

/// `GET /order/{id}?key=…&billing_email=…`: the same order, still in an accepted status.
async fn read_back(c: &StoreClient, placed: &Placed, opts: &VerifyOptions) -> Outcome<()> {
    let mut url = c.url(&format!("{ROOT}order/{}", placed.order_id))?;
    url.query_pairs_mut()
        .append_pair("key", &placed.order_key)
        .append_pair("billing_email", &opts.customer.email);
    let answer = c.send(Method::GET, &url, &[], None).await?;
    if answer.status != StatusCode::OK {
        return Err(Failed::status(&answer, None));
    }
    let order: Order = serde_json::from_slice(&answer.body)
        .map_err(|e| Failed::unreadable(&answer, "the order", &e))?;
    if order.id != placed.order_id {
        return Err(Failed::answered(
            &answer,
            format!(
                "asked for order {}, got order {}",
                placed.order_id, order.id
            ),
        ));
    }
    if !ACCEPTED_STATUSES.contains(&order.status.as_str()) {
        return Err(Failed::answered(
            &answer,
            not_accepted(order.id, &order.status),
        ));
    }
    Ok(Passed::new((), &answer).detail(format!("order {} {}", order.id, order.status)))
}

fn not_accepted(id: u64, status: &str) -> String {
    format!(
        "order {id} is {status}, not {}",
        ACCEPTED_STATUSES.join(", ")
    )
}

fn json(body: &impl Serialize) -> Result<serde_json::Value, Failed> {
    serde_json::to_value(body).map_err(|e| Failed::from(format!("cannot encode the request: {e}")))
}

/// A product name as the Store API sends it (HTML entities, sometimes markup), as text.
fn store_api_text(name: &str) -> String {
    super::excerpt::html_text(name).trim().to_owned()
}
