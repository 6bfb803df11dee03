//! # urumi-core
//!
//! Provision isolated WooCommerce stores on Kubernetes, embedded in your program.
//!
//! ```text
//!  caller ──create(spec)──▶ Provisioner ──insert──▶ state::StateStore (SQLite / Postgres / memory)
//!                              │                        ▲
//!                              │ audit::AuditSink ◀─────┤ every step is recorded
//!                              ▼                        │
//!                        orchestrator ──claims a lease──┘
//!                              │ Namespace → Guardrails → Credentials → Release → Readiness
//!                              ▼
//!                    Kubernetes API (server-side apply)  +  helm::HelmDriver (helm upgrade --install)
//! ```
//!
//! ## Embedding
//!
//! ```no_run
//! use std::time::Duration;
//! use urumi_core::provisioner::CreateOptions;
//! use urumi_core::store::{Status, TenantId};
//! use urumi_core::{Caller, CreateStore, KubeProvisioner, Provisioner, ProvisionerSettings};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let state = urumi_core::state::open("sqlite://urumi.db").await?;
//! let client = kube::Client::try_default().await?; // $KUBECONFIG or in-cluster
//! let provisioner = KubeProvisioner::builder(client, state)
//!     .settings(ProvisionerSettings::default()) // base domain, plans, limits, …
//!     .build()?; // starts the background worker; `helm` comes from PATH
//! let caller = Caller::tenant("billing-system", TenantId::new("acme")?);
//! provisioner
//!     .create(&caller, CreateStore::named("shop1").plan("small"), CreateOptions::default())
//!     .await?; // Pending; provisioning runs in the background
//! let store = provisioner
//!     .wait(&caller, "shop1", Some(Status::Ready), Duration::from_secs(600))
//!     .await?;
//! println!("{:?}", store.map(|s| s.urls));
//! # Ok(())
//! # }
//! ```
//!
//! A runnable version is `examples/lifecycle.rs`:
//! `cargo run -p urumi-core --example lifecycle -- up shop1 --state sqlite://urumi.db`.
#![forbid(unsafe_code)]

pub mod audit;
pub mod engine;
pub mod error;
pub mod guardrails;
pub mod helm;
pub mod limits;
pub mod orchestrator;
pub mod provisioner;
pub mod state;
pub mod store;

pub use error::{Error, ErrorKind, Result};
pub use provisioner::{
    Caller, CreateStore, KubeProvisioner, Provisioner, ProvisionerSettings, Role,
};
