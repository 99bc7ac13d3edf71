//! # secure-otp-server
//!
//! A one-time-password HTTP service that keeps no credential data. Each OTP
//! session lives in an `HttpOnly` cookie holding an envelope-encrypted token list
//! (AES-256-GCM under a fresh data key, wrapped with AES-256-KW by a key-encryption
//! key from a KMS). The server stores only random single-use list IDs, so every
//! cookie can be used once and a replayed copy is refused.
//!
//! ## Architecture
//!
//! * [`config`]: environment → validated [`Config`].
//! * [`otp`]: the protocol (create, resend, verify) as [`OtpService`]; no HTTP.
//! * [`crypto`]: the cookie envelope and its wire format; the only module naming AES.
//! * [`plugin`]: the extension traits (generator, credential schema, sender, ID store,
//!   KMS, final action) with their in-memory defaults, gathered in [`Plugins`].
//! * [`http`]: the axum adapter; [`router`] returns a `Router` a host app can nest.
//! * [`store`]: Redis / Redis Cluster backends of the ID store and the KMS (several instances).
//! * [`clock`]: time as a value; flows take `now`.
//! * [`error`]: the one client-facing [`Error`] with its stable codes.
//!
//! The binary (`src/main.rs`) reads the configuration, picks the plug-ins in
//! `src/custom/` and serves [`router`] until a shutdown signal.

pub mod clock;
pub mod config;
pub mod crypto;
pub mod error;
pub mod http;
pub mod otp;
pub mod plugin;
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use config::Config;
pub use error::Error;
pub use http::{AppState, router};
pub use otp::{OtpPolicy, OtpService};
pub use plugin::Plugins;
