//! The store chart packaged at another version, for a provisioner built with another chart
//! than this build's. Shared by the lifecycle tests and the fleet bench (`#[path]`).

/// `charts/woocommerce-store` packaged by `helm package` into `dir` with its version set to
/// `version` (and `extra_template` added as `templates/zz-extra.yaml`): the `.tgz`'s path.
/// For a provisioner built with another chart than this build's.
pub fn packaged_store_chart(
    dir: &std::path::Path,
    version: &str,
    extra_template: Option<&str>,
) -> std::path::PathBuf {
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/woocommerce-store");
    let copy = dir.join("woocommerce-store");
    let status = std::process::Command::new("cp")
        .args(["-r", source])
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(status.success(), "copy the chart");
    let chart_yaml = copy.join("Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).expect("Chart.yaml");
    let bumped: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("version:") {
                format!("version: {version}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(&chart_yaml, bumped.join("\n") + "\n").expect("write Chart.yaml");
    if let Some(template) = extra_template {
        std::fs::write(copy.join("templates").join("zz-extra.yaml"), template)
            .expect("write the extra template");
    }
    let out = std::process::Command::new("helm")
        .args(["package", "--destination"])
        .arg(dir)
        .arg(&copy)
        .output()
        .expect("helm package");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join(format!("woocommerce-store-{version}.tgz"))
}
