//! Delivering codes: the sender plug-in and its implementations.
//!
//! * [`LogSender`]: development only, prints codes to the log.
//! * [`RoutingSender`]: e-mail credentials to one sender, phone credentials to another.
//!
//! The network senders are adapters beside their settings: `crate::smtp` (e-mail)
//! and `crate::webhook` (SMS, WhatsApp, voice gateways).

mod locale;
mod log;
mod route;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::error::BackendError;
use crate::plugin::credential::Credential;
use crate::plugin::generator::OtpCode;

pub use locale::Locale;
pub use log::LogSender;
pub use route::RoutingSender;

/// One code to deliver.
#[derive(Debug)]
pub struct OtpMessage<'a> {
    /// Where to send it.
    pub credential: &'a Credential,
    /// The code.
    pub code: &'a OtpCode,
    /// When the code stops working.
    pub expires: Timestamp,
    /// How long the code works from now (for "valid for N minutes").
    pub valid_for: Duration,
    /// The languages the client asked for, best first (English when none fits).
    pub locale: &'a Locale,
    /// A magic link that finishes the same token (`OTP_MAGIC_LINK`); deliver it
    /// beside the code when set.
    pub link: Option<&'a str>,
    /// The code's purpose (`login`, `signup`, ...) when `OTP_PURPOSES` names them.
    pub purpose: Option<&'a str>,
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
/// Implementations must never log the code, and log recipients only masked.
#[async_trait]
pub trait Sender: Send + Sync + fmt::Debug {
    /// Delivers one code.
    async fn send(&self, message: &OtpMessage<'_>) -> Result<Delivery, BackendError>;
}
