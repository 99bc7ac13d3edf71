//! ID store. Default: single-use list IDs in memory (swept every
//! `OTP_ID_SWEEP_SECONDS`), or in Redis / Redis Cluster (`OTP_ID_STORE=redis`) for
//! several instances. To keep them elsewhere, implement
//! `secure_otp_server::plugin::IdStore`, check it with the contract suite
//! (`secure_otp_server::testing::id_store_contract`, feature `test-util`), and return it.

use std::sync::Arc;

use secure_otp_server::Config;
use secure_otp_server::plugin::IdStore;

use super::Settings;

/// The ID store this server uses.
pub fn store(
    default: Arc<dyn IdStore>,
    _config: &Config,
    _settings: &Settings,
) -> Arc<dyn IdStore> {
    default
}
