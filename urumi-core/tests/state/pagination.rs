//! Model-based property test of `list`: for random stores, filters and page sizes,
//! walking the pages yields exactly the filtered model, newest first, on each backend.

use std::sync::Arc;

use chrono::Duration as Span;
use proptest::prelude::*;
use urumi_core::state::{ListQuery, StateStore, conformance};
use urumi_core::store::{self, Status, TenantId};

#[derive(Debug, Clone)]
struct Case {
    stores: Vec<(i64, usize, usize)>, // (created offset s, tenant index, status index)
    page: u32,
    tenant: Option<usize>,
    status: Option<usize>,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec((0i64..4, 0usize..3, 0usize..5), 0..30),
        1u32..7,
        prop::option::of(0usize..3),
        prop::option::of(0usize..5),
    )
        .prop_map(|(stores, page, tenant, status)| Case {
            stores,
            page,
            tenant,
            status,
        })
}

async fn check(st: Arc<dyn StateStore>, case: Case) -> Result<(), TestCaseError> {
    let base = store::now() - Span::hours(1);
    let mut model = Vec::new();
    for (i, (offset, t, s)) in case.stores.iter().enumerate() {
        let name = format!("p-{i:03}");
        let mut rec = conformance::mk_store(&name, &format!("t{t}"));
        rec.created_at = base + Span::seconds(*offset);
        rec.status = Status::ALL[*s];
        let stored = st
            .insert(&rec, &conformance::unlimited())
            .await
            .expect("insert");
        model.push(stored);
    }
    let tenant = case
        .tenant
        .map(|t| TenantId::new(format!("t{t}")).expect("tenant"));
    let status = case.status.map(|s| Status::ALL[s]);
    model.retain(|s| tenant.as_ref().is_none_or(|t| s.tenant == *t));
    model.retain(|s| status.is_none_or(|st| s.status == st));
    model.sort_by(|a, b| (b.created_at, &b.name).cmp(&(a.created_at, &a.name)));

    let mut walked = Vec::new();
    let mut cursor = None;
    for _ in 0..100 {
        let q = ListQuery {
            tenant: tenant.clone(),
            status,
            limit: Some(case.page),
            cursor: cursor.clone(),
        };
        let page = st.list(&q).await.expect("list");
        prop_assert!(page.items.len() <= case.page as usize);
        walked.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    prop_assert_eq!(walked, model);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn memory_pages_walk_the_model(case in cases()) {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async { check(crate::memory().await.0, case).await })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn sqlite_pages_walk_the_model(case in cases()) {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let (st, _guard) = crate::sqlite().await;
            check(st, case).await
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    #[test]
    fn postgres_pages_walk_the_model(case in cases()) {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async { check(crate::postgres().await.0, case).await })?;
    }
}
