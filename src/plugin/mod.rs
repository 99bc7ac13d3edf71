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
pub use sender::{Delivery, Locale, LogSender, OtpMessage, RoutingSender, Sender};

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
    /// Session tokens (`OTP_FINAL_ACTION=session`): the `/api/session` endpoints
    /// check and revoke what the session final action issued.
    pub sessions: Option<Arc<crate::login::Sessions>>,
}
