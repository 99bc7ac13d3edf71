//! Redis settings: `REDIS_URL` or `REDIS_CLUSTER_NODES` (each also as `*_FILE`),
//! `REDIS_TIMEOUT_MS`, `REDIS_KEY_PREFIX`, `REDIS_CA_FILE`, and the Redis KMS's
//! `OTP_KMS_MASTER_KEY`.
//!
//! URLs may hold passwords and master keys are keys: both are read as secrets and
//! never appear in an error message.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::config::Env;
use crate::crypto::MasterKey;

/// Where Redis is (`REDIS_URL` or `REDIS_CLUSTER_NODES`).
#[derive(Debug)]
pub enum RedisTarget {
    /// `REDIS_URL`: one server, `redis://[user:password@]host:port[/db]` or `rediss://...` (TLS).
    Single(SecretString),
    /// `REDIS_CLUSTER_NODES`: comma-separated seed nodes of a Redis Cluster, same URL forms.
    Cluster(Vec<SecretString>),
}

/// The Redis connection, needed when `OTP_ID_STORE=redis` or `OTP_KMS=redis`.
/// URLs may hold passwords: they are secrets (also readable from `REDIS_URL_FILE` /
/// `REDIS_CLUSTER_NODES_FILE`).
#[derive(Debug)]
pub struct RedisConfig {
    /// The server or the cluster.
    pub target: RedisTarget,
    /// `REDIS_TIMEOUT_MS`: bound on connecting and on every command (default 1000).
    pub timeout: Duration,
    /// `REDIS_KEY_PREFIX`: first part of every key (default `otp`), so deployments can share a server.
    pub key_prefix: String,
    /// `REDIS_CA_FILE`: PEM certificate(s) that `rediss://` trusts instead of the
    /// system's roots (a private CA).
    pub ca_file: Option<PathBuf>,
}

/// `OTP_KMS_MASTER_KEY` (or `_FILE`): the Redis KMS's master keys, new first.
pub fn master_keys(env: &mut Env) -> Vec<SecretString> {
    let Some(raw) = env.secret("OTP_KMS_MASTER_KEY") else {
        env.problem(
                "OTP_KMS=redis needs OTP_KMS_MASTER_KEY (or OTP_KMS_MASTER_KEY_FILE): base64url of 32 random \
                 bytes, e.g. from `openssl rand -base64 32 | tr '+/' '-_' | tr -d '='`",
            );
        return Vec::new();
    };
    let mut keys = Vec::new();
    for (i, item) in raw
        .expose_secret()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
    {
        if MasterKey::from_base64(item).is_some() {
            keys.push(SecretString::from(item.to_owned()));
        } else {
            env.problem(format!(
                "OTP_KMS_MASTER_KEY entry {}: expected base64url of 32 random bytes \
                     (the value is not shown: it is secret)",
                i + 1
            ));
        }
    }
    if keys.is_empty() {
        env.problem("OTP_KMS_MASTER_KEY holds no key (comma-separated, new key first)");
    }
    keys
}

impl RedisConfig {
    /// Reads `REDIS_URL` or `REDIS_CLUSTER_NODES`, `REDIS_TIMEOUT_MS`, `REDIS_KEY_PREFIX` and `REDIS_CA_FILE`.
    pub fn read(env: &mut Env) -> Option<Self> {
        let url = env.secret("REDIS_URL");
        let nodes = env.secret("REDIS_CLUSTER_NODES");
        let valid = |u: &str| {
            (u.starts_with("redis://") || u.starts_with("rediss://"))
                && ::redis::IntoConnectionInfo::into_connection_info(u).is_ok()
        };
        const HINT: &str = "expected redis://[user:password@]host:port[/db] or rediss://... for TLS \
                            (the value is not shown: it may hold a password)";
        let target = match (url, nodes) {
            (Some(_), Some(_)) => {
                env.problem(
                    "REDIS_URL and REDIS_CLUSTER_NODES are both set: set REDIS_URL for one server, \
                     REDIS_CLUSTER_NODES for a cluster",
                );
                None
            }
            (Some(url), None) => {
                if !valid(url.expose_secret()) {
                    env.problem(format!("REDIS_URL: {HINT}"));
                }
                Some(RedisTarget::Single(url))
            }
            (None, Some(nodes)) => {
                let list: Vec<SecretString> = nodes
                    .expose_secret()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| SecretString::from(s.to_owned()))
                    .collect();
                for (i, node) in list.iter().enumerate() {
                    if !valid(node.expose_secret()) {
                        env.problem(format!("REDIS_CLUSTER_NODES entry {}: {HINT}", i + 1));
                    }
                }
                if list.is_empty() {
                    env.problem("REDIS_CLUSTER_NODES lists no node");
                }
                Some(RedisTarget::Cluster(list))
            }
            (None, None) => {
                env.problem(
                    "OTP_ID_STORE=redis or OTP_KMS=redis needs REDIS_URL (one server) or \
                     REDIS_CLUSTER_NODES (comma-separated cluster nodes)",
                );
                None
            }
        };
        let timeout = Duration::from_millis(env.number("REDIS_TIMEOUT_MS", 1000u64, 50, 60_000));
        let key_prefix = env.get("REDIS_KEY_PREFIX").unwrap_or("otp").to_owned();
        let prefix_ok = key_prefix.len() <= 64
            && key_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-:.".contains(&b));
        if !prefix_ok {
            env.fail(
                "REDIS_KEY_PREFIX",
                &key_prefix,
                "expected 1 to 64 of A-Z a-z 0-9 _ - : . (no braces)",
            );
        }
        let ca_file = env.pem_file("REDIS_CA_FILE");
        target.map(|target| RedisConfig {
            target,
            timeout,
            key_prefix,
            ca_file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Kek;
    use crate::settings::IdStoreConfig;
    use crate::settings::tests::load;

    #[test]
    fn redis_backends_need_a_target_and_a_master_key() {
        let e = load(&[("OTP_ID_STORE", "redis"), ("OTP_KMS", "redis")]).expect_err("refused");
        let text = e.to_string();
        assert!(text.contains("REDIS_URL"), "{text}");
        assert!(text.contains("OTP_KMS_MASTER_KEY"), "{text}");
        let key = Kek::generate().dangerous_to_base64();
        let c = load(&[
            ("OTP_ID_STORE", "redis"),
            ("OTP_KMS", "redis"),
            ("OTP_KMS_MASTER_KEY", &key),
            ("REDIS_URL", "rediss://:pw@127.0.0.1:6380/0"),
        ])
        .expect("valid");
        assert_eq!(c.id_store, IdStoreConfig::Redis);
        assert_eq!(c.kms.master_keys().len(), 1);
        assert!(matches!(
            c.redis.as_ref().map(|r| &r.target),
            Some(RedisTarget::Single(_))
        ));
        let c = load(&[
            ("OTP_ID_STORE", "redis"),
            (
                "REDIS_CLUSTER_NODES",
                "redis://127.0.0.1:7000, redis://127.0.0.1:7001",
            ),
        ])
        .expect("valid");
        assert!(matches!(
            c.redis.as_ref().map(|r| &r.target),
            Some(RedisTarget::Cluster(n)) if n.len() == 2
        ));
    }

    #[test]
    fn bad_redis_values_are_reported_by_name_without_secrets() {
        let e = load(&[
            ("OTP_ID_STORE", "redis"),
            ("OTP_KMS", "redis"),
            ("OTP_KMS_MASTER_KEY", "c2VjcmV0"),
            ("REDIS_URL", "http://user:hunter2@host"),
            ("REDIS_TIMEOUT_MS", "5"),
        ])
        .expect_err("refused");
        let text = e.to_string();
        for name in ["OTP_KMS_MASTER_KEY", "REDIS_URL", "REDIS_TIMEOUT_MS"] {
            assert!(text.contains(name), "{name} missing from {text}");
        }
        assert!(
            !text.contains("hunter2") && !text.contains("c2VjcmV0"),
            "{text}"
        );
        let e = load(&[("OTP_ID_STORE", "rediss")]).expect_err("refused");
        assert!(e.to_string().contains("OTP_ID_STORE"));
    }
}
