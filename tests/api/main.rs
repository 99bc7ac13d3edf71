//! The one integration-test binary: the real server on a random port, a real HTTP client.
#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    missing_docs,
    reason = "test code fails loudly by design, and measures real elapsed time"
)]

mod allocations;
mod api_fuzzing;
mod awkward_credentials;
mod binary;
mod browser;
mod conformance;
mod contract;
mod create;
mod delivery;
mod enumeration;
mod expiry;
mod hardening;
mod helpers;
mod http_surface;
mod idempotency;
mod kek_rotation;
mod limits;
mod login;
mod multi_credential;
mod multi_instance;
mod openapi;
mod original_suite;
mod pgo_trainer;
mod process;
mod production;
mod protocol_properties;
mod purposes;
mod redis_support;
mod replay_and_concurrency;
mod resend;
mod reverse_proxy;
mod smoke;
mod status_and_cancel;
mod tampering;
mod telemetry;
mod test_credentials;
mod verify;
