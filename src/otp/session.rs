//! Opening and sealing the token list through the KMS and the envelope.

use crate::clock::Timestamp;
use crate::crypto::{self, Sealed};
use crate::error::Error;
use crate::otp::token::TokenList;
use crate::otp::{CookieUpdate, OtpService};

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
            match TokenList::decode(&plain, &self.policy, self.generator.format(), now) {
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
        let value = crypto::seal(key_id, &kek, &self.cookie_name, &list.encode());
        Ok(CookieUpdate::Set {
            value,
            expires: list.expires(),
        })
    }
}
