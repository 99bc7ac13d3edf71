//! Sender settings: `OTP_SENDER`, `OTP_PRODUCT_NAME`, `OTP_TEMPLATE_DIR`, `SMTP_*`
//! and `OTP_WEBHOOK_*`.
//!
//! Routing: `OTP_SENDER` names one sender or a comma-separated list. With a list,
//! e-mail credentials go to `smtp`, phone credentials go to `webhook`, and anything
//! else (or a kind whose sender is not listed) goes to the first one listed.
//!
//! Secrets (`SMTP_PASSWORD`, `OTP_WEBHOOK_SECRET`) may instead be read from the file
//! named by the same variable with `_FILE` appended (one trailing newline dropped);
//! they are held as [`SecretString`] and never printed.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::{Parser, SenderKind};

/// Settings shared by the senders, and each sender's own.
#[derive(Debug)]
pub struct DeliveryConfig {
    /// `OTP_PRODUCT_NAME`: shown in messages (default `secure-otp-server`).
    pub product_name: String,
    /// `OTP_TEMPLATE_DIR`: a folder of `<language>/{subject.txt,body.txt,body.html}`
    /// overriding the built-in English and Spanish templates.
    pub template_dir: Option<PathBuf>,
    /// The SMTP settings, when `OTP_SENDER` lists `smtp`.
    pub smtp: Option<SmtpConfig>,
    /// The webhook settings, when `OTP_SENDER` lists `webhook`.
    pub webhook: Option<WebhookConfig>,
}

/// How the SMTP connection is protected (`SMTP_TLS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `none`: plain text (a relay on the same host only). Default port 25.
    None,
    /// `starttls` (default): plain connection upgraded with STARTTLS, which is required.
    /// Default port 587.
    StartTls,
    /// `tls`: implicit TLS from the first byte ("SMTPS"). Default port 465.
    Tls,
}

/// `OTP_SENDER=smtp`.
#[derive(Debug)]
pub struct SmtpConfig {
    /// `SMTP_HOST` (required): the server's name, also checked against its certificate.
    pub host: String,
    /// `SMTP_PORT`: default by [`SmtpTls`] (587, 465 or 25).
    pub port: u16,
    /// `SMTP_TLS`: `starttls` (default), `tls` or `none`.
    pub tls: SmtpTls,
    /// `SMTP_USERNAME`: log in with this name (and the password).
    pub username: Option<String>,
    /// `SMTP_PASSWORD` or `SMTP_PASSWORD_FILE`.
    pub password: Option<SecretString>,
    /// `SMTP_FROM` (required): `Name <address>` or `address`.
    pub from: String,
    /// `SMTP_TIMEOUT_SECONDS`: for connecting and for each command (default 10).
    pub timeout: Duration,
    /// `SMTP_POOL_SIZE`: connections kept open at most (default 10).
    pub pool_size: u32,
    /// `SMTP_CA_FILE`: PEM certificate(s) trusted in addition to the public roots
    /// (a private CA or a self-signed server).
    pub ca_file: Option<PathBuf>,
}

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

impl Parser<'_> {
    /// `OTP_SENDER`: one name or a comma-separated list, no repeats.
    pub(super) fn senders(&mut self) -> Vec<SenderKind> {
        let Some(raw) = self.get("OTP_SENDER").map(str::to_owned) else {
            return vec![SenderKind::Log];
        };
        let mut out = Vec::new();
        for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let kind = match name.to_ascii_lowercase().as_str() {
                "log" => SenderKind::Log,
                "smtp" => SenderKind::Smtp,
                "webhook" => SenderKind::Webhook,
                _ => {
                    self.fail(
                        "OTP_SENDER",
                        &raw,
                        "expected log, smtp, webhook, or a comma-separated list such as smtp,webhook",
                    );
                    return vec![SenderKind::Log];
                }
            };
            if !out.contains(&kind) {
                out.push(kind);
            }
        }
        if out.is_empty() {
            out.push(SenderKind::Log);
        }
        out
    }

    pub(super) fn delivery(&mut self, senders: &[SenderKind]) -> DeliveryConfig {
        let product_name = self
            .get("OTP_PRODUCT_NAME")
            .unwrap_or("secure-otp-server")
            .to_owned();
        if product_name.chars().count() > 100 || product_name.chars().any(char::is_control) {
            self.fail(
                "OTP_PRODUCT_NAME",
                &product_name,
                "expected one line of at most 100 characters",
            );
        }
        let template_dir = self.get("OTP_TEMPLATE_DIR").map(PathBuf::from);
        if let Some(dir) = &template_dir
            && !dir.is_dir()
        {
            let shown = dir.display().to_string();
            self.fail(
                "OTP_TEMPLATE_DIR",
                &shown,
                "expected a folder holding <language>/subject.txt, body.txt, body.html",
            );
        }
        DeliveryConfig {
            product_name,
            template_dir,
            smtp: senders.contains(&SenderKind::Smtp).then(|| self.smtp()),
            webhook: senders
                .contains(&SenderKind::Webhook)
                .then(|| self.webhook())
                .flatten(),
        }
    }

    /// `NAME`: the path of a readable PEM certificate file (a private CA), if set.
    pub(super) fn pem_file(&mut self, name: &str) -> Option<PathBuf> {
        let path = PathBuf::from(self.get(name)?);
        let readable = std::fs::read_to_string(&path)
            .is_ok_and(|pem| pem.contains("-----BEGIN CERTIFICATE-----"));
        if !readable {
            let shown = path.display().to_string();
            self.fail(name, &shown, "expected a readable PEM certificate file");
        }
        Some(path)
    }

    /// `NAME` or the contents of the file `NAME_FILE`; not both.
    pub(super) fn secret(&mut self, name: &str) -> Option<SecretString> {
        let file_var = format!("{name}_FILE");
        let direct = self.get(name).map(str::to_owned);
        let file = self.get(&file_var).map(str::to_owned);
        match (direct, file) {
            (Some(_), Some(_)) => {
                self.errors.push(format!(
                    "{name} and {file_var} are both set: keep one (the value is not shown: it is secret)"
                ));
                None
            }
            (Some(v), None) => Some(SecretString::from(v)),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let text = text.strip_suffix('\n').unwrap_or(&text);
                    let text = text.strip_suffix('\r').unwrap_or(text);
                    Some(SecretString::from(text.to_owned()))
                }
                Err(e) => {
                    self.fail(&file_var, &path, &format!("cannot read the file: {e}"));
                    None
                }
            },
            (None, None) => None,
        }
    }

    fn smtp(&mut self) -> SmtpConfig {
        let host = self.get("SMTP_HOST").unwrap_or_default().to_owned();
        if host.is_empty() {
            self.errors.push(
                "SMTP_HOST is required with OTP_SENDER=smtp: the SMTP server's name, e.g. smtp.example.com"
                    .into(),
            );
        } else if host.contains(|c: char| c.is_whitespace() || c == '/' || c == ':')
            && host.parse::<IpAddr>().is_err()
        {
            self.fail(
                "SMTP_HOST",
                &host,
                "expected a host name or an IP address, no scheme or port",
            );
        }
        let tls = self.choice(
            "SMTP_TLS",
            SmtpTls::StartTls,
            &[
                ("starttls", SmtpTls::StartTls),
                ("tls", SmtpTls::Tls),
                ("none", SmtpTls::None),
            ],
        );
        let default_port = match tls {
            SmtpTls::None => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
        };
        let port = self.number("SMTP_PORT", default_port, 1, u16::MAX);
        let username = self.get("SMTP_USERNAME").map(str::to_owned);
        let password = self.secret("SMTP_PASSWORD");
        if username.is_some() != password.is_some() {
            self.errors.push(
                "SMTP_USERNAME and SMTP_PASSWORD (or SMTP_PASSWORD_FILE) go together: set both or neither"
                    .into(),
            );
        }
        let from = self.get("SMTP_FROM").unwrap_or_default().to_owned();
        if from.parse::<lettre::message::Mailbox>().is_err() {
            self.fail(
                "SMTP_FROM",
                &from,
                "expected the sender address, e.g. no-reply@example.com or \"Example <no-reply@example.com>\"",
            );
        }
        let ca_file = self.pem_file("SMTP_CA_FILE");
        SmtpConfig {
            host,
            port,
            tls,
            username,
            password,
            from,
            timeout: self.seconds("SMTP_TIMEOUT_SECONDS", 10, 1, 300),
            pool_size: self.number("SMTP_POOL_SIZE", 10u32, 1, 100),
            ca_file,
        }
    }

    fn webhook(&mut self) -> Option<WebhookConfig> {
        let raw = self.get("OTP_WEBHOOK_URL").unwrap_or_default().to_owned();
        let url = match reqwest::Url::parse(&raw) {
            Ok(url) if url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url)) => {
                Some(url)
            }
            _ => {
                self.fail(
                    "OTP_WEBHOOK_URL",
                    &raw,
                    "required with OTP_SENDER=webhook: an https:// URL (http:// only to a loopback address)",
                );
                None
            }
        };
        let secret = self.secret("OTP_WEBHOOK_SECRET");
        let secret_ok = secret
            .as_ref()
            .is_some_and(|s| secrecy::ExposeSecret::expose_secret(s).len() >= 16);
        if !secret_ok {
            self.errors.push(
                "OTP_WEBHOOK_SECRET (or OTP_WEBHOOK_SECRET_FILE) is required with OTP_SENDER=webhook: \
                 at least 16 random bytes shared with the receiver, e.g. `openssl rand -hex 32`"
                    .into(),
            );
        }
        let channel = self.get("OTP_WEBHOOK_CHANNEL").unwrap_or("sms").to_owned();
        let channel_ok = (1..=32).contains(&channel.len())
            && channel
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !channel_ok {
            self.fail(
                "OTP_WEBHOOK_CHANNEL",
                &channel,
                "expected a short lower-case name such as sms, whatsapp or voice",
            );
        }
        let timeout = self.seconds("OTP_WEBHOOK_TIMEOUT_SECONDS", 5, 1, 60);
        let retries = self.number("OTP_WEBHOOK_RETRIES", 2u32, 0, 5);
        let backoff =
            Duration::from_millis(self.number("OTP_WEBHOOK_BACKOFF_MS", 200u64, 0, 10_000));
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

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, Environment, SenderKind, SmtpTls};

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(vars.iter().map(|(k, v)| (*k, *v)))
    }

    #[test]
    fn smtp_settings_are_read_with_defaults_by_tls_mode() {
        let c = load(&[
            ("OTP_SENDER", "smtp"),
            ("SMTP_HOST", "smtp.example.com"),
            ("SMTP_FROM", "Acme <no-reply@example.com>"),
            ("SMTP_TLS", "tls"),
        ])
        .expect("valid");
        let smtp = c.delivery.smtp.expect("smtp settings");
        assert_eq!((smtp.tls, smtp.port), (SmtpTls::Tls, 465));
        assert_eq!(c.senders, [SenderKind::Smtp]);
    }

    #[test]
    fn missing_smtp_and_webhook_settings_are_reported_by_name() {
        let e = load(&[
            ("OTP_SENDER", "smtp,webhook"),
            ("SMTP_USERNAME", "ann"),
            ("OTP_WEBHOOK_URL", "http://sms.example.com/hook"),
            ("OTP_WEBHOOK_SECRET", "short"),
        ])
        .expect_err("incomplete");
        let text = e.to_string();
        for name in [
            "SMTP_HOST",
            "SMTP_FROM",
            "SMTP_PASSWORD",
            "OTP_WEBHOOK_URL",
            "OTP_WEBHOOK_SECRET",
        ] {
            assert!(text.contains(name), "{name} missing in {text}");
        }
        assert!(!text.contains("short"), "a secret was printed: {text}");
    }

    #[test]
    fn secrets_come_from_files_too() {
        let path = std::env::temp_dir().join(format!("otp-secret-{}", std::process::id()));
        std::fs::write(&path, "0123456789abcdef0123\n").expect("write");
        let path_text = path.display().to_string();
        let c = load(&[
            ("OTP_SENDER", "webhook"),
            ("OTP_WEBHOOK_URL", "https://sms.example.com/hook"),
            ("OTP_WEBHOOK_SECRET_FILE", path_text.as_str()),
        ])
        .expect("valid");
        let hook = c.delivery.webhook.expect("webhook settings");
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(&hook.secret),
            "0123456789abcdef0123"
        );
        std::fs::remove_file(&path).expect("cleanup");
    }

    #[test]
    fn production_without_a_sender_names_the_variables_to_set() {
        let e = load(&[("ENVIRONMENT", "production")]).expect_err("refused");
        let text = e.to_string();
        for name in ["SMTP_HOST", "OTP_WEBHOOK_URL", "OTP_SENDER=log"] {
            assert!(text.contains(name), "{name} missing in {text}");
        }
        let c = load(&[("ENVIRONMENT", "production"), ("OTP_SENDER", "log")])
            .expect("explicit log is allowed");
        assert_eq!(c.environment, Environment::Production);
    }
}
