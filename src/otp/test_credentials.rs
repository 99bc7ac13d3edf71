//! Test credentials (`OTP_TEST_CREDENTIALS`): fixed codes for app-store review
//! accounts and end-to-end tests.
//!
//! For a listed address nothing is sent and the listed code is the session's code;
//! every other rule (attempts, blocks, expiry, abuse limits) applies as usual, and
//! each use is an audit event. Refused in production unless
//! `OTP_TEST_CREDENTIALS_IN_PRODUCTION=true`: a fixed code is a password anyone who
//! reads the configuration knows.

use std::collections::HashMap;

use secrecy::ExposeSecret as _;

use crate::config::Env;
use crate::plugin::{CodeFormat, Credential, OtpCode};

/// Addresses with a fixed code. Codes are secrets: never printed.
#[derive(Clone, Default)]
pub struct TestCredentials {
    codes: HashMap<String, OtpCode>,
}

impl std::fmt::Debug for TestCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestCredentials({} addresses)", self.codes.len())
    }
}

/// How an address is compared: trimmed, lower-case (e-mail domains and local
/// parts as the schemas store them; phone numbers are digits anyway).
fn key(address: &str) -> String {
    address.trim().to_lowercase()
}

impl TestCredentials {
    /// Reads `OTP_TEST_CREDENTIALS` (or `_FILE`): a JSON object mapping addresses to
    /// codes of `format`. In production also needs
    /// `OTP_TEST_CREDENTIALS_IN_PRODUCTION=true`.
    pub fn read(env: &mut Env, format: &CodeFormat, production: bool) -> Self {
        let allowed_in_production = env.boolean("OTP_TEST_CREDENTIALS_IN_PRODUCTION", false);
        let Some(raw) = env.secret("OTP_TEST_CREDENTIALS") else {
            return Self::default();
        };
        if production && !allowed_in_production {
            env.problem(
                "OTP_TEST_CREDENTIALS is set in production: fixed codes would let anyone who knows \
                 them sign in as those addresses. Remove it, or set \
                 OTP_TEST_CREDENTIALS_IN_PRODUCTION=true if an app-store review account needs it",
            );
            return Self::default();
        }
        let parsed: Result<HashMap<String, String>, _> = serde_json::from_str(raw.expose_secret());
        let Ok(entries) = parsed else {
            env.problem(
                "OTP_TEST_CREDENTIALS: expected a JSON object mapping addresses to codes, \
                 e.g. {\"review@example.com\": \"4242424242\"} (the value is not shown: it is secret)",
            );
            return Self::default();
        };
        let mut codes = HashMap::new();
        for (address, code) in entries {
            match format.parse(&code) {
                Some(code) if !address.trim().is_empty() => {
                    codes.insert(key(&address), code);
                }
                _ => env.problem(format!(
                    "OTP_TEST_CREDENTIALS: the code for an address is not a code of the configured \
                     format ({} characters of OTP_ALPHABET) or the address is empty",
                    format.length()
                )),
            }
        }
        Self { codes }
    }

    /// The fixed code of `credential`'s delivered address (or whole text), if listed.
    pub fn code_for(&self, credential: &Credential) -> Option<&OtpCode> {
        if self.codes.is_empty() {
            return None;
        }
        let address = match credential.contact() {
            Some(contact) => key(contact.address()),
            None => key(credential.as_str()),
        };
        self.codes.get(&address)
    }

    /// Whether any address is listed.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}
