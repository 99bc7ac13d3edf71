//! `OTP_FINAL_ACTION=webhook`: tell the app's backend who verified, and relay its
//! answer to the client (so the backend can mint its own session).
//!
//! `POST <OTP_VERIFIED_WEBHOOK_URL>`, signed exactly like the sender webhook
//! (`X-OTP-Timestamp`, `X-OTP-Signature: v1=<hex HMAC-SHA256>`), with
//! `{"address","channel","purpose","verifiedAt","requestId"}`. A 2xx JSON answer
//! becomes the verify answer (status and body); anything else answers `503`, and
//! the code stays used. One attempt: a retry could apply a sign-in twice.

use std::time::Duration;

use async_trait::async_trait;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::config::Env;
use crate::error::BackendError;
use crate::plugin::{FinalAction, Verified};
use crate::webhook::{
    SIGNATURE_HEADER, TIMESTAMP_HEADER, webhook_client, webhook_signature, webhook_url,
};

/// Largest answer relayed to the client.
const MAX_ANSWER: usize = 64 * 1024;

/// `OTP_VERIFIED_WEBHOOK_*`.
#[derive(Debug)]
pub struct VerifiedWebhookConfig {
    /// `OTP_VERIFIED_WEBHOOK_URL` (required): `https://`, `http://` only to loopback.
    pub url: reqwest::Url,
    /// `OTP_VERIFIED_WEBHOOK_SECRET` (or `_FILE`; default: `OTP_WEBHOOK_SECRET`),
    /// at least 16 bytes.
    pub secret: SecretString,
    /// `OTP_VERIFIED_WEBHOOK_TIMEOUT_SECONDS` (default 5).
    pub timeout: Duration,
}

impl VerifiedWebhookConfig {
    /// Reads the settings; `None` after recording what is missing.
    pub fn read(env: &mut Env) -> Option<Self> {
        let url = webhook_url(env, "OTP_VERIFIED_WEBHOOK_URL", "OTP_FINAL_ACTION=webhook");
        let secret = env
            .secret("OTP_VERIFIED_WEBHOOK_SECRET")
            .or_else(|| env.secret("OTP_WEBHOOK_SECRET"))
            .filter(|s| s.expose_secret().len() >= 16);
        if secret.is_none() {
            env.problem(
                "OTP_VERIFIED_WEBHOOK_SECRET (or _FILE, or OTP_WEBHOOK_SECRET) is required with \
                 OTP_FINAL_ACTION=webhook: at least 16 random bytes shared with the receiver",
            );
        }
        let timeout = env.seconds("OTP_VERIFIED_WEBHOOK_TIMEOUT_SECONDS", 5, 1, 60);
        Some(Self {
            url: url?,
            secret: secret?,
            timeout,
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    address: &'a str,
    channel: &'a str,
    purpose: Option<&'a str>,
    verified_at: String,
    request_id: Option<&'a str>,
}

/// Posts each verification to the app's backend and relays its answer.
#[derive(Debug)]
pub struct VerifiedWebhook {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: SecretString,
}

impl VerifiedWebhook {
    /// A final action for `config`.
    pub fn new(config: &VerifiedWebhookConfig) -> Result<Self, String> {
        let client = webhook_client(config.timeout, "OTP_VERIFIED_WEBHOOK_URL")?;
        Ok(Self {
            client,
            url: config.url.clone(),
            secret: SecretString::from(config.secret.expose_secret().to_owned()),
        })
    }
}

#[async_trait]
impl FinalAction for VerifiedWebhook {
    async fn run(&self, verified: Verified) -> Result<Response, BackendError> {
        let unavailable = |why: &str| BackendError::Unavailable(format!("verified webhook: {why}"));
        let body = serde_json::to_vec(&Payload {
            address: &verified.address,
            channel: verified.channel.as_str(),
            purpose: verified.purpose.as_deref(),
            verified_at: verified.verified_at.to_iso8601(),
            request_id: verified.request_id.as_deref(),
        })
        .map_err(|e| BackendError::Internal(format!("verified webhook: {e}")))?;
        let timestamp = verified.verified_at.as_secs().to_string();
        let signature =
            webhook_signature(self.secret.expose_secret().as_bytes(), &timestamp, &body);
        let mut answer = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                unavailable(if e.is_timeout() {
                    "timed out"
                } else {
                    "unreachable"
                })
            })?;
        let status = answer.status();
        if !status.is_success() {
            return Err(unavailable(&format!("answered {}", status.as_u16())));
        }
        let mut relayed = Vec::new();
        while let Some(chunk) = answer
            .chunk()
            .await
            .map_err(|_| unavailable("the answer broke off"))?
        {
            if relayed.len() + chunk.len() > MAX_ANSWER {
                return Err(unavailable("the answer is over 64 KiB"));
            }
            relayed.extend_from_slice(&chunk);
        }
        if serde_json::from_slice::<serde::de::IgnoredAny>(&relayed).is_err() {
            return Err(unavailable("the answer is not JSON"));
        }
        let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::OK);
        let mut response = (status, relayed).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(response)
    }
}
