//! Code generator: uniform CSPRNG codes of `OTP_LENGTH` characters of `OTP_ALPHABET`.

use std::sync::Arc;

use secure_otp_server::Config;
use secure_otp_server::plugin::{OtpGenerator, RandomGenerator};

/// The generator this server uses.
pub fn generator(config: &Config) -> Arc<dyn OtpGenerator> {
    Arc::new(RandomGenerator::new(config.code_format.clone()))
}
