//! A sender of your own: phone numbers through an SMS gateway's HTTP API, e-mail
//! still through the configured default (SMTP, or the log sender in development).
//!
//! Settings: `SMS_GATEWAY_URL` (required) and `SMS_API_KEY` or `SMS_API_KEY_FILE`
//! (required). Run it with `OTP_CREDENTIAL=email_or_phone SMS_GATEWAY_URL=...
//! SMS_API_KEY=... cargo run --example sms_gateway`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use secure_otp_server::config::Env;
use secure_otp_server::error::BackendError;
use secure_otp_server::plugin::{Contact, Delivery, OtpMessage, RoutingSender, Sender};
use secure_otp_server::{AppState, Clock, Config, Plugins, SystemClock, router};

/// Posts `{"to": "+34...", "text": "..."}` with a bearer key.
#[derive(Debug)]
struct SmsGateway {
    url: reqwest::Url,
    key: SecretString,
    client: reqwest::Client,
}

#[async_trait]
impl Sender for SmsGateway {
    async fn send(&self, m: &OtpMessage<'_>) -> Result<Delivery, BackendError> {
        let Some(Contact::Phone(number)) = m.credential.contact() else {
            return Ok(Delivery::Rejected);
        };
        let minutes = m.valid_for.as_secs().div_ceil(60).max(1);
        let text = format!("Your code is {} (valid {minutes} min)", m.code.expose());
        let res = self
            .client
            .post(self.url.clone())
            .bearer_auth(self.key.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::json!({ "to": number, "text": text }).to_string())
            .send()
            .await
            // Never put the request (it holds the code) in the error.
            .map_err(|e| BackendError::Unavailable(format!("sms gateway: {}", e.without_url())))?;
        match res.status() {
            s if s.is_success() => Ok(Delivery::Sent),
            s if s.is_client_error() => Ok(Delivery::Rejected),
            s => Err(BackendError::Unavailable(format!(
                "sms gateway answered {s}"
            ))),
        }
    }
}

/// This fork's settings.
#[derive(Debug)]
struct Settings {
    gateway: Option<(reqwest::Url, SecretString)>,
}

fn read_settings(env: &mut Env, _: &Config) -> Settings {
    let raw = env.string("SMS_GATEWAY_URL", "");
    let url = match reqwest::Url::parse(&raw) {
        Ok(url) if url.scheme() == "https" || url.scheme() == "http" => Some(url),
        _ => {
            env.fail(
                "SMS_GATEWAY_URL",
                &raw,
                "expected the gateway's https:// URL",
            );
            None
        }
    };
    let key = env.secret("SMS_API_KEY");
    if key.is_none() {
        env.problem("SMS_API_KEY (or SMS_API_KEY_FILE) is required: the gateway's API key");
    }
    Settings {
        gateway: url.zip(key),
    }
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
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut plugins = match Plugins::from_config(&config, &clock) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Some((url, key)) = settings.gateway else {
        return ExitCode::from(2);
    };
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    // Phone numbers to the gateway; everything else to the configured default.
    plugins.sender = Arc::new(RoutingSender {
        email: None,
        phone: Some(Arc::new(SmsGateway { url, key, client })),
        other: Arc::clone(&plugins.sender),
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
