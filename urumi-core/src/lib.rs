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
