//! KMS: in-memory keys rotated every `OTP_KEK_ROTATION_SECONDS`, the static
//! `OTP_KEYS` ring, or keys shared through Redis (`OTP_KMS=redis`), encrypted under
//! `OTP_KMS_MASTER_KEY` and rotated by one instance for all.

use std::sync::Arc;

use secure_otp_server::Config;
use secure_otp_server::config::KmsConfig;
use secure_otp_server::plugin::{Kms, MemoryKms, StaticKms};
use secure_otp_server::store::{RedisConnection, RedisKms};

/// The KMS this server uses.
pub fn kms(config: &Config, redis: Option<&RedisConnection>) -> Result<Arc<dyn Kms>, String> {
    // A cookie sealed just before a rotation lives at most `max_age` more; keep a
    // second of slack for requests in flight.
    let retention = config.policy.max_age + std::time::Duration::from_secs(1);
    match &config.kms {
        KmsConfig::Memory { rotation } => Ok(Arc::new(MemoryKms::new(*rotation, retention))),
        KmsConfig::Static { .. } => StaticKms::new(config.kms.static_keys())
            .map(|ring| Arc::new(ring) as Arc<dyn Kms>)
            .ok_or_else(|| "OTP_KEYS holds no usable key".to_owned()),
        KmsConfig::Redis { rotation, .. } => {
            let redis = redis.ok_or("OTP_KMS=redis needs REDIS_URL or REDIS_CLUSTER_NODES")?;
            RedisKms::new(
                redis.clone(),
                config.kms.master_keys(),
                *rotation,
                retention,
            )
            .map(|kms| Arc::new(kms) as Arc<dyn Kms>)
            .ok_or_else(|| "OTP_KMS_MASTER_KEY holds no usable key".to_owned())
        }
    }
}
