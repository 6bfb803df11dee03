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
