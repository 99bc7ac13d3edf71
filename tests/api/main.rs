//! The one integration-test binary: the real server on a random port, a real HTTP client.

mod helpers;
mod smoke;
