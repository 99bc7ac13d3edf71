//! Test utilities (the `test-util` feature): fakes and contract suites for a
//! fork's or an embedding app's own tests, the same ones this project's tests use.
//!
//! * [`RecordingSender`]: a sender that keeps every code it is given, or refuses or
//!   fails on demand ([`SendMode`]).
//! * [`NullSender`]: a sender that drops every message (for measuring the server).
//! * [`call`]: one request through a router, to the last byte of its answer.
//! * [`ManualClock`]: time that moves only when the test says so.
//! * [`id_store_contract`], [`kms_contract`] and [`limit_store_contract`]: every
//!   guarantee of the store traits, checked on a real implementation.
#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test utilities report a broken guarantee by panicking, as tests do"
)]

mod contract;

use std::sync::Mutex;

use async_trait::async_trait;

pub use crate::clock::ManualClock;
use crate::error::BackendError;
use crate::plugin::{Delivery, OtpMessage, Sender};
pub use contract::{
    CONTRACT_RETENTION, CONTRACT_ROTATION, T0, at, id_store_contract, kms_contract,
    limit_store_contract, same_key,
};

/// Accepts every message and drops it: benchmarks and budgets measure the server,
/// not a delivery channel.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSender;

#[async_trait]
impl Sender for NullSender {
    async fn send(&self, _: &OtpMessage<'_>) -> Result<Delivery, BackendError> {
        Ok(Delivery::Sent)
    }
}

/// One request through `app` (no socket) to the last byte of its answer: the
/// status and the `name=value` of the cookie it sets, if any.
pub async fn call(
    app: &axum::Router,
    req: axum::http::Request<axum::body::Body>,
) -> (axum::http::StatusCode, Option<String>) {
    use tower::ServiceExt as _;
    let res = app
        .clone()
        .oneshot(req)
        .await
        .expect("a router never fails");
    let status = res.status();
    let cookie = res
        .headers()
        .get(axum::http::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .expect("an in-memory body");
    (status, cookie)
}

/// What a [`RecordingSender`] does with the next messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMode {
    /// Record and report success.
    Deliver,
    /// Report the credential as refused.
    Reject,
    /// Fail as a transport error would.
    Fail,
}

/// A sender that keeps every code it is given (a fake, not a mock).
#[derive(Debug)]
pub struct RecordingSender {
    sent: Mutex<Vec<(String, String)>>,
    links: Mutex<Vec<Option<String>>>,
    mode: Mutex<SendMode>,
}

impl Default for RecordingSender {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordingSender {
    /// A sender that delivers (records) everything.
    pub fn new() -> Self {
        Self {
            sent: Mutex::new(Vec::new()),
            links: Mutex::new(Vec::new()),
            mode: Mutex::new(SendMode::Deliver),
        }
    }

    /// Changes what happens to the next messages.
    pub fn set_mode(&self, mode: SendMode) {
        *self.mode.lock().expect("lock") = mode;
    }

    /// Every (credential, code) delivered so far.
    pub fn sent(&self) -> Vec<(String, String)> {
        self.sent.lock().expect("lock").clone()
    }

    /// The last code delivered.
    pub fn last_code(&self) -> String {
        self.sent()
            .last()
            .map(|(_, c)| c.clone())
            .expect("a code was sent")
    }

    /// The magic link of the last message delivered, if it had one.
    pub fn last_link(&self) -> Option<String> {
        self.links.lock().expect("lock").last().cloned().flatten()
    }

    /// The last code delivered to `credential` (its canonical text).
    pub fn code_for(&self, credential: &str) -> String {
        self.sent()
            .iter()
            .rev()
            .find(|(c, _)| c == credential)
            .map(|(_, code)| code.clone())
            .expect("a code was sent to that credential")
    }
}

#[async_trait]
impl Sender for RecordingSender {
    async fn send(&self, m: &OtpMessage<'_>) -> Result<Delivery, BackendError> {
        let mode = *self.mode.lock().expect("lock");
        match mode {
            SendMode::Deliver => {
                self.sent
                    .lock()
                    .expect("lock")
                    .push((m.credential.as_str().to_owned(), m.code.expose().to_owned()));
                self.links
                    .lock()
                    .expect("lock")
                    .push(m.link.map(str::to_owned));
                Ok(Delivery::Sent)
            }
            SendMode::Reject => Ok(Delivery::Rejected),
            SendMode::Fail => Err(BackendError::Unavailable("test transport down".into())),
        }
    }
}
