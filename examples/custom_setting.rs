//! A fork's own setting, read and reported like the library's.
//!
//! `GREETING_PRODUCT` is read through the library's [`Env`] after the built-in
//! settings, so `GREETING_PRODUCT=` with a bad value is reported at start-up in the
//! same list as, say, a bad `OTP_MAX_AGE`. Run it with
//! `GREETING_PRODUCT="Acme" cargo run --example custom_setting`.

use std::process::ExitCode;
use std::sync::Arc;

use secure_otp_server::config::Env;
use secure_otp_server::{AppState, Clock, Config, Plugins, SystemClock, router};

/// This fork's settings.
#[derive(Debug)]
struct Settings {
    /// `GREETING_PRODUCT`: a product name of at most 40 characters (default `Acme`).
    product: String,
    /// `GREETING_API_KEY` or `GREETING_API_KEY_FILE`: a secret, never printed.
    api_key: Option<secrecy::SecretString>,
}

fn read_settings(env: &mut Env, config: &Config) -> Settings {
    let product = env.string("GREETING_PRODUCT", "Acme");
    if product.chars().count() > 40 {
        env.fail(
            "GREETING_PRODUCT",
            &product,
            "expected at most 40 characters",
        );
    }
    let api_key = env.secret("GREETING_API_KEY");
    if config.server.is_production() && api_key.is_none() {
        env.problem("GREETING_API_KEY (or GREETING_API_KEY_FILE) is required in production");
    }
    Settings { product, api_key }
}

#[tokio::main]
async fn main() -> ExitCode {
    let (config, settings) = match Config::read(Env::from_process(), read_settings) {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "product {:?}, API key {}",
        settings.product,
        if settings.api_key.is_some() {
            "set"
        } else {
            "unset"
        }
    );
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let plugins = match Plugins::from_config(&config, &clock) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let app = router::<()>(AppState::new(&config, plugins, clock));
    let Ok(listener) =
        tokio::net::TcpListener::bind((config.server.host, config.server.port)).await
    else {
        eprintln!(
            "cannot listen on {}:{}",
            config.server.host, config.server.port
        );
        return ExitCode::from(1);
    };
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
