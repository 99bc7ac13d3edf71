//! Sliding-window event logs behind the abuse limits: "at most N events in any
//! window of D". The limits engine ([`crate::limit`]) decides what to count; a store
//! only keeps the events, atomically per key, in memory or in a shared backend.
//!
//! A log keeps each event's time, so a limit is exact: no burst of 2N across a
//! window boundary (as fixed windows allow), and the moment a budget returns is
//! known to the millisecond (`Retry-After`). Its size is bounded by the rule's N.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use smallvec::SmallVec;

use crate::clock::Timestamp;
use crate::error::BackendError;

/// "At most `max` events within any `window`."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Events allowed per window (at least 1).
    pub max: u32,
    /// The sliding window.
    pub window: Duration,
}

impl Rule {
    /// A rule of `max` events per `window`; `max` of 0 is raised to 1.
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max: max.max(1),
            window,
        }
    }

    /// The window in milliseconds.
    pub fn window_ms(&self) -> u64 {
        u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX)
    }

    /// Parses a setting: `N/DURATION` (`5/10m`, `360/1h`; units `s`, `m`, `h`, `d`;
    /// a missing amount means 1: `1/d`), or `off` (`None`).
    pub fn parse_setting(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        text.parse().map(Some)
    }
}

impl FromStr for Rule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("'{text}' is not N/DURATION (for example 5/10m) or off");
        let (count, window) = text.trim().split_once('/').ok_or_else(bad)?;
        let max: u32 = count.trim().parse().map_err(|_| bad())?;
        let window = window.trim();
        let unit_at = window.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (amount, unit) = window.split_at(unit_at);
        let amount: u64 = if amount.is_empty() {
            1
        } else {
            amount.parse().map_err(|_| bad())?
        };
        let unit_secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        let secs = amount.checked_mul(unit_secs).ok_or_else(bad)?;
        // A year bounds the window: beyond it a log only wastes memory.
        if max == 0 || secs == 0 || secs > 366 * 86_400 {
            return Err(format!(
                "'{text}': the count and the window must be at least 1, the window at most 366d"
            ));
        }
        Ok(Self::new(max, Duration::from_secs(secs)))
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.window.as_secs();
        let (n, unit) = [(86_400, "d"), (3600, "h"), (60, "m")]
            .into_iter()
            .find(|(u, _)| s % u == 0)
            .map_or((s, "s"), |(u, name)| (s / u, name));
        write!(f, "{}/{n}{unit}", self.max)
    }
}

/// What a log counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Codes sent to one address.
    SendsPerCredential,
    /// Wrong codes (and guesses in flight) for one address.
    FailuresPerCredential,
    /// Create and resend requests from one client network.
    CreatesPerIp,
    /// Verify requests from one client network.
    VerifiesPerIp,
    /// Every send of the deployment.
    SendsGlobal,
    /// Sends to one phone-number prefix (the configured limit).
    SendsPerPrefix,
    /// Sends to one phone-number prefix in the last hour (the pumping breaker).
    PrefixSends,
    /// Verified sessions of one phone-number prefix in the last hour.
    PrefixVerified,
    /// A pause of sends to one phone-number prefix.
    PrefixPaused,
    /// A logged-out session token (its `jti`), refused until it would expire.
    RevokedSession,
}

impl Scope {
    /// The scope's name, part of a backend's key.
    pub fn name(self) -> &'static str {
        match self {
            Scope::SendsPerCredential => "sends:credential",
            Scope::FailuresPerCredential => "failures:credential",
            Scope::CreatesPerIp => "creates:ip",
            Scope::VerifiesPerIp => "verifies:ip",
            Scope::SendsGlobal => "sends:global",
            Scope::SendsPerPrefix => "sends:prefix",
            Scope::PrefixSends => "pumping:sends",
            Scope::PrefixVerified => "pumping:verified",
            Scope::PrefixPaused => "pumping:paused",
            Scope::RevokedSession => "revoked:session",
        }
    }
}

/// Which log: a scope and a 16-byte subject (an HMAC of an address, an IP
/// network, a phone-number prefix; never an address itself).
///
/// Hashed with the map's keyed default hasher: IP networks and phone prefixes
/// are neither uniform nor secret (a clever client picks its addresses), so a
/// shortcut like the ID store's (IDs are random) would let them pile into one
/// bucket.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimitKey {
    /// What is counted.
    pub scope: Scope,
    /// Who it is counted for.
    pub subject: [u8; 16],
}

impl LimitKey {
    /// The subject in lower-case hex (for backend key names).
    pub fn subject_hex(&self) -> String {
        self.subject.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for LimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LimitKey({}:{:02x}{:02x}..)",
            self.scope.name(),
            self.subject[0],
            self.subject[1]
        )
    }
}

/// Names one recorded event, to take it back ([`LimitStore::undo`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt(pub u64);

/// What a [`LimitStore::hit`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    /// Under the limit: `count` events are now in the window (the new one included
    /// when it was recorded, as named by `receipt`).
    Allowed {
        /// Events in the window after this call.
        count: u32,
        /// The recorded event, if one was recorded.
        receipt: Option<Receipt>,
    },
    /// At the limit: nothing was recorded; the budget returns at `retry_at`.
    Denied {
        /// When the oldest event that must leave the window does.
        retry_at: Timestamp,
    },
}

/// Keeps the event logs.
///
/// Guarantees an implementation must give:
/// * `hit` is atomic per key: among any concurrent calls (across every instance
///   sharing the store), a log never holds more than `rule.max` events within one
///   window, so at most `max` of them are allowed;
/// * an event counts while `now < its time + window`;
/// * `undo` removes exactly the event named by its receipt (nothing if it is gone).
#[async_trait]
pub trait LimitStore: Send + Sync + fmt::Debug {
    /// If fewer than `rule.max` events of `key` are in the window ending at `now`,
    /// records one more when `record` (else only looks) and answers
    /// [`Hit::Allowed`]; otherwise records nothing and answers [`Hit::Denied`].
    async fn hit(
        &self,
        key: &LimitKey,
        rule: Rule,
        record: bool,
        now: Timestamp,
    ) -> Result<Hit, BackendError>;

    /// [`LimitStore::hit`] for each check (`key`, `rule`, `record`), answers in
    /// order. Each check is atomic on its own, not the batch. The default runs
    /// them concurrently (one round trip on a pipelining connection).
    async fn hit_all(
        &self,
        checks: &[(LimitKey, Rule, bool)],
        now: Timestamp,
    ) -> Vec<Result<Hit, BackendError>> {
        futures_util::future::join_all(
            checks
                .iter()
                .map(|(key, rule, record)| self.hit(key, *rule, *record, now)),
        )
        .await
    }

    /// Takes back an event recorded by [`LimitStore::hit`].
    async fn undo(&self, key: &LimitKey, receipt: Receipt) -> Result<(), BackendError>;
}

/// One key's events: (time in ms, receipt), sorted by time. Most keys hold one or
/// two events (one person, one code), kept inline: no allocation per key.
#[derive(Debug)]
struct Log {
    window_ms: u64,
    events: SmallVec<[(u64, u64); 2]>,
}

impl Log {
    fn prune(&mut self, now: u64) {
        let expired = self
            .events
            .partition_point(|(t, _)| t.saturating_add(self.window_ms) <= now);
        if expired > 0 {
            self.events.drain(..expired);
        }
    }
}

/// The default [`LimitStore`]: logs in a sharded map, for one process.
///
/// Holds at most `capacity` keys; a full store answers `Unavailable` (the limits
/// fail closed) until the sweeper drops logs whose events all left their window.
pub struct MemoryLimitStore {
    logs: DashMap<LimitKey, Log>,
    capacity: usize,
    held: AtomicUsize,
    next_receipt: AtomicU64,
}

impl fmt::Debug for MemoryLimitStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLimitStore")
            .field("keys", &self.logs.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl MemoryLimitStore {
    /// An empty store holding at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            logs: super::sharded_map(capacity.min(1 << 12), RandomState::new()),
            capacity,
            held: AtomicUsize::new(0),
            next_receipt: AtomicU64::new(1),
        }
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every log whose events all left their window; returns how many.
    pub fn sweep(&self, now: Timestamp) -> usize {
        let mut dropped = 0;
        self.logs.retain(|_, log| {
            log.prune(now.as_millis());
            let keep = !log.events.is_empty();
            dropped += usize::from(!keep);
            keep
        });
        self.held.fetch_sub(dropped, Ordering::Relaxed);
        dropped
    }
    fn hit_now(
        &self,
        key: &LimitKey,
        rule: Rule,
        record: bool,
        now: u64,
    ) -> Result<Hit, BackendError> {
        let window_ms = rule.window_ms();
        let mut log = match self.logs.get_mut(key) {
            Some(log) => log,
            None if !record => {
                return Ok(Hit::Allowed {
                    count: 0,
                    receipt: None,
                });
            }
            None => {
                if self.held.load(Ordering::Relaxed) >= self.capacity {
                    return Err(BackendError::Unavailable(
                        "the in-memory limit store is full".into(),
                    ));
                }
                match self.logs.entry(*key) {
                    dashmap::Entry::Occupied(o) => o.into_ref(),
                    dashmap::Entry::Vacant(v) => {
                        // Counted under the shard lock, as in the ID store.
                        self.held.fetch_add(1, Ordering::Relaxed);
                        v.insert(Log {
                            window_ms,
                            events: SmallVec::new(),
                        })
                    }
                }
            }
        };
        log.window_ms = window_ms;
        log.prune(now);
        let n = log.events.len();
        let max = usize::try_from(rule.max).unwrap_or(usize::MAX);
        if n >= max {
            let oldest_needed = log.events.get(n - max).map_or(now, |(t, _)| *t);
            return Ok(Hit::Denied {
                retry_at: Timestamp::from_millis(oldest_needed.saturating_add(window_ms)),
            });
        }
        let count = u32::try_from(n).unwrap_or(u32::MAX);
        if !record {
            return Ok(Hit::Allowed {
                count,
                receipt: None,
            });
        }
        let receipt = self.next_receipt.fetch_add(1, Ordering::Relaxed);
        // Kept sorted even if instants arrive out of order (clocks of callers).
        let at = log.events.partition_point(|(t, _)| *t <= now);
        log.events.insert(at, (now, receipt));
        Ok(Hit::Allowed {
            count: count.saturating_add(1),
            receipt: Some(Receipt(receipt)),
        })
    }
}

impl super::Sweep for MemoryLimitStore {
    const WHAT: &'static str = "limit logs";

    fn sweep(&self, now: Timestamp) -> usize {
        MemoryLimitStore::sweep(self, now)
    }
}

#[async_trait]
impl LimitStore for MemoryLimitStore {
    async fn hit(
        &self,
        key: &LimitKey,
        rule: Rule,
        record: bool,
        now: Timestamp,
    ) -> Result<Hit, BackendError> {
        self.hit_now(key, rule, record, now.as_millis())
    }

    /// In process: one after the other, with no future per check.
    async fn hit_all(
        &self,
        checks: &[(LimitKey, Rule, bool)],
        now: Timestamp,
    ) -> Vec<Result<Hit, BackendError>> {
        checks
            .iter()
            .map(|(key, rule, record)| self.hit_now(key, *rule, *record, now.as_millis()))
            .collect()
    }

    async fn undo(&self, key: &LimitKey, receipt: Receipt) -> Result<(), BackendError> {
        if let Some(mut log) = self.logs.get_mut(key) {
            log.events.retain(|(_, r)| *r != receipt.0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_as_count_per_window_or_off() {
        assert_eq!(
            Rule::parse_setting("5/10m").unwrap(),
            Some(Rule::new(5, Duration::from_secs(600)))
        );
        assert_eq!(
            Rule::parse_setting(" 360 / 1h ").unwrap(),
            Some(Rule::new(360, Duration::from_secs(3600)))
        );
        assert_eq!(
            Rule::parse_setting("1/d").unwrap(),
            Some(Rule::new(1, Duration::from_secs(86_400)))
        );
        assert_eq!(Rule::parse_setting("OFF").unwrap(), None);
        for bad in [
            "", "5", "5/", "/1h", "0/1h", "5/0s", "5/10", "5/10w", "-1/1h", "5/400d", "x/1h",
        ] {
            assert!(Rule::parse_setting(bad).is_err(), "{bad:?} parsed");
        }
        for text in [
            "5/10m", "10/1h", "30/5m", "360/1h", "50/1h", "7/90s", "3/2d",
        ] {
            assert_eq!(
                Rule::parse_setting(text).unwrap().unwrap().to_string(),
                text
            );
        }
    }
}
