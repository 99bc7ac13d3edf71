//! ID store: single-use list IDs in memory (swept every `OTP_ID_SWEEP_SECONDS`), or
//! in Redis / Redis Cluster (`OTP_ID_STORE=redis`) for several instances.

use std::sync::Arc;

use secure_otp_server::config::IdStoreConfig;
use secure_otp_server::plugin::{IdStore, MemoryIdStore};
use secure_otp_server::store::{RedisConnection, RedisIdStore};
use secure_otp_server::{Clock, Config};

/// The ID store this server uses.
pub fn store(
    config: &Config,
    clock: &Arc<dyn Clock>,
    redis: Option<&RedisConnection>,
) -> Result<Arc<dyn IdStore>, String> {
    match &config.id_store {
        IdStoreConfig::Memory {
            capacity,
            sweep_every,
        } => {
            let store = Arc::new(MemoryIdStore::new(*capacity));
            // The sweeper lives as long as the runtime; the handle is not needed.
            drop(MemoryIdStore::spawn_sweeper(
                Arc::clone(&store),
                Arc::clone(clock),
                *sweep_every,
            ));
            Ok(store)
        }
        IdStoreConfig::Redis => redis
            .map(|r| Arc::new(RedisIdStore::new(r.clone())) as Arc<dyn IdStore>)
            .ok_or_else(|| "OTP_ID_STORE=redis needs REDIS_URL or REDIS_CLUSTER_NODES".into()),
    }
}
