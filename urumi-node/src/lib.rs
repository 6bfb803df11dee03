//! # urumi-node
//!
//! Node.js bindings for [`urumi_core`]. Not built yet: the napi-rs package `@urumi/node` lands here.
#![forbid(unsafe_code)]
