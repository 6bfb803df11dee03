//! Packs `charts/woocommerce-store` into a `.tgz` in `OUT_DIR`, which `engine::chart`
//! bundles with `include_bytes!`. In the workspace, `urumi-core/charts/woocommerce-store`
//! is a symlink to the workspace's chart; `cargo package` copies the files it points to,
//! so the published crate carries its chart and builds on its own.
//!
//! ```text
//!  charts/woocommerce-store/**  ──sorted, .helmignore'd──▶ tar (mtime 0, uid/gid 0,
//!       mode 0644/0755, prefix "woocommerce-store/") ──gzip (mtime 0, level 9)──▶
//!  $OUT_DIR/woocommerce-store.tgz
//! ```
//!
//! Deterministic: the same chart files give the same bytes, so the archive's digest
//! names a chart version exactly. Cargo reruns this script when anything under the
//! chart directory changes.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const CHART: &str = "woocommerce-store";

fn main() -> io::Result<()> {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let chart_dir = manifest.join("charts").join(CHART);
    println!("cargo:rerun-if-changed={}", chart_dir.display());
    println!("cargo:rerun-if-changed=build.rs");
    if !chart_dir.join("Chart.yaml").is_file() {
        return Err(io::Error::other(format!(
            "{} has no Chart.yaml: the WooCommerce chart is bundled from urumi-core/charts/ \
             (a symlink to the workspace's charts/woocommerce-store)",
            chart_dir.display()
        )));
    }
    let ignore = read_helmignore(&chart_dir)?;
    let mut files = Vec::new();
    walk(&chart_dir, Path::new(""), &ignore, &mut files)?;
    files.sort();

    let out = PathBuf::from(env("OUT_DIR")?).join(format!("{CHART}.tgz"));
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(File::create(&out)?, flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for rel in &files {
        let path = chart_dir.join(rel);
        let data = fs::read(&path)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(if is_executable(&path)? { 0o755 } else { 0o644 });
        header.set_entry_type(tar::EntryType::Regular);
        let name = format!("{CHART}/{}", to_slash(rel));
        tar.append_data(&mut header, name, data.as_slice())?;
    }
    let gz = tar.into_inner()?;
    gz.finish()?.flush()?;
    Ok(())
}

fn env(key: &str) -> io::Result<String> {
    std::env::var(key).map_err(|_| io::Error::other(format!("{key} is not set")))
}

/// The simple patterns of a `.helmignore` (`*.ext`, exact names, `dir/`); the file
/// itself is kept, as `helm package` does.
fn read_helmignore(dir: &Path) -> io::Result<Vec<String>> {
    match fs::read_to_string(dir.join(".helmignore")) {
        Ok(s) => Ok(s
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.trim_end_matches('/').to_owned())
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn ignored(name: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| match p.strip_prefix('*') {
        Some(suffix) => name.ends_with(suffix),
        None => name == p,
    }) || name.ends_with(".tgz")
}

fn walk(root: &Path, rel: &Path, ignore: &[String], out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if ignored(&name, ignore) {
            continue;
        }
        let path = rel.join(&name);
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(root, &path, ignore, out)?;
        } else if kind.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

fn to_slash(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(unix)]
fn is_executable(p: &Path) -> io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    Ok(fs::metadata(p)?.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_: &Path) -> io::Result<bool> {
    Ok(false)
}
