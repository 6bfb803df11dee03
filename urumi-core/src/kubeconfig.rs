//! A `kube::Client` from a kubeconfig path, with errors that name the file.
//!
//! ```text
//!  Some(path) ─▶ Kubeconfig::read_from(path) ─▶ Config (current context) ─▶ Client
//!  None       ─▶ $KUBECONFIG, ~/.kube/config, then in-cluster (kube's own inference)
//! ```

use std::path::Path;

use crate::error::{Error, Result};

/// A client for the cluster of `kubeconfig` (its current context), or the inferred one.
/// Errors: `invalid_config` naming the file or saying no cluster configuration exists.
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let bad = |e: &dyn std::fmt::Display| Error::InvalidConfig {
                message: format!("kubeconfig {}: {e}", path.display()),
            };
            let file = kube::config::Kubeconfig::read_from(path).map_err(|e| bad(&e))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| bad(&e))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| Error::InvalidConfig {
                message: format!(
                    "no cluster configuration: set KUBECONFIG or pass a kubeconfig path ({e})"
                ),
            })?,
    };
    kube::Client::try_from(config).map_err(|e| Error::InvalidConfig {
        message: format!("cannot build a Kubernetes client: {e}"),
    })
}
