//! `status`: what the current token allows, read without spending the cookie.

use crate::clock::Timestamp;
use crate::error::Error;
use crate::otp::session::Opened;
use crate::otp::{OtpService, SessionState};

/// Where the current token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// A code is waiting for its answer.
    Pending,
    /// A temporary block runs (`otpBlock`): no verification before it ends.
    Blocked,
    /// No attempts left: the code will never verify.
    Locked,
    /// The token's time is over.
    Expired,
}

impl Standing {
    /// `pending`, `blocked`, `locked` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Pending => "pending",
            Standing::Blocked => "blocked",
            Standing::Locked => "locked",
            Standing::Expired => "expired",
        }
    }
}

impl OtpService {
    /// The current token's standing and counters. Reads the cookie and checks
    /// that its single-use ID is live, but consumes nothing and seals nothing: the
    /// same cookie verifies afterwards. Draws on no budget (it changes nothing).
    pub async fn status(
        &self,
        cookie: Option<&str>,
        now: Timestamp,
    ) -> Result<(Standing, SessionState), Error> {
        let list = match self.open(cookie, now).await? {
            Opened::List(list) => list,
            Opened::Missing | Opened::Unreadable | Opened::Malformed => {
                return Err(Error::InvalidCookie);
            }
        };
        let current = list.tokens.last().ok_or(Error::InvalidCookie)?;
        let state = self.state_of(current, list.tokens.len(), now);
        // An expired session's ID dies with it: past expiry there is nothing to spend.
        if !current.is_live(now) {
            return Ok((Standing::Expired, state));
        }
        if !self.ids.is_live(list.id, now).await? {
            return Err(Error::InvalidCookie);
        }
        let standing = if current.is_blocked() {
            Standing::Locked
        } else if current.otp_block.is_some_and(|ob| now < ob) {
            Standing::Blocked
        } else {
            Standing::Pending
        };
        Ok((standing, state))
    }
}
