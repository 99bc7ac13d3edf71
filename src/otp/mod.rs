//! The OTP protocol: create, resend and verify over a sealed token list.
//!
//! No HTTP here. Each flow takes the cookie value (if any), its inputs and `now`,
//! and returns an [`Outcome`]: what to do with the cookie and the result.
//! The single-use list ID is consumed atomically *before* any code comparison,
//! so concurrent requests with one cookie get exactly one outcome that counts.

mod cancel;
mod create;
pub mod link;
pub mod policy;
pub mod purpose;
mod resend;
mod session;
mod status;
pub mod test_credentials;
pub mod token;
mod verify;

use std::sync::Arc;

use crate::clock::Timestamp;
use crate::error::Error;
use crate::limit::Limits;
use crate::plugin::{IdStore, Kms, OtpGenerator, Plugins, Sender};
pub use link::{LinkToken, MagicLinks};
pub use policy::OtpPolicy;
pub use purpose::{Purpose, Purposes, PurposesConfig};
pub use status::Standing;
pub use test_credentials::TestCredentials;
use token::Token;
pub use verify::Finished;

/// The default bound on one send: the default request timeout (30 s) less 2 s.
const DEFAULT_SEND_BUDGET: std::time::Duration = std::time::Duration::from_secs(28);

/// What the response must do with the session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieUpdate {
    /// Leave the client's cookie as it is.
    Keep,
    /// Replace it with a new sealed value expiring at `expires`.
    Set {
        /// The sealed cookie value.
        value: String,
        /// The session's expiry.
        expires: Timestamp,
    },
    /// Delete it.
    Clear,
}

/// The result of a flow plus the cookie change that goes with it (also on errors:
/// a wrong code answers 403 *and* sets the next cookie).
#[derive(Debug)]
#[must_use = "the cookie update must reach the client"]
pub struct Outcome<T> {
    /// The cookie change.
    pub cookie: CookieUpdate,
    /// Success value or client-facing error.
    pub result: Result<T, Error>,
    /// The session's state after a refusal that concerns it (a wrong code, a
    /// block), so the answer can say how many attempts and resends are left.
    pub state: Option<SessionState>,
}

impl<T> Outcome<T> {
    fn keep(e: Error) -> Self {
        Self {
            cookie: CookieUpdate::Keep,
            result: Err(e),
            state: None,
        }
    }

    fn clear(e: Error) -> Self {
        Self {
            cookie: CookieUpdate::Clear,
            result: Err(e),
            state: None,
        }
    }

    /// The same outcome, telling the session's `state`.
    fn with_state(mut self, state: SessionState) -> Self {
        self.state = Some(state);
        self
    }
}

/// What a client learns about its current token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    /// When the token expires.
    pub expires: Timestamp,
    /// Blocked for good (no further verification or resend).
    pub blocked: bool,
    /// No resend before this instant.
    pub resend_block: Option<Timestamp>,
    /// No verification before this instant.
    pub otp_block: Option<Timestamp>,
    /// Wrong codes the current code still allows.
    pub attempts_left: u8,
    /// Resends still allowed; `None` when unlimited.
    pub resends_left: Option<u8>,
    /// When a resend becomes possible; `None` when none is left.
    pub resend_after: Option<Timestamp>,
    /// Credentials in the session.
    pub credentials: usize,
}

impl SessionState {
    /// The state of `t`, the current token of a list of `credentials`, at `now`.
    fn of(t: &Token, policy: &OtpPolicy, credentials: usize, now: Timestamp) -> Self {
        let blocked = t.is_blocked();
        let resends_left = match (blocked, policy.only_one_resend) {
            (true, _) => Some(0),
            (false, true) => Some(u8::from(!t.resent)),
            (false, false) => None,
        };
        let resend_after =
            (resends_left != Some(0)).then(|| t.resend_block.filter(|rb| *rb > now).unwrap_or(now));
        Self {
            expires: t.expires,
            blocked,
            resend_block: if blocked { None } else { t.resend_block },
            otp_block: if blocked { None } else { t.otp_block },
            attempts_left: t.attempts,
            resends_left,
            resend_after,
            credentials,
        }
    }
}

/// The protocol engine: policy plus the plug-ins it needs.
#[derive(Debug, Clone)]
pub struct OtpService {
    policy: OtpPolicy,
    cookie_name: String,
    generator: Arc<dyn OtpGenerator>,
    sender: Arc<dyn Sender>,
    ids: Arc<dyn IdStore>,
    kms: Arc<dyn Kms>,
    limits: Limits,
    send_budget: std::time::Duration,
    links: Option<Arc<MagicLinks>>,
    test_credentials: Arc<TestCredentials>,
    purposes: Purposes,
}

impl OtpService {
    /// An engine sealing cookies named `cookie_name` (the name is bound into the ciphertext).
    pub fn new(policy: OtpPolicy, cookie_name: impl Into<String>, plugins: &Plugins) -> Self {
        let purposes = Purposes::single(policy.clone(), Arc::clone(&plugins.generator));
        Self {
            cookie_name: cookie_name.into(),
            generator: Arc::clone(&plugins.generator),
            sender: Arc::clone(&plugins.sender),
            ids: Arc::clone(&plugins.ids),
            kms: Arc::clone(&plugins.kms),
            limits: Limits::off(),
            policy,
            send_budget: DEFAULT_SEND_BUDGET,
            links: None,
            test_credentials: Arc::new(TestCredentials::default()),
            purposes,
        }
    }

    /// Fixed codes for listed addresses, which are then never sent (none by default).
    #[must_use]
    pub fn with_test_credentials(mut self, test_credentials: TestCredentials) -> Self {
        self.test_credentials = Arc::new(test_credentials);
        self
    }

    /// A new code for `credential` and the purpose at `purpose`: random in the
    /// purpose's format, or the address's fixed test code.
    fn new_code(
        &self,
        credential: &crate::plugin::Credential,
        purpose: u8,
    ) -> crate::plugin::OtpCode {
        match self.test_credentials.code_for(credential) {
            Some(code) => code.clone(),
            None => self.purposes.of(purpose).generator.generate(),
        }
    }

    /// What a client learns about `token`, the current of `credentials`, under
    /// its purpose's rules.
    fn state_of(&self, token: &Token, credentials: usize, now: Timestamp) -> SessionState {
        SessionState::of(
            token,
            &self.purposes.of(token.purpose).policy,
            credentials,
            now,
        )
    }

    /// Runs the configured purposes (one implicit purpose by default).
    #[must_use]
    pub fn with_purposes(mut self, purposes: Purposes) -> Self {
        self.purposes = purposes;
        self
    }

    /// Names the purpose at `index` on the request's span, so every log line and
    /// audit event of the request carries it (when purposes are named).
    fn note_purpose(&self, index: u8) {
        if let Some(name) = self.purposes.name(index) {
            tracing::Span::current().record("purpose", name);
        }
    }

    /// The purposes.
    pub fn purposes(&self) -> &Purposes {
        &self.purposes
    }

    /// Sends a magic link with every code (off by default).
    #[must_use]
    pub fn with_magic_links(mut self, links: MagicLinks) -> Self {
        self.links = Some(Arc::new(links));
        self
    }

    /// The magic links, when they are on.
    pub fn magic_links(&self) -> Option<&MagicLinks> {
        self.links.as_deref()
    }

    /// Applies abuse limits (none by default: [`crate::AppState`] applies the
    /// configured ones).
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Bounds how long handing one code to the sender may take (its retries
    /// included); past it the send counts as failed (`503`). Default 28 s.
    #[must_use]
    pub fn with_send_budget(mut self, budget: std::time::Duration) -> Self {
        self.send_budget = budget;
        self
    }

    /// The audit trail (for what happens around the flows, like the final action).
    pub fn audit(&self) -> &crate::telemetry::Audit {
        self.limits.audit()
    }

    /// The code format of the generator (what verify accepts).
    pub fn code_format(&self) -> &crate::plugin::CodeFormat {
        self.generator.format()
    }
}
