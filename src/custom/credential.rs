//! Credential schema. Default: `OTP_CREDENTIAL` picks `json` (any non-empty JSON),
//! `email`, `phone` (E.164) or `email_or_phone`. To accept another shape (an
//! employee number, a username), implement `secure_otp_server::plugin::CredentialSchema`
//! and return `Arc::new(YourSchema)`.

use std::sync::Arc;

use secure_otp_server::Config;
use secure_otp_server::plugin::CredentialSchema;

use super::Settings;

/// The schema this server uses.
pub fn schema(
    default: Arc<dyn CredentialSchema>,
    _config: &Config,
    _settings: &Settings,
) -> Arc<dyn CredentialSchema> {
    default
}
