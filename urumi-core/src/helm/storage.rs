//! A release's history read straight from helm's storage in the cluster: one API call
//! where `helm history` starts a process (about 0.1 CPU-second: the binary, its client,
//! its discovery, then the same list).
//!
//! ```text
//!  Secrets of <namespace> labelled owner=helm, name=<release>     (helm's default `secret`
//!    data.release = base64( gzip( release JSON ) )                storage driver)
//!      └─ version, info.status, info.description, info.last_deployed,
//!         chart.metadata.name / version / appVersion               (values and manifest
//!  ─▶ Vec<Revision> by revision, the last `max` ones                 are never read)
//! ```
//!
//! Only for the `secret` driver: with `HELM_DRIVER` set to anything else (configmap, sql,
//! memory) [`HelmCli`](super::HelmCli) keeps asking helm. Reading the Secrets needs what
//! `helm history` needs: `list` on secrets in the store's namespace.

use std::io::Read as _;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use serde::Deserialize;

use super::output::{describe, timestamp};
use super::{ReleaseStatus, Revision};

/// Whether helm in this process's environment keeps releases in Secrets (its default).
pub(super) fn helm_uses_secrets() -> bool {
    driver_is_secrets(std::env::var("HELM_DRIVER").ok().as_deref())
}

/// Whether `HELM_DRIVER` (unset: `None`) names helm's Secret storage.
fn driver_is_secrets(helm_driver: Option<&str>) -> bool {
    matches!(
        helm_driver.map(str::trim),
        None | Some("" | "secret" | "secrets")
    )
}

#[derive(Deserialize)]
struct Stored {
    version: u32,
    info: Info,
    #[serde(default)]
    chart: Option<Chart>,
}

#[derive(Deserialize)]
struct Info {
    status: ReleaseStatus,
    #[serde(default)]
    description: String,
    #[serde(default)]
    last_deployed: Option<String>,
}

#[derive(Deserialize)]
struct Chart {
    #[serde(default)]
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default, rename = "appVersion")]
    app_version: String,
}

/// One revision from the `release` field of a helm storage Secret (helm's base64 text,
/// gzip inside, JSON inside that). The error names the step that failed, never the data.
pub(super) fn decode_revision(release_field: &[u8]) -> Result<Revision, String> {
    let text: Vec<u8> = release_field
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let packed = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map_err(|_| "the release record is not base64".to_owned())?;
    let json = if packed.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(packed.as_slice())
            .read_to_end(&mut out)
            .map_err(|_| "the release record is not valid gzip".to_owned())?;
        out
    } else {
        packed
    };
    let stored: Stored = serde_json::from_slice(&json)
        .map_err(|e| format!("the release record is not helm's JSON: {}", describe(&e)))?;
    let meta = stored.chart.and_then(|c| c.metadata);
    Ok(Revision {
        revision: stored.version,
        updated: timestamp(stored.info.last_deployed.as_deref()),
        status: stored.info.status,
        chart: meta
            .as_ref()
            .map(|m| format!("{}-{}", m.name, m.version))
            .unwrap_or_default(),
        app_version: meta.map(|m| m.app_version).unwrap_or_default(),
        description: stored.info.description,
    })
}

/// Why reading the history failed.
pub(super) enum ReadError {
    /// The API server could not be reached or answered a transient error.
    Unavailable(String),
    /// Refused (RBAC) or another permanent answer.
    Refused(String),
    /// A Secret held something that is not a helm release.
    Undecodable(String),
}

/// The history of `release` in `namespace`, oldest first; with `max`, only the last `max`
/// revisions (as `helm history --max`). No release: empty.
pub(super) async fn history(
    client: &kube::Client,
    namespace: &str,
    release: &str,
    max: Option<u32>,
) -> Result<Vec<Revision>, ReadError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(&format!("owner=helm,name={release}"));
    let list = secrets.list(&params).await.map_err(|e| match &e {
        kube::Error::Api(s) if s.code == 429 || s.code == 409 || s.code >= 500 => {
            ReadError::Unavailable(format!("{} {}", s.code, s.reason))
        }
        kube::Error::Api(s) => ReadError::Refused(format!("{} {}", s.code, s.reason)),
        _ => ReadError::Unavailable("the API server could not be reached".to_owned()),
    })?;
    let mut revisions = Vec::with_capacity(list.items.len());
    for secret in list.items {
        let Some(field) = secret.data.as_ref().and_then(|d| d.get("release")) else {
            continue;
        };
        let name = secret.metadata.name.unwrap_or_default();
        revisions.push(
            decode_revision(&field.0)
                .map_err(|why| ReadError::Undecodable(format!("{name}: {why}")))?,
        );
    }
    revisions.sort_by_key(|r| r.revision);
    if let Some(max) = max {
        let keep = revisions.len().saturating_sub(max as usize);
        revisions.drain(..keep);
    }
    Ok(revisions)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn encode(json: &str) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(json.as_bytes()).expect("gzip");
        base64::engine::general_purpose::STANDARD
            .encode(gz.finish().expect("gzip"))
            .into_bytes()
    }

    // Shaped like what helm 3 stores; `config` and `manifest` hold a secret that must never
    // come out of the decoder.
    const STORED: &str = r#"{"name":"shop1","namespace":"store-shop1","version":3,
      "info":{"first_deployed":"2026-11-23T04:00:00Z","last_deployed":"2026-11-23T04:05:06.5+01:00",
              "deleted":"","description":"urumi: store shop1 (small plan) d1","status":"pending-upgrade"},
      "chart":{"metadata":{"name":"woocommerce-store","version":"0.3.0","appVersion":"6.8"},"values":{}},
      "config":{"db":{"password":"hunter2-long"}},"manifest":"password: hunter2-long"}"#;

    #[test]
    fn a_stored_release_decodes_to_its_revision() {
        let r = decode_revision(&encode(STORED)).expect("decodes");
        assert_eq!(r.revision, 3);
        assert_eq!(r.status, ReleaseStatus::PendingUpgrade);
        assert_eq!(r.chart, "woocommerce-store-0.3.0");
        assert_eq!(r.app_version, "6.8");
        assert_eq!(r.description, "urumi: store shop1 (small plan) d1");
        assert_eq!(
            r.updated.map(|t| t.to_rfc3339()),
            Some("2026-11-23T03:05:06.500+00:00".to_owned())
        );
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn uncompressed_records_and_unknown_statuses_decode_too() {
        let plain = base64::engine::general_purpose::STANDARD
            .encode(r#"{"version":1,"info":{"status":"something-new"}}"#)
            .into_bytes();
        let r = decode_revision(&plain).expect("decodes");
        assert_eq!((r.revision, r.status), (1, ReleaseStatus::Unknown));
        assert_eq!(r.chart, "");
    }

    #[test]
    fn what_is_not_a_release_is_an_error_that_shows_no_data() {
        for (input, why) in [
            (b"not base64 at all!".to_vec(), "not base64"),
            (
                base64::engine::general_purpose::STANDARD
                    .encode([0x1f, 0x8b, 1, 2, 3])
                    .into_bytes(),
                "not valid gzip",
            ),
            (encode(r#"{"password":"hunter2-long"}"#), "not helm's JSON"),
        ] {
            let e = decode_revision(&input).expect_err("refused");
            assert!(e.contains(why), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn only_the_secret_driver_is_read_directly() {
        for (value, direct) in [
            (None, true),
            (Some(""), true),
            (Some("secret"), true),
            (Some("secrets"), true),
            (Some("configmap"), false),
            (Some("sql"), false),
            (Some("memory"), false),
        ] {
            assert_eq!(driver_is_secrets(value), direct, "{value:?}");
        }
    }
}
