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
//! * [`config`]: the core settings and [`Env`](config::Env), the reader every
//!   other module parses its own settings with.
//! * [`settings`]: the whole [`Config`], and [`Plugins::from_config`], the one place
//!   the configured plug-ins are built.
//! * [`otp`]: the protocol (create, resend, verify) as [`OtpService`]; no HTTP.
//! * [`crypto`]: the cookie envelope and its wire format; the only module naming AES.
//! * [`plugin`]: the extension traits (generator, credential schema, sender, ID store,
//!   KMS, final action) with their in-memory defaults, gathered in [`Plugins`].
//! * Network adapters, each beside its own settings and behind a Cargo feature:
//!   `redis` (ID store and KMS for several instances), `smtp` (e-mail and its
//!   templates), `webhook` (SMS, WhatsApp and voice gateways).
//! * [`http`]: the axum adapter; [`router`] returns a `Router` a host app can nest.
//! * [`telemetry`]: Prometheus metrics and audit events.
//! * [`clock`]: time as a value; flows take `now`.
//! * [`error`]: the one client-facing [`Error`] with its stable codes.
//!
//! The binary (`src/main.rs`) reads the configuration, lets `src/custom/` adjust the
//! default plug-ins, and serves [`router`] until a shutdown signal.

#![forbid(unsafe_code)]
#![deny(unreachable_pub, clippy::indexing_slicing)]

pub mod clock;
pub mod config;
pub mod crypto;
pub mod error;
pub mod http;
pub mod limit;
pub mod login;
pub mod otp;
pub mod plugin;
#[cfg(feature = "redis")]
pub mod redis;
pub mod settings;
#[cfg(feature = "smtp")]
pub mod smtp;
mod stack_text;
pub mod telemetry;
#[cfg(feature = "test-util")]
pub mod testing;
mod thread_buffer;
#[cfg(feature = "webhook")]
pub mod webhook;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use error::Error;
pub use http::{AppState, router};
pub use otp::{OtpPolicy, OtpService};
pub use plugin::Plugins;
pub use settings::Config;
