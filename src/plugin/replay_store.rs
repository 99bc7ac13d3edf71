//! Idempotent requests: the first answer to an `Idempotency-Key`, kept for a while
//! and replayed to repeats, so a retried create or resend sends nothing twice.
//!
//! A key is claimed before the work starts (`Pending`), so concurrent repeats find
//! it taken and wait for the answer instead of doing the work again; the answer is
//! stored when the work is done (`Done`). Keys are opaque 32-byte digests: the
//! HTTP layer derives them from the client's key, its address and its cookie, so
//! one client's key never names another client's answer.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::BackendError;

/// A stored answer: enough to send it again byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    /// The status code.
    pub status: u16,
    /// Every `Set-Cookie` value, in order.
    pub set_cookies: Vec<String>,
    /// The body (a small JSON document).
    pub body: Vec<u8>,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free and is now ours: do the work, then complete or release it.
    Fresh,
    /// Another request holds the key and has not answered yet.
    Pending {
        /// The request the key was first used with (a digest of it).
        fingerprint: [u8; 32],
    },
    /// The key's first answer.
    Done {
        /// The request the key was first used with.
        fingerprint: [u8; 32],
        /// Its answer.
        answer: StoredAnswer,
    },
}

/// Keeps claimed keys and their answers, each for `ttl`.
#[async_trait]
pub trait ReplayStore: Send + Sync + fmt::Debug {
    /// Claims `key` for a request with `fingerprint`, or tells who holds it.
    async fn claim(
        &self,
        key: &[u8; 32],
        fingerprint: &[u8; 32],
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Claim, BackendError>;

    /// Stores the answer of the request that claimed `key`.
    async fn complete(
        &self,
        key: &[u8; 32],
        fingerprint: &[u8; 32],
        answer: &StoredAnswer,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<(), BackendError>;

    /// Frees `key` (the work failed for a passing reason: a retry may succeed).
    async fn release(&self, key: &[u8; 32]) -> Result<(), BackendError>;
}

#[derive(Debug)]
struct Entry {
    fingerprint: [u8; 32],
    answer: Option<StoredAnswer>,
    expires: u64,
}

/// The default [`ReplayStore`]: a map in this process, at most `capacity` keys.
#[derive(Debug)]
pub struct MemoryReplayStore {
    map: DashMap<[u8; 32], Entry>,
    held: AtomicUsize,
    capacity: usize,
}

impl MemoryReplayStore {
    /// An empty store holding at most `capacity` keys (a full store answers
    /// `Unavailable` until the sweeper drops expired keys).
    pub fn new(capacity: usize) -> Self {
        Self {
            map: super::sharded_map(0, RandomState::new()),
            held: AtomicUsize::new(0),
            capacity,
        }
    }
}

impl super::Sweep for MemoryReplayStore {
    const WHAT: &'static str = "idempotency keys";

    fn sweep(&self, now: Timestamp) -> usize {
        let now = now.as_millis();
        let mut dropped = 0;
        self.map.retain(|_, e| {
            let live = e.expires > now;
            if !live {
                dropped += 1;
            }
            live
        });
        self.held.fetch_sub(dropped, Ordering::Relaxed);
        dropped
    }
}

fn expiry(now: Timestamp, ttl: Duration) -> u64 {
    now.as_millis()
        .saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
}

#[async_trait]
impl ReplayStore for MemoryReplayStore {
    async fn claim(
        &self,
        key: &[u8; 32],
        fingerprint: &[u8; 32],
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Claim, BackendError> {
        use dashmap::mapref::entry::Entry as Slot;
        match self.map.entry(*key) {
            Slot::Occupied(mut slot) if slot.get().expires <= now.as_millis() => {
                slot.insert(Entry {
                    fingerprint: *fingerprint,
                    answer: None,
                    expires: expiry(now, ttl),
                });
                Ok(Claim::Fresh)
            }
            Slot::Occupied(slot) => {
                let e = slot.get();
                Ok(match &e.answer {
                    Some(answer) => Claim::Done {
                        fingerprint: e.fingerprint,
                        answer: answer.clone(),
                    },
                    None => Claim::Pending {
                        fingerprint: e.fingerprint,
                    },
                })
            }
            Slot::Vacant(slot) => {
                if self.held.fetch_add(1, Ordering::Relaxed) >= self.capacity {
                    self.held.fetch_sub(1, Ordering::Relaxed);
                    return Err(BackendError::Unavailable(
                        "the idempotency key store is full".to_owned(),
                    ));
                }
                slot.insert(Entry {
                    fingerprint: *fingerprint,
                    answer: None,
                    expires: expiry(now, ttl),
                });
                Ok(Claim::Fresh)
            }
        }
    }

    async fn complete(
        &self,
        key: &[u8; 32],
        fingerprint: &[u8; 32],
        answer: &StoredAnswer,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<(), BackendError> {
        if let Some(mut e) = self.map.get_mut(key) {
            *e = Entry {
                fingerprint: *fingerprint,
                answer: Some(answer.clone()),
                expires: expiry(now, ttl),
            };
        }
        Ok(())
    }

    async fn release(&self, key: &[u8; 32]) -> Result<(), BackendError> {
        if self.map.remove(key).is_some() {
            self.held.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
