//! Bad input never gets in: a generated corpus of several hundred malformed, hostile or
//! simply wrong requests against the real `urumi-server` on the real cluster.
//!
//! ```text
//!  corpus() ── names (unicode, homoglyphs, digits, 41+/63+ chars, reserved, case, dots, …)
//!           ── the same names in paths (GET/DELETE/retry/credentials/verify/events)
//!           ── bodies (64 KiB+, 10,000 levels, wrong types, duplicate/unknown keys, non-UTF-8, …)
//!           ── headers (CR/LF injection, 16 KiB values, duplicates, Content-Type, Authorization)
//!           ── paths (traversal, encoded slashes, double slashes, very long) and queries
//!           ── methods (PUT/PATCH/TRACE/OPTIONS on every route)
//!        │ reqwest, or raw bytes on a TcpStream for what reqwest refuses to send
//!        ▼
//!  every answer: 4xx, application/problem+json with a `code` (and the expected code where
//!  the case fixes one); at the end: no store, no create audited as a success, no namespace
//!  of ours, the process alive, no "panicked" in its log.
//! ```
//!
//! Requests the HTTP parser itself (hyper) refuses — a bare CR or a NUL in a header, obs-fold,
//! two Content-Lengths, a space or raw non-ASCII in the path, a 70 KB URI, a 1 MiB header — never
//! reach the router: hyper answers 400/414/431 with an empty body and closes the connection.
//! Those cases (`Expect::Parser`) must be a 4xx with either a problem body or hyper's empty one.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use support::{Cleanup, Server, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use urumi_core::store::{RESERVED_NAMES, StoreName};

/// Which key a request carries.
#[derive(Clone, Copy, Debug)]
enum Key {
    Acme,
    Admin,
    Globex,
    None,
}

/// A request body.
#[derive(Clone, Debug)]
enum Body {
    Empty,
    /// Sent with a Content-Length.
    Bytes(Vec<u8>),
    /// Sent chunked (no Content-Length), in 8 KiB pieces.
    Chunked(Vec<u8>),
}

/// What is sent.
#[derive(Debug)]
enum Wire {
    Http {
        method: Method,
        path: String,
        key: Key,
        headers: Vec<(&'static str, Vec<u8>)>,
        body: Body,
    },
    /// Bytes written as they are on a fresh connection (`Connection: close` inside).
    Raw(Vec<u8>),
}

/// What the answer must be (always a 4xx).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// A problem+json with this `code`.
    Code(&'static str),
    /// A problem+json with any `code`.
    Problem,
    /// The HTTP parser may refuse it before the router: a problem, or hyper's empty 4xx.
    Parser,
}

#[derive(Debug)]
struct Case {
    group: &'static str,
    what: String,
    wire: Wire,
    expect: Expect,
}

/// An answer as seen on the wire.
#[derive(Debug)]
struct Seen {
    status: u16,
    content_type: Option<String>,
    request_id: bool,
    body: Vec<u8>,
}

const JSON: &str = "application/json";

/// Every byte except ASCII letters, digits and `-` percent-encoded.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn body_json(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("json")
}

struct Corpus {
    tok: String,
    acme_key: String,
    globex_key: String,
    admin_key: String,
    cases: Vec<Case>,
}

impl Corpus {
    fn push(&mut self, group: &'static str, what: impl Into<String>, wire: Wire, expect: Expect) {
        self.cases.push(Case {
            group,
            what: what.into(),
            wire,
            expect,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn http(
        &mut self,
        group: &'static str,
        what: impl Into<String>,
        method: Method,
        path: impl Into<String>,
        key: Key,
        headers: Vec<(&'static str, Vec<u8>)>,
        body: Body,
        expect: Expect,
    ) {
        let wire = Wire::Http {
            method,
            path: path.into(),
            key,
            headers,
            body,
        };
        self.push(group, what, wire, expect);
    }

    /// POST /api/v1/stores with `body` as application/json, acme's key.
    fn create(&mut self, group: &'static str, what: impl Into<String>, body: Vec<u8>, e: Expect) {
        self.http(
            group,
            what,
            Method::POST,
            "/api/v1/stores",
            Key::Acme,
            vec![("content-type", JSON.into())],
            Body::Bytes(body),
            e,
        );
    }

    /// A valid-looking store name unique to this run: if it ever got in, we would see it.
    fn ok_name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.tok)
    }

    /// A raw request head with acme's key: `METHOD target HTTP/1.1`, Host, `Connection:
    /// close`, Authorization, then `extra` header lines (each ending in CRLF), then the
    /// blank line. The target's bytes are sent as they are.
    fn raw_head(&self, method: &[u8], target: &[u8], extra: &[u8]) -> Vec<u8> {
        let mut r = [method, b" ", target].concat();
        r.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        r.extend_from_slice(format!("Authorization: Bearer {}\r\n", self.acme_key).as_bytes());
        r.extend_from_slice(extra);
        r.extend_from_slice(b"\r\n");
        r
    }

    /// A raw POST /api/v1/stores with `extra` header lines, JSON `body` and its length.
    fn raw_post(&self, extra: &[u8], body: &[u8]) -> Vec<u8> {
        let length = format!("Content-Length: {}\r\n", body.len());
        let lines = [
            extra,
            b"Content-Type: application/json\r\n",
            length.as_bytes(),
        ]
        .concat();
        let mut r = self.raw_head(b"POST", b"/api/v1/stores", &lines);
        r.extend_from_slice(body);
        r
    }

    /// A raw GET of `target` with acme's key.
    fn raw_get(&self, target: &[u8], extra: &[u8]) -> Vec<u8> {
        self.raw_head(b"GET", target, extra)
    }
}

/// Invalid store names: each must fail `StoreName::new` (checked when the corpus is built).
fn bad_names(tok: &str) -> Vec<(&'static str, String)> {
    let mut n: Vec<(&'static str, String)> = Vec::new();
    let mut add = |kind: &'static str, s: &str| n.push((kind, s.to_owned()));
    for s in [
        "shöp",
        "магазин",
        "店铺一号",
        "shop🛒",
        "ｓｈｏｐ",
        "shop\u{200b}one",
        "shope\u{301}",
        "ſhop",
        "shop\u{a0}one",
        "shop\u{202e}eno",
        "shop\u{fe0f}",
        "Ωmega",
        "straße",
        "ﬁshop",
        "shop\u{2010}one",
        "shop\u{2212}one",
        "ⓢhop",
        "shop\u{0}",
        "shop\u{1b}[31m",
    ] {
        add("unicode", s);
    }
    // Cyrillic а (U+0430), о (U+043E), ѕ (U+0455), ԁ (U+0501); Greek ο (U+03BF); dotless ı.
    for s in [
        "аdmin",
        "shоp",
        "sh\u{430}p1",
        "ѕhop",
        "shοp",
        "ԁefault",
        "shop\u{131}",
        "kube\u{2011}system",
        "аpi",
        "\u{440}oot",
    ] {
        add("homoglyph", s);
    }
    for s in ["1shop", "123", "9abc", "0-shop", "42shop-ok", "7"] {
        add("leading digit", s);
    }
    let long = [
        "a".repeat(41),
        format!("{tok}-{}", "a".repeat(40 - tok.len())),
        format!("x{}y", "-".repeat(39)),
        "a".repeat(63),
        "a".repeat(64),
        format!("{tok}-{}", "b".repeat(63 - tok.len())),
        "a".repeat(100),
        "a".repeat(253),
        "ab-".repeat(1000) + "c",
    ];
    for s in &long {
        add("too long", s);
    }
    for s in RESERVED_NAMES {
        add("reserved", s);
    }
    for s in ["kube-system", "kube-public", "kube-node-lease", "kube-x1"] {
        add("reserved", s);
    }
    let upper = tok.to_uppercase();
    for s in ["Shop", "SHOP", "shoP", "sHop1", "ADMIN", upper.as_str()] {
        add("uppercase", s);
    }
    let dotted = format!("{tok}.example");
    for s in [
        "shop.one",
        ".shop",
        "shop.",
        "...",
        "a.b.c",
        "store.example.com",
        dotted.as_str(),
    ] {
        add("dots", s);
    }
    let under = format!("{tok}_x");
    for s in ["shop_one", "_shop", "shop_", "___", under.as_str()] {
        add("underscores", s);
    }
    for s in [
        "", " ", "   ", "\t", "\n", " shop1", "shop1 ", "shop one", "a", "ab", "a-", "-",
    ] {
        add("empty or short", s);
    }
    for s in [
        "shop-",
        "-shop",
        "--shop",
        "shop/1",
        "../etc",
        "..",
        "shop%2f1",
        "shop\\1",
        "<script>",
        "shop'--",
        "shop;rm",
        "shop:1",
        "shop@1",
        "shop#1",
        "shop?x=1",
        "shop*",
        "*",
        "${jndi:x}",
        "shop\r\nx",
    ] {
        add("punctuation", s);
    }
    n
}

fn corpus(server: &Server, tok: &str) -> Corpus {
    let mut c = Corpus {
        tok: tok.to_owned(),
        acme_key: server.keys.acme.clone(),
        globex_key: server.keys.globex.clone(),
        admin_key: server.keys.admin.clone(),
        cases: Vec::new(),
    };
    let names = bad_names(tok);
    for (kind, name) in &names {
        assert!(
            StoreName::new(name.clone()).is_err(),
            "corpus bug: {name:?} ({kind}) is a valid name"
        );
    }

    // ── names in the create body (as acme; every tenth as the admin too)
    for (i, (kind, name)) in names.iter().enumerate() {
        let short: String = name.chars().take(24).collect();
        c.create(
            "names",
            format!("{kind} {short:?}"),
            body_json(&json!({"name": name})),
            Expect::Code("invalid_name"),
        );
        if i % 10 == 0 {
            c.http(
                "names",
                format!("{kind} {short:?} (admin)"),
                Method::POST,
                "/api/v1/stores",
                Key::Admin,
                vec![("content-type", JSON.into())],
                Body::Bytes(body_json(&json!({"name": name, "tenant": "acme"}))),
                Expect::Code("invalid_name"),
            );
        }
    }

    // ── names in paths: every store route refuses them (not_found, never a 5xx)
    let path_names: Vec<String> = [
        "аdmin",
        "shöp",
        "1shop",
        "kube-system",
        "admin",
        "Shop",
        "shop.one",
        "shop_one",
        "..%2f..%2fetc",
        "%00",
        "' OR '1'='1",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([format!("{tok}-{}", "a".repeat(60)), "a".repeat(4000)])
    .collect();
    for name in &path_names {
        let p = format!("/api/v1/stores/{}", pct(name));
        let short: String = name.chars().take(20).collect();
        for (method, suffix) in [
            (Method::GET, ""),
            (Method::DELETE, ""),
            (Method::POST, "/retry"),
            (Method::POST, "/upgrade"),
            (Method::POST, "/suspend"),
            (Method::POST, "/resume"),
            (Method::GET, "/credentials"),
            (Method::POST, "/verify"),
            (Method::GET, "/events"),
            (Method::GET, "/usage"),
            (Method::GET, "/revisions"),
            (Method::PATCH, ""),
        ] {
            c.http(
                "path names",
                format!("{method} {short:?}{suffix}"),
                method,
                format!("{p}{suffix}"),
                Key::Acme,
                vec![],
                Body::Empty,
                Expect::Problem,
            );
        }
    }
    for name in ["shöp", "..%2f..%2f", "Shop"] {
        c.http(
            "path names",
            format!("webhook {name:?}"),
            Method::POST,
            format!("/api/v1/webhooks/woocommerce/{}", pct(name)),
            Key::None,
            vec![
                ("x-wc-webhook-topic", b"order.created".to_vec()),
                ("x-wc-webhook-signature", b"AAAA".to_vec()),
                ("content-type", JSON.into()),
            ],
            Body::Bytes(b"{}".to_vec()),
            Expect::Problem,
        );
    }

    bodies(&mut c);
    patch_bodies(&mut c);
    headers(&mut c);
    paths_and_queries(&mut c);
    methods(&mut c);
    c
}

/// `PATCH /api/v1/stores/{name}` bodies that must be refused before anything changes.
fn patch_bodies(c: &mut Corpus) {
    let path = format!("/api/v1/stores/{}", c.ok_name("patch"));
    let cases: [(&str, &[u8], Option<&str>, Expect); 9] = [
        (
            "an array",
            b"[\"large\"]",
            Some(JSON),
            Expect::Code("invalid_spec"),
        ),
        (
            "a string",
            b"\"large\"",
            Some(JSON),
            Expect::Code("invalid_spec"),
        ),
        (
            "plan a number",
            b"{\"plan\":4}",
            Some(JSON),
            Expect::Code("invalid_spec"),
        ),
        (
            "an unknown plan",
            b"{\"plan\":\"huge\"}",
            Some(JSON),
            Expect::Code("invalid_spec"),
        ),
        (
            "an unknown field",
            b"{\"plan\":\"large\",\"name\":\"x\"}",
            Some(JSON),
            Expect::Code("invalid_spec"),
        ),
        (
            "nothing to change",
            b"{}",
            Some(JSON),
            Expect::Code("invalid_spec"),
        ),
        (
            "broken JSON",
            b"{\"plan\":",
            Some(JSON),
            Expect::Code("invalid_spec"),
        ),
        (
            "no content type",
            b"{\"plan\":\"large\"}",
            None,
            Expect::Problem,
        ),
        (
            "text",
            b"plan=large",
            Some("text/plain"),
            Expect::Code("unsupported_media_type"),
        ),
    ];
    for (what, body, content_type, expect) in cases {
        c.http(
            "patch bodies",
            what,
            Method::PATCH,
            path.clone(),
            Key::Acme,
            content_type
                .map(|t| vec![("content-type", t.as_bytes().to_vec())])
                .unwrap_or_default(),
            Body::Bytes(body.to_vec()),
            expect,
        );
    }
}

fn bodies(c: &mut Corpus) {
    let ok = c.ok_name("body");
    let pad = |n: usize| {
        let mut b = format!(r#"{{"name":"{ok}","#).into_bytes();
        b.extend(std::iter::repeat_n(b' ', n));
        b.extend_from_slice(br#""plan":"small"}"#);
        b
    };
    // huge (over the 64 KiB limit: 413)
    c.create(
        "bodies",
        "valid JSON padded to 70 KiB",
        pad(70 * 1024),
        Expect::Code("payload_too_large"),
    );
    c.create(
        "bodies",
        "valid JSON padded to 1 MiB",
        pad(1024 * 1024),
        Expect::Code("payload_too_large"),
    );
    c.create(
        "bodies",
        "valid JSON padded to 3 MiB",
        pad(3 * 1024 * 1024),
        Expect::Code("payload_too_large"),
    );
    c.create(
        "bodies",
        "70 KiB name",
        body_json(&json!({"name": "a".repeat(70 * 1024)})),
        Expect::Code("payload_too_large"),
    );
    for (what, size) in [
        ("chunked 64 KiB + 1", 64 * 1024 + 1),
        ("chunked 900 KiB", 900 * 1024),
    ] {
        c.http(
            "bodies",
            what,
            Method::POST,
            "/api/v1/stores",
            Key::Acme,
            vec![("content-type", JSON.into())],
            Body::Chunked(pad(size)),
            Expect::Code("payload_too_large"),
        );
    }
    // Past what the server drains: written by hand, read while writing (reqwest reports
    // its own write error rather than the early answer).
    let mut raw = c.raw_head(
        b"POST",
        b"/api/v1/stores",
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
    );
    for piece in pad(2 * 1024 * 1024).chunks(8192) {
        raw.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        raw.extend_from_slice(piece);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    c.push(
        "bodies",
        "chunked 2 MiB (raw)",
        Wire::Raw(raw),
        Expect::Code("payload_too_large"),
    );
    c.http(
        "bodies",
        "webhook body of 70 KiB",
        Method::POST,
        format!("/api/v1/webhooks/woocommerce/{ok}"),
        Key::None,
        vec![("x-wc-webhook-topic", b"order.created".to_vec())],
        Body::Bytes(vec![b'x'; 70 * 1024]),
        Expect::Code("payload_too_large"),
    );
    // deeply nested (10,000 levels)
    let deep = |open: &str, close: &str, inner: &str| {
        format!("{}{inner}{}", open.repeat(10_000), close.repeat(10_000)).into_bytes()
    };
    c.create(
        "bodies",
        "10,000 nested arrays",
        deep("[", "]", ""),
        Expect::Problem,
    );
    c.create(
        "bodies",
        "10,000 nested objects",
        deep(r#"{"a":"#, "}", "1"),
        Expect::Problem,
    );
    c.create(
        "bodies",
        "10,000 nested objects under name",
        deep(r#"{"name":"#, "}", "1"),
        Expect::Problem,
    );
    let mut under_plan = format!(r#"{{"name":"{ok}","plan":"#).into_bytes();
    under_plan.extend(deep("[", "]", ""));
    under_plan.push(b'}');
    c.create(
        "bodies",
        "10,000 nested arrays as plan",
        under_plan,
        Expect::Problem,
    );
    let mut under_unknown = format!(r#"{{"name":"{ok}","x":"#).into_bytes();
    under_unknown.extend(deep(r#"{"y":"#, "}", "null"));
    under_unknown.push(b'}');
    c.create(
        "bodies",
        "10,000 nested objects as unknown field",
        under_unknown,
        Expect::Problem,
    );
    // wrong types
    for (what, v) in [
        ("name number", json!({"name": 42})),
        ("name float", json!({"name": 1.5})),
        ("name negative", json!({"name": -1})),
        ("name bool", json!({"name": true})),
        ("name null", json!({"name": null})),
        ("name array", json!({"name": [ok]})),
        ("name object", json!({"name": {"$ne": null}})),
        ("plan number", json!({"name": ok, "plan": 1})),
        ("plan object", json!({"name": ok, "plan": {}})),
        ("plan unknown", json!({"name": ok, "plan": "huge"})),
        ("plan uppercase", json!({"name": ok, "plan": "SMALL"})),
        ("plan empty", json!({"name": ok, "plan": ""})),
        ("engine bool", json!({"name": ok, "engine": false})),
        ("engine unknown", json!({"name": ok, "engine": "magento"})),
        (
            "engine traversal",
            json!({"name": ok, "engine": "../woocommerce"}),
        ),
        ("tenant number", json!({"name": ok, "tenant": 5})),
        ("tenant array", json!({"name": ok, "tenant": ["acme"]})),
        ("tenant empty", json!({"name": ok, "tenant": ""})),
        ("tenant uppercase", json!({"name": ok, "tenant": "ACME"})),
        ("tenant of another", json!({"name": ok, "tenant": "globex"})),
        (
            "tenant traversal",
            json!({"name": ok, "tenant": "../globex"}),
        ),
        (
            "tenant 64 chars",
            json!({"name": ok, "tenant": "t".repeat(64)}),
        ),
        ("no name", json!({"plan": "small"})),
        ("empty object", json!({})),
    ] {
        c.create(
            "bodies",
            format!("wrong type: {what}"),
            body_json(&v),
            Expect::Problem,
        );
    }
    // duplicate keys (both values valid-looking: refusing is the only right answer)
    let (d1, d2) = (c.ok_name("dup1"), c.ok_name("dup2"));
    for (what, s) in [
        ("name twice", format!(r#"{{"name":"{d1}","name":"{d2}"}}"#)),
        (
            "same name twice",
            format!(r#"{{"name":"{d1}","name":"{d1}"}}"#),
        ),
        (
            "plan twice",
            format!(r#"{{"name":"{d1}","plan":"small","plan":"large"}}"#),
        ),
        (
            "tenant twice",
            format!(r#"{{"name":"{d1}","tenant":"acme","tenant":"globex"}}"#),
        ),
        (
            "engine twice",
            format!(r#"{{"name":"{d1}","engine":"woocommerce","engine":"x"}}"#),
        ),
    ] {
        c.create(
            "bodies",
            format!("duplicate key: {what}"),
            s.into_bytes(),
            Expect::Problem,
        );
    }
    // unknown fields
    for key in [
        "size",
        "Name",
        "NAME",
        "__proto__",
        "constructor",
        "status",
        "namespace",
        "version",
        "tenantId",
        "name ",
        "",
        "nаme",
    ] {
        let mut m = serde_json::Map::new();
        m.insert("name".into(), json!(ok));
        m.insert(key.into(), json!("x"));
        c.create(
            "bodies",
            format!("unknown field {key:?}"),
            body_json(&Value::Object(m)),
            Expect::Problem,
        );
    }
    // null, arrays, scalars
    for (what, s) in [
        ("null", "null".to_owned()),
        ("empty array", "[]".to_owned()),
        ("array of the body", format!(r#"[{{"name":"{ok}"}}]"#)),
        ("array of the name", format!(r#"["{ok}"]"#)),
        ("string", format!(r#""{ok}""#)),
        ("number", "42".to_owned()),
        ("true", "true".to_owned()),
    ] {
        c.create(
            "bodies",
            format!("not an object: {what}"),
            s.into_bytes(),
            Expect::Problem,
        );
    }
    // non-UTF-8
    let with = |mid: &[u8]| {
        let mut b = format!(r#"{{"name":"{ok}"#).into_bytes();
        b.extend_from_slice(mid);
        b.extend_from_slice(br#""}"#);
        b
    };
    for (what, bytes) in [
        ("0xff in name", with(b"\xff")),
        ("Latin-1 in name", with(b"\xe9")),
        ("overlong slash", with(b"\xc0\xaf")),
        ("lone continuation", with(b"\x80")),
        ("UTF-8 encoded surrogate", with(b"\xed\xa0\x80")),
        ("truncated sequence", with(b"\xe2\x82")),
    ] {
        c.create(
            "bodies",
            format!("non-UTF-8: {what}"),
            bytes,
            Expect::Problem,
        );
    }
    let utf16: Vec<u8> = std::iter::once(0xfeff_u16)
        .chain(format!(r#"{{"name":"{ok}"}}"#).encode_utf16())
        .flat_map(u16::to_le_bytes)
        .collect();
    c.create(
        "bodies",
        "non-UTF-8: UTF-16LE with BOM",
        utf16.clone(),
        Expect::Problem,
    );
    c.http(
        "bodies",
        "non-UTF-8: UTF-16LE declared as charset=utf-16",
        Method::POST,
        "/api/v1/stores",
        Key::Acme,
        vec![("content-type", b"application/json; charset=utf-16".to_vec())],
        Body::Bytes(utf16),
        Expect::Problem,
    );
    c.create(
        "bodies",
        "UTF-8 BOM before an invalid name",
        b"\xef\xbb\xbf{\"name\":\"BOM_shop\"}".to_vec(),
        Expect::Problem,
    );
    // trailing garbage and other malformed JSON
    let good = format!(r#"{{"name":"{ok}"}}"#);
    for (what, s) in [
        ("word", format!("{good}garbage")),
        ("second object", format!("{good}{good}")),
        ("comma", format!("{good},")),
        ("NUL", format!("{good}\u{0}")),
        ("bracket", format!("{good}]")),
        ("comment", format!("{good}//c")),
        ("unterminated", format!(r#"{{"name":"{ok}""#)),
        ("unquoted key", format!(r#"{{name:"{ok}"}}"#)),
        ("single quotes", format!("{{'name':'{ok}'}}")),
        ("trailing comma", format!(r#"{{"name":"{ok}",}}"#)),
        ("inline comment", format!(r#"{{"name":"{ok}" /* c */}}"#)),
        ("NaN", format!(r#"{{"name":"{ok}","plan":NaN}}"#)),
        (
            "lone surrogate escape",
            r#"{"name":"\ud800shop"}"#.to_owned(),
        ),
        ("NUL escape in name", format!(r#"{{"name":"{ok}\u0000"}}"#)),
        (
            "huge exponent",
            format!(r#"{{"name":"{ok}","plan":1e999}}"#),
        ),
        ("empty", String::new()),
        ("whitespace only", "  \n\t ".to_owned()),
    ] {
        c.create(
            "bodies",
            format!("malformed: {what}"),
            s.into_bytes(),
            Expect::Problem,
        );
    }
}

fn headers(c: &mut Corpus) {
    let ok = c.ok_name("hdr");
    let body = body_json(&json!({"name": ok}));
    let with = |extra: Vec<(&'static str, Vec<u8>)>| {
        let mut h = vec![("content-type", JSON.as_bytes().to_vec())];
        h.extend(extra);
        h
    };
    // Idempotency-Key
    for (what, hs) in [
        (
            "empty Idempotency-Key",
            vec![("idempotency-key", b"".to_vec())],
        ),
        (
            "256-char Idempotency-Key",
            vec![("idempotency-key", vec![b'k'; 256])],
        ),
        (
            "16 KiB Idempotency-Key",
            vec![("idempotency-key", vec![b'k'; 16 * 1024])],
        ),
        (
            "non-ASCII Idempotency-Key",
            vec![("idempotency-key", "ключ".as_bytes().to_vec())],
        ),
        (
            "Idempotency-Key with a tab",
            vec![("idempotency-key", b"a\tb".to_vec())],
        ),
        (
            "duplicate Idempotency-Key",
            vec![
                ("idempotency-key", b"k-one".to_vec()),
                ("idempotency-key", b"k-two".to_vec()),
            ],
        ),
        (
            "duplicate identical Idempotency-Key",
            vec![
                ("idempotency-key", b"k-one".to_vec()),
                ("idempotency-key", b"k-one".to_vec()),
            ],
        ),
    ] {
        c.http(
            "headers",
            what,
            Method::POST,
            "/api/v1/stores",
            Key::Acme,
            with(hs),
            Body::Bytes(body.clone()),
            Expect::Problem,
        );
    }
    c.http(
        "headers",
        "duplicate Idempotency-Key on DELETE",
        Method::DELETE,
        format!("/api/v1/stores/{ok}"),
        Key::Acme,
        vec![
            ("idempotency-key", b"a".to_vec()),
            ("idempotency-key", b"b".to_vec()),
        ],
        Body::Empty,
        Expect::Problem,
    );
    // CR/LF injection through Idempotency-Key, as raw bytes (reqwest refuses them).
    let admin_auth = format!("Authorization: Bearer {}", c.admin_key);
    for (what, inject, expect) in [
        ("bare CR", b"k\rX-Evil: 1".to_vec(), Expect::Parser),
        ("NUL", b"k\x00b".to_vec(), Expect::Parser),
        ("DEL", b"k\x7fb".to_vec(), Expect::Parser),
        ("obs-fold", b"k\r\n folded".to_vec(), Expect::Parser),
        (
            "CRLF + second Idempotency-Key",
            b"k1\r\nIdempotency-Key: k2".to_vec(),
            Expect::Problem,
        ),
        (
            "bare LF + second Idempotency-Key",
            b"k1\nIdempotency-Key: k2".to_vec(),
            Expect::Problem,
        ),
        (
            "CRLF + admin Authorization",
            format!("k\r\n{admin_auth}").into_bytes(),
            Expect::Problem,
        ),
        (
            "CRLF + Content-Length: 0",
            b"k\r\nContent-Length: 0".to_vec(),
            Expect::Parser,
        ),
        (
            "CRLF + Transfer-Encoding",
            b"k\r\nTransfer-Encoding: chunked".to_vec(),
            Expect::Parser,
        ),
        (
            "CRLF CRLF (ends the head)",
            b"k\r\n".to_vec(),
            Expect::Parser,
        ),
        (
            "CRLF + a smuggled request",
            format!("k\r\n\r\nPOST /api/v1/stores HTTP/1.1\r\nHost: x\r\n{admin_auth}")
                .into_bytes(),
            Expect::Parser,
        ),
    ] {
        let mut line = b"Idempotency-Key: ".to_vec();
        line.extend_from_slice(&inject);
        line.extend_from_slice(b"\r\n");
        let raw = c.raw_post(&line, &body);
        c.push(
            "headers",
            format!("CR/LF injection: {what}"),
            Wire::Raw(raw),
            expect,
        );
    }
    c.push(
        "headers",
        "1 MiB header",
        Wire::Raw(c.raw_post(
            &[b"X-Big: ".as_slice(), &vec![b'k'; 1024 * 1024], b"\r\n"].concat(),
            &body,
        )),
        Expect::Parser,
    );
    c.push(
        "headers",
        "NUL in Authorization",
        Wire::Raw(c.raw_get(b"/api/v1/stores", b"Authorization: Bearer x\x00y\r\n")),
        Expect::Parser,
    );
    // oversized values on headers that matter
    let big = vec![b'x'; 16 * 1024];
    c.http(
        "headers",
        "16 KiB Content-Type",
        Method::POST,
        "/api/v1/stores",
        Key::Acme,
        vec![("content-type", [b"application/".as_slice(), &big].concat())],
        Body::Bytes(body.clone()),
        Expect::Code("unsupported_media_type"),
    );
    c.http(
        "headers",
        "16 KiB Last-Event-ID",
        Method::GET,
        "/api/v1/events",
        Key::Acme,
        vec![("last-event-id", big.clone())],
        Body::Empty,
        Expect::Code("invalid_spec"),
    );
    c.http(
        "headers",
        "16 KiB X-Request-Id on a missing store",
        Method::GET,
        format!("/api/v1/stores/{ok}"),
        Key::Acme,
        vec![("x-request-id", big.clone())],
        Body::Empty,
        Expect::Code("not_found"),
    );
    c.http(
        "headers",
        "16 KiB Cookie with an invalid name",
        Method::POST,
        "/api/v1/stores",
        Key::Acme,
        with(vec![("cookie", big.clone())]),
        Body::Bytes(body_json(&json!({"name": "Bad_Name"}))),
        Expect::Code("invalid_name"),
    );
    c.http(
        "headers",
        "16 KiB X-WC-Webhook-Signature",
        Method::POST,
        format!("/api/v1/webhooks/woocommerce/{ok}"),
        Key::None,
        vec![
            ("x-wc-webhook-topic", b"order.created".to_vec()),
            ("x-wc-webhook-signature", big.clone()),
        ],
        Body::Bytes(b"{}".to_vec()),
        Expect::Problem,
    );
    c.http(
        "headers",
        "16 KiB X-WC-Webhook-Topic",
        Method::POST,
        format!("/api/v1/webhooks/woocommerce/{ok}"),
        Key::None,
        vec![("x-wc-webhook-topic", big.clone())],
        Body::Bytes(b"{}".to_vec()),
        Expect::Problem,
    );
    // Content-Type
    for (what, ct) in [
        ("text/plain", Some(b"text/plain".to_vec())),
        ("application/xml", Some(b"application/xml".to_vec())),
        ("form", Some(b"application/x-www-form-urlencoded".to_vec())),
        (
            "multipart",
            Some(b"multipart/form-data; boundary=x".to_vec()),
        ),
        ("application/jsonx", Some(b"application/jsonx".to_vec())),
        ("json (no type)", Some(b"json".to_vec())),
        ("text/json", Some(b"text/json".to_vec())),
        ("empty", Some(b"".to_vec())),
        ("missing", None),
    ] {
        let hs = ct.map(|v| vec![("content-type", v)]).unwrap_or_default();
        c.http(
            "headers",
            format!("Content-Type {what}"),
            Method::POST,
            "/api/v1/stores",
            Key::Acme,
            hs,
            Body::Bytes(body.clone()),
            Expect::Code("unsupported_media_type"),
        );
    }
    c.http(
        "headers",
        "Content-Type json then text",
        Method::POST,
        "/api/v1/stores",
        Key::Acme,
        vec![
            ("content-type", JSON.into()),
            ("content-type", b"text/plain".to_vec()),
        ],
        Body::Bytes(body.clone()),
        Expect::Code("unsupported_media_type"),
    );
    c.http(
        "headers",
        "Content-Type text then json",
        Method::POST,
        "/api/v1/stores",
        Key::Acme,
        vec![
            ("content-type", b"text/plain".to_vec()),
            ("content-type", JSON.into()),
        ],
        Body::Bytes(body.clone()),
        Expect::Code("unsupported_media_type"),
    );
    c.http(
        "headers",
        "no Content-Type on a retry body",
        Method::POST,
        format!("/api/v1/stores/{ok}/retry"),
        Key::Acme,
        vec![],
        Body::Bytes(body.clone()),
        Expect::Code("unsupported_media_type"),
    );
    // Authorization
    let acme = c.acme_key.clone();
    let globex_hash = urumi_http::auth::sha256_hex(&c.globex_key);
    let auth_cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("missing", vec![]),
        ("scheme only", vec![b"Bearer".to_vec()]),
        ("empty token", vec![b"Bearer ".to_vec()]),
        ("blank token", vec![b"Bearer    ".to_vec()]),
        ("Basic", vec![format!("Basic {acme}").into_bytes()]),
        ("Token scheme", vec![format!("Token {acme}").into_bytes()]),
        ("Digest", vec![b"Digest username=\"acme\"".to_vec()]),
        ("no scheme", vec![acme.clone().into_bytes()]),
        ("no space", vec![format!("Bearer{acme}").into_bytes()]),
        ("wrong key", vec![b"Bearer not-a-key-at-all".to_vec()]),
        (
            "key plus junk",
            vec![format!("Bearer {acme} extra").into_bytes()],
        ),
        (
            "key with a prefix",
            vec![format!("Bearer x{acme}").into_bytes()],
        ),
        (
            "the stored hash instead of the key",
            vec![format!("Bearer {globex_hash}").into_bytes()],
        ),
        ("16 KiB token", vec![[b"Bearer ".as_slice(), &big].concat()]),
        ("non-ASCII token", vec!["Bearer ключ".as_bytes().to_vec()]),
        (
            "valid then bogus",
            vec![
                format!("Bearer {acme}").into_bytes(),
                b"Bearer bogus-key-1".to_vec(),
            ],
        ),
        (
            "bogus then valid",
            vec![
                b"Bearer bogus-key-1".to_vec(),
                format!("Bearer {acme}").into_bytes(),
            ],
        ),
        (
            "valid twice",
            vec![
                format!("Bearer {acme}").into_bytes(),
                format!("Bearer {acme}").into_bytes(),
            ],
        ),
    ];
    for (what, values) in auth_cases {
        let mut hs = vec![("content-type", JSON.as_bytes().to_vec())];
        hs.extend(values.into_iter().map(|v| ("authorization", v)));
        c.http(
            "auth",
            format!("Authorization {what}"),
            Method::POST,
            "/api/v1/stores",
            Key::None,
            hs,
            Body::Bytes(body.clone()),
            Expect::Code("unauthorized"),
        );
    }
    for (m, p) in [
        (Method::GET, "/api/v1/stores".to_owned()),
        (Method::GET, format!("/api/v1/stores/{ok}")),
        (Method::DELETE, format!("/api/v1/stores/{ok}")),
        (Method::POST, format!("/api/v1/stores/{ok}/retry")),
        (Method::POST, format!("/api/v1/stores/{ok}/suspend")),
        (Method::POST, format!("/api/v1/stores/{ok}/resume")),
        (Method::GET, format!("/api/v1/stores/{ok}/credentials")),
        (Method::POST, format!("/api/v1/stores/{ok}/verify")),
        (Method::GET, format!("/api/v1/stores/{ok}/events")),
        (Method::GET, "/api/v1/audit".to_owned()),
        (Method::GET, "/api/v1/events".to_owned()),
    ] {
        c.http(
            "auth",
            format!("no key: {m} {p}"),
            m,
            p,
            Key::None,
            vec![],
            Body::Empty,
            Expect::Code("unauthorized"),
        );
    }
    // a tenant key naming another tenant; the other tenant's key on a name of ours
    c.http(
        "auth",
        "globex creating for acme",
        Method::POST,
        "/api/v1/stores",
        Key::Globex,
        vec![("content-type", JSON.into())],
        Body::Bytes(body_json(&json!({"name": ok, "tenant": "acme"}))),
        Expect::Code("forbidden"),
    );
}

fn paths_and_queries(c: &mut Corpus) {
    let ok = c.ok_name("path");
    let long = "a".repeat(8000);
    let get_paths = [
        "/api/v1/stores/..%2f..%2fetc".to_owned(),
        "/api/v1/stores/..%2F..%2Fetc%2Fpasswd".to_owned(),
        "/api/v1/stores/%2e%2e%2f%2e%2e%2fetc".to_owned(),
        "/api/v1/stores/..%5c..%5cetc".to_owned(),
        format!("/api/v1/stores/{ok}%2fcredentials"),
        format!("/api/v1/stores/{ok}%2Fevents"),
        "/api/v1/stores/%00".to_owned(),
        "/api/v1/stores/%ff%fe".to_owned(),
        "/api/v1/stores/%252e%252e%252f".to_owned(),
        "/api/v1//stores".to_owned(),
        "//api/v1/stores".to_owned(),
        "/api/v1/stores//".to_owned(),
        format!("/api//v1/stores/{ok}"),
        format!("/api/v1/stores//{ok}"),
        format!("/api/v1/stores/{ok}//credentials"),
        "/api/v1/stores/".to_owned(),
        "/API/V1/STORES".to_owned(),
        "/api/v1/Stores".to_owned(),
        "/api/v1/stores;x=1".to_owned(),
        "/api/v2/stores".to_owned(),
        "/api/v1/rollouts".to_owned(),
        format!("/api/v1/stores/{long}"),
        format!("/api/v1/stores/{ok}/{long}"),
        format!("/{}", "a/".repeat(4000)),
        format!("/api/v1/{}", "x".repeat(60_000)),
    ];
    for p in get_paths {
        let short: String = p.chars().take(60).collect();
        c.http(
            "paths",
            format!("GET {short}"),
            Method::GET,
            p,
            Key::Acme,
            vec![],
            Body::Empty,
            Expect::Problem,
        );
    }
    for p in [
        "/api/v1/stores/",
        "/api/v1//stores",
        "//api/v1/stores",
        "/api/v1/stores%2f",
    ] {
        c.http(
            "paths",
            format!("POST a valid body to {p}"),
            Method::POST,
            p,
            Key::Acme,
            vec![("content-type", JSON.into())],
            Body::Bytes(body_json(&json!({"name": ok}))),
            Expect::Problem,
        );
    }
    c.http(
        "paths",
        "DELETE ..%2f..%2fetc",
        Method::DELETE,
        "/api/v1/stores/..%2f..%2fetc",
        Key::Admin,
        vec![],
        Body::Empty,
        Expect::Problem,
    );
    // raw request targets that reqwest would normalize or refuse
    for (what, target, expect) in [
        (
            "dot segments",
            b"/api/v1/stores/../../etc/passwd".to_vec(),
            Expect::Problem,
        ),
        (
            "encoded dot segments",
            b"/api/v1/stores/%2e%2e/%2e%2e/etc".to_vec(),
            Expect::Problem,
        ),
        (
            "dot segment back into the API",
            format!("/healthz/../api/v1/stores/{ok}").into_bytes(),
            Expect::Problem,
        ),
        (
            "backslashes",
            b"/api/v1/stores/..\\..\\etc".to_vec(),
            Expect::Parser,
        ),
        ("space", b"/api/v1/stores/a b".to_vec(), Expect::Parser),
        (
            "raw non-ASCII",
            b"/api/v1/stores/\xff\xfe".to_vec(),
            Expect::Parser,
        ),
        (
            "raw UTF-8",
            "/api/v1/stores/shöp".as_bytes().to_vec(),
            Expect::Parser,
        ),
        (
            "70 KB path",
            [b"/api/v1/stores/".as_slice(), &vec![b'a'; 70_000]].concat(),
            Expect::Parser,
        ),
        (
            "absolute form",
            format!("http://evil.example/api/v1/stores/{ok}").into_bytes(),
            Expect::Problem,
        ),
        ("asterisk form", b"*".to_vec(), Expect::Parser),
        ("empty", b"".to_vec(), Expect::Parser),
    ] {
        let raw = c.raw_get(&target, b"");
        c.push(
            "paths",
            format!("raw target: {what}"),
            Wire::Raw(raw),
            expect,
        );
    }
    // queries
    let q = |s: &str| s.to_owned();
    for p in [
        q("/api/v1/stores?limit=-1"),
        q("/api/v1/stores?limit=0"),
        q("/api/v1/stores?limit=1001"),
        q("/api/v1/stores?limit=1e3"),
        q("/api/v1/stores?limit=99999999999999999999"),
        q("/api/v1/stores?limit=%ff"),
        q("/api/v1/stores?limit=1&limit=2"),
        q("/api/v1/stores?status=READY!"),
        q("/api/v1/stores?status=Ready%00"),
        q("/api/v1/stores?status=ready"),
        q("/api/v1/stores?tenant=../globex"),
        q("/api/v1/stores?tenant=ACME"),
        q("/api/v1/stores?cursor=x"),
        format!("/api/v1/stores?cursor={}", "c".repeat(5000)),
        q("/api/v1/stores?cursor=%ff%fe"),
        q("/api/v1/audit?since=monday"),
        q("/api/v1/audit?since=2024-13-01T00:00:00Z"),
        q("/api/v1/audit?since=%2B275760-09-13T00:00:00Z"),
        q("/api/v1/audit?limit=0"),
        q("/api/v1/audit?cursor=%00"),
        q("/api/v1/events?after=-1"),
        q("/api/v1/events?after=abc"),
        q("/api/v1/events?after=1.5"),
        q("/api/v1/events?after=18446744073709551616"),
        format!("/api/v1/stores/{ok}/events?limit=0"),
        format!("/api/v1/stores/{ok}/events?cursor=zz"),
    ] {
        let short: String = p.chars().take(60).collect();
        c.http(
            "queries",
            format!("GET {short}"),
            Method::GET,
            p,
            Key::Admin,
            vec![],
            Body::Empty,
            Expect::Problem,
        );
    }
    for v in ["abc", "-1", "1 2", "１"] {
        c.http(
            "queries",
            format!("Last-Event-ID {v:?}"),
            Method::GET,
            "/api/v1/events",
            Key::Acme,
            vec![("last-event-id", v.as_bytes().to_vec())],
            Body::Empty,
            Expect::Code("invalid_spec"),
        );
    }
}

fn methods(c: &mut Corpus) {
    let ok = c.ok_name("meth");
    let routes = [
        "/api/v1/stores".to_owned(),
        format!("/api/v1/stores/{ok}"),
        format!("/api/v1/stores/{ok}/retry"),
        format!("/api/v1/stores/{ok}/upgrade"),
        format!("/api/v1/stores/{ok}/suspend"),
        format!("/api/v1/stores/{ok}/resume"),
        format!("/api/v1/stores/{ok}/credentials"),
        format!("/api/v1/stores/{ok}/verify"),
        format!("/api/v1/stores/{ok}/events"),
        format!("/api/v1/stores/{ok}/usage"),
        format!("/api/v1/stores/{ok}/revisions"),
        "/api/v1/plans".to_owned(),
        "/api/v1/audit".to_owned(),
        "/api/v1/events".to_owned(),
        format!("/api/v1/webhooks/woocommerce/{ok}"),
        "/healthz".to_owned(),
        "/readyz".to_owned(),
        "/metrics".to_owned(),
        "/openapi.json".to_owned(),
        "/".to_owned(),
    ];
    let create = body_json(&json!({"name": ok, "plan": "large"}));
    for route in &routes {
        for method in [Method::PUT, Method::PATCH, Method::TRACE, Method::OPTIONS] {
            if method == Method::PATCH && *route == format!("/api/v1/stores/{ok}") {
                continue; // the plan change, in "patch bodies"
            }
            let with_body = method == Method::PUT || method == Method::PATCH;
            c.http(
                "methods",
                format!("{method} {route}"),
                method,
                route.clone(),
                Key::Acme,
                if with_body {
                    vec![("content-type", JSON.into())]
                } else {
                    vec![]
                },
                if with_body {
                    Body::Bytes(create.clone())
                } else {
                    Body::Empty
                },
                Expect::Code("method_not_allowed"),
            );
        }
    }
    for (m, p) in [
        ("DELETE", "/api/v1/stores".to_owned()),
        ("POST", format!("/api/v1/stores/{ok}")),
        ("GET", format!("/api/v1/stores/{ok}/retry")),
        ("GET", format!("/api/v1/stores/{ok}/suspend")),
        ("DELETE", format!("/api/v1/stores/{ok}/resume")),
        ("POST", format!("/api/v1/stores/{ok}/credentials")),
        ("GET", format!("/api/v1/stores/{ok}/verify")),
        ("DELETE", "/healthz".to_owned()),
        ("PROPFIND", "/api/v1/stores".to_owned()),
        ("FOO", format!("/api/v1/stores/{ok}")),
    ] {
        let method = Method::from_bytes(m.as_bytes()).expect("method");
        c.http(
            "methods",
            format!("{m} {p}"),
            method,
            p,
            Key::Acme,
            vec![("content-type", JSON.into())],
            Body::Bytes(create.clone()),
            Expect::Code("method_not_allowed"),
        );
    }
}

async fn send_http(
    server: &Server,
    http: &reqwest::Client,
    c: &Corpus,
    wire: Wire,
) -> Result<Seen, String> {
    match wire {
        Wire::Raw(bytes) => send_raw(server, bytes).await,
        Wire::Http {
            method,
            path,
            key,
            headers,
            body,
        } => {
            let mut r = http.request(method, format!("{}{path}", server.url));
            let key = match key {
                Key::Acme => Some(&c.acme_key),
                Key::Admin => Some(&c.admin_key),
                Key::Globex => Some(&c.globex_key),
                Key::None => None,
            };
            if let Some(k) = key {
                r = r.bearer_auth(k);
            }
            let mut map = reqwest::header::HeaderMap::new();
            for (name, value) in headers {
                let value = HeaderValue::from_bytes(&value)
                    .map_err(|e| format!("corpus bug: header {name}: {e}"))?;
                map.append(HeaderName::from_static(name), value);
            }
            r = r.headers(map);
            r = match body {
                Body::Empty => r,
                Body::Bytes(b) => r.body(b),
                Body::Chunked(b) => {
                    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                        b.chunks(8192).map(|c| Ok(c.to_vec())).collect();
                    r.body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
                }
            };
            let res = r.send().await.map_err(|e| format!("no answer: {e:?}"))?;
            let status = res.status().as_u16();
            let content_type = res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let request_id = res.headers().contains_key("x-request-id");
            let body = res
                .bytes()
                .await
                .map_err(|e| format!("no body: {e}"))?
                .to_vec();
            Ok(Seen {
                status,
                content_type,
                request_id,
                body,
            })
        }
    }
}

/// Writes `bytes` on a new connection (reading at the same time: the server may answer
/// before it has read everything) and parses the first response.
async fn send_raw(server: &Server, bytes: Vec<u8>) -> Result<Seen, String> {
    let addr = server.url.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&bytes).await;
        let _ = wr.flush().await;
        wr
    });
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let _ = writer.await;
    if read.is_err() && buf.is_empty() {
        return Err("no answer within 20 s".to_owned());
    }
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            format!(
                "no response head in {:?}",
                String::from_utf8_lossy(&buf[..buf.len().min(200)])
            )
        })?;
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let mut content_type = None;
    let mut length = None;
    let mut request_id = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = Some(value.trim().to_owned()),
            "content-length" => length = value.trim().parse::<usize>().ok(),
            "x-request-id" => request_id = true,
            _ => {}
        }
    }
    let rest = &buf[head_end + 4..];
    let body = rest[..length.unwrap_or(rest.len()).min(rest.len())].to_vec();
    Ok(Seen {
        status,
        content_type,
        request_id,
        body,
    })
}

/// Why `seen` is not an acceptable answer to a case expecting `expect`, if it is not.
fn judge(expect: Expect, seen: &Seen) -> Option<String> {
    if !(400..500).contains(&seen.status) {
        return Some(format!("status {}", seen.status));
    }
    let problem = seen.content_type.as_deref() == Some("application/problem+json");
    if expect == Expect::Parser && !problem {
        // hyper's own refusal: empty body, never reached the router (no request id).
        return (!seen.body.is_empty() || seen.request_id)
            .then(|| format!("{} from the router without a problem body", seen.status));
    }
    if !problem {
        return Some(format!("content-type {:?}", seen.content_type));
    }
    let json: Value = match serde_json::from_slice(&seen.body) {
        Ok(v) => v,
        Err(e) => return Some(format!("problem body is not JSON: {e}")),
    };
    let code = json["code"].as_str().unwrap_or_default();
    if code.is_empty() {
        return Some(format!("no code in {json}"));
    }
    if json["status"] != seen.status {
        return Some(format!("body status {} != {}", json["status"], seen.status));
    }
    if !json["title"].is_string() || !json["detail"].is_string() {
        return Some(format!("no title/detail in {json}"));
    }
    match expect {
        Expect::Code(want) if want != code => Some(format!("code {code}, expected {want}: {json}")),
        _ => None,
    }
}

/// `store-*` namespaces on the cluster now.
fn store_namespaces() -> BTreeSet<String> {
    let out = std::process::Command::new("kubectl")
        .args([
            "get",
            "namespaces",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .output()
        .expect("kubectl get namespaces");
    assert!(
        out.status.success(),
        "kubectl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|n| n.starts_with("store-"))
        .map(str::to_owned)
        .collect()
}

fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_bad_input_gets_in() {
    let server = Server::start();
    let tok = unique("bic");
    let before = store_namespaces();
    let mut corpus = corpus(&server, &tok);
    // Should anything get in after all, its namespace does not outlive the test.
    let mut cleanup = Cleanup::default();
    for suffix in ["body", "dup1", "dup2", "hdr", "path", "meth"] {
        cleanup.add(&corpus.ok_name(suffix));
    }
    let cases = std::mem::take(&mut corpus.cases);
    assert!(cases.len() >= 200, "only {} cases", cases.len());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");

    let (mut n4xx, mut n5xx, mut parser) = (0usize, 0usize, 0usize);
    let mut groups: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut failures = Vec::new();
    let total = cases.len();
    for case in cases {
        *groups.entry(case.group).or_default() += 1;
        match send_http(&server, &http, &corpus, case.wire).await {
            Err(e) => failures.push(format!("[{}] {}: {e}", case.group, case.what)),
            Ok(seen) => {
                match seen.status {
                    400..=499 => n4xx += 1,
                    500..=599 => n5xx += 1,
                    _ => {}
                }
                if seen.content_type.as_deref() != Some("application/problem+json")
                    && seen.status < 500
                {
                    parser += 1;
                }
                if let Some(why) = judge(case.expect, &seen) {
                    let body: String = String::from_utf8_lossy(&seen.body)
                        .chars()
                        .take(300)
                        .collect();
                    failures.push(format!("[{}] {}: {why} — {body}", case.group, case.what));
                }
            }
        }
    }

    // Nothing was created: no record, no successful create audited, no namespace of ours.
    let admin = server.client(&server.keys.admin);
    let listed = admin.get("/api/v1/stores?limit=1000").await;
    assert_eq!(listed.status, 200, "{}", listed.json);
    if listed.json["items"] != json!([]) {
        failures.push(format!("stores were created: {}", listed.json["items"]));
    }
    let audit = admin
        .get("/api/v1/audit?action=store.create&limit=1000")
        .await;
    let created: Vec<&Value> = audit.json["items"]
        .as_array()
        .map(|a| a.iter().filter(|e| e["outcome"] == "success").collect())
        .unwrap_or_default();
    if !created.is_empty() {
        failures.push(format!("creates audited as success: {created:?}"));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = store_namespaces();
    let new: Vec<&String> = after.difference(&before).collect();
    let ours: Vec<&&String> = new.iter().filter(|n| n.contains(&tok)).collect();
    if !ours.is_empty() {
        failures.push(format!("namespaces created by this server: {ours:?}"));
    }
    if new.len() > ours.len() {
        eprintln!(
            "(store namespaces created meanwhile by other tests: {})",
            new.len() - ours.len()
        );
    }
    // Still alive, never panicked.
    let pid = server.pid().expect("running");
    if !process_alive(pid) {
        failures.push(format!("urumi-server (pid {pid}) is gone"));
    } else if server.anonymous().get("/healthz").await.status != 200 {
        failures.push("urumi-server does not answer /healthz".to_owned());
    }
    let log = server.log();
    if log.contains("panicked") {
        failures.push(format!("the server log has a panic:\n{log}"));
    }

    let per_group: Vec<String> = groups.iter().map(|(g, n)| format!("{g} {n}")).collect();
    println!("groups: {}", per_group.join(", "));
    support::report_count(&format!(
        "bad input: {total} requests tried, 4xx: {n4xx} ({} problem+json, {parser} refused by \
         the HTTP parser before the router), 5xx: {n5xx}, cases failed: {}",
        n4xx - parser,
        failures.len()
    ));
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(n5xx, 0);
    assert_eq!(n4xx, total);
}
