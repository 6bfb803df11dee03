//! The `Store` custom resource, `stores.urumi.dev/v1alpha1`: what a GitOps platform
//! applies, and the status Urumi writes back.
//!
//! The object's name is the store's name; the API server refuses a bad name or plan at
//! apply time with the same rules as [`StoreName`](crate::store::StoreName) and
//! [`Plan`](crate::store::Plan) (CEL rules, kept equal to them by tests).

use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};

/// CEL: the name's length, as [`MIN_NAME_LEN`](crate::store::MIN_NAME_LEN)..=
/// [`MAX_NAME_LEN`](crate::store::MAX_NAME_LEN).
pub const NAME_LENGTH_RULE: &str =
    "size(self.metadata.name) >= 3 && size(self.metadata.name) <= 40";
/// CEL: the name's characters, as [`StoreName`](crate::store::StoreName).
pub const NAME_PATTERN_RULE: &str = "self.metadata.name.matches('^[a-z][a-z0-9-]*[a-z0-9]$')";
/// CEL: reserved names and prefixes, as
/// [`RESERVED_NAMES`](crate::store::RESERVED_NAMES) and
/// [`RESERVED_PREFIXES`](crate::store::RESERVED_PREFIXES).
pub const NAME_RESERVED_RULE: &str = "!(self.metadata.name in ['api', 'admin', 'dashboard', 'www', 'default', 'mail', 'smtp', 'ftp', \
     'static', 'assets', 'status', 'health', 'metrics', 'login', 'auth', \
     'root', 'system', 'urumi', 'localhost', 'ingress-nginx', \
     'cert-manager']) && !self.metadata.name.startsWith('kube-')";
/// CEL: the plans, as [`Plan::ALL`](crate::store::Plan::ALL).
pub const PLAN_RULE: &str = "self in ['small', 'medium', 'large']";
/// CEL: the engines.
pub const ENGINE_RULE: &str = "self in ['woocommerce']";

/// What a `Store` object asks for; its `metadata.name` is the store's name.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "urumi.dev",
    version = "v1alpha1",
    kind = "Store",
    root = "StoreResource",
    namespaced,
    status = "StoreResourceStatus",
    doc = "A WooCommerce store provisioned by Urumi; its name is the store's name.",
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Plan", type_ = "string", json_path = ".spec.plan"),
    printcolumn(name = "URL", type_ = "string", json_path = ".status.urls.storefront"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new(NAME_LENGTH_RULE).message("the store name must be 3 to 40 characters"),
    validation = Rule::new(NAME_PATTERN_RULE).message(
        "the store name must start with a lowercase letter, hold only lowercase letters, \
         digits and '-', and end with a letter or digit"
    ),
    validation = Rule::new(NAME_RESERVED_RULE).message("the store name is reserved")
)]
#[serde(rename_all = "camelCase")]
pub struct StoreResourceSpec {
    /// What the store runs; `woocommerce` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(ENGINE_RULE).message("engine must be woocommerce"))]
    pub engine: Option<String>,
    /// Its plan; `small` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(PLAN_RULE).message("plan must be one of small, medium, large"))]
    pub plan: Option<String>,
    /// `true`: suspend the store (no pod runs, no Ingress; volumes and credentials
    /// kept); `false` or absent: serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<bool>,
}

/// Where the store answers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreResourceUrls {
    /// The shop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storefront: Option<String>,
    /// WordPress admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
}

/// A condition as `kubectl wait --for=condition=…` reads it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreCondition {
    /// `Ready`, `Failed`, `PlanApplied`, `Suspended`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// One word, CamelCase.
    pub reason: String,
    /// For a human.
    pub message: String,
    /// RFC 3339.
    pub last_transition_time: String,
    /// The generation this condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// What Urumi reports on a `Store` object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreResourceStatus {
    /// `Pending`, `Provisioning`, `Ready`, `Failed`, `Deleting`, or `Refused` (the
    /// request was not accepted; a condition says why), `Ignored` (no tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The step in progress or the one that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The last progress note or failure reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where it answers, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<StoreResourceUrls>,
    /// The object generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Failed`, `PlanApplied`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<StoreCondition>,
    /// When it first became Ready (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<String>,
    /// Seconds from acceptance to Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_seconds: Option<f64>,
}

/// The CustomResourceDefinition as YAML, as shipped in `charts/urumi/crds/`.
pub fn crd_yaml() -> String {
    let crd = StoreResource::crd();
    let body = serde_yaml::to_string(&crd).unwrap_or_default();
    format!(
        "# Generated from urumi-core's operator::crd types: `urumi-server --print-crd`.\n\
         # Do not edit; a test keeps this file equal to the generated one.\n{body}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Plan;
    use crate::store::{MAX_NAME_LEN, MIN_NAME_LEN, RESERVED_NAMES, RESERVED_PREFIXES};

    #[test]
    fn the_rules_say_what_the_core_says() {
        assert!(NAME_LENGTH_RULE.contains(&format!(">= {MIN_NAME_LEN}")));
        assert!(NAME_LENGTH_RULE.contains(&format!("<= {MAX_NAME_LEN}")));
        let listed: Vec<&str> = NAME_RESERVED_RULE
            .split_once('[')
            .and_then(|(_, rest)| rest.split_once(']'))
            .map(|(list, _)| {
                list.split(',')
                    .map(|s| s.trim().trim_matches('\''))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(listed, RESERVED_NAMES, "reserved names differ");
        for prefix in RESERVED_PREFIXES {
            assert!(NAME_RESERVED_RULE.contains(&format!("startsWith('{prefix}')")));
        }
        let plans: Vec<String> = Plan::ALL
            .iter()
            .map(|p| format!("'{}'", p.as_str()))
            .collect();
        assert_eq!(PLAN_RULE, format!("self in [{}]", plans.join(", ")));
    }

    #[test]
    fn the_crd_has_the_rules_the_columns_and_a_status_subresource() {
        let yaml = crd_yaml();
        for needle in [
            "stores.urumi.dev",
            "v1alpha1",
            "x-kubernetes-validations",
            "the store name is reserved",
            "plan must be one of small, medium, large",
            "jsonPath: .status.urls.storefront",
            "status: {}",
        ] {
            assert!(yaml.contains(needle), "CRD lacks {needle}:\n{yaml}");
        }
    }

    #[test]
    fn the_chart_ships_the_generated_crd() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../charts/urumi/crds/stores.urumi.dev.yaml"
        );
        let Ok(shipped) = std::fs::read_to_string(path) else {
            // Packaged alone (crates.io), the chart is not beside the crate.
            assert!(
                !std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../charts")).exists(),
                "{path} is missing: run `urumi-server --print-crd > {path}`"
            );
            return;
        };
        assert_eq!(
            shipped,
            crd_yaml(),
            "{path} differs from the generated CRD: run `urumi-server --print-crd > {path}`"
        );
    }
}
