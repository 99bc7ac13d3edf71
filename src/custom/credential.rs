//! Credential schema: `OTP_CREDENTIAL=json` (any non-empty JSON) or `email`.

use std::sync::Arc;

use secure_otp_server::Config;
use secure_otp_server::config::CredentialKind;
use secure_otp_server::plugin::{CredentialSchema, EmailCredential, JsonCredential};

/// The schema this server uses.
pub fn schema(config: &Config) -> Arc<dyn CredentialSchema> {
    match config.credential {
        CredentialKind::Json => Arc::new(JsonCredential),
        CredentialKind::Email => Arc::new(EmailCredential),
    }
}
