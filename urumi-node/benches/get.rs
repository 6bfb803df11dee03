//! The Rust baseline of the Node binding's per-call overhead: the same `get` the
//! `memory.test.mjs` benchmark times through Node, on the same setup (memory state, a
//! cluster that is never reached), called directly, then with the binding's conversion
//! to JSON. `cargo bench -p urumi-node --bench get` (needs `helm` on PATH).
#![allow(missing_docs)]

use std::time::Instant;

use urumi_core::store::TenantId;
use urumi_core::{
    Caller, CreateStore, KubeProvisioner, Provisioner, ProvisionerSettings, RequestOptions,
};

const CALLS: u32 = 20_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kubeconfig =
        std::env::temp_dir().join(format!("urumi-node-bench-{}.yaml", std::process::id()));
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\n\
         clusters: [{name: nowhere, cluster: {server: \"http://127.0.0.1:9\"}}]\n\
         users: [{name: nobody, user: {token: none}}]\n\
         contexts: [{name: nowhere, context: {cluster: nowhere, user: nobody}}]\n\
         current-context: nowhere\n",
    )?;
    let p =
        KubeProvisioner::open("memory:", Some(&kubeconfig), ProvisionerSettings::default()).await;
    let _ = std::fs::remove_file(&kubeconfig);
    let p = p?;
    let caller = Caller::admin("bench", TenantId::new("default")?);
    p.create(
        &caller,
        CreateStore::named("bench-get"),
        RequestOptions::default(),
    )
    .await?;

    for _ in 0..1000 {
        p.get(&caller, "bench-get").await?;
    }
    let start = Instant::now();
    for _ in 0..CALLS {
        std::hint::black_box(p.get(&caller, "bench-get").await?);
    }
    let direct = start.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS);

    let start = Instant::now();
    for _ in 0..CALLS {
        let store = p.get(&caller, "bench-get").await?;
        std::hint::black_box(serde_json::to_value(&store)?);
    }
    let with_json = start.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS);

    println!(
        "get in Rust: {direct:.2} µs per call; with the binding's JSON conversion: {with_json:.2} µs"
    );
    p.shutdown().await;
    Ok(())
}
