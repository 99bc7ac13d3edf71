//! The server binary: configuration, telemetry, plug-ins, serve until a signal.

mod custom;

use std::process::ExitCode;
use std::sync::Arc;

use secure_otp_server::config::Env;
use secure_otp_server::{AppState, Clock, Config, SystemClock, router};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
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
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let plugins = match custom::plugins(&config, &settings, &clock) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("secure-otp-server: {e}");
            return ExitCode::from(2);
        }
    };
    let app = router::<()>(AppState::new(&config, plugins, clock));
    let listener =
        match tokio::net::TcpListener::bind((config.server.host, config.server.port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "secure-otp-server: cannot listen on {}:{}: {e}",
                    config.server.host, config.server.port
                );
                return ExitCode::from(1);
            }
        };
    match listener.local_addr() {
        Ok(addr) => tracing::info!(
            environment = ?config.server.environment,
            cookie = %config.cookie_name(),
            plugins = %config.describe(),
            "listening on http://{addr}"
        ),
        Err(e) => tracing::warn!(error = %e, "listening on an unknown address"),
    }
    if let Err(e) = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    {
        eprintln!("secure-otp-server: {e}");
        return ExitCode::from(1);
    }
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
