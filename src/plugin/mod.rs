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

/// An in-memory store whose dead entries a timer drops.
pub trait Sweep: Send + Sync + 'static {
    /// What the store holds, for the debug line (`list ids`, `limit logs`).
    const WHAT: &'static str;
    /// Drops every dead entry at `now`; how many.
    fn sweep(&self, now: crate::clock::Timestamp) -> usize;
}

/// Sweeps `store` every `every` until the returned task is dropped or aborted.
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
            let dropped = store.sweep(clock.now());
            if dropped > 0 {
                tracing::debug!(dropped, what = T::WHAT, "swept dead entries");
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
