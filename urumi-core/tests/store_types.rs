//! The pure types: name rules (table + property tests), ids, plans, JSON shapes of the
//! API, and the error kinds' stable codes.
#![allow(clippy::unwrap_used, missing_docs)]

use proptest::prelude::*;
use urumi_core::error::{Error, ErrorKind, HelmFailure, QuotaScope};
use urumi_core::store::{
    AuditEvent, EngineId, NameRule, Outcome, Plan, Plans, RESERVED_NAMES, Status, Step, Store,
    StoreName, StoreSpec, TenantId,
};

fn rule_of(name: &str) -> Option<NameRule> {
    match StoreName::new(name) {
        Ok(_) => None,
        Err(Error::InvalidName { rule, .. }) => Some(rule),
        Err(other) => panic!("{name:?}: unexpected error {other}"),
    }
}

#[test]
fn name_rules_table() {
    use NameRule::*;
    let table: &[(&str, Option<NameRule>)] = &[
        ("shop", None),
        ("a1b", None),
        ("my-shop-2", None),
        ("a-b", None),
        ("abc", None),
        (&"a".repeat(40), None),
        ("", Some(TooShort)),
        ("ab", Some(TooShort)),
        (&"a".repeat(41), Some(TooLong)),
        ("1shop", Some(MustStartWithLetter)),
        ("-shop", Some(MustStartWithLetter)),
        ("shop-", Some(MustEndWithLetterOrDigit)),
        ("Shop", Some(InvalidCharacter('S'))),
        ("sh_op", Some(InvalidCharacter('_'))),
        ("sh.op", Some(InvalidCharacter('.'))),
        ("sh op", Some(InvalidCharacter(' '))),
        ("shöp", Some(InvalidCharacter('ö'))),
        ("shop/x", Some(InvalidCharacter('/'))),
        ("kube-system", Some(Reserved)),
        ("kube-anything", Some(Reserved)),
        ("kubex", None),
    ];
    for (name, want) in table {
        assert_eq!(&rule_of(name), want, "name {name:?}");
    }
}

#[test]
fn every_reserved_name_is_refused_and_says_so() {
    for name in RESERVED_NAMES {
        let err = StoreName::new(*name).expect_err(name);
        assert_eq!(err.kind(), ErrorKind::InvalidName);
        assert!(err.to_string().contains("reserved"), "{name}: {err}");
    }
    for name in [
        "api",
        "admin",
        "dashboard",
        "www",
        "default",
        "mail",
        "ftp",
        "static",
    ] {
        assert!(RESERVED_NAMES.contains(&name), "{name} must be reserved");
    }
}

#[test]
fn the_error_names_the_rule_for_a_human() {
    let msg = StoreName::new("ab").unwrap_err().to_string();
    assert!(msg.contains("at least 3"), "{msg}");
    let msg = StoreName::new("Shop").unwrap_err().to_string();
    assert!(msg.contains("lowercase letters, digits and '-'"), "{msg}");
}

proptest! {
    #[test]
    fn valid_labels_are_accepted(name in "[a-z][a-z0-9-]{1,38}[a-z0-9]") {
        prop_assume!(!name.starts_with("kube-") && !RESERVED_NAMES.contains(&name.as_str()));
        let parsed = StoreName::new(name.clone());
        prop_assert!(parsed.is_ok(), "{name:?} refused: {:?}", parsed.err());
    }

    #[test]
    fn accepted_names_match_the_documented_pattern(name in "\\PC{0,50}") {
        if let Ok(n) = StoreName::new(name.clone()) {
            let s = n.as_str();
            prop_assert!((3..=40).contains(&s.len()));
            prop_assert!(s.starts_with(|c: char| c.is_ascii_lowercase()));
            prop_assert!(s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()));
            prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        }
    }

    #[test]
    fn names_with_a_foreign_character_are_refused(
        prefix in "[a-z]{2,10}", bad in "[^a-z0-9-]", suffix in "[a-z]{1,10}"
    ) {
        let name = format!("{prefix}{bad}{suffix}");
        let c = bad.chars().next().unwrap();
        prop_assert_eq!(rule_of(&name), Some(NameRule::InvalidCharacter(c)));
    }
}

#[test]
fn tenant_and_engine_ids_are_validated() {
    for ok in ["acme", "a", "tenant-42", "0x"] {
        TenantId::new(ok).expect(ok);
    }
    for bad in ["", "-acme", "acme-", "Acme", "ac_me", &"a".repeat(64)] {
        let err = TenantId::new(bad).expect_err(bad);
        assert_eq!(err.kind(), ErrorKind::InvalidSpec, "{bad}");
    }
    assert_eq!(EngineId::default().as_str(), "woocommerce");
    for ok in ["woocommerce", "medusa_js", "m2"] {
        EngineId::new(ok).expect(ok);
    }
    for bad in ["", "1x", "Woo", "woo commerce", &"e".repeat(33)] {
        assert_eq!(
            EngineId::new(bad).unwrap_err().kind(),
            ErrorKind::InvalidSpec,
            "{bad}"
        );
    }
}

fn mk() -> Store {
    let spec = StoreSpec::new(
        StoreName::new("shop1").unwrap(),
        TenantId::new("acme").unwrap(),
    );
    Store::new(spec, "store-shop1")
}

#[test]
fn store_json_matches_the_api() {
    let mut s = mk();
    s.urls.storefront = Some("http://shop1.127.0.0.1.nip.io".into());
    let v = serde_json::to_value(&s).unwrap();
    for key in [
        "name",
        "tenant",
        "engine",
        "plan",
        "status",
        "step",
        "message",
        "namespace",
        "urls",
        "createdAt",
        "updatedAt",
        "readyAt",
        "provisioningSeconds",
        "attempts",
    ] {
        assert!(v.get(key).is_some(), "Store JSON lacks {key}: {v}");
    }
    assert_eq!(v["status"], "Pending");
    assert_eq!(v["step"], "namespace");
    assert_eq!(v["plan"], "small");
    assert_eq!(v["engine"], "woocommerce");
    assert_eq!(v["urls"]["storefront"], "http://shop1.127.0.0.1.nip.io");
    let back: Store = serde_json::from_value(v).unwrap();
    assert_eq!(back, s);
}

#[test]
fn json_with_an_invalid_name_does_not_deserialize() {
    let mut v = serde_json::to_value(mk()).unwrap();
    v["name"] = "Admin!".into();
    assert!(serde_json::from_value::<Store>(v).is_err());
    let spec: StoreSpec = serde_json::from_str(r#"{"name":"shop2","tenant":"acme"}"#).unwrap();
    assert_eq!(
        (spec.engine.as_str(), spec.plan),
        ("woocommerce", Plan::Small)
    );
}

#[test]
fn steps_and_statuses_serialize_as_documented() {
    let steps: Vec<String> = Step::ALL
        .iter()
        .map(|s| serde_json::to_value(s).unwrap().to_string())
        .collect();
    assert_eq!(
        steps,
        [
            "\"namespace\"",
            "\"guardrails\"",
            "\"credentials\"",
            "\"release\"",
            "\"readiness\"",
            "\"done\""
        ]
    );
    for s in Status::ALL {
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
    }
    assert_eq!(Step::Release.next(), Step::Readiness);
    assert_eq!(Step::Done.next(), Step::Done);
    assert!(Status::Ready.is_at_rest() && Status::Failed.is_at_rest());
    assert!(!Status::Pending.is_at_rest() && !Status::Deleting.is_at_rest());
}

#[test]
fn audit_event_json_matches_the_api() {
    let e = AuditEvent::new("key:ops", "store.create", Outcome::Denied)
        .tenant("acme")
        .store("shop1")
        .source_ip("10.0.0.7".parse().unwrap());
    let v = serde_json::to_value(&e).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "action", "actor", "at", "detail", "id", "outcome", "sourceIp", "store", "tenant"
        ]
    );
    assert_eq!(v["outcome"], "denied");
    assert_eq!(v["sourceIp"], "10.0.0.7");
}

#[test]
fn plans_grow_and_are_configurable() {
    let plans = Plans::default();
    assert!(plans.size(Plan::Medium).pods > plans.size(Plan::Small).pods);
    assert!(plans.size(Plan::Large).pods > plans.size(Plan::Medium).pods);
    let custom: Plans = serde_json::from_str(
        r#"{"small":{"cpu_request":"250m","cpu_limit":"500m",
        "memory_request":"256Mi","memory_limit":"512Mi","pods":4,"pvcs":2,"storage":"2Gi"}}"#,
    )
    .unwrap();
    assert_eq!(custom.small.cpu_request, "250m");
    assert_eq!(
        custom.large,
        Plans::default().large,
        "unset plans keep their defaults"
    );
    assert_eq!("medium".parse::<Plan>().unwrap(), Plan::Medium);
    assert_eq!(
        "huge".parse::<Plan>().unwrap_err().kind(),
        ErrorKind::InvalidSpec
    );
}

#[test]
fn error_codes_are_the_apis() {
    let codes: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
    for code in [
        "invalid_name",
        "invalid_spec",
        "store_exists",
        "not_found",
        "quota_exceeded",
        "rate_limited",
        "conflict",
        "idempotency_mismatch",
        "idempotency_in_progress",
        "unauthorized",
        "forbidden",
        "timeout",
        "unavailable",
        "unsupported",
        "internal",
    ] {
        assert!(codes.contains(&code), "missing code {code}");
    }
    let mut unique = codes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), codes.len(), "codes are distinct");
}

#[test]
fn retryability_and_retry_after() {
    let rl = Error::RateLimited {
        limit: 5,
        retry_after_secs: 42,
    };
    assert_eq!(rl.kind().as_str(), "rate_limited");
    assert!(rl.is_retryable());
    assert_eq!(rl.retry_after().map(|d| d.as_secs()), Some(42));
    assert_eq!(rl.kind().http_status(), 429);
    let q = Error::QuotaExceeded {
        scope: QuotaScope::Tenant,
        limit: 10,
    };
    assert!(!q.is_retryable(), "a full quota does not clear by waiting");
    assert_eq!(q.retry_after(), None);
    let transient = Error::Helm(HelmFailure {
        operation: "upgrade".into(),
        message: "another operation is in progress".into(),
        retryable: true,
    });
    assert_eq!(transient.kind(), ErrorKind::Unavailable);
    let permanent: Error = HelmFailure {
        operation: "upgrade".into(),
        message: "chart not found".into(),
        retryable: false,
    }
    .into();
    assert_eq!(permanent.kind(), ErrorKind::Internal);
    assert!(!permanent.is_retryable());
    assert_eq!(Error::store_not_found("x").kind().http_status(), 404);
}

#[test]
fn kubernetes_errors_fold_in_by_status() {
    use kube::core::Status as KStatus;
    let api = |code: u16| -> Error {
        kube::Error::Api(
            KStatus::failure("the server said no", "Reason")
                .with_code(code)
                .boxed(),
        )
        .into()
    };
    assert_eq!(api(503).kind(), ErrorKind::Unavailable, "5xx is transient");
    assert_eq!(
        api(429).kind(),
        ErrorKind::Unavailable,
        "throttling is transient"
    );
    assert_eq!(
        api(409).kind(),
        ErrorKind::Unavailable,
        "a write conflict is retried"
    );
    assert_eq!(api(403).kind(), ErrorKind::Internal, "RBAC needs a human");
    assert_eq!(api(422).kind(), ErrorKind::Internal);
    let msg = api(403).to_string();
    assert!(
        msg.contains("403") && msg.contains("the server said no"),
        "{msg}"
    );
}
