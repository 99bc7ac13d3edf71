//! The one integration-test binary: the real server on a random port, a real HTTP client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "test code fails loudly by design"
)]

mod delivery;
mod helpers;
mod smoke;
