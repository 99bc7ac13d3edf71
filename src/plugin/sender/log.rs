//! The development sender: codes in the log.

use async_trait::async_trait;

use crate::error::BackendError;
use crate::plugin::sender::{Delivery, OtpMessage, Sender};

/// Development sender: logs `otp-sender credential=<credential> otp=<code> expires=<iso>`
/// (and `link=<url>` with magic links)
/// at `info`, through the same log stream (text or JSON) as everything else.
///
/// This is the only place a code or a full credential is printed; the server refuses
/// it in production unless `OTP_SENDER=log` is set explicitly.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogSender;

#[async_trait]
impl Sender for LogSender {
    async fn send(&self, m: &OtpMessage<'_>) -> Result<Delivery, BackendError> {
        tracing::info!(
            credential = %m.credential.as_str(),
            otp = %m.code.expose(),
            expires = %m.expires.to_iso8601(),
            link = m.link,
            purpose = m.purpose,
            "otp-sender"
        );
        Ok(Delivery::Sent)
    }
}
