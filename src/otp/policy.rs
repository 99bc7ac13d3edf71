//! The rules of a session: lifetimes, attempts, blocks, resends and size caps.

use std::time::Duration;

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
