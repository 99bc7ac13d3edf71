//! Delivering codes: the sender plug-in and the development `log` sender.

use std::fmt;
use std::io::Write as _;

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::error::BackendError;
use crate::plugin::credential::Credential;
use crate::plugin::generator::OtpCode;

/// One code to deliver.
#[derive(Debug)]
pub struct OtpMessage<'a> {
    /// Where to send it.
    pub credential: &'a Credential,
    /// The code.
    pub code: &'a OtpCode,
    /// When the code stops working.
    pub expires: Timestamp,
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a rejected delivery must not leave a usable code behind"]
pub enum Delivery {
    /// Handed to the channel.
    Sent,
    /// The channel refused this credential for good (e.g. an unknown mailbox):
    /// the client gets `400 CREDENTIAL:INVALID`.
    Rejected,
}

/// Sends codes. Transport failures (server down, timeout) are `Err` and answer 503;
/// a credential the channel refuses is `Ok(Delivery::Rejected)`.
/// Implementations must never log the code.
#[async_trait]
pub trait Sender: Send + Sync + fmt::Debug {
    /// Delivers one code.
    async fn send(&self, message: &OtpMessage<'_>) -> Result<Delivery, BackendError>;
}

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
