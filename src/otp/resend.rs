//! `resend`: a new code for the current credential, within the resend rules.

use std::net::IpAddr;

use crate::clock::Timestamp;
use crate::error::Error;
use crate::limit::Request;
use crate::otp::token::Token;
use crate::otp::{OtpService, Outcome, SessionState};
use crate::plugin::{Delivery, Locale};
use crate::telemetry::audit::Subject;

impl OtpService {
    /// Sends a new code to the current credential.
    ///
    /// Refused (`RESENT_NOT_ALLOWED`) while the resend block runs, for a blocked token,
    /// and, with `only_one_resend`, after the first resend. Attempts and a pending
    /// verification block carry over to the new code.
    ///
    /// If delivery fails, refused (`CREDENTIAL_INVALID`) or unavailable (503), the
    /// token is blocked: the previous code stops working too and the new one was
    /// never stored, so no usable code remains (a code that may have reached the
    /// person after a timeout must not work). The client starts over with a new
    /// session once this one expires, or without the cookie.
    ///
    /// Draws on `client`'s create budget and on the address's send budgets; a
    /// refusal (`TOO_MANY_REQUESTS`) changes nothing.
    pub async fn resend(
        &self,
        cookie: Option<&str>,
        locale: &Locale,
        client: Option<IpAddr>,
        now: Timestamp,
    ) -> Outcome<SessionState> {
        if let Err(e) = self
            .limits
            .admit_request(Request::Create, client, now)
            .await
        {
            return Outcome::keep(e);
        }
        let mut list = match self.open_current(cookie, now).await {
            Ok(list) => list,
            Err(outcome) => return outcome,
        };
        let policy = match list.tokens.last() {
            Some(t) => {
                self.note_purpose(t.purpose);
                &self.purposes.of(t.purpose).policy
            }
            None => return Outcome::clear(Error::InvalidCookie),
        };
        let used_up = |t: &Token| t.is_blocked() || (policy.only_one_resend && t.resent);
        let allowed = list
            .tokens
            .last()
            .is_some_and(|t| !used_up(t) && t.resend_block.is_none_or(|rb| now >= rb));
        let Some(current) = list.tokens.last().filter(|_| allowed) else {
            return Outcome::keep(Error::ResentNotAllowed);
        };
        let admission = match self.limits.admit_send(&current.credential, now).await {
            Ok(a) => a,
            Err(e) => return Outcome::keep(e),
        };
        let expires = now.plus(policy.max_age);
        list.id = match self.renew_id(list.id, expires, now).await {
            Ok(id) => id,
            Err(outcome) => {
                self.limits.refund(admission).await;
                return outcome;
            }
        };
        let mut token = match list.tokens.pop() {
            Some(t) => t,
            None => return Outcome::clear(Error::InvalidCookie),
        };
        let previous = token.clone();
        token.otp = Some(self.new_code(&token.credential, token.purpose));
        token.expires = expires;
        let subject = Subject::of(&token.credential);
        let result = match self.deliver(&token, &subject, locale, true, now).await {
            Ok(Delivery::Sent) => {
                token.resent = true;
                token.resend_block = (!policy.only_one_resend && !policy.resend_block.is_zero())
                    .then(|| now.plus(policy.resend_block));
                Ok(SessionState::of(&token, policy, list.tokens.len() + 1, now))
            }
            Ok(Delivery::Rejected) => {
                token = previous;
                token.block();
                Err(Error::CredentialInvalid)
            }
            Err(e) => {
                token = previous;
                token.block();
                Err(e)
            }
        };
        list.tokens.push(token);
        self.sealed(&list, now, result).await
    }
}
