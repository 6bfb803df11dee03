//! Plans: how big a store may grow.
//!
//! ```text
//!  StoreSpec.plan = Plan::Medium ──Plans::size()──▶ PlanSize { cpu, memory, pods, pvcs, storage, ephemeral }
//!                                                        └──▶ guardrails: ResourceQuota + LimitRange
//! ```
//!
//! The sizes are configuration ([`Plans`] deserializes from the server's TOML); the
//! defaults leave room for WordPress, MariaDB and the one-shot setup Job side by side.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A store's plan. `small` is the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// The smallest plan (the default).
    #[default]
    Small,
    /// Twice the small plan.
    Medium,
    /// Four times the small plan.
    Large,
}

impl Plan {
    /// Every plan, smallest first.
    pub const ALL: [Plan; 3] = [Plan::Small, Plan::Medium, Plan::Large];

    /// The lowercase name used in JSON and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Small => "small",
            Plan::Medium => "medium",
            Plan::Large => "large",
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Plan {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Plan::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| Error::InvalidSpec {
                field: "plan",
                message: format!(
                    "unknown plan {:?}; expected small, medium or large",
                    s.chars().take(32).collect::<String>()
                ),
            })
    }
}

/// The resources one plan grants a store's namespace. Quantities are Kubernetes
/// quantity strings (`500m`, `1Gi`). Configured in TOML with camelCase keys
/// (`cpuRequest = "500m"`; `cpu_request` is accepted too); unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanSize {
    /// Total CPU requests (`requests.cpu`).
    #[serde(alias = "cpu_request")]
    pub cpu_request: String,
    /// Total CPU limits (`limits.cpu`).
    #[serde(alias = "cpu_limit")]
    pub cpu_limit: String,
    /// Total memory requests (`requests.memory`).
    #[serde(alias = "memory_request")]
    pub memory_request: String,
    /// Total memory limits (`limits.memory`).
    #[serde(alias = "memory_limit")]
    pub memory_limit: String,
    /// Maximum number of pods.
    pub pods: u32,
    /// Maximum number of PersistentVolumeClaims.
    pub pvcs: u32,
    /// Total requested storage (`requests.storage`).
    pub storage: String,
    /// Total node-local disk the store's containers may use outside their volumes
    /// (`limits.ephemeral-storage`: /tmp, logs, writable layers), so one store cannot fill
    /// a node's disk. Unset in a configured plan: no ephemeral-storage quota.
    #[serde(
        default,
        alias = "ephemeral_storage",
        skip_serializing_if = "Option::is_none"
    )]
    pub ephemeral_storage: Option<String>,
}

impl PlanSize {
    fn scaled(factor: u32) -> Self {
        PlanSize {
            cpu_request: format!("{}m", 1000 * factor),
            cpu_limit: format!("{}m", 2000 * factor),
            memory_request: format!("{}Mi", 1024 * factor),
            memory_limit: format!("{}Mi", 2048 * factor),
            pods: 10 * factor,
            pvcs: 4 * factor,
            storage: format!("{}Gi", 10 * factor),
            ephemeral_storage: Some(format!("{}Gi", 4 * factor)),
        }
    }
}

/// The configurable size of every plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Plans {
    /// The `small` plan.
    pub small: PlanSize,
    /// The `medium` plan.
    pub medium: PlanSize,
    /// The `large` plan.
    pub large: PlanSize,
}

/// One plan and its size, as listed to callers choosing a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// The plan.
    pub name: Plan,
    /// What it grants.
    #[serde(flatten)]
    pub size: PlanSize,
}

impl Plans {
    /// Every plan with its size, smallest first.
    pub fn entries(&self) -> Vec<PlanEntry> {
        Plan::ALL
            .into_iter()
            .map(|name| PlanEntry {
                name,
                size: self.size(name).clone(),
            })
            .collect()
    }

    /// The size of `plan`.
    pub fn size(&self, plan: Plan) -> &PlanSize {
        match plan {
            Plan::Small => &self.small,
            Plan::Medium => &self.medium,
            Plan::Large => &self.large,
        }
    }
}

impl Default for Plans {
    /// small: 1 CPU / 1 GiB requested, 2 CPU / 2 GiB limit, 10 pods, 4 PVCs, 10 GiB of
    /// volumes, 4 GiB of ephemeral storage; medium twice that, large four times.
    fn default() -> Self {
        Plans {
            small: PlanSize::scaled(1),
            medium: PlanSize::scaled(2),
            large: PlanSize::scaled(4),
        }
    }
}
