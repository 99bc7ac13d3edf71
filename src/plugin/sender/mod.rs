//! Delivering codes: the sender plug-in and its implementations.
//!
//! * [`LogSender`]: development only, prints codes to stdout.
//! * [`SmtpSender`]: real e-mail over SMTP (lettre, rustls), with [`Templates`].
//! * [`WebhookSender`]: a signed HTTPS POST for every other channel (SMS, WhatsApp, voice).
//! * [`RoutingSender`]: e-mail credentials to one sender, phone credentials to another.
//!
//! [`from_config`] builds the sender the configuration asks for.

mod locale;
mod log;
mod route;
mod smtp;
mod template;
mod webhook;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{Clock, Timestamp};
use crate::config::{Config, SenderKind};
use crate::error::BackendError;
use crate::plugin::credential::Credential;
use crate::plugin::generator::OtpCode;

pub use locale::Locale;
pub use log::LogSender;
pub use route::RoutingSender;
pub use smtp::SmtpSender;
pub use template::{Rendered, Templates};
pub use webhook::{WebhookSender, webhook_signature};

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

/// The sender `config` asks for (`OTP_SENDER`): one sender, or a [`RoutingSender`]
/// when several are listed. Reads the template files; fails with a message naming
/// the variable to fix.
pub fn from_config(config: &Config, clock: &Arc<dyn Clock>) -> Result<Arc<dyn Sender>, String> {
    let delivery = &config.delivery;
    let needs_templates = config.senders.contains(&SenderKind::Smtp);
    let templates = if needs_templates {
        Arc::new(Templates::load(
            delivery.template_dir.as_deref(),
            &delivery.product_name,
        )?)
    } else {
        Arc::new(Templates::builtin(&delivery.product_name))
    };
    let mut built: Vec<(SenderKind, Arc<dyn Sender>)> = Vec::new();
    for kind in &config.senders {
        let sender: Arc<dyn Sender> = match kind {
            SenderKind::Log => Arc::new(LogSender),
            SenderKind::Smtp => {
                let smtp = delivery
                    .smtp
                    .as_ref()
                    .ok_or("OTP_SENDER=smtp needs SMTP_HOST")?;
                Arc::new(SmtpSender::new(smtp, Arc::clone(&templates))?)
            }
            SenderKind::Webhook => {
                let hook = delivery
                    .webhook
                    .as_ref()
                    .ok_or("OTP_SENDER=webhook needs OTP_WEBHOOK_URL")?;
                Arc::new(WebhookSender::new(hook, Arc::clone(clock))?)
            }
        };
        built.push((*kind, sender));
    }
    let find = |k: SenderKind| {
        built
            .iter()
            .find(|(kind, _)| *kind == k)
            .map(|(_, s)| Arc::clone(s))
    };
    match built.as_slice() {
        [] => Ok(Arc::new(LogSender)),
        [(_, only)] => Ok(Arc::clone(only)),
        [(_, first), ..] => Ok(Arc::new(RoutingSender {
            email: find(SenderKind::Smtp),
            phone: find(SenderKind::Webhook),
            other: Arc::clone(first),
        })),
    }
}
