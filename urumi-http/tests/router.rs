//! The router in process (`oneshot`) over a scripted fake `Provisioner`: every answer is
//! problem+json with the core's code, auth comes before everything, the spec and the
//! mounted routes agree. No cluster needed.
//!
//! ```text
//!  Request ──router(AppState{Fake})──oneshot──▶ status, headers, JSON
//!  Fake: create("rate-*") → rate_limited, create("boom") → internal with a secret-looking cause,
//!        get(name) → a Store when it was created, else not_found
//! ```

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use urumi_core::audit::AuditQuery;
use urumi_core::provisioner::{ChangeStream, CreateStore, StoreCredentials};
use urumi_core::state::{ListQuery, Page};
use urumi_core::store::{AuditEvent, Plan, Store, StoreName, StoreSpec};
use urumi_core::{Caller, Error, Provisioner, RequestOptions, Role};
use urumi_http::{ApiKeyConfig, AppState, KeyRing, router_and_spec};

#[derive(Default)]
struct Fake {
    stores: Mutex<Vec<Store>>,
    seen: Mutex<Vec<(Caller, Option<String>)>>,
}

#[async_trait]
impl Provisioner for Fake {
    async fn create(
        &self,
        caller: &Caller,
        r: CreateStore,
        o: RequestOptions,
    ) -> urumi_core::Result<Store> {
        self.seen
            .lock()
            .expect("lock")
            .push((caller.clone(), o.idempotency_key.clone()));
        if r.name.starts_with("rate-") {
            return Err(Error::RateLimited {
                limit: 5,
                retry_after_secs: 1800,
            });
        }
        if r.name == "boom" {
            return Err(Error::State {
                backend: "postgres",
                message: "password authentication failed for postgres://u:hunter2@10.1.2.3".into(),
                retryable: false,
                source: None,
            });
        }
        let spec = StoreSpec {
            name: StoreName::new(r.name)?,
            tenant: caller.tenant.clone(),
            engine: Default::default(),
            plan: Plan::default(),
        };
        let store = Store::new(spec, "store-x");
        self.stores.lock().expect("lock").push(store.clone());
        Ok(store)
    }
    async fn get(&self, caller: &Caller, name: &str) -> urumi_core::Result<Store> {
        self.stores
            .lock()
            .expect("lock")
            .iter()
            .find(|s| s.name.as_str() == name && caller.can_see(s))
            .cloned()
            .ok_or_else(|| Error::store_not_found(name))
    }
    async fn list(&self, _: &Caller, q: ListQuery) -> urumi_core::Result<Page<Store>> {
        q.page_size()?;
        Ok(Page {
            items: self.stores.lock().expect("lock").clone(),
            next_cursor: None,
        })
    }
    async fn delete(&self, c: &Caller, name: &str, _: RequestOptions) -> urumi_core::Result<Store> {
        self.get(c, name).await
    }
    async fn retry(&self, c: &Caller, name: &str, _: RequestOptions) -> urumi_core::Result<Store> {
        self.get(c, name).await?;
        Err(Error::conflict("store is not Failed"))
    }
    async fn credentials(&self, _: &Caller, name: &str) -> urumi_core::Result<StoreCredentials> {
        Err(Error::store_not_found(name))
    }
    async fn usage(
        &self,
        c: &Caller,
        name: &str,
    ) -> urumi_core::Result<urumi_core::store::StoreUsage> {
        self.get(c, name).await?;
        Err(Error::conflict("store has no quota yet"))
    }
    async fn update(
        &self,
        c: &Caller,
        name: &str,
        _: urumi_core::UpdateStore,
        _: RequestOptions,
    ) -> urumi_core::Result<Store> {
        self.get(c, name).await?;
        Err(Error::conflict("store is not Ready"))
    }
    async fn upgrade(
        &self,
        c: &Caller,
        name: &str,
        _: RequestOptions,
    ) -> urumi_core::Result<Store> {
        self.get(c, name).await?;
        Err(Error::conflict("store is not Ready"))
    }
    async fn suspend(
        &self,
        c: &Caller,
        name: &str,
        _: RequestOptions,
    ) -> urumi_core::Result<Store> {
        self.get(c, name).await?;
        Err(Error::conflict("store is not Ready"))
    }
    async fn resume(&self, c: &Caller, name: &str, _: RequestOptions) -> urumi_core::Result<Store> {
        self.get(c, name).await?;
        Err(Error::conflict("store is not Ready"))
    }
    async fn revisions(
        &self,
        c: &Caller,
        name: &str,
    ) -> urumi_core::Result<Vec<urumi_core::store::StoreRevision>> {
        self.get(c, name).await?;
        Ok(Vec::new())
    }
    fn plans(&self) -> Vec<urumi_core::store::PlanEntry> {
        urumi_core::store::Plans::default().entries()
    }
    async fn verify(
        &self,
        _: &Caller,
        name: &str,
    ) -> urumi_core::Result<urumi_core::verify::VerifyReport> {
        Err(Error::store_not_found(name))
    }
    async fn events(
        &self,
        _: &Caller,
        name: &str,
        _: AuditQuery,
    ) -> urumi_core::Result<Page<AuditEvent>> {
        Err(Error::store_not_found(name))
    }
    async fn audit(&self, _: &Caller, _: AuditQuery) -> urumi_core::Result<Page<AuditEvent>> {
        Ok(Page {
            items: vec![],
            next_cursor: None,
        })
    }
    async fn receive_webhook(
        &self,
        _: &str,
        _: &str,
        _: &[u8],
        sig: &str,
    ) -> urumi_core::Result<()> {
        if sig == "good" {
            Ok(())
        } else {
            Err(Error::Unauthorized {
                message: "bad signature".into(),
            })
        }
    }
    fn changes(&self, _: &Caller, _: Option<u64>) -> ChangeStream {
        Box::pin(futures::stream::pending())
    }
    async fn check_ready(&self) -> urumi_core::Result<()> {
        Err(Error::Unavailable {
            message: "kube-apiserver at 10.9.9.9:6443 refused".into(),
        })
    }
    async fn shutdown(&self) {}
}

const TENANT_KEY: &str = "tenant-key-acme-1";
const ADMIN_KEY: &str = "admin-key-ops-1";

fn app() -> (axum::Router, utoipa::openapi::OpenApi, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let keys = KeyRing::new(&[
        ApiKeyConfig {
            name: Some("acme-billing".into()),
            key: Some(TENANT_KEY.into()),
            key_sha256: None,
            tenant: "acme".into(),
            role: Role::Tenant,
        },
        ApiKeyConfig {
            name: None,
            key: Some(ADMIN_KEY.into()),
            key_sha256: None,
            tenant: "ops".into(),
            role: Role::Admin,
        },
    ])
    .expect("keys");
    let (router, spec) = router_and_spec(AppState::new(fake.clone(), keys));
    (router, spec, fake)
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    json: serde_json::Value,
}

async fn send(app: &axum::Router, req: Request<Body>) -> Answer {
    let response = app.clone().oneshot(req).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    if headers
        .get("content-type")
        .is_some_and(|v| v == "text/event-stream")
    {
        // An event stream never ends on its own: its head is the answer.
        return Answer {
            status,
            headers,
            json: serde_json::Value::Null,
        };
    }
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        headers,
        json,
    }
}

fn req(method: &str, uri: &str, key: Option<&str>, body: Option<(&str, &str)>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        b = b.header("authorization", format!("Bearer {k}"));
    }
    match body {
        Some((ct, text)) => b
            .header("content-type", ct)
            .body(Body::from(text.to_owned())),
        None => b.body(Body::empty()),
    }
    .expect("request")
}

fn assert_problem(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status.as_u16(), status, "{}", a.json);
    assert_eq!(
        a.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{}",
        a.json
    );
    assert_eq!(a.json["code"], code, "{}", a.json);
    assert_eq!(a.json["status"], status, "{}", a.json);
    for field in ["type", "title", "detail"] {
        assert!(a.json[field].is_string(), "{field} missing: {}", a.json);
    }
}

#[tokio::test]
async fn no_key_and_a_wrong_key_are_401_problems_and_never_echo_the_key() {
    let (app, _, _) = app();
    let a = send(&app, req("GET", "/api/v1/stores", None, None)).await;
    assert_problem(&a, 401, "unauthorized");
    assert!(a.headers.contains_key("www-authenticate"));
    let a = send(
        &app,
        req("GET", "/api/v1/stores", Some("wrong-key-123"), None),
    )
    .await;
    assert_problem(&a, 401, "unauthorized");
    assert!(!a.json.to_string().contains("wrong-key-123"));
}

#[tokio::test]
async fn create_answers_202_with_location_and_passes_the_idempotency_key_and_actor() {
    let (app, _, fake) = app();
    let mut r = req(
        "POST",
        "/api/v1/stores",
        Some(TENANT_KEY),
        Some(("application/json", r#"{"name":"shop1"}"#)),
    );
    r.headers_mut()
        .insert("idempotency-key", "order-1".parse().expect("header"));
    let a = send(&app, r).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.json);
    assert_eq!(a.headers["location"], "/api/v1/stores/shop1");
    assert_eq!(a.json["name"], "shop1");
    assert_eq!(a.json["status"], "Pending");
    assert!(a.headers.contains_key("x-request-id"));
    let seen = fake.seen.lock().expect("lock").clone();
    assert_eq!(seen[0].0.actor, "acme-billing");
    assert_eq!(seen[0].0.tenant.as_str(), "acme");
    assert_eq!(seen[0].1.as_deref(), Some("order-1"));
}

#[tokio::test]
async fn bad_bodies_are_problems_with_the_field_named() {
    let (app, _, fake) = app();
    let cases: &[(&str, &str, u16, &str)] = &[
        (
            "text/plain",
            r#"{"name":"shop1"}"#,
            415,
            "unsupported_media_type",
        ),
        (
            "application/json",
            r#"{"name":"shop1""#,
            400,
            "invalid_spec",
        ),
        (
            "application/json",
            r#"{"name":"shop1","colour":"red"}"#,
            422,
            "invalid_spec",
        ),
        (
            "application/json",
            r#"{"plan":"small"}"#,
            422,
            "invalid_spec",
        ),
        (
            "application/json",
            r#"{"name":"Bad_Name"}"#,
            422,
            "invalid_name",
        ),
    ];
    for (ct, body, status, code) in cases {
        let a = send(
            &app,
            req("POST", "/api/v1/stores", Some(TENANT_KEY), Some((ct, body))),
        )
        .await;
        assert_problem(&a, *status, code);
    }
    let a = send(
        &app,
        req(
            "POST",
            "/api/v1/stores",
            Some(TENANT_KEY),
            Some(("application/json", r#"{"name":"shop1","colour":"red"}"#)),
        ),
    )
    .await;
    assert_eq!(a.json["errors"][0]["field"], "colour", "{}", a.json);
    let a = send(
        &app,
        req(
            "POST",
            "/api/v1/stores",
            Some(TENANT_KEY),
            Some(("application/json", r#"{"name":"Bad_Name"}"#)),
        ),
    )
    .await;
    assert_eq!(a.json["errors"][0]["field"], "name", "{}", a.json);
    let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(70 * 1024));
    let a = send(
        &app,
        req(
            "POST",
            "/api/v1/stores",
            Some(TENANT_KEY),
            Some(("application/json", &big)),
        ),
    )
    .await;
    assert_problem(&a, 413, "payload_too_large");
    assert!(
        fake.stores.lock().expect("lock").is_empty(),
        "nothing created"
    );
}

#[tokio::test]
async fn rate_limits_carry_retry_after_and_ratelimit_fields() {
    let (app, _, _) = app();
    let a = send(
        &app,
        req(
            "POST",
            "/api/v1/stores",
            Some(TENANT_KEY),
            Some(("application/json", r#"{"name":"rate-1"}"#)),
        ),
    )
    .await;
    assert_problem(&a, 429, "rate_limited");
    assert_eq!(a.headers["retry-after"], "1800");
    assert_eq!(a.headers["ratelimit-policy"], "\"hourly\";q=5;w=3600");
    assert_eq!(a.headers["ratelimit"], "\"hourly\";r=0;t=1800");
}

#[tokio::test]
async fn a_server_error_never_shows_its_cause() {
    let (app, _, _) = app();
    let a = send(
        &app,
        req(
            "POST",
            "/api/v1/stores",
            Some(TENANT_KEY),
            Some(("application/json", r#"{"name":"boom"}"#)),
        ),
    )
    .await;
    assert_problem(&a, 500, "internal");
    let text = a.json.to_string();
    assert!(
        !text.contains("hunter2") && !text.contains("10.1.2.3"),
        "{text}"
    );
    let a = send(&app, req("GET", "/readyz", None, None)).await;
    assert_problem(&a, 503, "unavailable");
    assert!(!a.json.to_string().contains("10.9.9.9"), "{}", a.json);
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_bad_queries_are_problems() {
    let (app, _, _) = app();
    assert_problem(
        &send(&app, req("GET", "/api/v1/nope", Some(TENANT_KEY), None)).await,
        404,
        "not_found",
    );
    assert_problem(
        &send(&app, req("GET", "/nope", None, None)).await,
        404,
        "not_found",
    );
    assert_problem(
        &send(&app, req("PUT", "/api/v1/stores", Some(TENANT_KEY), None)).await,
        405,
        "method_not_allowed",
    );
    assert_problem(
        &send(
            &app,
            req("PUT", "/api/v1/stores/shop1", Some(TENANT_KEY), None),
        )
        .await,
        405,
        "method_not_allowed",
    );
    assert_problem(
        &send(
            &app,
            req("GET", "/api/v1/stores?limit=lots", Some(TENANT_KEY), None),
        )
        .await,
        422,
        "invalid_spec",
    );
    assert_problem(
        &send(
            &app,
            req(
                "GET",
                "/api/v1/stores?status=Sleeping",
                Some(TENANT_KEY),
                None,
            ),
        )
        .await,
        422,
        "invalid_spec",
    );
    assert_problem(
        &send(
            &app,
            req("GET", "/api/v1/stores?limit=0", Some(TENANT_KEY), None),
        )
        .await,
        422,
        "invalid_spec",
    );
    assert_problem(
        &send(
            &app,
            req(
                "GET",
                "/api/v1/audit?since=yesterday",
                Some(TENANT_KEY),
                None,
            ),
        )
        .await,
        422,
        "invalid_spec",
    );
    assert_problem(
        &send(
            &app,
            req("GET", "/api/v1/events?after=x", Some(TENANT_KEY), None),
        )
        .await,
        422,
        "invalid_spec",
    );
    assert_problem(
        &send(
            &app,
            req("GET", "/api/v1/stores/nope", Some(TENANT_KEY), None),
        )
        .await,
        404,
        "not_found",
    );
    assert_problem(
        &send(
            &app,
            req("POST", "/api/v1/stores/nope/retry", Some(TENANT_KEY), None),
        )
        .await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn another_tenants_store_is_404_and_an_admin_sees_it() {
    let (app, _, _) = app();
    let a = send(
        &app,
        req(
            "POST",
            "/api/v1/stores",
            Some(ADMIN_KEY),
            Some(("application/json", r#"{"name":"opsshop"}"#)),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_problem(
        &send(
            &app,
            req("GET", "/api/v1/stores/opsshop", Some(TENANT_KEY), None),
        )
        .await,
        404,
        "not_found",
    );
    assert_eq!(
        send(
            &app,
            req("GET", "/api/v1/stores/opsshop", Some(ADMIN_KEY), None)
        )
        .await
        .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_event_stream_is_sse_with_no_proxy_buffering() {
    let (app, _, _) = app();
    let a = send(&app, req("GET", "/api/v1/events", Some(TENANT_KEY), None)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["x-accel-buffering"], "no");
    assert_eq!(a.headers["cache-control"], "no-cache");
}

#[tokio::test]
async fn webhooks_ping_without_topic_and_refuse_a_bad_signature() {
    let (app, _, _) = app();
    let a = send(
        &app,
        req(
            "POST",
            "/api/v1/webhooks/woocommerce/shop1",
            None,
            Some(("application/x-www-form-urlencoded", "webhook_id=3")),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let mut r = req(
        "POST",
        "/api/v1/webhooks/woocommerce/shop1",
        None,
        Some(("application/json", "{}")),
    );
    r.headers_mut()
        .insert("x-wc-webhook-topic", "order.created".parse().expect("h"));
    r.headers_mut()
        .insert("x-wc-webhook-signature", "bad".parse().expect("h"));
    assert_problem(&send(&app, r).await, 401, "unauthorized");
}

#[tokio::test]
async fn ops_endpoints_answer_without_a_key() {
    let (app, _, _) = app();
    assert_eq!(
        send(&app, req("GET", "/healthz", None, None)).await.status,
        StatusCode::OK
    );
    let page = app
        .clone()
        .oneshot(req("GET", "/", None, None))
        .await
        .expect("ok");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.into_body().collect().await.expect("body").to_bytes();
    assert!(String::from_utf8_lossy(&html).contains("<title>Urumi"));
    let spec = send(&app, req("GET", "/openapi.json", None, None)).await;
    assert_eq!(spec.json["openapi"], "3.1.0");
    // A request goes into /metrics by its route template, never by the store's name.
    send(
        &app,
        req(
            "GET",
            "/api/v1/stores/secretshopname",
            Some(TENANT_KEY),
            None,
        ),
    )
    .await;
    let m = app
        .clone()
        .oneshot(req("GET", "/metrics", None, None))
        .await
        .expect("ok");
    let text =
        String::from_utf8_lossy(&m.into_body().collect().await.expect("b").to_bytes()).into_owned();
    assert!(
        text.contains("route=\"/api/v1/stores/{name}\",status=\"404\""),
        "{text}"
    );
    assert!(
        !text.contains("secretshopname") && !text.contains(TENANT_KEY),
        "{text}"
    );
}

/// The API.md rows this server implements (method, path).
const IMPLEMENTED: &[(&str, &str)] = &[
    ("post", "/api/v1/stores"),
    ("get", "/api/v1/stores"),
    ("get", "/api/v1/stores/{name}"),
    ("delete", "/api/v1/stores/{name}"),
    ("patch", "/api/v1/stores/{name}"),
    ("post", "/api/v1/stores/{name}/retry"),
    ("post", "/api/v1/stores/{name}/upgrade"),
    ("post", "/api/v1/stores/{name}/suspend"),
    ("post", "/api/v1/stores/{name}/resume"),
    ("get", "/api/v1/stores/{name}/credentials"),
    ("get", "/api/v1/stores/{name}/events"),
    ("post", "/api/v1/stores/{name}/verify"),
    ("get", "/api/v1/stores/{name}/usage"),
    ("get", "/api/v1/stores/{name}/revisions"),
    ("get", "/api/v1/plans"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/events"),
    ("post", "/api/v1/webhooks/woocommerce/{name}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/"),
];

#[tokio::test]
async fn the_spec_lists_exactly_the_mounted_routes() {
    let (app, spec, _) = app();
    let spec = serde_json::to_value(&spec).expect("json");
    let mut documented = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            if ["get", "post", "delete", "put", "patch"].contains(&method.as_str()) {
                documented.push((method.clone(), path.clone()));
            }
        }
    }
    documented.sort();
    let mut expected: Vec<(String, String)> = IMPLEMENTED
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    expected.sort();
    assert_eq!(documented, expected);
    // Every documented operation is mounted: it never answers "no such route" or 405.
    for (method, path) in &documented {
        let uri = path.replace("{name}", "shop1");
        let a = send(
            &app,
            req(&method.to_uppercase(), &uri, Some(ADMIN_KEY), None),
        )
        .await;
        assert!(
            a.json["code"] != "method_not_allowed"
                && !(a.status == StatusCode::NOT_FOUND
                    && a.json["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("no such route"))),
            "{method} {path} is documented but not mounted: {}",
            a.json
        );
    }
    // And the day-2 routes of API.md are not mounted yet.
    for (m, p) in [
        ("POST", "/api/v1/stores/shop1/rollback"),
        ("POST", "/api/v1/rollouts"),
    ] {
        let a = send(&app, req(m, p, Some(ADMIN_KEY), None)).await;
        assert!(
            a.status == StatusCode::NOT_FOUND || a.status == StatusCode::METHOD_NOT_ALLOWED,
            "{m} {p}"
        );
    }
}

/// The documented shapes (schema.rs describes the core's types by hand) must have exactly
/// the fields the core really serializes: a field added to or renamed in the core without
/// the document following fails here.
#[test]
fn the_documented_shapes_match_what_the_core_serializes() {
    use urumi_core::store::{StoreSpec, TenantId};
    let (_, spec, _) = app();
    let spec = serde_json::to_value(&spec).expect("spec json");
    let props = |schema: &str| -> std::collections::BTreeSet<String> {
        spec["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{schema} is documented"))
            .keys()
            .cloned()
            .collect()
    };
    let keys = |v: serde_json::Value| -> std::collections::BTreeSet<String> {
        v.as_object().expect("an object").keys().cloned().collect()
    };
    let mut store = urumi_core::store::Store::new(
        StoreSpec::new(
            urumi_core::store::StoreName::new("shop1").expect("name"),
            TenantId::new("acme").expect("tenant"),
        ),
        "store-shop1",
    );
    store.ready_at = Some(urumi_core::store::now());
    store.provisioning_seconds = Some(1.0);
    store.managed_by = Some("Store team-a/shop1".to_owned());
    store.chart = Some(urumi_core::store::StoreChart {
        version: "0.2.0".into(),
        app_version: "7.1.0".into(),
        outdated: true,
    });
    assert_eq!(
        props("Store"),
        keys(serde_json::to_value(&store).expect("store"))
    );
    assert_eq!(
        props("StoreChart"),
        keys(serde_json::to_value(&store.chart).expect("chart"))
    );
    let revision = urumi_core::store::StoreRevision {
        revision: 1,
        chart_version: "0.2.0".into(),
        app_version: "7.1.0".into(),
        status: "deployed".into(),
        updated_at: Some(urumi_core::store::now()),
        description: "Install complete".into(),
    };
    assert_eq!(
        props("StoreRevision"),
        keys(serde_json::to_value(&revision).expect("revision"))
    );
    assert_eq!(
        props("Urls"),
        keys(serde_json::to_value(&store.urls).expect("urls"))
    );
    let event = AuditEvent::new("a", "store.create", urumi_core::audit::Outcome::Success);
    assert_eq!(
        props("AuditEvent"),
        keys(serde_json::to_value(&event).expect("event"))
    );
    let report = urumi_core::verify::VerifyReport {
        ok: false,
        steps: vec![urumi_core::verify::VerifyStep {
            name: "cart".into(),
            ok: false,
            ms: 1,
            status: Some(401),
            detail: Some("x".into()),
        }],
        order_id: Some(1),
    };
    assert_eq!(
        props("VerifyReport"),
        keys(serde_json::to_value(&report).expect("report"))
    );
    assert_eq!(
        props("VerifyStep"),
        keys(serde_json::to_value(&report.steps[0]).expect("step"))
    );
    let usage = urumi_core::store::StoreUsage {
        name: "shop1".into(),
        plan: urumi_core::store::Plan::Small,
        resources: vec![urumi_core::store::ResourceUsage {
            resource: "pods".into(),
            unit: urumi_core::store::UsageUnit::Count,
            used: 2,
            hard: 10,
        }],
        volumes: vec![urumi_core::store::VolumeUsage {
            claim: "data".into(),
            requested: 1,
            capacity: Some(1),
            phase: "Bound".into(),
            volume: Some("pv-1".into()),
        }],
        observed_at: chrono::Utc::now(),
    };
    assert_eq!(
        props("StoreUsage"),
        keys(serde_json::to_value(&usage).expect("usage"))
    );
    assert_eq!(
        props("ResourceUsage"),
        keys(serde_json::to_value(&usage.resources[0]).expect("resource"))
    );
    assert_eq!(
        props("VolumeUsage"),
        keys(serde_json::to_value(&usage.volumes[0]).expect("volume"))
    );
    let plans = urumi_core::store::Plans::default().entries();
    assert_eq!(
        props("Plan"),
        keys(serde_json::to_value(&plans[0]).expect("plan"))
    );
}
