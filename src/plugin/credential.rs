//! Credentials (what a code is sent to) and the schema plug-in that accepts them.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use validator::ValidateEmail;

use crate::config::Env;

/// A validated credential: the canonical text the session is bound to.
///
/// It is personal data: `Debug` masks it, and logs use [`Credential::masked`].
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(String);

impl Credential {
    /// A credential from its canonical text; `None` if empty.
    pub fn new(text: String) -> Option<Self> {
        (!text.trim().is_empty()).then_some(Self(text))
    }

    /// The canonical text (for senders and the final action).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Byte length of the canonical text.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a credential is never empty. (Present for clippy's `len_without_is_empty`.)
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A form safe for logs: the address a code goes to (or else the whole text),
    /// first character of each part, the rest starred: `u***@e***.com`. Read
    /// without validating the address: it is written on every audit event.
    pub fn masked(&self) -> String {
        let fields = AddressFields::of(self);
        let chosen = fields.as_ref().and_then(AddressFields::chosen);
        mask(chosen.as_ref().map_or(self.as_str(), Chosen::text))
    }
}

/// The `email` and `phone` fields of a credential that is a JSON object, borrowed
/// from its text: what the cheap readings (channel, log mask, limit subject) look at.
#[derive(serde::Deserialize)]
pub(crate) struct AddressFields<'a> {
    #[serde(borrow, default)]
    email: Option<JsonText<'a>>,
    #[serde(borrow, default)]
    phone: Option<JsonText<'a>>,
}

/// Which field a code goes to (see [`AddressFields::chosen`]), trimmed.
pub(crate) enum Chosen<'a> {
    Email(&'a str),
    Phone(&'a str),
}

impl<'a> Chosen<'a> {
    /// The address, as written.
    pub(crate) fn text(&self) -> &'a str {
        match self {
            Chosen::Email(a) | Chosen::Phone(a) => a,
        }
    }
}

impl<'a> AddressFields<'a> {
    /// The fields of `credential`, if its text is a JSON object.
    pub(crate) fn of(credential: &'a Credential) -> Option<Self> {
        serde_json::from_str(&credential.0).ok()
    }

    /// The `email` string, trimmed, if it has an `@`.
    fn email(&self) -> Option<&str> {
        self.email
            .as_ref()
            .and_then(JsonText::as_str)
            .map(str::trim)
            .filter(|e| e.contains('@'))
    }

    /// The `phone` string, trimmed.
    fn phone(&self) -> Option<&str> {
        self.phone
            .as_ref()
            .and_then(JsonText::as_str)
            .map(str::trim)
    }

    /// The field [`Credential::contact`] would send to: the `email` when it is a
    /// valid address, else the `phone`. Cheap in the usual case: the address is
    /// validated only when both fields are there, the one case where validity
    /// decides (otherwise an invalid `email` beside a `phone` would be counted and
    /// logged while the code goes to the phone, and varying it would dodge the
    /// per-address limits).
    pub(crate) fn chosen(&self) -> Option<Chosen<'_>> {
        match (self.email(), self.phone()) {
            (Some(email), None) => Some(Chosen::Email(email)),
            (Some(email), Some(phone)) => Some(match EmailCredential::address(email) {
                Some(_) => Chosen::Email(email),
                None => Chosen::Phone(phone),
            }),
            (None, phone) => phone.map(Chosen::Phone),
        }
    }
}

/// A JSON value read for a string: borrowed from the text unless it has escapes
/// (serde's own `Option<Cow<str>>` always copies: only a bare `Cow<str>` field
/// borrows); any other value is `Other`, as [`Credential::contact`] skips it.
enum JsonText<'a> {
    Str(std::borrow::Cow<'a, str>),
    Other,
}

impl JsonText<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            JsonText::Str(s) => Some(s),
            JsonText::Other => None,
        }
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for JsonText<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess};
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = JsonText<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JsonText::Str(v.into()))
            }

            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonText::Str(v.to_owned().into()))
            }

            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(JsonText::Other)
            }

            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(JsonText::Other)
            }

            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(JsonText::Other)
            }

            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(JsonText::Other)
            }

            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(JsonText::Other)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(JsonText::Other)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(JsonText::Other)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential({})", self.masked())
    }
}

/// Masks personal data for logs: `user@example.com` → `u***@e***.com`,
/// `+34600000012` → `+34*****12`, anything else → first character and a length.
pub fn mask(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(64) + 8);
    // Writing to a `String` cannot fail.
    let _ = mask_into(text, &mut out);
    out
}

/// [`mask`], written to `out` (the audit log masks into a stack buffer).
pub fn mask_into(text: &str, out: &mut impl fmt::Write) -> fmt::Result {
    if let Some((user, domain)) = text.rsplit_once('@') {
        let (host, tld) = domain.rsplit_once('.').unwrap_or((domain, ""));
        write_first(out, user)?;
        out.write_str("***@")?;
        write_first(out, host)?;
        out.write_str("***")?;
        // A top-level domain is short and plain; anything else is not shown.
        if !tld.is_empty()
            && tld.len() <= 16
            && tld.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            out.write_char('.')?;
            out.write_str(tld)?;
        }
        return Ok(());
    }
    let count = text.chars().count();
    if let Some(digits) = text.strip_prefix('+')
        && count > 6
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        // All ASCII from here, so byte offsets are character offsets.
        out.write_str(text.get(..3).unwrap_or_default())?;
        for _ in 0..count - 5 {
            out.write_char('*')?;
        }
        return out.write_str(text.get(text.len() - 2..).unwrap_or_default());
    }
    if !text.is_empty() {
        write_first(out, text)?;
        write!(out, "***({count} chars)")?;
    }
    Ok(())
}

/// The first character of `text`, if any.
fn write_first(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    match text.chars().next() {
        Some(c) => out.write_char(c),
        None => Ok(()),
    }
}

/// Turns a request body (JSON, or a form made into a JSON object) into a credential.
///
/// Implementations must be deterministic: equal inputs give equal credentials,
/// because a session matches credentials by exact equality.
pub trait CredentialSchema: Send + Sync + fmt::Debug {
    /// The credential, or `None` if the body is not acceptable.
    fn parse(&self, body: &Value) -> Option<Credential>;
}

/// The original's permissive schema: any non-empty JSON value, as compact canonical
/// JSON text (object keys sorted, no whitespace).
///
/// Refused: `null`, `false`, `true`, `0`, `""` (also whitespace-only), `[]` and `{}`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonCredential;

impl CredentialSchema for JsonCredential {
    fn parse(&self, body: &Value) -> Option<Credential> {
        let empty = match body {
            Value::Null | Value::Bool(_) => true,
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::String(s) => s.trim().is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
        };
        if empty {
            return None;
        }
        serde_json::to_string(body).ok().and_then(Credential::new)
    }
}

/// An e-mail address in `{"email": "..."}` (JSON or form), validated; the credential
/// is `{"email":"<address>"}` with the address trimmed and its domain lower-cased.
#[derive(Debug, Default, Clone, Copy)]
pub struct EmailCredential;

impl EmailCredential {
    /// Normalises and validates one address.
    pub fn address(raw: &str) -> Option<String> {
        let raw = raw.trim();
        let (user, domain) = raw.rsplit_once('@')?;
        let address = format!("{user}@{}", domain.to_ascii_lowercase());
        (address.len() <= 254 && address.validate_email()).then_some(address)
    }
}

impl CredentialSchema for EmailCredential {
    fn parse(&self, body: &Value) -> Option<Credential> {
        let Value::Object(map) = body else {
            return None;
        };
        if map.len() != 1 {
            return None;
        }
        let address = Self::address(map.get("email")?.as_str()?)?;
        let canonical = serde_json::json!({ "email": address });
        Credential::new(canonical.to_string())
    }
}

/// A phone number in `{"phone": "+34 600 00 00 12"}` (JSON or form), validated with
/// the `phonenumber` crate; the credential is `{"phone":"<E.164>"}` (`+34600000012`).
/// The number must start with `+` and its country code: there is no default region.
#[derive(Debug, Default, Clone, Copy)]
pub struct PhoneCredential;

impl PhoneCredential {
    /// Validates one number and normalises it to E.164.
    pub fn number(raw: &str) -> Option<String> {
        let raw = raw.trim();
        if !raw.starts_with('+') || raw.len() > 40 {
            return None;
        }
        let parsed = phonenumber::parse(None, raw).ok()?;
        phonenumber::is_valid(&parsed)
            .then(|| parsed.format().mode(phonenumber::Mode::E164).to_string())
    }
}

impl CredentialSchema for PhoneCredential {
    fn parse(&self, body: &Value) -> Option<Credential> {
        let Value::Object(map) = body else {
            return None;
        };
        if map.len() != 1 {
            return None;
        }
        let number = Self::number(map.get("phone")?.as_str()?)?;
        Credential::new(serde_json::json!({ "phone": number }).to_string())
    }
}

/// Either an e-mail address or a phone number: `{"email": ...}` or `{"phone": ...}`,
/// each validated and normalised as [`EmailCredential`] and [`PhoneCredential`] do.
#[derive(Debug, Default, Clone, Copy)]
pub struct EmailOrPhoneCredential;

impl CredentialSchema for EmailOrPhoneCredential {
    fn parse(&self, body: &Value) -> Option<Credential> {
        EmailCredential
            .parse(body)
            .or_else(|| PhoneCredential.parse(body))
    }
}

/// Where a credential can be reached, for senders that route by kind.
///
/// `Debug` masks the address.
#[derive(Clone, PartialEq, Eq)]
pub enum Contact {
    /// An e-mail address (validated, domain lower-cased).
    Email(String),
    /// A phone number in E.164.
    Phone(String),
}

impl Contact {
    /// The address or number.
    pub fn address(&self) -> &str {
        match self {
            Contact::Email(a) | Contact::Phone(a) => a,
        }
    }

    /// The channel a code to this contact travels on.
    pub fn channel(&self) -> Channel {
        match self {
            Contact::Email(_) => Channel::Email,
            Contact::Phone(_) => Channel::Phone,
        }
    }
}

/// How a code reached its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// By e-mail.
    Email,
    /// By phone (SMS, WhatsApp, voice: the sender decides).
    Phone,
    /// Something else: a credential that is neither an e-mail address nor a phone number.
    Other,
}

impl Channel {
    /// `email`, `phone` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Phone => "phone",
            Channel::Other => "other",
        }
    }
}

impl fmt::Debug for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contact::Email(a) => write!(f, "Email({})", mask(a)),
            Contact::Phone(a) => write!(f, "Phone({})", mask(a)),
        }
    }
}

impl Credential {
    /// The channel a code for this credential takes, read without validating the
    /// address (cheap enough for a metric label): `email` when the `email` field
    /// holds an `@`, else `phone` when there is a `phone` field, else `other`.
    pub fn channel(&self) -> Channel {
        match AddressFields::of(self) {
            Some(f) if f.email().is_some() => Channel::Email,
            Some(f) if f.phone().is_some() => Channel::Phone,
            _ => Channel::Other,
        }
    }

    /// The e-mail address or phone number in this credential: a JSON object with a
    /// valid `email` (preferred) or `phone` string field. `None` for anything else.
    pub fn contact(&self) -> Option<Contact> {
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&self.0) else {
            return None;
        };
        if let Some(address) = map
            .get("email")
            .and_then(Value::as_str)
            .and_then(EmailCredential::address)
        {
            return Some(Contact::Email(address));
        }
        map.get("phone")
            .and_then(Value::as_str)
            .and_then(PhoneCredential::number)
            .map(Contact::Phone)
    }
}

/// Which credential schema parses create bodies (`OTP_CREDENTIAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// Any non-empty JSON value (the original's schema).
    Json,
    /// `{"email": "<valid address>"}`.
    Email,
    /// `{"phone": "<E.164 number>"}`, normalised to E.164.
    Phone,
    /// Either of the two: `{"email": ...}` or `{"phone": ...}`.
    EmailOrPhone,
}

impl CredentialKind {
    /// Reads `OTP_CREDENTIAL`: `json` (default), `email`, `phone` or `email_or_phone`.
    pub fn read(env: &mut Env) -> Self {
        env.choice(
            "OTP_CREDENTIAL",
            CredentialKind::Json,
            &[
                ("json", CredentialKind::Json),
                ("email", CredentialKind::Email),
                ("phone", CredentialKind::Phone),
                ("email_or_phone", CredentialKind::EmailOrPhone),
            ],
        )
    }

    /// The schema of this kind.
    pub fn schema(self) -> Arc<dyn CredentialSchema> {
        match self {
            CredentialKind::Json => Arc::new(JsonCredential),
            CredentialKind::Email => Arc::new(EmailCredential),
            CredentialKind::Phone => Arc::new(PhoneCredential),
            CredentialKind::EmailOrPhone => Arc::new(EmailOrPhoneCredential),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(schema: &dyn CredentialSchema, v: Value) -> Option<String> {
        schema.parse(&v).map(|c| c.as_str().to_owned())
    }

    #[test]
    fn json_schema_refuses_empty_values() {
        for v in [
            json!(null),
            json!(false),
            json!(true),
            json!(0),
            json!(""),
            json!("  "),
            json!([]),
            json!({}),
        ] {
            assert_eq!(text(&JsonCredential, v.clone()), None, "{v}");
        }
    }

    #[test]
    fn json_schema_is_canonical() {
        assert_eq!(
            text(&JsonCredential, json!({"b": 1, "a": [1, 2]})).as_deref(),
            Some(r#"{"a":[1,2],"b":1}"#)
        );
        assert_eq!(
            text(&JsonCredential, json!("x,y|z")).as_deref(),
            Some(r#""x,y|z""#)
        );
        assert_eq!(text(&JsonCredential, json!(7)).as_deref(), Some("7"));
    }

    #[test]
    fn email_schema_validates_and_normalises() {
        assert_eq!(
            text(&EmailCredential, json!({"email": " Ann@Example.COM "})).as_deref(),
            Some(r#"{"email":"Ann@example.com"}"#)
        );
        for v in [
            json!({"email": "nope"}),
            json!({"email": 1}),
            json!({"mail": "a@b.co"}),
            json!("a@b.co"),
            json!({"email": "a@b.co", "x": 1}),
        ] {
            assert_eq!(text(&EmailCredential, v.clone()), None, "{v}");
        }
    }

    #[test]
    fn masks_hide_most_of_the_credential() {
        assert_eq!(mask("user@example.com"), "u***@e***.com");
        assert_eq!(mask("+34600000012"), "+34*******12");
        assert_eq!(mask("{\"k\":1}"), "{***(7 chars)");
        assert_eq!(
            format!(
                "{:?}",
                Credential::new("ab@cd.ef".into()).expect("non-empty")
            ),
            "Credential(a***@c***.ef)"
        );
    }
    #[test]
    fn phone_schema_normalises_to_e164() {
        assert_eq!(
            text(&PhoneCredential, json!({"phone": " +34 600 00 00 12 "})).as_deref(),
            Some(r#"{"phone":"+34600000012"}"#)
        );
        for v in [
            json!({"phone": "600000012"}),
            json!({"phone": "+34 12"}),
            json!({"phone": "+1 555 0100 abc"}),
            json!({"email": "a@b.co"}),
        ] {
            assert_eq!(text(&PhoneCredential, v.clone()), None, "{v}");
        }
    }

    #[test]
    fn email_or_phone_accepts_either_and_credentials_name_their_contact() {
        let phone = EmailOrPhoneCredential
            .parse(&json!({"phone": "+34600000012"}))
            .expect("phone");
        assert_eq!(phone.contact(), Some(Contact::Phone("+34600000012".into())));
        let email = EmailOrPhoneCredential
            .parse(&json!({"email": "ann@example.com"}))
            .expect("email");
        assert_eq!(
            email.contact(),
            Some(Contact::Email("ann@example.com".into()))
        );
        assert_eq!(EmailOrPhoneCredential.parse(&json!({"x": 1})), None);
        assert_eq!(
            format!("{:?}", phone.contact().expect("contact")),
            "Phone(+34*******12)"
        );
        assert_eq!(Credential::new("\"x\"".into()).expect("c").contact(), None);
    }

    #[test]
    fn a_json_email_credential_is_masked_by_its_address() {
        let c = Credential::new(r#"{"email":"user@example.com","userId":"7"}"#.to_owned())
            .expect("non-empty");
        assert_eq!(c.masked(), "u***@e***.com");
        let c = Credential::new(r#"{"phone":"+34600000012"}"#.to_owned()).expect("non-empty");
        assert_eq!(c.masked(), "+34*******12");
    }

    #[test]
    fn the_mask_shows_the_field_the_code_goes_to_and_never_a_whole_number() {
        let masked = |text: &str| Credential::new(text.to_owned()).expect("c").masked();
        // An `email` that is not a string is skipped, as `contact` skips it.
        assert_eq!(
            masked(r#"{"email":{"a":"x@y.com"},"phone":"+34600000012"}"#),
            "+34*******12"
        );
        assert_eq!(
            masked(r#"{"email":[1,2],"phone":"+34600000012"}"#),
            "+34*******12"
        );
        // Beside a phone, an invalid `email` is not where the code goes.
        assert_eq!(
            masked(r#"{"email":"junk@x.secret stuff","phone":"+34600000012"}"#),
            "+34*******12"
        );
        assert_eq!(
            masked(r#"{"email":"ann@example.com","phone":"+34600000012"}"#),
            "a***@e***.com"
        );
        // Only a plain top-level domain is shown.
        assert_eq!(mask("a@b.c d"), "a***@b***");
        assert_eq!(mask("a@b.com\"},\"phone\":\"+34600000012\"}"), "a***@b***");
        for text in [
            r#"{"email":{"a":"x@y.com"},"phone":"+34600000012"}"#,
            r#"{"email":"x@y.z","phone":"+34600000012","n":{"a":[1,{"b":null}]}}"#,
        ] {
            assert!(!masked(text).contains("600000012"), "{text}");
        }
    }
}
