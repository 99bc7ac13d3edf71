//! Configuration from the environment (12-factor), parsed once into validated types.
//!
//! Every setting is documented on its field, in `sample.env` and in the README.
//! A bad value stops start-up with a message naming the variable; all problems are
//! reported at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::crypto::{self, Kek, KeyId, MasterKey};
use crate::otp::OtpPolicy;
use crate::otp::token::max_encoded_len;
use crate::plugin::CodeFormat;

pub mod delivery;
mod redis;
pub use delivery::{DeliveryConfig, SmtpConfig, SmtpTls, WebhookConfig};
pub use redis::{RedisConfig, RedisTarget};

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

/// Which sender delivers codes (`OTP_SENDER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderKind {
    /// Print codes to stdout (development).
    Log,
    /// E-mail over SMTP (`SMTP_*`).
    Smtp,
    /// A signed HTTPS POST to `OTP_WEBHOOK_URL` (SMS, WhatsApp, voice gateways).
    Webhook,
}

/// Which credential schema parses create bodies (`OTP_CREDENTIAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// Any non-empty JSON value (the original's schema).
    Json,
    /// `{"email": "<valid address>"}`.
    Email,
    /// `{"phone": "<E.164 number>"}`, normalised to E.164.
    Phone,
    /// Either of the two: `{"email": ...}` or `{"phone": ...}`.
    EmailOrPhone,
}

/// Where key-encryption keys come from (`OTP_KMS`).
#[derive(Debug)]
pub enum KmsConfig {
    /// Generated in memory and rotated every `rotation`.
    Memory {
        /// `OTP_KEK_ROTATION_SECONDS`, default 90 days.
        rotation: Duration,
    },
    /// A fixed ring from `OTP_KEYS` (`<16 hex id>:<base64url 32-byte key>`, comma-separated, current first).
    Static {
        /// The keys; secret.
        keys: Vec<(KeyId, SecretString)>,
    },
    /// Shared by every instance through Redis, stored encrypted under a master key,
    /// rotated every `rotation` by exactly one instance.
    Redis {
        /// `OTP_KEK_ROTATION_SECONDS`, default 90 days.
        rotation: Duration,
        /// `OTP_KMS_MASTER_KEY` (or the file named by `OTP_KMS_MASTER_KEY_FILE`):
        /// base64url of 32 random bytes; a comma-separated list while rotating it,
        /// the new key first (it encrypts; the others only decrypt).
        master_keys: Vec<SecretString>,
    },
}

impl KmsConfig {
    /// The static ring's keys, decoded (validated at load time).
    pub fn static_keys(&self) -> Vec<(KeyId, Kek)> {
        match self {
            KmsConfig::Static { keys } => keys
                .iter()
                .filter_map(|(id, k)| Kek::from_base64(k.expose_secret()).map(|k| (*id, k)))
                .collect(),
            KmsConfig::Memory { .. } | KmsConfig::Redis { .. } => Vec::new(),
        }
    }

    /// The Redis KMS's master keys, decoded, new first (validated at load time).
    pub fn master_keys(&self) -> Vec<MasterKey> {
        match self {
            KmsConfig::Redis { master_keys, .. } => master_keys
                .iter()
                .filter_map(|k| MasterKey::from_base64(k.expose_secret()))
                .collect(),
            KmsConfig::Memory { .. } | KmsConfig::Static { .. } => Vec::new(),
        }
    }
}

/// Where list IDs live (`OTP_ID_STORE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdStoreConfig {
    /// In process memory.
    Memory {
        /// `OTP_ID_STORE_CAPACITY`: live IDs at most (default 2 000 000).
        capacity: usize,
        /// `OTP_ID_SWEEP_SECONDS`: how often dead IDs are dropped (default 60).
        sweep_every: Duration,
    },
    /// In Redis (or a Redis Cluster), shared by every instance; see [`RedisConfig`].
    Redis,
}

/// The whole configuration.
#[derive(Debug)]
pub struct Config {
    /// `HOST`: address to listen on (default `127.0.0.1`; `0.0.0.0` in containers).
    pub host: IpAddr,
    /// `PORT`: TCP port (default 3000; 0 picks a free one).
    pub port: u16,
    /// `ENVIRONMENT` (or the original's `NODE_ENV` / `VERCEL_ENV`): `development` (default) or `production`.
    pub environment: Environment,
    /// `CORS_ORIGIN`: comma-separated origins allowed to call with credentials (default: none).
    pub cors_origins: Vec<String>,
    /// `OTP_SENDER`: `log` (default in development), `smtp`, `webhook`, or a
    /// comma-separated list (`smtp,webhook`); this is the first one listed.
    pub sender: SenderKind,
    /// Every sender listed in `OTP_SENDER`, in order: e-mail credentials go to `smtp`,
    /// phone credentials to `webhook`, anything else to the first (see [`delivery`]).
    pub senders: Vec<SenderKind>,
    /// Sender settings: product name, templates, `SMTP_*`, `OTP_WEBHOOK_*`.
    pub delivery: DeliveryConfig,
    /// Whether `OTP_SENDER` was set explicitly.
    pub sender_explicit: bool,
    /// `OTP_CREDENTIAL`: `json` (default), `email`, `phone` or `email_or_phone`.
    pub credential: CredentialKind,
    /// `OTP_LENGTH` (10) and `OTP_ALPHABET` (`0-9a-z`).
    pub code_format: CodeFormat,
    /// The OTP rules (`OTP_MAX_AGE`, `OTP_MAX_ATTEMPTS`, ...).
    pub policy: OtpPolicy,
    /// `OTP_COOKIE_NAME`: base cookie name (default `o`; production prefixes `__Host-Http-`).
    pub cookie_base_name: String,
    /// `OTP_BODY_LIMIT`: largest request body in bytes (default 102400).
    pub body_limit: usize,
    /// KMS choice.
    pub kms: KmsConfig,
    /// ID store choice.
    pub id_store: IdStoreConfig,
    /// Redis, when a backend uses it.
    pub redis: Option<RedisConfig>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the given variables (tests pass their own).
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        let mut p = Parser {
            vars: &vars,
            errors: Vec::new(),
        };
        let config = p.config();
        if p.errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(p.errors))
        }
    }

    /// The configuration a test or an embedding app starts from: development, defaults.
    pub fn development() -> Self {
        Self::from_vars(std::iter::empty::<(String, String)>())
            .unwrap_or_else(|_| unreachable_defaults())
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

    /// The longest `name=value` the session cookie can reach with these settings.
    pub fn max_cookie_len(&self) -> usize {
        let plain = max_encoded_len(
            self.policy.max_credentials,
            self.policy.max_credential_len,
            self.code_format.length(),
        );
        self.cookie_name().len() + 1 + crypto::sealed_len(plain)
    }
}

#[expect(
    clippy::panic,
    reason = "the empty environment is valid by construction; tested"
)]
fn unreachable_defaults() -> Config {
    panic!("the default configuration must be valid")
}

/// Every problem found in the environment, one line each.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

struct Parser<'a> {
    vars: &'a HashMap<String, String>,
    errors: Vec<String>,
}

impl Parser<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.trim())
    }

    fn fail(&mut self, name: &str, value: &str, hint: &str) {
        self.errors.push(format!("{name}={value:?}: {hint}"));
    }

    fn number<T: std::str::FromStr + Copy + PartialOrd + std::fmt::Display>(
        &mut self,
        name: &str,
        default: T,
        min: T,
        max: T,
    ) -> T {
        let Some(raw) = self.get(name) else {
            return default;
        };
        match raw.parse::<T>() {
            Ok(v) if v >= min && v <= max => v,
            _ => {
                let raw = raw.to_owned();
                self.fail(
                    name,
                    &raw,
                    &format!("expected a whole number from {min} to {max}"),
                );
                default
            }
        }
    }

    fn seconds(&mut self, name: &str, default: u64, min: u64, max: u64) -> Duration {
        Duration::from_secs(self.number(name, default, min, max))
    }

    fn boolean(&mut self, name: &str, default: bool) -> bool {
        let Some(raw) = self.get(name) else {
            return default;
        };
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => {
                let raw = raw.to_owned();
                self.fail(name, &raw, "expected true or false");
                default
            }
        }
    }

    fn choice<T: Copy>(&mut self, name: &str, default: T, options: &[(&str, T)]) -> T {
        let Some(raw) = self.get(name) else {
            return default;
        };
        let lower = raw.to_ascii_lowercase();
        if let Some((_, v)) = options.iter().find(|(k, _)| *k == lower) {
            return *v;
        }
        let raw = raw.to_owned();
        let names: Vec<&str> = options.iter().map(|(k, _)| *k).collect();
        self.fail(
            name,
            &raw,
            &format!("expected one of: {}", names.join(", ")),
        );
        default
    }

    fn config(&mut self) -> Config {
        let host = match self.get("HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(raw) => match raw.parse() {
                Ok(ip) => ip,
                Err(_) => {
                    let raw = raw.to_owned();
                    self.fail(
                        "HOST",
                        &raw,
                        "expected an IP address such as 127.0.0.1 or 0.0.0.0",
                    );
                    IpAddr::from([127, 0, 0, 1])
                }
            },
        };
        let port = self.number("PORT", 3000u16, 0, u16::MAX);
        let environment = self.environment();
        let cors_origins = self.cors_origins();
        let sender_explicit = self.get("OTP_SENDER").is_some();
        let senders = self.senders();
        let sender = senders.first().copied().unwrap_or(SenderKind::Log);
        if environment == Environment::Production && !sender_explicit {
            self.errors.push(
                "OTP_SENDER is unset in production: the development `log` sender would print codes \
                 to stdout. Set OTP_SENDER=smtp (with SMTP_HOST, SMTP_FROM and, if needed, \
                 SMTP_USERNAME and SMTP_PASSWORD or SMTP_PASSWORD_FILE) to send e-mail, \
                 OTP_SENDER=webhook (with OTP_WEBHOOK_URL and OTP_WEBHOOK_SECRET or \
                 OTP_WEBHOOK_SECRET_FILE) for SMS, WhatsApp or voice, OTP_SENDER=smtp,webhook \
                 for both, or OTP_SENDER=log explicitly if printing codes is really wanted."
                    .into(),
            );
        }
        let delivery = self.delivery(&senders);
        let credential = self.choice(
            "OTP_CREDENTIAL",
            CredentialKind::Json,
            &[
                ("json", CredentialKind::Json),
                ("email", CredentialKind::Email),
                ("phone", CredentialKind::Phone),
                ("email_or_phone", CredentialKind::EmailOrPhone),
            ],
        );
        let code_format = self.code_format();
        let policy = self.policy();
        let cookie_base_name = self.cookie_base_name();
        let body_limit = self.number("OTP_BODY_LIMIT", 102_400usize, 1024, 16 * 1024 * 1024);
        let kms = self.kms();
        let id_store = self.id_store();
        let redis = if matches!(kms, KmsConfig::Redis { .. }) || id_store == IdStoreConfig::Redis {
            self.redis()
        } else {
            None
        };
        let config = Config {
            host,
            port,
            environment,
            cors_origins,
            sender,
            senders,
            delivery,
            sender_explicit,
            credential,
            code_format,
            policy,
            cookie_base_name,
            body_limit,
            kms,
            id_store,
            redis,
        };
        if config.max_cookie_len() > BROWSER_COOKIE_LIMIT {
            self.errors.push(format!(
                "OTP_MAX_CREDENTIALS={} with OTP_MAX_CREDENTIAL_LENGTH={} gives cookies of up to {} bytes, \
                 over the browsers' {BROWSER_COOKIE_LIMIT}: lower one of them",
                config.policy.max_credentials,
                config.policy.max_credential_len,
                config.max_cookie_len()
            ));
        }
        config
    }

    fn environment(&mut self) -> Environment {
        let env = self.choice(
            "ENVIRONMENT",
            Environment::Development,
            &[
                ("development", Environment::Development),
                ("production", Environment::Production),
            ],
        );
        let production_alias = ["NODE_ENV", "VERCEL_ENV"].iter().any(|n| {
            self.get(n)
                .is_some_and(|v| v.eq_ignore_ascii_case("production"))
        });
        if production_alias {
            Environment::Production
        } else {
            env
        }
    }

    fn cors_origins(&mut self) -> Vec<String> {
        let Some(raw) = self.get("CORS_ORIGIN").map(str::to_owned) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let origin = origin.trim_end_matches('/');
            let valid = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin["https://".len().min(origin.len())..].contains('/')
                && origin.parse::<axum::http::HeaderValue>().is_ok();
            if valid {
                out.push(origin.to_owned());
            } else {
                self.fail(
                    "CORS_ORIGIN",
                    origin,
                    "expected comma-separated origins such as https://app.example.com (no path, no *)",
                );
            }
        }
        out
    }

    fn code_format(&mut self) -> CodeFormat {
        let length = self.number("OTP_LENGTH", 10usize, 4, 64);
        let alphabet = self
            .get("OTP_ALPHABET")
            .unwrap_or("0123456789abcdefghijklmnopqrstuvwxyz")
            .to_owned();
        match CodeFormat::new(&alphabet, length) {
            Ok(f) => f,
            Err(e) => {
                self.fail("OTP_ALPHABET", &alphabet, &e.to_string());
                CodeFormat::original()
            }
        }
    }

    fn policy(&mut self) -> OtpPolicy {
        let max_attempts = self.number("OTP_MAX_ATTEMPTS", 3u8, 1, 20);
        let attempts_block = self.number("OTP_ATTEMPTS_BLOCK", 1u8, 0, 20);
        if attempts_block >= max_attempts {
            self.fail(
                "OTP_ATTEMPTS_BLOCK",
                &attempts_block.to_string(),
                "must be lower than OTP_MAX_ATTEMPTS",
            );
        }
        OtpPolicy {
            max_age: self.seconds("OTP_MAX_AGE", 180, 10, 86_400),
            max_attempts,
            attempts_block,
            invalid_block: self.seconds("OTP_INVALID_BLOCK_SECONDS", 20, 0, 86_400),
            resend_block: self.seconds("OTP_RESEND_BLOCK_SECONDS", 30, 0, 86_400),
            only_one_resend: self.boolean("OTP_ALLOW_ONLY_ONE_RESENDING", true),
            max_credentials: self.number("OTP_MAX_CREDENTIALS", 3usize, 1, 10),
            max_credential_len: self.number("OTP_MAX_CREDENTIAL_LENGTH", 256usize, 8, 2048),
        }
    }

    fn cookie_base_name(&mut self) -> String {
        let name = self.get("OTP_COOKIE_NAME").unwrap_or("o").to_owned();
        let valid = name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            self.fail(
                "OTP_COOKIE_NAME",
                &name,
                "expected 1 to 64 of A-Z a-z 0-9 _ -",
            );
            return "o".into();
        }
        name
    }

    fn kms(&mut self) -> KmsConfig {
        #[derive(Clone, Copy)]
        enum Kind {
            Memory,
            Static,
            Redis,
        }
        let kind = self.choice(
            "OTP_KMS",
            Kind::Memory,
            &[
                ("memory", Kind::Memory),
                ("static", Kind::Static),
                ("redis", Kind::Redis),
            ],
        );
        match kind {
            Kind::Memory => KmsConfig::Memory {
                rotation: self.rotation(),
            },
            Kind::Redis => KmsConfig::Redis {
                rotation: self.rotation(),
                master_keys: self.master_keys(),
            },
            Kind::Static => {
                let raw = self.get("OTP_KEYS").unwrap_or_default().to_owned();
                let mut keys = Vec::new();
                for (i, item) in raw
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .enumerate()
                {
                    let parsed = item
                        .split_once(':')
                        .and_then(|(id, key)| Some((KeyId::from_hex(id.trim())?, key.trim())))
                        .filter(|(_, key)| Kek::from_base64(key).is_some());
                    match parsed {
                        Some((id, key)) if keys.iter().all(|(k, _)| *k != id) => {
                            keys.push((id, SecretString::from(key.to_owned())));
                        }
                        _ => self.errors.push(format!(
                            "OTP_KEYS entry {}: expected <16 hex digits>:<base64url of 32 random bytes>, ids distinct \
                             (the value is not shown: it is secret)",
                            i + 1
                        )),
                    }
                }
                if keys.is_empty() {
                    self.errors.push(
                        "OTP_KMS=static needs OTP_KEYS=<16 hex id>:<base64url 32-byte key>[,...] (current key first)".into(),
                    );
                }
                KmsConfig::Static { keys }
            }
        }
    }

    fn id_store(&mut self) -> IdStoreConfig {
        let redis = self.choice("OTP_ID_STORE", false, &[("memory", false), ("redis", true)]);
        if redis {
            return IdStoreConfig::Redis;
        }
        IdStoreConfig::Memory {
            capacity: self.number("OTP_ID_STORE_CAPACITY", 2_000_000usize, 1, 1 << 32),
            sweep_every: self.seconds("OTP_ID_SWEEP_SECONDS", 60, 1, 3600),
        }
    }

    /// `OTP_KEK_ROTATION_SECONDS`: default 90 days. The minimum is 1 s so tests can
    /// watch a rotation happen; production values are days (each rotation adds a key
    /// that is kept for the rotation period plus `OTP_MAX_AGE`).
    fn rotation(&mut self) -> Duration {
        self.seconds("OTP_KEK_ROTATION_SECONDS", 7_776_000, 1, 10 * 365 * 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(vars.iter().map(|(k, v)| (*k, *v)))
    }

    #[test]
    fn the_empty_environment_gives_the_original_defaults() {
        let c = load(&[]).expect("valid");
        assert_eq!(c.port, 3000);
        assert_eq!(c.environment, Environment::Development);
        assert_eq!(c.policy, OtpPolicy::default());
        assert_eq!(c.code_format.length(), 10);
        assert_eq!(c.cookie_name(), "o");
        assert_eq!(c.body_limit, 102_400);
        assert!(c.cors_origins.is_empty());
    }

    #[test]
    fn node_env_production_is_honoured() {
        let c = load(&[("NODE_ENV", "Production"), ("OTP_SENDER", "log")]).expect("valid");
        assert_eq!(c.environment, Environment::Production);
        assert_eq!(c.cookie_name(), "__Host-Http-o");
    }

    #[test]
    fn production_refuses_the_implicit_log_sender() {
        let e = load(&[("ENVIRONMENT", "production")]).expect_err("refused");
        assert!(e.to_string().contains("OTP_SENDER"), "{e}");
    }

    #[test]
    fn every_bad_value_is_reported_by_name() {
        let e = load(&[
            ("PORT", "http"),
            ("OTP_LENGTH", "3"),
            ("OTP_ALLOW_ONLY_ONE_RESENDING", "maybe"),
            ("CORS_ORIGIN", "*"),
            ("OTP_SENDER", "pigeon"),
        ])
        .expect_err("refused");
        let text = e.to_string();
        for name in [
            "PORT",
            "OTP_LENGTH",
            "OTP_ALLOW_ONLY_ONE_RESENDING",
            "CORS_ORIGIN",
            "OTP_SENDER",
        ] {
            assert!(text.contains(name), "{name} missing from {text}");
        }
    }

    #[test]
    fn a_cookie_that_would_not_fit_is_refused_at_start_up() {
        let e = load(&[
            ("OTP_MAX_CREDENTIALS", "10"),
            ("OTP_MAX_CREDENTIAL_LENGTH", "2048"),
        ])
        .expect_err("refused");
        assert!(e.to_string().contains("OTP_MAX_CREDENTIAL_LENGTH"));
        let ok = load(&[]).expect("valid");
        assert!(ok.max_cookie_len() <= BROWSER_COOKIE_LIMIT);
    }

    #[test]
    fn static_keys_parse_and_errors_hide_the_secret() {
        let key = Kek::generate().dangerous_to_base64();
        let c = load(&[
            ("OTP_KMS", "static"),
            ("OTP_KEYS", &format!("0011223344556677:{key}")),
        ])
        .expect("valid");
        assert_eq!(c.kms.static_keys().len(), 1);
        let e = load(&[
            ("OTP_KMS", "static"),
            ("OTP_KEYS", "0011223344556677:c2VjcmV0"),
        ])
        .expect_err("short key");
        assert!(!e.to_string().contains("c2VjcmV0"));
    }

    #[test]
    fn cors_origins_are_a_list() {
        let c =
            load(&[("CORS_ORIGIN", "https://a.example, http://localhost:5173/")]).expect("valid");
        assert_eq!(
            c.cors_origins,
            ["https://a.example", "http://localhost:5173"]
        );
    }
}
