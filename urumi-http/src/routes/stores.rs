//! `/api/v1/stores…` and `/api/v1/audit`: parse, call the [`Provisioner`], map.
//!
//! ```text
//!  POST   /stores                 AppJson<CreateStoreBody> + Idempotency-Key ─▶ create ─▶ 202 + Location + Store
//!  GET    /stores?status&tenant&limit&cursor                                 ─▶ list   ─▶ 200 {items,nextCursor}
//!  GET    /stores/{name}                                                     ─▶ get    ─▶ 200 Store
//!  PATCH  /stores/{name} {plan}   + Idempotency-Key                          ─▶ update ─▶ 202 Store (Updating)
//!  DELETE /stores/{name}          + Idempotency-Key                          ─▶ delete ─▶ 202 Store (Deleting)
//!  POST   /stores/{name}/retry    + Idempotency-Key                          ─▶ retry  ─▶ 202 Store
//!  POST   /stores/{name}/suspend, /resume + Idempotency-Key           ─▶ suspend / resume ─▶ 202 Store
//!  POST   /stores/{name}/upgrade  + Idempotency-Key                          ─▶ upgrade ─▶ 202 Store (Updating)
//!  GET    /stores/{name}/credentials                                         ─▶ credentials (audited) ─▶ 200
//!  GET    /stores/{name}/usage                                               ─▶ usage  ─▶ 200 StoreUsage (read now)
//!  GET    /stores/{name}/revisions                                           ─▶ revisions ─▶ 200 {items} (helm history)
//!  GET    /plans                                                             ─▶ plans  ─▶ 200 {items}
//!  POST   /stores/{name}/verify                                              ─▶ verify ─▶ 200 VerifyReport
//!  GET    /stores/{name}/events?limit&cursor   GET /audit?action&tenant&since&limit&cursor ─▶ 200 page
//! ```

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use urumi_core::RequestOptions;
use urumi_core::audit::AuditQuery;
use urumi_core::state::ListQuery;
use urumi_core::store::{Status, TenantId};
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::AuthedCaller;
use crate::error::{AppError, AppJson, Problem};
use crate::routes::{AppPath, AppQuery, json};
use crate::schema::{
    AuditPage, CreateStoreBody, CredentialsDoc, PlanList, RevisionList, StoreDoc, StorePage,
    StoreUsageDoc, UpdateStoreBody, VerifyReportDoc,
};

/// `Idempotency-Key` and `If-Match` → [`RequestOptions`] (`If-Match` is honoured by the
/// calls on an existing store; a new store has no version to match).
fn request_options(headers: &HeaderMap) -> Result<RequestOptions, AppError> {
    let mut opts = idempotency(headers)?;
    opts.if_version = if_match(headers)?;
    Ok(opts)
}

/// `If-Match: "<version>"` → the version the store must be at; `*` (any) and no header
/// → none. One strong entity tag only: a list or a weak tag (`W/"7"`) is refused, since
/// a record version is compared exactly.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, AppError> {
    let mut values = headers.get_all(header::IF_MATCH).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = || {
        AppError::invalid_field(
            "If-Match",
            "must be one store version as an entity tag, e.g. \"7\" (or *)",
        )
    };
    if values.next().is_some() {
        return Err(bad());
    }
    let text = value.to_str().map_err(|_| bad())?.trim();
    if text == "*" {
        return Ok(None);
    }
    let digits = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    digits.parse().map(Some).map_err(|_| bad())
}

/// `ETag: "<version>"` of a store's record, for `If-Match`.
fn with_etag(mut response: Response, store: &urumi_core::store::Store) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", store.version)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// `Idempotency-Key` → [`RequestOptions`]. Sent twice it is refused, even with one value
/// twice: which of two keys the request is safe to repeat under is not ours to guess.
fn idempotency(headers: &HeaderMap) -> Result<RequestOptions, AppError> {
    if headers.get_all("idempotency-key").iter().nth(1).is_some() {
        return Err(AppError::invalid_field(
            "Idempotency-Key",
            "must be sent once",
        ));
    }
    match headers.get("idempotency-key") {
        None => Ok(RequestOptions::default()),
        Some(v) => {
            let key = v.to_str().map_err(|_| {
                AppError::invalid_field("Idempotency-Key", "must be printable ASCII")
            })?;
            if key.is_empty() || key.len() > urumi_core::provisioner::MAX_IDEMPOTENCY_KEY_LEN {
                return Err(AppError::invalid_field(
                    "Idempotency-Key",
                    format!(
                        "must be 1 to {} characters",
                        urumi_core::provisioner::MAX_IDEMPOTENCY_KEY_LEN
                    ),
                ));
            }
            Ok(RequestOptions::idempotency_key(key))
        }
    }
}

fn accepted(store: &urumi_core::store::Store, location: bool) -> Response {
    let mut response = with_etag((StatusCode::ACCEPTED, json(store)).into_response(), store);
    if location {
        let path = format!("/api/v1/stores/{}", store.name.as_str());
        if let Ok(v) = HeaderValue::from_str(&path) {
            response.headers_mut().insert(header::LOCATION, v);
        }
    }
    response
}

/// Accepts a store; provisioning runs in the background.
#[utoipa::path(post, path = "/api/v1/stores", tag = "stores", request_body = CreateStoreBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "makes the request safe to repeat")),
    responses(
        (status = 202, description = "accepted", body = StoreDoc, headers(("Location" = String))),
        (status = 409, description = "store_exists, idempotency_in_progress", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_name, invalid_spec, idempotency_mismatch", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "quota_exceeded, rate_limited", body = Problem, content_type = "application/problem+json"),
    ), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    AuthedCaller(caller): AuthedCaller,
    headers: HeaderMap,
    AppJson(body): AppJson<CreateStoreBody>,
) -> Result<Response, AppError> {
    let opts = request_options(&headers)?;
    let store = state.provisioner.create(&caller, body.into(), opts).await?;
    Ok(accepted(&store, true))
}

/// `GET /api/v1/stores` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only stores with this status.
    #[param(value_type = Option<crate::schema::StatusName>)]
    status: Option<String>,
    /// Only this tenant's stores (admins).
    #[param(pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", max_length = 63)]
    tenant: Option<String>,
    /// Page size, 1–1000 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

fn parse_limit(limit: Option<&str>) -> Result<Option<u32>, AppError> {
    limit
        .map(|l| {
            l.parse::<u32>()
                .map_err(|_| AppError::invalid_field("limit", "must be a number from 1 to 1000"))
        })
        .transpose()
}

fn parse_tenant(tenant: Option<String>) -> Result<Option<TenantId>, AppError> {
    tenant
        .filter(|t| !t.is_empty())
        .map(|t| TenantId::new(t).map_err(AppError::from))
        .transpose()
}

/// Lists the stores the caller may see, newest first.
#[utoipa::path(get, path = "/api/v1/stores", tag = "stores", params(ListParams),
    responses((status = 200, body = StorePage), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AuthedCaller(caller): AuthedCaller,
    AppQuery(q): AppQuery<ListParams>,
) -> Result<Response, AppError> {
    let status = q
        .status
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<Status>().map_err(|_| {
                AppError::invalid_field(
                    "status",
                    "must be Pending, Provisioning, Ready, Failed or Deleting",
                )
            })
        })
        .transpose()?;
    let query = ListQuery {
        tenant: parse_tenant(q.tenant)?,
        status,
        limit: parse_limit(q.limit.as_deref())?,
        cursor: q.cursor.filter(|c| !c.is_empty()),
    };
    let page = state.provisioner.list(&caller, query).await?;
    Ok(
        json(&serde_json::json!({"items": page.items, "nextCursor": page.next_cursor}))
            .into_response(),
    )
}

/// One store.
#[utoipa::path(get, path = "/api/v1/stores/{name}", tag = "stores",
    params(("name" = String, Path)),
    responses((status = 200, body = StoreDoc, headers(("ETag" = String, description = "\"<version>\", for If-Match"))),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    AuthedCaller(caller): AuthedCaller,
    AppPath(name): AppPath<String>,
) -> Result<Response, AppError> {
    let store = state.provisioner.get(&caller, &name).await?;
    Ok(with_etag(json(&store).into_response(), &store))
}

/// Starts deleting a store.
#[utoipa::path(delete, path = "/api/v1/stores/{name}", tag = "stores",
    params(("name" = String, Path), ("Idempotency-Key" = Option<String>, Header),
        ("If-Match" = Option<String>, Header, description = "\"<version>\": change the store only at this version, else 412 precondition_failed")),
    responses((status = 202, body = StoreDoc), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "precondition_failed: the store is not at the If-Match version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_spec: a malformed Idempotency-Key or If-Match", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    AuthedCaller(caller): AuthedCaller,
    headers: HeaderMap,
    AppPath(name): AppPath<String>,
) -> Result<Response, AppError> {
    let opts = request_options(&headers)?;
    Ok(accepted(
        &state.provisioner.delete(&caller, &name, opts).await?,
        false,
    ))
}

/// Changes a Ready store's plan: its quota and limits are resized and its release
/// upgraded; status `Updating`, then `Ready`. The same plan answers the store unchanged.
#[utoipa::path(patch, path = "/api/v1/stores/{name}", tag = "stores", request_body = UpdateStoreBody,
    params(("name" = String, Path), ("Idempotency-Key" = Option<String>, Header),
        ("If-Match" = Option<String>, Header, description = "\"<version>\": change the store only at this version, else 412 precondition_failed")),
    responses((status = 202, description = "accepted (or unchanged: the same plan)", body = StoreDoc),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "conflict: not Ready; plan_too_small: the store holds more volumes, claims or pods than the plan allows (the numbers in detail), nothing changed; managed_externally", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "precondition_failed: the store is not at the If-Match version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_spec: no or unknown plan; a malformed Idempotency-Key or If-Match", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    AuthedCaller(caller): AuthedCaller,
    headers: HeaderMap,
    AppPath(name): AppPath<String>,
    AppJson(body): AppJson<UpdateStoreBody>,
) -> Result<Response, AppError> {
    let opts = request_options(&headers)?;
    let store = state
        .provisioner
        .update(&caller, &name, body.into(), opts)
        .await?;
    Ok(accepted(&store, false))
}

/// Retries a `Failed` store from its failed step.
#[utoipa::path(post, path = "/api/v1/stores/{name}/retry", tag = "stores",
    params(("name" = String, Path), ("Idempotency-Key" = Option<String>, Header),
        ("If-Match" = Option<String>, Header, description = "\"<version>\": change the store only at this version, else 412 precondition_failed")),
    responses((status = 202, body = StoreDoc), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "conflict: not Failed", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "precondition_failed: the store is not at the If-Match version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_spec: a malformed Idempotency-Key or If-Match", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    AuthedCaller(caller): AuthedCaller,
    headers: HeaderMap,
    AppPath(name): AppPath<String>,
) -> Result<Response, AppError> {
    let opts = request_options(&headers)?;
    Ok(accepted(
        &state.provisioner.retry(&caller, &name, opts).await?,
        false,
    ))
}

/// Moves a store to the chart this server bundles (`chart.outdated`): `Updating`, then
/// `Ready` on the new chart; a failed upgrade is rolled back and the store is Ready on
/// its previous chart with the failure in its message. Not outdated: the store unchanged.
#[utoipa::path(post, path = "/api/v1/stores/{name}/upgrade", tag = "stores",
    params(("name" = String, Path), ("Idempotency-Key" = Option<String>, Header),
        ("If-Match" = Option<String>, Header, description = "\"<version>\": change the store only at this version, else 412 precondition_failed")),
    responses((status = 202, description = "accepted (or unchanged: not outdated)", body = StoreDoc),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "conflict: not Ready; managed_externally", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "precondition_failed: the store is not at the If-Match version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_spec: a malformed Idempotency-Key or If-Match", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn upgrade(
    State(state): State<AppState>,
    AuthedCaller(caller): AuthedCaller,
    headers: HeaderMap,
    AppPath(name): AppPath<String>,
) -> Result<Response, AppError> {
    let opts = request_options(&headers)?;
    Ok(accepted(
        &state.provisioner.upgrade(&caller, &name, opts).await?,
        false,
    ))
}

/// Suspends a Ready store: its workloads stop (zero replicas) and its Ingress goes; its
/// volumes and credentials stay. `Updating`, then `Ready` with `suspended: true`.
/// Already suspended: the store unchanged.
#[utoipa::path(post, path = "/api/v1/stores/{name}/suspend", tag = "stores",
    params(("name" = String, Path), ("Idempotency-Key" = Option<String>, Header),
        ("If-Match" = Option<String>, Header, description = "\"<version>\": change the store only at this version, else 412 precondition_failed")),
    responses((status = 202, description = "accepted (or unchanged: already suspended)", body = StoreDoc),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "conflict: not Ready, or a change in progress; managed_externally", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "precondition_failed: the store is not at the If-Match version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_spec: a malformed Idempotency-Key or If-Match", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn suspend(
    State(state): State<AppState>,
    AuthedCaller(caller): AuthedCaller,
    headers: HeaderMap,
    AppPath(name): AppPath<String>,
) -> Result<Response, AppError> {
    let opts = request_options(&headers)?;
    Ok(accepted(
        &state.provisioner.suspend(&caller, &name, opts).await?,
        false,
    ))
}

/// Resumes a suspended store on its volumes and credentials: `Updating`, then `Ready`
/// with `suspended: false`. Not suspended: the store unchanged.
#[utoipa::path(post, path = "/api/v1/stores/{name}/resume", tag = "stores",
    params(("name" = String, Path), ("Idempotency-Key" = Option<String>, Header),
        ("If-Match" = Option<String>, Header, description = "\"<version>\": change the store only at this version, else 412 precondition_failed")),
    responses((status = 202, description = "accepted (or unchanged: not suspended)", body = StoreDoc),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "conflict: not Ready, or a change in progress; managed_externally", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "precondition_failed: the store is not at the If-Match version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_spec: a malformed Idempotency-Key or If-Match", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn resume(
    State(state): State<AppState>,
    AuthedCaller(caller): AuthedCaller,
    headers: HeaderMap,
    AppPath(name): AppPath<String>,
) -> Result<Response, AppError> {
    let opts = request_options(&headers)?;
    Ok(accepted(
        &state.provisioner.resume(&caller, &name, opts).await?,
        false,
    ))
}

/// The store's admin login (each read is audited).
#[utoipa::path(get, path = "/api/v1/stores/{name}/credentials", tag = "stores",
    params(("name" = String, Path)),
    responses((status = 200, body = CredentialsDoc), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn credentials(
    State(state): State<AppState>,
    AuthedCaller(caller): AuthedCaller,
    AppPath(name): AppPath<String>,
) -> Result<Response, AppError> {
    let creds = state.provisioner.credentials(&caller, &name).await?;
    let mut response = json(&creds).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// What the store uses of its plan: quota `used`/`hard` and its volumes, read now.
#[utoipa::path(get, path = "/api/v1/stores/{name}/usage", tag = "stores",
    params(("name" = String, Path)),
    responses((status = 200, body = StoreUsageDoc), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "conflict: the store has no quota yet (before its guardrails step) or no longer", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: the cluster has not counted the store's use yet", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn usage(
    State(state): State<AppState>,
    AuthedCaller(caller): AuthedCaller,
    AppPath(name): AppPath<String>,
) -> Result<Response, AppError> {
    Ok(json(&state.provisioner.usage(&caller, &name).await?).into_response())
}

/// The revisions of the store's release, oldest first (none before its release step).
#[utoipa::path(get, path = "/api/v1/stores/{name}/revisions", tag = "stores",
    params(("name" = String, Path)),
    responses((status = 200, body = RevisionList), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn revisions(
    State(state): State<AppState>,
    AuthedCaller(caller): AuthedCaller,
    AppPath(name): AppPath<String>,
) -> Result<Response, AppError> {
    let items = state.provisioner.revisions(&caller, &name).await?;
    Ok(json(&serde_json::json!({ "items": items })).into_response())
}

/// The plans a store may have, and what each grants.
#[utoipa::path(get, path = "/api/v1/plans", tag = "stores",
    responses((status = 200, body = PlanList)),
    security(("bearer" = [])))]
pub async fn plans(State(state): State<AppState>, AuthedCaller(_): AuthedCaller) -> Response {
    json(&serde_json::json!({ "items": state.provisioner.plans() })).into_response()
}

/// Proves a Ready store sells: storefront, cart, COD checkout, order read back.
#[utoipa::path(post, path = "/api/v1/stores/{name}/verify", tag = "stores",
    params(("name" = String, Path)),
    responses((status = 200, body = VerifyReportDoc), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "not Ready", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    AuthedCaller(caller): AuthedCaller,
    AppPath(name): AppPath<String>,
) -> Result<Response, AppError> {
    Ok(json(&state.provisioner.verify(&caller, &name).await?).into_response())
}

/// `…/events` paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1–1000 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

/// The store's audit trail, newest first.
#[utoipa::path(get, path = "/api/v1/stores/{name}/events", tag = "stores",
    params(("name" = String, Path), PageParams),
    responses((status = 200, body = AuditPage), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn events(
    State(state): State<AppState>,
    AuthedCaller(caller): AuthedCaller,
    AppPath(name): AppPath<String>,
    AppQuery(q): AppQuery<PageParams>,
) -> Result<Response, AppError> {
    let query = AuditQuery {
        limit: parse_limit(q.limit.as_deref())?,
        cursor: q.cursor.filter(|c| !c.is_empty()),
        ..AuditQuery::default()
    };
    let page = state.provisioner.events(&caller, &name, query).await?;
    Ok(
        json(&serde_json::json!({"items": page.items, "nextCursor": page.next_cursor}))
            .into_response(),
    )
}

/// `GET /api/v1/audit` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// An action (`store.create`) or a prefix (`provision.*`).
    action: Option<String>,
    /// Only this tenant (admins).
    tenant: Option<String>,
    /// RFC 3339: only events at or after.
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Page size, 1–1000 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

/// Every audit event the caller may see, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn audit(
    State(state): State<AppState>,
    AuthedCaller(caller): AuthedCaller,
    AppQuery(q): AppQuery<AuditParams>,
) -> Result<Response, AppError> {
    let since = q
        .since
        .filter(|s| !s.is_empty())
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|_| AppError::invalid_field("since", "must be an RFC 3339 timestamp"))
        })
        .transpose()?;
    let query = AuditQuery {
        action: q.action.filter(|a| !a.is_empty()),
        tenant: q.tenant.filter(|t| !t.is_empty()),
        since,
        limit: parse_limit(q.limit.as_deref())?,
        cursor: q.cursor.filter(|c| !c.is_empty()),
        ..AuditQuery::default()
    };
    let page = state.provisioner.audit(&caller, query).await?;
    Ok(
        json(&serde_json::json!({"items": page.items, "nextCursor": page.next_cursor}))
            .into_response(),
    )
}
