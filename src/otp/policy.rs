//! The rules of a session: lifetimes, attempts, blocks, resends and size caps.

use std::time::Duration;

use crate::config::Env;

/// The OTP rules, with the original's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpPolicy {
    /// How long a code (and the session) lives after create or resend (`OTP_MAX_AGE`, 180 s).
    pub max_age: Duration,
    /// Wrong guesses allowed per code (`OTP_MAX_ATTEMPTS`, 3).
    pub max_attempts: u8,
    /// When remaining attempts fall to this or below, a temporary block applies
    /// (`OTP_ATTEMPTS_BLOCK`, 1; 0 disables).
    pub attempts_block: u8,
    /// Length of the temporary block (`OTP_INVALID_BLOCK_SECONDS`, 20 s; 0 disables).
    pub invalid_block: Duration,
    /// Wait before a resend (`OTP_RESEND_BLOCK_SECONDS`, 30 s).
    pub resend_block: Duration,
    /// Only one resend per code (`OTP_ALLOW_ONLY_ONE_RESENDING`, true).
    pub only_one_resend: bool,
    /// Credentials per session (`OTP_MAX_CREDENTIALS`, 3).
    pub max_credentials: usize,
    /// Longest credential in bytes (`OTP_MAX_CREDENTIAL_LENGTH`, 256), so the cookie
    /// always fits the browsers' 4096-byte limit.
    pub max_credential_len: usize,
}

impl Default for OtpPolicy {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(180),
            max_attempts: 3,
            attempts_block: 1,
            invalid_block: Duration::from_secs(20),
            resend_block: Duration::from_secs(30),
            only_one_resend: true,
            max_credentials: 3,
            max_credential_len: 256,
        }
    }
}

impl OtpPolicy {
    /// Reads `OTP_MAX_AGE`, `OTP_MAX_ATTEMPTS`, `OTP_ATTEMPTS_BLOCK`,
    /// `OTP_INVALID_BLOCK_SECONDS`, `OTP_RESEND_BLOCK_SECONDS`,
    /// `OTP_ALLOW_ONLY_ONE_RESENDING`, `OTP_MAX_CREDENTIALS` and `OTP_MAX_CREDENTIAL_LENGTH`.
    pub fn read(env: &mut Env) -> Self {
        let mut policy = Self::default().overridden(env, "OTP_");
        policy.max_credentials = env.number("OTP_MAX_CREDENTIALS", 3usize, 1, 10);
        policy.max_credential_len = env.number("OTP_MAX_CREDENTIAL_LENGTH", 256usize, 8, 2048);
        policy
    }

    /// This policy with the per-code rules read from `<prefix>MAX_AGE`,
    /// `<prefix>MAX_ATTEMPTS`, `<prefix>ATTEMPTS_BLOCK`, `<prefix>INVALID_BLOCK_SECONDS`,
    /// `<prefix>RESEND_BLOCK_SECONDS` and `<prefix>ALLOW_ONLY_ONE_RESENDING` where set
    /// (a purpose's overrides: `OTP_PURPOSE_LOGIN_`). The session caps stay.
    pub fn overridden(&self, env: &mut Env, prefix: &str) -> Self {
        let name = |suffix: &str| format!("{prefix}{suffix}");
        let max_attempts = env.number(&name("MAX_ATTEMPTS"), self.max_attempts, 1, 20);
        let attempts_block = env.number(&name("ATTEMPTS_BLOCK"), self.attempts_block, 0, 20);
        if attempts_block >= max_attempts {
            env.fail(
                &name("ATTEMPTS_BLOCK"),
                &attempts_block.to_string(),
                &format!("must be lower than {}", name("MAX_ATTEMPTS")),
            );
        }
        let secs = |d: Duration| d.as_secs();
        Self {
            max_age: env.seconds(&name("MAX_AGE"), secs(self.max_age), 10, 86_400),
            max_attempts,
            attempts_block,
            invalid_block: env.seconds(
                &name("INVALID_BLOCK_SECONDS"),
                secs(self.invalid_block),
                0,
                86_400,
            ),
            resend_block: env.seconds(
                &name("RESEND_BLOCK_SECONDS"),
                secs(self.resend_block),
                0,
                86_400,
            ),
            only_one_resend: env.boolean(&name("ALLOW_ONLY_ONE_RESENDING"), self.only_one_resend),
            ..self.clone()
        }
    }

    /// How long a key-encryption key must stay readable after it stops sealing: a
    /// cookie sealed just before a rotation lives `max_age` more, plus a second of
    /// slack for requests in flight.
    pub fn key_retention(&self) -> Duration {
        self.max_age + Duration::from_secs(1)
    }
}
