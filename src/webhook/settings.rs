//! Webhook sender settings: `OTP_WEBHOOK_*`.
//!
//! `OTP_WEBHOOK_SECRET` may instead be read from the file named by
//! `OTP_WEBHOOK_SECRET_FILE`; it is held as a [`SecretString`] and never printed.

use std::net::IpAddr;
use std::time::Duration;

use secrecy::SecretString;

use crate::config::Env;

/// `OTP_SENDER=webhook`.
#[derive(Debug)]
pub struct WebhookConfig {
    /// `OTP_WEBHOOK_URL` (required): `https://...`; plain `http://` only to a loopback address.
    pub url: reqwest::Url,
    /// `OTP_WEBHOOK_SECRET` or `OTP_WEBHOOK_SECRET_FILE` (required, at least 16 bytes):
    /// the HMAC-SHA256 key the receiver shares.
    pub secret: SecretString,
    /// `OTP_WEBHOOK_CHANNEL`: the `channel` sent for phone credentials (default `sms`;
    /// e.g. `whatsapp`, `voice`). E-mail credentials are sent as `email`, others as `other`.
    pub channel: String,
    /// `OTP_WEBHOOK_TIMEOUT_SECONDS`: per attempt (default 5).
    pub timeout: Duration,
    /// `OTP_WEBHOOK_RETRIES`: further attempts after a transport error or a 5xx (default 2).
    pub retries: u32,
    /// `OTP_WEBHOOK_BACKOFF_MS`: wait before the first retry, doubled each time (default 200).
    pub backoff: Duration,
}

impl WebhookConfig {
    /// Reads the webhook settings (`OTP_SENDER` lists `webhook`); `None` after
    /// recording a problem when a required one is missing.
    pub fn read(env: &mut Env) -> Option<Self> {
        let url = webhook_url(env, "OTP_WEBHOOK_URL", "OTP_SENDER=webhook");
        let secret = env.secret("OTP_WEBHOOK_SECRET");
        let secret_ok = secret
            .as_ref()
            .is_some_and(|s| secrecy::ExposeSecret::expose_secret(s).len() >= 16);
        if !secret_ok {
            env.problem(
                "OTP_WEBHOOK_SECRET (or OTP_WEBHOOK_SECRET_FILE) is required with OTP_SENDER=webhook: \
                 at least 16 random bytes shared with the receiver, e.g. `openssl rand -hex 32`",
            );
        }
        let channel = env.get("OTP_WEBHOOK_CHANNEL").unwrap_or("sms").to_owned();
        let channel_ok = (1..=32).contains(&channel.len())
            && channel
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !channel_ok {
            env.fail(
                "OTP_WEBHOOK_CHANNEL",
                &channel,
                "expected a short lower-case name such as sms, whatsapp or voice",
            );
        }
        let timeout = env.seconds("OTP_WEBHOOK_TIMEOUT_SECONDS", 5, 1, 60);
        let retries = env.number("OTP_WEBHOOK_RETRIES", 2u32, 0, 5);
        let backoff =
            Duration::from_millis(env.number("OTP_WEBHOOK_BACKOFF_MS", 200u64, 0, 10_000));
        Some(WebhookConfig {
            url: url?,
            secret: secret.filter(|_| secret_ok)?,
            channel,
            timeout,
            retries,
            backoff,
        })
    }
}

/// A receiver's URL setting `name`, required by `needed_by`: `https://`, or plain
/// `http://` only to a loopback address; `None` after recording the problem.
pub(crate) fn webhook_url(env: &mut Env, name: &str, needed_by: &str) -> Option<reqwest::Url> {
    let raw = env.get(name).unwrap_or_default().to_owned();
    match reqwest::Url::parse(&raw) {
        Ok(url) if url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url)) => {
            Some(url)
        }
        _ => {
            env.fail(
                name,
                &raw,
                &format!(
                    "required with {needed_by}: an https:// URL (http:// only to a loopback address)"
                ),
            );
            None
        }
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
