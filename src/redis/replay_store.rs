//! Idempotency keys in Redis: one string per key (`SET NX PX` to claim, a JSON
//! value naming the request's fingerprint and, once done, its answer), so every
//! instance sharing the Redis replays the same answer. One key per command:
//! Cluster-safe.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::RedisConnection;
use crate::clock::Timestamp;
use crate::error::BackendError;
use crate::plugin::replay_store::{Claim, ReplayStore, StoredAnswer};

#[derive(Serialize, Deserialize)]
struct Value {
    fingerprint: String,
    answer: Option<StoredAnswer>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// [`ReplayStore`] in Redis.
#[derive(Debug)]
pub struct RedisReplayStore {
    redis: RedisConnection,
}

impl RedisReplayStore {
    /// A store on `redis` (keys under its prefix).
    pub fn new(redis: RedisConnection) -> Self {
        Self {
            redis: redis.for_component("idempotency"),
        }
    }

    fn key(&self, key: &[u8; 32]) -> String {
        format!("{}:idem:{}", self.redis.prefix(), hex(key))
    }
}

fn encode(value: &Value) -> Result<String, BackendError> {
    serde_json::to_string(value).map_err(|e| BackendError::Internal(e.to_string()))
}

#[async_trait]
impl ReplayStore for RedisReplayStore {
    async fn claim(
        &self,
        key: &[u8; 32],
        fingerprint: &[u8; 32],
        ttl: Duration,
        _now: Timestamp,
    ) -> Result<Claim, BackendError> {
        let pending = encode(&Value {
            fingerprint: hex(fingerprint),
            answer: None,
        })?;
        let set: Option<String> = self
            .redis
            .query(
                redis::cmd("SET")
                    .arg(self.key(key))
                    .arg(pending)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms(ttl)),
            )
            .await?;
        if set.is_some() {
            return Ok(Claim::Fresh);
        }
        let stored: Option<String> = self
            .redis
            .query(redis::cmd("GET").arg(self.key(key)))
            .await?;
        let Some(stored) = stored else {
            // Expired between the two commands: claim it again.
            return Box::pin(self.claim(key, fingerprint, ttl, _now)).await;
        };
        let value: Value = serde_json::from_str(&stored)
            .map_err(|_| BackendError::Internal("an unreadable idempotency record".to_owned()))?;
        let owner = unhex(&value.fingerprint)
            .ok_or_else(|| BackendError::Internal("an unreadable idempotency record".to_owned()))?;
        Ok(match value.answer {
            Some(answer) => Claim::Done {
                fingerprint: owner,
                answer,
            },
            None => Claim::Pending { fingerprint: owner },
        })
    }

    async fn complete(
        &self,
        key: &[u8; 32],
        fingerprint: &[u8; 32],
        answer: &StoredAnswer,
        ttl: Duration,
        _now: Timestamp,
    ) -> Result<(), BackendError> {
        let done = encode(&Value {
            fingerprint: hex(fingerprint),
            answer: Some(answer.clone()),
        })?;
        let _: Option<String> = self
            .redis
            .query(
                redis::cmd("SET")
                    .arg(self.key(key))
                    .arg(done)
                    .arg("PX")
                    .arg(ttl_ms(ttl)),
            )
            .await?;
        Ok(())
    }

    async fn release(&self, key: &[u8; 32]) -> Result<(), BackendError> {
        let _: i64 = self
            .redis
            .query(redis::cmd("DEL").arg(self.key(key)))
            .await?;
        Ok(())
    }
}
