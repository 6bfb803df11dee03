//! helm failing and hanging under the real server on the real cluster: a wrapper `helm`
//! first on the server's PATH makes the next install of a marked store fail as the API
//! server rejecting an object would, or hang; the store fails with the reason, then a
//! retry (the fault cleared) brings it to Ready on one deployed release.
//!
//! ```text
//!  wrapper helm: upgrade in namespace store-X while <dir>/reject-X exists ─▶ exit 1 with a
//!                "admission webhook … denied the request" error (the file removed: real helm)
//!                                         while <dir>/hang-X exists ─▶ sleeps (helmTimeoutSecs 6)
//!  create ─▶ Failed (release step, reason) ─▶ fault file removed ─▶ retry ─▶ Ready, one release
//! ```

mod support;

use serde_json::json;
use support::{Cleanup, READY_TIMEOUT, Server, unique};

async fn fault_then_retry(fault: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_with_faulty_helm(dir.path(), "helmTimeoutSecs = 6");
    let acme = server.client(&server.keys.acme);
    let name = unique(&format!("hf{}", &fault[..3]));
    let mut cleanup = Cleanup::default();
    cleanup.add(&name);
    let marker = dir.path().join(format!("{fault}-{name}"));
    std::fs::write(&marker, "").expect("marker");

    let a = acme.post("/api/v1/stores", json!({ "name": name })).await;
    assert_eq!(a.status, 202, "{}", a.json);
    let failed = acme.wait_status(&name, "Failed", READY_TIMEOUT).await;
    let message = failed["message"].as_str().unwrap_or("").to_owned();
    assert_eq!(failed["step"], "release", "{failed}");
    let expected = if fault == "reject" {
        "rejected"
    } else {
        "timed out"
    };
    assert!(message.contains(expected), "{fault}: {message}");
    assert!(
        !message.contains("deny.example"),
        "raw helm output reached the tenant: {message}"
    );

    std::fs::remove_file(&marker).expect("clear the fault");
    let a = acme
        .post_empty(&format!("/api/v1/stores/{name}/retry"))
        .await;
    assert_eq!(a.status, 202, "{}", a.json);
    acme.wait_status(&name, "Ready", READY_TIMEOUT).await;
    let releases = support::releases_in(&format!("store-{name}"));
    assert_eq!(releases.len(), 1, "{releases:?}");
    assert_eq!(releases[0]["status"], "deployed", "{releases:?}");
    support::report_count(&format!(
        "faults: helm {fault}s an install; stores affected: 1, Failed at its {} step \
         ({message}), Ready on one deployed release after a retry",
        failed["step"].as_str().unwrap_or("?")
    ));
    let a = acme.delete(&format!("/api/v1/stores/{name}")).await;
    assert_eq!(a.status, 202);
    acme.wait_gone(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_the_api_rejects_fails_the_store_and_a_retry_clears_it() {
    fault_then_retry("reject").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_helm_times_out_and_a_retry_clears_it() {
    fault_then_retry("hang").await;
}
