//! # urumi-node
//!
//! Node.js bindings for [`urumi_core`]: the native half of the `@urumi/node` package.
//!
//! ```text
//!  JS: index.js / index.mjs (the shim: UrumiError with .code, changes() as async generator)
//!        │  every call
//!        ▼
//!  native.js ─▶ this addon: Provisioner (Promise methods) ── KubeProvisioner (urumi-core)
//!        ▲            │ core Store / Change / … ──serde_json──▶ plain camelCase JS objects
//!        │            └ core Error ──error::to_js──▶ Error("[code] message")
//!        └── ChangeStream.next() ◀── Provisioner::changes (the durable feed)
//! ```
//!
//! Nothing here decides anything: arguments are converted, core errors are mapped by the
//! one function in [`error`], and lifetimes are kept (one tokio runtime for the whole
//! process; a closed or garbage-collected `Provisioner` drops its core handle, which
//! stops the background worker once it was the last one).
#![deny(unsafe_code)]

pub mod changes;
pub mod error;
pub mod provisioner;

use napi_derive::napi;

/// Installs the process's one tokio runtime: every Promise method and urumi-core's
/// background worker run on it. Called by Node when the addon is loaded.
#[napi_derive::module_init]
fn init() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("urumi")
        .build();
    // Without our runtime napi falls back to its own default one, which works the same.
    if let Ok(runtime) = runtime {
        napi::bindgen_prelude::create_custom_tokio_runtime(runtime);
    }
}

/// Every error code a call can reject with (`err.code`), in urumi-core's order: the
/// same stable strings as the HTTP API's problem `code`.
#[napi]
pub fn error_codes() -> Vec<&'static str> {
    urumi_core::ErrorKind::ALL
        .into_iter()
        .map(urumi_core::ErrorKind::as_str)
        .collect()
}

/// The version of this package (the workspace version).
#[napi]
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
