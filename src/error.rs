//! The one error type at the HTTP boundary: stable codes, statuses and messages.
//!
//! Every failure a client can see is a variant here and becomes
//! `{"error": CODE, "message": TEXT}` through the single [`IntoResponse`] impl.
//! Internal details go to the log, never to the client.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::clock::{Iso8601, Timestamp};
use crate::otp::SessionState;

/// A failure of a request, with the stable code the client sees.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request body is larger than the configured limit.
    #[error("request body too large")]
    BodyTooLarge,
    /// The credential was rejected by the schema or by the sender.
    #[error("invalid credential")]
    CredentialInvalid,
    /// A compare-and-set with the server state was lost.
    #[error("conflict with server state")]
    Conflict,
    /// The current OTP has expired.
    #[error("OTP expired")]
    Expired,
    /// The code was wrong; `otp_block` is when the next attempt is allowed.
    #[error("incorrect OTP")]
    Incorrect {
        /// End of the temporary block, if one was applied.
        otp_block: Option<Timestamp>,
        /// Wrong codes the current code still allows (`attemptsLeft`).
        attempts_left: u8,
    },
    /// The session cookie is missing, unreadable, tampered, foreign or used up.
    #[error("invalid OTP cookie")]
    InvalidCookie,
    /// The submitted code does not have the configured format.
    #[error("invalid OTP format")]
    InvalidFormat,
    /// A resend is not allowed now (too early, already resent, or blocked).
    #[error("resend not allowed")]
    ResentNotAllowed,
    /// The last attempt was used; the token is blocked.
    #[error("too many attempts")]
    TooManyAttempts,
    /// The session already holds the maximum number of credentials.
    #[error("too many credentials")]
    TooManyCredentials,
    /// The token is blocked or inside a temporary block.
    #[error("verification not allowed")]
    VerificationNotAllowed,
    /// An abuse limit is spent; nothing was changed or sent.
    #[error("too many requests")]
    TooManyRequests {
        /// When the spent budget returns.
        retry_at: Timestamp,
        /// Whole seconds from the refusal to `retry_at` (the `Retry-After` header).
        retry_in: u64,
    },
    /// `?purpose=` names no configured purpose.
    #[error("invalid purpose")]
    InvalidPurpose,
    /// The session's code is for another purpose than the one asked for.
    #[error("purpose mismatch")]
    PurposeMismatch,
    /// An `Idempotency-Key` that is empty, longer than 64 characters or not
    /// visible ASCII.
    #[error("invalid idempotency key")]
    IdempotencyKeyInvalid,
    /// An `Idempotency-Key` reused with another request body.
    #[error("idempotency key reused with another request")]
    IdempotencyMismatch,
    /// No valid session token: missing, tampered, expired, signed by an unknown
    /// key, or revoked by a logout.
    #[error("invalid session")]
    SessionInvalid,
    /// A phone number of a country outside `OTP_PHONE_COUNTRIES`.
    #[error("unsupported country")]
    UnsupportedCountry,
    /// A cross-site request: its `Origin` is neither allowed nor this server's own.
    #[error("forbidden origin")]
    ForbiddenOrigin,
    /// The request's body did not arrive, or no answer was ready, in time.
    #[error("request timeout")]
    RequestTimeout,
    /// A backend (store, KMS, sender) is temporarily unavailable.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// An unexpected internal failure.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a backend call failed; plug-ins return this.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Temporarily out of reach (timeouts, connection refused, full); retrying later may work.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else that went wrong.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// A refusal by an abuse limit whose budget returns at `retry_at`.
    pub fn too_many_requests(retry_at: Timestamp, now: Timestamp) -> Self {
        Error::TooManyRequests {
            retry_at,
            retry_in: retry_at.millis_since(now).div_ceil(1000).max(1),
        }
    }
}

impl From<BackendError> for Error {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Unavailable(m) => Error::Unavailable(m),
            BackendError::Internal(m) => Error::Internal(m),
        }
    }
}

/// The stable code of an error response, for the access log.
///
/// Inside the router's edge (`http::layers`), where every answer of [`crate::router`]
/// is made, the code travels in an internal header, which the edge takes out before
/// the answer leaves: the response's first extension costs three allocations, and
/// the edge reads every answer header anyway. An answer made elsewhere (an
/// embedder's own route) keeps it in its extensions; middleware around the router
/// sees neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

impl ErrorCode {
    /// The internal header; never sent (see the type's documentation).
    pub(crate) const HEADER: HeaderName = HeaderName::from_static("x-otp-internal-error-code");

    /// Marks `response` with this code: in the internal header when the response is
    /// made inside the edge, which removes it, else in its extensions. Codes are
    /// fixed ASCII names; one that could not be a header value goes to the extensions.
    pub(crate) fn attach(self, response: &mut Response) {
        if crate::http::inside_the_edge() && self.0.bytes().all(|b| b.is_ascii_graphic()) {
            response
                .headers_mut()
                .insert(Self::HEADER, HeaderValue::from_static(self.0));
        } else {
            response.extensions_mut().insert(self);
        }
    }
}

/// Seconds a client is told to wait after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 5;

const SERVER_MESSAGE: &str = "The server has some issues, it's not your fault.";

impl Error {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BodyTooLarge => "BODY:TOO_LARGE",
            Error::CredentialInvalid => "CREDENTIAL:INVALID",
            Error::Conflict => "OTP:CONFLICT",
            Error::Expired => "OTP:EXPIRED",
            Error::Incorrect { .. } => "OTP:INCORRECT",
            Error::InvalidCookie => "OTP:INVALID_COOKIE",
            Error::InvalidFormat => "OTP:INVALID_FORMAT",
            Error::ResentNotAllowed => "OTP:RESENT_NOT_ALLOWED",
            Error::TooManyAttempts => "OTP:TOO_MANY_ATTEMPTS",
            Error::TooManyCredentials => "OTP:TOO_MANY_CREDENTIALS",
            Error::VerificationNotAllowed => "OTP:VERIFICATION_NOT_ALLOWED",
            Error::TooManyRequests { .. } => "OTP:TOO_MANY_REQUESTS",
            Error::UnsupportedCountry => "CREDENTIAL:UNSUPPORTED_COUNTRY",
            Error::SessionInvalid => "SESSION:INVALID",
            Error::InvalidPurpose => "OTP:INVALID_PURPOSE",
            Error::PurposeMismatch => "OTP:PURPOSE_MISMATCH",
            Error::IdempotencyKeyInvalid => "REQUEST:INVALID_IDEMPOTENCY_KEY",
            Error::IdempotencyMismatch => "REQUEST:IDEMPOTENCY_MISMATCH",
            Error::ForbiddenOrigin => "REQUEST:FORBIDDEN_ORIGIN",
            Error::RequestTimeout => "REQUEST:TIMEOUT",
            Error::Unavailable(_) | Error::Internal(_) => "SERVER",
        }
    }

    /// The human-readable message, identical to the original's.
    pub fn message(&self) -> &'static str {
        match self {
            Error::BodyTooLarge => "The body of your request is too large.",
            Error::CredentialInvalid => "Invalid credential.",
            Error::Conflict => {
                "The OTP token presented some conflicts with the server state, please try to authenticate again."
            }
            Error::Expired => "The current OTP is expired. Please request a new code.",
            Error::Incorrect { .. } => "Incorrect OTP value.",
            Error::InvalidCookie => "The OTP cookie is invalid.",
            Error::InvalidFormat => "Invalid OTP format.",
            Error::ResentNotAllowed => "Resend not allowed.",
            Error::TooManyAttempts => {
                "Too many attempts. For security reasons, the OTP has been blocked. Please wait for it to expire and then try again."
            }
            Error::TooManyCredentials => "Too many credentials.",
            Error::VerificationNotAllowed => "Verification not allowed.",
            Error::TooManyRequests { .. } => "Too many requests. Please wait before trying again.",
            Error::UnsupportedCountry => "Phone numbers of this country are not supported.",
            Error::SessionInvalid => "No valid session: sign in again.",
            Error::InvalidPurpose => "Unknown purpose.",
            Error::PurposeMismatch => "This code is for another purpose.",
            Error::IdempotencyKeyInvalid => {
                "The Idempotency-Key header must be 1 to 64 visible ASCII characters."
            }
            Error::IdempotencyMismatch => {
                "This Idempotency-Key was used with another request; use a new key for a new request."
            }
            Error::ForbiddenOrigin => {
                "Requests from this origin are not allowed (set CORS_ORIGIN to allow a frontend on another origin)."
            }
            Error::RequestTimeout => "The request took too long to arrive or to answer.",
            Error::Unavailable(_) | Error::Internal(_) => SERVER_MESSAGE,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Conflict => StatusCode::CONFLICT,
            Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::SessionInvalid => StatusCode::UNAUTHORIZED,
            Error::InvalidPurpose | Error::PurposeMismatch => StatusCode::BAD_REQUEST,
            Error::IdempotencyKeyInvalid => StatusCode::BAD_REQUEST,
            Error::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Incorrect { .. }
            | Error::TooManyAttempts
            | Error::VerificationNotAllowed
            | Error::ForbiddenOrigin => StatusCode::FORBIDDEN,
            Error::CredentialInvalid
            | Error::Expired
            | Error::InvalidCookie
            | Error::InvalidFormat
            | Error::ResentNotAllowed
            | Error::TooManyCredentials
            | Error::UnsupportedCountry => StatusCode::BAD_REQUEST,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    message: &'static str,
    #[serde(rename = "otpBlock", skip_serializing_if = "Option::is_none")]
    otp_block: Option<Iso8601>,
    #[serde(rename = "attemptsLeft", skip_serializing_if = "Option::is_none")]
    attempts_left: Option<u8>,
    #[serde(rename = "resendsLeft", skip_serializing_if = "Option::is_none")]
    resends_left: Option<u8>,
    #[serde(rename = "resendAfter", skip_serializing_if = "Option::is_none")]
    resend_after: Option<Iso8601>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<Iso8601>,
    #[serde(rename = "retryAfter", skip_serializing_if = "Option::is_none")]
    retry_after: Option<Iso8601>,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.into_response_with_state(None)
    }
}

impl Error {
    /// The error's answer; with `state`, the session's counters too
    /// (`attemptsLeft`, `resendsLeft`, `resendAfter`, `expires`), so a frontend
    /// need not guess what is left after a wrong code or a block.
    pub fn into_response_with_state(self, state: Option<&SessionState>) -> Response {
        match &self {
            Error::Unavailable(detail) => tracing::warn!(detail, "backend unavailable"),
            Error::Internal(detail) => tracing::error!(detail, "internal error"),
            _ => {}
        }
        let otp_block = match &self {
            Error::Incorrect { otp_block, .. } => *otp_block,
            _ => state.and_then(|s| s.otp_block),
        }
        .map(|t| t.ceil_second().iso8601());
        let attempts_left = match &self {
            Error::Incorrect { attempts_left, .. } => Some(*attempts_left),
            Error::TooManyAttempts => Some(0),
            _ => state.map(|s| s.attempts_left),
        };
        let retry_after = match &self {
            Error::TooManyRequests { retry_at, .. } => Some(retry_at.ceil_second().iso8601()),
            _ => None,
        };
        let body = ErrorBody {
            error: self.code(),
            message: self.message(),
            otp_block,
            attempts_left,
            resends_left: state.and_then(|s| s.resends_left),
            resend_after: state
                .and_then(|s| s.resend_after)
                .map(|t| t.ceil_second().iso8601()),
            expires: state.map(|s| s.expires.floor_second().iso8601()),
            retry_after,
        };
        let mut response = (self.status(), crate::http::json::JsonAnswer(body)).into_response();
        // For the access log line, which sees only the response.
        ErrorCode(self.code()).attach(&mut response);
        match self {
            Error::Unavailable(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            }
            Error::TooManyRequests { retry_in, .. } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_in));
            }
            _ => {}
        }
        response
    }
}
