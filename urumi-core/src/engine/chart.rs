//! Charts bundled into the crate, written to disk once for `helm`.
//!
//! ```text
//!  build.rs: charts/woocommerce-store ──deterministic .tgz──▶ $OUT_DIR ──include_bytes!──▶ WOOCOMMERCE_TGZ
//!
//!  BundledChart::path()  (first call per process; later calls: the remembered path, no I/O)
//!     <cache>/woocommerce-store-<sha256[..16]>.tgz exists with that digest? ── yes ──▶ path
//!        │ no
//!        ▼
//!     write a temp file in <cache> ──rename──▶ <cache>/woocommerce-store-<sha256[..16]>.tgz
//! ```
//!
//! The file name is content-addressed: two builds of urumi with different charts never
//! share a file, and a file with the right name but the wrong bytes (truncated, edited)
//! is replaced. The rename is atomic, so helm never sees half a chart even when several
//! processes start at once.
//!
//! [`BundledChart::version`] reads `Chart.yaml`'s `version` and `appVersion` out of the
//! archive (once), so a store can record which chart it runs.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// `charts/woocommerce-store`, packed by build.rs.
pub static WOOCOMMERCE_TGZ: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/woocommerce-store.tgz"));

/// A packaged chart held in memory, materialized on disk on first use.
pub struct BundledChart {
    name: &'static str,
    bytes: &'static [u8],
    digest: String,
    cache_dir: PathBuf,
    path: OnceLock<PathBuf>,
    version: OnceLock<ChartVersion>,
}

/// Which chart a store runs: `Chart.yaml`'s `version` and `appVersion`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartVersion {
    /// The chart's version, e.g. `0.2.0`.
    pub version: String,
    /// The version of the application it installs (empty when the chart names none).
    pub app_version: String,
}

impl fmt::Debug for BundledChart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundledChart")
            .field("name", &self.name)
            .field("bytes", &self.bytes.len())
            .field("digest", &self.digest)
            .field("cache_dir", &self.cache_dir)
            .finish()
    }
}

/// The default cache directory: `$XDG_CACHE_HOME/urumi/charts`, else
/// `$HOME/.cache/urumi/charts`, else `<temp dir>/urumi-charts`.
pub fn default_cache_dir() -> PathBuf {
    let non_empty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(x) = non_empty("XDG_CACHE_HOME") {
        x.join("urumi").join("charts")
    } else if let Some(h) = non_empty("HOME") {
        h.join(".cache").join("urumi").join("charts")
    } else {
        std::env::temp_dir().join("urumi-charts")
    }
}

impl BundledChart {
    /// A chart named `name` (used in the file name) packaged as `bytes` (a `.tgz`),
    /// cached under [`default_cache_dir`].
    pub fn new(name: &'static str, bytes: &'static [u8]) -> Self {
        BundledChart {
            name,
            bytes,
            digest: hex::encode(Sha256::digest(bytes)),
            cache_dir: default_cache_dir(),
            path: OnceLock::new(),
            version: OnceLock::new(),
        }
    }

    /// The bundled `charts/woocommerce-store`.
    pub fn woocommerce() -> Self {
        Self::new("woocommerce-store", WOOCOMMERCE_TGZ)
    }

    /// Caches the chart under `dir` instead of the default.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = dir.into();
        self.path = OnceLock::new();
        self
    }

    /// The packaged chart.
    pub fn bytes(&self) -> &'static [u8] {
        self.bytes
    }

    /// The SHA-256 of the packaged chart, lowercase hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The cache file's name: `<name>-<first 16 hex digits of the digest>.tgz`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.tgz", self.name, &self.digest[..16])
    }

    /// The chart on disk, written on the first call (see the module docs).
    ///
    /// Errors: `InvalidConfig` naming the cache directory when it cannot be written.
    pub fn path(&self) -> Result<PathBuf> {
        if let Some(p) = self.path.get() {
            return Ok(p.clone());
        }
        let path = self.materialize()?;
        Ok(self.path.get_or_init(|| path).clone())
    }

    /// The chart's `version` and `appVersion`, read from its `Chart.yaml` in the archive.
    ///
    /// Errors: `InvalidConfig` when the archive has no readable top-level `Chart.yaml`
    /// with a `version`.
    pub fn version(&self) -> Result<ChartVersion> {
        if let Some(v) = self.version.get() {
            return Ok(v.clone());
        }
        let read = chart_yaml(self.bytes)
            .and_then(|yaml| parse_chart_yaml(&yaml))
            .ok_or_else(|| Error::InvalidConfig {
                message: format!(
                    "the bundled {} chart has no readable Chart.yaml with a version",
                    self.name
                ),
            })?;
        Ok(self.version.get_or_init(|| read).clone())
    }

    fn materialize(&self) -> Result<PathBuf> {
        let dir = &self.cache_dir;
        let target = dir.join(self.file_name());
        if let Ok(existing) = std::fs::read(&target)
            && hex::encode(Sha256::digest(&existing)) == self.digest
        {
            return Ok(target);
        }
        let fail = |what: &str, e: std::io::Error| Error::InvalidConfig {
            message: format!(
                "could not {what} the bundled {} chart in {}: {e}",
                self.name,
                dir.display()
            ),
        };
        std::fs::create_dir_all(dir).map_err(|e| fail("create a cache directory for", e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| fail("write", e))?;
        tmp.write_all(self.bytes).map_err(|e| fail("write", e))?;
        tmp.as_file().sync_all().map_err(|e| fail("write", e))?;
        set_readable(tmp.path());
        tmp.persist(&target).map_err(|e| fail("store", e.error))?;
        Ok(target)
    }
}

/// The text of the top-level `<chart>/Chart.yaml` in a gzipped tar (a helm package).
fn chart_yaml(tgz: &[u8]) -> Option<String> {
    use std::io::Read as _;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(tgz)
        .take(64 << 20)
        .read_to_end(&mut tar)
        .ok()?;
    let mut at = 0;
    while at + 512 <= tar.len() {
        let header = &tar[at..at + 512];
        if header.iter().all(|b| *b == 0) {
            return None;
        }
        let field = |range: std::ops::Range<usize>| {
            let raw = &header[range];
            let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
            String::from_utf8_lossy(&raw[..end]).into_owned()
        };
        let prefix = field(345..500);
        let name = match prefix.is_empty() {
            true => field(0..100),
            false => format!("{prefix}/{}", field(0..100)),
        };
        let size = usize::from_str_radix(field(124..136).trim(), 8).ok()?;
        let data = at + 512;
        if name.matches('/').count() == 1 && name.ends_with("/Chart.yaml") {
            return tar
                .get(data..data + size)
                .map(|b| String::from_utf8_lossy(b).into_owned());
        }
        at = data + size.div_ceil(512) * 512;
    }
    None
}

/// `version` and `appVersion` of a `Chart.yaml` (top-level keys, quotes and comments
/// stripped).
fn parse_chart_yaml(yaml: &str) -> Option<ChartVersion> {
    let value = |key: &str| {
        yaml.lines().find_map(|line| {
            let rest = line.strip_prefix(key)?.strip_prefix(':')?;
            let rest = rest.split(" #").next().unwrap_or_default().trim();
            Some(rest.trim_matches(|c| c == '"' || c == '\'').to_owned())
        })
    };
    let version = value("version").filter(|v| !v.is_empty())?;
    Some(ChartVersion {
        version,
        app_version: value("appVersion").unwrap_or_default(),
    })
}

#[cfg(unix)]
fn set_readable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // The temp file is 0600; the chart holds no secret and helm may run as another user.
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644));
}

#[cfg(not(unix))]
fn set_readable(_: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_chart_names_its_version_and_app_version() {
        let v = BundledChart::woocommerce().version().expect("version");
        let yaml = include_str!("../../charts/woocommerce-store/Chart.yaml");
        assert!(
            yaml.contains(&format!("\nversion: {}\n", v.version)),
            "{v:?}"
        );
        assert!(
            yaml.contains(&format!("appVersion: \"{}\"", v.app_version)),
            "{v:?}"
        );
        assert_eq!(
            parse_chart_yaml("name: x\nversion: '1.2.3' # pinned\nappVersion: 6.8\n"),
            Some(ChartVersion {
                version: "1.2.3".to_owned(),
                app_version: "6.8".to_owned()
            })
        );
        assert_eq!(parse_chart_yaml("name: x\n  version: 1\n"), None);
        assert!(chart_yaml(b"not a gzip").is_none());
    }

    #[test]
    fn bundled_chart_is_a_gzip_of_the_chart() {
        let c = BundledChart::woocommerce();
        assert_eq!(&c.bytes()[..2], &[0x1f, 0x8b], "gzip magic");
        assert!(c.file_name().starts_with("woocommerce-store-"));
        assert!(c.file_name().ends_with(".tgz"));
    }

    #[test]
    fn path_writes_once_and_repairs_a_damaged_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = BundledChart::woocommerce().with_cache_dir(dir.path());
        let p = c.path().expect("written");
        assert_eq!(p, dir.path().join(c.file_name()));
        assert_eq!(std::fs::read(&p).expect("read"), c.bytes());
        // Remembered: a second call does not touch the disk.
        std::fs::remove_file(&p).expect("remove");
        assert_eq!(c.path().expect("remembered"), p);
        assert!(!p.exists());
        // A fresh handle finds a damaged file and replaces it.
        std::fs::write(&p, b"not a chart").expect("damage");
        let again = BundledChart::woocommerce().with_cache_dir(dir.path());
        assert_eq!(again.path().expect("rewritten"), p);
        assert_eq!(std::fs::read(&p).expect("read"), c.bytes());
    }

    #[test]
    fn unwritable_cache_is_invalid_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").expect("write");
        let c = BundledChart::woocommerce().with_cache_dir(file.join("sub"));
        let err = c.path().expect_err("a file is not a directory");
        assert_eq!(err.kind(), crate::error::ErrorKind::InvalidConfig);
        assert!(err.to_string().contains("a-file"), "{err}");
    }
}
