//! The dashboard: one HTML page with its CSS and JS inlined, embedded in the binary.
//!
//! ```text
//!  assets/index.html ─┐
//!  assets/app.css ────┼─ include_str! ─▶ page() (built once) ─▶ GET /
//!  assets/app.js ─────┘
//!  in the browser: API key (sessionStorage) ─▶ fetch /api/v1/… with Authorization
//!                  fetch-based SSE reader of /api/v1/events ─▶ the list updates live
//! ```

use std::sync::LazyLock;

const HTML: &str = include_str!("../assets/index.html");
const CSS: &str = include_str!("../assets/app.css");
const JS: &str = include_str!("../assets/app.js");

static PAGE: LazyLock<String> =
    LazyLock::new(|| HTML.replace("/*APP_CSS*/", CSS).replace("/*APP_JS*/", JS));

/// The dashboard's HTML, with its CSS and JS.
pub fn page() -> &'static str {
    PAGE.as_str()
}
