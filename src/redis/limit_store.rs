//! The abuse limits' event logs in Redis: one sorted set per key (score = event
//! time in ms, member = a random receipt), trimmed and counted by one script per
//! check, so every instance on one Redis shares every limit.

use std::fmt;

use async_trait::async_trait;
use redis::Script;

use super::RedisConnection;
use crate::clock::Timestamp;
use crate::error::BackendError;
use crate::plugin::limit_store::{Hit, LimitKey, LimitStore, Receipt, Rule};

/// `KEYS[1]` the log; `ARGV[1]` now (ms), `ARGV[2]` window (ms), `ARGV[3]` the
/// limit, `ARGV[4]` the receipt to record (empty: only look).
/// Returns `{1, count}` allowed, `{0, retry_at}` denied.
const HIT: &str = r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= max then
  local e = redis.call('ZRANGE', KEYS[1], n - max, n - max, 'WITHSCORES')
  local oldest = tonumber(e[2]) or now
  return {0, oldest + window}
end
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < window then redis.call('PEXPIRE', KEYS[1], window) end
  n = n + 1
end
return {1, n}
";

/// The [`LimitStore`] on Redis or a Redis Cluster (one key per script, so any
/// slot will do). Keys: `<p>:lim:<scope>:<32 hex>`, expiring a window after their
/// last event.
pub struct RedisLimitStore {
    redis: RedisConnection,
    hit: Script,
}

impl fmt::Debug for RedisLimitStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimitStore")
            .field("redis", &self.redis)
            .finish()
    }
}

impl RedisLimitStore {
    /// A store on `redis`.
    pub fn new(redis: RedisConnection) -> Self {
        Self {
            redis: redis.for_component("limits"),
            hit: Script::new(HIT),
        }
    }

    /// The Redis key of `key` (for operators and tests).
    pub fn key(&self, key: &LimitKey) -> String {
        format!(
            "{}:lim:{}:{}",
            self.redis.prefix(),
            key.scope.name(),
            key.subject_hex()
        )
    }
}

#[async_trait]
impl LimitStore for RedisLimitStore {
    async fn hit(
        &self,
        key: &LimitKey,
        rule: Rule,
        record: bool,
        now: Timestamp,
    ) -> Result<Hit, BackendError> {
        let receipt = record.then(rand::random::<u64>);
        let (allowed, value): (i64, u64) = self
            .redis
            .invoke(
                self.hit
                    .key(self.key(key))
                    .arg(now.as_millis())
                    .arg(rule.window_ms())
                    .arg(rule.max)
                    .arg(receipt.map_or_else(String::new, |r| format!("{r:016x}"))),
            )
            .await?;
        Ok(if allowed == 1 {
            Hit::Allowed {
                count: u32::try_from(value).unwrap_or(u32::MAX),
                receipt: receipt.map(Receipt),
            }
        } else {
            Hit::Denied {
                retry_at: Timestamp::from_millis(value),
            }
        })
    }

    async fn undo(&self, key: &LimitKey, receipt: Receipt) -> Result<(), BackendError> {
        let _: i64 = self
            .redis
            .query(
                redis::cmd("ZREM")
                    .arg(self.key(key))
                    .arg(format!("{:016x}", receipt.0)),
            )
            .await?;
        Ok(())
    }
}
