//! Login settings: `OTP_FINAL_ACTION`, `OTP_SESSION_*`, `OTP_VERIFIED_WEBHOOK_*`,
//! `OTP_MAGIC_LINK`, `OTP_PUBLIC_URL` and `OTP_DEMO_PAGE`.

use secrecy::ExposeSecret as _;
use zeroize::Zeroizing;

use crate::config::{Env, ServerConfig};
use crate::crypto::decode_key;
use crate::login::session::SessionSettings;
use crate::login::token::SessionKeys;
#[cfg(feature = "webhook")]
use crate::login::verified_webhook::VerifiedWebhookConfig;

/// What runs once a code is verified (`OTP_FINAL_ACTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalActionKind {
    /// The original's answer: the verified credential, echoed (default).
    Echo,
    /// A signed session token in a cookie (`/api/session`, logout, JWKS).
    Session,
    /// A signed POST to the app's backend, whose answer is relayed.
    Webhook,
}

/// Ed25519 seeds of `OTP_SESSION_KEY`, never printed.
pub struct SessionSeeds(Vec<Zeroizing<[u8; 32]>>);

impl std::fmt::Debug for SessionSeeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionSeeds([REDACTED; {}])", self.0.len())
    }
}

/// The login settings.
#[derive(Debug)]
#[non_exhaustive]
pub struct LoginConfig {
    /// `OTP_FINAL_ACTION`: `echo` (default), `session` or `webhook`.
    pub final_action: FinalActionKind,
    /// `OTP_SESSION_KEY` (or `_FILE`): base64url 32-byte Ed25519 seeds, comma-separated,
    /// the first signs; generated at start-up in development when unset.
    pub session_seeds: SessionSeeds,
    /// How sessions are issued.
    pub session: SessionSettings,
    /// `OTP_VERIFIED_WEBHOOK_*`, with `OTP_FINAL_ACTION=webhook`.
    #[cfg(feature = "webhook")]
    pub verified_webhook: Option<VerifiedWebhookConfig>,
    /// `OTP_MAGIC_LINK`: a link beside every code (needs `OTP_PUBLIC_URL`).
    pub magic_link: bool,
    /// `OTP_PUBLIC_URL`: where browsers reach this server (`https://otp.example.com`).
    pub public_url: Option<String>,
    /// `OTP_MAGIC_LINK_REDIRECT`: where a confirmed link lands (a path, default `/`).
    pub link_redirect: String,
    /// `OTP_DEMO_PAGE`: serve the demo page at `/` (refused in production).
    pub demo_page: bool,
}

impl LoginConfig {
    /// Reads the login settings, recording every problem in `env`.
    pub fn read(env: &mut Env, server: &ServerConfig, warnings: &mut Vec<String>) -> Self {
        let production = server.is_production();
        let final_action = env.choice(
            "OTP_FINAL_ACTION",
            FinalActionKind::Echo,
            &[
                ("echo", FinalActionKind::Echo),
                ("session", FinalActionKind::Session),
                ("webhook", FinalActionKind::Webhook),
            ],
        );
        let session_seeds = session_seeds(env, final_action, production, warnings);
        let public_url = public_url(env, production);
        let session = SessionSettings {
            max_age: env.seconds("OTP_SESSION_MAX_AGE", 86_400, 60, 366 * 86_400),
            token_in_body: env.boolean("OTP_SESSION_TOKEN_IN_BODY", false),
            secure: server.cookie_secure,
            issuer: public_url.clone(),
        };
        #[cfg(feature = "webhook")]
        let verified_webhook = (final_action == FinalActionKind::Webhook)
            .then(|| VerifiedWebhookConfig::read(env))
            .flatten();
        #[cfg(not(feature = "webhook"))]
        if final_action == FinalActionKind::Webhook {
            env.problem("OTP_FINAL_ACTION=webhook: this build has no webhook support (the `webhook` feature)");
        }
        let magic_link = env.boolean("OTP_MAGIC_LINK", false);
        if magic_link && public_url.is_none() {
            env.problem(
                "OTP_MAGIC_LINK=true needs OTP_PUBLIC_URL, the address browsers reach this server at \
                 (for example https://otp.example.com): links are built from it",
            );
        }
        let link_redirect = env.get("OTP_MAGIC_LINK_REDIRECT").unwrap_or("/").to_owned();
        // A path on this site only: anything else would make the link an open redirect.
        if !link_redirect.starts_with('/')
            || link_redirect.starts_with("//")
            || link_redirect.contains('\\')
            || !link_redirect.bytes().all(|b| b.is_ascii_graphic())
        {
            env.fail(
                "OTP_MAGIC_LINK_REDIRECT",
                &link_redirect,
                "a path on this site in ASCII (percent-encode other characters), such as / or /welcome",
            );
        }
        let demo_page = env.boolean("OTP_DEMO_PAGE", false);
        if demo_page && production {
            env.fail(
                "OTP_DEMO_PAGE",
                "true",
                "the demo page is for development: it is refused in production",
            );
        }
        Self {
            final_action,
            session_seeds,
            session,
            #[cfg(feature = "webhook")]
            verified_webhook,
            magic_link,
            public_url,
            link_redirect,
            demo_page,
        }
    }

    /// The session signing keys (the configured seeds; checked when read).
    pub fn session_keys(&self) -> Option<SessionKeys> {
        SessionKeys::from_seeds(&self.session_seeds.0)
    }
}

fn session_seeds(
    env: &mut Env,
    final_action: FinalActionKind,
    production: bool,
    warnings: &mut Vec<String>,
) -> SessionSeeds {
    let mut seeds = Vec::new();
    if let Some(raw) = env.secret("OTP_SESSION_KEY") {
        for (i, item) in raw
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            match decode_key(item) {
                Some(seed) => seeds.push(seed),
                None => env.problem(format!(
                    "OTP_SESSION_KEY entry {}: expected base64url of 32 random bytes \
                     (secure-otp-server keygen); the value is not shown: it is secret",
                    i + 1
                )),
            }
        }
    }
    if seeds.is_empty() && final_action == FinalActionKind::Session {
        if production {
            env.problem(
                "OTP_FINAL_ACTION=session in production needs OTP_SESSION_KEY (or OTP_SESSION_KEY_FILE): \
                 base64url of 32 random bytes (secure-otp-server keygen), comma-separated while rotating, \
                 the new key first",
            );
        } else {
            warnings.push(
                "OTP_SESSION_KEY is unset: sessions are signed with a key generated at start-up, \
                 so they end when the process does and other instances refuse them"
                    .to_owned(),
            );
            let mut seed = Zeroizing::new([0u8; 32]);
            rand::fill(&mut seed[..]);
            seeds.push(seed);
        }
    }
    SessionSeeds(seeds)
}

fn public_url(env: &mut Env, production: bool) -> Option<String> {
    let raw = env
        .get("OTP_PUBLIC_URL")?
        .trim()
        .trim_end_matches('/')
        .to_owned();
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://").filter(|_| !production));
    let ok = rest.is_some_and(|host| {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]/_".contains(&b))
    });
    if !ok {
        env.fail(
            "OTP_PUBLIC_URL",
            &raw,
            "an https:// origin such as https://otp.example.com (http:// only in development), \
             without query or fragment",
        );
        return None;
    }
    Some(raw)
}
