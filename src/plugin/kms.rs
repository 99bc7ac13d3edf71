//! Key-encryption keys: the KMS plug-in, a rotating in-memory KMS and a static key ring.
//!
//! Keys rotate as current + previous: new cookies are sealed with the current key;
//! a retired key still opens cookies until the last cookie sealed with it has expired.

use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::crypto::{Kek, KeyId};
use crate::error::BackendError;

/// Holds key-encryption keys.
///
/// Guarantees an implementation must give:
/// * [`Kms::current`] returns the newest active key; at most one new key is created per
///   rotation period, even under concurrent calls (and across instances sharing the KMS);
/// * [`Kms::get`] returns a key as long as a cookie sealed with it may still be live, and
///   `None` for unknown or retired ids. It never creates keys.
#[async_trait]
pub trait Kms: Send + Sync + fmt::Debug {
    /// The key to seal new cookies with (rotating first if it is due).
    async fn current(&self, now: Timestamp) -> Result<(KeyId, Arc<Kek>), BackendError>;

    /// The key named `id`, if it may still open cookies.
    async fn get(&self, id: KeyId, now: Timestamp) -> Result<Option<Arc<Kek>>, BackendError>;

    /// Whether the KMS can serve requests (for readiness checks).
    async fn ping(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

struct Entry {
    id: KeyId,
    kek: Arc<Kek>,
    created: Timestamp,
    retire_at: Option<Timestamp>,
}

/// In-memory KEKs, created on first use and rotated every `rotation`; a replaced key
/// is kept for `retention` (the longest a cookie can live) and then forgotten.
/// Keys are per process and lost on restart (sessions then start afresh).
pub struct MemoryKms {
    keys: RwLock<Vec<Entry>>,
    rotation: Duration,
    retention: Duration,
}

impl fmt::Debug for MemoryKms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<KeyId> = self.read().iter().map(|e| e.id).collect();
        f.debug_struct("MemoryKms")
            .field("keys", &ids)
            .field("rotation", &self.rotation)
            .field("retention", &self.retention)
            .finish()
    }
}

impl MemoryKms {
    /// A KMS rotating every `rotation`, keeping old keys `retention` after their replacement.
    pub fn new(rotation: Duration, retention: Duration) -> Self {
        Self {
            keys: RwLock::new(Vec::new()),
            rotation,
            retention,
        }
    }

    /// Ids of the keys held, oldest first.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.read().iter().map(|e| e.id).collect()
    }

    fn read(&self) -> RwLockReadGuard<'_, Vec<Entry>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Vec<Entry>> {
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fresh(&self, keys: &[Entry], now: Timestamp) -> Option<(KeyId, Arc<Kek>)> {
        keys.last()
            .filter(|e| now < e.created.plus(self.rotation))
            .map(|e| (e.id, Arc::clone(&e.kek)))
    }
}

#[async_trait]
impl Kms for MemoryKms {
    async fn current(&self, now: Timestamp) -> Result<(KeyId, Arc<Kek>), BackendError> {
        if let Some(k) = self.fresh(&self.read(), now) {
            return Ok(k);
        }
        let mut keys = self.write();
        // Another caller may have rotated while we waited for the lock.
        if let Some(k) = self.fresh(&keys, now) {
            return Ok(k);
        }
        if let Some(last) = keys.last_mut() {
            last.retire_at = Some(now.plus(self.retention));
        }
        keys.retain(|e| e.retire_at.is_none_or(|r| now < r));
        let entry = Entry {
            id: KeyId::random(),
            kek: Arc::new(Kek::generate()),
            created: now,
            retire_at: None,
        };
        tracing::info!(key_id = %entry.id, "created a new key-encryption key");
        crate::telemetry::metric::kek_rotated("memory");
        let out = (entry.id, Arc::clone(&entry.kek));
        keys.push(entry);
        Ok(out)
    }

    async fn get(&self, id: KeyId, now: Timestamp) -> Result<Option<Arc<Kek>>, BackendError> {
        Ok(self
            .read()
            .iter()
            .find(|e| e.id == id && e.retire_at.is_none_or(|r| now < r))
            .map(|e| Arc::clone(&e.kek)))
    }
}

/// A fixed key ring from configuration, shared by several instances: the first key
/// seals, every key opens. Rotate by deploying a new first key and keeping the old one
/// listed for at least `OTP_MAX_AGE`.
pub struct StaticKms {
    keys: Vec<(KeyId, Arc<Kek>)>,
}

impl fmt::Debug for StaticKms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<KeyId> = self.keys.iter().map(|(id, _)| *id).collect();
        f.debug_struct("StaticKms").field("keys", &ids).finish()
    }
}

impl StaticKms {
    /// A ring from `(id, key)` pairs, current first; `None` if empty or ids repeat.
    pub fn new(keys: Vec<(KeyId, Kek)>) -> Option<Self> {
        let mut ids: Vec<KeyId> = keys.iter().map(|(id, _)| *id).collect();
        ids.sort();
        ids.dedup();
        if keys.is_empty() || ids.len() != keys.len() {
            return None;
        }
        Some(Self {
            keys: keys.into_iter().map(|(id, k)| (id, Arc::new(k))).collect(),
        })
    }
}

#[async_trait]
impl Kms for StaticKms {
    async fn current(&self, _now: Timestamp) -> Result<(KeyId, Arc<Kek>), BackendError> {
        self.keys
            .first()
            .map(|(id, k)| (*id, Arc::clone(k)))
            .ok_or_else(|| BackendError::Internal("empty key ring".into()))
    }

    async fn get(&self, id: KeyId, _now: Timestamp) -> Result<Option<Arc<Kek>>, BackendError> {
        Ok(self
            .keys
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, k)| Arc::clone(k)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn at(s: u64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    #[tokio::test]
    async fn the_current_key_is_stable_within_a_period() {
        let kms = MemoryKms::new(DAY, Duration::from_secs(180));
        let (a, _) = kms.current(at(1)).await.expect("key");
        let (b, _) = kms.current(at(1000)).await.expect("key");
        assert_eq!(a, b);
        assert_eq!(kms.key_ids().len(), 1);
    }

    #[tokio::test]
    async fn a_rotated_key_opens_until_retention_ends() {
        let kms = MemoryKms::new(Duration::from_secs(100), Duration::from_secs(180));
        let (old, _) = kms.current(at(0)).await.expect("key");
        let (new, _) = kms.current(at(100)).await.expect("key");
        assert_ne!(old, new);
        assert!(kms.get(old, at(279)).await.expect("get").is_some());
        assert!(kms.get(old, at(280)).await.expect("get").is_none());
        assert!(kms.get(new, at(280)).await.expect("get").is_some());
        assert!(
            kms.get(KeyId::random(), at(1))
                .await
                .expect("get")
                .is_none()
        );
    }

    #[test]
    fn exactly_one_key_is_created_per_period_under_concurrency() {
        let kms = Arc::new(MemoryKms::new(
            Duration::from_secs(100),
            Duration::from_secs(180),
        ));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .build()
            .expect("runtime");
        rt.block_on(async {
            let _ = kms.current(at(0)).await.expect("key");
            let tasks: Vec<_> = (0..64)
                .map(|_| {
                    let kms = Arc::clone(&kms);
                    tokio::spawn(async move { kms.current(at(150)).await.expect("key").0 })
                })
                .collect();
            let mut ids = Vec::new();
            for t in tasks {
                ids.push(t.await.expect("task"));
            }
            ids.dedup();
            assert_eq!(ids.len(), 1, "every caller saw the same new key");
        });
        assert_eq!(kms.key_ids().len(), 2);
    }

    #[tokio::test]
    async fn static_ring_seals_with_the_first_and_opens_with_all() {
        let a = KeyId::from_bytes([1; 8]);
        let b = KeyId::from_bytes([2; 8]);
        let kms = StaticKms::new(vec![(a, Kek::generate()), (b, Kek::generate())]).expect("ring");
        assert_eq!(kms.current(at(0)).await.expect("key").0, a);
        assert!(kms.get(b, at(0)).await.expect("get").is_some());
        assert!(StaticKms::new(vec![(a, Kek::generate()), (a, Kek::generate())]).is_none());
        assert!(StaticKms::new(vec![]).is_none());
    }
}
