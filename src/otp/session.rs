//! What every flow shares: opening and sealing the token list through the KMS and
//! the envelope, renewing the single-use ID, and handing a code to the sender.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::crypto::{self, Sealed};
use crate::error::{BackendError, Error};
use crate::otp::token::{Token, TokenList};
use crate::otp::{CookieUpdate, OtpService, Outcome};
use crate::plugin::{Delivery, ListId, Locale, OtpMessage, Sender};
use crate::telemetry::audit::{Audit, Event, Subject};
use crate::telemetry::metric;

/// What a cookie turned out to hold.
pub(super) enum Opened {
    /// No cookie, or an empty one.
    Missing,
    /// Not ours: undecodable, unknown or retired key, tampered.
    Unreadable,
    /// Authentic but not a valid list for the current policy.
    Malformed,
    /// A valid list.
    List(TokenList),
}

impl OtpService {
    pub(super) async fn open(&self, cookie: Option<&str>, now: Timestamp) -> Result<Opened, Error> {
        let Some(value) = cookie.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Opened::Missing);
        };
        let Ok(sealed) = Sealed::parse(value) else {
            return Ok(Opened::Unreadable);
        };
        let Some(kek) = self.kms.get(sealed.key_id(), now).await? else {
            return Ok(Opened::Unreadable);
        };
        let Ok(plain) = sealed.open(&kek, &self.cookie_name) else {
            return Ok(Opened::Unreadable);
        };
        Ok(
            match TokenList::decode_with(
                &plain,
                &self.policy,
                &|p| {
                    self.purposes
                        .get(p)
                        .map(|x| (&x.policy, x.generator.format()))
                },
                now,
            ) {
                Ok(list) => Opened::List(list),
                Err(_) => {
                    tracing::warn!("an authentic cookie held a malformed token list");
                    Opened::Malformed
                }
            },
        )
    }

    /// Seals `list` under the KMS's current key.
    pub(super) async fn seal(
        &self,
        list: &TokenList,
        now: Timestamp,
    ) -> Result<CookieUpdate, Error> {
        let (key_id, kek) = self.kms.current(now).await?;
        let value = crypto::seal_with(key_id, &kek, &self.cookie_name, list.encoded_len(), |out| {
            list.encode_into(out);
        });
        Ok(CookieUpdate::Set {
            value,
            expires: list.expires(),
        })
    }

    /// Opens the cookie for resend/verify: the list, its expired non-current tokens
    /// dropped, with a live current token; or the outcome to answer with.
    pub(super) async fn open_current<T>(
        &self,
        cookie: Option<&str>,
        now: Timestamp,
    ) -> Result<TokenList, Outcome<T>> {
        let mut list = match self.open(cookie, now).await {
            Ok(Opened::List(list)) => list,
            Ok(Opened::Missing) => return Err(Outcome::keep(Error::InvalidCookie)),
            Ok(Opened::Unreadable | Opened::Malformed) => {
                return Err(Outcome::clear(Error::InvalidCookie));
            }
            Err(e) => return Err(Outcome::keep(e)),
        };
        let Some(current) = list.tokens.pop() else {
            return Err(Outcome::clear(Error::InvalidCookie));
        };
        if !current.is_live(now) {
            return Err(Outcome::keep(Error::Expired));
        }
        list.tokens.retain(|t| t.is_live(now));
        list.tokens.push(current);
        Ok(list)
    }

    /// Consumes `id` and issues its successor live until `expires`: every rewrite of
    /// a cookie starts here, so an older copy of the cookie dies. An ID another
    /// request consumed moments ago answers `409 OTP:CONFLICT` and keeps the cookie
    /// (the winner's answer replaces it); an unknown or stale ID, or a store
    /// failure, is the outcome to answer with, the cookie cleared.
    pub(super) async fn renew_id<T>(
        &self,
        id: ListId,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<ListId, Outcome<T>> {
        match self.ids.replace(id, expires, now).await {
            Ok(Some(id)) => Ok(id),
            // A concurrent request with this cookie won moments ago: its answer
            // carries the next cookie, which clearing here would destroy.
            Ok(None) if self.ids.just_consumed(id, now).await.unwrap_or(false) => {
                Err(Outcome::keep(Error::Conflict))
            }
            Ok(None) => Err(Outcome::clear(Error::InvalidCookie)),
            Err(e) => Err(Outcome::clear(e.into())),
        }
    }

    /// `Ok` when `id` is live; otherwise the outcome a spent ID gets from
    /// [`OtpService::renew_id`] (`409` moments after a concurrent use, else `400`
    /// with the cookie cleared), without spending anything.
    pub(super) async fn check_live<T>(&self, id: ListId, now: Timestamp) -> Result<(), Outcome<T>> {
        match self.ids.is_live(id, now).await {
            Ok(true) => Ok(()),
            Ok(false) if self.ids.just_consumed(id, now).await.unwrap_or(false) => {
                Err(Outcome::keep(Error::Conflict))
            }
            Ok(false) => Err(Outcome::clear(Error::InvalidCookie)),
            Err(e) => Err(Outcome::keep(e.into())),
        }
    }

    /// Hands `token`'s code to the sender, auditing the outcome about `subject`
    /// (the token's credential). With `OTP_HIDE_UNDELIVERABLE` the send
    /// runs after the answer, so neither its outcome nor its duration can tell a
    /// client whether the address exists: the answer is always "sent" and a
    /// failure is only logged.
    pub(super) async fn deliver(
        &self,
        token: &Token,
        subject: &Subject<'_>,
        locale: &Locale,
        resent: bool,
        now: Timestamp,
    ) -> Result<Delivery, Error> {
        debug_assert!(subject.is_about(&token.credential));
        if self.test_credentials.code_for(&token.credential).is_some() {
            // A test credential's code is fixed and known: there is nothing to send.
            self.limits
                .audit()
                .record_about(Event::TestCredentialUsed, subject);
            return Ok(Delivery::Sent);
        }
        let link = self.links.as_ref().and_then(|l| l.url_for(token));
        let purpose = self.purposes.name(token.purpose);
        let send = Send {
            sender: &*self.sender,
            budget: self.send_budget,
            audit: self.limits.audit(),
            resent,
            link: link.as_deref(),
            purpose,
        };
        if !self.limits.policy().hide_undeliverable {
            return send.deliver(token, subject, locale, now).await;
        }
        let sender = Arc::clone(&self.sender);
        let budget = self.send_budget;
        let audit = self.limits.audit().clone();
        let token = token.clone();
        let locale = locale.clone();
        let purpose = purpose.map(str::to_owned);
        // The outcome is logged inside (under the request's span); nobody waits for it.
        let send = async move {
            let send = Send {
                sender: &*sender,
                budget,
                audit: &audit,
                resent,
                link: link.as_deref(),
                purpose: purpose.as_deref(),
            };
            let subject = Subject::of(&token.credential);
            let _ = send.deliver(&token, &subject, &locale, now).await;
        };
        tokio::spawn(tracing::Instrument::instrument(
            send,
            tracing::Span::current(),
        ));
        Ok(Delivery::Sent)
    }

    /// Seals `list` and pairs the cookie with `result`; a sealing failure clears
    /// the cookie (its ID is already spent).
    pub(super) async fn sealed<T>(
        &self,
        list: &TokenList,
        now: Timestamp,
        result: Result<T, Error>,
    ) -> Outcome<T> {
        match self.seal(list, now).await {
            Ok(cookie) => Outcome {
                cookie,
                result,
                state: None,
            },
            Err(e) => Outcome::clear(e),
        }
    }
}

/// One send: the sender, its time budget, and where its outcome is recorded.
struct Send<'a> {
    sender: &'a dyn Sender,
    budget: Duration,
    audit: &'a Audit,
    resent: bool,
    link: Option<&'a str>,
    purpose: Option<&'a str>,
}

impl Send<'_> {
    /// Sends `token`'s code within the budget, and counts and audits the outcome.
    async fn deliver(
        &self,
        token: &Token,
        subject: &Subject<'_>,
        locale: &Locale,
        now: Timestamp,
    ) -> Result<Delivery, Error> {
        let delivery = deliver(self, token, locale, now).await;
        let (event, outcome) = match &delivery {
            Ok(Delivery::Sent) => (
                Event::CodeSent {
                    resent: self.resent,
                },
                "sent",
            ),
            Ok(Delivery::Rejected) => (
                Event::SendFailed {
                    outcome: "rejected",
                },
                "rejected",
            ),
            Err(_) => (Event::SendFailed { outcome: "failed" }, "failed"),
        };
        metric::code_sent(&token.credential, outcome);
        self.audit.record_about(event, subject);
        delivery
    }
}

/// Sends `token`'s code (and link) through `send.sender` within its budget.
/// Failures are logged with the credential masked, never the code.
async fn deliver(
    send: &Send<'_>,
    token: &Token,
    locale: &Locale,
    now: Timestamp,
) -> Result<Delivery, Error> {
    let Some(code) = &token.otp else {
        return Ok(Delivery::Rejected);
    };
    let message = OtpMessage {
        credential: &token.credential,
        code,
        expires: token.expires,
        valid_for: Duration::from_millis(token.expires.millis_since(now)),
        locale,
        link: send.link,
        purpose: send.purpose,
    };
    let budget = send.budget;
    let sent = tokio::time::timeout(budget, send.sender.send(&message))
        .await
        .unwrap_or_else(|_| {
            Err(BackendError::Unavailable(format!(
                "the sender took longer than {} s",
                budget.as_secs()
            )))
        });
    match sent {
        Ok(Delivery::Sent) => Ok(Delivery::Sent),
        Ok(Delivery::Rejected) => {
            tracing::info!(credential = %token.credential.masked(), "the sender refused a credential");
            Ok(Delivery::Rejected)
        }
        Err(e) => {
            tracing::warn!(credential = %token.credential.masked(), error = %e, "delivery failed");
            Err(e.into())
        }
    }
}
