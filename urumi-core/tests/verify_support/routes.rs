//! The double's router: the host gate, the storefront pages and the catalogue.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::Shared;
use super::cart::{add_item, cart, checkout, order};

pub(super) const API: &str = "/wp-json/wc/store/v1";

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(storefront))
        .route(&format!("{API}/cart"), get(cart))
        .route(&format!("{API}/products"), get(products))
        .route(&format!("{API}/cart/add-item"), post(add_item))
        .route(&format!("{API}/checkout"), post(checkout))
        .route(&format!("{API}/order/{{id}}"), get(order))
        .fallback(no_route)
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

pub(super) struct Product {
    pub(super) id: u64,
    pub(super) name: &'static str,
    pub(super) kind: &'static str,
    pub(super) price: u64,
    pub(super) in_stock: bool,
    pub(super) purchasable: bool,
}

/// The catalogue: the cheapest product that can be bought by id alone is 13.
pub(super) const CATALOGUE: [Product; 5] = [
    Product {
        id: 10,
        name: "Premium Hoodie",
        kind: "simple",
        price: 4500,
        in_stock: true,
        purchasable: true,
    },
    Product {
        id: 11,
        name: "Variable Tee",
        kind: "variable",
        price: 900,
        in_stock: true,
        purchasable: true,
    },
    Product {
        id: 12,
        name: "Sold-out Cap",
        kind: "simple",
        price: 1200,
        in_stock: false,
        purchasable: true,
    },
    Product {
        id: 13,
        name: "Sticker &amp; Pin",
        kind: "simple",
        price: 1500,
        in_stock: true,
        purchasable: true,
    },
    Product {
        id: 14,
        name: "Unpriced Draft",
        kind: "simple",
        price: 300,
        in_stock: true,
        purchasable: false,
    },
];

pub(super) fn wp_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"code": code, "message": message, "data": {"status": status.as_u16()}});
    (status, axum::Json(body)).into_response()
}

/// Host check, logging, hangs and the forbidden Store API, before any route.
async fn gate(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let path = req.uri().path().to_owned();
    {
        let mut inner = s.lock();
        inner.hosts.push(host.clone());
        let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("");
        inner.requests.push(format!("{} {pq}", req.method()));
    }
    if let Some(expected) = s.faults.expect_host
        && host != expected
    {
        return (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    }
    if let Some(prefix) = s.faults.hang_on
        && path.starts_with(prefix)
    {
        std::future::pending::<()>().await;
    }
    if s.faults.store_api_forbidden && path.starts_with(API) {
        return wp_error(
            StatusCode::FORBIDDEN,
            "rest_forbidden",
            "Sorry, you are not allowed to do that.",
        );
    }
    next.run(req).await
}

async fn no_route() -> Response {
    wp_error(
        StatusCode::NOT_FOUND,
        "rest_no_route",
        "No route was found matching the URL and request method.",
    )
}

const CRITICAL_ERROR_PAGE: &str = "<!DOCTYPE html>\n<html dir=\"ltr\" lang=\"en-US\">\n<head>\n\
    <meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\" />\n\
    <title>WordPress &rsaquo; Error</title>\n<style type=\"text/css\">html { background: #f1f1f1; }\n\
    body { background: #fff; }</style></head>\n<body id=\"error-page\">\n\
    <div class=\"wp-die-message\"><p>There has been a critical error on this website.</p>\
    <p><a href=\"https://wordpress.org/documentation/article/faq-troubleshooting/\">Learn more \
    about troubleshooting WordPress.</a></p></div></body>\n</html>\n";

const COMING_SOON_PAGE: &str = "<!DOCTYPE html><html><head><title>Shop1 &ndash; Coming soon</title>\
    </head><body class=\"home woocommerce-coming-soon\"><div class=\"woocommerce-coming-soon-entire-site \
    wp-block-woocommerce-coming-soon\"><h1 class=\"wp-block-heading\">Pardon our dust! We&#8217;re \
    working on something amazing &mdash; check back soon!</h1></div></body></html>";

const SHOP_PAGE: &str = "<!DOCTYPE html><html><head><title>Shop1 &ndash; Just another WooCommerce store\
    </title></head><body class=\"home wp-theme-storefront woocommerce-js\"><h1>Shop1</h1>\
    <ul class=\"products\"><li class=\"product\">Sticker &amp; Pin</li></ul></body></html>";

async fn storefront(State(s): State<Arc<Shared>>) -> Response {
    let f = &s.faults;
    if f.storefront_500 {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            CRITICAL_ERROR_PAGE,
        )
            .into_response();
    }
    if f.storefront_redirect {
        return (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, "http://localhost:8080/")],
        )
            .into_response();
    }
    let page = if f.coming_soon_page {
        COMING_SOON_PAGE
    } else {
        SHOP_PAGE
    };
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

async fn products(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    const ORDERBY: [&str; 11] = [
        "date",
        "modified",
        "id",
        "include",
        "title",
        "slug",
        "price",
        "popularity",
        "rating",
        "menu_order",
        "comment_count",
    ];
    let orderby = q.get("orderby").map(String::as_str).unwrap_or("date");
    let order = q.get("order").map(String::as_str).unwrap_or("desc");
    if !ORDERBY.contains(&orderby) || !["asc", "desc"].contains(&order) {
        return wp_error(
            StatusCode::BAD_REQUEST,
            "rest_invalid_param",
            "Invalid parameter(s): orderby",
        );
    }
    let per_page: usize = q.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(10);
    if s.faults.no_products {
        return axum::Json(json!([])).into_response();
    }
    let mut list: Vec<&Product> = CATALOGUE.iter().collect();
    match orderby {
        "price" => list.sort_by_key(|p| p.price),
        _ => list.sort_by_key(|p| p.id),
    }
    if order == "desc" {
        list.reverse();
    }
    let body: Vec<Value> = list
        .into_iter()
        .take(per_page)
        .map(|p| {
            json!({"id": p.id, "name": p.name, "type": p.kind, "variation": "",
                   "has_options": p.kind == "variable", "is_purchasable": p.purchasable,
                   "is_in_stock": p.in_stock, "prices": {"price": p.price.to_string(),
                   "currency_code": "USD", "currency_minor_unit": 2}})
        })
        .collect();
    axum::Json(Value::Array(body)).into_response()
}
