//! Sender. Default: `OTP_SENDER` picks `log` (development), `smtp`, `webhook`, or a
//! list such as `smtp,webhook` (e-mail to SMTP, phone numbers to the webhook).
//! To deliver through your own gateway, implement `secure_otp_server::plugin::Sender`
//! and return it, or route only phone numbers to it with `RoutingSender`
//! (`examples/sms_gateway.rs` shows both, with its own settings).

use std::sync::Arc;

use secure_otp_server::Config;
use secure_otp_server::plugin::Sender;

use super::Settings;

/// The sender this server uses.
pub fn sender(default: Arc<dyn Sender>, _config: &Config, _settings: &Settings) -> Arc<dyn Sender> {
    default
}
