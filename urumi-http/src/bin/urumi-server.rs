//! `urumi-server`: the HTTP API and dashboard over a [`KubeProvisioner`].
//!
//! ```text
//!  Flags + URUMI_* + TOML ─▶ Config ─check()─▶ (--print-config: print, exit 0)
//!     ─▶ KubeProvisioner::open(state, kubeconfig, settings)   (resumes every store not at rest)
//!     ─▶ bind ─▶ axum::serve(router)  + Metrics::follow (change feed)
//!                                     + (--operator) operator::Operator::run (Store objects)
//!  SIGTERM / SIGINT ─▶ stop accepting, end SSE streams ─▶ Provisioner::shutdown() ─▶ exit 0
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use urumi_core::operator::Operator;
use urumi_core::{KubeProvisioner, Provisioner};
use urumi_http::config::{Config, Flags, LogFormat, mask_url_password};
use urumi_http::{AppState, KeyRing, router};

fn init_logs(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let flags = Flags::parse();
    if flags.print_crd {
        print!("{}", urumi_core::operator::crd_yaml());
        return ExitCode::SUCCESS;
    }
    let config = match Config::load(&flags).and_then(|c| c.check().map(|_| c)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("urumi-server: {e}");
            return ExitCode::from(2);
        }
    };
    if flags.print_config {
        return match config.masked_toml() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("urumi-server: {e}");
                ExitCode::from(2)
            }
        };
    }
    init_logs(&config);
    let keys = match KeyRing::new(&config.api_keys) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("urumi-server: {e}");
            return ExitCode::from(2);
        }
    };
    let kube = match KubeProvisioner::open(
        &config.state,
        config.kubeconfig.as_deref(),
        config.provisioner.clone(),
    )
    .await
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("urumi-server: cannot start the provisioner: {e}");
            return ExitCode::from(1);
        }
    };
    let client = kube.client();
    let provisioner = Arc::new(kube) as Arc<dyn Provisioner>;
    let mut state = AppState::new(provisioner.clone(), keys);
    state.request_timeout = config.request_timeout();
    tokio::spawn(state.metrics.clone().follow(provisioner.clone()));
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("urumi-server: cannot listen on {}: {e}", config.listen);
            provisioner.shutdown().await;
            return ExitCode::from(1);
        }
    };
    let addr = listener.local_addr().unwrap_or(config.listen);
    tracing::info!(
        %addr,
        state = %mask_url_password(&config.state),
        keys = config.api_keys.len(),
        "urumi-server listening"
    );
    // Tests and scripts read this line to find the port of `--listen 127.0.0.1:0`.
    println!("listening on http://{addr}");
    let shutdown = state.shutdown.clone();
    let operator = config.operator.then(|| {
        let instance = std::env::var("HOSTNAME").unwrap_or_else(|_| "urumi-server".to_owned());
        let operator = Operator::new(provisioner.clone(), client, &instance);
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = operator.run(stop.clone()).await {
                // Without its CRD the operator cannot work: stop the whole server, loudly.
                tracing::error!(error = %e, "operator mode cannot start");
                eprintln!("urumi-server: {e}");
                stop.cancel();
                return false;
            }
            true
        })
    });
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown({
            let shutdown = shutdown.clone();
            async move {
                tokio::select! {
                    _ = signal() => {},
                    _ = shutdown.cancelled() => {},
                }
                tracing::info!("shutting down: no new requests, event streams closed");
                shutdown.cancel();
            }
        })
        .await;
    shutdown.cancel();
    tracing::info!("waiting for in-flight provisioning steps to reach a safe point");
    // Together: the provisioner's shutdown ends the operator's waits (a finalizer waiting
    // for a deletion), so the controller's graceful stop does not hold the exit.
    let (operator_ok, ()) = tokio::join!(
        async {
            match operator {
                Some(task) => task.await.unwrap_or(false),
                None => true,
            }
        },
        provisioner.shutdown()
    );
    match served {
        Ok(()) if !operator_ok => ExitCode::from(1),
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::from(1)
        }
    }
}
