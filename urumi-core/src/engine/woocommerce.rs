//! The built-in WooCommerce engine: `charts/woocommerce-store`, bundled.
//!
//! ```text
//!  StoreContext {name: shop1, size} + EngineSettings
//!     ├─ release "shop1", Secret "shop1-credentials" (db-password, db-root-password,
//!     │                   admin-password, webhook-secret, admin-user)
//!     ├─ values: store.name, ingress host shop1.<baseDomain>, className, storageClass,
//!     │          existingSecret, resources = shares of the plan, webhooks.url
//!     ├─ ready:  deployment/shop1-wordpress, statefulset/shop1-mariadb, job/shop1-setup-<rev>
//!     └─ urls:   <scheme>://shop1.<baseDomain>, …/wp-admin/
//! ```
//!
//! Resources: each container gets a fixed share of the plan's quota, applied to both
//! its requests and its limits ([`WorkloadShares`]: WordPress 40 %, MariaDB 30 %, the
//! setup Job 20 %). The shares add up to 90 %, so the three pods run side by side with
//! a tenth of the quota to spare, and no share exceeds the LimitRange's per-container
//! maximum (half the plan). Volume sizes stay fixed (a StatefulSet's volume template
//! cannot change on upgrade); a plan must hold both volumes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::{BundledChart, Engine, EngineSettings, Workload, WorkloadKind};
use crate::error::{Error, Result};
use crate::guardrails::quantity::{format_cpu, format_mebibytes_floor};
use crate::guardrails::{CredentialsLayout, NetworkProfile, SizeNumbers, StoreContext};
use crate::store::{EngineId, StoreName, Urls};

const CHART_NAME: &str = "woocommerce-store";
/// Each volume's size (WordPress' document root, MariaDB's data).
const VOLUME_BYTES: u64 = 2 << 30;
const VOLUMES: u64 = 2;
/// WordPress, MariaDB and the setup Job at once (WordPress uses `Recreate`).
const PODS: u32 = 3;
/// Below this memory limit WordPress or MariaDB does not start reliably.
const MIN_MEMORY_LIMIT: u64 = 256 << 20;

/// Per-mille shares of the plan's quota each container gets (requests and limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadShares {
    /// WordPress (Apache + PHP).
    pub wordpress: u64,
    /// MariaDB.
    pub mariadb: u64,
    /// The wp-cli setup Job.
    pub setup: u64,
}

impl Default for WorkloadShares {
    fn default() -> Self {
        WorkloadShares {
            wordpress: 400,
            mariadb: 300,
            setup: 200,
        }
    }
}

/// The WooCommerce engine (WordPress + MariaDB + a wp-cli setup Job).
#[derive(Debug)]
pub struct WooCommerce {
    id: EngineId,
    chart: BundledChart,
    shares: WorkloadShares,
    admin_user: String,
    admin_email: String,
}

impl Default for WooCommerce {
    fn default() -> Self {
        Self::new()
    }
}

impl WooCommerce {
    /// The engine with the bundled chart cached in the default directory, administrator
    /// `admin` <admin@example.com> and the default [`WorkloadShares`].
    pub fn new() -> Self {
        WooCommerce {
            id: EngineId::default(),
            chart: BundledChart::woocommerce(),
            shares: WorkloadShares::default(),
            admin_user: "admin".to_owned(),
            admin_email: "admin@example.com".to_owned(),
        }
    }

    /// Writes the bundled chart under `dir` instead of the default cache directory.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.chart = self.chart.with_cache_dir(dir);
        self
    }

    /// Uses a chart other than the bundled one (a `.tgz` held in memory).
    pub fn with_chart(mut self, chart: BundledChart) -> Self {
        self.chart = chart;
        self
    }

    /// Sets the administrator's login and e-mail address.
    pub fn with_admin(mut self, user: impl Into<String>, email: impl Into<String>) -> Self {
        self.admin_user = user.into();
        self.admin_email = email.into();
        self
    }

    /// Sets the containers' shares of the plan.
    ///
    /// Errors: `InvalidConfig` when a share is zero, above 500‰ (the LimitRange's
    /// per-container maximum is half the plan) or they add up to more than 1000‰.
    pub fn with_shares(mut self, shares: WorkloadShares) -> Result<Self> {
        let parts = [shares.wordpress, shares.mariadb, shares.setup];
        let sum: u64 = parts.iter().sum();
        if parts.iter().any(|p| *p == 0 || *p > 500) || sum > 1000 {
            return Err(Error::InvalidConfig {
                message: format!(
                    "woocommerce workload shares must each be 1-500‰ and add up to at most 1000‰ (got {parts:?}‰)"
                ),
            });
        }
        self.shares = shares;
        Ok(self)
    }

    /// The bundled chart.
    pub fn bundled_chart(&self) -> &BundledChart {
        &self.chart
    }

    fn labels(&self, release: &str, component: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), CHART_NAME.to_owned()),
            ("app.kubernetes.io/instance".to_owned(), release.to_owned()),
            (
                "app.kubernetes.io/component".to_owned(),
                component.to_owned(),
            ),
        ])
    }

    fn component(&self, component: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), CHART_NAME.to_owned()),
            (
                "app.kubernetes.io/component".to_owned(),
                component.to_owned(),
            ),
        ])
    }
}

fn resources(n: &SizeNumbers, share: u64) -> Value {
    let part = |total: u64| total * share / 1000;
    let cpu_req = part(n.cpu_request).max(1);
    let mem_req = part(n.memory_request);
    json!({
        "requests": {"cpu": format_cpu(cpu_req), "memory": format_mebibytes_floor(mem_req)},
        "limits": {
            "cpu": format_cpu(part(n.cpu_limit).max(cpu_req)),
            "memory": format_mebibytes_floor(part(n.memory_limit).max(mem_req)),
        },
    })
}

impl Engine for WooCommerce {
    fn id(&self) -> &EngineId {
        &self.id
    }

    fn chart(&self) -> Result<PathBuf> {
        self.chart.path()
    }

    /// The store's name: one release per namespace, named like the store.
    fn chart_version(&self) -> Option<super::ChartVersion> {
        self.chart.version().ok()
    }

    fn release_name(&self, store: &StoreName) -> String {
        store.to_string()
    }

    fn credentials(&self, store: &StoreContext) -> CredentialsLayout {
        CredentialsLayout {
            secret_name: format!("{}-credentials", self.release_name(&store.name)),
            generated_keys: [
                "db-password",
                "db-root-password",
                "admin-password",
                "webhook-secret",
            ]
            .map(str::to_owned)
            .to_vec(),
            fixed: BTreeMap::from([("admin-user".to_owned(), self.admin_user.clone())]),
            admin_user_key: "admin-user".to_owned(),
            admin_password_key: "admin-password".to_owned(),
            webhook_secret_key: Some("webhook-secret".to_owned()),
        }
    }

    fn network(&self) -> NetworkProfile {
        NetworkProfile {
            web_pods: self.component("wordpress"),
            // Apache listens on 8080; 80 for a chart that serves on the usual port.
            web_ports: vec![8080, 80],
            db_pods: self.component("mariadb"),
            db_ports: vec![3306],
        }
    }

    fn values(&self, store: &StoreContext, settings: &EngineSettings) -> Result<Value> {
        let n = SizeNumbers::of(store.plan, &store.size)?;
        let too_small = |why: String| Error::InvalidConfig {
            message: format!("plan {} is too small for woocommerce: {why}", store.plan),
        };
        if n.storage < VOLUMES * VOLUME_BYTES {
            return Err(too_small(format!(
                "storage {} < {} for two volumes",
                store.size.storage,
                format_mebibytes_floor(VOLUMES * VOLUME_BYTES)
            )));
        }
        if u64::from(store.size.pvcs) < VOLUMES || store.size.pods < PODS {
            return Err(too_small(format!(
                "needs {VOLUMES} PVCs and {PODS} pods (has {} and {})",
                store.size.pvcs, store.size.pods
            )));
        }
        for (what, share) in [
            ("wordpress", self.shares.wordpress),
            ("mariadb", self.shares.mariadb),
        ] {
            if n.memory_limit * share / 1000 < MIN_MEMORY_LIMIT {
                return Err(too_small(format!(
                    "{what} would get less than 256Mi of memory (limits.memory {})",
                    store.size.memory_limit
                )));
            }
        }
        let host = settings.host(&store.name);
        let mut ingress = json!({
            "enabled": true,
            "host": host,
            "tls": {"enabled": settings.tls},
        });
        if let (true, Some(issuer)) = (settings.tls, &settings.cluster_issuer) {
            ingress["tls"]["clusterIssuer"] = json!(issuer);
        }
        if let Some(class) = &settings.ingress_class {
            ingress["className"] = json!(class);
        }
        let values = json!({
            "suspended": store.suspended,
            "store": {
                "name": store.name.as_str(),
                "url": format!("{}://{host}", settings.scheme()),
            },
            "baseDomain": settings.base_domain.trim_matches('.'),
            "existingSecret": self.credentials(store).secret_name,
            "admin": {"user": self.admin_user, "email": self.admin_email},
            "ingress": ingress,
            "persistence": {"storageClass": settings.storage_class.clone().unwrap_or_default()},
            "wordpress": {
                "resources": resources(&n, self.shares.wordpress),
                "persistence": {"size": format_mebibytes_floor(VOLUME_BYTES)},
            },
            "mariadb": {
                "resources": resources(&n, self.shares.mariadb),
                "persistence": {"size": format_mebibytes_floor(VOLUME_BYTES)},
            },
            "setup": {"resources": resources(&n, self.shares.setup)},
            "webhooks": {"url": settings.webhooks_url.clone().unwrap_or_default()},
            "commonLabels": {
                "urumi.dev/tenant": store.tenant.as_str(),
                "urumi.dev/plan": store.plan.as_str(),
            },
        });
        Ok(values)
    }

    fn workloads(&self, store: &StoreContext, revision: u32) -> Vec<Workload> {
        let r = self.release_name(&store.name);
        let mut workloads = vec![
            Workload {
                kind: WorkloadKind::StatefulSet,
                name: format!("{r}-mariadb"),
                labels: self.labels(&r, "mariadb"),
            },
            Workload {
                kind: WorkloadKind::Deployment,
                name: format!("{r}-wordpress"),
                labels: self.labels(&r, "wordpress"),
            },
        ];
        // A suspended store runs no setup Job; its two workloads are at zero replicas.
        if !store.suspended {
            workloads.push(Workload {
                kind: WorkloadKind::Job,
                name: format!("{r}-setup-{revision}"),
                labels: self.labels(&r, "setup"),
            });
        }
        workloads
    }

    fn urls(&self, store: &StoreName, settings: &EngineSettings) -> Urls {
        let storefront = format!("{}://{}", settings.scheme(), settings.host(store));
        Urls {
            admin: Some(format!("{storefront}/wp-admin/")),
            storefront: Some(storefront),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardrails::fixtures::mk_ctx;
    use crate::guardrails::quantity;
    use crate::store::Plan;

    #[test]
    fn names_follow_the_chart() {
        let woo = WooCommerce::new();
        let ctx = mk_ctx("shop1", Plan::Small);
        assert_eq!(woo.release_name(&ctx.name), "shop1");
        let layout = woo.credentials(&ctx);
        assert_eq!(layout.secret_name, "shop1-credentials");
        let mut keys: Vec<_> = layout.keys().collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "admin-password",
                "admin-user",
                "db-password",
                "db-root-password",
                "webhook-secret"
            ]
        );
        let w = woo.workloads(&ctx, 3);
        let names: Vec<_> = w.iter().map(|w| (w.kind, w.name.as_str())).collect();
        assert_eq!(
            names,
            [
                (WorkloadKind::StatefulSet, "shop1-mariadb"),
                (WorkloadKind::Deployment, "shop1-wordpress"),
                (WorkloadKind::Job, "shop1-setup-3"),
            ]
        );
        assert_eq!(w[2].labels["app.kubernetes.io/component"], "setup");
    }

    #[test]
    fn a_suspended_store_has_no_job_to_wait_for_and_says_so_in_its_values() {
        let woo = WooCommerce::new();
        let ctx = mk_ctx("shop1", Plan::Small).suspended(true);
        let kinds: Vec<_> = woo.workloads(&ctx, 4).iter().map(|w| w.kind).collect();
        assert_eq!(kinds, [WorkloadKind::StatefulSet, WorkloadKind::Deployment]);
        let v = woo.values(&ctx, &EngineSettings::default()).expect("fits");
        assert_eq!(v["suspended"], true);
        let running = woo
            .values(&mk_ctx("shop1", Plan::Small), &EngineSettings::default())
            .expect("fits");
        assert_eq!(running["suspended"], false);
    }

    #[test]
    fn values_carry_host_classes_secret_and_no_password() {
        let woo = WooCommerce::new();
        let ctx = mk_ctx("shop1", Plan::Small);
        let settings = EngineSettings {
            base_domain: "shops.example.com".to_owned(),
            tls: true,
            ingress_class: Some("traefik".to_owned()),
            storage_class: Some("local-path".to_owned()),
            webhooks_url: Some("https://urumi.example.com".to_owned()),
            cluster_issuer: Some("letsencrypt".to_owned()),
        };
        let v = woo.values(&ctx, &settings).expect("fits");
        assert_eq!(v["ingress"]["tls"]["clusterIssuer"], "letsencrypt");
        assert_eq!(v["store"]["name"], "shop1");
        assert_eq!(v["store"]["url"], "https://shop1.shops.example.com");
        assert_eq!(v["ingress"]["host"], "shop1.shops.example.com");
        assert_eq!(v["ingress"]["className"], "traefik");
        assert_eq!(v["ingress"]["tls"]["enabled"], true);
        assert_eq!(v["persistence"]["storageClass"], "local-path");
        assert_eq!(v["existingSecret"], "shop1-credentials");
        assert_eq!(v["webhooks"]["url"], "https://urumi.example.com");
        let text = v.to_string().to_lowercase();
        assert!(
            !text.contains("password"),
            "values must not carry passwords: {text}"
        );

        let plain = woo.values(&ctx, &EngineSettings::default()).expect("fits");
        assert!(plain["ingress"].get("className").is_none());
        assert_eq!(plain["webhooks"]["url"], "");
        assert_eq!(plain["store"]["url"], "http://shop1.127.0.0.1.nip.io");
    }

    #[test]
    fn resources_fit_every_plan_with_room_for_the_job() {
        let woo = WooCommerce::new();
        for plan in Plan::ALL {
            let ctx = mk_ctx("shop1", plan);
            let n = SizeNumbers::of(plan, &ctx.size).expect("valid");
            let v = woo.values(&ctx, &EngineSettings::default()).expect("fits");
            let (mut cpu_r, mut cpu_l, mut mem_r, mut mem_l) = (0, 0, 0, 0);
            for c in ["wordpress", "mariadb", "setup"] {
                let r = &v[c]["resources"];
                let get = |a: &str, b: &str| r[a][b].as_str().expect("quantity").to_owned();
                let (cr, cl) = (
                    quantity::cpu_millis(&get("requests", "cpu")).expect("cpu"),
                    quantity::cpu_millis(&get("limits", "cpu")).expect("cpu"),
                );
                let (mr, ml) = (
                    quantity::bytes(&get("requests", "memory")).expect("mem"),
                    quantity::bytes(&get("limits", "memory")).expect("mem"),
                );
                assert!(cr <= cl && mr <= ml, "{plan} {c}: requests above limits");
                assert!(
                    cl <= n.cpu_limit / 2 && ml <= n.memory_limit / 2,
                    "{plan} {c}: over max"
                );
                cpu_r += cr;
                cpu_l += cl;
                mem_r += mr;
                mem_l += ml;
            }
            assert!(
                cpu_r <= n.cpu_request && cpu_l <= n.cpu_limit,
                "{plan}: cpu over quota"
            );
            assert!(
                mem_r <= n.memory_request && mem_l <= n.memory_limit,
                "{plan}: memory over quota"
            );
        }
    }

    #[test]
    fn too_small_plans_are_refused() {
        let woo = WooCommerce::new();
        let mut ctx = mk_ctx("shop1", Plan::Small);
        ctx.size.storage = "3Gi".to_owned();
        let err = woo
            .values(&ctx, &EngineSettings::default())
            .expect_err("3Gi < 4Gi");
        assert_eq!(err.kind(), crate::error::ErrorKind::InvalidConfig);
        let mut ctx = mk_ctx("shop1", Plan::Small);
        ctx.size.memory_limit = "512Mi".to_owned();
        ctx.size.memory_request = "512Mi".to_owned();
        assert!(woo.values(&ctx, &EngineSettings::default()).is_err());
        let mut ctx = mk_ctx("shop1", Plan::Small);
        ctx.size.pods = 2;
        assert!(woo.values(&ctx, &EngineSettings::default()).is_err());
    }

    #[test]
    fn urls_and_shares() {
        let woo = WooCommerce::new();
        let name = StoreName::new("shop1").expect("valid");
        let urls = woo.urls(&name, &EngineSettings::default());
        assert_eq!(
            urls.storefront.as_deref(),
            Some("http://shop1.127.0.0.1.nip.io")
        );
        assert_eq!(
            urls.admin.as_deref(),
            Some("http://shop1.127.0.0.1.nip.io/wp-admin/")
        );
        for bad in [(600, 200, 100), (500, 400, 200), (0, 300, 200)] {
            let shares = WorkloadShares {
                wordpress: bad.0,
                mariadb: bad.1,
                setup: bad.2,
            };
            assert!(WooCommerce::new().with_shares(shares).is_err(), "{bad:?}");
        }
        let ok = WorkloadShares {
            wordpress: 500,
            mariadb: 300,
            setup: 200,
        };
        assert!(WooCommerce::new().with_shares(ok).is_ok());
    }
}
