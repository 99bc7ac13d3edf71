//! The core settings (where to listen, development or production, CORS, the cookie
//! name, body limit) and the settings reader every other module parses its own
//! settings with.
//!
//! This module knows nothing of the protocol or the plug-ins: the policy, each
//! plug-in and each network adapter parse their own settings beside their code
//! through [`Env`], and [`crate::settings::Config`] gathers them.

mod env;

use std::net::IpAddr;

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
        Self {
            host,
            port: env.number("PORT", 3000u16, 0, u16::MAX),
            environment: environment(env),
            cors_origins: cors_origins(env),
            cookie_base_name: cookie_base_name(env),
            body_limit: env.number("OTP_BODY_LIMIT", 102_400usize, 1024, 16 * 1024 * 1024),
        }
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
