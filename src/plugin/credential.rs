//! Credentials (what a code is sent to) and the schema plug-in that accepts them.

use std::fmt;

use serde_json::Value;
use validator::ValidateEmail;

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

    /// A form safe for logs: first character of each part, the rest starred.
    pub fn masked(&self) -> String {
        mask(&self.0)
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
    if let Some((user, domain)) = text.rsplit_once('@') {
        let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
        let (host, tld) = domain.rsplit_once('.').unwrap_or((domain, ""));
        let tld = if tld.is_empty() {
            String::new()
        } else {
            format!(".{tld}")
        };
        return format!("{}***@{}***{}", first(user), first(host), tld);
    }
    let chars: Vec<char> = text.chars().collect();
    if text.starts_with('+') && chars.len() > 6 && chars[1..].iter().all(char::is_ascii_digit) {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 2..].iter().collect();
        return format!("{head}{}{tail}", "*".repeat(chars.len() - 5));
    }
    match chars.first() {
        Some(c) => format!("{c}***({} chars)", chars.len()),
        None => String::new(),
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
}
