//! The library inside your own axum app: the OTP API nested under `/auth`, next to
//! your routes. Run it with `cargo run --example embed`, then
//! `curl -X POST localhost:3000/auth/api/otp/create -d 'email=ann@example.com'`.

use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use secure_otp_server::{AppState, Clock, Config, Plugins, SystemClock, router};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let plugins = match Plugins::from_config(&config, &clock) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let otp = router(AppState::new(&config, plugins, clock));
    let app = Router::new()
        .route("/", get(|| async { "my app" }))
        .nest("/auth", otp);
    let Ok(listener) =
        tokio::net::TcpListener::bind((config.server.host, config.server.port)).await
    else {
        return ExitCode::from(1);
    };
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}
