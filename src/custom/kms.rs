//! KMS. Default: in-memory keys rotated every `OTP_KEK_ROTATION_SECONDS`, the static
//! `OTP_KEYS` ring, or keys shared through Redis (`OTP_KMS=redis`), encrypted under
//! `OTP_KMS_MASTER_KEY` and rotated by one instance for all. To use a cloud KMS,
//! implement `secure_otp_server::plugin::Kms`, check it with
//! `secure_otp_server::testing::kms_contract` (feature `test-util`), and return it.

use std::sync::Arc;

use secure_otp_server::Config;
use secure_otp_server::plugin::Kms;

use super::Settings;

/// The KMS this server uses.
pub fn kms(default: Arc<dyn Kms>, _config: &Config, _settings: &Settings) -> Arc<dyn Kms> {
    default
}
