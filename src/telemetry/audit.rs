//! Audit events: one log event per security-relevant fact (a session created, a
//! code sent or not, a verification and its failures, a block, a limit hit, a
//! failed final action), on the `audit` target so they can be routed or silenced
//! apart from the access log (`RUST_LOG=info,audit=off`).
//!
//! Each event carries the request's span (time, request id, client IP), an
//! `outcome`, the masked address and a keyed hash of its canonical form: the
//! same address always hashes alike, so its events can be correlated across
//! sessions and instances, but the hash cannot be reversed or recomputed without
//! the server's secret. Never a code, a key or a full address.

use std::fmt;
use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::crypto::keyed_mac;
use crate::limit::canonical_text;
use crate::plugin::Credential;
use crate::plugin::credential::{AddressFields, Chosen, mask_into};
use crate::stack_text::StackText;

/// Bytes of the keyed hash that are logged (96 bits: no collisions in practice,
/// and short enough to read).
const HASH_BYTES: usize = 12;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A new session, its first code sent.
    SessionCreated,
    /// A code handed to the sender and accepted (`resent` for a resend).
    CodeSent {
        /// A resend of the session's current code.
        resent: bool,
    },
    /// A code the sender refused (`rejected`) or could not deliver (`failed`).
    SendFailed {
        /// `rejected` or `failed`.
        outcome: &'static str,
    },
    /// The right code.
    Verified,
    /// A wrong code; `attempts_left` for the current code.
    VerifyFailed {
        /// Wrong codes still allowed for this code.
        attempts_left: u32,
    },
    /// The code is blocked for good (`attempts`), or a verification was refused
    /// while blocked (`not_allowed`).
    Blocked {
        /// Why.
        reason: &'static str,
    },
    /// An abuse limit refused the request.
    LimitHit {
        /// The limit's name (`sends:credential`, `creates:ip`, ...).
        limit: &'static str,
    },
    /// The final action failed after a right code.
    FinalActionFailed,
    /// A test credential (`OTP_TEST_CREDENTIALS`) got its fixed code: nothing was sent.
    TestCredentialUsed,
}

impl Event {
    /// The event's name in the log (`event` field).
    pub fn name(self) -> &'static str {
        match self {
            Event::SessionCreated => "session_created",
            Event::CodeSent { resent: false } => "code_sent",
            Event::CodeSent { resent: true } => "code_resent",
            Event::SendFailed { .. } => "send_failed",
            Event::Verified => "verified",
            Event::VerifyFailed { .. } => "verify_failed",
            Event::Blocked { .. } => "blocked",
            Event::LimitHit { .. } => "limit_hit",
            Event::FinalActionFailed => "final_action_failed",
            Event::TestCredentialUsed => "test_credential_used",
        }
    }

    /// The event's `outcome` field.
    pub fn outcome(self) -> &'static str {
        match self {
            Event::SessionCreated | Event::CodeSent { .. } => "sent",
            Event::SendFailed { outcome } => outcome,
            Event::Verified => "success",
            Event::VerifyFailed { .. } => "incorrect",
            Event::Blocked { reason } => reason,
            Event::LimitHit { .. } => "refused",
            Event::FinalActionFailed => "error",
            Event::TestCredentialUsed => "not_sent",
        }
    }
}

/// Writes audit events, hashing addresses under a key derived from the server's
/// limit secret (instances sharing that secret hash alike).
#[derive(Clone)]
pub struct Audit {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Audit").field("key", &"[REDACTED]").finish()
    }
}

impl Audit {
    /// An audit trail whose hashes are keyed by a key derived from `secret` (a
    /// separate key: the limit counters' keys and the audit hashes do not match).
    pub fn new(secret: &[u8; 32]) -> Self {
        let mut derive = keyed_mac(secret);
        derive.update(b"secure-otp-server audit hash v1");
        let key: [u8; 32] = derive.finalize().into_bytes().into();
        Self {
            mac: keyed_mac(&key),
        }
    }

    /// Records `event` about `credential`, if the `audit` target is enabled.
    pub fn record(&self, event: Event, credential: Option<&Credential>) {
        match credential {
            Some(credential) => self.record_about(event, &Subject::of(credential)),
            None if audit_enabled() => write(event, "", ""),
            None => {}
        }
    }

    /// Records `event` about `subject`, if the `audit` target is enabled: its
    /// masked address and hash are worked out at its first event only.
    pub fn record_about(&self, event: Event, subject: &Subject<'_>) {
        if !audit_enabled() {
            return;
        }
        let (masked, hash) = subject
            .described
            .get_or_init(|| self.describe(subject.credential));
        write(
            event,
            masked.as_str(),
            std::str::from_utf8(hash).unwrap_or_default(),
        );
    }

    /// A credential's masked address and keyed hash, from one reading of it,
    /// written on the stack.
    fn describe(&self, credential: &Credential) -> (StackText, [u8; HASH_BYTES * 2]) {
        let mut masked = StackText::default();
        let fields = AddressFields::of(credential);
        let chosen = fields.as_ref().and_then(AddressFields::chosen);
        let address = chosen.as_ref().map_or(credential.as_str(), Chosen::text);
        // Writing to a `StackText` cannot fail.
        let _ = mask_into(address, &mut masked);
        let hash = self.hex_hash(&canonical_text(credential, chosen.as_ref()));
        (masked, hash)
    }

    /// The keyed hash of a canonical address, in hex.
    pub fn hash(&self, canonical: &str) -> String {
        String::from_utf8_lossy(&self.hex_hash(canonical)).into_owned()
    }

    fn hex_hash(&self, canonical: &str) -> [u8; HASH_BYTES * 2] {
        let mut mac = self.mac.clone();
        mac.update(canonical.as_bytes());
        crate::crypto::hex(&mac.finalize().into_bytes())
    }
}

/// Who audit events are about: a credential whose masked address and keyed hash
/// are worked out at its first event and reused by the next ones (a create
/// records two events about one address), not read and hashed again for each.
pub struct Subject<'a> {
    credential: &'a Credential,
    described: OnceLock<(StackText, [u8; HASH_BYTES * 2])>,
}

impl fmt::Debug for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The credential's own `Debug` masks it.
        f.debug_struct("Subject")
            .field("credential", self.credential)
            .finish_non_exhaustive()
    }
}

impl<'a> Subject<'a> {
    /// The subject `credential`, not yet read.
    pub fn of(credential: &'a Credential) -> Self {
        Self {
            credential,
            described: OnceLock::new(),
        }
    }

    /// Whether this is the subject of that very credential (not merely an equal one).
    pub(crate) fn is_about(&self, credential: &Credential) -> bool {
        std::ptr::eq(self.credential, credential)
    }
}

fn audit_enabled() -> bool {
    tracing::enabled!(target: "audit", tracing::Level::INFO)
}

/// One audit line.
fn write(event: Event, masked: &str, hash: &str) {
    let name = event.name();
    let outcome = event.outcome();
    match event {
        Event::VerifyFailed { attempts_left } => tracing::info!(
            target: "audit",
            event = name, outcome, credential = masked, credential_hash = hash,
            attempts_left, "audit"
        ),
        Event::LimitHit { limit } => tracing::info!(
            target: "audit",
            event = name, outcome, credential = masked, credential_hash = hash,
            limit, "audit"
        ),
        _ => tracing::info!(
            target: "audit",
            event = name, outcome, credential = masked, credential_hash = hash, "audit"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_hashes_alike_and_another_key_hashes_otherwise() {
        let a = Audit::new(&[7; 32]);
        let b = Audit::new(&[8; 32]);
        assert_eq!(a.hash("ann@example.com"), a.hash("ann@example.com"));
        assert_ne!(a.hash("ann@example.com"), a.hash("bob@example.com"));
        assert_ne!(a.hash("ann@example.com"), b.hash("ann@example.com"));
        assert_eq!(a.hash("ann@example.com").len(), HASH_BYTES * 2);
        assert!(!a.hash("ann@example.com").contains("ann"));
    }

    #[test]
    fn a_subject_is_read_at_its_first_event_and_not_before() {
        let audit = Audit::new(&[7; 32]);
        let credential =
            Credential::new(r#"{"email":" Ann@Example.com "}"#.to_owned()).expect("credential");
        let subject = Subject::of(&credential);
        // Nobody listens: nothing is worked out.
        audit.record_about(Event::SessionCreated, &subject);
        assert!(subject.described.get().is_none());

        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            audit.record_about(Event::SessionCreated, &subject);
            audit.record_about(Event::CodeSent { resent: false }, &subject);
        });
        let (masked, hash) = subject
            .described
            .get()
            .expect("described at the first event");
        assert_eq!(masked.as_str(), credential.masked());
        assert_eq!(
            std::str::from_utf8(hash).ok(),
            Some(&*audit.hash("ann@example.com"))
        );
    }

    #[test]
    fn every_event_has_a_distinct_name() {
        let events = [
            Event::SessionCreated,
            Event::CodeSent { resent: false },
            Event::CodeSent { resent: true },
            Event::SendFailed { outcome: "failed" },
            Event::Verified,
            Event::VerifyFailed { attempts_left: 1 },
            Event::Blocked { reason: "attempts" },
            Event::LimitHit {
                limit: "creates:ip",
            },
            Event::FinalActionFailed,
            Event::TestCredentialUsed,
        ];
        let mut names: Vec<_> = events.iter().map(|e| e.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), events.len());
    }
}
