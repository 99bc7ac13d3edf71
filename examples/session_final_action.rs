//! A final action of your own: log the user in with a signed session cookie.
//!
//! It builds the session from what verification proved ([`Verified::address`] and
//! its channel), never from other fields of a `json` credential, which the client
//! wrote and nobody checked. The token is `base64url(address|expiry).base64url(HMAC)`
//! under `SESSION_SECRET` (or `SESSION_SECRET_FILE`, at least 32 bytes). Run it with
//! `SESSION_SECRET=$(openssl rand -hex 32) cargo run --example session_final_action`.
//!
//! (The stock server can issue Ed25519-signed JWT sessions itself; this shows how a
//! fork plugs in its own.)

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use secure_otp_server::config::Env;
use secure_otp_server::error::BackendError;
use secure_otp_server::plugin::{FinalAction, Verified};
use secure_otp_server::{AppState, Clock, Config, Plugins, SystemClock, router};
use sha2::Sha256;

/// How long a session lasts.
const SESSION_LIFETIME: Duration = Duration::from_secs(86_400);

/// Answers `200 {"signedInAs": ..., "channel": ...}` with a `session` cookie.
#[derive(Debug)]
struct IssueSession {
    secret: SecretString,
    secure: bool,
}

impl IssueSession {
    fn token(&self, address: &str, expires: i64) -> Result<String, BackendError> {
        let payload = URL_SAFE_NO_PAD.encode(format!("{address}|{expires}"));
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.expose_secret().as_bytes())
            .map_err(|_| BackendError::Internal("session key".into()))?;
        mac.update(payload.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Ok(format!("{payload}.{tag}"))
    }
}

#[async_trait]
impl FinalAction for IssueSession {
    async fn run(&self, verified: Verified) -> Result<Response, BackendError> {
        let expires = SystemClock.now().plus(SESSION_LIFETIME).as_secs();
        let token = self.token(&verified.address, expires)?;
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie = format!(
            "session={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            SESSION_LIFETIME.as_secs()
        );
        let mut res = Json(serde_json::json!({
            "signedInAs": verified.address,
            "channel": verified.channel.as_str(),
        }))
        .into_response();
        let cookie = HeaderValue::from_str(&cookie)
            .map_err(|_| BackendError::Internal("session cookie".into()))?;
        res.headers_mut().append(header::SET_COOKIE, cookie);
        Ok(res)
    }
}

fn read_secret(env: &mut Env, _: &Config) -> Option<SecretString> {
    let secret = env.secret("SESSION_SECRET");
    if secret.as_ref().is_none_or(|s| s.expose_secret().len() < 32) {
        env.problem(
            "SESSION_SECRET (or SESSION_SECRET_FILE) is required: at least 32 random bytes, \
             e.g. `openssl rand -hex 32`",
        );
    }
    secret
}

#[tokio::main]
async fn main() -> ExitCode {
    let (config, secret) = match Config::read(Env::from_process(), read_secret) {
        Ok((config, Some(secret))) => (config, secret),
        Ok((_, None)) => return ExitCode::from(2),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut plugins = match Plugins::from_config(&config, &clock) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    plugins.final_action = Arc::new(IssueSession {
        secret,
        secure: config.server.is_production(),
    });
    let app = router::<()>(AppState::new(&config, plugins, clock));
    let Ok(listener) =
        tokio::net::TcpListener::bind((config.server.host, config.server.port)).await
    else {
        return ExitCode::from(1);
    };
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}
