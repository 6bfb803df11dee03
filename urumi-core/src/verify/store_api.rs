//! The parts of the WooCommerce Store API (`/wp-json/wc/store/v1`) that `verify` reads and
//! sends, as documented in WooCommerce's `src/StoreApi/docs` (cart, cart-items, products,
//! checkout, order, nonce-tokens, cart-tokens). Only the fields used are modelled; every
//! other field is ignored, so newer WooCommerce versions still parse.

use serde::{Deserialize, Serialize};

use super::TestCustomer;

/// The Store API's root, relative to the storefront's base URL.
pub(crate) const ROOT: &str = "wp-json/wc/store/v1/";
/// Response header carrying the nonce to send back as the `Nonce` request header.
pub(crate) const NONCE: &str = "nonce";
/// Response header carrying the cart token to send back as the `Cart-Token` request header.
pub(crate) const CART_TOKEN: &str = "cart-token";
/// How many of the cheapest products are looked at for one that can be bought directly.
pub(crate) const PRODUCT_PAGE: u32 = 20;
/// The class of WooCommerce's coming-soon block (`woocommerce/coming-soon` pattern), on
/// the page a visitor gets while the store is hidden.
pub(crate) const COMING_SOON_MARKER: &str = "wp-block-woocommerce-coming-soon";

/// One entry of `GET /products`.
#[derive(Deserialize, Debug)]
pub(crate) struct Product {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    /// `simple`, `variable`, `grouped`, `external`, … (absent on older WooCommerce).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub is_purchasable: bool,
    #[serde(default = "yes")]
    pub is_in_stock: bool,
    #[serde(default)]
    pub has_options: bool,
    #[serde(default)]
    pub prices: Option<Prices>,
}

fn yes() -> bool {
    true
}

impl Product {
    /// Whether `cart/add-item` with only this id and a quantity can succeed: variable
    /// and grouped products need a variation or children, external ones are sold elsewhere.
    pub fn can_be_added_directly(&self) -> bool {
        let simple = match self.kind.as_deref() {
            Some(kind) => kind == "simple",
            None => !self.has_options,
        };
        simple && self.is_purchasable && self.is_in_stock
    }
}

/// A product's price, in the currency's minor unit (`"1105"` with minor unit 2 = 11.05).
#[derive(Deserialize, Debug)]
pub(crate) struct Prices {
    #[serde(default)]
    pub price: String,
    #[serde(default)]
    pub currency_code: String,
}

/// The cart as `GET /cart` and `POST /cart/add-item` return it (items only).
#[derive(Deserialize, Debug)]
pub(crate) struct Cart {
    #[serde(default)]
    pub items: Vec<CartItem>,
}

/// One line of the cart.
#[derive(Deserialize, Debug)]
pub(crate) struct CartItem {
    pub id: u64,
}

/// `POST /cart/add-item`.
#[derive(Serialize)]
pub(crate) struct AddItem {
    pub id: u64,
    pub quantity: u32,
}

/// `POST /checkout`.
#[derive(Serialize)]
pub(crate) struct Checkout<'a> {
    pub billing_address: Address<'a>,
    pub shipping_address: Address<'a>,
    pub customer_note: &'a str,
    pub payment_method: &'a str,
}

/// A billing or shipping address (the shipping one without email).
#[derive(Serialize)]
pub(crate) struct Address<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub company: &'a str,
    pub address_1: &'a str,
    pub address_2: &'a str,
    pub city: &'a str,
    pub state: &'a str,
    pub postcode: &'a str,
    pub country: &'a str,
    pub phone: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
}

impl<'a> Address<'a> {
    /// The customer's address; with `email` for billing, without for shipping.
    pub fn of(c: &'a TestCustomer, with_email: bool) -> Self {
        Self {
            first_name: &c.first_name,
            last_name: &c.last_name,
            company: "",
            address_1: &c.address_1,
            address_2: "",
            city: &c.city,
            state: &c.state,
            postcode: &c.postcode,
            country: &c.country,
            phone: &c.phone,
            email: with_email.then_some(c.email.as_str()),
        }
    }
}

/// What `POST /checkout` answers.
#[derive(Deserialize, Debug)]
pub(crate) struct Placed {
    pub order_id: u64,
    pub status: String,
    #[serde(default)]
    pub order_key: String,
    #[serde(default)]
    pub payment_result: Option<PaymentResult>,
}

/// The gateway's verdict inside the checkout answer.
#[derive(Deserialize, Debug)]
pub(crate) struct PaymentResult {
    #[serde(default)]
    pub payment_status: String,
}

/// What `GET /order/{id}?key=…&billing_email=…` answers (the fields checked).
#[derive(Deserialize, Debug)]
pub(crate) struct Order {
    pub id: u64,
    pub status: String,
}
