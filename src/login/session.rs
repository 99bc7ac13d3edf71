//! Sessions after verification: the `session` final action signs a token and sets
//! it as a cookie; the session endpoints read it and revoke it.
//!
//! A token is valid while its signature verifies, `exp` is ahead, and its `jti` is
//! not revoked. Revocations are events in the abuse limits' store (memory, or the
//! shared Redis), kept for the session lifetime, so every instance refuses a
//! logged-out token and a store outage refuses every token (fail closed).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Json;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::clock::Timestamp;
use crate::error::{BackendError, Error};
use crate::login::token::{Claims, SessionKeys};
use crate::plugin::credential::Channel;
use crate::plugin::limit_store::{Hit, LimitKey, LimitStore, Rule, Scope};
use crate::plugin::{FinalAction, Verified};

/// How sessions are issued (`OTP_SESSION_*`).
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// `OTP_SESSION_MAX_AGE`: the token's and the cookie's lifetime (default 86 400 s).
    pub max_age: Duration,
    /// `OTP_SESSION_TOKEN_IN_BODY`: also return the token in the verify answer.
    pub token_in_body: bool,
    /// Production: the cookie is `__Host-session` with `Secure`.
    pub secure: bool,
    /// `OTP_PUBLIC_URL`, the `iss` claim when set.
    pub issuer: Option<String>,
}

/// Issues, checks and revokes session tokens.
#[derive(Debug)]
pub struct Sessions {
    keys: SessionKeys,
    settings: SessionSettings,
    revoked: Arc<dyn LimitStore>,
}

impl Sessions {
    /// Sessions signed by `keys`, revoked in `revoked`.
    pub fn new(keys: SessionKeys, settings: SessionSettings, revoked: Arc<dyn LimitStore>) -> Self {
        Self {
            keys,
            settings,
            revoked,
        }
    }

    /// The session cookie's name: `__Host-session` when `Secure`, else `session`.
    pub fn cookie_name(&self) -> &'static str {
        if self.settings.secure {
            "__Host-session"
        } else {
            "session"
        }
    }

    /// The public keys (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> serde_json::Value {
        self.keys.jwks()
    }

    /// A new signed token for `verified`, and its claims.
    pub fn issue(&self, verified: &Verified) -> (String, Claims) {
        let now = verified.verified_at.as_millis() / 1000;
        let mut jti = [0u8; 16];
        rand::fill(&mut jti);
        let amr = match verified.channel {
            Channel::Email => "email",
            Channel::Phone => "sms",
            Channel::Other => "otp",
        };
        let claims = Claims {
            sub: verified.address.clone(),
            iat: now,
            exp: now.saturating_add(self.settings.max_age.as_secs()),
            jti: URL_SAFE_NO_PAD.encode(jti),
            amr: vec![amr.to_owned()],
            iss: self.settings.issuer.clone(),
            purpose: verified.purpose.clone(),
        };
        (self.keys.sign(&claims), claims)
    }

    /// The claims of a valid, unrevoked token; `SessionInvalid` otherwise, or
    /// `Unavailable` when the revocation store cannot answer.
    pub async fn check(&self, token: &str, now: Timestamp) -> Result<Claims, Error> {
        let claims = self
            .keys
            .verify(token, now.as_millis() / 1000)
            .map_err(|e| {
                tracing::debug!(reason = %e, "session token refused");
                Error::SessionInvalid
            })?;
        match self
            .revoked
            .hit(&revocation_key(&claims), self.rule(), false, now)
            .await?
        {
            Hit::Allowed { .. } => Ok(claims),
            Hit::Denied { .. } => Err(Error::SessionInvalid),
        }
    }

    /// Revokes the token named by `claims` until it would have expired.
    pub async fn revoke(&self, claims: &Claims, now: Timestamp) -> Result<(), Error> {
        self.revoked
            .hit(&revocation_key(claims), self.rule(), true, now)
            .await?;
        Ok(())
    }

    /// The session token a request carries: its session cookie, else an
    /// `Authorization: Bearer` header (mobile clients).
    pub fn token_in<'h>(&self, headers: &'h HeaderMap) -> Option<Cow<'h, str>> {
        if let Some(value) = crate::http::cookie::read_named(headers, self.cookie_name()) {
            return Some(value);
        }
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| Cow::Borrowed(t.trim()))
    }

    /// `Set-Cookie` for `token`.
    pub fn set_cookie(&self, token: &str) -> HeaderValue {
        self.cookie(token, self.settings.max_age.as_secs())
    }

    /// `Set-Cookie` deleting the session cookie.
    pub fn clear_cookie(&self) -> HeaderValue {
        self.cookie("", 0)
    }

    fn cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.settings.secure { "; Secure" } else { "" };
        let text = format!(
            "{}={value}; Path=/; Max-Age={max_age}; HttpOnly{secure}; SameSite=Lax",
            self.cookie_name()
        );
        // A JWS is base64url and dots: always a valid header value.
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// One event per revoked token, remembered for the longest a token lives.
    fn rule(&self) -> Rule {
        Rule::new(1, self.settings.max_age)
    }
}

fn revocation_key(claims: &Claims) -> LimitKey {
    let digest = Sha256::digest(claims.jti.as_bytes());
    let mut subject = [0u8; 16];
    subject.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
    LimitKey {
        scope: Scope::RevokedSession,
        subject,
    }
}

/// The body of `GET /api/session` (and the `session` field of a verify answer).
#[derive(Debug, Serialize)]
pub struct SessionBody<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    amr: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose: Option<&'a str>,
}

impl<'a> From<&'a Claims> for SessionBody<'a> {
    fn from(c: &'a Claims) -> Self {
        Self {
            sub: &c.sub,
            iat: c.iat,
            exp: c.exp,
            amr: &c.amr,
            purpose: c.purpose.as_deref(),
        }
    }
}

/// `OTP_FINAL_ACTION=session`: the echo answer plus `session` (the claims) and,
/// with `OTP_SESSION_TOKEN_IN_BODY`, `token`; the token also as an HttpOnly cookie.
#[derive(Debug, Clone)]
pub struct SessionFinalAction {
    sessions: Arc<Sessions>,
}

impl SessionFinalAction {
    /// Issues sessions from `sessions`.
    pub fn new(sessions: Arc<Sessions>) -> Self {
        Self { sessions }
    }
}

#[async_trait]
impl FinalAction for SessionFinalAction {
    async fn run(&self, verified: Verified) -> Result<Response, BackendError> {
        let (token, claims) = self.sessions.issue(&verified);
        let mut body = serde_json::json!({
            "credential": verified.credential.as_str(),
            "message": "successfully verified",
            "session": SessionBody::from(&claims),
        });
        if let (true, Some(fields)) = (self.sessions.settings.token_in_body, body.as_object_mut()) {
            fields.insert("token".to_owned(), serde_json::Value::String(token.clone()));
        }
        let mut response = Json(body).into_response();
        response
            .headers_mut()
            .append(header::SET_COOKIE, self.sessions.set_cookie(&token));
        Ok(response)
    }
}
