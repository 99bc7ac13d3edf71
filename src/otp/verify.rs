//! `verify`: check a submitted code against the current token.

use std::net::IpAddr;

use crate::clock::Timestamp;
use crate::error::Error;
use crate::limit::Request;
use crate::otp::{CookieUpdate, LinkToken, OtpService, Outcome};
use crate::plugin::{Credential, OtpCode};
use crate::telemetry::audit::Event;
use crate::telemetry::metric;

/// Remaining validity under which a temporary block becomes a permanent one.
const MIN_USEFUL_VALIDITY_MS: u64 = 1000;

/// What a client offers to finish the current token.
#[derive(Debug, Clone, Copy)]
enum Proof<'a> {
    /// The code it typed, for the purpose it named (if it named one).
    Code(&'a OtpCode, Option<u8>),
    /// The magic link it followed.
    Link(&'a LinkToken),
}

/// A finished session: what was proven, and for what.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The verified credential.
    pub credential: Credential,
    /// The purpose of its code, when purposes are named.
    pub purpose: Option<String>,
}

impl OtpService {
    /// Checks a magic link against the current token: exactly as [`OtpService::verify`]
    /// checks a code (same budgets, same attempt counting), so the link and the
    /// code finish the same token once between them.
    pub async fn verify_link(
        &self,
        cookie: Option<&str>,
        link: &LinkToken,
        client: Option<IpAddr>,
        now: Timestamp,
    ) -> Outcome<Finished> {
        self.verify_proof(cookie, Proof::Link(link), client, now)
            .await
    }

    /// Checks `code` against the current token. On success the session is over
    /// (its ID consumed, the cookie cleared) and the verified credential is returned;
    /// the caller runs the final action exactly once.
    ///
    /// Draws on `client`'s verify budget, and every guess on the address's failure
    /// budget (taken back when the code is right): once it is spent, no code for
    /// the address works, not even a right one, until the window passes. That
    /// refusal still renews the cookie (same content, new single-use ID).
    ///
    /// With `purpose` (an index of [`OtpService::purposes`]), a token of another
    /// purpose answers `PURPOSE_MISMATCH`; a code not in the token's own format
    /// answers `INVALID_FORMAT`. Neither uses an attempt.
    pub async fn verify(
        &self,
        cookie: Option<&str>,
        code: &OtpCode,
        purpose: Option<u8>,
        client: Option<IpAddr>,
        now: Timestamp,
    ) -> Outcome<Finished> {
        self.verify_proof(cookie, Proof::Code(code, purpose), client, now)
            .await
    }

    async fn verify_proof(
        &self,
        cookie: Option<&str>,
        proof: Proof<'_>,
        client: Option<IpAddr>,
        now: Timestamp,
    ) -> Outcome<Finished> {
        if let Err(e) = self
            .limits
            .admit_request(Request::Verify, client, now)
            .await
        {
            return Outcome::keep(e);
        }
        let mut list = match self.open_current(cookie, now).await {
            Ok(list) => list,
            Err(outcome) => return outcome,
        };
        let Some(current) = list.tokens.last() else {
            return Outcome::clear(Error::InvalidCookie);
        };
        let rules = self.purposes.of(current.purpose);
        let purpose_name = self.purposes.name(current.purpose);
        self.note_purpose(current.purpose);
        // Checks that cost no attempt: the purpose asked for, the token's own format.
        if let Proof::Code(code, expected) = proof {
            if expected.is_some_and(|p| p != current.purpose) {
                return Outcome::keep(Error::PurposeMismatch);
            }
            if rules.generator.format().parse(code.expose()).is_none() {
                return Outcome::keep(Error::InvalidFormat);
            }
        }
        let policy = &rules.policy;
        if current.is_blocked() || current.otp_block.is_some_and(|ob| now < ob) {
            // A block refuses without spending the ID, but only a live cookie may
            // hear about it: a superseded copy is invalid like everywhere else.
            if let Err(outcome) = self.check_live(list.id, now).await {
                return outcome;
            }
            self.limits.audit().record(
                Event::Blocked {
                    reason: "not_allowed",
                },
                Some(&current.credential),
            );
            let state = self.state_of(current, list.tokens.len(), now);
            return Outcome::keep(Error::VerificationNotAllowed).with_state(state);
        }
        // Consume the single-use ID before comparing: of N concurrent requests with
        // this cookie, one alone gets past this line and learns anything.
        let expires = list.expires();
        list.id = match self.renew_id(list.id, expires, now).await {
            Ok(id) => id,
            Err(outcome) => return outcome,
        };
        // Only the winner draws on the address's failure budget; a refusal hands
        // back the same list under its new ID (the old one is spent).
        let guess = match list.tokens.last().map(|t| &t.credential) {
            Some(c) => match self.limits.admit_guess(c, now).await {
                Ok(g) => g,
                Err(e) => return self.sealed(&list, now, Err(e)).await,
            },
            None => return Outcome::clear(Error::InvalidCookie),
        };
        let Some(token) = list.tokens.last_mut() else {
            return Outcome::clear(Error::InvalidCookie);
        };
        token.otp_block = None;
        let right = match proof {
            Proof::Code(code, _) => token.otp.as_ref().is_some_and(|stored| stored.ct_eq(code)),
            Proof::Link(link) => self.links.as_ref().is_some_and(|l| l.matches(token, link)),
        };
        if right {
            // The new ID was never handed out; retire it now rather than at expiry.
            if let Err(e) = self.ids.consume(list.id, now).await {
                tracing::warn!(error = %e, "could not retire a verified session's list id");
            }
            self.limits.verified(&token.credential, guess, now).await;
            metric::verified();
            self.limits
                .audit()
                .record(Event::Verified, Some(&token.credential));
            return Outcome {
                cookie: CookieUpdate::Clear,
                result: Ok(Finished {
                    credential: token.credential.clone(),
                    purpose: purpose_name.map(str::to_owned),
                }),
                state: None,
            };
        }
        token.attempts = token.attempts.saturating_sub(1);
        let error = if token.attempts == 0 {
            token.block();
            Error::TooManyAttempts
        } else if !policy.invalid_block.is_zero() && token.attempts <= policy.attempts_block {
            let until = now.plus(policy.invalid_block);
            if token.expires.millis_since(until) <= MIN_USEFUL_VALIDITY_MS {
                token.block();
                Error::TooManyAttempts
            } else {
                token.otp_block = Some(until);
                Error::Incorrect {
                    otp_block: Some(until),
                    attempts_left: token.attempts,
                }
            }
        } else {
            Error::Incorrect {
                otp_block: None,
                attempts_left: token.attempts,
            }
        };
        let state = list
            .tokens
            .last()
            .map(|t| self.state_of(t, list.tokens.len(), now));
        if let Some(token) = list.tokens.last() {
            let blocked = token.is_blocked();
            metric::failed(blocked);
            let event = if blocked {
                Event::Blocked { reason: "attempts" }
            } else {
                Event::VerifyFailed {
                    attempts_left: u32::from(token.attempts),
                }
            };
            self.limits.audit().record(event, Some(&token.credential));
        }
        let outcome = self.sealed(&list, now, Err(error)).await;
        // The counters describe the next cookie: without one (sealing failed), none.
        match (state, &outcome.cookie) {
            (Some(state), CookieUpdate::Set { .. }) => outcome.with_state(state),
            _ => outcome,
        }
    }
}
