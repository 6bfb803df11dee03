//! `verify::verify_store` against a WooCommerce Store API double (`verify_support`): the
//! happy path places a COD order in six steps; each injected failure is named by the step
//! it breaks, with its HTTP status and a one-line detail; the double's own rules are
//! checked directly, so the happy path proves the client really sends what they require.
#![allow(clippy::unwrap_used, missing_docs)]

mod verify_support;

use std::time::{Duration, Instant};

use urumi_core::verify::{
    MAX_DETAIL, STEPS, VerifyOptions, VerifyReport, VerifyStep, VerifyTarget, verify_store,
};
use verify_support::{CHEAPEST_PURCHASABLE, FIRST_ORDER_ID, Faults, StoreDouble};

fn opts() -> VerifyOptions {
    VerifyOptions {
        step_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

async fn verify_with(faults: Faults) -> (VerifyReport, StoreDouble) {
    let double = StoreDouble::start(faults).await;
    let report = verify_store(&double.target(), &opts()).await;
    (report, double)
}

/// The report failed at `step` (the last listed), with `status`; returns that step.
fn failed_at(report: &VerifyReport, step: &str, status: Option<u16>) -> VerifyStep {
    assert!(!report.ok, "expected a failure at {step}: {report:#?}");
    let last = report.steps.last().expect("at least one step").clone();
    assert_eq!(last.name, step, "{report:#?}");
    assert!(!last.ok, "{report:#?}");
    assert_eq!(last.status, status, "{report:#?}");
    let before: Vec<_> = report.steps.iter().map(|s| s.name.as_str()).collect();
    let position = STEPS.iter().position(|s| *s == step).expect("a known step");
    assert_eq!(
        before,
        STEPS[..=position],
        "steps before the failure, in order"
    );
    assert!(report.steps[..position].iter().all(|s| s.ok));
    assert_eq!(report.failed_step(), Some(&last));
    let detail = last.detail.clone().expect("a failure has a detail");
    assert!(
        !detail.contains('\n') && detail.chars().count() <= MAX_DETAIL,
        "{detail}"
    );
    assert!(!detail.contains('<'), "no markup in the detail: {detail}");
    last
}

fn detail(step: &VerifyStep) -> &str {
    step.detail.as_deref().unwrap_or("")
}

#[tokio::test]
async fn a_working_store_takes_a_cod_order_in_six_steps() {
    let double = StoreDouble::start(Faults::default()).await;
    let started = Instant::now();
    let report = verify_store(&double.target(), &opts()).await;
    let elapsed = started.elapsed();
    eprintln!("happy-path verify against the double: {elapsed:?}");

    assert!(report.ok, "{report:#?}");
    let names: Vec<_> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, STEPS);
    assert!(report.steps.iter().all(|s| s.ok));
    let statuses: Vec<_> = report.steps.iter().map(|s| s.status).collect();
    let expected = [200, 200, 200, 201, 200, 200].map(Some);
    assert_eq!(statuses, expected);
    assert_eq!(report.order_id, Some(FIRST_ORDER_ID));
    assert_eq!(report.failed_step(), None);
    let step_ms: u64 = report.steps.iter().map(|s| s.ms).sum();
    assert!(
        u128::from(step_ms) <= elapsed.as_millis(),
        "step times add up to the run"
    );

    // The cheapest product that can be bought by id alone (not the cheaper variable,
    // sold-out or unpurchasable ones), named as text.
    assert_eq!(
        detail(&report.steps[2]),
        format!("product {CHEAPEST_PURCHASABLE} (Sticker & Pin, price 1500 USD)")
    );
    assert_eq!(
        detail(&report.steps[4]),
        format!("order {FIRST_ORDER_ID} processing")
    );

    // What the store holds: one COD order for that product, marked as a test order.
    let orders = double.orders();
    assert_eq!(orders.len(), 1);
    let order = &orders[0];
    assert_eq!(order.id, FIRST_ORDER_ID);
    assert_eq!(order.payment_method, "cod");
    assert_eq!(order.items, [CHEAPEST_PURCHASABLE]);
    assert_eq!(order.billing_email, "verify@urumi.invalid");
    assert!(
        order.customer_note.contains("verification order"),
        "{}",
        order.customer_note
    );

    // The documented query for the product list.
    let requests = double.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /wp-json/wc/store/v1/products?")
                && r.contains("orderby=price")
                && r.contains("order=asc")),
        "{requests:#?}"
    );
}

#[tokio::test]
async fn the_report_has_the_api_json_shape() {
    let (report, _double) = verify_with(Faults::default()).await;
    let json = serde_json::to_value(&report).unwrap();
    let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["ok", "orderId", "steps"]);
    assert_eq!(json["orderId"], FIRST_ORDER_ID);
    assert_eq!(json["ok"], true);
    for step in json["steps"].as_array().unwrap() {
        let mut keys: Vec<_> = step.as_object().unwrap().keys().cloned().collect();
        keys.retain(|k| k != "detail");
        keys.sort();
        assert_eq!(keys, ["ms", "name", "ok", "status"], "{step}");
        assert!(step["ms"].is_u64());
    }
    assert_eq!(
        json["steps"][0].get("detail"),
        None,
        "no detail key when there is none"
    );
    let back: VerifyReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);

    // A failure before any answer: no orderId, no status.
    let closed = closed_port_target().await;
    let failed = verify_store(&closed, &opts()).await;
    let json = serde_json::to_value(&failed).unwrap();
    assert_eq!(json.get("orderId"), None);
    assert_eq!(json["ok"], false);
    assert_eq!(json["steps"][0].get("status"), None);
    assert_eq!(json["steps"][0]["name"], "storefront");
    assert!(json["steps"][0]["detail"].is_string());
}

#[tokio::test]
async fn a_storefront_error_page_fails_the_storefront_step_with_its_text() {
    let faults = Faults {
        storefront_500: true,
        ..Default::default()
    };
    let (report, double) = verify_with(faults).await;
    let step = failed_at(&report, "storefront", Some(500));
    assert!(
        detail(&step).contains("There has been a critical error on this website."),
        "{step:?}"
    );
    assert_eq!(report.order_id, None);
    assert!(double.orders().is_empty());
}

#[tokio::test]
async fn a_coming_soon_store_fails_the_storefront_step_naming_it() {
    let faults = Faults {
        coming_soon_page: true,
        ..Default::default()
    };
    let (report, _double) = verify_with(faults).await;
    let step = failed_at(&report, "storefront", Some(200));
    assert!(detail(&step).contains("coming-soon mode"), "{step:?}");
    assert!(
        detail(&step).contains("woocommerce_coming_soon"),
        "{step:?}"
    );
}

#[tokio::test]
async fn a_storefront_redirect_fails_naming_where_it_goes() {
    let faults = Faults {
        storefront_redirect: true,
        ..Default::default()
    };
    let (report, _double) = verify_with(faults).await;
    let step = failed_at(&report, "storefront", Some(301));
    assert!(detail(&step).contains("http://localhost:8080/"), "{step:?}");
    assert!(detail(&step).contains("home/siteurl"), "{step:?}");
}

#[tokio::test]
async fn a_forbidden_store_api_fails_the_cart_step() {
    let faults = Faults {
        store_api_forbidden: true,
        ..Default::default()
    };
    let (report, _double) = verify_with(faults).await;
    let step = failed_at(&report, "cart", Some(403));
    assert!(
        detail(&step).contains("rest_forbidden: Sorry, you are not allowed to do that."),
        "{step:?}"
    );
    assert!(detail(&step).contains("coming-soon"), "{step:?}");
}

#[tokio::test]
async fn a_cart_without_the_nonce_header_fails_naming_it() {
    let faults = Faults {
        no_nonce_header: true,
        ..Default::default()
    };
    let (report, _double) = verify_with(faults).await;
    let step = failed_at(&report, "cart", Some(200));
    assert_eq!(detail(&step), "the cart answer has no Nonce header");
}

#[tokio::test]
async fn a_cart_without_the_cart_token_header_fails_naming_it() {
    let faults = Faults {
        no_cart_token: true,
        ..Default::default()
    };
    let (report, _double) = verify_with(faults).await;
    let step = failed_at(&report, "cart", Some(200));
    assert_eq!(detail(&step), "the cart answer has no Cart-Token header");
}

#[tokio::test]
async fn an_empty_catalogue_fails_the_product_step() {
    let faults = Faults {
        no_products: true,
        ..Default::default()
    };
    let (report, _double) = verify_with(faults).await;
    let step = failed_at(&report, "product", Some(200));
    assert_eq!(detail(&step), "the store has no purchasable product");
}

#[tokio::test]
async fn a_lost_nonce_fails_add_item_with_the_store_api_error() {
    let faults = Faults {
        nonce_dropped_on_the_way: true,
        ..Default::default()
    };
    let (report, _double) = verify_with(faults).await;
    let step = failed_at(&report, "add_item", Some(401));
    assert_eq!(
        detail(&step),
        "woocommerce_rest_missing_nonce: Missing the Nonce header. This endpoint requires a \
         valid nonce."
    );
    assert_eq!(report.order_id, None);
}

#[tokio::test]
async fn a_store_without_cod_fails_the_checkout_step() {
    let faults = Faults {
        cod_disabled: true,
        ..Default::default()
    };
    let (report, double) = verify_with(faults).await;
    let step = failed_at(&report, "checkout", Some(400));
    assert!(
        detail(&step).contains("woocommerce_rest_checkout_payment_method_disabled"),
        "{step:?}"
    );
    assert!(detail(&step).contains("Cash on delivery"), "{step:?}");
    assert_eq!(report.order_id, None);
    assert!(double.orders().is_empty());
}

#[tokio::test]
async fn a_pending_order_fails_the_checkout_step_but_is_named() {
    let faults = Faults {
        pending_orders: true,
        ..Default::default()
    };
    let (report, double) = verify_with(faults).await;
    let step = failed_at(&report, "checkout", Some(200));
    assert!(
        detail(&step).contains(&format!("order {FIRST_ORDER_ID} is pending")),
        "{step:?}"
    );
    assert_eq!(
        report.order_id,
        Some(FIRST_ORDER_ID),
        "the order exists: the report names it"
    );
    assert_eq!(double.orders().len(), 1);
}

#[tokio::test]
async fn a_closed_port_fails_the_storefront_step_as_connection_refused() {
    let target = closed_port_target().await;
    let report = verify_store(&target, &opts()).await;
    let step = failed_at(&report, "storefront", None);
    assert_eq!(detail(&step), "connection refused");
}

#[tokio::test]
async fn a_hanging_store_fails_the_step_at_its_deadline() {
    let faults = Faults {
        hang_on: Some("/wp-json/wc/store/v1/checkout"),
        ..Default::default()
    };
    let double = StoreDouble::start(faults).await;
    let opts = VerifyOptions {
        step_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let started = Instant::now();
    let report = verify_store(&double.target(), &opts).await;
    let elapsed = started.elapsed();
    let step = failed_at(&report, "checkout", None);
    assert_eq!(detail(&step), "timed out after 300 ms");
    assert!(step.ms >= 300 && step.ms < 2_000, "{step:?}");
    assert!(
        elapsed < Duration::from_secs(3),
        "the run is bounded: {elapsed:?}"
    );
}

#[tokio::test]
async fn the_host_header_is_sent_when_set() {
    let faults = Faults {
        expect_host: Some("shop1.example.test"),
        ..Default::default()
    };
    let double = StoreDouble::start(faults).await;

    let by_host = double.target().with_host("shop1.example.test");
    let report = verify_store(&by_host, &opts()).await;
    assert!(report.ok, "{report:#?}");
    let hosts = double.hosts();
    assert_eq!(hosts.len(), STEPS.len());
    assert!(hosts.iter().all(|h| h == "shop1.example.test"), "{hosts:?}");

    // Without it the "ingress" does not know the store: the check above is real.
    let report = verify_store(&double.target(), &opts()).await;
    let step = failed_at(&report, "storefront", Some(404));
    assert_eq!(detail(&step), "404 page not found");
}

#[tokio::test]
async fn an_unusable_target_is_a_failed_step_not_a_panic() {
    let target = VerifyTarget::new("ftp://shop1.example.test/".parse().unwrap());
    let report = verify_store(&target, &opts()).await;
    let step = failed_at(&report, "storefront", None);
    assert!(detail(&step).contains("unsupported URL scheme"), "{step:?}");
}

// --- The double's own rules, checked with raw requests -------------------------------

const ADD_ITEM: &str = "/wp-json/wc/store/v1/cart/add-item";
const CHECKOUT: &str = "/wp-json/wc/store/v1/checkout";
const ADDRESS: &str = r#"{"first_name":"A","last_name":"B","address_1":"1 St","city":"C",
    "state":"CA","postcode":"94103","country":"US","email":"verify@urumi.invalid"}"#;

#[tokio::test]
async fn the_double_refuses_add_item_without_a_nonce() {
    let double = StoreDouble::start(Faults::default()).await;
    let (token, _nonce) = double.raw_cart().await;
    let item = r#"{"id":13,"quantity":1}"#;
    let resp = double
        .raw("POST", ADD_ITEM, &[("Cart-Token", &token)], item)
        .await;
    assert_eq!(resp.status, 401);
    assert_eq!(resp.json()["code"], "woocommerce_rest_missing_nonce");
    assert_eq!(resp.json()["data"]["status"], 401);
}

#[tokio::test]
async fn the_double_refuses_checkout_without_payment_method_or_cart_token_or_fresh_nonce() {
    let double = StoreDouble::start(Faults::default()).await;
    let (token, first_nonce) = double.raw_cart().await;
    let session = [
        ("Cart-Token", token.as_str()),
        ("Nonce", first_nonce.as_str()),
    ];
    let add = double
        .raw("POST", ADD_ITEM, &session, r#"{"id":13,"quantity":1}"#)
        .await;
    assert_eq!(add.status, 201, "{}", add.body);
    let nonce = add.header("nonce").expect("a new nonce");
    let fresh = [("Cart-Token", token.as_str()), ("Nonce", nonce.as_str())];
    let addresses = format!(r#""billing_address":{ADDRESS},"shipping_address":{ADDRESS}"#);
    let without_method = format!("{{{addresses}}}");
    let with_method = format!(r#"{{{addresses},"payment_method":"cod"}}"#);

    let resp = double.raw("POST", CHECKOUT, &fresh, &without_method).await;
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.json()["code"],
        "woocommerce_rest_checkout_missing_payment_method"
    );

    let no_token = [("Nonce", nonce.as_str())];
    let resp = double.raw("POST", CHECKOUT, &no_token, &with_method).await;
    assert_eq!(resp.status, 400, "no Cart-Token: a new, empty cart");
    assert_eq!(resp.json()["code"], "woocommerce_rest_cart_empty");

    let resp = double.raw("POST", CHECKOUT, &session, &with_method).await;
    assert_eq!(resp.status, 403, "the nonce from before add-item is stale");
    assert_eq!(resp.json()["code"], "woocommerce_rest_invalid_nonce");

    let resp = double.raw("POST", CHECKOUT, &fresh, &with_method).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let id = resp.json()["order_id"].as_u64().unwrap();
    let key = resp.json()["order_key"].as_str().unwrap().to_owned();
    let order = format!("/wp-json/wc/store/v1/order/{id}?key={key}");
    let resp = double
        .raw("GET", &format!("{order}&billing_email=x%40y.z"), &[], "")
        .await;
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.json()["code"],
        "woocommerce_rest_invalid_billing_email"
    );
    let resp = double
        .raw(
            "GET",
            &format!("{order}&billing_email=verify%40urumi.invalid"),
            &[],
            "",
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
}

#[tokio::test]
async fn the_double_refuses_a_variable_product_and_an_unknown_orderby() {
    let double = StoreDouble::start(Faults::default()).await;
    let products = "/wp-json/wc/store/v1/products";
    let resp = double
        .raw("GET", &format!("{products}?orderby=cheapest"), &[], "")
        .await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["code"], "rest_invalid_param");
    let cheapest = double
        .raw(
            "GET",
            &format!("{products}?orderby=price&order=asc&per_page=1"),
            &[],
            "",
        )
        .await;
    let first = &cheapest.json()[0];
    assert_eq!(
        first["id"], 14,
        "per_page=1 is not enough: the cheapest cannot be bought"
    );
    assert_eq!(first["is_purchasable"], false);

    let (token, nonce) = double.raw_cart().await;
    let session = [("Cart-Token", token.as_str()), ("Nonce", nonce.as_str())];
    let variable = r#"{"id":11,"quantity":1}"#;
    let resp = double.raw("POST", ADD_ITEM, &session, variable).await;
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.json()["code"],
        "woocommerce_rest_missing_variation_data"
    );
}

// --- helpers ---------------------------------------------------------------------------

/// A target on a port nothing listens on.
async fn closed_port_target() -> VerifyTarget {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    VerifyTarget::new(format!("http://{addr}/").parse().unwrap())
}
