//! Abuse limits: budgets per address, per client network, per phone-number prefix
//! and for the whole deployment, that no new session, resend, instance or IP resets.
//!
//! The flows ask before they act ([`Limits::admit_request`], [`Limits::admit_send`],
//! [`Limits::admit_guess`]); a refusal changes nothing and sends nothing. Counters
//! live in a [`LimitStore`] (memory, or the shared Redis), keyed by an HMAC of the
//! address under a server secret: the store never holds an address.

mod settings;

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use smallvec::{SmallVec, smallvec};

use crate::clock::Timestamp;
use crate::crypto::keyed_mac;
use crate::error::Error;
use crate::plugin::Credential;
use crate::plugin::credential::{AddressFields, Chosen};
use crate::plugin::limit_store::{Hit, LimitKey, LimitStore, Receipt, Rule, Scope};
use crate::telemetry::audit::{Audit, Event};
use crate::telemetry::metric;
pub use settings::{LimitPolicy, Pumping};

/// How long a suspected SMS-pumping prefix stays paused, and the window its
/// conversion is measured over.
pub const PUMPING_WINDOW: Duration = Duration::from_secs(3600);

/// The events recorded on the way in, to take back if the request does not go on.
#[derive(Debug, Default)]
#[must_use = "an admission is refunded or kept on purpose"]
pub struct Admission(SmallVec<[(LimitKey, Receipt); 4]>);

/// Which per-client budget a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Create or resend (`OTP_LIMIT_CREATES_PER_IP`).
    Create,
    /// Verify (`OTP_LIMIT_VERIFIES_PER_IP`).
    Verify,
}

/// What a credential is counted as: an HMAC of its canonical address, and for a
/// phone number its country code and prefix.
struct Subject {
    address: [u8; 16],
    phone: Option<PhonePrefix>,
}

struct PhonePrefix {
    country: u16,
    /// `+` country code and the next 3 digits, zero-padded (not secret: millions of
    /// numbers share it).
    prefix: [u8; 16],
}

/// The limits engine: the policy, its counters, and the key that hides addresses.
#[derive(Clone)]
pub struct Limits {
    policy: Arc<LimitPolicy>,
    store: Arc<dyn LimitStore>,
    mac: Hmac<Sha256>,
    audit: Audit,
}

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limits")
            .field("policy", &self.policy)
            .field("store", &self.store)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl Limits {
    /// An engine counting in `store`, hiding addresses under `key` (every instance
    /// sharing `store` must use the same key).
    pub fn new(policy: LimitPolicy, store: Arc<dyn LimitStore>, key: &[u8; 32]) -> Self {
        Self {
            policy: Arc::new(policy),
            store,
            mac: keyed_mac(key),
            audit: Audit::new(key),
        }
    }

    /// No limit at all (for embedders and tests that do their own).
    pub fn off() -> Self {
        Self::new(
            LimitPolicy::off(),
            Arc::new(crate::plugin::MemoryLimitStore::new(0)),
            &rand::random(),
        )
    }

    /// The audit trail, hashing addresses under a key derived from this engine's.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// Counts and audits a refusal by the limit `scope`.
    fn refused(&self, scope: Scope, credential: Option<&Credential>) {
        let limit = scope.name();
        metric::limit_hit(limit);
        self.audit.record(Event::LimitHit { limit }, credential);
    }

    /// The policy.
    pub fn policy(&self) -> &LimitPolicy {
        &self.policy
    }

    /// Counts one request of `kind` from `client` (its /64 for IPv6); refused once
    /// the client's budget is spent. A client of unknown address is not counted.
    pub async fn admit_request(
        &self,
        kind: Request,
        client: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<(), Error> {
        let (rule, scope) = match kind {
            Request::Create => (self.policy.creates_per_ip, Scope::CreatesPerIp),
            Request::Verify => (self.policy.verifies_per_ip, Scope::VerifiesPerIp),
        };
        let (Some(rule), Some(ip)) = (rule, client) else {
            return Ok(());
        };
        let key = LimitKey {
            scope,
            subject: network(ip),
        };
        match self.store.hit(&key, rule, true, now).await? {
            Hit::Allowed { .. } => Ok(()),
            Hit::Denied { retry_at } => {
                self.refused(scope, None);
                Err(Error::too_many_requests(retry_at, now))
            }
        }
    }

    /// Admits one send of a code to `credential`: its country is allowed, its
    /// failure budget is not spent, and no send budget (per address, per phone
    /// prefix, global) nor the pumping breaker stops it. Each budget is counted
    /// on the way; a refusal takes every count back.
    pub async fn admit_send(
        &self,
        credential: &Credential,
        now: Timestamp,
    ) -> Result<Admission, Error> {
        let p = &*self.policy;
        let by_address = p.failures_per_credential.is_some() || p.sends_per_credential.is_some();
        let by_phone =
            p.sends_per_prefix.is_some() || p.phone_countries.is_some() || p.pumping.is_some();
        if !by_address && !by_phone && p.sends_global.is_none() {
            return Ok(Admission::default());
        }
        let subject = if by_address || by_phone {
            self.subject(credential, by_address)
        } else {
            Subject {
                address: [0; 16],
                phone: None,
            }
        };
        if let (Some(countries), Some(phone)) = (&p.phone_countries, &subject.phone)
            && !countries.contains(&phone.country)
        {
            self.audit.record(
                Event::LimitHit {
                    limit: "phone:country",
                },
                Some(credential),
            );
            return Err(Error::UnsupportedCountry);
        }
        let by_address = |scope| LimitKey {
            scope,
            subject: subject.address,
        };
        let mut checks: SmallVec<[(LimitKey, Rule, bool); 7]> = SmallVec::new();
        let mut push = |key, rule: Option<Rule>, record| {
            if let Some(rule) = rule {
                checks.push((key, rule, record));
            }
        };
        push(
            by_address(Scope::FailuresPerCredential),
            p.failures_per_credential,
            false,
        );
        push(
            by_address(Scope::SendsPerCredential),
            p.sends_per_credential,
            true,
        );
        push(
            LimitKey {
                scope: Scope::SendsGlobal,
                subject: [0; 16],
            },
            p.sends_global,
            true,
        );
        let pumping = subject.phone.as_ref().and_then(|ph| {
            let by_prefix = |scope| LimitKey {
                scope,
                subject: ph.prefix,
            };
            push(by_prefix(Scope::SendsPerPrefix), p.sends_per_prefix, true);
            let pumping = p.pumping?;
            let pause = Rule::new(1, PUMPING_WINDOW);
            let tally = Rule::new(u32::MAX, PUMPING_WINDOW);
            push(by_prefix(Scope::PrefixPaused), Some(pause), false);
            push(by_prefix(Scope::PrefixSends), Some(tally), true);
            push(by_prefix(Scope::PrefixVerified), Some(tally), false);
            Some((pumping, by_prefix(Scope::PrefixPaused)))
        });
        let (admission, counts) = self.run(&checks, credential, now).await?;
        if let Some((pumping, pause_key)) = pumping {
            // The last two checks are the hour's sends (this one included) and verifications.
            let sent = counts.len().checked_sub(2).and_then(|i| counts.get(i));
            let sends = sent.copied().unwrap_or(0).saturating_sub(1);
            let verified = counts.last().copied().unwrap_or(0);
            if pumping.trips(sends, verified) {
                self.refund(admission).await;
                let paused = self
                    .store
                    .hit(&pause_key, Rule::new(1, PUMPING_WINDOW), true, now)
                    .await?;
                let prefix = String::from_utf8_lossy(&pause_key.subject);
                tracing::warn!(
                    target: "audit",
                    event = "pumping_pause",
                    prefix = prefix.trim_end_matches('\0'),
                    sends,
                    verified,
                    "sends to a phone-number prefix paused for an hour: too few of its codes are verified (suspected SMS pumping)"
                );
                self.refused(Scope::PrefixPaused, Some(credential));
                let retry_at = match paused {
                    Hit::Denied { retry_at } => retry_at,
                    Hit::Allowed { .. } => now.plus(PUMPING_WINDOW),
                };
                return Err(Error::too_many_requests(retry_at, now));
            }
        }
        Ok(admission)
    }

    /// Admits one guess at a code for `credential`: it counts as a failure now, and
    /// is refunded ([`Limits::refund`]) if the code turns out right. Counting first
    /// keeps concurrent guesses from different sessions within the budget.
    pub async fn admit_guess(
        &self,
        credential: &Credential,
        now: Timestamp,
    ) -> Result<Admission, Error> {
        let Some(rule) = self.policy.failures_per_credential else {
            return Ok(Admission::default());
        };
        let key = LimitKey {
            scope: Scope::FailuresPerCredential,
            subject: self.subject(credential, true).address,
        };
        // One counter: no batch, no join (this runs on every verify).
        match self.store.hit(&key, rule, true, now).await? {
            Hit::Allowed { receipt, .. } => Ok(Admission(
                receipt.map(|r| smallvec![(key, r)]).unwrap_or_default(),
            )),
            Hit::Denied { retry_at } => {
                self.refused(Scope::FailuresPerCredential, Some(credential));
                Err(Error::too_many_requests(retry_at, now))
            }
        }
    }

    /// Records that a session for `credential` was verified (the pumping breaker's
    /// conversion), and takes back a guess admitted for it.
    pub async fn verified(&self, credential: &Credential, guess: Admission, now: Timestamp) {
        self.refund(guess).await;
        if self.policy.pumping.is_none() {
            return;
        }
        let Some(phone) = self.subject(credential, false).phone else {
            return;
        };
        let key = LimitKey {
            scope: Scope::PrefixVerified,
            subject: phone.prefix,
        };
        let tally = Rule::new(u32::MAX, PUMPING_WINDOW);
        if let Err(e) = self.store.hit(&key, tally, true, now).await {
            tracing::warn!(error = %e, "could not count a verified session for the pumping breaker");
        }
    }

    /// Takes back every event `admission` recorded (the request did not go on).
    pub async fn refund(&self, admission: Admission) {
        for (key, receipt) in admission.0 {
            if let Err(e) = self.store.undo(&key, receipt).await {
                tracing::warn!(error = %e, "could not take back a limit count");
            }
        }
    }

    /// Runs `checks` together; all or nothing: on a refusal or a failure the
    /// recorded events are taken back. Returns the counts in order.
    async fn run(
        &self,
        checks: &[(LimitKey, Rule, bool)],
        credential: &Credential,
        now: Timestamp,
    ) -> Result<(Admission, SmallVec<[u32; 7]>), Error> {
        let hits = self.store.hit_all(checks, now).await;
        let mut admission = Admission::default();
        let mut counts = SmallVec::new();
        let mut refusal: Option<Error> = None;
        for ((key, _, _), hit) in checks.iter().zip(hits) {
            match hit {
                Ok(Hit::Allowed { count, receipt }) => {
                    counts.push(count);
                    if let Some(r) = receipt {
                        admission.0.push((*key, r));
                    }
                }
                Ok(Hit::Denied { retry_at }) => {
                    self.refused(key.scope, Some(credential));
                    refusal = Some(match refusal {
                        Some(Error::TooManyRequests { retry_at: r, .. }) => {
                            Error::too_many_requests(r.max(retry_at), now)
                        }
                        Some(other) => other,
                        None => Error::too_many_requests(retry_at, now),
                    });
                }
                // Fail closed: a limit that cannot be checked refuses.
                Err(e) => refusal = Some(e.into()),
            }
        }
        match refusal {
            None => Ok((admission, counts)),
            Some(e) => {
                self.refund(admission).await;
                Err(e)
            }
        }
    }

    /// The credential's counting keys; the HMAC of its address only when
    /// `address` is wanted (a phone-prefix rule needs only the prefix).
    fn subject(&self, credential: &Credential, address: bool) -> Subject {
        let fields = AddressFields::of(credential);
        let canonical = canonical_of(fields.as_ref().and_then(AddressFields::chosen).as_ref());
        let mut subject = Subject {
            address: [0; 16],
            phone: None,
        };
        let text = match &canonical {
            Canonical::Email(a) => a,
            Canonical::Phone(n, _) => n.as_str(),
            Canonical::Other => credential.as_str(),
        };
        if address {
            let mut mac = self.mac.clone();
            mac.update(text.as_bytes());
            let digest = mac.finalize().into_bytes();
            for (a, d) in subject.address.iter_mut().zip(digest.iter()) {
                *a = *d;
            }
        }
        if let Canonical::Phone(_, prefix) = canonical {
            subject.phone = Some(prefix);
        }
        subject
    }
}

/// The canonical form of an address (what its limits count and its audit hash
/// is taken of): `chosen` is the credential's address field
/// ([`AddressFields::chosen`]); the e-mail trimmed and lower-cased, the phone in
/// E.164, else the credential's whole text.
pub(crate) fn canonical_text<'a>(
    credential: &'a Credential,
    chosen: Option<&Chosen<'a>>,
) -> Cow<'a, str> {
    match canonical_of(chosen) {
        Canonical::Email(a) => a,
        Canonical::Phone(a, _) => a.into(),
        Canonical::Other => credential.as_str().into(),
    }
}

/// What a credential is counted as.
enum Canonical<'a> {
    /// The `email` field, trimmed and lower-cased.
    Email(Cow<'a, str>),
    /// The `phone` field in E.164, and its prefix.
    Phone(String, PhonePrefix),
    /// Neither: the credential's whole text.
    Other,
}

/// The credential's address in the form every spelling of it shares: the field
/// [`Credential::contact`] sends to ([`AddressFields::chosen`]), mostly without its
/// validation, which is the sender's business and costs more than the rest of a
/// limit check (a malformed address is still one address to count).
fn canonical_of<'a>(chosen: Option<&Chosen<'a>>) -> Canonical<'a> {
    match chosen {
        Some(Chosen::Email(email)) => Canonical::Email(lowercase(email)),
        Some(Chosen::Phone(phone)) => phone_number(phone)
            .map_or(Canonical::Other, |(number, prefix)| {
                Canonical::Phone(number, prefix)
            }),
        None => Canonical::Other,
    }
}

/// `text` lower-cased, borrowed when it is already (the usual address).
fn lowercase(text: &str) -> Cow<'_, str> {
    if text
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        text.into()
    } else {
        text.to_lowercase().into()
    }
}

/// The counting unit of a client: an IPv4 address, or an IPv6 /64 (one subscriber
/// gets a whole /64, so counting single IPv6 addresses counts nothing).
pub fn network(ip: IpAddr) -> [u8; 16] {
    let mut subject = [0u8; 16];
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            subject[0] = 4;
            for (s, o) in subject.iter_mut().skip(1).zip(v4.octets()) {
                *s = o;
            }
        }
        IpAddr::V6(v6) => {
            subject[0] = 6;
            for (s, o) in subject
                .iter_mut()
                .skip(1)
                .zip(v6.octets().into_iter().take(8))
            {
                *s = o;
            }
        }
    }
    subject
}

/// A phone number in E.164 with its country code and prefix (`+`, the country
/// code and the next 3 digits).
fn phone_number(raw: &str) -> Option<(String, PhonePrefix)> {
    let raw = raw.trim();
    if !raw.starts_with('+') || raw.len() > 40 {
        return None;
    }
    let parsed = phonenumber::parse(None, raw).ok()?;
    let number = parsed.format().mode(phonenumber::Mode::E164).to_string();
    let country = parsed.country().code();
    let cc_len = country.to_string().len();
    let mut prefix = [0u8; 16];
    prefix[0] = b'+';
    let digits = number.bytes().skip(1).take(cc_len + 3);
    for (p, b) in prefix.iter_mut().skip(1).zip(digits) {
        *p = b;
    }
    Some((number, PhonePrefix { country, prefix }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_per_64_and_ipv4_per_address() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(network(a), network(b));
        assert_ne!(network(a), network(c));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(network(v4), network(mapped));
        assert_ne!(network(v4), network("192.0.2.2".parse().unwrap()));
    }

    #[test]
    fn a_phone_prefix_is_the_country_code_and_three_digits() {
        let (n, p) = phone_number("+34 612 34 56 78").unwrap();
        assert_eq!(n, "+34612345678");
        assert_eq!(p.country, 34);
        assert_eq!(&p.prefix[..7], b"+34612\0");
        let (_, p) = phone_number("+14155552671").unwrap();
        assert_eq!(p.country, 1);
        assert_eq!(&p.prefix[..6], b"+1415\0");
    }

    #[test]
    fn every_spelling_of_an_address_is_one_subject() {
        // One key for the whole test: `Limits::off()` draws a fresh random key each time.
        let limits = Limits::off();
        let key = |text: &str| {
            limits
                .subject(&Credential::new(text.to_owned()).unwrap(), true)
                .address
        };
        let a = key(r#"{"email":"Ann@Example.com"}"#);
        assert_eq!(a, key(r#"{"email":" ann@example.com "}"#));
        assert_eq!(a, key(r#"{"name":"x","email":"ann@example.COM"}"#));
        assert_ne!(a, key(r#"{"email":"bob@example.com"}"#));
        let p = key(r#"{"phone":"+34612345678"}"#);
        assert_eq!(p, key(r#"{"phone":"+34 612 345 678","name":"y"}"#));
        assert_ne!(p, key(r#"{"phone":"+34612345679"}"#));
        // The field the code goes to is counted: an invalid or non-string `email`
        // beside a phone cannot make a new subject for the same phone.
        assert_eq!(p, key(r#"{"email":"junk 1@@x","phone":"+34612345678"}"#));
        assert_eq!(p, key(r#"{"email":"junk 2@@x","phone":"+34612345678"}"#));
        assert_eq!(p, key(r#"{"email":{"a":1},"phone":"+34612345678"}"#));
        assert_eq!(
            a,
            key(r#"{"email":"ann@example.com","phone":"+34612345678"}"#)
        );
        assert_eq!(key("plain text"), key("plain text"));
        assert_ne!(key("plain text"), key("other text"));
    }
}
