//! The whole configuration, and the default plug-ins it selects.
//!
//! [`Config`] gathers the core settings ([`ServerConfig`]), the protocol's policy
//! and every plug-in's and adapter's own settings; each part is parsed by the module
//! that owns it through one [`Env`], so every problem is reported at once.
//! [`Plugins::from_config`] is the one place the configured plug-ins are built: the
//! binary, the tests, the benchmarks and the load example all start from it.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::clock::Clock;
use crate::config::{BROWSER_COOKIE_LIMIT, ConfigError, Env, Environment, ServerConfig};
use crate::crypto::{self, Kek, KeyId, MasterKey};
use crate::limit::LimitPolicy;
use crate::login::{FinalActionKind, LoginConfig, SessionFinalAction, Sessions};
use crate::otp::token::max_encoded_len;
use crate::otp::{OtpPolicy, PurposesConfig, TestCredentials};
use crate::plugin::{
    CodeFormat, CredentialKind, EchoCredential, IdStore, Kms, LimitStore, LogSender, MemoryIdStore,
    MemoryKms, MemoryLimitStore, MemoryReplayStore, Plugins, RandomGenerator, ReplayStore,
    RoutingSender, Sender, StaticKms,
};
#[cfg(feature = "redis")]
use crate::redis::{
    RedisConfig, RedisConnection, RedisIdStore, RedisKms, RedisLimitStore, RedisReplayStore,
};
#[cfg(feature = "smtp")]
use crate::smtp::{SmtpConfig, SmtpSender, Templates};
#[cfg(feature = "webhook")]
use crate::webhook::{WebhookConfig, WebhookSender};

/// Which sender delivers codes (`OTP_SENDER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderKind {
    /// Print codes to the log (development).
    Log,
    /// E-mail over SMTP (`SMTP_*`; the `smtp` feature).
    Smtp,
    /// A signed HTTPS POST to `OTP_WEBHOOK_URL` (SMS, WhatsApp, voice gateways; the `webhook` feature).
    Webhook,
}

impl SenderKind {
    /// The name used in `OTP_SENDER`.
    pub fn name(self) -> &'static str {
        match self {
            SenderKind::Log => "log",
            SenderKind::Smtp => "smtp",
            SenderKind::Webhook => "webhook",
        }
    }
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
    /// The rotation period (the static ring never rotates: 90 days, for retention sums).
    pub fn rotation(&self) -> Duration {
        match self {
            KmsConfig::Memory { rotation } | KmsConfig::Redis { rotation, .. } => *rotation,
            KmsConfig::Static { .. } => Duration::from_secs(DEFAULT_ROTATION_SECONDS),
        }
    }

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

    fn name(&self) -> &'static str {
        match self {
            KmsConfig::Memory { .. } => "memory",
            KmsConfig::Static { .. } => "static",
            KmsConfig::Redis { .. } => "redis",
        }
    }
}

const DEFAULT_ROTATION_SECONDS: u64 = 7_776_000;

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
    /// In Redis (or a Redis Cluster), shared by every instance.
    Redis,
}

/// The whole configuration.
#[derive(Debug)]
#[non_exhaustive]
pub struct Config {
    /// Where to listen, development or production, CORS, cookie name, body limit.
    pub server: ServerConfig,
    /// The OTP rules (`OTP_MAX_AGE`, `OTP_MAX_ATTEMPTS`, ...).
    pub policy: OtpPolicy,
    /// `OTP_LENGTH` (10) and `OTP_ALPHABET` (`0-9a-z`).
    pub code_format: CodeFormat,
    /// `OTP_CREDENTIAL`: `json` (default), `email`, `phone` or `email_or_phone`.
    pub credential: CredentialKind,
    /// `OTP_SENDER`: `log` (default in development), `smtp`, `webhook`, or a
    /// comma-separated list (`smtp,webhook`): e-mail credentials go to `smtp`, phone
    /// credentials to `webhook`, anything else to the first one listed.
    pub senders: Vec<SenderKind>,
    /// The SMTP settings, when `OTP_SENDER` lists `smtp`.
    #[cfg(feature = "smtp")]
    pub smtp: Option<SmtpConfig>,
    /// The webhook settings, when `OTP_SENDER` lists `webhook`.
    #[cfg(feature = "webhook")]
    pub webhook: Option<WebhookConfig>,
    /// KMS choice.
    pub kms: KmsConfig,
    /// ID store choice.
    pub id_store: IdStoreConfig,
    /// Redis, when a backend uses it.
    #[cfg(feature = "redis")]
    pub redis: Option<RedisConfig>,
    /// The abuse limits (`OTP_LIMIT_*`, `OTP_PHONE_COUNTRIES`, `OTP_PUMPING_*`,
    /// `OTP_HIDE_UNDELIVERABLE`); counted where the list IDs live.
    pub limits: LimitPolicy,
    /// What runs after verification, sessions, magic links, the demo page.
    pub login: LoginConfig,
    /// `OTP_TEST_CREDENTIALS`: addresses with a fixed code (nothing is sent to them).
    pub test_credentials: TestCredentials,
    /// `OTP_PURPOSES` and their overrides (empty: one implicit purpose).
    pub purposes: PurposesConfig,
    /// The key that turns addresses into counter keys.
    limit_secret: LimitSecret,
    /// Settings that are allowed but probably not meant (logged at start-up).
    warnings: Vec<String>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(Env::from_process(), |_, _| ()).map(|(config, ())| config)
    }

    /// Reads the given variables (tests pass their own).
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self::read(Env::from_vars(vars), |_, _| ()).map(|(config, ())| config)
    }

    /// Reads the whole configuration from `env`, then a fork's (or an embedding
    /// app's) own settings with `custom`, through the same reader: a bad custom
    /// setting is reported together with every other problem.
    pub fn read<T>(
        mut env: Env,
        custom: impl FnOnce(&mut Env, &Config) -> T,
    ) -> Result<(Self, T), ConfigError> {
        let config = Self::parse(&mut env);
        let extra = custom(&mut env, &config);
        env.finish((config, extra))
    }

    /// The configuration a test or an embedding app starts from: development, defaults.
    pub fn development() -> Self {
        Self::from_vars(std::iter::empty::<(String, String)>())
            .unwrap_or_else(|_| unreachable_defaults())
    }

    /// The cookie name actually used.
    pub fn cookie_name(&self) -> String {
        self.server.cookie_name()
    }

    /// The longest `name=value` the session cookie can reach with these settings.
    pub fn max_cookie_len(&self) -> usize {
        let plain = max_encoded_len(
            self.policy.max_credentials,
            self.policy.max_credential_len,
            self.purposes.longest_code(self.code_format.length()),
        );
        self.cookie_name().len() + 1 + crypto::sealed_len(plain)
    }

    /// How long a key-encryption key stays readable after it stops sealing: the
    /// longest code lifetime of any purpose, plus a second.
    pub fn key_retention(&self) -> Duration {
        self.purposes.longest_max_age(self.policy.max_age) + Duration::from_secs(1)
    }

    /// Settings that are allowed but probably not meant, one sentence each; the
    /// binary logs them at start-up.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The secret per-address counters are keyed under: `OTP_LIMIT_KEY` (or
    /// `_FILE`), else derived from the static or Redis KMS's first key (so every
    /// instance of one deployment agrees), else random for this process.
    pub fn limit_secret(&self) -> &[u8; 32] {
        &self.limit_secret.0
    }

    /// One line naming the active plug-ins, for the start-up log.
    pub fn describe(&self) -> String {
        let ids = match self.id_store {
            IdStoreConfig::Memory { .. } => "memory",
            IdStoreConfig::Redis => "redis",
        };
        let senders: Vec<&str> = self.senders.iter().map(|s| s.name()).collect();
        let final_action = match self.login.final_action {
            FinalActionKind::Echo => "echo",
            FinalActionKind::Session => "session",
            FinalActionKind::Webhook => "webhook",
        };
        format!(
            "id_store={ids} kms={} sender={} credential={:?} final_action={final_action}{} limits=[{}]",
            self.kms.name(),
            senders.join(","),
            self.credential,
            if self.login.magic_link {
                " magic_link=on"
            } else {
                ""
            },
            self.limits
        )
    }

    fn parse(env: &mut Env) -> Config {
        let server = ServerConfig::read(env);
        let sender_explicit = env.is_set("OTP_SENDER");
        let senders = senders(env);
        if server.environment == Environment::Production && !sender_explicit {
            env.problem(
                "OTP_SENDER is unset in production: the development `log` sender would print codes \
                 to stdout. Set OTP_SENDER=smtp (with SMTP_HOST, SMTP_FROM and, if needed, \
                 SMTP_USERNAME and SMTP_PASSWORD or SMTP_PASSWORD_FILE) to send e-mail, \
                 OTP_SENDER=webhook (with OTP_WEBHOOK_URL and OTP_WEBHOOK_SECRET or \
                 OTP_WEBHOOK_SECRET_FILE) for SMS, WhatsApp or voice, OTP_SENDER=smtp,webhook \
                 for both, or OTP_SENDER=log explicitly if printing codes is really wanted.",
            );
        }
        #[cfg(feature = "smtp")]
        let smtp = senders
            .contains(&SenderKind::Smtp)
            .then(|| SmtpConfig::read(env));
        #[cfg(feature = "webhook")]
        let webhook = senders
            .contains(&SenderKind::Webhook)
            .then(|| WebhookConfig::read(env))
            .flatten();
        let credential = CredentialKind::read(env);
        let mut warnings = Vec::new();
        safety_checks(env, &server, sender_explicit, &mut warnings);
        let login = LoginConfig::read(env, &server, &mut warnings);
        let code_format = CodeFormat::read(env);
        let test_credentials = TestCredentials::read(env, &code_format, server.is_production());
        let policy = OtpPolicy::read(env);
        let purposes = PurposesConfig::read(env, &policy, &code_format);
        let kms = kms(env);
        let id_store = id_store(env);
        let uses_redis = matches!(kms, KmsConfig::Redis { .. }) || id_store == IdStoreConfig::Redis;
        #[cfg(feature = "redis")]
        let redis = if uses_redis {
            RedisConfig::read(env)
        } else {
            None
        };
        if !uses_redis && (env.is_set("REDIS_URL") || env.is_set("REDIS_CLUSTER_NODES")) {
            warnings.push(
                "REDIS_URL or REDIS_CLUSTER_NODES is set but no backend uses Redis: set \
                 OTP_ID_STORE=redis and OTP_KMS=redis to share state between instances"
                    .to_owned(),
            );
        }
        #[cfg(not(feature = "redis"))]
        if uses_redis {
            env.problem(
                "OTP_ID_STORE=redis or OTP_KMS=redis: this build has no Redis support \
                 (build with the `redis` feature)",
            );
        }
        let limits = LimitPolicy::read(env, server.is_production());
        let limit_secret = limit_secret(env, &kms, id_store == IdStoreConfig::Redis, &mut warnings);
        let config = Config {
            server,
            policy,
            code_format,
            credential,
            senders,
            #[cfg(feature = "smtp")]
            smtp,
            #[cfg(feature = "webhook")]
            webhook,
            kms,
            id_store,
            #[cfg(feature = "redis")]
            redis,
            limits,
            login,
            test_credentials,
            purposes,
            limit_secret,
            warnings,
        };
        if config.max_cookie_len() > BROWSER_COOKIE_LIMIT {
            env.problem(format!(
                "OTP_MAX_CREDENTIALS={} with OTP_MAX_CREDENTIAL_LENGTH={} gives cookies of up to {} bytes, \
                 over the browsers' {BROWSER_COOKIE_LIMIT}: lower one of them",
                config.policy.max_credentials,
                config.policy.max_credential_len,
                config.max_cookie_len()
            ));
        }
        config
    }
}

/// The checks that keep a deployment from running unsafe by accident.
fn safety_checks(
    env: &mut Env,
    server: &ServerConfig,
    sender_explicit: bool,
    warnings: &mut Vec<String>,
) {
    let environment_set = ["ENVIRONMENT", "NODE_ENV", "VERCEL_ENV"]
        .iter()
        .any(|n| env.is_set(n));
    if !environment_set && !server.host.is_loopback() {
        env.problem(format!(
            "ENVIRONMENT is unset and HOST={} is reachable from other machines: set \
             ENVIRONMENT=production (Secure cookies, no codes in the log) or, for a \
             development server in a container, ENVIRONMENT=development explicitly",
            server.host
        ));
    }
    if server.environment != Environment::Production {
        return;
    }
    if !env.is_set("OTP_CREDENTIAL") {
        env.problem(
            "OTP_CREDENTIAL is unset in production: the default `json` schema accepts any JSON and \
             proves only the field a code was sent to, while verify returns the whole object. \
             Set OTP_CREDENTIAL=email, phone or email_or_phone (or json explicitly, if your final \
             action reads only the delivered address)",
        );
    }
    for origin in &server.cors_origins {
        if origin.starts_with("http://") {
            env.fail(
                "CORS_ORIGIN",
                origin,
                "production allows only https:// origins (the session cookie is Secure)",
            );
        }
    }
    let smtp_plain = env
        .get("SMTP_TLS")
        .is_some_and(|v| v.eq_ignore_ascii_case("none"));
    let smtp_host = env.get("SMTP_HOST").unwrap_or_default().to_owned();
    let smtp_local = smtp_host.eq_ignore_ascii_case("localhost")
        || smtp_host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let smtp_listed = env
        .get("OTP_SENDER")
        .is_some_and(|v| v.to_ascii_lowercase().contains("smtp"));
    if smtp_listed && smtp_plain && !smtp_local {
        env.fail(
            "SMTP_TLS",
            "none",
            "production sends codes in clear text only to a relay on this host (SMTP_HOST=localhost); \
             use starttls or tls",
        );
    }
    let log_listed = env
        .get("OTP_SENDER")
        .is_some_and(|v| v.split(',').any(|n| n.trim().eq_ignore_ascii_case("log")));
    if sender_explicit && log_listed {
        warnings.push(
            "OTP_SENDER lists `log` in production: codes and full credentials are printed to the log"
                .to_owned(),
        );
    }
}

#[expect(
    clippy::panic,
    reason = "the empty environment is valid by construction; tested"
)]
fn unreachable_defaults() -> Config {
    panic!("the default configuration must be valid")
}

/// `OTP_SENDER`: one name or a comma-separated list, no repeats.
fn senders(env: &mut Env) -> Vec<SenderKind> {
    let Some(raw) = env.get("OTP_SENDER").map(str::to_owned) else {
        return vec![SenderKind::Log];
    };
    let mut out = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let kind = match name.to_ascii_lowercase().as_str() {
            "log" => SenderKind::Log,
            "smtp" => SenderKind::Smtp,
            "webhook" => SenderKind::Webhook,
            _ => {
                env.fail(
                    "OTP_SENDER",
                    &raw,
                    "expected log, smtp, webhook, or a comma-separated list such as smtp,webhook",
                );
                return vec![SenderKind::Log];
            }
        };
        let built_in = match kind {
            SenderKind::Log => true,
            SenderKind::Smtp => cfg!(feature = "smtp"),
            SenderKind::Webhook => cfg!(feature = "webhook"),
        };
        if !built_in {
            env.fail(
                "OTP_SENDER",
                &raw,
                &format!(
                    "this build has no `{}` sender (build with the `{}` feature)",
                    kind.name(),
                    kind.name()
                ),
            );
        }
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    if out.is_empty() {
        out.push(SenderKind::Log);
    }
    out
}

fn kms(env: &mut Env) -> KmsConfig {
    #[derive(Clone, Copy)]
    enum Kind {
        Memory,
        Static,
        Redis,
    }
    let kind = env.choice(
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
            rotation: rotation(env),
        },
        Kind::Redis => KmsConfig::Redis {
            rotation: rotation(env),
            master_keys: master_keys(env),
        },
        Kind::Static => KmsConfig::Static {
            keys: static_keys(env),
        },
    }
}

#[cfg(feature = "redis")]
fn master_keys(env: &mut Env) -> Vec<SecretString> {
    crate::redis::master_keys(env)
}

#[cfg(not(feature = "redis"))]
fn master_keys(_: &mut Env) -> Vec<SecretString> {
    Vec::new()
}

/// Key material that never prints.
struct LimitSecret(zeroize::Zeroizing<[u8; 32]>);

impl std::fmt::Debug for LimitSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// `OTP_LIMIT_KEY`, or a key derived from the KMS's secret, or a random one.
fn limit_secret(
    env: &mut Env,
    kms: &KmsConfig,
    shared: bool,
    warnings: &mut Vec<String>,
) -> LimitSecret {
    use hmac::{Hmac, KeyInit, Mac};
    // The key is derived from a secret's text (not its bytes), so the same text
    // gives the same key whether it came from OTP_LIMIT_KEY or a KMS setting.
    let root = match env.secret("OTP_LIMIT_KEY") {
        Some(text) if Kek::from_base64(text.expose_secret()).is_some() => Some(text),
        Some(_) => {
            env.fail(
                "OTP_LIMIT_KEY",
                "(secret)",
                "base64url of 32 random bytes (openssl rand -base64 32 | tr '+/' '-_')",
            );
            None
        }
        None => match kms {
            KmsConfig::Static { keys } => keys.first().map(|(_, k)| k.clone()),
            KmsConfig::Redis { master_keys, .. } => master_keys.first().cloned(),
            KmsConfig::Memory { .. } => None,
        },
    };
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    match root.and_then(|r| Hmac::<sha2::Sha256>::new_from_slice(r.expose_secret().as_bytes()).ok())
    {
        Some(mut mac) => {
            mac.update(b"secure-otp-server limit key v1");
            key.copy_from_slice(&mac.finalize().into_bytes());
        }
        None => {
            rand::fill(&mut key[..]);
            if shared {
                warnings.push(
                    "OTP_ID_STORE=redis without OTP_LIMIT_KEY or a static/Redis KMS: each instance \
                     keys its per-address counters with its own random secret, so instances do not \
                     share those limits; set OTP_LIMIT_KEY (base64url of 32 random bytes)"
                        .to_owned(),
                );
            }
        }
    }
    LimitSecret(key)
}

/// `OTP_KEYS`: `<16 hex id>:<base64url 32-byte key>`, comma-separated, current first.
fn static_keys(env: &mut Env) -> Vec<(KeyId, SecretString)> {
    let raw = env.secret("OTP_KEYS");
    let raw = raw.as_ref().map_or("", |s| s.expose_secret());
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
            _ => env.problem(format!(
                "OTP_KEYS entry {}: expected <16 hex digits>:<base64url of 32 random bytes>, ids distinct \
                 (the value is not shown: it is secret)",
                i + 1
            )),
        }
    }
    if keys.is_empty() {
        env.problem(
            "OTP_KMS=static needs OTP_KEYS=<16 hex id>:<base64url 32-byte key>[,...] (current key first)",
        );
    }
    keys
}

fn id_store(env: &mut Env) -> IdStoreConfig {
    let redis = env.choice("OTP_ID_STORE", false, &[("memory", false), ("redis", true)]);
    if redis {
        return IdStoreConfig::Redis;
    }
    IdStoreConfig::Memory {
        capacity: env.number("OTP_ID_STORE_CAPACITY", 2_000_000usize, 1, 1 << 32),
        sweep_every: env.seconds("OTP_ID_SWEEP_SECONDS", 60, 1, 3600),
    }
}

/// `OTP_KEK_ROTATION_SECONDS`: default 90 days. The minimum is 1 s so tests can
/// watch a rotation happen; production values are days (each rotation adds a key
/// that is kept for the rotation period plus `OTP_MAX_AGE`).
fn rotation(env: &mut Env) -> Duration {
    env.seconds(
        "OTP_KEK_ROTATION_SECONDS",
        DEFAULT_ROTATION_SECONDS,
        1,
        10 * 365 * 86_400,
    )
}

impl Plugins {
    /// The plug-ins `config` asks for: the random generator, the configured
    /// credential schema, sender(s), ID store and KMS, and the echo final action.
    ///
    /// Start here and replace what you need (`plugins.sender = Arc::new(MySms)`).
    /// Opens no connection yet (Redis connects on first use), but spawns the
    /// in-memory ID store's sweeper when called inside a Tokio runtime.
    pub fn from_config(config: &Config, clock: &Arc<dyn Clock>) -> Result<Self, ConfigError> {
        let one = |e: String| ConfigError(vec![e]);
        #[cfg(feature = "redis")]
        let redis = config
            .redis
            .as_ref()
            .map(RedisConnection::new)
            .transpose()
            .map_err(one)?;
        #[cfg(feature = "redis")]
        let redis = redis.as_ref();
        #[cfg(not(feature = "redis"))]
        let redis: Option<&()> = None;
        let limits = limit_store_plugin(config, clock, redis).map_err(one)?;
        // Revoked sessions are remembered where the limits count: shared when the IDs are.
        let sessions = match (config.login.final_action, config.login.session_keys()) {
            (FinalActionKind::Session, Some(keys)) => Some(Arc::new(Sessions::new(
                keys,
                config.login.session.clone(),
                Arc::clone(&limits),
            ))),
            _ => None,
        };
        Ok(Plugins {
            generator: Arc::new(RandomGenerator::new(config.code_format.clone())),
            credential: config.credential.schema(),
            sender: sender(config, clock).map_err(one)?,
            ids: id_store_plugin(config, clock, redis).map_err(one)?,
            kms: kms_plugin(config, redis).map_err(one)?,
            limits,
            replays: replay_store_plugin(config, clock, redis).map_err(one)?,
            final_action: final_action_plugin(config, sessions.as_ref()).map_err(one)?,
            sessions,
        })
    }
}

/// `OTP_FINAL_ACTION`: echo, session (with `sessions`) or the verified webhook.
fn final_action_plugin(
    config: &Config,
    sessions: Option<&Arc<Sessions>>,
) -> Result<Arc<dyn crate::plugin::FinalAction>, String> {
    match (config.login.final_action, sessions) {
        (FinalActionKind::Session, Some(sessions)) => {
            Ok(Arc::new(SessionFinalAction::new(Arc::clone(sessions))))
        }
        (FinalActionKind::Session, None) => {
            Err("OTP_FINAL_ACTION=session needs OTP_SESSION_KEY".to_owned())
        }
        #[cfg(feature = "webhook")]
        (FinalActionKind::Webhook, _) => match &config.login.verified_webhook {
            Some(c) => Ok(Arc::new(crate::login::VerifiedWebhook::new(c)?)),
            None => Err("OTP_FINAL_ACTION=webhook needs OTP_VERIFIED_WEBHOOK_URL".to_owned()),
        },
        _ => Ok(Arc::new(EchoCredential)),
    }
}

#[cfg(feature = "redis")]
type RedisHandle = RedisConnection;
#[cfg(not(feature = "redis"))]
type RedisHandle = ();
type Redis<'a> = Option<&'a RedisHandle>;

const NO_REDIS: &str = "OTP_ID_STORE=redis or OTP_KMS=redis needs REDIS_URL or REDIS_CLUSTER_NODES";

/// A store that lives where the list IDs do: in this process (its dead entries
/// swept on the ID store's timer), or in the shared Redis. The limits, the
/// revocations and the idempotency keys are thus shared exactly when the IDs are.
fn beside_ids<T: ?Sized>(
    config: &Config,
    redis: Redis<'_>,
    memory: impl FnOnce(usize, Duration) -> Arc<T>,
    remote: impl FnOnce(&RedisHandle) -> Result<Arc<T>, String>,
) -> Result<Arc<T>, String> {
    match &config.id_store {
        IdStoreConfig::Memory {
            capacity,
            sweep_every,
        } => Ok(memory(*capacity, *sweep_every)),
        IdStoreConfig::Redis => redis.ok_or_else(|| NO_REDIS.to_owned()).and_then(remote),
    }
}

/// `store`, swept every `every` (when built inside a Tokio runtime; the sweeper
/// lives as long as the runtime, so its handle is not kept).
fn swept<M: crate::plugin::Sweep>(store: M, clock: &Arc<dyn Clock>, every: Duration) -> Arc<M> {
    let store = Arc::new(store);
    if tokio::runtime::Handle::try_current().is_ok() {
        drop(crate::plugin::spawn_sweeper(
            Arc::clone(&store),
            Arc::clone(clock),
            every,
        ));
    }
    store
}

/// A Redis-backed plug-in built from the connection (`redis` builds), or the
/// reason there is none.
#[cfg(feature = "redis")]
macro_rules! remote {
    ($r:ident => $e:expr) => {
        |$r: &RedisHandle| Ok($e)
    };
}
#[cfg(not(feature = "redis"))]
macro_rules! remote {
    ($r:ident => $e:expr) => {
        |_: &RedisHandle| Err(NO_REDIS.to_owned())
    };
}

fn limit_store_plugin(
    config: &Config,
    clock: &Arc<dyn Clock>,
    redis: Redis<'_>,
) -> Result<Arc<dyn LimitStore>, String> {
    beside_ids(
        config,
        redis,
        |capacity, every| {
            swept(MemoryLimitStore::new(capacity), clock, every) as Arc<dyn LimitStore>
        },
        remote!(r => Arc::new(RedisLimitStore::new(r.clone())) as Arc<dyn LimitStore>),
    )
}

fn id_store_plugin(
    config: &Config,
    clock: &Arc<dyn Clock>,
    redis: Redis<'_>,
) -> Result<Arc<dyn IdStore>, String> {
    beside_ids(
        config,
        redis,
        |capacity, every| swept(MemoryIdStore::new(capacity), clock, every) as Arc<dyn IdStore>,
        remote!(r => Arc::new(RedisIdStore::new(r.clone())) as Arc<dyn IdStore>),
    )
}

fn replay_store_plugin(
    config: &Config,
    clock: &Arc<dyn Clock>,
    redis: Redis<'_>,
) -> Result<Arc<dyn ReplayStore>, String> {
    beside_ids(
        config,
        redis,
        |capacity, every| {
            swept(MemoryReplayStore::new(capacity), clock, every) as Arc<dyn ReplayStore>
        },
        remote!(r => Arc::new(RedisReplayStore::new(r.clone())) as Arc<dyn ReplayStore>),
    )
}

fn kms_plugin(config: &Config, redis: Redis<'_>) -> Result<Arc<dyn Kms>, String> {
    let retention = config.key_retention();
    match &config.kms {
        KmsConfig::Memory { rotation } => Ok(Arc::new(MemoryKms::new(*rotation, retention))),
        KmsConfig::Static { .. } => StaticKms::new(config.kms.static_keys())
            .map(|ring| Arc::new(ring) as Arc<dyn Kms>)
            .ok_or_else(|| "OTP_KEYS holds no usable key".to_owned()),
        #[cfg(feature = "redis")]
        KmsConfig::Redis { rotation, .. } => {
            let redis = redis.ok_or(NO_REDIS)?;
            RedisKms::new(
                redis.clone(),
                config.kms.master_keys(),
                *rotation,
                retention,
            )
            .map(|kms| Arc::new(kms) as Arc<dyn Kms>)
            .ok_or_else(|| "OTP_KMS_MASTER_KEY holds no usable key".to_owned())
        }
        #[cfg(not(feature = "redis"))]
        KmsConfig::Redis { .. } => {
            let _ = redis;
            Err(NO_REDIS.to_owned())
        }
    }
}

/// One sender, or a [`RoutingSender`] when several are listed. Reads the template
/// files; fails with a message naming the variable to fix.
#[cfg_attr(
    not(feature = "webhook"),
    expect(unused_variables, reason = "only the webhook sender needs the clock")
)]
fn sender(config: &Config, clock: &Arc<dyn Clock>) -> Result<Arc<dyn Sender>, String> {
    #[cfg(feature = "smtp")]
    let templates = match &config.smtp {
        Some(smtp) => Some(Arc::new(Templates::load(
            smtp.template_dir.as_deref(),
            &smtp.product_name,
        )?)),
        None => None,
    };
    let mut built: Vec<(SenderKind, Arc<dyn Sender>)> = Vec::new();
    for kind in &config.senders {
        let sender: Arc<dyn Sender> = match kind {
            SenderKind::Log => Arc::new(LogSender),
            #[cfg(feature = "smtp")]
            SenderKind::Smtp => {
                let (Some(smtp), Some(templates)) = (&config.smtp, &templates) else {
                    return Err("OTP_SENDER=smtp needs SMTP_HOST".into());
                };
                Arc::new(SmtpSender::new(smtp, Arc::clone(templates))?)
            }
            #[cfg(feature = "webhook")]
            SenderKind::Webhook => {
                let hook = config
                    .webhook
                    .as_ref()
                    .ok_or("OTP_SENDER=webhook needs OTP_WEBHOOK_URL")?;
                Arc::new(WebhookSender::new(hook, Arc::clone(clock))?)
            }
            #[cfg(not(all(feature = "smtp", feature = "webhook")))]
            other => {
                return Err(format!(
                    "OTP_SENDER={}: this build has no such sender",
                    other.name()
                ));
            }
        };
        built.push((*kind, sender));
    }
    let find = |k: SenderKind| {
        built
            .iter()
            .find(|(kind, _)| *kind == k)
            .map(|(_, s)| Arc::clone(s))
    };
    match built.as_slice() {
        [] => Ok(Arc::new(LogSender)),
        [(_, only)] => Ok(Arc::clone(only)),
        [(_, first), ..] => Ok(Arc::new(RoutingSender {
            email: find(SenderKind::Smtp),
            phone: find(SenderKind::Webhook),
            other: Arc::clone(first),
        })),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::PRODUCTION_COOKIE_PREFIX;

    pub(crate) fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(vars.iter().map(|(k, v)| (*k, *v)))
    }
    #[test]
    fn the_empty_environment_gives_the_original_defaults() {
        let c = load(&[]).expect("valid");
        assert_eq!(c.server.port, 3000);
        assert_eq!(c.server.environment, Environment::Development);
        assert_eq!(c.policy, OtpPolicy::default());
        assert_eq!(c.code_format.length(), 10);
        assert_eq!(c.cookie_name(), "o");
        assert_eq!(c.server.body_limit, 102_400);
        assert!(c.server.cors_origins.is_empty());
    }

    #[test]
    fn node_env_production_is_honoured() {
        let c = load(&[
            ("NODE_ENV", "Production"),
            ("OTP_SENDER", "log"),
            ("OTP_CREDENTIAL", "email"),
        ])
        .expect("valid");
        assert_eq!(c.server.environment, Environment::Production);
        assert_eq!(c.cookie_name(), format!("{PRODUCTION_COOKIE_PREFIX}o"));
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
    fn the_abuse_limits_default_on_and_each_bad_value_is_named() {
        use crate::plugin::limit_store::Rule;
        let c = load(&[]).expect("valid");
        let rule = |n, secs| Some(Rule::new(n, Duration::from_secs(secs)));
        assert_eq!(c.limits.sends_per_credential, rule(5, 600));
        assert_eq!(c.limits.failures_per_credential, rule(10, 3600));
        assert_eq!(c.limits.creates_per_ip, rule(30, 300));
        assert_eq!(c.limits.verifies_per_ip, rule(360, 3600));
        assert_eq!(c.limits.sends_global, None);
        assert_eq!(c.limits.sends_per_prefix, rule(50, 3600));
        assert_eq!(c.limits.phone_countries, None);
        assert!(c.limits.pumping.is_some());
        assert!(c.server.trusted_proxies.is_empty());
        assert!(
            c.describe().contains("sends/address 5/10m"),
            "{}",
            c.describe()
        );
        let e = load(&[
            ("OTP_LIMIT_SENDS_PER_CREDENTIAL", "5"),
            ("OTP_LIMIT_FAILURES_PER_CREDENTIAL", "0/1h"),
            ("OTP_LIMIT_CREATES_PER_IP", "30/5w"),
            ("OTP_LIMIT_VERIFIES_PER_IP", "lots"),
            ("OTP_LIMIT_SENDS_GLOBAL", "1/"),
            ("OTP_LIMIT_SENDS_PER_PREFIX", "-1/1h"),
            ("OTP_PHONE_COUNTRIES", "34,spain"),
            ("OTP_PUMPING_MIN_SENDS", "0"),
            ("OTP_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("OTP_LIMIT_KEY", "short"),
        ])
        .expect_err("refused");
        let text = e.to_string();
        for name in [
            "OTP_LIMIT_SENDS_PER_CREDENTIAL",
            "OTP_LIMIT_FAILURES_PER_CREDENTIAL",
            "OTP_LIMIT_CREATES_PER_IP",
            "OTP_LIMIT_VERIFIES_PER_IP",
            "OTP_LIMIT_SENDS_GLOBAL",
            "OTP_LIMIT_SENDS_PER_PREFIX",
            "OTP_PHONE_COUNTRIES",
            "OTP_PUMPING_MIN_SENDS",
            "OTP_TRUSTED_PROXIES",
            "OTP_LIMIT_KEY",
        ] {
            assert!(text.contains(name), "{name} missing from {text}");
        }
        assert!(!text.contains("short"), "the secret is not shown: {text}");
    }

    #[test]
    fn instances_with_one_kms_secret_agree_on_the_limit_key() {
        let key = Kek::generate().dangerous_to_base64();
        let vars = [
            ("OTP_KMS", "static"),
            ("OTP_KEYS", &format!("0011223344556677:{key}") as &str),
        ];
        let a = load(&vars).expect("valid");
        let b = load(&vars).expect("valid");
        assert_eq!(a.limit_secret(), b.limit_secret());
        // Without a shared secret each process draws its own.
        assert_ne!(load(&[]).expect("valid").limit_secret(), a.limit_secret());
        let own = Kek::generate().dangerous_to_base64();
        let c = load(&[vars[0], vars[1], ("OTP_LIMIT_KEY", &own)]).expect("valid");
        assert_ne!(c.limit_secret(), a.limit_secret());
        assert!(!format!("{c:?}").contains(&own), "Debug hides it");
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
            c.server.cors_origins,
            ["https://a.example", "http://localhost:5173"]
        );
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
        let smtp = c.smtp.expect("smtp settings");
        assert_eq!((smtp.tls, smtp.port), (crate::smtp::SmtpTls::Tls, 465));
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
        let hook = c.webhook.expect("webhook settings");
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
        let c = load(&[
            ("ENVIRONMENT", "production"),
            ("OTP_SENDER", "log"),
            ("OTP_CREDENTIAL", "email"),
        ])
        .expect("explicit log is allowed");
        assert_eq!(c.server.environment, Environment::Production);
    }

    #[test]
    fn codes_under_20_bits_are_refused_by_name() {
        let e = load(&[("OTP_LENGTH", "5"), ("OTP_ALPHABET", "0123456789")]).expect_err("weak");
        let text = e.to_string();
        assert!(
            text.contains("OTP_LENGTH") && text.contains("OTP_ALPHABET"),
            "{text}"
        );
        load(&[("OTP_LENGTH", "6"), ("OTP_ALPHABET", "0123456789")])
            .expect("6 digits is the floor");
    }

    #[test]
    fn an_unset_environment_on_a_public_address_is_refused() {
        let e = load(&[("HOST", "0.0.0.0")]).expect_err("refused");
        assert!(e.to_string().contains("ENVIRONMENT"), "{e}");
        load(&[("HOST", "0.0.0.0"), ("ENVIRONMENT", "development")]).expect("explicit");
        load(&[("HOST", "127.0.0.1")]).expect("loopback");
    }

    #[test]
    fn production_refuses_unsafe_settings_by_name() {
        let base = [("ENVIRONMENT", "production"), ("OTP_SENDER", "log")];
        let e = load(&base).expect_err("no explicit credential");
        assert!(e.to_string().contains("OTP_CREDENTIAL"), "{e}");
        let e = load(&[
            base[0],
            base[1],
            ("OTP_CREDENTIAL", "email"),
            ("CORS_ORIGIN", "http://app.example.com"),
        ])
        .expect_err("http origin");
        assert!(e.to_string().contains("CORS_ORIGIN"), "{e}");
        let e = load(&[
            base[0],
            ("OTP_SENDER", "smtp"),
            ("OTP_CREDENTIAL", "email"),
            ("SMTP_HOST", "smtp.example.com"),
            ("SMTP_FROM", "a@example.com"),
            ("SMTP_TLS", "none"),
        ])
        .expect_err("plain SMTP to another host");
        assert!(e.to_string().contains("SMTP_TLS"), "{e}");
        let c = load(&[base[0], base[1], ("OTP_CREDENTIAL", "email")]).expect("valid");
        assert!(c.warnings().iter().any(|w| w.contains("log")));
    }
}
