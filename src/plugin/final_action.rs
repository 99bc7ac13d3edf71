//! What happens once a code is verified: the final-action plug-in and what it is told.

use std::fmt;
use std::net::IpAddr;

use crate::http::json::JsonAnswer;
use async_trait::async_trait;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::clock::Timestamp;
use crate::error::BackendError;
use crate::plugin::credential::{Channel, Credential};

/// What a successful verification proved, handed to the [`FinalAction`].
///
/// Only [`Verified::address`] on [`Verified::channel`] is proven: the person answering
/// received a code sent there. With the `json` credential schema, any other field of
/// [`Verified::credential`] (a `userId`, a role, a name) is **unverified**: the client
/// wrote it, and nothing checked it. Decide who is logged in from the address, never
/// from those fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Verified {
    /// The credential as the session held it (its canonical text).
    pub credential: Credential,
    /// The address the code was delivered to (an e-mail address or an E.164 number);
    /// the whole credential's text when it is neither.
    pub address: String,
    /// The channel the code travelled on.
    pub channel: Channel,
    /// The client's IP address, when the server knows it.
    pub client_ip: Option<IpAddr>,
    /// The verify request's headers (for example a device or tenant header your
    /// frontend sends). The session cookie is among them; do not log them whole.
    pub headers: HeaderMap,
    /// The session's purpose (`login`, `signup`, ...) once purposes are configured.
    pub purpose: Option<String>,
    /// When the code (or magic link) was accepted.
    pub verified_at: Timestamp,
    /// The verify request's id (`X-Request-Id`, honoured or generated), for logs
    /// and receivers that correlate.
    pub request_id: Option<String>,
}

impl Verified {
    /// What `credential` proves at `verified_at`, for a request from `client_ip`
    /// with `headers` (its `X-Request-Id` becomes [`Verified::request_id`]).
    pub fn new(
        credential: Credential,
        client_ip: Option<IpAddr>,
        headers: HeaderMap,
        verified_at: Timestamp,
    ) -> Self {
        let (address, channel) = match credential.contact() {
            Some(contact) => (contact.address().to_owned(), contact.channel()),
            None => (credential.as_str().to_owned(), Channel::Other),
        };
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Self {
            credential,
            address,
            channel,
            client_ip,
            headers,
            purpose: None,
            verified_at,
            request_id,
        }
    }
}

/// Runs after a successful verification, at most once per session; its response is
/// returned to the client (the server adds the cookie deletion). Typical uses: issue a
/// session or a JWT, mark an address verified, approve a pending action.
///
/// An `Err` answers `503` (`Unavailable`) or `500` (`Internal`); the code stays used.
#[async_trait]
pub trait FinalAction: Send + Sync + fmt::Debug {
    /// Builds the response for a verified session.
    async fn run(&self, verified: Verified) -> Result<Response, BackendError>;
}

/// The original's final action: `200 {"credential": ..., "message": "successfully verified"}`.
#[derive(Debug, Default, Clone, Copy)]
pub struct EchoCredential;

#[async_trait]
impl FinalAction for EchoCredential {
    async fn run(&self, verified: Verified) -> Result<Response, BackendError> {
        let body = serde_json::json!({
            "credential": verified.credential.as_str(),
            "message": "successfully verified",
        });
        Ok(JsonAnswer(body).into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(text: &str) -> Verified {
        let credential = Credential::new(text.to_owned()).expect("non-empty");
        Verified::new(
            credential,
            None,
            HeaderMap::new(),
            Timestamp::from_millis(0),
        )
    }

    #[test]
    fn the_delivered_address_and_channel_are_named() {
        let v = verified(r#"{"email":"Ann@Example.COM","userId":"admin"}"#);
        assert_eq!(
            (v.address.as_str(), v.channel),
            ("Ann@example.com", Channel::Email)
        );
        let v = verified(r#"{"phone":"+34600000012"}"#);
        assert_eq!(
            (v.address.as_str(), v.channel),
            ("+34600000012", Channel::Phone)
        );
        let v = verified("42");
        assert_eq!((v.address.as_str(), v.channel), ("42", Channel::Other));
    }
}
