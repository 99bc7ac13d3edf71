//! Login out of the box: what the stock server does once a code is verified.
//!
//! * [`token`]: session tokens (Ed25519 JWTs) and their JWKS.
//! * [`session`]: the `session` final action, and the checks and revocation behind
//!   `/api/session` and logout.
//! * `verified_webhook`: the `webhook` final action (the `webhook` feature).
//! * [`settings`]: `OTP_FINAL_ACTION` and its settings, magic links, the demo page.
//!
//! Magic links themselves are part of the protocol ([`crate::otp::link`]); the
//! pages and endpoints are in [`crate::http`].

pub mod session;
pub mod settings;
pub mod token;
#[cfg(feature = "webhook")]
pub mod verified_webhook;

pub use session::{SessionFinalAction, SessionSettings, Sessions};
pub use settings::{FinalActionKind, LoginConfig};
pub use token::{Claims, SessionKeys};
#[cfg(feature = "webhook")]
pub use verified_webhook::{VerifiedWebhook, VerifiedWebhookConfig};
