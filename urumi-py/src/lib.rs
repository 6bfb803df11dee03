//! # urumi-py
//!
//! Python bindings for [`urumi_core`]. Not built yet: the pyo3 module `urumi` lands here.
#![forbid(unsafe_code)]
