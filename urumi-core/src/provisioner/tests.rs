//! Unit tests of the provisioner's request handling: validation before anything is
//! created, tenant scoping, transitions and their audit trail. The Kubernetes client
//! points at a closed port and a mock helm is never called: nothing here reaches a
//! cluster (the background worker only retries its watches). The cluster-level
//! behaviour is tested in `tests/lifecycle_*`.

use std::sync::Arc;

use super::*;
use crate::audit::AuditQuery;
use crate::helm::MockHelmDriver;
use crate::limits::Limits;
use crate::state::{MemoryStore, StateStore};
use crate::store::{Plan, Step, StoreName};
use crate::{ErrorKind, KubeProvisioner};

fn offline_client() -> ::kube::Client {
    let config = ::kube::Config::new("http://127.0.0.1:9".parse().expect("valid url"));
    ::kube::Client::try_from(config).expect("client")
}

fn provisioner(limits: Limits) -> (KubeProvisioner, Arc<dyn StateStore>) {
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let mut settings = ProvisionerSettings {
        limits,
        ..Default::default()
    };
    // The worker must not pick the stores up while a test inspects them.
    settings.orchestrator.poll_interval = std::time::Duration::from_secs(3600);
    settings.orchestrator.concurrency = 1;
    let p = KubeProvisioner::builder(offline_client(), state.clone())
        .helm(Arc::new(MockHelmDriver::new()))
        .settings(settings)
        .build()
        .expect("valid settings");
    // These tests look at what the provisioner records, not at provisioning: with the
    // worker stopped, nothing else writes to the state store meanwhile.
    p.orchestrator().begin_shutdown();
    (p, state)
}

fn acme() -> Caller {
    Caller::tenant("acme-key", TenantId::new("acme").expect("valid"))
}

fn globex() -> Caller {
    Caller::tenant("globex-key", TenantId::new("globex").expect("valid"))
}

fn admin() -> Caller {
    Caller::admin("root-key", TenantId::new("platform").expect("valid"))
}

async fn audit_actions(state: &Arc<dyn StateStore>) -> Vec<(String, String)> {
    let page = state
        .query_audit(&AuditQuery {
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .expect("query");
    page.items
        .into_iter()
        .rev()
        .map(|e| (e.action, e.outcome.as_str().to_owned()))
        .collect()
}

#[tokio::test]
async fn bad_requests_are_refused_with_their_kind_and_create_nothing() {
    let (p, state) = provisioner(Limits::unlimited());
    let cases = [
        (CreateStore::named("Shop1"), ErrorKind::InvalidName),
        (CreateStore::named("ab"), ErrorKind::InvalidName),
        (CreateStore::named("admin"), ErrorKind::InvalidName),
        (CreateStore::named("kube-shop"), ErrorKind::InvalidName),
        (
            CreateStore::named("shop1").plan("huge"),
            ErrorKind::InvalidSpec,
        ),
        (
            CreateStore::named("shop1").engine("medusa"),
            ErrorKind::InvalidSpec,
        ),
        (
            CreateStore::named("shop1").engine("Woo Commerce!"),
            ErrorKind::InvalidSpec,
        ),
    ];
    for (request, kind) in cases {
        let err = p
            .create(&acme(), request.clone(), CreateOptions::default())
            .await
            .expect_err("refused");
        assert_eq!(err.kind(), kind, "{request:?}: {err}");
    }
    let all = state.list(&ListQuery::default()).await.expect("list");
    assert!(all.items.is_empty(), "nothing created: {:?}", all.items);
    let actions = audit_actions(&state).await;
    assert_eq!(actions.len(), 7);
    assert!(
        actions
            .iter()
            .all(|(a, o)| a == "store.create" && o == "denied")
    );
    p.shutdown().await;
}

#[tokio::test]
async fn a_tenant_cannot_create_for_another_tenant_but_an_admin_can() {
    let (p, _) = provisioner(Limits::unlimited());
    let mut request = CreateStore::named("shop1");
    request.tenant = Some("globex".to_owned());
    let err = p
        .create(&acme(), request.clone(), CreateOptions::default())
        .await
        .expect_err("forbidden");
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    let store = p
        .create(&admin(), request, CreateOptions::default())
        .await
        .expect("admin may");
    assert_eq!(store.tenant.as_str(), "globex");
    assert_eq!(store.status, Status::Pending);
    assert_eq!(store.namespace, "store-shop1");
    p.shutdown().await;
}

#[tokio::test]
async fn another_tenants_store_is_not_found_for_every_operation() {
    let (p, _) = provisioner(Limits::unlimited());
    p.create(
        &acme(),
        CreateStore::named("shop1"),
        CreateOptions::default(),
    )
    .await
    .expect("created");
    let other = globex();
    assert_eq!(
        p.get(&other, "shop1").await.expect_err("hidden").kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        p.delete(&other, "shop1", RequestOptions::default())
            .await
            .expect_err("hidden")
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        p.retry(&other, "shop1", RequestOptions::default())
            .await
            .expect_err("hidden")
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        p.credentials(&other, "shop1")
            .await
            .expect_err("hidden")
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        p.events(&other, "shop1", AuditQuery::default())
            .await
            .expect_err("hidden")
            .kind(),
        ErrorKind::NotFound
    );
    let listed = p.list(&other, ListQuery::default()).await.expect("list");
    assert!(listed.items.is_empty());
    // The owner and an admin see it.
    assert_eq!(
        p.get(&acme(), "shop1").await.expect("owner").name.as_str(),
        "shop1"
    );
    assert_eq!(
        p.list(&admin(), ListQuery::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
    // A tenant cannot widen its list to another tenant.
    let widened = ListQuery {
        tenant: Some(TenantId::new("acme").expect("valid")),
        ..Default::default()
    };
    assert!(
        p.list(&other, widened)
            .await
            .expect("list")
            .items
            .is_empty()
    );
    p.shutdown().await;
}

#[tokio::test]
async fn limits_are_enforced_and_audited_as_denied() {
    let limits = Limits {
        stores_per_tenant: 1,
        ..Limits::unlimited()
    };
    let (p, state) = provisioner(limits);
    p.create(
        &acme(),
        CreateStore::named("shop1"),
        CreateOptions::default(),
    )
    .await
    .expect("first");
    let err = p
        .create(
            &acme(),
            CreateStore::named("shop2"),
            CreateOptions::default(),
        )
        .await
        .expect_err("over the cap");
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    let err = p
        .create(
            &globex(),
            CreateStore::named("shop1"),
            CreateOptions::default(),
        )
        .await
        .expect_err("names are global");
    assert_eq!(err.kind(), ErrorKind::StoreExists);
    let actions = audit_actions(&state).await;
    assert_eq!(
        actions,
        vec![
            ("store.create".to_owned(), "success".to_owned()),
            ("store.create".to_owned(), "denied".to_owned()),
            ("store.create".to_owned(), "denied".to_owned()),
        ]
    );
    p.shutdown().await;
}

#[tokio::test]
async fn delete_marks_deleting_once_and_retry_needs_a_failed_store() {
    let (p, state) = provisioner(Limits::unlimited());
    p.create(
        &acme(),
        CreateStore::named("shop1"),
        CreateOptions::default(),
    )
    .await
    .expect("created");
    let err = p
        .retry(&acme(), "shop1", RequestOptions::default())
        .await
        .expect_err("not failed");
    assert_eq!(err.kind(), ErrorKind::Conflict);

    let deleting = p
        .delete(&acme(), "shop1", RequestOptions::default())
        .await
        .expect("delete");
    assert_eq!(deleting.status, Status::Deleting);
    let again = p
        .delete(&acme(), "shop1", RequestOptions::default())
        .await
        .expect("idempotent");
    assert_eq!(
        again.version, deleting.version,
        "a second delete changes nothing"
    );
    let deletes = audit_actions(&state)
        .await
        .into_iter()
        .filter(|(a, _)| a == "store.delete")
        .count();
    assert_eq!(deletes, 1);

    // A failed store can be retried; attempts count up and the step is kept.
    let name = StoreName::new("shop1").expect("valid");
    let mut failed = state.get(&name).await.expect("exists");
    failed.status = Status::Failed;
    failed.step = crate::store::Step::Release;
    state.update(&failed).await.expect("mark failed");
    let retried = p
        .retry(&acme(), "shop1", RequestOptions::default())
        .await
        .expect("retry");
    assert_eq!(retried.status, Status::Provisioning);
    assert_eq!(retried.step, crate::store::Step::Release);
    assert_eq!(retried.attempts, failed.attempts + 1);
    p.shutdown().await;
}

#[tokio::test]
async fn only_the_managing_object_may_delete_a_managed_store() {
    let (p, state) = provisioner(Limits::unlimited());
    let manager = "Store team-a/shop1";
    let created = p
        .create(
            &acme(),
            CreateStore::named("shop1"),
            RequestOptions::idempotency_key("uid-1").managed_by(manager),
        )
        .await
        .expect("created");
    assert_eq!(created.managed_by.as_deref(), Some(manager));
    for (who, opts) in [
        (acme(), RequestOptions::default()),
        (admin(), RequestOptions::default()),
        (
            acme(),
            RequestOptions::default().managed_by("Store team-b/shop1"),
        ),
    ] {
        let err = p.delete(&who, "shop1", opts).await.expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::ManagedExternally);
        assert_eq!(err.kind().http_status(), 409);
        assert!(err.tenant_message().contains(manager), "{err}");
    }
    let name = StoreName::new("shop1").expect("valid");
    assert_eq!(
        state.get(&name).await.expect("kept").status,
        Status::Pending
    );
    let deleting = p
        .delete(
            &acme(),
            "shop1",
            RequestOptions::default().managed_by(manager),
        )
        .await
        .expect("the manager deletes");
    assert_eq!(deleting.status, Status::Deleting);
    // A store created without a manager is deleted by anyone who sees it.
    p.create(
        &acme(),
        CreateStore::named("shop2"),
        RequestOptions::default(),
    )
    .await
    .expect("created");
    p.delete(&acme(), "shop2", RequestOptions::default())
        .await
        .expect("deleted");
    p.shutdown().await;
}

#[tokio::test]
async fn webhooks_for_unknown_stores_or_foreign_topics_are_refused_before_any_lookup() {
    let (p, _state) = provisioner(Limits::unlimited());
    let body = br#"{"id":12}"#;
    let sig = sign_webhook("whatever", body);
    let err = p
        .receive_webhook("nosuchshop", "order.created", body, &sig)
        .await
        .expect_err("unknown store");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // A topic that is not resource.event could forge another action (`store.deleted`
    // would become `woocommerce.store.deleted` at worst, but `x` or `a.b.c` are refused).
    for topic in ["store.deleted.now", "", "Order.created"] {
        let err = p
            .receive_webhook("nosuchshop", topic, body, &sig)
            .await
            .expect_err("bad topic");
        assert_eq!(err.kind(), ErrorKind::InvalidSpec, "{topic:?}");
    }
    p.shutdown().await;
}

#[test]
fn settings_are_validated() {
    let mut s = ProvisionerSettings::default();
    assert!(s.validate().is_ok());
    s.base_domain = ".".to_owned();
    assert_eq!(
        s.validate().expect_err("empty domain").kind(),
        ErrorKind::InvalidConfig
    );
    let mut s = ProvisionerSettings::default();
    s.orchestrator.concurrency = 0;
    assert_eq!(
        s.validate().expect_err("no workers").kind(),
        ErrorKind::InvalidConfig
    );
    let mut s = ProvisionerSettings::default();
    s.plans.small.cpu_limit = "lots".to_owned();
    assert_eq!(
        s.validate().expect_err("bad plan").kind(),
        ErrorKind::InvalidConfig
    );
}

#[test]
fn credentials_debug_never_shows_the_password() {
    let c = StoreCredentials {
        admin_url: None,
        username: "admin".into(),
        password: SecretString::new("s3cret-value-for-the-test"),
    };
    assert!(!format!("{c:?}").contains("s3cret"));
    // Serializing is how an authorised read hands it out.
    let json = serde_json::to_value(&c).expect("json");
    assert_eq!(json["password"], "s3cret-value-for-the-test");
    assert_eq!(json["username"], "admin");
}

#[tokio::test]
async fn a_plan_change_needs_a_ready_store_a_known_plan_and_is_idempotent() {
    let (p, state) = provisioner(Limits::unlimited());
    p.create(
        &acme(),
        CreateStore::named("shop1"),
        RequestOptions::default(),
    )
    .await
    .expect("created");
    let name = StoreName::new("shop1").expect("valid");
    let change = |plan: &str| UpdateStore::plan(plan);
    // Bad input first: nothing named, an unknown plan.
    for bad in [UpdateStore::default(), change("huge")] {
        let err = p
            .update(&acme(), "shop1", bad, RequestOptions::default())
            .await
            .expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::InvalidSpec, "{err}");
    }
    // Pending: not yet.
    let err = p
        .update(&acme(), "shop1", change("large"), RequestOptions::default())
        .await
        .expect_err("not ready");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.tenant_message().contains("Pending"), "{err}");
    // Ready: an upsize needs no cluster read; the record says Updating from guardrails.
    let mut ready = state.get(&name).await.expect("exists");
    ready.mark_ready();
    let ready = state.update(&ready).await.expect("ready");
    let opts = || RequestOptions::idempotency_key("upgrade-1");
    let updating = p
        .update(&acme(), "shop1", change("large"), opts())
        .await
        .expect("accepted");
    assert_eq!(
        (updating.status, updating.plan, updating.step),
        (Status::Updating, Plan::Large, Step::Guardrails)
    );
    assert_eq!(updating.version, ready.version + 1);
    // The same key replays the first answer; the same key for another plan is refused.
    let replay = p
        .update(&acme(), "shop1", change("large"), opts())
        .await
        .expect("replayed");
    assert_eq!(replay, updating);
    let err = p
        .update(&acme(), "shop1", change("medium"), opts())
        .await
        .expect_err("mismatch");
    assert_eq!(err.kind(), ErrorKind::IdempotencyMismatch);
    // Asked again without a key while Updating to the same plan: unchanged, no error.
    let again = p
        .update(&acme(), "shop1", change("large"), RequestOptions::default())
        .await
        .expect("same plan");
    assert_eq!(again.version, updating.version);
    // Another plan while Updating: not now.
    let err = p
        .update(
            &acme(),
            "shop1",
            change("medium"),
            RequestOptions::default(),
        )
        .await
        .expect_err("busy");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    // Another tenant learns nothing.
    let err = p
        .update(
            &globex(),
            "shop1",
            change("small"),
            RequestOptions::default(),
        )
        .await
        .expect_err("hidden");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let updates: Vec<_> = audit_actions(&state)
        .await
        .into_iter()
        .filter(|(action, _)| action == "store.update")
        .collect();
    assert_eq!(
        updates.len(),
        3,
        "one accepted change, two refusals: {updates:?}"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn suspend_and_resume_need_a_ready_store_and_change_nothing_twice() {
    let (p, state) = provisioner(Limits::unlimited());
    p.create(
        &acme(),
        CreateStore::named("shop1"),
        RequestOptions::default(),
    )
    .await
    .expect("created");
    let name = StoreName::new("shop1").expect("valid");
    // Pending: neither yet, and nothing is written.
    for err in [
        p.suspend(&acme(), "shop1", RequestOptions::default()).await,
        p.resume(&acme(), "shop1", RequestOptions::default()).await,
    ]
    .map(|r| r.expect_err("not Ready"))
    {
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        assert!(err.tenant_message().contains("Pending"), "{err}");
    }
    assert!(!state.get(&name).await.expect("exists").suspended);
    let mut ready = state.get(&name).await.expect("exists");
    ready.mark_ready();
    let ready = state.update(&ready).await.expect("ready");
    let suspending = p
        .suspend(&acme(), "shop1", RequestOptions::idempotency_key("s-1"))
        .await
        .expect("suspend");
    assert_eq!(
        (suspending.status, suspending.step, suspending.suspended),
        (Status::Updating, Step::Release, true)
    );
    assert_eq!(suspending.version, ready.version + 1);
    // Again while it is being suspended: unchanged.
    let again = p
        .suspend(&acme(), "shop1", RequestOptions::default())
        .await
        .expect("again");
    assert_eq!(again.version, suspending.version);
    // Resume while the suspend runs: not now.
    let err = p
        .resume(&acme(), "shop1", RequestOptions::default())
        .await
        .expect_err("busy");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.tenant_message().contains("in progress"), "{err}");
    // A suspend that failed (the store was Ready before) may be resumed: the release runs again.
    let mut failed = state.get(&name).await.expect("exists");
    failed.status = Status::Failed;
    state.update(&failed).await.expect("failed");
    let resuming = p
        .resume(&acme(), "shop1", RequestOptions::default())
        .await
        .expect("resume a failed suspend");
    assert_eq!(
        (resuming.status, resuming.step, resuming.suspended),
        (Status::Updating, Step::Release, false)
    );
    // Another tenant learns nothing.
    let err = p
        .suspend(&globex(), "shop1", RequestOptions::default())
        .await
        .expect_err("hidden");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let actions: Vec<_> = audit_actions(&state)
        .await
        .into_iter()
        .filter(|(action, _)| action == "store.suspend" || action == "store.resume")
        .collect();
    assert_eq!(
        actions.len(),
        5,
        "a refused suspend and resume, a suspend, a refused and an accepted resume: {actions:?}"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn only_the_managing_object_may_suspend_a_managed_store() {
    let (p, state) = provisioner(Limits::unlimited());
    let manager = "Store team-a/shop1";
    p.create(
        &acme(),
        CreateStore::named("shop1"),
        RequestOptions::default().managed_by(manager),
    )
    .await
    .expect("created");
    let name = StoreName::new("shop1").expect("valid");
    let mut ready = state.get(&name).await.expect("exists");
    ready.mark_ready();
    state.update(&ready).await.expect("ready");
    let err = p
        .suspend(&admin(), "shop1", RequestOptions::default())
        .await
        .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::ManagedExternally);
    assert!(!state.get(&name).await.expect("kept").suspended);
    let suspended = p
        .suspend(
            &acme(),
            "shop1",
            RequestOptions::default().managed_by(manager),
        )
        .await
        .expect("the manager suspends");
    assert!(suspended.suspended);
    p.shutdown().await;
}

#[tokio::test]
async fn if_version_changes_the_store_only_at_that_version() {
    let (p, state) = provisioner(Limits::unlimited());
    let created = p
        .create(
            &acme(),
            CreateStore::named("shop1"),
            RequestOptions::default(),
        )
        .await
        .expect("created");
    let name = StoreName::new("shop1").expect("valid");
    let mut ready = state.get(&name).await.expect("exists");
    ready.mark_ready();
    let ready = state.update(&ready).await.expect("ready");
    assert_eq!(ready.version, created.version + 1);
    // The version the caller read before the store went Ready is stale for every call.
    let stale = || RequestOptions::default().if_version(created.version);
    let results = [
        p.delete(&acme(), "shop1", stale()).await,
        p.suspend(&acme(), "shop1", stale()).await,
        p.resume(&acme(), "shop1", stale()).await,
        p.retry(&acme(), "shop1", stale()).await,
        p.update(&acme(), "shop1", UpdateStore::plan("large"), stale())
            .await,
        // Even a call that would change nothing checks the precondition first.
        p.update(&acme(), "shop1", UpdateStore::plan("small"), stale())
            .await,
    ];
    for result in results {
        let err = result.expect_err("stale");
        assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
        assert_eq!(err.kind().http_status(), 412);
        assert!(err.tenant_message().contains("read it again"), "{err}");
    }
    assert_eq!(
        state.get(&name).await.expect("kept"),
        ready,
        "nothing changed"
    );
    let suspended = p
        .suspend(
            &acme(),
            "shop1",
            RequestOptions::default().if_version(ready.version),
        )
        .await
        .expect("the current version");
    assert!(suspended.suspended);
    p.shutdown().await;
}
