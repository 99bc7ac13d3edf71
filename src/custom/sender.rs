//! Sender: how codes reach people. `OTP_SENDER=log` prints them (development only).

use std::sync::Arc;

use secure_otp_server::Config;
use secure_otp_server::config::SenderKind;
use secure_otp_server::plugin::{LogSender, Sender};

/// The sender this server uses.
pub fn sender(config: &Config) -> Arc<dyn Sender> {
    match config.sender {
        SenderKind::Log => Arc::new(LogSender),
    }
}
