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
//! use urumi_core::store::{Status, TenantId};
//! use urumi_core::{Caller, CreateStore, KubeProvisioner, Provisioner, ProvisionerSettings, RequestOptions};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // State store, cluster ($KUBECONFIG or in-cluster) and `helm` from PATH, in one call.
//! let provisioner =
//!     KubeProvisioner::open("sqlite://urumi.db", None, ProvisionerSettings::default()).await?;
//! let caller = Caller::tenant("billing-system", TenantId::new("acme")?);
//! provisioner
//!     .create(
//!         &caller,
//!         CreateStore::named("shop1").plan("small"),
//!         RequestOptions::idempotency_key("order-1001"), // safe to repeat
//!     )
//!     .await?; // Pending; provisioning runs in the background
//! let store = provisioner
//!     .wait(&caller, "shop1", Status::Ready, Duration::from_secs(600))
//!     .await?;
//! println!("{:?}", store.urls);
//! provisioner.shutdown().await; // or drop it: the worker stops with the last handle
//! # Ok(())
//! # }
//! ```
//!
//! Changes to stores are a durable, ordered feed: `provisioner.changes(&caller, after)`
//! replays what followed a cursor, then follows live, across replicas.
//!
//! A runnable version is `examples/lifecycle.rs`:
//! `cargo run -p urumi-core --example lifecycle -- up shop1 --state sqlite://urumi.db`.
#![forbid(unsafe_code)]

pub mod audit;
pub mod engine;
pub mod error;
pub mod guardrails;
pub mod helm;
pub mod kubeconfig;
pub mod limits;
#[cfg(feature = "operator")]
pub mod operator;
pub mod orchestrator;
pub mod provisioner;
pub mod state;
pub mod store;
pub mod verify;

pub use error::{Error, ErrorKind, Result};
/// The Kubernetes client crate urumi-core is built on, so embedders need not match its
/// version: `urumi_core::kube::Client`.
pub use kube;
pub use provisioner::{
    Caller, CreateStore, KubeProvisioner, Provisioner, ProvisionerSettings, RequestOptions, Role,
    UpdateStore,
};
pub use state::{Change, ChangeKind};
