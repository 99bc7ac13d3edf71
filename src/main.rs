//! The server binary: configuration, telemetry, plug-ins, serve until a signal.

mod custom;

use std::process::ExitCode;
use std::sync::Arc;

use secure_otp_server::config::Env;
use secure_otp_server::http::serve::{ServeOptions, raise_open_file_limit, serve};
use secure_otp_server::{AppState, Clock, Config, SystemClock, router};
use tracing_subscriber::EnvFilter;

const HELP: &str = "\
secure-otp-server: one-time-password HTTP service with stateless, envelope-encrypted cookie sessions

Usage: secure-otp-server [--help | --version]

Without arguments it serves the API on HOST:PORT (default 127.0.0.1:3000) until
SIGTERM or Ctrl-C. Every setting comes from the environment; see sample.env and
the README's Configuration section. ENVIRONMENT=production for real deployments.";

#[tokio::main]
async fn main() -> ExitCode {
    match std::env::args_os().nth(1).as_ref().and_then(|a| a.to_str()) {
        None => {}
        Some("-h" | "--help" | "help") => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version" | "version") => {
            println!("secure-otp-server {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("secure-otp-server: unknown argument {other:?} (try --help)");
            return ExitCode::from(2);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let (config, settings) = match Config::read(Env::from_process(), custom::read_settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("secure-otp-server: {e}");
            return ExitCode::from(2);
        }
    };
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let plugins = match custom::plugins(&config, &settings, &clock) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("secure-otp-server: {e}");
            return ExitCode::from(2);
        }
    };
    match raise_open_file_limit() {
        Ok(limit) => tracing::info!(open_files = limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    let app = router::<()>(AppState::new(&config, plugins, clock));
    let server = &config.server;
    let listener = match tokio::net::TcpListener::bind((server.host, server.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "secure-otp-server: cannot listen on {}:{}: {e}",
                server.host, server.port
            );
            return ExitCode::from(1);
        }
    };
    match listener.local_addr() {
        Ok(addr) => tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            environment = ?server.environment,
            cookie = %config.cookie_name(),
            plugins = %config.describe(),
            "listening on http://{addr}"
        ),
        Err(e) => tracing::warn!(error = %e, "listening on an unknown address"),
    }
    let options = ServeOptions {
        header_timeout: server.header_timeout,
        max_connections: server.max_connections,
        http2: server.http2,
        shutdown_grace: server.shutdown_grace,
    };
    serve(listener, app, options, shutdown_signal()).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
