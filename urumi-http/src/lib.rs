//! # urumi-http
//!
//! The HTTP adapter over [`urumi_core`]: an axum router and the `urumi-server` binary.
//! Not built yet; see ../shared/API.md for the contract it will serve.
#![forbid(unsafe_code)]
