//! One contract suite per store trait, run unchanged against the in-memory
//! implementation, a real Redis server and a real 3-master Redis Cluster.
//!
//! Each suite takes two handles on one backend: for Redis two independent
//! instances (own connections, own caches) as two server processes would have; for
//! memory the same object twice (its state is per process by design).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secure_otp_server::crypto::MasterKey;
use secure_otp_server::plugin::{
    IdStore, Kms, LimitStore, MemoryIdStore, MemoryKms, MemoryLimitStore,
};
use secure_otp_server::redis::{RedisIdStore, RedisKms, RedisLimitStore};
use secure_otp_server::testing::{
    CONTRACT_RETENTION as RETENTION, CONTRACT_ROTATION as ROTATION, at, id_store_contract,
    kms_contract, limit_store_contract, same_key,
};

use crate::redis_support::Backend;

// ---------------------------------------------------------------- IdStore

#[tokio::test]
async fn the_memory_id_store_keeps_the_id_store_contract() {
    let store: Arc<dyn IdStore> = Arc::new(MemoryIdStore::new(10_000));
    id_store_contract(store.clone(), store).await;
}

fn redis_id_stores(backend: &Backend) -> (Arc<RedisIdStore>, Arc<RedisIdStore>) {
    (
        Arc::new(RedisIdStore::new(backend.connection())),
        Arc::new(RedisIdStore::new(backend.connection())),
    )
}

/// What only Redis shows: the value is the expiry, the TTL ends at the expiry, and a
/// replacement stays in its predecessor's cluster slot (the hash tag).
async fn redis_id_store_extras(backend: &Backend, store: &RedisIdStore) {
    let id = store.issue(at(60_000), at(0)).await.expect("issue");
    let key = store.key(id);
    let value: String =
        redis::from_redis_value(backend.raw(redis::cmd("GET").arg(&key))).expect("value");
    assert_eq!(value, at(60_000).as_millis().to_string());
    let ttl: i64 = redis::from_redis_value(backend.raw(redis::cmd("PTTL").arg(&key))).expect("ttl");
    assert!(ttl > 55_000 && ttl <= 60_000, "TTL is the time left: {ttl}");
    let next = store
        .replace(id, at(60_000), at(0))
        .await
        .expect("replace")
        .expect("live");
    let tag = |k: &str| {
        k.split('{')
            .nth(1)
            .and_then(|r| r.split('}').next())
            .map(str::to_owned)
    };
    assert_eq!(tag(&key), tag(&store.key(next)), "same hash tag");
    let exists: i64 =
        redis::from_redis_value(backend.raw(redis::cmd("EXISTS").arg(&key))).expect("exists");
    assert_eq!(exists, 0, "the old ID is gone from Redis");
}

#[tokio::test]
async fn the_redis_id_store_keeps_the_id_store_contract() {
    let backend = Backend::single();
    let (a, b) = redis_id_stores(&backend);
    id_store_contract(a.clone(), b).await;
    redis_id_store_extras(&backend, &a).await;
}

#[tokio::test]
async fn the_redis_cluster_id_store_keeps_the_id_store_contract() {
    let backend = Backend::cluster();
    let (a, b) = redis_id_stores(&backend);
    id_store_contract(a.clone(), b).await;
    redis_id_store_extras(&backend, &a).await;
}

// ---------------------------------------------------------------- Kms

#[tokio::test]
async fn the_memory_kms_keeps_the_kms_contract() {
    let kms: Arc<dyn Kms> = Arc::new(MemoryKms::new(ROTATION, RETENTION));
    kms_contract(kms.clone(), kms).await;
}

fn redis_kms(backend: &Backend, masters: &[&str]) -> Arc<RedisKms> {
    let masters = masters
        .iter()
        .map(|m| MasterKey::from_base64(m).expect("master key"))
        .collect();
    Arc::new(RedisKms::new(backend.connection(), masters, ROTATION, RETENTION).expect("kms"))
}

/// What only Redis shows: the stored key is encrypted (the raw value does not hold
/// it), and a rotated master key re-encrypts it on read.
async fn redis_kms_extras(backend: &Backend) {
    let old_master = crate::redis_support::master_key();
    let kms = redis_kms(backend, &[&old_master]);
    // A fresh prefix-less backend already holds the contract's keys: read the current one.
    let now = at(300_000);
    let (id, kek) = kms.current(now).await.expect("current");
    let raw: Vec<u8> =
        redis::from_redis_value(backend.raw(redis::cmd("GET").arg(kms.entry_key(id))))
            .expect("entry");
    let plain = URL_SAFE_NO_PAD
        .decode(kek.dangerous_to_base64())
        .expect("b64");
    assert_eq!(plain.len(), 32);
    assert!(
        !raw.windows(plain.len()).any(|w| w == plain.as_slice()),
        "the key is not stored in clear"
    );
    assert!(!String::from_utf8_lossy(&raw).contains(&kek.dangerous_to_base64()));

    // Master-key rotation: a KMS configured "new,old" opens the key and re-encrypts it.
    let new_master = crate::redis_support::master_key();
    let rotated = redis_kms(backend, &[&new_master, &old_master]);
    let again = rotated.get(id, now).await.expect("get").expect("opens");
    assert!(same_key(id, &kek, &again));
    let only_new = redis_kms(backend, &[&new_master]);
    let again = only_new
        .get(id, now)
        .await
        .expect("get")
        .expect("re-encrypted");
    assert!(same_key(id, &kek, &again));
    // A KMS that knows only an unrelated master key refuses loudly (500), not silently.
    let stranger = redis_kms(backend, &[&crate::redis_support::master_key()]);
    assert!(stranger.get(id, now).await.is_err());
}

/// The contract on two independent handles sharing one master key, then the extras.
async fn redis_kms_suite(backend: Backend) {
    let master = crate::redis_support::master_key();
    let (a, b) = (
        redis_kms(&backend, &[&master]),
        redis_kms(&backend, &[&master]),
    );
    kms_contract(a, b).await;
    redis_kms_extras(&backend).await;
}

#[tokio::test]
async fn the_redis_kms_keeps_the_kms_contract() {
    redis_kms_suite(Backend::single()).await;
}

#[tokio::test]
async fn the_redis_cluster_kms_keeps_the_kms_contract() {
    redis_kms_suite(Backend::cluster()).await;
}

/// Redis restarted empty (no persistence) while an instance held the current key in
/// its cache: once that instance has seen a command fail, it elects a new key in
/// Redis instead of sealing with one no other instance can find.
#[tokio::test]
async fn after_an_outage_the_redis_kms_re_reads_the_current_key() {
    let mut backend = Backend::single();
    let master = crate::redis_support::master_key();
    let connection = backend.connection();
    let a = RedisKms::new(
        connection.clone(),
        vec![MasterKey::from_base64(&master).expect("master key")],
        ROTATION,
        RETENTION,
    )
    .expect("kms");
    let ids = RedisIdStore::new(connection);
    let now = at(0);
    let (before, _) = a.current(now).await.expect("current");

    let Backend::Single(server) = &mut backend else {
        unreachable!("a single server")
    };
    server.restart();
    // Redis is back, empty. A command on the shared connection fails once (the old
    // socket is dead), as a request during the outage would have.
    let mut failed = false;
    for _ in 0..5 {
        failed |= ids.issue(at(60_000), now).await.is_err();
    }
    assert!(failed, "the first command on the dead socket fails");

    let (after, _) = a.current(now).await.expect("current after the outage");
    assert_ne!(after, before, "a new key is elected");
    let b = redis_kms(&backend, &[&master]);
    assert!(
        b.get(after, now).await.expect("get").is_some(),
        "and stored"
    );
    assert!(b.get(before, now).await.expect("get").is_none());
}

// ---------------------------------------------------------------- LimitStore

#[tokio::test]
async fn the_memory_limit_store_keeps_the_limit_store_contract() {
    let store: Arc<dyn LimitStore> = Arc::new(MemoryLimitStore::new(10_000));
    limit_store_contract(store.clone(), store).await;
}

fn redis_limit_stores(backend: &Backend) -> (Arc<dyn LimitStore>, Arc<dyn LimitStore>) {
    (
        Arc::new(RedisLimitStore::new(backend.connection())),
        Arc::new(RedisLimitStore::new(backend.connection())),
    )
}

#[tokio::test]
async fn the_redis_limit_store_keeps_the_limit_store_contract() {
    let backend = Backend::single();
    let (a, b) = redis_limit_stores(&backend);
    limit_store_contract(a, b).await;
}

#[tokio::test]
async fn the_redis_cluster_limit_store_keeps_the_limit_store_contract() {
    let backend = Backend::cluster();
    let (a, b) = redis_limit_stores(&backend);
    limit_store_contract(a, b).await;
}
