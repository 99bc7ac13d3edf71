//! The Redis adapter (the `redis` feature): the ID store and the KMS on a shared,
//! proven engine, one server (`redis://` or `rediss://`) or a Redis Cluster, and
//! their settings.
//!
//! Several instances of the server behind one load balancer share their state here:
//! [`RedisIdStore`] keeps the single-use list IDs, [`RedisKms`] the key-encryption
//! keys (encrypted under a master key), [`RedisLimitStore`] the abuse limits'
//! counters. All use one [`RedisConnection`]: a single
//! multiplexed connection (or one per cluster node) that reconnects by itself, with
//! a bound on connecting and on every command, so a missing Redis makes requests
//! fail fast with [`BackendError::Unavailable`](crate::error::BackendError) (503)
//! and never hang.
//!
//! Key layout (`<p>` = `REDIS_KEY_PREFIX`, default `otp`):
//!
//! | key | value | TTL |
//! |---|---|---|
//! | `<p>:id:{<8 hex>}<24 hex>` | the ID's expiry (ms since epoch) | until the expiry |
//! | `<p>:id:{<8 hex>}<24 hex>:c` | `1`: the ID was consumed moments ago (a lost race answers 409) | 10 s |
//! | `<p>:lim:<scope>:<32 hex>` | sorted set of events (score: time in ms) of one abuse limit | a window after the last event |
//! | `<p>:kek:{kek}:current` | `<key id hex>:<created ms>` | rotation + retention |
//! | `<p>:kek:{kek}:<key id hex>` | created ms (8 bytes) ‖ KEK encrypted under the master key | rotation + retention |
//!
//! The `{...}` parts are Redis Cluster hash tags: keys that one script touches
//! together hash to one slot.

mod connection;
mod id_store;
mod kms;
mod limit_store;
mod replay_store;
mod settings;

pub use connection::RedisConnection;
pub use id_store::RedisIdStore;
pub use kms::RedisKms;
pub use limit_store::RedisLimitStore;
pub use replay_store::RedisReplayStore;
pub use settings::{RedisConfig, RedisTarget, master_keys};
