//! The core settings (where to listen, development or production, CORS, the cookie
//! name, body limit) and the settings reader every other module parses its own
//! settings with.
//!
//! This module knows nothing of the protocol or the plug-ins: the policy, each
//! plug-in and each network adapter parse their own settings beside their code
//! through [`Env`], and [`crate::settings::Config`] gathers them.

mod env;

use std::net::IpAddr;
use std::time::Duration;

use crate::http::TrustedProxies;

pub use env::{ConfigError, Env};

/// Browsers keep a cookie only if its name and value fit in this many bytes.
pub const BROWSER_COOKIE_LIMIT: usize = 4096;
/// The cookie-name prefix used in production (`__Host-` forces `Secure`, `Path=/`, no `Domain`).
pub const PRODUCTION_COOKIE_PREFIX: &str = "__Host-Http-";

/// Development or production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Plain-HTTP friendly cookies, log sender allowed.
    Development,
    /// `Secure` `__Host-` cookies, HSTS, no silent development defaults.
    Production,
}

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event (default in development).
    Text,
    /// One JSON object per line (default in production, for log pipelines).
    Json,
}

/// The session cookie's `SameSite` attribute (`OTP_COOKIE_SAMESITE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Sent only with requests from the same site (default).
    Strict,
    /// Also sent on top-level navigations from other sites.
    Lax,
    /// Sent with cross-site requests too (a frontend on another site); needs `Secure`.
    None,
}

/// The settings of the server itself.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `HOST`: address to listen on (default `127.0.0.1`; `0.0.0.0` in containers).
    pub host: IpAddr,
    /// `PORT`: TCP port (default 3000; 0 picks a free one).
    pub port: u16,
    /// `ENVIRONMENT` (or the original's `NODE_ENV` / `VERCEL_ENV`): `development` (default) or `production`.
    pub environment: Environment,
    /// `CORS_ORIGIN`: comma-separated origins allowed to call with credentials
    /// (default: none), normalised: scheme and host lower-case, no trailing slash.
    pub cors_origins: Vec<String>,
    /// `OTP_COOKIE_NAME`: base cookie name (default `o`; production prefixes `__Host-Http-`).
    pub cookie_base_name: String,
    /// `OTP_BODY_LIMIT`: largest request body in bytes (default 102400).
    pub body_limit: usize,
    /// `OTP_COOKIE_SECURE`: mark the session cookie `Secure` (default: in production;
    /// `true` in development for `OTP_COOKIE_SAMESITE=none` over HTTPS).
    pub cookie_secure: bool,
    /// `OTP_COOKIE_SAMESITE`: `strict` (default), `lax` or `none` (only with
    /// `Secure` and `CORS_ORIGIN`: a frontend on another site).
    pub cookie_same_site: SameSite,
    /// `HTTP_HEADER_TIMEOUT_SECONDS` (default 10): a connection that has not sent
    /// complete request headers in time is closed; so is an idle keep-alive connection.
    pub header_timeout: Duration,
    /// `HTTP_REQUEST_TIMEOUT_SECONDS` (default 30): a request whose body has not
    /// arrived, or that has not been answered, in time gets `408`. Sending a code
    /// gets this budget less 2 s.
    pub request_timeout: Duration,
    /// `HTTP_MAX_CONNECTIONS` (default 10000): open connections at most; more are
    /// closed at once.
    pub max_connections: usize,
    /// `HTTP2` (default false): accept HTTP/2 cleartext (prior knowledge), at most
    /// 32 streams per connection.
    pub http2: bool,
    /// `SHUTDOWN_GRACE_SECONDS` (default 8, under Docker's 10 s stop timeout): how
    /// long requests in flight may finish after SIGTERM or Ctrl-C.
    pub shutdown_grace: Duration,
    /// `OTP_TRUSTED_PROXIES` (default none): the reverse proxies (CIDR list) whose
    /// `X-Forwarded-For` / `Forwarded` headers name the client; from anyone else
    /// those headers are ignored and the socket peer is the client.
    pub trusted_proxies: TrustedProxies,
    /// `LOG_FORMAT`: `text` or `json` (default `json` in production, `text` in
    /// development); the level comes from `RUST_LOG` (default `info`).
    pub log_format: LogFormat,
    /// `METRICS_ADDR` (default unset: no metrics): the `host:port` of a separate
    /// listener serving Prometheus metrics on `GET /metrics`, so they are not
    /// reachable through the API's address.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl ServerConfig {
    /// Reads the core settings.
    pub fn read(env: &mut Env) -> Self {
        let host = match env.get("HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(raw) => match raw.parse() {
                Ok(ip) => ip,
                Err(_) => {
                    let raw = raw.to_owned();
                    env.fail(
                        "HOST",
                        &raw,
                        "expected an IP address such as 127.0.0.1 or 0.0.0.0",
                    );
                    IpAddr::from([127, 0, 0, 1])
                }
            },
        };
        let environment = environment(env);
        let cors_origins = cors_origins(env);
        let cookie_secure =
            environment == Environment::Production || env.boolean("OTP_COOKIE_SECURE", false);
        let cookie_same_site = env.choice(
            "OTP_COOKIE_SAMESITE",
            SameSite::Strict,
            &[
                ("strict", SameSite::Strict),
                ("lax", SameSite::Lax),
                ("none", SameSite::None),
            ],
        );
        if cookie_same_site == SameSite::None && (!cookie_secure || cors_origins.is_empty()) {
            env.fail(
                "OTP_COOKIE_SAMESITE",
                "none",
                "needs a Secure cookie (ENVIRONMENT=production, or OTP_COOKIE_SECURE=true over HTTPS) \
                 and the frontend's origin in CORS_ORIGIN",
            );
        }
        let port = env.number("PORT", 3000u16, 0, u16::MAX);
        let metrics_addr = metrics_addr(env, host, port);
        Self {
            host,
            port,
            metrics_addr,
            environment,
            cors_origins,
            cookie_secure,
            cookie_same_site,
            cookie_base_name: cookie_base_name(env),
            body_limit: env.number("OTP_BODY_LIMIT", 102_400usize, 1024, 16 * 1024 * 1024),
            header_timeout: env.seconds("HTTP_HEADER_TIMEOUT_SECONDS", 10, 1, 300),
            request_timeout: env.seconds("HTTP_REQUEST_TIMEOUT_SECONDS", 30, 3, 600),
            max_connections: env.number("HTTP_MAX_CONNECTIONS", 10_000usize, 1, 1_000_000),
            http2: env.boolean("HTTP2", false),
            shutdown_grace: env.seconds("SHUTDOWN_GRACE_SECONDS", 8, 0, 300),
            trusted_proxies: trusted_proxies(env),
            log_format: env.choice(
                "LOG_FORMAT",
                if environment == Environment::Production {
                    LogFormat::Json
                } else {
                    LogFormat::Text
                },
                &[("text", LogFormat::Text), ("json", LogFormat::Json)],
            ),
        }
    }

    /// How long sending one code may take: the request's budget less 2 s for the
    /// rest of the request, so a slow channel answers `503`, not `408`.
    pub fn send_budget(&self) -> Duration {
        self.request_timeout.saturating_sub(Duration::from_secs(2))
    }

    /// Whether this is a production deployment.
    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }

    /// The cookie name actually used.
    pub fn cookie_name(&self) -> String {
        match self.environment {
            Environment::Production => {
                format!("{PRODUCTION_COOKIE_PREFIX}{}", self.cookie_base_name)
            }
            Environment::Development => self.cookie_base_name.clone(),
        }
    }
}

/// `METRICS_ADDR`: a socket address other than the API's.
fn metrics_addr(env: &mut Env, host: IpAddr, port: u16) -> Option<std::net::SocketAddr> {
    let raw = env.get("METRICS_ADDR")?.to_owned();
    match raw.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.port() != 0 && addr.port() == port && addr.ip() == host => {
            env.fail(
                "METRICS_ADDR",
                &raw,
                "is the API's own address: metrics need a listener of their own",
            );
            None
        }
        Ok(addr) => Some(addr),
        Err(_) => {
            env.fail(
                "METRICS_ADDR",
                &raw,
                "expected host:port, such as 127.0.0.1:9100 or [::1]:9100",
            );
            None
        }
    }
}

fn environment(env: &mut Env) -> Environment {
    let chosen = env.choice(
        "ENVIRONMENT",
        Environment::Development,
        &[
            ("development", Environment::Development),
            ("production", Environment::Production),
        ],
    );
    let production_alias = ["NODE_ENV", "VERCEL_ENV"].iter().any(|n| {
        env.get(n)
            .is_some_and(|v| v.eq_ignore_ascii_case("production"))
    });
    if production_alias {
        Environment::Production
    } else {
        chosen
    }
}

fn cors_origins(env: &mut Env) -> Vec<String> {
    let Some(raw) = env.get("CORS_ORIGIN").map(str::to_owned) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        match normalise_origin(item) {
            Some(origin) => {
                if !out.contains(&origin) {
                    out.push(origin);
                }
            }
            None => env.fail(
                "CORS_ORIGIN",
                item,
                "expected comma-separated origins such as https://app.example.com (no path, no *)",
            ),
        }
    }
    out
}

/// `scheme://host[:port]` with scheme and host lower-case and no trailing slash, or
/// `None` for anything else (a path, a wildcard, user info, non-ASCII, a bad port).
pub fn normalise_origin(raw: &str) -> Option<String> {
    let raw = raw.trim().trim_end_matches('/');
    let (scheme, authority) = raw.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let bad = |c: char| !c.is_ascii_graphic() || "/?#@*\\".contains(c);
    if authority.is_empty() || authority.contains(bad) {
        return None;
    }
    let origin = format!("{scheme}://{}", authority.to_ascii_lowercase());
    let uri: axum::http::Uri = origin.parse().ok()?;
    let has_host = uri.host().is_some_and(|h| !h.is_empty());
    let port = match authority.rsplit_once(']') {
        Some((_, after_ipv6)) => after_ipv6.strip_prefix(':'),
        None => authority.rsplit_once(':').map(|(_, p)| p),
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    (has_host && port_ok).then_some(origin)
}

fn cookie_base_name(env: &mut Env) -> String {
    let name = env.string("OTP_COOKIE_NAME", "o");
    let valid = name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        env.fail(
            "OTP_COOKIE_NAME",
            &name,
            "expected 1 to 64 of A-Z a-z 0-9 _ -",
        );
        return "o".into();
    }
    name
}

fn trusted_proxies(env: &mut Env) -> TrustedProxies {
    let text = env.string("OTP_TRUSTED_PROXIES", "");
    TrustedProxies::parse(&text).unwrap_or_else(|e| {
        env.fail(
            "OTP_TRUSTED_PROXIES",
            &text,
            &format!("{e} (a comma-separated list such as 10.0.0.0/8, ::1)"),
        );
        TrustedProxies::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_odd_ones_refused_without_panicking() {
        assert_eq!(
            normalise_origin("HTTPS://App.Example.COM/").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            normalise_origin("http://localhost:5173").as_deref(),
            Some("http://localhost:5173")
        );
        for bad in [
            "*",
            "http://é.example",
            "https://a.example/path",
            "ftp://a.example",
            "https://",
            "https://u@a.example",
            "é",
            "https://a.example:99999",
        ] {
            assert_eq!(normalise_origin(bad), None, "{bad}");
        }
    }
}
