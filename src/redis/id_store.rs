//! Single-use list IDs in Redis: each ID is a key whose value is its expiry and whose
//! TTL ends at that expiry; every step is one atomic command or one Lua script.

use std::fmt;

use async_trait::async_trait;
use redis::Script;

use super::RedisConnection;
use crate::clock::Timestamp;
use crate::error::BackendError;
use crate::plugin::id_store::{LIST_ID_LEN, RACE_WINDOW};
use crate::plugin::{IdStore, ListId};

/// Bytes of an ID kept by its replacement: the Redis Cluster hash tag.
///
/// `replace` deletes the old ID and stores the new one in one script, and a script
/// may only touch keys of one slot. So the store (which makes the IDs) gives a
/// replacement the first 4 bytes of the ID it replaces and draws the other 12 at
/// random; the key is `<p>:id:{<the 4 bytes in hex>}<the 12 bytes in hex>`. 96
/// fresh random bits per replacement keep IDs unguessable and collisions
/// negligible (and `SET NX` refuses one anyway). A session keeps its slot for life,
/// which spreads sessions, not the steps of one session, over the cluster.
pub(super) const HASH_TAG_LEN: usize = 4;

/// Attempts at drawing an unused ID before giving up (a collision is ~2^-96).
const DRAWS: usize = 4;

/// `KEYS[1]` old ID, `KEYS[2]` new ID, `KEYS[3]` the old ID's "just consumed"
/// marker; `ARGV[1]` now, `ARGV[2]` new expiry, `ARGV[3]` new TTL in ms (0: the
/// new ID is already dead, do not store it), `ARGV[4]` the race window in ms.
/// Returns 1 replaced, 0 old ID unknown or dead, 2 new ID taken (draw again).
const REPLACE: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if tonumber(v) <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 0
end
if tonumber(ARGV[3]) > 0 then
  if not redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3], 'NX') then return 2 end
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
return 1
";

/// The [`IdStore`] on Redis or a Redis Cluster, shared by every instance.
///
/// * `issue`: `SET key <expires> PX <ttl> NX`;
/// * `replace`: one Lua script (check live, store the new ID, delete the old one);
/// * `consume`: `GETDEL`, then the caller that got the value checks it is live.
///
/// The value (the expiry in ms) is compared with the caller's `now`, so an ID is
/// dead at its expiry even a moment before Redis evicts it; the TTL only frees memory.
pub struct RedisIdStore {
    redis: RedisConnection,
    replace: Script,
}

impl fmt::Debug for RedisIdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisIdStore")
            .field("redis", &self.redis)
            .finish()
    }
}

impl RedisIdStore {
    /// A store on `redis`.
    pub fn new(redis: RedisConnection) -> Self {
        Self {
            redis: redis.for_component("id_store"),
            replace: Script::new(REPLACE),
        }
    }

    /// The Redis key that holds `id` (for operators and tests).
    pub fn key(&self, id: ListId) -> String {
        let b = id.as_bytes();
        format!(
            "{}:id:{{{}}}{}",
            self.redis.prefix(),
            hex(&b[..HASH_TAG_LEN]),
            hex(&b[HASH_TAG_LEN..])
        )
    }

    /// A fresh ID in the same cluster slot as `old`.
    /// The "just consumed" marker of the ID stored under `key` (same hash tag, so
    /// the same cluster slot as the ID).
    fn marker(key: &str) -> String {
        format!("{key}:c")
    }

    fn successor(old: ListId) -> ListId {
        let mut b = [0u8; LIST_ID_LEN];
        rand::fill(&mut b);
        b[..HASH_TAG_LEN].copy_from_slice(&old.as_bytes()[..HASH_TAG_LEN]);
        ListId::from_bytes(b)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// [`RACE_WINDOW`] in milliseconds (the markers' TTL).
fn race_window_ms() -> u64 {
    u64::try_from(RACE_WINDOW.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds from `now` to `expires`; 0 if already dead.
fn ttl_ms(expires: Timestamp, now: Timestamp) -> u64 {
    expires.millis_since(now)
}

#[async_trait]
impl IdStore for RedisIdStore {
    async fn issue(&self, expires: Timestamp, now: Timestamp) -> Result<ListId, BackendError> {
        let ttl = ttl_ms(expires, now);
        if ttl == 0 {
            // Dead on arrival: nothing to store, and it can never be consumed.
            return Ok(ListId::random());
        }
        for _ in 0..DRAWS {
            let id = ListId::random();
            let stored: Option<String> = self
                .redis
                .query(
                    redis::cmd("SET")
                        .arg(self.key(id))
                        .arg(expires.as_millis())
                        .arg("PX")
                        .arg(ttl)
                        .arg("NX"),
                )
                .await?;
            if stored.is_some() {
                return Ok(id);
            }
        }
        Err(BackendError::Internal(
            "could not draw an unused list id".into(),
        ))
    }

    async fn replace(
        &self,
        id: ListId,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<Option<ListId>, BackendError> {
        let old = self.key(id);
        for _ in 0..DRAWS {
            let new = Self::successor(id);
            let outcome: i64 = self
                .redis
                .invoke(
                    self.replace
                        .key(&old)
                        .key(self.key(new))
                        .key(Self::marker(&old))
                        .arg(now.as_millis())
                        .arg(expires.as_millis())
                        .arg(ttl_ms(expires, now))
                        .arg(race_window_ms()),
                )
                .await?;
            match outcome {
                1 => return Ok(Some(new)),
                0 => return Ok(None),
                _ => {}
            }
        }
        Err(BackendError::Internal(
            "could not draw an unused list id".into(),
        ))
    }

    async fn consume(&self, id: ListId, now: Timestamp) -> Result<bool, BackendError> {
        let value: Option<u64> = self
            .redis
            .query(redis::cmd("GETDEL").arg(self.key(id)))
            .await?;
        let live = value.is_some_and(|exp| exp > now.as_millis());
        if live {
            let marked: Result<Option<String>, _> = self
                .redis
                .query(
                    redis::cmd("SET")
                        .arg(Self::marker(&self.key(id)))
                        .arg(1)
                        .arg("PX")
                        .arg(race_window_ms()),
                )
                .await;
            if let Err(e) = marked {
                tracing::debug!(error = %e, "could not mark a consumed list id");
            }
        }
        Ok(live)
    }

    async fn retire(&self, id: ListId, now: Timestamp) -> Result<bool, BackendError> {
        let value: Option<u64> = self
            .redis
            .query(redis::cmd("GETDEL").arg(self.key(id)))
            .await?;
        Ok(value.is_some_and(|exp| exp > now.as_millis()))
    }

    async fn is_live(&self, id: ListId, now: Timestamp) -> Result<bool, BackendError> {
        let value: Option<u64> = self
            .redis
            .query(redis::cmd("GET").arg(self.key(id)))
            .await?;
        Ok(value.is_some_and(|exp| exp > now.as_millis()))
    }

    async fn just_consumed(&self, id: ListId, _now: Timestamp) -> Result<bool, BackendError> {
        let marked: Option<String> = self
            .redis
            .query(redis::cmd("GET").arg(Self::marker(&self.key(id))))
            .await?;
        Ok(marked.is_some())
    }

    async fn ping(&self) -> Result<(), BackendError> {
        self.redis.ping().await
    }
}
