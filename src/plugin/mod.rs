//! The extension points: small traits, one file each, with their default implementations.
//!
//! A deployment picks one implementation of each and hands them to the server in a
//! [`Plugins`] value (the binary does it in `src/custom/`).

pub mod credential;
pub mod final_action;
pub mod generator;
pub mod id_store;
pub mod kms;
pub mod sender;

use std::sync::Arc;

pub use credential::{
    Contact, Credential, CredentialSchema, EmailCredential, EmailOrPhoneCredential, JsonCredential,
    PhoneCredential,
};
pub use final_action::{EchoCredential, FinalAction};
pub use generator::{CodeFormat, OtpCode, OtpGenerator, RandomGenerator};
pub use id_store::{IdStore, ListId, MemoryIdStore};
pub use kms::{Kms, MemoryKms, StaticKms};
pub use sender::{
    Delivery, Locale, LogSender, OtpMessage, RoutingSender, Sender, SmtpSender, Templates,
    WebhookSender,
};

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
    /// Runs after a successful verification.
    pub final_action: Arc<dyn FinalAction>,
}
