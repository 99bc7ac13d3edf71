//! Code generator. Default: uniform CSPRNG codes of `OTP_LENGTH` characters of
//! `OTP_ALPHABET` (`RandomGenerator`). To replace it, implement
//! `secure_otp_server::plugin::OtpGenerator` and return `Arc::new(YourGenerator)`.

use std::sync::Arc;

use secure_otp_server::Config;
use secure_otp_server::plugin::OtpGenerator;

use super::Settings;

/// The generator this server uses.
pub fn generator(
    default: Arc<dyn OtpGenerator>,
    _config: &Config,
    _settings: &Settings,
) -> Arc<dyn OtpGenerator> {
    default
}
