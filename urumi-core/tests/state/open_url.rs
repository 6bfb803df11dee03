//! `state::open(url)`: which URLs it takes and how it refuses the rest.

use urumi_core::ErrorKind;
use urumi_core::state;

#[tokio::test]
async fn memory_url_opens_an_empty_store() {
    let store = state::open("memory:").await.expect("memory:");
    assert_eq!(store.backend(), "memory");
    store.ping().await.expect("ping");
}

#[tokio::test]
async fn unknown_schemes_are_unsupported_and_named() {
    for url in ["mysql://db/urumi", "redis://x", "urumi.db", ""] {
        let err = state::open(url).await.expect_err(url);
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{url}: {err}");
        assert!(
            err.to_string().contains("sqlite://"),
            "the error lists what works: {err}"
        );
    }
}

#[tokio::test]
async fn sqlite_without_a_path_is_invalid_config() {
    let err = state::open("sqlite://").await.expect_err("no path");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
}

#[tokio::test]
async fn sqlite_in_a_missing_directory_is_an_error_not_a_panic() {
    let err = state::open("sqlite:///nonexistent-urumi-dir/sub/urumi.db")
        .await
        .expect_err("missing directory");
    assert!(
        err.to_string().contains("nonexistent-urumi-dir"),
        "names the path: {err}"
    );
}

#[tokio::test]
async fn a_malformed_postgres_url_is_invalid_config_without_the_password() {
    let err = state::open("postgres://user:hunter2@host:notaport/db")
        .await
        .expect_err("malformed");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(
        !err.to_string().contains("hunter2"),
        "password leaked: {err}"
    );
}

#[test]
fn urls_are_redacted_before_they_reach_a_message() {
    let shown = state::redact_url("postgres://urumi:topsecret@db:5432/urumi?sslmode=require");
    assert!(!shown.contains("topsecret"), "{shown}");
    assert!(
        shown.contains("db:5432") && shown.contains("***"),
        "{shown}"
    );
    assert_eq!(state::redact_url("no url at all"), "<unparseable URL>");
}

#[test]
fn request_hashes_tell_bodies_apart() {
    let a = state::request_hash("POST", "/api/v1/stores", br#"{"name":"shop1"}"#);
    assert_eq!(
        a,
        state::request_hash("POST", "/api/v1/stores", br#"{"name":"shop1"}"#)
    );
    assert_ne!(
        a,
        state::request_hash("POST", "/api/v1/stores", br#"{"name":"shop2"}"#)
    );
    assert_ne!(
        a,
        state::request_hash("DELETE", "/api/v1/stores", br#"{"name":"shop1"}"#)
    );
    assert_eq!(a.len(), 64, "hex SHA-256");
}
