//! Routing by credential kind: e-mail to one sender, phone numbers to another.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::BackendError;
use crate::plugin::credential::Contact;
use crate::plugin::sender::{Delivery, OtpMessage, Sender};

/// Sends e-mail credentials through `email`, phone credentials through `phone`,
/// and anything else (or a kind without its own sender) through `other`.
///
/// `OTP_SENDER=smtp,webhook` builds one with SMTP for e-mail and the webhook for phones.
#[derive(Debug, Clone)]
pub struct RoutingSender {
    /// For `{"email": ...}` credentials.
    pub email: Option<Arc<dyn Sender>>,
    /// For `{"phone": ...}` credentials.
    pub phone: Option<Arc<dyn Sender>>,
    /// For everything else.
    pub other: Arc<dyn Sender>,
}

#[async_trait]
impl Sender for RoutingSender {
    async fn send(&self, m: &OtpMessage<'_>) -> Result<Delivery, BackendError> {
        let route = match m.credential.contact() {
            Some(Contact::Email(_)) => self.email.as_ref(),
            Some(Contact::Phone(_)) => self.phone.as_ref(),
            None => None,
        };
        route.unwrap_or(&self.other).send(m).await
    }
}
