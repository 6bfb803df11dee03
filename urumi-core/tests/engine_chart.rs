//! The bundled WooCommerce chart, rendered by the real `helm template` with the
//! engine's values for every plan, against the guardrails of that plan:
//!
//! ```text
//!  Plans::default() ─┬─ WooCommerce::values() ──helm template──▶ Deployments, StatefulSets, Jobs, PVCs
//!                    └─ ResourceQuota + LimitRange (guardrails)      │
//!                                  ▲                                 │
//!                                  └── Σ requests/limits of WordPress + MariaDB + setup Job ≤ quota,
//!                                      every container ≤ LimitRange max, volumes ≤ storage,
//!                                      NetworkProfile labels/ports match the pods,
//!                                      secretKeyRefs ⊆ the credentials layout
//! ```
//!
//! Needs `helm` on PATH: `eval "$(tests/cluster/up)"` puts it there. Without it the
//! test fails (it is never skipped).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml::Value;
use urumi_core::engine::{Engine, EngineSettings, WooCommerce, WorkloadKind};
use urumi_core::guardrails::quantity::{bytes, cpu_millis};
use urumi_core::guardrails::{GuardrailsConfig, SizeNumbers, StoreContext, container_defaults};
use urumi_core::store::{Plan, Plans, StoreName, StoreSpec, TenantId};

fn helm() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("helm"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no `helm` on PATH: run `eval \"$(tests/cluster/up)\"` from the repository root first \
                 (tests/cluster/up builds helm and prints the PATH to use)"
            )
        })
}

fn ctx(name: &str, plan: Plan) -> StoreContext {
    let spec = StoreSpec::new(
        StoreName::new(name).expect("valid name"),
        TenantId::new("acme").expect("valid tenant"),
    )
    .plan(plan);
    GuardrailsConfig::default()
        .context(&spec, &Plans::default())
        .expect("default plans are valid")
}

fn render(chart: &Path, release: &str, namespace: &str, values: &serde_json::Value) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("values.json");
    std::fs::write(&file, values.to_string()).expect("write values");
    let out = Command::new(helm())
        .args(["template", release])
        .arg(chart)
        .args(["--namespace", namespace, "--kube-version", "1.37.0", "-f"])
        .arg(&file)
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).expect("yaml"))
        .filter(|v| !v.is_null())
        .collect()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn kind(v: &Value) -> &str {
    v.get("kind").and_then(Value::as_str).unwrap_or("")
}

fn name(v: &Value) -> &str {
    s(v, &["metadata", "name"])
        .and_then(Value::as_str)
        .unwrap_or("")
}

#[derive(Debug, Default, Clone, Copy)]
struct Res {
    cpu_req: u64,
    cpu_lim: u64,
    mem_req: u64,
    mem_lim: u64,
    eph_lim: u64,
}

fn container_res(c: &Value) -> Res {
    let q = |a: &str, b: &str| {
        s(c, &["resources", a, b])
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                s(c, &["resources", a, b])
                    .and_then(Value::as_u64)
                    .map(|n| n.to_string())
            })
            .unwrap_or_else(|| panic!("container {:?} has no resources.{a}.{b}", c.get("name")))
    };
    Res {
        cpu_req: cpu_millis(&q("requests", "cpu")).expect("cpu"),
        cpu_lim: cpu_millis(&q("limits", "cpu")).expect("cpu"),
        mem_req: bytes(&q("requests", "memory")).expect("memory"),
        mem_lim: bytes(&q("limits", "memory")).expect("memory"),
        eph_lim: bytes(&q("limits", "ephemeral-storage")).expect("ephemeral-storage"),
    }
}

fn pod_spec(workload: &Value) -> &Value {
    s(workload, &["spec", "template", "spec"]).expect("pod template")
}

fn pod_labels(workload: &Value) -> BTreeMap<String, String> {
    let labels = s(workload, &["spec", "template", "metadata", "labels"]).expect("pod labels");
    serde_yaml::from_value(labels.clone()).expect("string labels")
}

/// What a pod counts against the quota: the sum of its containers, or its largest
/// init container if that is more.
fn pod_res(spec: &Value, each: &mut dyn FnMut(&str, Res)) -> Res {
    let mut sum = Res::default();
    for c in spec
        .get("containers")
        .and_then(Value::as_sequence)
        .expect("containers")
    {
        let r = container_res(c);
        each(c.get("name").and_then(Value::as_str).unwrap_or("?"), r);
        sum.cpu_req += r.cpu_req;
        sum.cpu_lim += r.cpu_lim;
        sum.mem_req += r.mem_req;
        sum.mem_lim += r.mem_lim;
        sum.eph_lim += r.eph_lim;
    }
    for c in spec
        .get("initContainers")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let r = container_res(c);
        each(c.get("name").and_then(Value::as_str).unwrap_or("?"), r);
        sum.cpu_req = sum.cpu_req.max(r.cpu_req);
        sum.cpu_lim = sum.cpu_lim.max(r.cpu_lim);
        sum.mem_req = sum.mem_req.max(r.mem_req);
        sum.mem_lim = sum.mem_lim.max(r.mem_lim);
        sum.eph_lim = sum.eph_lim.max(r.eph_lim);
    }
    sum
}

#[test]
fn bundled_chart_fits_every_plan_with_room_for_the_setup_job() {
    let cache = tempfile::tempdir().expect("tempdir");
    let woo = WooCommerce::new().with_cache_dir(cache.path());
    let chart = woo.chart().expect("bundled chart on disk");
    for plan in Plan::ALL {
        let ctx = ctx("shop1", plan);
        let quota = SizeNumbers::of(plan, &ctx.size).expect("valid plan");
        let max = container_defaults(&ctx).expect("valid plan");
        let values = woo
            .values(&ctx, &EngineSettings::default())
            .expect("plan fits");
        let docs = render(
            &chart,
            &woo.release_name(&ctx.name),
            &ctx.namespace,
            &values,
        );

        let mut total = Res::default();
        let mut pods = 0u32;
        let mut kinds = BTreeMap::<&str, u32>::new();
        for w in docs
            .iter()
            .filter(|d| matches!(kind(d), "Deployment" | "StatefulSet" | "Job"))
        {
            *kinds.entry(kind(w)).or_default() += 1;
            let replicas = match kind(w) {
                "Job" => 1,
                _ => s(w, &["spec", "replicas"])
                    .and_then(Value::as_u64)
                    .unwrap_or(1),
            };
            let mut each = |c: &str, r: Res| {
                assert!(
                    r.cpu_req <= r.cpu_lim && r.mem_req <= r.mem_lim,
                    "{plan}: {}/{c}: requests above limits: {r:?}",
                    name(w)
                );
                assert!(
                    r.cpu_lim <= max.max_cpu && r.mem_lim <= max.max_memory,
                    "{plan}: {}/{c} is over the LimitRange max ({} m, {} bytes): {r:?}",
                    name(w),
                    max.max_cpu,
                    max.max_memory
                );
                let (_, max_ephemeral) = max.ephemeral.expect("the default plans set it");
                assert!(
                    r.eph_lim <= max_ephemeral,
                    "{plan}: {}/{c}: ephemeral-storage over the LimitRange max: {r:?}",
                    name(w)
                );
            };
            let r = pod_res(pod_spec(w), &mut each);
            let n = replicas as u32;
            pods += n;
            total.cpu_req += r.cpu_req * replicas;
            total.cpu_lim += r.cpu_lim * replicas;
            total.mem_req += r.mem_req * replicas;
            total.mem_lim += r.mem_lim * replicas;
            total.eph_lim += r.eph_lim * replicas;
        }
        assert_eq!(
            kinds,
            BTreeMap::from([("Deployment", 1), ("Job", 1), ("StatefulSet", 1)]),
            "{plan}: WordPress, MariaDB and the setup Job"
        );
        assert!(
            pods <= ctx.size.pods,
            "{plan}: {pods} pods > quota {}",
            ctx.size.pods
        );
        assert!(
            total.cpu_req <= quota.cpu_request && total.cpu_lim <= quota.cpu_limit,
            "{plan}: CPU {total:?} over quota {quota:?}"
        );
        assert!(
            total.mem_req <= quota.memory_request && total.mem_lim <= quota.memory_limit,
            "{plan}: memory {total:?} over quota {quota:?}"
        );
        assert!(
            Some(total.eph_lim) <= quota.ephemeral_storage,
            "{plan}: ephemeral-storage {total:?} over quota {quota:?}"
        );

        // Volumes: the WordPress PVC and MariaDB's volume claim template.
        let mut storage = 0u64;
        let mut claims = 0u32;
        let mut add = |spec: &Value| {
            let size = s(spec, &["resources", "requests", "storage"])
                .and_then(Value::as_str)
                .expect("storage request");
            storage += bytes(size).expect("storage quantity");
            claims += 1;
        };
        for d in &docs {
            match kind(d) {
                "PersistentVolumeClaim" => add(d.get("spec").expect("spec")),
                "StatefulSet" => {
                    for t in s(d, &["spec", "volumeClaimTemplates"])
                        .and_then(Value::as_sequence)
                        .into_iter()
                        .flatten()
                    {
                        add(t.get("spec").expect("spec"));
                    }
                }
                _ => {}
            }
        }
        assert!(claims <= ctx.size.pvcs, "{plan}: {claims} PVCs");
        assert!(
            storage <= quota.storage,
            "{plan}: storage {storage} > {}",
            quota.storage
        );
    }
}

#[test]
fn guardrails_and_readiness_match_the_rendered_chart() {
    let cache = tempfile::tempdir().expect("tempdir");
    let woo = WooCommerce::new().with_cache_dir(cache.path());
    let chart = woo.chart().expect("bundled chart on disk");
    let ctx = ctx("shop1", Plan::Small);
    let values = woo
        .values(&ctx, &EngineSettings::default())
        .expect("plan fits");
    let docs = render(
        &chart,
        &woo.release_name(&ctx.name),
        &ctx.namespace,
        &values,
    );
    let find = |k: &str, n: &str| {
        docs.iter()
            .find(|d| kind(d) == k && name(d) == n)
            .unwrap_or_else(|| panic!("the chart renders no {k} {n}"))
    };

    // Readiness: every workload the engine waits for is rendered (helm template = revision 1),
    // carrying the labels the engine announces.
    for w in woo.workloads(&ctx, 1) {
        let doc = find(w.kind.as_str(), &w.name);
        let labels: BTreeMap<String, String> =
            serde_yaml::from_value(s(doc, &["metadata", "labels"]).expect("labels").clone())
                .expect("string labels");
        for (k, v) in &w.labels {
            assert_eq!(labels.get(k), Some(v), "{} {}: label {k}", w.kind, w.name);
        }
        if w.kind == WorkloadKind::Job {
            assert!(w.name.ends_with("-setup-1"));
        }
    }

    // NetworkPolicies select the right pods on the right ports.
    let profile = woo.network();
    let wordpress = find("Deployment", "shop1-wordpress");
    let mariadb = find("StatefulSet", "shop1-mariadb");
    let setup = find("Job", "shop1-setup-1");
    let subset = |sel: &BTreeMap<String, String>, pod: &BTreeMap<String, String>| {
        sel.iter().all(|(k, v)| pod.get(k) == Some(v))
    };
    assert!(
        subset(&profile.web_pods, &pod_labels(wordpress)),
        "web selector misses WordPress"
    );
    assert!(
        subset(&profile.db_pods, &pod_labels(mariadb)),
        "db selector misses MariaDB"
    );
    assert!(
        !subset(&profile.web_pods, &pod_labels(mariadb)),
        "web selector must not pick MariaDB"
    );
    assert!(
        !subset(&profile.db_pods, &pod_labels(setup)),
        "db selector must not pick the Job"
    );
    let ports = |w: &Value| -> Vec<u64> {
        pod_spec(w)["containers"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|c| {
                c.get("ports")
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
            })
            .filter_map(|p| p.get("containerPort").and_then(Value::as_u64))
            .collect()
    };
    for p in ports(wordpress) {
        assert!(
            profile.web_ports.contains(&(p as u16)),
            "WordPress port {p} not allowed"
        );
    }
    for p in ports(mariadb) {
        assert!(
            profile.db_ports.contains(&(p as u16)),
            "MariaDB port {p} not allowed"
        );
    }

    // Every key the chart reads from the Secret is one the guardrails create.
    let layout = woo.credentials(&ctx);
    let keys: Vec<&str> = layout.keys().collect();
    let mut refs = Vec::new();
    fn walk<'a>(v: &'a Value, out: &mut Vec<(&'a str, &'a str)>) {
        match v {
            Value::Mapping(m) => {
                if let Some(r) = m.get("secretKeyRef") {
                    let n = r.get("name").and_then(Value::as_str).unwrap_or("");
                    let k = r.get("key").and_then(Value::as_str).unwrap_or("");
                    out.push((n, k));
                }
                m.values().for_each(|v| walk(v, out));
            }
            Value::Sequence(s) => s.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    docs.iter().for_each(|d| walk(d, &mut refs));
    assert!(
        !refs.is_empty(),
        "the chart reads its passwords from a Secret"
    );
    for (secret, key) in refs {
        assert_eq!(secret, layout.secret_name, "secretKeyRef to {secret}");
        assert!(
            keys.contains(&key),
            "the chart reads key {key:?} the Secret will not have"
        );
    }

    // The values hold no password and the rendered chart creates no Secret.
    assert!(
        docs.iter().all(|d| kind(d) != "Secret"),
        "the chart must not render a Secret"
    );
    let host = s(find("Ingress", "shop1"), &["spec", "rules"])
        .and_then(Value::as_sequence)
        .and_then(|r| r.first())
        .and_then(|r| r.get("host"))
        .and_then(Value::as_str);
    assert_eq!(host, Some("shop1.127.0.0.1.nip.io"));
}

#[test]
fn chart_on_disk_is_the_bundled_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let woo = WooCommerce::new().with_cache_dir(dir.path());
    let p1 = woo.chart().expect("written");
    let p2 = woo.chart().expect("remembered");
    assert_eq!(p1, p2);
    assert_eq!(
        std::fs::read(&p1).expect("read"),
        woo.bundled_chart().bytes()
    );
    assert!(
        p1.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains(&woo.bundled_chart().digest()[..16])),
        "content-addressed file name: {}",
        p1.display()
    );
}

/// Files under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(dir.join(&rel)).expect("read dir") {
            let e = e.expect("entry");
            let p = rel.join(e.file_name());
            if e.file_type().expect("type").is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn bundled_chart_is_the_chart_in_the_repository() {
    let cache = tempfile::tempdir().expect("tempdir");
    let woo = WooCommerce::new().with_cache_dir(cache.path());
    let tgz = woo.chart().expect("bundled chart on disk");
    let out = tempfile::tempdir().expect("tempdir");
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(out.path())
        .status()
        .expect("run tar");
    assert!(status.success(), "tar could not unpack the bundled chart");
    let bundled = out.path().join("woocommerce-store");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/woocommerce-store");
    let in_bundle = files(&bundled);
    assert!(in_bundle.contains(&PathBuf::from("Chart.yaml")));
    assert!(in_bundle.iter().any(|p| p.starts_with("templates")));
    // Every file of the chart directory is bundled with the same bytes (the build
    // reruns when the chart changes), except what .helmignore leaves out.
    let ignore: Vec<String> = std::fs::read_to_string(source.join(".helmignore"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_owned())
        .collect();
    let ignored = |rel: &Path| {
        rel.iter().any(|part| {
            let part = part.to_string_lossy();
            part.ends_with(".tgz")
                || ignore.iter().any(|p| match p.strip_prefix('*') {
                    Some(suffix) => part.ends_with(suffix),
                    None => part == p.as_str(),
                })
        })
    };
    for rel in files(&source).into_iter().filter(|r| !ignored(r)) {
        let want = std::fs::read(source.join(&rel)).expect("read source");
        let got = std::fs::read(bundled.join(&rel))
            .unwrap_or_else(|_| panic!("{} is not in the bundled chart", rel.display()));
        assert!(
            got == want,
            "{} differs from the bundled copy: rebuild urumi-core",
            rel.display()
        );
    }
}
