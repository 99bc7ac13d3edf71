//! The server binary: configuration, telemetry, plug-ins, serve until a signal.

#![forbid(unsafe_code)]

mod cli;
mod custom;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use cli::{Cli, Command};
use secure_otp_server::config::Env;
use secure_otp_server::http::serve::{ServeOptions, raise_open_file_limit, serve};
use secure_otp_server::telemetry::batched;
use secure_otp_server::telemetry::exporter::Exporter;
use secure_otp_server::{AppState, Clock, Config, SystemClock, router};

/// mimalloc instead of the C library's malloc: a request makes some seventy small
/// allocations, and glibc's malloc and free were a tenth of its instructions.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Workers gather their log lines and hand them to the log writer thread when
    // they run out of work (telemetry::batched, telemetry::background); the
    // runtime's end hands over what they still hold.
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    batched::runtime_hooks(builder.enable_all());
    match builder.build() {
        Ok(runtime) => {
            let code = runtime.block_on(start());
            // The workers hand their last lines to the log writer as they stop;
            // then it writes everything out.
            drop(runtime);
            secure_otp_server::telemetry::logging::finish();
            code
        }
        Err(e) => {
            eprintln!("secure-otp-server: cannot start the async runtime: {e}");
            ExitCode::from(1)
        }
    }
}

async fn start() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version land here too, and exit 0.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        None | Some(Command::Serve) => run().await,
        Some(Command::CheckConfig) => check_config(),
        Some(Command::Keygen { format }) => cli::keygen(format),
        Some(Command::Healthcheck { url }) => cli::healthcheck(url).await,
    }
}

/// `check-config`: reads the configuration and builds the plug-ins as serving
/// would, without listening.
fn check_config() -> ExitCode {
    let (config, settings) = match Config::read(Env::from_process(), custom::read_settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("secure-otp-server: {e}");
            return ExitCode::from(2);
        }
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    if let Err(e) = custom::plugins(&config, &settings, &clock) {
        eprintln!("secure-otp-server: {e}");
        return ExitCode::from(2);
    }
    println!("configuration OK ({:?})", config.server.environment);
    println!("listen: {}:{}", config.server.host, config.server.port);
    println!("cookie: {}", config.cookie_name());
    match config.server.metrics_addr {
        Some(addr) => println!("metrics: http://{addr}/metrics"),
        None => println!("metrics: off (METRICS_ADDR unset)"),
    }
    println!("plugins: {}", config.describe());
    for warning in config.warnings() {
        println!("warning: {warning}");
    }
    ExitCode::SUCCESS
}

/// Serves until a shutdown signal.
async fn run() -> ExitCode {
    let (config, settings) = match Config::read(Env::from_process(), custom::read_settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("secure-otp-server: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = secure_otp_server::telemetry::logging::init(config.server.log_format) {
        eprintln!("secure-otp-server: cannot start the log writer thread: {e}");
        return ExitCode::from(1);
    }
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
    let server = &config.server;
    let ids = Arc::clone(&plugins.ids);
    let app = router::<()>(AppState::new(&config, plugins, clock));
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
    if let Some(addr) = server.metrics_addr
        && let Err(code) = serve_metrics(addr, ids).await
    {
        return code;
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

/// Installs the Prometheus recorder and serves `GET /metrics` on `addr` until the
/// process ends.
async fn serve_metrics(
    addr: std::net::SocketAddr,
    ids: Arc<dyn secure_otp_server::plugin::IdStore>,
) -> Result<(), ExitCode> {
    let exporter = Exporter::install(ids).map_err(|e| {
        eprintln!("secure-otp-server: {e}");
        ExitCode::from(1)
    })?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        eprintln!("secure-otp-server: cannot listen on METRICS_ADDR {addr}: {e}");
        ExitCode::from(1)
    })?;
    match listener.local_addr() {
        Ok(bound) => tracing::info!("metrics on http://{bound}/metrics"),
        Err(e) => tracing::warn!(error = %e, "metrics on an unknown address"),
    }
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, exporter.router()).await {
            tracing::warn!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(())
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
