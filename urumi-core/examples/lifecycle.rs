//! Embedding urumi-core: bring a store up, or take it down, and report as it goes.
//!
//! ```text
//! cargo run -p urumi-core --example lifecycle -- up   NAME --state sqlite://urumi.db [--plan small]
//! cargo run -p urumi-core --example lifecycle -- down NAME --state sqlite://urumi.db
//! cargo run -p urumi-core --example lifecycle -- verify NAME --state sqlite://urumi.db
//! cargo run -p urumi-core --example lifecycle -- resize NAME --state sqlite://urumi.db --plan large
//! cargo run -p urumi-core --example lifecycle -- usage NAME --state sqlite://urumi.db
//! cargo run -p urumi-core --example lifecycle -- suspend NAME --state sqlite://urumi.db
//! cargo run -p urumi-core --example lifecycle -- resume NAME --state sqlite://urumi.db
//! cargo run -p urumi-core --example lifecycle -- upgrade NAME --state sqlite://urumi.db --chart woocommerce-store-0.3.0.tgz
//! ```
//! `up` creates the store if absent, follows it until Ready, prints it as JSON on stdout
//! and exits 0 (1 if it failed). `down` deletes it and waits until nothing remains.
//! `verify` places a cash-on-delivery test order on a Ready store through the Store API,
//! prints the report (each step, its time, the order id) and exits 0 if the store sells.
//! `resize` changes a Ready store's plan and follows it until Ready again (exit 1 if it
//! failed or was refused); `usage` prints what the store uses of its plan. `suspend` stops
//! a Ready store (no pod, no Ingress; volumes and credentials kept) and `resume` starts it
//! again; both follow it until Ready and print it. `upgrade` moves the store to the chart
//! of `--chart` (a packaged `woocommerce-store`, e.g. from `helm package`; without it, the
//! chart built in) and follows it until Ready (on the new chart, or rolled back).
//! Progress goes to stderr. The cluster comes from `$KUBECONFIG` (or in-cluster), `helm`
//! from `PATH`. Other flags: `--base-domain D`, `--lease-ttl SECS`, `--timeout SECS`,
//! `--concurrency N`, `--chart FILE.tgz` (the WooCommerce chart to bundle instead of the
//! built-in one), and for least privilege (charts/urumi's service account)
//! `--store-role CLUSTERROLE --service-account NAMESPACE/NAME`. With `URUMI_HELM_RESIDENT`
//! set (a path or a name on `PATH`), helm's work runs in that resident process
//! (`helmResident`).

use std::process::ExitCode;
use std::time::Duration;

use urumi_core::engine::{BundledChart, Engines, WooCommerce};
use urumi_core::orchestrator::StoreAccess;
use urumi_core::provisioner::CreateOptions;
use urumi_core::state::ChangeKind;
use urumi_core::store::{Status, TenantId};
use urumi_core::{
    Caller, CreateStore, ErrorKind, KubeProvisioner, Provisioner, ProvisionerSettings,
    RequestOptions,
};

struct Args {
    command: String,
    name: String,
    state: String,
    plan: Option<String>,
    base_domain: Option<String>,
    lease_ttl: Option<f64>,
    timeout: f64,
    concurrency: Option<usize>,
    store_role: Option<String>,
    service_account: Option<String>,
    chart: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let command = it.next().ok_or(
        "usage: lifecycle up|down|verify|resize|usage|suspend|resume|upgrade NAME --state URL",
    )?;
    const COMMANDS: [&str; 8] = [
        "up", "down", "verify", "resize", "usage", "suspend", "resume", "upgrade",
    ];
    if !COMMANDS.contains(&command.as_str()) {
        return Err(format!(
            "unknown command {command:?}; expected one of {}",
            COMMANDS.join(", ")
        ));
    }
    let name = it.next().ok_or("missing store NAME")?;
    let mut args = Args {
        command,
        name,
        state: "sqlite://urumi.db".to_owned(),
        plan: None,
        base_domain: None,
        lease_ttl: None,
        timeout: 900.0,
        concurrency: None,
        store_role: None,
        service_account: None,
        chart: None,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--state" => args.state = value()?,
            "--plan" => args.plan = Some(value()?),
            "--base-domain" => args.base_domain = Some(value()?),
            "--lease-ttl" => {
                args.lease_ttl = Some(value()?.parse().map_err(|e| format!("--lease-ttl: {e}"))?)
            }
            "--timeout" => {
                args.timeout = value()?.parse().map_err(|e| format!("--timeout: {e}"))?
            }
            "--concurrency" => {
                args.concurrency = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--concurrency: {e}"))?,
                )
            }
            "--store-role" => args.store_role = Some(value()?),
            "--service-account" => args.service_account = Some(value()?),
            "--chart" => args.chart = Some(value()?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// Waits until `name` is Ready and prints it as JSON: success, or failure (said on stderr).
async fn ready_and_printed(
    provisioner: &KubeProvisioner,
    caller: &Caller,
    name: &str,
    timeout: Duration,
) -> Result<ExitCode, String> {
    match provisioner.wait(caller, name, Status::Ready, timeout).await {
        Ok(store) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&store).map_err(|e| e.to_string())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("lifecycle: store {name} did not become Ready: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match run().await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("lifecycle: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<ExitCode, String> {
    let args = parse_args()?;
    let state = urumi_core::state::open(&args.state)
        .await
        .map_err(|e| e.to_string())?;
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("no cluster: {e} (set KUBECONFIG)"))?;
    let mut settings = ProvisionerSettings::default();
    if let Some(d) = args.base_domain {
        settings.base_domain = d;
    }
    if let Some(ttl) = args.lease_ttl {
        settings.orchestrator.lease_ttl = Duration::from_secs_f64(ttl);
    }
    if let Some(n) = args.concurrency {
        settings.orchestrator.concurrency = n;
    }
    settings.helm_resident = std::env::var("URUMI_HELM_RESIDENT")
        .ok()
        .filter(|s| !s.is_empty());
    match (args.store_role, args.service_account) {
        (Some(cluster_role), Some(sa)) => {
            let (ns, name) = sa
                .split_once('/')
                .ok_or("--service-account takes NAMESPACE/NAME")?;
            settings.store_access = Some(StoreAccess {
                cluster_role,
                service_account: name.to_owned(),
                service_account_namespace: ns.to_owned(),
            });
        }
        (None, None) => {}
        _ => return Err("--store-role and --service-account go together".to_owned()),
    }
    let mut builder = KubeProvisioner::builder(client, state).settings(settings);
    if let Some(path) = &args.chart {
        let bytes = std::fs::read(path).map_err(|e| format!("--chart {path}: {e}"))?;
        // Held for the life of the process, as a chart built in is.
        let chart = BundledChart::new("woocommerce-store", Box::leak(bytes.into_boxed_slice()));
        let mut engines = Engines::empty();
        engines.register(std::sync::Arc::new(WooCommerce::new().with_chart(chart)));
        builder = builder.engines(engines);
    }
    let provisioner = builder.build().map_err(|e| e.to_string())?;
    let caller = Caller::admin(
        "lifecycle-example",
        TenantId::new("default-tenant").map_err(|e| e.to_string())?,
    );
    let timeout = Duration::from_secs_f64(args.timeout);

    // Show progress as it happens.
    let mut changes = provisioner.changes(&caller, None);
    let name = args.name.clone();
    let progress = tokio::spawn(async move {
        use futures::StreamExt;
        while let Some(Ok(change)) = changes.next().await {
            let s = &change.store;
            if s.name.as_str() != name {
                continue;
            }
            match change.kind {
                ChangeKind::Deleted => eprintln!("[{}] deleted", s.name),
                _ => eprintln!(
                    "[{}] {} {}: {}",
                    s.name,
                    s.status,
                    s.step.as_str(),
                    s.message
                ),
            }
        }
    });

    let code = if args.command == "up" {
        let mut request = CreateStore::named(&args.name);
        request.plan = args.plan;
        match provisioner
            .create(&caller, request, CreateOptions::default())
            .await
        {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::StoreExists => {
                eprintln!("[{}] exists; following it", args.name)
            }
            Err(e) => return Err(format!("create refused ({}): {e}", e.kind())),
        }
        ready_and_printed(&provisioner, &caller, &args.name, timeout).await?
    } else if args.command == "resize" {
        let plan = args.plan.clone().ok_or("resize needs --plan")?;
        let change = urumi_core::UpdateStore::plan(plan);
        if let Err(e) = provisioner
            .update(&caller, &args.name, change, RequestOptions::default())
            .await
        {
            return Err(format!("resize refused ({}): {e}", e.kind()));
        }
        ready_and_printed(&provisioner, &caller, &args.name, timeout).await?
    } else if ["suspend", "resume", "upgrade"].contains(&args.command.as_str()) {
        let opts = RequestOptions::default();
        let asked = match args.command.as_str() {
            "suspend" => provisioner.suspend(&caller, &args.name, opts).await,
            "resume" => provisioner.resume(&caller, &args.name, opts).await,
            _ => provisioner.upgrade(&caller, &args.name, opts).await,
        };
        if let Err(e) = asked {
            return Err(format!("{} refused ({}): {e}", args.command, e.kind()));
        }
        ready_and_printed(&provisioner, &caller, &args.name, timeout).await?
    } else if args.command == "usage" {
        match provisioner.usage(&caller, &args.name).await {
            Ok(usage) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&usage).map_err(|e| e.to_string())?
                );
                ExitCode::SUCCESS
            }
            Err(e) => return Err(format!("usage refused ({}): {e}", e.kind())),
        }
    } else if args.command == "verify" {
        match provisioner.verify(&caller, &args.name).await {
            Ok(report) => {
                for step in &report.steps {
                    eprintln!(
                        "[{}] verify {:<10} {} {:>5} ms{}",
                        args.name,
                        step.name,
                        if step.ok { "ok    " } else { "FAILED" },
                        step.ms,
                        step.detail
                            .as_deref()
                            .map(|d| format!(" — {d}"))
                            .unwrap_or_default()
                    );
                }
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
                );
                if report.ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => return Err(format!("verify refused ({}): {e}", e.kind())),
        }
    } else {
        match provisioner
            .delete(&caller, &args.name, RequestOptions::default())
            .await
        {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(format!("delete refused ({}): {e}", e.kind())),
        }
        match provisioner.wait_deleted(&caller, &args.name, timeout).await {
            Ok(_) => {
                eprintln!("[{}] nothing remains", args.name);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("lifecycle: store {} was not deleted: {e}", args.name);
                ExitCode::FAILURE
            }
        }
    };
    provisioner.shutdown().await;
    progress.abort();
    Ok(code)
}
