//! The forker's folder: which implementation of each plug-in this server runs.
//!
//! Each file picks one extension point from the configuration. Edit them to plug in
//! your own code; the library never imports this module.

mod credential;
mod final_action;
mod generator;
mod ids;
mod kms;
mod sender;

use std::sync::Arc;

use secure_otp_server::store::RedisConnection;
use secure_otp_server::{Clock, Config, Plugins};

/// The plug-ins for `config`; may spawn background tasks (ID sweeping).
pub fn plugins(config: &Config, clock: &Arc<dyn Clock>) -> Result<Plugins, String> {
    // One shared Redis connection for every backend that uses it.
    let redis = config
        .redis
        .as_ref()
        .map(RedisConnection::new)
        .transpose()?;
    Ok(Plugins {
        generator: generator::generator(config),
        credential: credential::schema(config),
        sender: sender::sender(config, clock)?,
        ids: ids::store(config, clock, redis.as_ref())?,
        kms: kms::kms(config, redis.as_ref())?,
        final_action: final_action::final_action(config),
    })
}
