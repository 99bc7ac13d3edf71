//! Key-encryption keys shared through Redis, encrypted at rest under a master key,
//! rotated by exactly one instance per period.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::Script;

use super::RedisConnection;
use crate::clock::Timestamp;
use crate::crypto::{Kek, KeyId, MasterKey, WRAPPED_KEK_LEN, unwrap_kek, wrap_kek};
use crate::error::BackendError;
use crate::plugin::Kms;

/// How long an instance trusts its copy of the current key id before asking Redis
/// again. Rotation times are known in advance (creation + rotation period), so a
/// cached key is never used past its rotation; this bound only matters when the
/// current key is changed by hand in Redis, or Redis lost its data without this
/// instance seeing an error (a failed command drops the copy at once: see
/// [`RedisConnection::epoch`]).
pub(super) const CURRENT_CACHE: Duration = Duration::from_secs(1);

/// `KEYS[1]` the current pointer, `KEYS[2]` the candidate key's entry; `ARGV[1]` now,
/// `ARGV[2]` rotation ms, `ARGV[3]` candidate pointer `<id hex>:<created ms>`,
/// `ARGV[4]` candidate entry, `ARGV[5]` TTL ms of both.
/// Returns the pointer in force: the existing one while it is fresh, else the
/// candidate, stored. Being one script, exactly one caller per period stores a key.
const ROTATE: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur then
  local created = tonumber(string.match(cur, ':(%d+)$'))
  if created and tonumber(ARGV[1]) < created + tonumber(ARGV[2]) then
    return cur
  end
end
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5])
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[5])
return ARGV[3]
";

struct Cached {
    kek: Arc<Kek>,
    created: Timestamp,
}

struct CurrentCache {
    id: KeyId,
    kek: Arc<Kek>,
    created: Timestamp,
    fetched: Instant,
    /// The connection's epoch when read: an outage since then voids the copy.
    epoch: u64,
}

/// The [`Kms`] on Redis or a Redis Cluster, shared by every instance.
///
/// * One current key for everybody: the pointer `<p>:kek:{kek}:current` names it
///   with its creation time. When `now` reaches creation + `rotation`, the first
///   instance to ask runs one script that stores a new key and moves the pointer;
///   every other instance reads the winner's key.
/// * A key opens cookies until creation + `rotation` + `retention` (the longest a
///   cookie sealed just before the rotation lives); Redis drops it by TTL then.
/// * Keys are stored encrypted under the first master key, with their id and
///   creation time bound as associated data. Keys found under another listed
///   master key are re-encrypted under the first when read (master-key rotation).
/// * Keys by id are cached in process until retirement; the current id for at most
///   `CURRENT_CACHE` (1 s).
pub struct RedisKms {
    redis: RedisConnection,
    masters: Vec<MasterKey>,
    rotation: Duration,
    retention: Duration,
    rotate: Script,
    keys: RwLock<HashMap<KeyId, Cached>>,
    current: RwLock<Option<CurrentCache>>,
}

impl fmt::Debug for RedisKms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisKms")
            .field("redis", &self.redis)
            .field("master_keys", &self.masters.len())
            .field("rotation", &self.rotation)
            .field("retention", &self.retention)
            .finish()
    }
}

impl RedisKms {
    /// A KMS on `redis` rotating every `rotation`, keeping keys `retention` longer.
    /// `masters` encrypt keys at rest, new first; `None` if there is none.
    pub fn new(
        redis: RedisConnection,
        masters: Vec<MasterKey>,
        rotation: Duration,
        retention: Duration,
    ) -> Option<Self> {
        if masters.is_empty() {
            return None;
        }
        Some(Self {
            redis: redis.for_component("kms"),
            masters,
            rotation,
            retention,
            rotate: Script::new(ROTATE),
            keys: RwLock::new(HashMap::new()),
            current: RwLock::new(None),
        })
    }

    /// The Redis key of the current-key pointer.
    pub fn current_key(&self) -> String {
        format!("{}:kek:{{kek}}:current", self.redis.prefix())
    }

    /// The Redis key holding the encrypted key `id` (for operators and tests).
    pub fn entry_key(&self, id: KeyId) -> String {
        format!("{}:kek:{{kek}}:{}", self.redis.prefix(), id.to_hex())
    }

    fn lifetime(&self) -> Duration {
        self.rotation + self.retention
    }

    fn is_live(&self, created: Timestamp, now: Timestamp) -> bool {
        now < created.plus(self.lifetime())
    }

    fn cached_current(&self, now: Timestamp) -> Option<(KeyId, Arc<Kek>)> {
        let guard = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard
            .as_ref()
            .filter(|c| {
                now < c.created.plus(self.rotation)
                    && c.fetched.elapsed() < CURRENT_CACHE
                    && c.epoch == self.redis.epoch()
            })
            .map(|c| (c.id, Arc::clone(&c.kek)))
    }

    fn remember(&self, id: KeyId, kek: &Arc<Kek>, created: Timestamp, now: Timestamp) {
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.retain(|_, c| now < c.created.plus(self.rotation + self.retention));
        keys.insert(
            id,
            Cached {
                kek: Arc::clone(kek),
                created,
            },
        );
    }

    /// Reads, decrypts and caches the key `id`; `None` if Redis does not hold it.
    async fn load(
        &self,
        id: KeyId,
        now: Timestamp,
    ) -> Result<Option<(Arc<Kek>, Timestamp)>, BackendError> {
        let key = self.entry_key(id);
        let Some(entry): Option<Vec<u8>> = self.redis.query(redis::cmd("GET").arg(&key)).await?
        else {
            return Ok(None);
        };
        let (created, stored) = parse_entry(&entry)
            .ok_or_else(|| BackendError::Internal(format!("the stored key {id} is malformed")))?;
        let opened = self
            .masters
            .iter()
            .enumerate()
            .find_map(|(i, m)| unwrap_kek(m, id, created, stored).ok().map(|k| (i, k)));
        let Some((index, kek)) = opened else {
            return Err(BackendError::Internal(format!(
                "the stored key {id} opens with no configured master key (OTP_KMS_MASTER_KEY)"
            )));
        };
        if let (true, Some(newest)) = (index > 0, self.masters.first()) {
            // Master-key rotation: re-encrypt under the new master key, keeping the TTL.
            let value = entry_value(created, &wrap_kek(newest, id, created, &kek));
            let rewritten: Result<Option<String>, _> = self
                .redis
                .query(
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(value)
                        .arg("XX")
                        .arg("KEEPTTL"),
                )
                .await;
            match rewritten {
                Ok(_) => {
                    tracing::info!(key_id = %id, "re-encrypted a key under the new master key")
                }
                Err(e) => tracing::warn!(key_id = %id, error = %e, "could not re-encrypt a key"),
            }
        }
        let kek = Arc::new(kek);
        if self.is_live(created, now) {
            self.remember(id, &kek, created, now);
        }
        Ok(Some((kek, created)))
    }
}

fn entry_value(created: Timestamp, wrapped: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + wrapped.len());
    v.extend_from_slice(&created.as_millis().to_be_bytes());
    v.extend_from_slice(wrapped);
    v
}

fn parse_entry(entry: &[u8]) -> Option<(Timestamp, &[u8])> {
    if entry.len() != 8 + WRAPPED_KEK_LEN {
        return None;
    }
    let (created, wrapped) = entry.split_at(8);
    let created = u64::from_be_bytes(created.try_into().ok()?);
    Some((Timestamp::from_millis(created), wrapped))
}

fn parse_pointer(text: &str) -> Option<(KeyId, Timestamp)> {
    let (id, created) = text.split_once(':')?;
    Some((
        KeyId::from_hex(id)?,
        Timestamp::from_millis(created.parse().ok()?),
    ))
}

#[async_trait]
impl Kms for RedisKms {
    async fn current(&self, now: Timestamp) -> Result<(KeyId, Arc<Kek>), BackendError> {
        if let Some(k) = self.cached_current(now) {
            return Ok(k);
        }
        // Read first: a failure while refreshing voids what this refresh caches.
        let epoch = self.redis.epoch();
        // A candidate, stored only if the current key is missing or due for rotation.
        let id = KeyId::random();
        let kek = Kek::generate();
        let ttl = u64::try_from(self.lifetime().as_millis()).unwrap_or(u64::MAX);
        let pointer = format!("{}:{}", id.to_hex(), now.as_millis());
        let entry = entry_value(now, &wrap_kek(&self.masters[0], id, now, &kek));
        let in_force: String = self
            .redis
            .invoke(
                self.rotate
                    .key(self.current_key())
                    .key(self.entry_key(id))
                    .arg(now.as_millis())
                    .arg(u64::try_from(self.rotation.as_millis()).unwrap_or(u64::MAX))
                    .arg(&pointer)
                    .arg(entry)
                    .arg(ttl),
            )
            .await?;
        let (cur_id, created) = parse_pointer(&in_force)
            .ok_or_else(|| BackendError::Internal("the current-key pointer is malformed".into()))?;
        let kek = if cur_id == id {
            tracing::info!(key_id = %id, "created a new key-encryption key");
            crate::telemetry::metric::kek_rotated("redis");
            let kek = Arc::new(kek);
            self.remember(id, &kek, now, now);
            kek
        } else {
            match self.get(cur_id, now).await? {
                Some(k) => k,
                None => {
                    return Err(BackendError::Unavailable(format!(
                        "the current key {cur_id} is missing from redis"
                    )));
                }
            }
        };
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(CurrentCache {
            id: cur_id,
            kek: Arc::clone(&kek),
            created,
            fetched: crate::clock::monotonic_now(),
            epoch,
        });
        Ok((cur_id, kek))
    }

    async fn get(&self, id: KeyId, now: Timestamp) -> Result<Option<Arc<Kek>>, BackendError> {
        {
            let keys = self
                .keys
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(c) = keys.get(&id) {
                return Ok(self.is_live(c.created, now).then(|| Arc::clone(&c.kek)));
            }
        }
        Ok(self
            .load(id, now)
            .await?
            .filter(|(_, created)| self.is_live(*created, now))
            .map(|(kek, _)| kek))
    }

    async fn ping(&self) -> Result<(), BackendError> {
        self.redis.ping().await
    }
}
