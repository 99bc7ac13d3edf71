//! The webhook sender: a signed JSON POST for channels we do not speak natively
//! (SMS gateways, WhatsApp, voice, chat).
//!
//! # The request
//!
//! `POST <OTP_WEBHOOK_URL>` with `Content-Type: application/json` and the body
//!
//! ```json
//! {"channel":"sms","to":"+34600000012","code":"k3j9x0a2bq","expires":"2026-11-25T12:03:00.000Z","locale":"es-es"}
//! ```
//!
//! `channel` is `OTP_WEBHOOK_CHANNEL` (default `sms`) for phone credentials, `email`
//! for e-mail credentials and `other` for anything else (then `to` is the whole
//! credential text); `locale` is the client's first `Accept-Language` choice (`en`
//! when none). With magic links on, `link` carries the URL that finishes the same code;
//! with `OTP_PURPOSES`, `purpose` names what the code is for.
//!
//! # The signature
//!
//! Headers `X-OTP-Timestamp: <unix seconds>` and
//! `X-OTP-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
//! A receiver recomputes the HMAC over the exact bytes it received, compares in
//! constant time, and refuses a timestamp more than a few minutes from its clock
//! (a replayed request carries an old timestamp; the signature covers it).
//! Each retry is signed again with a fresh timestamp.
//!
//! # Outcomes
//!
//! 2xx → sent. 4xx (except 408 and 429) → the receiver refuses the recipient →
//! `Rejected` (`400 CREDENTIAL:INVALID`), no retry. Transport errors, timeouts, 408,
//! 429 and 5xx are retried `OTP_WEBHOOK_RETRIES` times with exponential backoff; if
//! the last attempt fails too → `Unavailable` (`503`). Redirects are not followed.

mod settings;

pub use settings::WebhookConfig;
pub(crate) use settings::webhook_url;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::Sha256;

use crate::clock::Clock;
use crate::error::BackendError;
use crate::plugin::credential::Contact;
use crate::plugin::sender::{Delivery, OtpMessage, Sender};

/// The timestamp header (unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-otp-timestamp";
/// The signature header (`v1=<hex>`).
pub const SIGNATURE_HEADER: &str = "x-otp-signature";

/// `v1=<hex HMAC-SHA256(secret, timestamp "." body)>`: the value of `X-OTP-Signature`.
pub fn webhook_signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error branch cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(3 + 2 * digest.len());
    out.push_str("v1=");
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[derive(Serialize)]
struct Payload<'a> {
    channel: &'a str,
    to: &'a str,
    code: &'a str,
    expires: String,
    locale: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose: Option<&'a str>,
}

/// The HTTP client of a signed webhook: `timeout` per attempt (and to connect),
/// no redirects followed, our user agent; `setting` names the URL setting in errors.
pub(crate) fn webhook_client(timeout: Duration, setting: &str) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("secure-otp-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("{setting}: cannot build the HTTP client: {e}"))
}

/// Posts each code to `OTP_WEBHOOK_URL`, signed (see the module docs).
#[derive(Debug)]
pub struct WebhookSender {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: SecretString,
    channel: String,
    retries: u32,
    backoff: Duration,
    clock: Arc<dyn Clock>,
}

enum Attempt {
    Done(Delivery),
    Retry(String),
}

impl WebhookSender {
    /// A sender for `config`; `clock` stamps the signatures.
    pub fn new(config: &WebhookConfig, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let client = webhook_client(config.timeout, "OTP_WEBHOOK_URL")?;
        Ok(Self {
            client,
            url: config.url.clone(),
            secret: SecretString::from(config.secret.expose_secret().to_owned()),
            channel: config.channel.clone(),
            retries: config.retries,
            backoff: config.backoff,
            clock,
        })
    }

    async fn attempt(&self, body: &[u8], masked: &str) -> Attempt {
        let timestamp = self.clock.now().as_secs().to_string();
        let signature = webhook_signature(self.secret.expose_secret().as_bytes(), &timestamp, body);
        let sent = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(SIGNATURE_HEADER, signature)
            .body(body.to_vec())
            .send()
            .await;
        let status = match sent {
            Ok(response) => response.status(),
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "transport failed"
                };
                return Attempt::Retry(what.to_owned());
            }
        };
        let code = status.as_u16();
        if status.is_success() {
            tracing::info!(credential = %masked, status = code, "webhook: code sent");
            return Attempt::Done(Delivery::Sent);
        }
        if status.is_client_error() && code != 408 && code != 429 {
            tracing::info!(credential = %masked, status = code, "webhook: the receiver refused the recipient");
            return Attempt::Done(Delivery::Rejected);
        }
        Attempt::Retry(format!("answered {code}"))
    }
}

#[async_trait]
impl Sender for WebhookSender {
    async fn send(&self, m: &OtpMessage<'_>) -> Result<Delivery, BackendError> {
        let masked = m.credential.masked();
        let contact = m.credential.contact();
        let (channel, to) = match &contact {
            Some(Contact::Phone(n)) => (self.channel.as_str(), n.as_str()),
            Some(Contact::Email(a)) => ("email", a.as_str()),
            None => ("other", m.credential.as_str()),
        };
        let body = serde_json::to_vec(&Payload {
            channel,
            to,
            code: m.code.expose(),
            expires: m.expires.to_iso8601(),
            locale: m.locale.preferred(),
            link: m.link,
            purpose: m.purpose,
        })
        .map_err(|e| BackendError::Internal(format!("webhook: cannot encode the body: {e}")))?;
        let mut wait = self.backoff;
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
            match self.attempt(&body, &masked).await {
                Attempt::Done(delivery) => return Ok(delivery),
                Attempt::Retry(why) => {
                    tracing::warn!(credential = %masked, attempt = attempt + 1, "webhook: {why}");
                    last = why;
                }
            }
        }
        Err(BackendError::Unavailable(format!(
            "webhook: {last} after {} attempts, sending to {masked}",
            self.retries + 1
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Known answer computed independently (Python `hmac`, SHA-256).
        assert_eq!(
            webhook_signature(b"Jefe", "1700000000", br#"{"a":1}"#),
            "v1=fa5f6481efc59da48b19c9dc10196c9953e5651f8304b3a318b6b87d70272e0a"
        );
        assert_ne!(
            webhook_signature(b"Jefe", "1700000001", br#"{"a":1}"#),
            webhook_signature(b"Jefe", "1700000000", br#"{"a":1}"#)
        );
    }
}
