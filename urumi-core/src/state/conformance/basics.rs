//! Records: insert, get, list, update, delete; and the audit table.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use chrono::Duration as Span;

use super::{insert_ok, kind_of, mk_store, mk_store_at, name, set_status, tenant};
use crate::audit::AuditQuery;
use crate::error::ErrorKind;
use crate::state::{InsertOptions, ListQuery, StateStore};
use crate::store::{self, AuditEvent, Outcome, Plan, Status, Step};

pub async fn case_insert_then_get_round_trips(store: Arc<dyn StateStore>) {
    let mut s = mk_store("shop1", "acme");
    s.plan = Plan::Large;
    s.message = "accepted: ünïcode ✓".into();
    s.urls.storefront = Some("http://shop1.example".into());
    s.ready_at = Some(store::now());
    s.provisioning_seconds = Some(12.5);
    s.attempts = 2;
    s.managed_by = Some("Store team-a/shop1".into());
    s.suspended = true;
    s.chart = Some(store::StoreChart {
        version: "0.2.0".into(),
        app_version: "7.1.0".into(),
        outdated: false,
    });
    let stored = insert_ok(&store, &s).await;
    assert_eq!(stored.version, 1, "a new record starts at version 1");
    let got = store.get(&name("shop1")).await.expect("get after insert");
    assert_eq!(got, stored, "get returns exactly what insert stored");
    assert_eq!(
        got.created_at, s.created_at,
        "created_at keeps microseconds"
    );
    assert_eq!(got.message, s.message);
    assert_eq!(got.plan, Plan::Large);
    assert_eq!(got.provisioning_seconds, Some(12.5));
    assert_eq!(got.managed_by.as_deref(), Some("Store team-a/shop1"));
    assert!(got.suspended, "suspended is stored");
    assert_eq!(got.chart, s.chart, "the chart is stored");
}

pub async fn case_duplicate_name_is_store_exists(store: Arc<dyn StateStore>) {
    insert_ok(&store, &mk_store("shop1", "acme")).await;
    let again = store
        .insert(&mk_store("shop1", "other"), &super::unlimited())
        .await;
    assert_eq!(
        kind_of(again),
        ErrorKind::StoreExists,
        "names are unique across tenants"
    );
    let got = store.get(&name("shop1")).await.expect("first store kept");
    assert_eq!(got.tenant, tenant("acme"), "the first store is untouched");
}

pub async fn case_missing_store_is_not_found(store: Arc<dyn StateStore>) {
    assert_eq!(kind_of(store.get(&name("nope")).await), ErrorKind::NotFound);
    assert_eq!(
        kind_of(store.delete(&name("nope")).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind_of(store.update(&mk_store("nope", "acme")).await),
        ErrorKind::NotFound
    );
}

pub async fn case_list_is_newest_first_and_pages_without_gaps(store: Arc<dyn StateStore>) {
    let base = store::now() - Span::hours(1);
    // Two stores share a timestamp: the name breaks the tie.
    for (i, n) in ["s-a", "s-b", "s-c", "s-d", "s-e", "s-f", "s-g"]
        .iter()
        .enumerate()
    {
        let at = base + Span::seconds(i.min(5) as i64);
        insert_ok(&store, &mk_store_at(n, "acme", at)).await;
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    for page_no in 0..10 {
        let q = ListQuery {
            limit: Some(3),
            cursor: cursor.clone(),
            ..Default::default()
        };
        let page = store.list(&q).await.expect("list page");
        assert!(
            page.items.len() <= 3,
            "page {page_no} is larger than its limit"
        );
        seen.extend(page.items.iter().map(|s| s.name.to_string()));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(
        seen,
        ["s-g", "s-f", "s-e", "s-d", "s-c", "s-b", "s-a"],
        "newest first, ties by name descending, every store exactly once"
    );
    let all = store.list(&ListQuery::default()).await.expect("list");
    assert_eq!(all.items.len(), 7);
    assert_eq!(all.next_cursor, None, "a short last page has no cursor");
}

pub async fn case_list_filters_by_tenant_and_status(store: Arc<dyn StateStore>) {
    insert_ok(&store, &mk_store("a-one", "acme")).await;
    insert_ok(&store, &mk_store("a-two", "acme")).await;
    insert_ok(&store, &mk_store("b-one", "beta")).await;
    set_status(&store, "a-two", Status::Ready).await;
    let q = |t: Option<&str>, s: Option<Status>| ListQuery {
        tenant: t.map(tenant),
        status: s,
        ..Default::default()
    };
    let names = |p: crate::state::Page<store::Store>| {
        let mut v: Vec<String> = p.items.into_iter().map(|s| s.name.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(
        names(store.list(&q(Some("acme"), None)).await.unwrap()),
        ["a-one", "a-two"]
    );
    assert_eq!(
        names(store.list(&q(None, Some(Status::Ready))).await.unwrap()),
        ["a-two"]
    );
    assert_eq!(
        names(
            store
                .list(&q(Some("beta"), Some(Status::Pending)))
                .await
                .unwrap()
        ),
        ["b-one"]
    );
    assert!(
        store
            .list(&q(Some("nobody"), None))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn case_list_rejects_bad_limit_and_cursor(store: Arc<dyn StateStore>) {
    for limit in [0, 1001] {
        let q = ListQuery {
            limit: Some(limit),
            ..Default::default()
        };
        assert_eq!(
            kind_of(store.list(&q).await),
            ErrorKind::InvalidSpec,
            "limit {limit}"
        );
    }
    let q = ListQuery {
        cursor: Some("not-a-cursor".into()),
        ..Default::default()
    };
    assert_eq!(kind_of(store.list(&q).await), ErrorKind::InvalidSpec);
}

pub async fn case_update_bumps_version_and_refuses_stale(store: Arc<dyn StateStore>) {
    let v1 = insert_ok(&store, &mk_store("shop1", "acme")).await;
    let mut next = v1.clone();
    next.status = Status::Provisioning;
    next.step = Step::Release;
    next.attempts = 1;
    next.updated_at = store::now();
    let v2 = store
        .update(&next)
        .await
        .expect("update at the current version");
    assert_eq!(v2.version, 2);
    assert_eq!(v2.step, Step::Release);
    assert_eq!(v2.created_at, v1.created_at, "created_at never changes");
    let mut suspend = v2.clone();
    suspend.suspended = true;
    let v3 = store.update(&suspend).await.expect("suspend");
    assert!(v3.suspended, "an update writes suspended");
    let mut resume = v3.clone();
    resume.suspended = false;
    resume.chart = Some(store::StoreChart {
        version: "0.3.0".into(),
        app_version: "".into(),
        outdated: false,
    });
    resume.rollback_to = Some(3);
    let current = store.update(&resume).await.expect("resume");
    assert_eq!(current.rollback_to, Some(3), "an update writes rollback_to");
    assert!(!current.suspended, "and clears it");
    assert_eq!(current.chart, resume.chart, "an update writes the chart");
    assert_eq!(current.version, 4);
    let mut stale = v1.clone();
    stale.message = "lost update".into();
    assert_eq!(
        kind_of(store.update(&stale).await),
        ErrorKind::Conflict,
        "stale version"
    );
    let got = store.get(&name("shop1")).await.unwrap();
    assert_eq!(got, current, "a refused update changes nothing");
}

pub async fn case_delete_removes_the_record(store: Arc<dyn StateStore>) {
    insert_ok(&store, &mk_store("shop1", "acme")).await;
    store.delete(&name("shop1")).await.expect("delete");
    assert_eq!(
        kind_of(store.get(&name("shop1")).await),
        ErrorKind::NotFound
    );
    assert!(
        store
            .list(&ListQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    insert_ok(&store, &mk_store("shop1", "acme")).await; // the name is free again
}

fn event(action: &str, store_name: &str, tenant_id: &str, at_offset_s: i64) -> AuditEvent {
    AuditEvent::new("key:ops", action, Outcome::Success)
        .tenant(tenant_id)
        .store(store_name)
        .detail("ok")
        .source_ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .at(store::now() - chrono::Duration::minutes(10) + Span::seconds(at_offset_s))
}

/// An insert carrying an audit event writes both or neither: a reader who finds the store
/// finds the event that created it, and a refused insert leaves no event behind.
pub async fn case_insert_appends_its_audit_event_atomically(store: Arc<dyn StateStore>) {
    let created = event("store.create", "shop1", "acme", 0);
    let opts = InsertOptions {
        audit: Some(created.clone()),
        ..super::unlimited()
    };
    store
        .insert(&mk_store("shop1", "acme"), &opts)
        .await
        .expect("insert with its audit event");
    let for_shop1 = |s: &'static str| AuditQuery {
        store: Some(s.into()),
        ..AuditQuery::default()
    };
    let trail = store.query_audit(&for_shop1("shop1")).await.unwrap();
    assert_eq!(
        trail.items,
        vec![created.clone()],
        "the event came with the insert"
    );
    store
        .append_audit(&created)
        .await
        .expect("appending the same event afterwards is accepted");
    let trail = store.query_audit(&for_shop1("shop1")).await.unwrap();
    assert_eq!(trail.items.len(), 1, "and kept once");

    let refused = event("store.create", "shop1", "acme", 1);
    let again = InsertOptions {
        audit: Some(refused),
        ..super::unlimited()
    };
    assert_eq!(
        kind_of(store.insert(&mk_store("shop1", "acme"), &again).await),
        ErrorKind::StoreExists
    );
    let trail = store.query_audit(&for_shop1("shop1")).await.unwrap();
    assert_eq!(trail.items.len(), 1, "a refused insert appends no event");

    let limited = InsertOptions {
        limits: crate::limits::Limits {
            stores_per_tenant: 1,
            ..crate::limits::Limits::unlimited()
        },
        audit: Some(event("store.create", "shop2", "acme", 2)),
        ..InsertOptions::default()
    };
    assert_eq!(
        kind_of(store.insert(&mk_store("shop2", "acme"), &limited).await),
        ErrorKind::QuotaExceeded
    );
    assert!(
        store
            .query_audit(&for_shop1("shop2"))
            .await
            .unwrap()
            .items
            .is_empty(),
        "an insert over a limit appends no event"
    );
}

pub async fn case_audit_is_append_only_and_queryable(store: Arc<dyn StateStore>) {
    let events = [
        event("store.create", "shop1", "acme", 0),
        event("provision.namespace", "shop1", "acme", 1),
        event("provision.release", "shop1", "acme", 2),
        event("store.create", "shop2", "beta", 3),
        event("store.ready", "shop1", "acme", 4),
    ];
    for e in &events {
        store.append_audit(e).await.expect("append");
    }
    store
        .append_audit(&events[0])
        .await
        .expect("re-append of the same id is accepted");
    let all = store
        .query_audit(&AuditQuery::default())
        .await
        .expect("query");
    assert_eq!(all.items.len(), 5, "the same event id is kept once");
    assert_eq!(all.items[0], events[4], "newest first, stored exactly");
    let q = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery::default();
        f(&mut q);
        q
    };
    let count = |p: crate::state::Page<AuditEvent>| p.items.len();
    let s = &store;
    assert_eq!(
        count(
            s.query_audit(&q(|q| q.store = Some("shop1".into())))
                .await
                .unwrap()
        ),
        4
    );
    assert_eq!(
        count(
            s.query_audit(&q(|q| q.tenant = Some("beta".into())))
                .await
                .unwrap()
        ),
        1
    );
    assert_eq!(
        count(
            s.query_audit(&q(|q| q.action = Some("store.create".into())))
                .await
                .unwrap()
        ),
        2
    );
    assert_eq!(
        count(
            s.query_audit(&q(|q| q.action = Some("provision.*".into())))
                .await
                .unwrap()
        ),
        2
    );
    let since = events[2].at;
    let q_since = AuditQuery {
        since: Some(since),
        ..Default::default()
    };
    assert_eq!(
        count(s.query_audit(&q_since).await.unwrap()),
        3,
        "since is inclusive"
    );
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let q = AuditQuery {
            limit: Some(2),
            cursor: cursor.clone(),
            ..Default::default()
        };
        let page = s.query_audit(&q).await.expect("audit page");
        seen.extend(page.items.into_iter().map(|e| e.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let want: Vec<_> = events.iter().rev().map(|e| e.id).collect();
    assert_eq!(
        seen, want,
        "audit pages cover every event once, newest first"
    );
}

pub async fn case_status_counts_cover_every_status(store: Arc<dyn StateStore>) {
    for n in ["c-one", "c-two", "c-three"] {
        insert_ok(&store, &mk_store(n, "acme")).await;
    }
    set_status(&store, "c-two", Status::Ready).await;
    let counts = store.status_counts().await.expect("status_counts");
    let want = [
        (Status::Pending, 2),
        (Status::Provisioning, 0),
        (Status::Ready, 1),
        (Status::Failed, 0),
        (Status::Deleting, 0),
        (Status::Updating, 0),
        (Status::Degraded, 0),
    ];
    assert_eq!(
        counts, want,
        "every status, zeros included, in Status::ALL order"
    );
}
