//! The double's cart session, add-item, checkout and order routes, with the Store API's
//! nonce and cart-token rules.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::routes::{CATALOGUE, wp_error};
use super::{FIRST_ORDER_ID, Inner, Shared, StoredOrder};

/// A new nonce, the only one accepted from now on.
fn rotate_nonce(inner: &mut Inner) -> String {
    inner.nonce_seq += 1;
    format!("n{:08x}", inner.nonce_seq * 0x9e37)
}

fn current_nonce(inner: &Inner) -> String {
    format!("n{:08x}", inner.nonce_seq * 0x9e37)
}

fn cart_json(items: &[u64]) -> Value {
    let lines: Vec<Value> = items
        .iter()
        .map(|id| {
            let p = CATALOGUE.iter().find(|p| p.id == *id);
            json!({"key": format!("k{id}"), "id": id, "quantity": 1,
                   "name": p.map(|p| p.name), "prices": {"price": p.map(|p| p.price.to_string())}})
        })
        .collect();
    let total: u64 = items
        .iter()
        .filter_map(|id| CATALOGUE.iter().find(|p| p.id == *id))
        .map(|p| p.price)
        .sum();
    json!({"items": lines, "coupons": [], "items_count": items.len(), "needs_payment": total > 0,
           "needs_shipping": false, "totals": {"total_price": total.to_string(), "currency_code": "USD"},
           "errors": [], "payment_methods": ["cod"]})
}

/// Answers with the session headers the Store API sends.
fn with_session(s: &Shared, mut resp: Response, nonce: &str, token: &str) -> Response {
    let h = resp.headers_mut();
    let nonce = HeaderValue::from_str(nonce).expect("nonce header");
    if s.faults.no_nonce_header {
        h.insert("x-wc-store-api-nonce", nonce);
    } else {
        h.insert("nonce", nonce);
    }
    if !s.faults.no_cart_token {
        h.insert(
            "cart-token",
            HeaderValue::from_str(token).expect("token header"),
        );
    }
    resp
}

pub(super) async fn cart(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let mut inner = s.lock();
    let token = cart_token(&mut inner, &headers);
    let items = inner.carts.get(&token).cloned().unwrap_or_default();
    let nonce = rotate_nonce(&mut inner);
    drop(inner);
    with_session(
        &s,
        axum::Json(cart_json(&items)).into_response(),
        &nonce,
        &token,
    )
}

/// The Store API's nonce rule for cart writes and checkout: the refusal, if any.
fn refuse_nonce(s: &Shared, inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    let sent = headers.get("nonce").and_then(|v| v.to_str().ok());
    match sent {
        _ if s.faults.nonce_dropped_on_the_way => Some(missing_nonce()),
        None => Some(missing_nonce()),
        Some(n) if n != current_nonce(inner) => Some(wp_error(
            StatusCode::FORBIDDEN,
            "woocommerce_rest_invalid_nonce",
            "Nonce is invalid.",
        )),
        Some(_) => None,
    }
}

fn missing_nonce() -> Response {
    wp_error(
        StatusCode::UNAUTHORIZED,
        "woocommerce_rest_missing_nonce",
        "Missing the Nonce header. This endpoint requires a valid nonce.",
    )
}

/// The cart a request's `Cart-Token` names; without one, a new empty cart (no cookies).
fn cart_token(inner: &mut Inner, headers: &HeaderMap) -> String {
    match headers.get("cart-token").and_then(|v| v.to_str().ok()) {
        Some(t) if inner.carts.contains_key(t) => t.to_owned(),
        _ => {
            inner.cart_seq += 1;
            let t = format!("eyJ0eXAiOiJKV1QifQ.cart{}", inner.cart_seq);
            inner.carts.insert(t.clone(), Vec::new());
            t
        }
    }
}

pub(super) async fn add_item(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = s.lock();
    if let Some(resp) = refuse_nonce(&s, &inner, &headers) {
        return resp;
    }
    let token = cart_token(&mut inner, &headers);
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return wp_error(
            StatusCode::BAD_REQUEST,
            "rest_invalid_json",
            "Invalid JSON body passed.",
        );
    };
    let (Some(id), Some(qty)) = (req["id"].as_u64(), req["quantity"].as_u64()) else {
        return wp_error(
            StatusCode::BAD_REQUEST,
            "rest_missing_callback_param",
            "Missing parameter(s): id",
        );
    };
    let Some(product) = CATALOGUE.iter().find(|p| p.id == id) else {
        return wp_error(
            StatusCode::BAD_REQUEST,
            "woocommerce_rest_cart_invalid_product",
            "This product cannot be added to the cart.",
        );
    };
    if product.kind == "variable" {
        return wp_error(
            StatusCode::BAD_REQUEST,
            "woocommerce_rest_missing_variation_data",
            "Missing variation data for variable product.",
        );
    }
    if !product.in_stock || !product.purchasable || qty == 0 {
        return wp_error(
            StatusCode::BAD_REQUEST,
            "woocommerce_rest_product_out_of_stock",
            "You cannot add that product to the cart because it is out of stock.",
        );
    }
    let items = inner.carts.entry(token.clone()).or_default();
    items.push(id);
    let items = items.clone();
    let nonce = rotate_nonce(&mut inner);
    drop(inner);
    let resp = (StatusCode::CREATED, axum::Json(cart_json(&items))).into_response();
    with_session(&s, resp, &nonce, &token)
}

pub(super) async fn checkout(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = s.lock();
    if let Some(resp) = refuse_nonce(&s, &inner, &headers) {
        return resp;
    }
    let token = cart_token(&mut inner, &headers);
    let items = inner.carts.get(&token).cloned().unwrap_or_default();
    if items.is_empty() {
        return wp_error(
            StatusCode::BAD_REQUEST,
            "woocommerce_rest_cart_empty",
            "Cannot create order from empty cart.",
        );
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return wp_error(
            StatusCode::BAD_REQUEST,
            "rest_invalid_json",
            "Invalid JSON body passed.",
        );
    };
    if !req["billing_address"].is_object() || !req["shipping_address"].is_object() {
        return wp_error(
            StatusCode::BAD_REQUEST,
            "rest_missing_callback_param",
            "Missing parameter(s): billing_address, shipping_address",
        );
    }
    let email = req["billing_address"]["email"].as_str().unwrap_or("");
    let valid_email = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if !valid_email {
        return wp_error(
            StatusCode::BAD_REQUEST,
            "rest_invalid_param",
            "Invalid parameter(s): billing_address",
        );
    }
    let method = req["payment_method"].as_str().unwrap_or("");
    if method.is_empty() {
        return wp_error(
            StatusCode::BAD_REQUEST,
            "woocommerce_rest_checkout_missing_payment_method",
            "No payment method provided.",
        );
    }
    if method != "cod" || s.faults.cod_disabled {
        return wp_error(
            StatusCode::BAD_REQUEST,
            "woocommerce_rest_checkout_payment_method_disabled",
            "This payment gateway is not available.",
        );
    }
    let id = FIRST_ORDER_ID + inner.orders.len() as u64;
    let status = if s.faults.pending_orders {
        "pending"
    } else {
        "processing"
    };
    let order = StoredOrder {
        id,
        key: format!("wc_order_{:013x}", id * 0x5bd1e995),
        status: status.to_owned(),
        payment_method: method.to_owned(),
        billing_email: email.to_owned(),
        customer_note: req["customer_note"].as_str().unwrap_or("").to_owned(),
        items,
    };
    inner.orders.push(order.clone());
    inner.carts.insert(token.clone(), Vec::new());
    let nonce = rotate_nonce(&mut inner);
    drop(inner);
    let payment_status = if s.faults.pending_orders {
        "pending"
    } else {
        "success"
    };
    let resp = axum::Json(json!({
        "order_id": order.id, "status": order.status, "order_key": order.key,
        "customer_note": order.customer_note, "customer_id": 0,
        "billing_address": req["billing_address"], "shipping_address": req["shipping_address"],
        "payment_method": "cod",
        "payment_result": {"payment_status": payment_status, "payment_details": [],
            "redirect_url": format!("http://shop1.test/checkout/order-received/{id}/?key={}", order.key)}
    }))
    .into_response();
    with_session(&s, resp, &nonce, &token)
}

pub(super) async fn order(
    State(s): State<Arc<Shared>>,
    Path(id): Path<u64>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let inner = s.lock();
    let found = inner.orders.iter().find(|o| o.id == id);
    let Some(order) = found.filter(|o| q.get("key") == Some(&o.key)) else {
        return wp_error(
            StatusCode::UNAUTHORIZED,
            "woocommerce_rest_invalid_order",
            "Invalid order ID or key provided.",
        );
    };
    if q.get("billing_email") != Some(&order.billing_email) {
        return wp_error(
            StatusCode::UNAUTHORIZED,
            "woocommerce_rest_invalid_billing_email",
            "Invalid billing email provided.",
        );
    }
    axum::Json(json!({
        "id": order.id, "status": order.status, "coupons": [],
        "billing_address": {"email": order.billing_email},
        "items": order.items.iter().map(|i| json!({"id": i, "quantity": 1})).collect::<Vec<_>>(),
        "needs_payment": false, "needs_shipping": false, "errors": [],
        "payment_requirements": ["products"]
    }))
    .into_response()
}
