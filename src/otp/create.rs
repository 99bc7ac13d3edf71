//! `create`: start a session, add a credential to it, or switch back to a pending one.

use std::net::IpAddr;

use crate::clock::Timestamp;
use crate::error::Error;
use crate::limit::{Admission, Request};
use crate::otp::session::Opened;
use crate::otp::token::{Token, TokenList};
use crate::otp::{OtpService, Outcome, SessionState};
use crate::plugin::{Credential, Delivery, Locale};
use crate::telemetry::audit::{Event, Subject};

impl OtpService {
    /// Sends a code to `credential`, in the cookie's session when it has one.
    ///
    /// * no cookie, a cookie we cannot open, or one whose tokens all expired: a fresh session;
    /// * a credential already pending: switch to it (nothing is sent);
    /// * a new credential: added, unless the session is full (`TOO_MANY_CREDENTIALS`).
    ///
    /// `locale` (the client's languages) picks the message's language. If the sender
    /// refuses the credential (`CREDENTIAL_INVALID`) or fails (`Unavailable`), the new
    /// code is not stored: nothing of it remains usable.
    ///
    /// The abuse limits are asked first (`client`'s request budget, then the
    /// address's send budgets); a refusal (`TOO_MANY_REQUESTS`) changes nothing.
    pub async fn create(
        &self,
        cookie: Option<&str>,
        credential: Credential,
        purpose: u8,
        locale: &Locale,
        client: Option<IpAddr>,
        now: Timestamp,
    ) -> Outcome<SessionState> {
        self.note_purpose(purpose);
        if credential.len() > self.policy.max_credential_len {
            return Outcome::keep(Error::CredentialInvalid);
        }
        if let Err(e) = self
            .limits
            .admit_request(Request::Create, client, now)
            .await
        {
            return Outcome::keep(e);
        }
        match self.open(cookie, now).await {
            Err(e) => Outcome::keep(e),
            Ok(Opened::Missing | Opened::Unreadable) => {
                self.fresh(credential, purpose, locale, now).await
            }
            Ok(Opened::Malformed) => Outcome::clear(Error::InvalidCookie),
            Ok(Opened::List(mut list)) => {
                list.tokens.retain(|t| t.is_live(now));
                if list.tokens.is_empty() {
                    return self.fresh(credential, purpose, locale, now).await;
                }
                self.add_or_switch(list, credential, purpose, locale, now)
                    .await
            }
        }
    }

    async fn fresh(
        &self,
        credential: Credential,
        purpose: u8,
        locale: &Locale,
        now: Timestamp,
    ) -> Outcome<SessionState> {
        let admission = match self.limits.admit_send(&credential, now).await {
            Ok(a) => a,
            Err(e) => return Outcome::keep(e),
        };
        let rules = self.purposes.of(purpose);
        let code = self.new_code(&credential, purpose);
        let token = Token::new(credential, code, now, &rules.policy).for_purpose(purpose);
        // The ID is stored before anything is sent: a store that is down or full
        // must not cost anyone a message that could never be verified.
        let id = match self.ids.issue(token.expires, now).await {
            Ok(id) => id,
            Err(e) => {
                self.limits.refund(admission).await;
                return Outcome::keep(e.into());
            }
        };
        // Both of its events are about one address, read and hashed once.
        let subject = Subject::of(&token.credential);
        let failed = match self.deliver(&token, &subject, locale, false, now).await {
            Ok(Delivery::Sent) => None,
            Ok(Delivery::Rejected) => Some(Error::CredentialInvalid),
            Err(e) => Some(e),
        };
        if let Some(e) = failed {
            if let Err(err) = self.ids.consume(id, now).await {
                tracing::warn!(error = %err, "could not retire an unused list id");
            }
            return Outcome::keep(e);
        }
        self.limits
            .audit()
            .record_about(Event::SessionCreated, &subject);
        let state = SessionState::of(&token, &rules.policy, 1, now);
        let list = TokenList {
            id,
            tokens: vec![token],
        };
        self.sealed(&list, now, Ok(state)).await
    }

    async fn add_or_switch(
        &self,
        mut list: TokenList,
        credential: Credential,
        purpose: u8,
        locale: &Locale,
        now: Timestamp,
    ) -> Outcome<SessionState> {
        // One token per credential and purpose: the same address for another
        // purpose is another code.
        let matched = list
            .tokens
            .iter()
            .position(|t| t.credential == credential && t.purpose == purpose);
        let rules = self.purposes.of(purpose);
        if matched.is_none() && list.tokens.len() >= self.policy.max_credentials {
            return Outcome::keep(Error::TooManyCredentials);
        }
        let expires = match matched {
            Some(_) => list.expires(),
            None => now.plus(rules.policy.max_age),
        };
        // A switch sends nothing; a new credential draws on its send budgets.
        let admission = match matched {
            Some(_) => Admission::default(),
            None => match self.limits.admit_send(&credential, now).await {
                Ok(a) => a,
                Err(e) => return Outcome::keep(e),
            },
        };
        // Every rewrite consumes the list ID first: an older copy of this cookie dies here.
        list.id = match self.renew_id(list.id, expires, now).await {
            Ok(id) => id,
            Err(outcome) => {
                self.limits.refund(admission).await;
                return outcome;
            }
        };
        if let Some(i) = matched {
            let token = list.tokens.remove(i);
            let state = self.state_of(&token, list.tokens.len() + 1, now);
            list.tokens.push(token);
            return self.sealed(&list, now, Ok(state)).await;
        }
        let code = self.new_code(&credential, purpose);
        let token = Token::new(credential, code, now, &rules.policy).for_purpose(purpose);
        // The ID is already spent: on failure the unchanged list goes back under the new ID.
        let subject = Subject::of(&token.credential);
        let result = match self.deliver(&token, &subject, locale, false, now).await {
            Ok(Delivery::Sent) => {
                let state = SessionState::of(&token, &rules.policy, list.tokens.len() + 1, now);
                list.tokens.push(token);
                Ok(state)
            }
            Ok(Delivery::Rejected) => Err(Error::CredentialInvalid),
            Err(e) => Err(e),
        };
        self.sealed(&list, now, result).await
    }
}
