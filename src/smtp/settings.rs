//! SMTP settings: `SMTP_*`, `OTP_PRODUCT_NAME` and `OTP_TEMPLATE_DIR`.
//!
//! `SMTP_PASSWORD` may instead be read from the file named by `SMTP_PASSWORD_FILE`
//! (one trailing newline dropped); it is held as a [`SecretString`] and never printed.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::config::Env;

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
    /// `OTP_PRODUCT_NAME`: shown in messages (default `secure-otp-server`).
    pub product_name: String,
    /// `OTP_TEMPLATE_DIR`: a folder of `<language>/{subject.txt,body.txt,body.html}`
    /// overriding the built-in English and Spanish templates.
    pub template_dir: Option<PathBuf>,
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

impl SmtpConfig {
    /// Reads the SMTP settings (`OTP_SENDER` lists `smtp`).
    pub fn read(env: &mut Env) -> Self {
        let product_name = env
            .get("OTP_PRODUCT_NAME")
            .unwrap_or("secure-otp-server")
            .to_owned();
        if product_name.chars().count() > 100 || product_name.chars().any(char::is_control) {
            env.fail(
                "OTP_PRODUCT_NAME",
                &product_name,
                "expected one line of at most 100 characters",
            );
        }
        let template_dir = env.get("OTP_TEMPLATE_DIR").map(PathBuf::from);
        if let Some(dir) = &template_dir
            && !dir.is_dir()
        {
            let shown = dir.display().to_string();
            env.fail(
                "OTP_TEMPLATE_DIR",
                &shown,
                "expected a folder holding <language>/subject.txt, body.txt, body.html",
            );
        }
        let host = env.get("SMTP_HOST").unwrap_or_default().to_owned();
        if host.is_empty() {
            env.problem(
                "SMTP_HOST is required with OTP_SENDER=smtp: the SMTP server's name, e.g. smtp.example.com",
            );
        } else if host.contains(|c: char| c.is_whitespace() || c == '/' || c == ':')
            && host.parse::<IpAddr>().is_err()
        {
            env.fail(
                "SMTP_HOST",
                &host,
                "expected a host name or an IP address, no scheme or port",
            );
        }
        let tls = env.choice(
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
        let port = env.number("SMTP_PORT", default_port, 1, u16::MAX);
        let username = env.get("SMTP_USERNAME").map(str::to_owned);
        let password = env.secret("SMTP_PASSWORD");
        if username.is_some() != password.is_some() {
            env.problem(
                "SMTP_USERNAME and SMTP_PASSWORD (or SMTP_PASSWORD_FILE) go together: set both or neither",
            );
        }
        let from = env.get("SMTP_FROM").unwrap_or_default().to_owned();
        if from.parse::<lettre::message::Mailbox>().is_err() {
            env.fail(
                "SMTP_FROM",
                &from,
                "expected the sender address, e.g. no-reply@example.com or \"Example <no-reply@example.com>\"",
            );
        }
        let ca_file = env.pem_file("SMTP_CA_FILE");
        SmtpConfig {
            product_name,
            template_dir,
            host,
            port,
            tls,
            username,
            password,
            from,
            timeout: env.seconds("SMTP_TIMEOUT_SECONDS", 10, 1, 300),
            pool_size: env.number("SMTP_POOL_SIZE", 10u32, 1, 100),
            ca_file,
        }
    }
}
