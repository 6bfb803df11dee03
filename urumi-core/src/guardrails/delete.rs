//! Deleting a store's namespace, and saying why when it does not go away.
//!
//! ```text
//!  delete_namespace(ns, timeout)
//!     GET ns ── 404 ──────────────────────────────────────────────▶ Ok (already gone)
//!       │ uid
//!       ├─ not yet terminating ──DELETE (propagationPolicy=Foreground)
//!       ▼
//!     timeout(await_condition(ns, is_deleted(uid)))  ── gone ─────▶ Ok
//!       │ deadline
//!       ▼
//!     GET ns ──namespace_stuck_reason()──▶ Error::Timeout("… stuck in Terminating: NamespaceContentRemaining: …")
//! ```
//!
//! Everything in the namespace goes with it, the PersistentVolumeClaims of the
//! StatefulSets included. Safe to call again at any point: a namespace already
//! terminating is only waited for, one already gone is `Ok`.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams};
use kube::runtime::wait::{await_condition, conditions};

use super::Guardrails;
use crate::error::{Error, Result};

/// The namespace conditions that explain a stuck deletion, in the order they are
/// reported.
const DELETION_CONDITIONS: &[&str] = &[
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionGroupVersionParsingFailure",
    "NamespaceDeletionContentFailure",
    "NamespaceContentRemaining",
    "NamespaceFinalizersRemaining",
];

/// Why a namespace is still there, from its status conditions and finalizers: e.g.
/// `NamespaceFinalizersRemaining: Some content in the namespace has finalizers
/// remaining: example.com/hold in 1 resource instances`. Pure.
pub fn namespace_stuck_reason(ns: &Namespace) -> String {
    let mut reasons: Vec<String> = Vec::new();
    let conditions = ns.status.as_ref().and_then(|s| s.conditions.as_ref());
    for wanted in DELETION_CONDITIONS {
        for c in conditions.into_iter().flatten() {
            if c.type_ == *wanted && c.status == "True" {
                let detail = c.message.as_deref().or(c.reason.as_deref()).unwrap_or("");
                reasons.push(format!("{}: {}", c.type_, detail.trim()));
            }
        }
    }
    let spec_finalizers: Vec<&str> = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    if !spec_finalizers.is_empty() {
        reasons.push(format!(
            "spec.finalizers remaining: {}",
            spec_finalizers.join(", ")
        ));
    }
    let meta_finalizers = ns.metadata.finalizers.as_deref().unwrap_or_default();
    if !meta_finalizers.is_empty() {
        reasons.push(format!(
            "metadata.finalizers remaining: {}",
            meta_finalizers.join(", ")
        ));
    }
    if reasons.is_empty() {
        let phase = ns
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("unknown");
        reasons.push(format!("no reason reported yet (phase {phase})"));
    }
    reasons.join("; ")
}

impl Guardrails {
    /// Deletes `namespace` (foreground propagation) and waits until it is gone, at
    /// most `timeout`. Returns how long the wait took.
    ///
    /// Idempotent: a namespace already gone is `Ok` at once; one already terminating
    /// is waited for. Errors: `Timeout` (retryable) whose message says why the
    /// namespace is stuck in Terminating (its deletion conditions, finalizers left);
    /// `Unavailable` if the watch fails; `Kubernetes` for API failures.
    pub async fn delete_namespace(&self, namespace: &str, timeout: Duration) -> Result<Duration> {
        let started = Instant::now();
        let api: Api<Namespace> = Api::all(self.client().clone());
        let Some(ns) = api.get_opt(namespace).await? else {
            return Ok(started.elapsed());
        };
        let uid = ns.metadata.uid.clone().unwrap_or_default();
        if ns.metadata.deletion_timestamp.is_none() {
            match api.delete(namespace, &DeleteParams::foreground()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(started.elapsed()),
                Err(e) => return Err(e.into()),
            }
        }
        let wait = await_condition(api.clone(), namespace, conditions::is_deleted(&uid));
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(_)) => Ok(started.elapsed()),
            Ok(Err(e)) => Err(Error::Unavailable {
                message: format!("watching namespace {namespace} while it is deleted: {e}"),
            }),
            Err(_) => {
                let why = match api.get_opt(namespace).await {
                    Ok(Some(ns)) if ns.metadata.uid.as_deref() == Some(uid.as_str()) => {
                        namespace_stuck_reason(&ns)
                    }
                    // Gone right at the deadline.
                    Ok(_) => return Ok(started.elapsed()),
                    Err(e) => format!("could not read it: {}", Error::from(e)),
                };
                Err(Error::Timeout {
                    operation: format!(
                        "deleting namespace {namespace} (stuck in Terminating: {why})"
                    ),
                    after: timeout,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{NamespaceCondition, NamespaceSpec, NamespaceStatus};

    use super::*;

    fn mk_ns(conds: &[(&str, &str, &str)], spec_fin: &[&str]) -> Namespace {
        Namespace {
            spec: Some(NamespaceSpec {
                finalizers: Some(spec_fin.iter().map(|s| (*s).to_owned()).collect()),
            }),
            status: Some(NamespaceStatus {
                phase: Some("Terminating".to_owned()),
                conditions: Some(
                    conds
                        .iter()
                        .map(|(t, s, m)| NamespaceCondition {
                            type_: (*t).to_owned(),
                            status: (*s).to_owned(),
                            message: Some((*m).to_owned()),
                            ..NamespaceCondition::default()
                        })
                        .collect(),
                ),
            }),
            ..Namespace::default()
        }
    }

    #[test]
    fn stuck_reasons_table() {
        let cases: Vec<(Namespace, &[&str])> = vec![
            (
                mk_ns(
                    &[
                        (
                            "NamespaceDeletionDiscoveryFailure",
                            "False",
                            "All resources successfully discovered",
                        ),
                        (
                            "NamespaceFinalizersRemaining",
                            "True",
                            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances",
                        ),
                    ],
                    &[],
                ),
                &[
                    "NamespaceFinalizersRemaining: Some content",
                    "example.com/hold",
                ],
            ),
            (
                mk_ns(
                    &[(
                        "NamespaceDeletionDiscoveryFailure",
                        "True",
                        "Discovery failed for some groups, 1 failing: unable to retrieve the complete list of server APIs: metrics.k8s.io/v1beta1",
                    )],
                    &["kubernetes"],
                ),
                &[
                    "NamespaceDeletionDiscoveryFailure: Discovery failed",
                    "metrics.k8s.io",
                    "spec.finalizers remaining: kubernetes",
                ],
            ),
            (
                mk_ns(&[], &[]),
                &["no reason reported yet (phase Terminating)"],
            ),
        ];
        for (ns, wants) in cases {
            let got = namespace_stuck_reason(&ns);
            for want in wants {
                assert!(got.contains(want), "{got:?} should contain {want:?}");
            }
        }
    }

    #[test]
    fn false_conditions_are_not_reasons() {
        let ns = mk_ns(&[("NamespaceContentRemaining", "False", "nothing")], &[]);
        assert!(!namespace_stuck_reason(&ns).contains("NamespaceContentRemaining"));
    }
}
