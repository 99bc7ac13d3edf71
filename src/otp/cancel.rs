//! `cancel`: the user gave up on this session ("use another address").

use crate::clock::Timestamp;
use crate::error::Error;
use crate::otp::OtpService;
use crate::otp::session::Opened;

impl OtpService {
    /// Consumes the session's single-use ID, so every copy of the cookie is dead
    /// (`400 OTP:INVALID_COOKIE` everywhere); the caller clears the cookie. An
    /// expired session can be cancelled too; a spent or foreign cookie cannot.
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
