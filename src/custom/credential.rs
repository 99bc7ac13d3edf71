//! Credential schema: `OTP_CREDENTIAL=json` (any non-empty JSON), `email`, `phone`
//! (E.164) or `email_or_phone`.

use std::sync::Arc;

use secure_otp_server::Config;
use secure_otp_server::config::CredentialKind;
use secure_otp_server::plugin::{
    CredentialSchema, EmailCredential, EmailOrPhoneCredential, JsonCredential, PhoneCredential,
};

/// The schema this server uses.
pub fn schema(config: &Config) -> Arc<dyn CredentialSchema> {
    match config.credential {
        CredentialKind::Json => Arc::new(JsonCredential),
        CredentialKind::Email => Arc::new(EmailCredential),
        CredentialKind::Phone => Arc::new(PhoneCredential),
        CredentialKind::EmailOrPhone => Arc::new(EmailOrPhoneCredential),
    }
}
