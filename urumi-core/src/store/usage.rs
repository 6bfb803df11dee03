//! What a store uses of its plan: its ResourceQuota's `used` against `hard`, and its volumes.
//!
//! ```text
//!  ResourceQuota "urumi-quota" .status {hard, used} ──StoreUsage::from_quota()──▶ [ResourceUsage]
//!  PersistentVolumeClaims                           ──VolumeUsage::from_claim()─▶ [VolumeUsage]
//!  StoreUsage::exceeding(plan size) ──▶ what a smaller plan could not hold (pods, claims, storage)
//! ```
//!
//! Pure: the provisioner reads the objects on demand and hands them here. Numbers are in
//! the resource's unit (millicores, bytes or a count), so that a caller can compare and
//! draw bars without parsing Kubernetes quantities.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, ResourceQuota};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::{Deserialize, Serialize};

use super::{Plan, PlanSize};
use crate::error::{Error, Result};
use crate::guardrails::quantity;

/// The unit of a [`ResourceUsage`]'s numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageUnit {
    /// Thousandths of a CPU.
    Millicores,
    /// Bytes.
    Bytes,
    /// Objects (pods, claims).
    Count,
}

/// One quota resource: how much of it the store's workloads hold, and how much the plan
/// allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceUsage {
    /// The quota's name for it: `requests.cpu`, `limits.memory`, `pods`, …
    pub resource: String,
    /// The unit of `used` and `hard`.
    pub unit: UsageUnit,
    /// What the store's objects hold now.
    pub used: u64,
    /// What the plan allows.
    pub hard: u64,
}

/// One of the store's volumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeUsage {
    /// The PersistentVolumeClaim's name.
    pub claim: String,
    /// The size it asks for, bytes.
    pub requested: u64,
    /// The size of the volume bound to it, bytes (absent until bound).
    pub capacity: Option<u64>,
    /// `Pending`, `Bound` or `Lost`.
    pub phase: String,
    /// The bound PersistentVolume's name.
    pub volume: Option<String>,
}

/// A store's use of its plan, read when asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreUsage {
    /// The store.
    pub name: String,
    /// Its plan.
    pub plan: Plan,
    /// Every resource its quota limits, in a fixed order (CPU, memory, pods, claims,
    /// storage, ephemeral storage).
    pub resources: Vec<ResourceUsage>,
    /// Its volumes, by claim name.
    pub volumes: Vec<VolumeUsage>,
    /// When the objects were read.
    pub observed_at: DateTime<Utc>,
}

/// The quota resources reported, in order, with their units.
const RESOURCES: [(&str, UsageUnit); 8] = [
    ("requests.cpu", UsageUnit::Millicores),
    ("limits.cpu", UsageUnit::Millicores),
    ("requests.memory", UsageUnit::Bytes),
    ("limits.memory", UsageUnit::Bytes),
    ("pods", UsageUnit::Count),
    ("persistentvolumeclaims", UsageUnit::Count),
    ("requests.storage", UsageUnit::Bytes),
    ("limits.ephemeral-storage", UsageUnit::Bytes),
];

fn number(resource: &str, unit: UsageUnit, q: &Quantity) -> Result<u64> {
    let parsed = match unit {
        UsageUnit::Millicores => quantity::cpu_millis(&q.0),
        UsageUnit::Bytes | UsageUnit::Count => quantity::bytes(&q.0),
    };
    parsed.map_err(|e| Error::internal(format!("quota {resource}: {e}")))
}

impl ResourceUsage {
    /// The resources of `quota`'s status. Errors: `Unavailable` while the quota
    /// controller has not counted the namespace yet (no `status.used`), so the caller
    /// can try again; `Internal` on a quantity that does not parse.
    pub fn from_quota(quota: &ResourceQuota) -> Result<Vec<ResourceUsage>> {
        let status = quota.status.as_ref();
        let hard = status
            .and_then(|s| s.hard.as_ref())
            .or_else(|| quota.spec.as_ref().and_then(|s| s.hard.as_ref()));
        let (Some(hard), Some(used)) = (hard, status.and_then(|s| s.used.as_ref())) else {
            return Err(Error::Unavailable {
                message: "the store's quota has not been counted yet; try again in a few seconds"
                    .to_owned(),
            });
        };
        let mut out = Vec::new();
        for (resource, unit) in RESOURCES {
            let Some(h) = hard.get(resource) else {
                continue;
            };
            let used = used
                .get(resource)
                .map(|u| number(resource, unit, u))
                .transpose()?
                .unwrap_or(0);
            out.push(ResourceUsage {
                resource: resource.to_owned(),
                unit,
                used,
                hard: number(resource, unit, h)?,
            });
        }
        Ok(out)
    }
}

impl VolumeUsage {
    /// What `claim` asks for and holds.
    pub fn from_claim(claim: &PersistentVolumeClaim) -> VolumeUsage {
        let storage = |q: Option<&Quantity>| q.and_then(|q| quantity::bytes(&q.0).ok());
        let spec = claim.spec.as_ref();
        let status = claim.status.as_ref();
        VolumeUsage {
            claim: claim.metadata.name.clone().unwrap_or_default(),
            requested: storage(
                spec.and_then(|s| s.resources.as_ref())
                    .and_then(|r| r.requests.as_ref())
                    .and_then(|r| r.get("storage")),
            )
            .unwrap_or(0),
            capacity: storage(
                status
                    .and_then(|s| s.capacity.as_ref())
                    .and_then(|c| c.get("storage")),
            ),
            phase: status
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Pending".to_owned()),
            volume: spec.and_then(|s| s.volume_name.clone()),
        }
    }
}

impl StoreUsage {
    /// What the store holds beyond `size`, as `"requests.storage: uses 11Gi, the plan
    /// allows 10Gi"`; empty when the store fits. Only pods, claims and requested storage
    /// are compared: CPU, memory and scratch disk are given to the workloads as shares
    /// of the plan, so they shrink with it, while volumes and extra pods do not.
    ///
    /// Errors: `InvalidConfig` when the plan's storage does not parse.
    pub fn exceeding(&self, size: &PlanSize) -> Result<Vec<String>> {
        let storage = quantity::bytes(&size.storage).map_err(|e| Error::InvalidConfig {
            message: format!("plan storage: {e}"),
        })?;
        let allowed = |resource: &str| -> Option<u64> {
            match resource {
                "pods" => Some(u64::from(size.pods)),
                "persistentvolumeclaims" => Some(u64::from(size.pvcs)),
                "requests.storage" => Some(storage),
                _ => None,
            }
        };
        let show = |unit: UsageUnit, n: u64| match unit {
            UsageUnit::Millicores => quantity::format_cpu(n),
            UsageUnit::Bytes => quantity::format_bytes(n),
            UsageUnit::Count => n.to_string(),
        };
        Ok(self
            .resources
            .iter()
            .filter_map(|r| {
                let limit = allowed(&r.resource)?;
                (r.used > limit).then(|| {
                    format!(
                        "{}: uses {}, the plan allows {}",
                        r.resource,
                        show(r.unit, r.used),
                        show(r.unit, limit)
                    )
                })
            })
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{ResourceQuotaSpec, ResourceQuotaStatus};

    use super::*;
    use crate::store::Plans;

    fn q(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
            .collect()
    }

    fn quota(hard: &[(&str, &str)], used: Option<&[(&str, &str)]>) -> ResourceQuota {
        ResourceQuota {
            spec: Some(ResourceQuotaSpec {
                hard: Some(q(hard)),
                ..Default::default()
            }),
            status: Some(ResourceQuotaStatus {
                hard: Some(q(hard)),
                used: used.map(q),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn reads_used_and_hard_in_units_in_a_fixed_order() {
        let quota = quota(
            &[
                ("pods", "10"),
                ("requests.cpu", "1"),
                ("requests.memory", "1Gi"),
            ],
            Some(&[("requests.memory", "512Mi"), ("requests.cpu", "250m")]),
        );
        let got = ResourceUsage::from_quota(&quota).unwrap();
        let names: Vec<_> = got.iter().map(|r| r.resource.as_str()).collect();
        assert_eq!(names, ["requests.cpu", "requests.memory", "pods"]);
        assert_eq!((got[0].used, got[0].hard), (250, 1000));
        assert_eq!((got[1].used, got[1].hard), (512 << 20, 1 << 30));
        assert_eq!(
            (got[2].used, got[2].hard, got[2].unit),
            (0, 10, UsageUnit::Count)
        );
    }

    #[test]
    fn an_uncounted_quota_is_unavailable_not_zero() {
        let err = ResourceUsage::from_quota(&quota(&[("pods", "10")], None)).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Unavailable);
    }

    #[test]
    fn names_what_a_smaller_plan_would_not_hold() {
        let plans = Plans::default();
        let usage = StoreUsage {
            name: "shop".into(),
            plan: Plan::Large,
            resources: ResourceUsage::from_quota(&quota(
                &[
                    ("requests.memory", "4Gi"),
                    ("requests.storage", "40Gi"),
                    ("pods", "40"),
                ],
                Some(&[
                    ("requests.memory", "3Gi"),
                    ("requests.storage", "15Gi"),
                    ("pods", "3"),
                ]),
            ))
            .unwrap(),
            volumes: vec![],
            observed_at: Utc::now(),
        };
        // Memory follows the plan (the workloads get shares of it); storage does not.
        assert_eq!(
            usage.exceeding(plans.size(Plan::Small)).unwrap(),
            ["requests.storage: uses 15Gi, the plan allows 10Gi"]
        );
        assert!(
            usage
                .exceeding(plans.size(Plan::Medium))
                .unwrap()
                .is_empty()
        );
    }
}
