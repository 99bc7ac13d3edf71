//! Magic links: a second way to finish a token, beside typing its code.
//!
//! A link carries no session state: the session stays in the cookie, so a link
//! works in the browser that asked for the code (where the cookie is). Its token is
//! `base64url(code tag ‖ mask tag ‖ masked address)`:
//!
//! * the code tag, `HMAC(key, code, credential, expiry)`, matches one token's
//!   current code, so a resend retires the old link and using the link or the code
//!   spends the other (both end the same token the same way);
//! * the mask tag authenticates the masked address the confirmation page shows,
//!   so nobody can put words of their own on this server's page.
//!
//! Opening the link only renders that page; the page's `POST` verifies.

use hmac::Mac as _;
use subtle::ConstantTimeEq as _;

use crate::crypto::keyed_mac;
use crate::otp::token::Token;

const TAG_LEN: usize = 16;
/// Longer link tokens are refused unread.
const MAX_TOKEN_TEXT: usize = 512;

/// A parsed link token whose masked address is authentic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkToken {
    code_tag: [u8; TAG_LEN],
    masked: String,
}

impl LinkToken {
    /// The masked address the link was sent to (`u***@e***.com`).
    pub fn masked(&self) -> &str {
        &self.masked
    }
}

/// Makes and checks magic links under a server key.
pub struct MagicLinks {
    /// `<OTP_PUBLIC_URL>/api/otp/link?t=`
    prefix: String,
    key: zeroize::Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for MagicLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MagicLinks")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl MagicLinks {
    /// Links to `public_url` (`https://otp.example.com`), keyed from `secret` (the
    /// limit secret, so every instance of a deployment agrees).
    pub fn new(public_url: &str, secret: &[u8; 32]) -> Self {
        let mut mac = keyed_mac(secret);
        mac.update(b"secure-otp-server magic link v1");
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&mac.finalize().into_bytes());
        Self {
            prefix: format!("{}/api/otp/link?t=", public_url.trim_end_matches('/')),
            key,
        }
    }

    /// The link for `token`'s current code; `None` for a blocked token.
    pub(crate) fn url_for(&self, token: &Token) -> Option<String> {
        use base64::Engine as _;
        let code_tag = self.code_tag(token)?;
        let masked = token.credential.masked();
        let mut raw = Vec::with_capacity(2 * TAG_LEN + masked.len());
        raw.extend_from_slice(&code_tag);
        raw.extend_from_slice(&self.mask_tag(&masked));
        raw.extend_from_slice(masked.as_bytes());
        Some(format!(
            "{}{}",
            self.prefix,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        ))
    }

    /// The token of a link, if it is well-formed and its masked address authentic.
    pub fn parse(&self, text: &str) -> Option<LinkToken> {
        use base64::Engine as _;
        if text.len() > MAX_TOKEN_TEXT {
            return None;
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim())
            .ok()?;
        let code_tag: [u8; TAG_LEN] = raw.get(..TAG_LEN)?.try_into().ok()?;
        let mask_tag = raw.get(TAG_LEN..2 * TAG_LEN)?;
        let masked = std::str::from_utf8(raw.get(2 * TAG_LEN..)?).ok()?;
        if !bool::from(self.mask_tag(masked).ct_eq(mask_tag)) {
            return None;
        }
        Some(LinkToken {
            code_tag,
            masked: masked.to_owned(),
        })
    }

    /// Whether `link` was made for `token`'s current code.
    pub(crate) fn matches(&self, token: &Token, link: &LinkToken) -> bool {
        self.code_tag(token)
            .is_some_and(|tag| bool::from(tag.ct_eq(&link.code_tag)))
    }

    fn code_tag(&self, token: &Token) -> Option<[u8; TAG_LEN]> {
        let code = token.otp.as_ref()?.expose();
        let credential = token.credential.as_str();
        let mut mac = keyed_mac(&self.key);
        mac.update(b"code");
        for part in [code.as_bytes(), credential.as_bytes()] {
            mac.update(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            mac.update(part);
        }
        mac.update(&token.expires.as_millis().to_be_bytes());
        Some(truncate(&mac.finalize().into_bytes()))
    }

    fn mask_tag(&self, masked: &str) -> [u8; TAG_LEN] {
        let mut mac = keyed_mac(&self.key);
        mac.update(b"mask");
        mac.update(masked.as_bytes());
        truncate(&mac.finalize().into_bytes())
    }
}

fn truncate(digest: &[u8]) -> [u8; TAG_LEN] {
    let mut out = [0u8; TAG_LEN];
    for (o, d) in out.iter_mut().zip(digest) {
        *o = *d;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::otp::OtpPolicy;
    use crate::plugin::{CodeFormat, Credential};

    fn token(code: &str) -> Token {
        let format = CodeFormat::new("0123456789abc", 6).expect("format");
        Token::new(
            Credential::new(r#"{"email":"ann@example.com"}"#.to_owned()).expect("credential"),
            format.parse(code).expect("a code of the format"),
            Timestamp::from_millis(1_000_000),
            &OtpPolicy::default(),
        )
    }

    fn token_text(url: &str) -> &str {
        url.split_once("?t=").map(|(_, t)| t).expect("a token")
    }

    #[test]
    fn a_link_matches_its_code_only_and_shows_an_authentic_mask() {
        let links = MagicLinks::new("https://otp.example.com/", &[7; 32]);
        let t = token("abc123");
        let url = links.url_for(&t).expect("a link");
        assert!(url.starts_with("https://otp.example.com/api/otp/link?t="));
        let link = links.parse(token_text(&url)).expect("parses");
        assert_eq!(link.masked(), t.credential.masked());
        assert!(links.matches(&t, &link));
        assert!(
            !links.matches(&token("abc124"), &link),
            "a resent code retires the link"
        );
        let other_key = MagicLinks::new("https://otp.example.com", &[8; 32]);
        assert!(other_key.parse(token_text(&url)).is_none());
    }

    #[test]
    fn forged_or_truncated_tokens_do_not_parse() {
        use base64::Engine as _;
        let links = MagicLinks::new("https://otp.example.com", &[7; 32]);
        let url = links.url_for(&token("abc123")).expect("a link");
        let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token_text(&url))
            .expect("base64url");
        raw.extend_from_slice(b" or admin");
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw);
        assert!(links.parse(&forged).is_none(), "the mask cannot be changed");
        for junk in ["", "AAAA", "%%%", &"A".repeat(MAX_TOKEN_TEXT + 1)] {
            assert!(links.parse(junk).is_none());
        }
    }
}
