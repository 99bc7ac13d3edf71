//! Sender: how codes reach people. `OTP_SENDER=log` prints them (development only),
//! `smtp` sends e-mail (`SMTP_*`), `webhook` posts to `OTP_WEBHOOK_URL` (SMS, WhatsApp,
//! voice), and a list such as `smtp,webhook` routes e-mail credentials to SMTP and
//! phone credentials to the webhook.

use std::sync::Arc;

use secure_otp_server::plugin::{Sender, sender};
use secure_otp_server::{Clock, Config};

/// The sender this server uses.
pub fn sender(config: &Config, clock: &Arc<dyn Clock>) -> Result<Arc<dyn Sender>, String> {
    sender::from_config(config, clock)
}
