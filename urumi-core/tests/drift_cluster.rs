//! Drift repair against the local cluster: the periodic resync puts back what someone
//! removed from a Ready store's namespace (a NetworkPolicy, the ResourceQuota), without
//! touching the release. Needs `eval "$(tests/cluster/up)"`.

mod lifecycle_support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ResourceQuota;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::api::DeleteParams;
use lifecycle_support::*;
use urumi_core::Provisioner;
use urumi_core::provisioner::{CreateOptions, CreateStore};

#[tokio::test]
async fn a_deleted_network_policy_and_quota_come_back_within_the_resync_period() {
    let client = kube_client().await;
    let (state, _dir) = sqlite_state().await;
    let mut settings = fast_settings();
    let resync = Duration::from_secs(3);
    settings.orchestrator.resync_interval = resync;
    let p = provisioner(state, settings).await;
    let name = unique("drift");
    let mut cleanup = Cleanup(Vec::new());
    cleanup.add(&name);

    p.create(
        &admin(),
        CreateStore::named(&name),
        CreateOptions::default(),
    )
    .await
    .expect("create");
    wait_ready(&p, &name).await;
    let ns = namespace_of(&name);
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns);
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    let policy_names: Vec<String> = policies
        .list(&Default::default())
        .await
        .expect("list policies")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert!(
        policy_names.iter().any(|n| n == "urumi-default-deny"),
        "{policy_names:?}"
    );
    let releases = |rows: Vec<HelmRow>| -> Vec<(String, String, String)> {
        rows.into_iter()
            .map(|r| (r.name, r.revision, r.status))
            .collect()
    };
    let releases_before = releases(helm_list(&ns).await);
    assert_eq!(releases_before.len(), 1, "{releases_before:?}");

    policies
        .delete("urumi-default-deny", &DeleteParams::default())
        .await
        .expect("delete the default-deny policy");
    quotas
        .delete("urumi-quota", &DeleteParams::default())
        .await
        .expect("delete the quota");

    let started = Instant::now();
    let deadline = started + resync * 3 + Duration::from_secs(10);
    loop {
        let policy = policies
            .get_opt("urumi-default-deny")
            .await
            .expect("get policy");
        let quota = quotas.get_opt("urumi-quota").await.expect("get quota");
        if policy.is_some() && quota.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not repaired after {:?} (policy back: {}, quota back: {})",
            started.elapsed(),
            policy.is_some(),
            quota.is_some()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("drift repaired in {:.1} s", started.elapsed().as_secs_f64());
    let store = p.get(&admin(), &name).await.expect("still there");
    assert_eq!(store.status, urumi_core::store::Status::Ready);
    assert_eq!(
        releases(helm_list(&ns).await),
        releases_before,
        "the release is left alone"
    );

    delete_and_wait(&p, &name).await;
    p.shutdown().await;
}
