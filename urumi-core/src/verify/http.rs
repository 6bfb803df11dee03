//! The HTTP side of `verify`: one small client per run, one request per step under the
//! step's deadline, the answer read into memory (bounded), and transport failures named
//! by class (connection refused, timeout, DNS, TLS) instead of by error chain.
//!
//! ## Why hyper-util's legacy client and hyper-rustls
//!
//! Both are already in urumi-core's dependency tree through kube (same versions), so the
//! verifier adds no HTTP stack of its own. `reqwest` would be the friendlier API, but its
//! newer rustls feature selects the `aws-lc-rs` provider (a slow C build), and the crate
//! is otherwise built on rustls with the `ring` provider; here the provider is chosen
//! explicitly (`rustls::crypto::ring`), so nothing depends on a process-wide default.
//! Six sequential requests need no more than `Client::request` and a body collector.

use std::error::Error as StdError;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::ServerName;
use url::Url;

use super::VerifyTarget;

/// The most of an answer's body that is read; a storefront page is far below this.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// What the store answered: status, headers and the whole (bounded) body.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A request that got no answer, described in one short line (the step's `detail`).
pub(crate) type TransportError = String;

/// The client for one verification run: the store's base URL, the `Host` to send, and
/// the per-step deadline. Connections are kept alive between steps.
pub(crate) struct StoreClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: Url,
    host: Option<HeaderValue>,
    timeout: Duration,
}

impl StoreClient {
    /// Builds the client; fails (with a one-line reason) only on an unusable target.
    pub fn new(target: &VerifyTarget, timeout: Duration) -> Result<Self, TransportError> {
        let mut base = target.base_url.clone();
        match base.scheme() {
            "http" | "https" => {}
            other => return Err(format!("unsupported URL scheme {other:?} (http or https)")),
        }
        if !base.path().ends_with('/') {
            // `join` replaces the last segment of a path without a trailing slash.
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let host = match &target.host {
            Some(h) => {
                Some(HeaderValue::from_str(h).map_err(|_| format!("invalid Host header {h:?}"))?)
            }
            None => None,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup failed: {e}"))?
            .with_root_certificates(roots(base.scheme() == "https"))
            .with_no_client_auth();
        let builder = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        // Through an in-cluster Service URL the certificate to check is the store's name.
        let builder = match target.host.as_deref().map(server_name) {
            Some(Some(name)) => {
                builder.with_server_name_resolver(FixedServerNameResolver::new(name))
            }
            _ => builder,
        };
        let connector = builder.enable_http1().build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            client,
            base,
            host,
            timeout,
        })
    }

    /// The absolute URL of `path` (relative, e.g. `wp-json/wc/store/v1/cart`) on the store.
    pub fn url(&self, path: &str) -> Result<Url, TransportError> {
        self.base
            .join(path)
            .map_err(|e| format!("cannot build the URL of {path}: {e}"))
    }

    /// Sends one request and reads its whole answer, all within the step deadline.
    /// `json` is sent as the body with `Content-Type: application/json`.
    pub async fn send(
        &self,
        method: Method,
        url: &Url,
        headers: &[(HeaderName, HeaderValue)],
        json: Option<&serde_json::Value>,
    ) -> Result<Answer, TransportError> {
        let uri: Uri = url
            .as_str()
            .parse()
            .map_err(|e| format!("invalid URL {url}: {e}"))?;
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(host) = &self.host {
            req = req.header(HOST, host.clone());
        }
        req = req
            .header(
                USER_AGENT,
                concat!("urumi-verify/", env!("CARGO_PKG_VERSION")),
            )
            .header(ACCEPT, "application/json, text/html;q=0.9, */*;q=0.5");
        for (name, value) in headers {
            req = req.header(name.clone(), value.clone());
        }
        let body = match json {
            Some(v) => {
                req = req.header(CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(v.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req
            .body(body)
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| transport_detail(&e))?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        format!("the answer is larger than {} MiB", MAX_BODY / (1024 * 1024))
                    } else {
                        transport_detail(e.as_ref())
                    }
                })?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("timed out after {}", human(self.timeout))),
        }
    }
}

/// The TLS server name for a `Host` value (its port, if any, removed).
fn server_name(host: &str) -> Option<ServerName<'static>> {
    let bare = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) && !name.ends_with(']') => {
            name
        }
        _ => host,
    };
    ServerName::try_from(bare.trim_matches(['[', ']']).to_owned()).ok()
}

/// The platform's trusted roots, read once and only when an `https` store is verified
/// (an `http` run needs none). Unreadable roots leave the store empty: an `https` step
/// then fails naming the TLS error rather than the verifier failing to start.
fn roots(needed: bool) -> Arc<rustls::RootCertStore> {
    static NATIVE: OnceLock<Arc<rustls::RootCertStore>> = OnceLock::new();
    if !needed {
        return Arc::new(rustls::RootCertStore::empty());
    }
    NATIVE
        .get_or_init(|| {
            let mut store = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            let (_added, _ignored) = store.add_parsable_certificates(found.certs);
            Arc::new(store)
        })
        .clone()
}

/// "2 s", "300 ms": a deadline as a person reads it.
fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Names a transport failure by class: the first recognisable cause in the chain wins.
fn transport_detail(err: &(dyn StdError + 'static)) -> String {
    let mut chain = Vec::new();
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(class) = classify(e) {
            return class;
        }
        chain.push(e.to_string());
        // `io::Error::source` skips the error it wraps; look at that one too.
        current = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => match classify(inner) {
                Some(class) => return class,
                None => inner.source(),
            },
            None => e.source(),
        };
    }
    let text = chain.join(": ");
    super::excerpt::one_line(&format!("transport error: {text}"))
}

fn classify(e: &(dyn StdError + 'static)) -> Option<String> {
    use std::io::ErrorKind as K;
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(format!("TLS error: {tls}"));
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        let class = match io.kind() {
            K::ConnectionRefused => "connection refused",
            K::ConnectionReset => "connection reset by the store",
            K::ConnectionAborted => "connection aborted",
            K::TimedOut => "connect timed out",
            K::HostUnreachable | K::NetworkUnreachable => "host unreachable",
            K::UnexpectedEof => "connection closed before the answer",
            _ => return None,
        };
        return Some(class.to_owned());
    }
    if let Some(h) = e.downcast_ref::<hyper::Error>() {
        if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
            return Some("connection closed before the answer".to_owned());
        }
        if h.is_parse() {
            return Some(format!("not an HTTP answer: {h}"));
        }
    }
    if e.to_string() == "dns error" {
        let cause = e.source().map(|c| format!(": {c}")).unwrap_or_default();
        return Some(super::excerpt::one_line(&format!(
            "DNS lookup failed{cause}"
        )));
    }
    None
}
