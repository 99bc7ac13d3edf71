//! ID store: single-use list IDs in memory, swept every `OTP_ID_SWEEP_SECONDS`.

use std::sync::Arc;

use secure_otp_server::config::IdStoreConfig;
use secure_otp_server::plugin::{IdStore, MemoryIdStore};
use secure_otp_server::{Clock, Config};

/// The ID store this server uses.
pub fn store(config: &Config, clock: &Arc<dyn Clock>) -> Arc<dyn IdStore> {
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
            store
        }
    }
}
