//! The extension points: small traits, one file each, with their in-memory
//! (or local) default implementations.
//!
//! A deployment runs one implementation of each, gathered in a [`Plugins`] value.
//! [`Plugins::from_config`](crate::settings) builds the configured defaults; the
//! binary's `src/custom/` and embedding apps start from it and replace fields.

pub mod credential;
pub mod final_action;
pub mod generator;
pub mod id_store;
pub mod kms;
pub mod limit_store;
pub mod replay_store;
pub mod sender;

use std::sync::Arc;

pub use credential::{
    Channel, Contact, Credential, CredentialKind, CredentialSchema, EmailCredential,
    EmailOrPhoneCredential, JsonCredential, PhoneCredential,
};
pub use final_action::{EchoCredential, FinalAction, Verified};
pub use generator::{CodeFormat, OtpCode, OtpGenerator, RandomGenerator};
pub use id_store::{IdStore, ListId, MemoryIdStore};
pub use kms::{Kms, MemoryKms, StaticKms};
pub use limit_store::{LimitStore, MemoryLimitStore};
pub use replay_store::{MemoryReplayStore, ReplayStore};
pub use sender::{Delivery, Locale, LogSender, OtpMessage, RoutingSender, Sender};

/// Shards in the maps of the in-memory stores (IDs, limits, idempotency keys).
///
/// A shard grows by rehashing all its entries under its lock, and the sweeper walks a
/// shard under its lock: a request needing that shard waits for either. DashMap's
/// default is four shards per core (rounded up to a power of two), so four in a
/// process pinned to one core: its limit store, grown to a few hundred thousand keys
/// under load, stalled the server for about 3.5 ms at each doubling, four doublings in
/// a row (BENCHMARKS.md, seventh round). With 256 a stall is a 256th of the map; a
/// map's shard locks take 32 KiB.
pub(crate) const MAP_SHARDS: usize = 256;
const _: () = assert!(
    MAP_SHARDS > 1 && MAP_SHARDS.is_power_of_two(),
    "DashMap's rule"
);

/// An empty map of an in-memory store, with room for `capacity` entries.
pub(crate) fn sharded_map<K, V, S>(capacity: usize, hasher: S) -> dashmap::DashMap<K, V, S>
where
    K: Eq + std::hash::Hash,
    S: std::hash::BuildHasher + Clone,
{
    dashmap::DashMap::with_capacity_and_hasher_and_shard_amount(capacity, hasher, MAP_SHARDS)
}

/// An in-memory store whose dead entries a timer drops.
pub trait Sweep: Send + Sync + 'static {
    /// What the store holds, for the debug line (`list ids`, `limit logs`).
    const WHAT: &'static str;
    /// Drops every dead entry at `now`; how many.
    fn sweep(&self, now: crate::clock::Timestamp) -> usize;
}

/// Sweeps `store` every `every` until the returned task is aborted (dropping the
/// handle leaves it running).
///
/// Each sweep runs on the blocking pool, not on an async worker: a sweep walks the
/// whole map, and with millions of entries an async worker doing it would stall every
/// connection it serves meanwhile. (A request touching the map still waits for the
/// walk of the one shard it needs, which the map locks while sweeping it.)
pub fn spawn_sweeper<T: Sweep>(
    store: Arc<T>,
    clock: Arc<dyn crate::clock::Clock>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = clock.now();
            let blocking = Arc::clone(&store);
            // `spawn_blocking` panics when the OS refuses a new thread; the sweep then
            // runs here rather than never again.
            let spawned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                tokio::task::spawn_blocking(move || blocking.sweep(now))
            }));
            let swept = match spawned {
                Ok(task) => task.await,
                Err(_) => Ok(store.sweep(now)),
            };
            match swept {
                Ok(0) => {}
                Ok(dropped) => tracing::debug!(dropped, what = T::WHAT, "swept dead entries"),
                // The runtime is shutting down.
                Err(e) if e.is_cancelled() => break,
                Err(e) => tracing::warn!(error = %e, what = T::WHAT, "a sweep failed"),
            }
        }
    })
}

/// One implementation of each extension point.
#[derive(Debug, Clone)]
pub struct Plugins {
    /// Makes codes.
    pub generator: Arc<dyn OtpGenerator>,
    /// Turns a create body into a credential.
    pub credential: Arc<dyn CredentialSchema>,
    /// Delivers codes.
    pub sender: Arc<dyn Sender>,
    /// Keeps single-use list IDs.
    pub ids: Arc<dyn IdStore>,
    /// Holds key-encryption keys.
    pub kms: Arc<dyn Kms>,
    /// Keeps the abuse limits' counters.
    pub limits: Arc<dyn LimitStore>,
    /// Runs after a successful verification.
    pub final_action: Arc<dyn FinalAction>,
    /// Keeps `Idempotency-Key` answers (where the list IDs live).
    pub replays: Arc<dyn ReplayStore>,
    /// Session tokens (`OTP_FINAL_ACTION=session`): the `/api/session` endpoints
    /// check and revoke what the session final action issued.
    pub sessions: Option<Arc<crate::login::Sessions>>,
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::thread::ThreadId;

    use super::*;
    use crate::clock::{Clock, SystemClock};

    /// Remembers the thread each sweep ran on.
    #[derive(Default)]
    struct Recorded {
        threads: Mutex<Vec<ThreadId>>,
        swept: tokio::sync::Notify,
    }

    impl Sweep for Recorded {
        const WHAT: &'static str = "test entries";

        fn sweep(&self, _now: crate::clock::Timestamp) -> usize {
            if let Ok(mut t) = self.threads.lock() {
                t.push(std::thread::current().id());
            }
            self.swept.notify_one();
            0
        }
    }

    #[test]
    fn a_sweep_runs_off_the_async_thread() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let store = Arc::new(Recorded::default());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        runtime.block_on(async {
            // The first tick is immediate.
            let task = spawn_sweeper(
                Arc::clone(&store),
                clock,
                std::time::Duration::from_secs(3600),
            );
            store.swept.notified().await;
            task.abort();
        });
        let threads = store.threads.lock().expect("threads");
        assert_eq!(threads.len(), 1);
        assert_ne!(
            threads[0],
            std::thread::current().id(),
            "the sweep ran on the runtime's own thread"
        );
    }
}
