//! The development sender: codes on stdout.

use std::io::Write as _;

use async_trait::async_trait;

use crate::error::BackendError;
use crate::plugin::sender::{Delivery, OtpMessage, Sender};

/// Development sender: writes `credential=<credential> otp=<code> expires=<iso>` to stdout.
///
/// This is the only place a code or a full credential is printed; the server refuses
/// it in production unless `OTP_SENDER=log` is set explicitly.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogSender;

#[async_trait]
impl Sender for LogSender {
    async fn send(&self, m: &OtpMessage<'_>) -> Result<Delivery, BackendError> {
        let line = format!(
            "otp-sender: credential={} otp={} expires={}\n",
            m.credential.as_str(),
            m.code.expose(),
            m.expires.to_iso8601()
        );
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| BackendError::Internal(format!("log sender: {e}")))?;
        Ok(Delivery::Sent)
    }
}
