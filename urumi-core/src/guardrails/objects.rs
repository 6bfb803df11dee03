//! Pure builders of a store's Namespace, ResourceQuota and LimitRange.
//!
//! ```text
//!  StoreContext ──namespace()──────▶ Namespace  (labels + Pod Security)
//!               ──resource_quota()─▶ ResourceQuota "urumi-quota"   (the plan, as is)
//!               ──limit_range()────▶ LimitRange "urumi-limits"     (per-container defaults + max)
//! ```
//!
//! Per container, the LimitRange gives a pod that declares no resources a `1/pods`
//! share of the plan (so `pods` such pods fill the quota exactly, never overflow it)
//! and caps any one container at half of the plan's limits (all of it on a one-pod
//! plan), so no single container can starve the others of the namespace.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota, ResourceQuotaSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;

use super::quantity::{format_cpu, format_mebibytes_floor};
use super::{GuardrailsConfig, SizeNumbers, StoreContext};
use crate::error::Result;

/// Name of the store's ResourceQuota.
pub const QUOTA_NAME: &str = "urumi-quota";
/// Name of the store's LimitRange.
pub const LIMIT_RANGE_NAME: &str = "urumi-limits";

/// The store's Namespace: urumi's labels, Pod Security `enforce` at the configured
/// level (`baseline`), `warn` and `audit` at `restricted`.
pub fn namespace(ctx: &StoreContext, cfg: &GuardrailsConfig) -> Namespace {
    let mut labels = ctx.labels();
    for (mode, level) in [
        ("enforce", cfg.pod_security_enforce.as_str()),
        ("warn", "restricted"),
        ("audit", "restricted"),
    ] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            level.to_owned(),
        );
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}-version"),
            "latest".to_owned(),
        );
    }
    Namespace {
        metadata: ObjectMeta {
            name: Some(ctx.namespace.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

fn meta(ctx: &StoreContext, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(ctx.namespace.clone()),
        labels: Some(ctx.labels()),
        ..ObjectMeta::default()
    }
}

fn q(s: impl Into<String>) -> Quantity {
    Quantity(s.into())
}

/// The store's ResourceQuota: `requests.cpu`, `limits.cpu`, `requests.memory`,
/// `limits.memory`, `pods`, `persistentvolumeclaims`, `requests.storage` and (when the
/// plan sets it) `limits.ephemeral-storage`, exactly as the plan size says.
pub fn resource_quota(ctx: &StoreContext) -> ResourceQuota {
    let s = &ctx.size;
    let hard = BTreeMap::from([
        ("requests.cpu".to_owned(), q(&s.cpu_request)),
        ("limits.cpu".to_owned(), q(&s.cpu_limit)),
        ("requests.memory".to_owned(), q(&s.memory_request)),
        ("limits.memory".to_owned(), q(&s.memory_limit)),
        ("pods".to_owned(), q(s.pods.to_string())),
        ("persistentvolumeclaims".to_owned(), q(s.pvcs.to_string())),
        ("requests.storage".to_owned(), q(&s.storage)),
    ]);
    let mut hard = hard;
    if let Some(e) = &s.ephemeral_storage {
        hard.insert("limits.ephemeral-storage".to_owned(), q(e));
    }
    ResourceQuota {
        metadata: meta(ctx, QUOTA_NAME),
        spec: Some(ResourceQuotaSpec {
            hard: Some(hard),
            ..ResourceQuotaSpec::default()
        }),
        ..ResourceQuota::default()
    }
}

/// Per-container figures of the LimitRange, in millicores and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerDefaults {
    /// Default CPU request of a container that declares none.
    pub cpu_request: u64,
    /// Default CPU limit of a container that declares none.
    pub cpu_limit: u64,
    /// Default memory request (whole MiB).
    pub memory_request: u64,
    /// Default memory limit (whole MiB).
    pub memory_limit: u64,
    /// Largest CPU limit one container may have.
    pub max_cpu: u64,
    /// Largest memory limit one container may have (whole MiB).
    pub max_memory: u64,
    /// Default and largest ephemeral-storage limit of one container (whole MiB), when the
    /// plan sets `ephemeralStorage`; the default request is the default limit's eighth.
    pub ephemeral: Option<(u64, u64)>,
}

const MIB: u64 = 1 << 20;

/// The LimitRange's figures for a store (see the module docs for the rule).
///
/// Errors: `InvalidConfig` if the plan size does not parse (a [`StoreContext`] built
/// with [`StoreContext::new`] always does).
pub fn container_defaults(ctx: &StoreContext) -> Result<ContainerDefaults> {
    let n = SizeNumbers::of(ctx.plan, &ctx.size)?;
    let pods = u64::from(ctx.size.pods.max(1));
    let share = |total: u64, unit: u64| ((total / pods) / unit * unit).max(unit);
    let cpu_limit = share(n.cpu_limit, 1);
    let memory_limit = share(n.memory_limit, MIB);
    let (max_cpu, max_memory) = if pods == 1 {
        (n.cpu_limit, n.memory_limit / MIB * MIB)
    } else {
        (n.cpu_limit / 2, n.memory_limit / 2 / MIB * MIB)
    };
    Ok(ContainerDefaults {
        cpu_request: share(n.cpu_request, 1).min(cpu_limit),
        cpu_limit,
        memory_request: share(n.memory_request, MIB).min(memory_limit),
        memory_limit,
        max_cpu: max_cpu.max(cpu_limit),
        max_memory: max_memory.max(memory_limit),
        ephemeral: n.ephemeral_storage.map(|total| {
            let default = share(total, MIB);
            let max = if pods == 1 { total } else { total / 2 } / MIB * MIB;
            (default, max.max(default))
        }),
    })
}

/// The store's LimitRange: defaults for containers that declare no resources and a
/// maximum per container, from [`container_defaults`].
///
/// Errors: as [`container_defaults`].
pub fn limit_range(ctx: &StoreContext) -> Result<LimitRange> {
    let d = container_defaults(ctx)?;
    let pair = |cpu: u64, mem: u64, ephemeral: Option<u64>| {
        let mut m = BTreeMap::from([
            ("cpu".to_owned(), q(format_cpu(cpu))),
            ("memory".to_owned(), q(format_mebibytes_floor(mem))),
        ]);
        if let Some(e) = ephemeral {
            m.insert("ephemeral-storage".to_owned(), q(format_mebibytes_floor(e)));
        }
        m
    };
    let eph_default = d.ephemeral.map(|(default, _)| default);
    let eph_request = d
        .ephemeral
        .map(|(default, _)| (default / 8 / MIB * MIB).max(MIB));
    let eph_max = d.ephemeral.map(|(_, max)| max);
    Ok(LimitRange {
        metadata: meta(ctx, LIMIT_RANGE_NAME),
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".to_owned(),
                default: Some(pair(d.cpu_limit, d.memory_limit, eph_default)),
                default_request: Some(pair(d.cpu_request, d.memory_request, eph_request)),
                max: Some(pair(d.max_cpu, d.max_memory, eph_max)),
                ..LimitRangeItem::default()
            }],
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardrails::fixtures::mk_ctx;
    use crate::store::Plan;

    #[test]
    fn namespace_has_labels_and_pod_security() {
        let ctx = mk_ctx("shop1", Plan::Small);
        let ns = namespace(&ctx, &GuardrailsConfig::default());
        assert_eq!(ns.metadata.name.as_deref(), Some("store-shop1"));
        let labels = ns.metadata.labels.expect("labels");
        for (k, v) in [
            ("app.kubernetes.io/managed-by", "urumi"),
            ("urumi.dev/store", "shop1"),
            ("urumi.dev/tenant", "acme"),
            ("pod-security.kubernetes.io/enforce", "baseline"),
            ("pod-security.kubernetes.io/warn", "restricted"),
            ("pod-security.kubernetes.io/audit", "restricted"),
        ] {
            assert_eq!(labels.get(k).map(String::as_str), Some(v), "{k}");
        }
    }

    #[test]
    fn quota_is_the_plan() {
        for (plan, cpu, mem, pods, ephemeral) in [
            (Plan::Small, "2000m", "2048Mi", "10", "4Gi"),
            (Plan::Medium, "4000m", "4096Mi", "20", "8Gi"),
            (Plan::Large, "8000m", "8192Mi", "40", "16Gi"),
        ] {
            let rq = resource_quota(&mk_ctx("shop1", plan));
            assert_eq!(rq.metadata.namespace.as_deref(), Some("store-shop1"));
            let hard = rq.spec.and_then(|s| s.hard).expect("hard");
            assert_eq!(hard.len(), 8);
            assert_eq!(hard["limits.cpu"].0, cpu, "{plan}");
            assert_eq!(hard["limits.memory"].0, mem, "{plan}");
            assert_eq!(hard["pods"].0, pods, "{plan}");
            assert_eq!(hard["limits.ephemeral-storage"].0, ephemeral, "{plan}");
            for key in [
                "requests.cpu",
                "requests.memory",
                "persistentvolumeclaims",
                "requests.storage",
            ] {
                assert!(hard.contains_key(key), "{key}");
            }
        }
    }

    #[test]
    fn limit_range_defaults_are_a_pod_share_and_max_is_half() {
        // small: 1 CPU / 1 GiB requested, 2 CPU / 2 GiB limits, 10 pods.
        let d = container_defaults(&mk_ctx("shop1", Plan::Small)).expect("valid");
        assert_eq!(d.cpu_request, 100);
        assert_eq!(d.cpu_limit, 200);
        assert_eq!(d.memory_request, 102 * MIB);
        assert_eq!(d.memory_limit, 204 * MIB);
        assert_eq!(d.max_cpu, 1000);
        assert_eq!(d.max_memory, 1024 * MIB);
        let lr = limit_range(&mk_ctx("shop1", Plan::Small)).expect("valid");
        let item = &lr.spec.expect("spec").limits[0];
        assert_eq!(item.type_, "Container");
        let max = item.max.as_ref().expect("max");
        assert_eq!(max["cpu"].0, "1");
        assert_eq!(max["memory"].0, "1Gi");
        assert_eq!(item.default.as_ref().expect("default")["memory"].0, "204Mi");
        // 4 GiB of ephemeral storage: 409Mi by default (a tenth), 2Gi at most, 51Mi asked.
        assert_eq!(d.ephemeral, Some((409 * MIB, 2048 * MIB)));
        assert_eq!(max["ephemeral-storage"].0, "2Gi");
        let default = item.default.as_ref().expect("default");
        assert_eq!(default["ephemeral-storage"].0, "409Mi");
        let request = item.default_request.as_ref().expect("defaultRequest");
        assert_eq!(request["ephemeral-storage"].0, "51Mi");
    }

    #[test]
    fn a_plan_without_ephemeral_storage_sets_no_such_quota_nor_default() {
        let mut ctx = mk_ctx("shop1", Plan::Small);
        ctx.size.ephemeral_storage = None;
        let hard = resource_quota(&ctx)
            .spec
            .and_then(|s| s.hard)
            .expect("hard");
        assert_eq!(hard.len(), 7);
        assert!(!hard.contains_key("limits.ephemeral-storage"));
        let lr = limit_range(&ctx).expect("valid");
        let item = &lr.spec.expect("spec").limits[0];
        assert!(
            !item
                .max
                .as_ref()
                .expect("max")
                .contains_key("ephemeral-storage")
        );
        assert!(
            !item
                .default
                .as_ref()
                .expect("default")
                .contains_key("ephemeral-storage")
        );
    }

    #[test]
    fn defaults_never_exceed_max_nor_limits() {
        for pods in [1, 2, 3, 10, 1000] {
            let mut ctx = mk_ctx("shop1", Plan::Small);
            ctx.size.pods = pods;
            let d = container_defaults(&ctx).expect("valid");
            assert!(
                d.cpu_request <= d.cpu_limit && d.cpu_limit <= d.max_cpu,
                "{pods}: {d:?}"
            );
            assert!(
                d.memory_request <= d.memory_limit && d.memory_limit <= d.max_memory,
                "{pods}: {d:?}"
            );
            assert!(
                d.cpu_request >= 1 && d.memory_request >= MIB,
                "{pods}: {d:?}"
            );
            let (default, max) = d.ephemeral.expect("the default plans set it");
            assert!(default >= MIB && default <= max, "{pods}: {d:?}");
        }
    }
}
