//! The Rust baseline of the Python binding's `get` overhead: `Provisioner::get` on a
//! `memory:` state, called from Rust, in µs per call (urumi-py/tests/test_memory.py
//! prints the same figure through Python). Needs a cluster (`eval "$(tests/cluster/up)"`):
//! `cargo bench -p urumi-py --bench get_overhead`.
#![allow(missing_docs)]

use std::time::Instant;

use urumi_core::limits::Limits;
use urumi_core::store::TenantId;
use urumi_core::{Caller, CreateStore, KubeProvisioner, Provisioner, ProvisionerSettings};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = ProvisionerSettings {
        limits: Limits::unlimited(),
        ..Default::default()
    };
    let p = KubeProvisioner::open("memory:", None, settings).await?;
    let caller = Caller::admin("bench", TenantId::new("default")?);
    let name = format!("rs-bench-{:06x}", std::process::id() & 0xff_ffff);
    p.create(&caller, CreateStore::named(&name), Default::default())
        .await?;
    for _ in 0..200 {
        p.get(&caller, &name).await?;
    }
    let n = 2000;
    let t0 = Instant::now();
    for _ in 0..n {
        p.get(&caller, &name).await?;
    }
    let us = t0.elapsed().as_secs_f64() / f64::from(n) * 1e6;
    println!("rust Provisioner::get on memory: state: {us:.1} us/call");
    p.delete(&caller, &name, Default::default()).await?;
    p.wait_deleted(&caller, &name, std::time::Duration::from_secs(240))
        .await?;
    p.shutdown().await;
    Ok(())
}
