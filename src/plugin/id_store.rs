//! Single-use list IDs: the only per-session state the server keeps.
//!
//! A cookie names one random ID; every state change consumes it and issues a new
//! one, so each cookie can be used once and a replayed copy is refused.

use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;

use crate::clock::Timestamp;
use crate::error::BackendError;

/// Bytes in a list ID.
pub const LIST_ID_LEN: usize = 16;

/// A random 128-bit list ID. Not secret on its own (it only works inside a sealed cookie).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ListId([u8; LIST_ID_LEN]);

/// Hashes as its first 8 bytes, which are already uniformly random.
impl Hash for ListId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

impl ListId {
    /// A fresh random ID.
    pub fn random() -> Self {
        let mut b = [0u8; LIST_ID_LEN];
        rand::fill(&mut b);
        Self(b)
    }

    /// An ID from raw bytes.
    pub const fn from_bytes(b: [u8; LIST_ID_LEN]) -> Self {
        Self(b)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; LIST_ID_LEN] {
        &self.0
    }
}

impl fmt::Debug for ListId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ListId({:02x}{:02x}..)", self.0[0], self.0[1])
    }
}

/// Stores live list IDs with their expiry.
///
/// Guarantees an implementation must give:
/// * an ID is live while `now < expires`; a dead ID behaves exactly like an unknown one;
/// * [`IdStore::replace`] and [`IdStore::consume`] are atomic: among concurrent calls
///   naming the same live ID, exactly one succeeds (across every instance sharing the store);
/// * IDs are fresh random values never handed out twice while live.
#[async_trait]
pub trait IdStore: Send + Sync + fmt::Debug {
    /// Stores a new random ID, live until `expires`.
    async fn issue(&self, expires: Timestamp, now: Timestamp) -> Result<ListId, BackendError>;

    /// If `id` is live, removes it and stores a new random ID live until `expires`;
    /// `None` if `id` was unknown, dead or already consumed.
    async fn replace(
        &self,
        id: ListId,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<Option<ListId>, BackendError>;

    /// Removes `id` if live; `true` for exactly one caller.
    async fn consume(&self, id: ListId, now: Timestamp) -> Result<bool, BackendError>;

    /// Removes `id` if live, like [`IdStore::consume`], but leaves no trace for
    /// [`IdStore::just_consumed`]: the session was ended on purpose (cancel), so a
    /// late request with its cookie is simply invalid, not a lost race.
    async fn retire(&self, id: ListId, now: Timestamp) -> Result<bool, BackendError> {
        self.consume(id, now).await
    }

    /// Whether `id` is live at `now`, changing nothing (`GET /api/otp/status`).
    async fn is_live(&self, id: ListId, now: Timestamp) -> Result<bool, BackendError>;

    /// Whether `id` was consumed (by `replace` or `consume`) less than
    /// [`RACE_WINDOW`] before `now`: a request that finds its ID gone for this
    /// reason lost a race with a concurrent one (a double submit) and must leave
    /// the winner's cookie alone. Best effort; the default never says so.
    async fn just_consumed(&self, id: ListId, now: Timestamp) -> Result<bool, BackendError> {
        let _ = (id, now);
        Ok(false)
    }

    /// Whether the store can serve requests (for readiness checks).
    async fn ping(&self) -> Result<(), BackendError> {
        Ok(())
    }

    /// How many IDs the store holds, if it can tell cheaply (the in-memory store;
    /// for the `otp_live_sessions` metric).
    fn live(&self) -> Option<usize> {
        None
    }
}

/// The hasher of the in-memory map: a list ID's random head as is.
///
/// A keyed hash (SipHash, the default) defends a map against keys chosen to collide;
/// here every key is drawn by the server from a CSPRNG, and lookups only use IDs taken
/// from cookies that passed AES-GCM authentication, so no client picks a key. SipHash
/// was a fifth of an in-process create (two hashes per operation, plus rehashing).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    /// Only `ListId::hash` feeds this hasher (through `write_u64`); anything else is
    /// folded in FNV-1a style so the type stays a correct `Hasher`.
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// How long a consumed ID is remembered as "just consumed" (see
/// [`IdStore::just_consumed`]): past it, a cookie naming it is simply stale.
pub const RACE_WINDOW: Duration = Duration::from_secs(10);

/// The in-memory store: a sharded hash map, bounded, swept of dead entries.
///
/// State is per process: several instances need a shared store (Redis).
pub struct MemoryIdStore {
    map: DashMap<ListId, u64, BuildHasherDefault<IdHasher>>,
    /// Entries held, kept beside the map: `DashMap::len` locks every shard, too
    /// slow for a check on every insert.
    held: AtomicUsize,
    capacity: usize,
    /// IDs consumed in the last [`RACE_WINDOW`], with the time they were consumed.
    consumed: DashMap<ListId, u64, BuildHasherDefault<IdHasher>>,
}

impl fmt::Debug for MemoryIdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryIdStore")
            .field("len", &self.map.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl MemoryIdStore {
    /// An empty store holding at most `capacity` live IDs.
    pub fn new(capacity: usize) -> Self {
        Self {
            map: super::sharded_map(capacity.min(1 << 16), Default::default()),
            held: AtomicUsize::new(0),
            capacity,
            consumed: super::sharded_map(0, Default::default()),
        }
    }

    /// Entries currently held (live or not yet swept).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Drops every dead entry; returns how many were dropped.
    pub fn sweep(&self, now: Timestamp) -> usize {
        let mut dropped = 0;
        self.map.retain(|_, exp| {
            let live = *exp > now.as_millis();
            dropped += usize::from(!live);
            live
        });
        self.held.fetch_sub(dropped, Ordering::Relaxed);
        let window = u64::try_from(RACE_WINDOW.as_millis()).unwrap_or(u64::MAX);
        self.consumed
            .retain(|_, at| now.as_millis().saturating_sub(*at) < window);
        dropped
    }

    fn insert_new(&self, expires: Timestamp) -> Result<ListId, BackendError> {
        // Full answers at once: sweeping here made every create scan the whole map
        // while the store was full. Dead IDs go on the sweeper's timer.
        if self.held.load(Ordering::Relaxed) >= self.capacity {
            return Err(BackendError::Unavailable(
                "the in-memory id store is full".into(),
            ));
        }
        loop {
            let id = ListId::random();
            if let dashmap::Entry::Vacant(v) = self.map.entry(id) {
                // Counted while the shard lock is held, so no removal of this entry
                // can be counted first.
                self.held.fetch_add(1, Ordering::Relaxed);
                v.insert(expires.as_millis());
                return Ok(id);
            }
        }
    }
}

impl super::Sweep for MemoryIdStore {
    const WHAT: &'static str = "list ids";

    fn sweep(&self, now: Timestamp) -> usize {
        MemoryIdStore::sweep(self, now)
    }
}

#[async_trait]
impl IdStore for MemoryIdStore {
    fn live(&self) -> Option<usize> {
        // The counter, not `len`: with the map in 256 shards, `len` takes 256 locks.
        Some(self.held.load(Ordering::Relaxed))
    }

    async fn issue(&self, expires: Timestamp, _now: Timestamp) -> Result<ListId, BackendError> {
        self.insert_new(expires)
    }

    async fn replace(
        &self,
        id: ListId,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<Option<ListId>, BackendError> {
        if self.consume_now(id, now) {
            self.insert_new(expires).map(Some)
        } else {
            Ok(None)
        }
    }

    async fn consume(&self, id: ListId, now: Timestamp) -> Result<bool, BackendError> {
        Ok(self.consume_now(id, now))
    }

    async fn retire(&self, id: ListId, now: Timestamp) -> Result<bool, BackendError> {
        let Some((_, exp)) = self.map.remove(&id) else {
            return Ok(false);
        };
        self.held.fetch_sub(1, Ordering::Relaxed);
        Ok(exp > now.as_millis())
    }

    async fn is_live(&self, id: ListId, now: Timestamp) -> Result<bool, BackendError> {
        Ok(self.map.get(&id).is_some_and(|exp| *exp > now.as_millis()))
    }

    async fn just_consumed(&self, id: ListId, now: Timestamp) -> Result<bool, BackendError> {
        let window = u64::try_from(RACE_WINDOW.as_millis()).unwrap_or(u64::MAX);
        Ok(self
            .consumed
            .get(&id)
            .is_some_and(|at| now.as_millis().saturating_sub(*at) < window))
    }
}

impl MemoryIdStore {
    /// Removes `id` whatever its state; true only if it was live. DashMap's
    /// `remove` holds the shard lock, so one caller alone gets the entry.
    fn consume_now(&self, id: ListId, now: Timestamp) -> bool {
        let Some((_, exp)) = self.map.remove(&id) else {
            return false;
        };
        self.held.fetch_sub(1, Ordering::Relaxed);
        let live = exp > now.as_millis();
        if live {
            self.consumed.insert(id, now.as_millis());
        }
        live
    }
}
