//! `urumi-server`'s settings: defaults ◀ TOML file ◀ `URUMI_*` variables ◀ flags.
//!
//! ```text
//!  --config FILE ──toml──▶ FileConfig { listen, state, kubeconfig, base_domain, log_format,
//!                                       log_level, request_timeout_secs, operator, [[api_keys]],
//!                                       [provisioner] }
//!  Flags (clap; each also read from URUMI_*) ──override──▶ Config (effective)
//!        ├─ check(): no keys on a non-loopback address ─▶ refused
//!        └─ masked_toml(): --print-config (keys and the database password masked)
//! ```
//!
//! `[provisioner]` is [`urumi_core::ProvisionerSettings`]: camelCase keys (`baseDomain`,
//! `[provisioner.orchestrator] leaseTtl = 30`), snake_case accepted, unknown keys refused.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};
use urumi_core::ProvisionerSettings;

use crate::auth::ApiKeyConfig;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The command line of `urumi-server`.
#[derive(Debug, Parser)]
#[command(
    name = "urumi-server",
    version,
    about = "Urumi's HTTP API and dashboard: provision WooCommerce stores on Kubernetes.",
    after_help = "Settings come from defaults, then the TOML file, then URUMI_* variables, then flags.\n\
                  The TOML file holds everything, including API keys ([[api_keys]] with key or key_sha256,\n\
                  tenant, role, name) and the provisioner's settings ([provisioner], camelCase keys).\n\
                  See urumi-http/README.md."
)]
pub struct Flags {
    /// TOML file with every setting, including API keys.
    #[arg(long, env = "URUMI_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to serve on [default: 127.0.0.1:8080].
    #[arg(long, env = "URUMI_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// State store: sqlite://PATH, postgres://…, or memory: [default: sqlite://urumi.db].
    #[arg(long, env = "URUMI_STATE", value_name = "URL")]
    pub state: Option<String>,
    /// Cluster to provision into [default: $KUBECONFIG, then in-cluster].
    #[arg(long, env = "URUMI_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Stores answer at <name>.<D> [default: 127.0.0.1.nip.io].
    #[arg(long, env = "URUMI_BASE_DOMAIN", value_name = "D")]
    pub base_domain: Option<String>,
    /// Run helm's work in this resident process (urumi-helm-resident: a path or a name on
    /// PATH) instead of a helm process per call (overrides `[provisioner] helmResident`).
    #[arg(long, env = "URUMI_HELM_RESIDENT", value_name = "PATH")]
    pub helm_resident: Option<String>,
    /// Log format [default: text].
    #[arg(long, env = "URUMI_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter, tracing-subscriber syntax [default: info].
    #[arg(long, env = "URUMI_LOG", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Seconds a request may take before it is answered 504 [default: 60].
    #[arg(long, env = "URUMI_REQUEST_TIMEOUT_SECS", value_name = "SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Also reconcile `Store` objects (stores.urumi.dev) in every namespace labelled
    /// urumi.dev/tenant (operator mode) [default: false].
    #[arg(long, env = "URUMI_OPERATOR")]
    pub operator: bool,
    /// Print the effective settings (secrets masked) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Print the Store CustomResourceDefinition (YAML) and exit.
    #[arg(long)]
    pub print_crd: bool,
}

/// The TOML file.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `listen`.
    pub listen: Option<SocketAddr>,
    /// `state`.
    pub state: Option<String>,
    /// `kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `base_domain` (overrides `[provisioner] baseDomain`).
    pub base_domain: Option<String>,
    /// `log_format`.
    pub log_format: Option<LogFormat>,
    /// `log_level`.
    pub log_level: Option<String>,
    /// `request_timeout_secs`.
    pub request_timeout_secs: Option<u64>,
    /// `operator`.
    pub operator: Option<bool>,
    /// `[[api_keys]]`.
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    /// `[provisioner]`.
    #[serde(default)]
    pub provisioner: ProvisionerSettings,
}

/// The effective settings.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Address to serve on.
    pub listen: SocketAddr,
    /// State store URL.
    pub state: String,
    /// Kubeconfig (None: `$KUBECONFIG`, then in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
    /// Request timeout, in seconds.
    pub request_timeout_secs: u64,
    /// Operator mode: also reconcile `Store` objects.
    pub operator: bool,
    /// API keys.
    pub api_keys: Vec<ApiKeyConfig>,
    /// The provisioner's settings.
    pub provisioner: ProvisionerSettings,
}

impl Config {
    /// Merges defaults, the file named by `flags.config`, and the flags (which clap
    /// already filled from `URUMI_*`). Errors name the file and the problem.
    pub fn load(flags: &Flags) -> Result<Config, String> {
        let file = match &flags.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let mut provisioner = file.provisioner;
        if let Some(d) = flags.base_domain.clone().or(file.base_domain) {
            provisioner.base_domain = d;
        }
        if let Some(resident) = flags.helm_resident.clone().filter(|s| !s.is_empty()) {
            provisioner.helm_resident = Some(resident);
        }
        let default_listen = SocketAddr::from(([127, 0, 0, 1], 8080));
        Ok(Config {
            listen: flags.listen.or(file.listen).unwrap_or(default_listen),
            state: flags
                .state
                .clone()
                .or(file.state)
                .unwrap_or_else(|| "sqlite://urumi.db".to_owned()),
            kubeconfig: flags.kubeconfig.clone().or(file.kubeconfig),
            log_format: flags.log_format.or(file.log_format).unwrap_or_default(),
            log_level: flags
                .log_level
                .clone()
                .or(file.log_level)
                .unwrap_or_else(|| "info".to_owned()),
            request_timeout_secs: flags
                .request_timeout_secs
                .or(file.request_timeout_secs)
                .unwrap_or(60),
            operator: flags.operator || file.operator.unwrap_or(false),
            api_keys: file.api_keys,
            provisioner,
        })
    }

    /// Refuses what must not start: no API keys on a non-loopback address, bad keys,
    /// bad provisioner settings.
    pub fn check(&self) -> Result<(), String> {
        if self.api_keys.is_empty() && !self.listen.ip().is_loopback() {
            return Err(format!(
                "refusing to serve on {} with no API keys: add [[api_keys]] to the config file, \
                 or listen on a loopback address",
                self.listen
            ));
        }
        crate::auth::KeyRing::new(&self.api_keys)?;
        self.provisioner.validate().map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs.max(1))
    }

    /// The effective settings as TOML, with API keys and the database password masked.
    pub fn masked_toml(&self) -> Result<String, String> {
        let mut masked = self.clone();
        masked.state = mask_url_password(&masked.state);
        for k in &mut masked.api_keys {
            if k.key.is_some() {
                k.key = Some("********".to_owned());
            }
            if let Some(h) = &k.key_sha256 {
                k.key_sha256 = Some(format!("{}…", h.get(..8).unwrap_or("")));
            }
        }
        toml::to_string_pretty(&masked).map_err(|e| e.to_string())
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:****@host/db`.
pub fn mask_url_password(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let mut all = vec!["urumi-server"];
        all.extend_from_slice(args);
        Flags::parse_from(all)
    }

    #[test]
    fn flags_override_the_file_and_secrets_are_masked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("urumi.toml");
        std::fs::write(
            &path,
            r#"
listen = "127.0.0.1:9000"
state = "postgres://urumi:hunter2-secret@db/urumi"
[[api_keys]]
key = "super-secret-key-1"
tenant = "acme"
role = "admin"
[provisioner]
baseDomain = "shops.example"
[provisioner.orchestrator]
concurrency = 2
"#,
        )
        .expect("write");
        let p = path.display().to_string();
        let config =
            Config::load(&flags(&["--config", &p, "--listen", "127.0.0.1:9001"])).expect("loads");
        assert_eq!(config.listen.port(), 9001);
        assert_eq!(config.provisioner.base_domain, "shops.example");
        assert_eq!(config.provisioner.orchestrator.concurrency, 2);
        let shown = config.masked_toml().expect("toml");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(!shown.contains("super-secret-key-1"), "{shown}");
        assert!(shown.contains("shops.example"), "{shown}");
    }

    #[test]
    fn the_resident_helm_comes_from_the_file_or_the_flag() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("urumi.toml");
        std::fs::write(
            &path,
            "[provisioner]\nhelmResident = \"/opt/urumi/urumi-helm-resident\"\n",
        )
        .expect("write");
        let p = path.display().to_string();
        let from_file = Config::load(&flags(&["--config", &p])).expect("loads");
        assert_eq!(
            from_file.provisioner.helm_resident.as_deref(),
            Some("/opt/urumi/urumi-helm-resident")
        );
        let from_flag = Config::load(&flags(&[
            "--config",
            &p,
            "--helm-resident",
            "urumi-helm-resident",
        ]))
        .expect("loads");
        assert_eq!(
            from_flag.provisioner.helm_resident.as_deref(),
            Some("urumi-helm-resident")
        );
        let neither = Config::load(&flags(&[])).expect("loads");
        assert_eq!(neither.provisioner.helm_resident, None);
    }

    #[test]
    fn an_unknown_key_and_an_open_address_without_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[provisioner]\nbaseDomian = \"typo\"\n").expect("write");
        let err = Config::load(&flags(&["--config", &path.display().to_string()]))
            .expect_err("typo refused");
        assert!(err.contains("baseDomian"), "{err}");
        let open = Config::load(&flags(&["--listen", "0.0.0.0:8080"])).expect("loads");
        assert!(open.check().expect_err("no keys").contains("no API keys"));
        let local = Config::load(&flags(&[])).expect("loads");
        assert!(local.check().is_ok());
    }
}
