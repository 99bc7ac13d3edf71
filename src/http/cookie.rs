//! The session cookie on the wire: reading it from requests, setting and clearing it.
//!
//! It is set and cleared with the same name, `Path` and `Secure`, so clearing never
//! fails in production (a fix of the original).

use std::borrow::Cow;
use std::fmt;

use axum::http::{HeaderMap, HeaderValue, header};

use crate::clock::Timestamp;
pub use crate::config::SameSite;
use crate::otp::CookieUpdate;
use crate::stack_text::StackText;

/// How the session cookie is named and flagged.
#[derive(Debug, Clone)]
pub struct CookieSettings {
    name: String,
    secure: bool,
    same_site: SameSite,
}

impl CookieSettings {
    /// Settings for a cookie called `name`, `Secure` when `secure`.
    pub fn new(name: impl Into<String>, secure: bool) -> Self {
        Self {
            name: name.into(),
            secure,
            same_site: SameSite::Strict,
        }
    }

    /// The same settings with another `SameSite` attribute (default `Strict`).
    #[must_use]
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// The cookie name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The session cookie's value: first occurrence wins, surrounding quotes stripped,
    /// percent-decoded if it holds `%`, trimmed; `None` if absent.
    pub fn read<'h>(&self, headers: &'h HeaderMap) -> Option<Cow<'h, str>> {
        read_named(headers, &self.name)
    }

    /// The `Set-Cookie` header for `update`; `None` when nothing is to be sent.
    /// A `Clear` is only sent to a client that presented a cookie.
    ///
    /// Written in the original's attribute order (SPEC 1.7):
    /// `<name>=<value>; Path=/; Expires=<HTTP-date>; HttpOnly; [Secure; ]SameSite=Strict`;
    /// a clear adds `Max-Age=0` and expires at the epoch.
    pub fn header(&self, update: &CookieUpdate, had_cookie: bool) -> Option<HeaderValue> {
        let (value, expires, clear) = match update {
            CookieUpdate::Keep => return None,
            CookieUpdate::Clear if !had_cookie => return None,
            CookieUpdate::Clear => ("", Timestamp::from_millis(0), true),
            CookieUpdate::Set { value, expires } => (value.as_str(), *expires, false),
        };
        // The attributes first, on the stack, so the header is one allocation of
        // its exact length, handed to the `HeaderValue` without a copy.
        let mut attributes = StackText::default();
        let _ = write_attributes(&mut attributes, expires, clear, self.secure, self.same_site);
        let attributes = attributes.as_str();
        let mut out = String::with_capacity(self.name.len() + 1 + value.len() + attributes.len());
        out.push_str(&self.name);
        out.push('=');
        out.push_str(value);
        out.push_str(attributes);
        HeaderValue::from_maybe_shared(bytes::Bytes::from(out)).ok()
    }
}

/// `; Path=/[; Max-Age=0]; Expires=<HTTP-date>; HttpOnly[; Secure]; SameSite=<s>`.
fn write_attributes(
    out: &mut impl fmt::Write,
    expires: Timestamp,
    clear: bool,
    secure: bool,
    same_site: SameSite,
) -> fmt::Result {
    out.write_str("; Path=/")?;
    if clear {
        out.write_str("; Max-Age=0")?;
    }
    out.write_str("; Expires=")?;
    expires.write_http_date(out)?;
    out.write_str("; HttpOnly")?;
    if secure {
        out.write_str("; Secure")?;
    }
    out.write_str(match same_site {
        SameSite::Strict => "; SameSite=Strict",
        SameSite::Lax => "; SameSite=Lax",
        SameSite::None => "; SameSite=None",
    })
}

fn percent_decode(s: &str) -> String {
    let mut rest = s.as_bytes();
    let mut out = Vec::with_capacity(rest.len());
    let hex = |b: &u8| char::from(*b).to_digit(16);
    while let Some((&b, tail)) = rest.split_first() {
        if let [b'%', h, l, ..] = rest
            && let (Some(h), Some(l)) = (hex(h), hex(l))
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            rest = tail.get(2..).unwrap_or_default();
            continue;
        }
        out.push(b);
        rest = tail;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first cookie called `name` in the request's `Cookie` headers: unquoted,
/// percent-decoded and trimmed (how browsers and the original read it). Borrowed
/// from the headers unless it had to be decoded.
pub fn read_named<'h>(headers: &'h HeaderMap, name: &str) -> Option<Cow<'h, str>> {
    for header in headers.get_all(header::COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            if key.trim() != name {
                continue;
            }
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            return Some(if value.contains('%') {
                Cow::Owned(percent_decode(value).trim().to_owned())
            } else {
                Cow::Borrowed(value.trim())
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(header::COOKIE, HeaderValue::from_str(c).expect("header"));
        }
        h
    }

    #[test]
    fn reads_the_first_occurrence_unquoted_and_decoded() {
        let s = CookieSettings::new("o", false);
        assert_eq!(
            s.read(&headers(&["a=1; o=\"xy\"; o=zz"])).as_deref(),
            Some("xy")
        );
        assert_eq!(s.read(&headers(&["a=1", "o=%41b "])).as_deref(), Some("Ab"));
        assert_eq!(s.read(&headers(&["oo=1; po=2"])), None);
        assert_eq!(s.read(&headers(&["o=%4"])).as_deref(), Some("%4"));
        assert_eq!(s.read(&headers(&["o=%"])).as_deref(), Some("%"));
    }

    #[test]
    fn set_and_clear_use_the_same_attributes() {
        let s = CookieSettings::new("__Host-Http-o", true);
        let set = s
            .header(
                &CookieUpdate::Set {
                    value: "abc".into(),
                    expires: Timestamp::from_millis(1_800_000_000_999),
                },
                false,
            )
            .expect("set");
        let set = set.to_str().expect("ascii");
        for part in [
            "__Host-Http-o=abc",
            "Path=/",
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Expires=Fri, 15 Jan 2027 08:00:00 GMT",
        ] {
            assert!(set.contains(part), "{part} missing in {set}");
        }
        let clear = s.header(&CookieUpdate::Clear, true).expect("clear");
        let clear = clear.to_str().expect("ascii");
        for part in ["__Host-Http-o=", "Path=/", "Secure", "Max-Age=0"] {
            assert!(clear.contains(part), "{part} missing in {clear}");
        }
        assert!(s.header(&CookieUpdate::Clear, false).is_none());
        assert!(s.header(&CookieUpdate::Keep, true).is_none());
        // The original's exact order, byte for byte.
        assert_eq!(
            set,
            "__Host-Http-o=abc; Path=/; Expires=Fri, 15 Jan 2027 08:00:00 GMT; HttpOnly; \
             Secure; SameSite=Strict"
        );
        assert_eq!(
            clear,
            "__Host-Http-o=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; \
             HttpOnly; Secure; SameSite=Strict"
        );
        let dev = CookieSettings::new("o", false)
            .header(
                &CookieUpdate::Set {
                    value: "v".into(),
                    expires: Timestamp::from_millis(1_800_000_000_999),
                },
                false,
            )
            .expect("set");
        assert_eq!(
            dev.to_str().expect("ascii"),
            "o=v; Path=/; Expires=Fri, 15 Jan 2027 08:00:00 GMT; HttpOnly; SameSite=Strict"
        );
    }
}
