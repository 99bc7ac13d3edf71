//! `cancel`: the user gave up on this session ("use another address").

use crate::clock::Timestamp;
use crate::error::Error;
use crate::otp::OtpService;
use crate::otp::session::Opened;

impl OtpService {
    /// Consumes the session's single-use ID, so every copy of the cookie is dead
    /// (`400 OTP:INVALID_COOKIE` everywhere); the caller clears the cookie. A
    /// spent, foreign or wholly expired session (its ID died with it) answers
    /// `InvalidCookie`: there is nothing left to cancel.
    pub async fn cancel(&self, cookie: Option<&str>, now: Timestamp) -> Result<(), Error> {
        let list = match self.open(cookie, now).await? {
            Opened::List(list) => list,
            Opened::Missing | Opened::Unreadable | Opened::Malformed => {
                return Err(Error::InvalidCookie);
            }
        };
        if self.ids.retire(list.id, now).await? {
            Ok(())
        } else {
            Err(Error::InvalidCookie)
        }
    }
}
