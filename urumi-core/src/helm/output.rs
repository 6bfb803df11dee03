//! Reading helm's `-o json` output.
//!
//! Only the fields a caller needs are read. helm's release JSON also carries the
//! values (`config`), the manifest and the chart's files: those may hold secrets and
//! are skipped by serde, never stored, never echoed into an error.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Release, ReleaseStatus, Revision};

/// Why helm's output could not be read (never includes the output itself: it may
/// hold the values).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ParseError(pub(crate) String);

#[derive(Deserialize)]
struct RawRelease {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    version: u32,
    info: Option<RawInfo>,
    chart: Option<RawChart>,
}

#[derive(Deserialize)]
struct RawInfo {
    #[serde(default)]
    last_deployed: Option<String>,
    #[serde(default)]
    description: String,
    status: Option<ReleaseStatus>,
}

#[derive(Deserialize)]
struct RawChart {
    metadata: Option<RawMetadata>,
}

#[derive(Deserialize)]
struct RawMetadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(rename = "appVersion", default)]
    app_version: Option<String>,
}

#[derive(Deserialize)]
struct RawRevision {
    revision: u32,
    #[serde(default)]
    updated: Option<String>,
    status: ReleaseStatus,
    #[serde(default)]
    chart: String,
    #[serde(default)]
    app_version: String,
    #[serde(default)]
    description: String,
}

/// helm's timestamps are RFC 3339 (Go's `time.Time`); an unreadable or zero one is
/// `None` rather than an error.
pub(super) fn timestamp(raw: Option<&str>) -> Option<DateTime<Utc>> {
    let parsed = DateTime::parse_from_rfc3339(raw?).ok()?;
    let utc = parsed.with_timezone(&Utc);
    (utc.timestamp() > 0).then_some(utc)
}

pub(super) fn describe(e: &serde_json::Error) -> String {
    // serde_json's messages name the field and position, not the data: safe to keep.
    format!(
        "{} (line {}, column {})",
        e.classify_str(),
        e.line(),
        e.column()
    )
}

trait ClassifyStr {
    fn classify_str(&self) -> &'static str;
}

impl ClassifyStr for serde_json::Error {
    fn classify_str(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "i/o error",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "unexpected JSON shape",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

/// Parses the release JSON printed by `helm upgrade --install -o json` (and
/// `helm status -o json`).
pub(crate) fn parse_release(stdout: &[u8]) -> Result<Release, ParseError> {
    let raw: RawRelease = serde_json::from_slice(stdout).map_err(|e| ParseError(describe(&e)))?;
    let info = raw
        .info
        .ok_or_else(|| ParseError("release JSON has no \"info\"".to_owned()))?;
    let status = info
        .status
        .ok_or_else(|| ParseError("release JSON has no \"info.status\"".to_owned()))?;
    let metadata = raw.chart.and_then(|c| c.metadata);
    let chart = metadata
        .as_ref()
        .map(|m| format!("{}-{}", m.name, m.version))
        .unwrap_or_default();
    let app_version = metadata
        .and_then(|m| m.app_version)
        .filter(|v| !v.is_empty());
    Ok(Release {
        name: raw.name,
        namespace: raw.namespace,
        revision: raw.version,
        status,
        chart,
        app_version,
        description: info.description,
        last_deployed: timestamp(info.last_deployed.as_deref()),
    })
}

/// Parses `helm history -o json`, oldest revision first.
pub(crate) fn parse_history(stdout: &[u8]) -> Result<Vec<Revision>, ParseError> {
    // helm prints `null`, not `[]`, for an empty list in some versions.
    let raw: Option<Vec<RawRevision>> =
        serde_json::from_slice(stdout).map_err(|e| ParseError(describe(&e)))?;
    let mut revisions: Vec<Revision> = raw
        .unwrap_or_default()
        .into_iter()
        .map(|r| Revision {
            revision: r.revision,
            updated: timestamp(r.updated.as_deref()),
            status: r.status,
            chart: r.chart,
            app_version: r.app_version,
            description: r.description,
        })
        .collect();
    revisions.sort_by_key(|r| r.revision);
    Ok(revisions)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shaped like helm v3.22's output; `config` and `manifest` hold a secret that must
    // never come out of the parser.
    const UPGRADE_JSON: &str = r#"{
      "name": "shop1",
      "info": {
        "first_deployed": "2026-11-23T04:00:00.123456789Z",
        "last_deployed": "2026-11-23T04:05:06.5+01:00",
        "deleted": "",
        "description": "Upgrade complete",
        "status": "deployed",
        "notes": "Thanks"
      },
      "chart": {
        "metadata": {"name": "woocommerce-store", "version": "0.1.0", "appVersion": "6.8", "apiVersion": "v2"},
        "lock": null,
        "templates": [{"name": "templates/cm.yaml", "data": "YXBpVmVyc2lvbjogdjE="}],
        "values": {"replicas": 1},
        "schema": null,
        "files": []
      },
      "config": {"mariadb": {"rootPassword": "s3cr3t-root"}},
      "manifest": "---\nkind: Secret\ndata:\n  password: s3cr3t-root\n",
      "version": 7,
      "namespace": "store-shop1"
    }"#;

    #[test]
    fn parses_a_release_and_drops_values_and_manifest() {
        let r = parse_release(UPGRADE_JSON.as_bytes()).expect("parses");
        assert_eq!(r.name, "shop1");
        assert_eq!(r.namespace, "store-shop1");
        assert_eq!(r.revision, 7);
        assert_eq!(r.status, ReleaseStatus::Deployed);
        assert_eq!(r.chart, "woocommerce-store-0.1.0");
        assert_eq!(r.app_version.as_deref(), Some("6.8"));
        assert_eq!(r.description, "Upgrade complete");
        assert_eq!(
            r.last_deployed.map(|t| t.to_rfc3339()),
            Some("2026-11-23T03:05:06.500+00:00".to_owned())
        );
        assert!(!format!("{r:?}").contains("s3cr3t"));
    }

    #[test]
    fn parses_every_status_helm_knows_and_tolerates_new_ones() {
        for (text, want) in [
            ("deployed", ReleaseStatus::Deployed),
            ("failed", ReleaseStatus::Failed),
            ("pending-install", ReleaseStatus::PendingInstall),
            ("pending-upgrade", ReleaseStatus::PendingUpgrade),
            ("pending-rollback", ReleaseStatus::PendingRollback),
            ("uninstalling", ReleaseStatus::Uninstalling),
            ("uninstalled", ReleaseStatus::Uninstalled),
            ("superseded", ReleaseStatus::Superseded),
            ("unknown", ReleaseStatus::Unknown),
            ("some-future-status", ReleaseStatus::Unknown),
        ] {
            let json = format!(
                r#"[{{"revision":1,"updated":"2026-11-23T04:00:00Z","status":"{text}","chart":"c-1","app_version":"","description":"d"}}]"#
            );
            let h = parse_history(json.as_bytes()).expect("parses");
            assert_eq!(h[0].status, want, "{text}");
            if want != ReleaseStatus::Unknown {
                assert_eq!(want.as_str(), text);
            }
        }
    }

    #[test]
    fn parses_history_sorted_oldest_first() {
        let json = r#"[
          {"revision":2,"updated":"2026-11-23T04:01:00.1+00:00","status":"pending-upgrade","chart":"probe-0.1.0","app_version":"1.0","description":"Preparing upgrade"},
          {"revision":1,"updated":"2026-11-23T04:00:00Z","status":"deployed","chart":"probe-0.1.0","app_version":"1.0","description":"Install complete"}
        ]"#;
        let h = parse_history(json.as_bytes()).expect("parses");
        assert_eq!(h.iter().map(|r| r.revision).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(h[1].status, ReleaseStatus::PendingUpgrade);
        assert_eq!(h[0].chart, "probe-0.1.0");
        assert!(h[0].updated.is_some());
    }

    #[test]
    fn empty_history_is_empty() {
        assert_eq!(parse_history(b"[]"), Ok(vec![]));
        assert_eq!(parse_history(b"null"), Ok(vec![]));
    }

    #[test]
    fn unreadable_output_is_an_error_without_the_output() {
        let err = parse_release(b"{\"config\": {\"password\": \"s3cr3t\"").expect_err("truncated");
        assert!(!err.0.contains("s3cr3t"), "{}", err.0);
        let err = parse_release(br#"{"name": "x", "config": {"password": "s3cr3t"}}"#)
            .expect_err("no info");
        assert!(err.0.contains("info"), "{}", err.0);
        let err = parse_history(b"Error: nope").expect_err("not json");
        assert!(err.0.contains("not JSON"), "{}", err.0);
    }

    #[test]
    fn zero_or_garbled_timestamps_are_none() {
        assert_eq!(timestamp(Some("0001-01-01T00:00:00Z")), None);
        assert_eq!(timestamp(Some("yesterday")), None);
        assert_eq!(timestamp(None), None);
    }
}
