//! Every metric the service records, in one place: its name (prefixed `otp_`),
//! help text and labels. Recording goes through the `metrics` facade: a no-op
//! until a recorder is installed (the binary installs the Prometheus one when
//! `METRICS_ADDR` is set; an embedding app may install its own).
//!
//! Label values are `&'static str` from small fixed sets (routes, status codes,
//! channels, limits), so a client cannot grow the number of series.
//!
//! Nothing is recorded until [`set_enabled`] turns it on (the exporter does): a
//! metric call with labels builds its key even for the no-op recorder, and the
//! hot path should not pay for metrics nobody reads.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::plugin::Credential;
use metrics::{
    Counter, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
};

/// HTTP requests, by `route` and `status`.
pub const HTTP_REQUESTS: &str = "otp_http_requests_total";
/// Time from the request's arrival to its answer, by `route`.
pub const HTTP_DURATION: &str = "otp_http_request_duration_seconds";
/// Codes generated (a new session, a credential added to one, a resend).
pub const CODES_CREATED: &str = "otp_codes_created_total";
/// Codes handed to a sender, by `channel` and `outcome` (`sent`, `rejected`, `failed`).
pub const CODES_SENT: &str = "otp_codes_sent_total";
/// Sessions verified with the right code.
pub const CODES_VERIFIED: &str = "otp_codes_verified_total";
/// Wrong codes.
pub const CODES_FAILED: &str = "otp_codes_failed_total";
/// Codes blocked for good (their attempts used up).
pub const CODES_BLOCKED: &str = "otp_codes_blocked_total";
/// Requests refused by an abuse limit, by `limit`.
pub const LIMIT_HITS: &str = "otp_limit_hits_total";
/// Failed backend calls, by `backend` (`redis`, `redis-cluster`) and `component`
/// (`id_store`, `kms`, `limits`).
pub const BACKEND_ERRORS: &str = "otp_backend_errors_total";
/// Key-encryption keys created (start-up and rotations), by `backend`.
pub const KEK_ROTATIONS: &str = "otp_kek_rotations_total";
/// Final actions that failed after a right code, by `action`.
pub const FINAL_ACTION_FAILURES: &str = "otp_final_action_failures_total";
/// Live sessions (unexpired single-use IDs) in the in-memory ID store.
pub const LIVE_SESSIONS: &str = "otp_live_sessions";
/// Always 1, labelled with the `version`.
pub const BUILD_INFO: &str = "otp_build_info";

/// Whether metrics are recorded (see [`set_enabled`]).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Starts (or stops) recording: call it after installing a `metrics` recorder (the
/// Prometheus [`exporter`](super::exporter) does).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The routes requests are counted under; anything else is `other`.
const ROUTES: [&str; 11] = [
    "/api/otp/create",
    "/api/otp/resend",
    "/api/otp/verify",
    "/api/otp/status",
    "/api/otp/cancel",
    "/health",
    "/ready",
    "/api/otp/link",
    "/api/session",
    "/api/session/logout",
    "/.well-known/jwks.json",
];

/// Registers the help text and unit of every metric with the installed recorder.
pub fn describe() {
    describe_counter!(HTTP_REQUESTS, "HTTP requests, by route and status");
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time from a request's arrival to its answer, by route"
    );
    describe_counter!(CODES_CREATED, "Codes generated");
    describe_counter!(
        CODES_SENT,
        "Codes handed to a sender, by channel and outcome (sent, rejected, failed)"
    );
    describe_counter!(CODES_VERIFIED, "Sessions verified with the right code");
    describe_counter!(CODES_FAILED, "Wrong codes");
    describe_counter!(CODES_BLOCKED, "Codes blocked for good");
    describe_counter!(LIMIT_HITS, "Requests refused by an abuse limit, by limit");
    describe_counter!(
        BACKEND_ERRORS,
        "Failed backend calls, by backend and component"
    );
    describe_counter!(
        KEK_ROTATIONS,
        "Key-encryption keys created (start-up and rotations), by backend"
    );
    describe_counter!(
        FINAL_ACTION_FAILURES,
        "Final actions that failed after a right code"
    );
    describe_gauge!(LIVE_SESSIONS, "Live sessions in the in-memory ID store");
    describe_gauge!(BUILD_INFO, "Always 1, labelled with the version");
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// A request's route: one of the API's paths, or `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route(usize);

impl Route {
    /// The `route` label.
    pub fn label(self) -> &'static str {
        ROUTES.get(self.0).copied().unwrap_or("other")
    }
}

/// The route of a request path.
pub fn route(path: &str) -> Route {
    Route(
        ROUTES
            .iter()
            .position(|r| *r == path)
            .unwrap_or(ROUTES.len()),
    )
}

/// Status codes this service answers get a label of their own; others their class.
const KNOWN_STATUS: [u16; 14] = [
    200, 204, 303, 400, 401, 403, 404, 408, 409, 413, 415, 429, 500, 503,
];
const STATUS_LABELS: [&str; 19] = [
    "200", "204", "303", "400", "401", "403", "404", "408", "409", "413", "415", "429", "500",
    "503", "1xx", "2xx", "3xx", "4xx", "5xx",
];

fn status_index(code: u16) -> usize {
    KNOWN_STATUS
        .iter()
        .position(|c| *c == code)
        .unwrap_or(KNOWN_STATUS.len() + usize::from(code / 100).clamp(1, 5) - 1)
}

/// The status label: the code for the ones this service answers, else its class.
pub fn status(code: u16) -> &'static str {
    STATUS_LABELS
        .get(status_index(code))
        .copied()
        .unwrap_or("5xx")
}

// Handles of the hot metrics, registered on first use: a `counter!` with labels
// builds its key and looks it up in the recorder's registry on every call, which
// was most of the cost of recording a request.
static REQUESTS: [[OnceLock<Counter>; STATUS_LABELS.len()]; ROUTES.len() + 1] =
    [const { [const { OnceLock::new() }; STATUS_LABELS.len()] }; ROUTES.len() + 1];
static DURATIONS: [OnceLock<Histogram>; ROUTES.len() + 1] =
    [const { OnceLock::new() }; ROUTES.len() + 1];
const OUTCOMES: [&str; 3] = ["sent", "rejected", "failed"];
const CHANNELS: [&str; 3] = ["email", "phone", "other"];
static SENT: [[OnceLock<Counter>; OUTCOMES.len()]; CHANNELS.len()] =
    [const { [const { OnceLock::new() }; OUTCOMES.len()] }; CHANNELS.len()];
static CREATED: OnceLock<Counter> = OnceLock::new();
static VERIFIED: OnceLock<Counter> = OnceLock::new();
static FAILED: OnceLock<Counter> = OnceLock::new();
static BLOCKED: OnceLock<Counter> = OnceLock::new();

/// One answered request.
pub fn http_request(route: Route, status_code: u16, seconds: f64) {
    if !enabled() {
        return;
    }
    let s = status_index(status_code);
    if let Some(cell) = REQUESTS.get(route.0).and_then(|r| r.get(s)) {
        cell.get_or_init(
            || counter!(HTTP_REQUESTS, "route" => route.label(), "status" => status(status_code)),
        )
        .increment(1);
    }
    if let Some(cell) = DURATIONS.get(route.0) {
        cell.get_or_init(|| metrics::histogram!(HTTP_DURATION, "route" => route.label()))
            .record(seconds);
    }
}

/// One code for `credential` handed to a sender, and its `outcome` (`sent`,
/// `rejected`, `failed`).
pub fn code_sent(credential: &Credential, outcome: &'static str) {
    if !enabled() {
        return;
    }
    let channel = credential.channel().as_str();
    CREATED.get_or_init(|| counter!(CODES_CREATED)).increment(1);
    let c = CHANNELS.iter().position(|x| *x == channel);
    let o = OUTCOMES.iter().position(|x| *x == outcome);
    match (c, o) {
        (Some(c), Some(o)) => {
            if let Some(cell) = SENT.get(c).and_then(|r| r.get(o)) {
                cell.get_or_init(
                    || counter!(CODES_SENT, "channel" => channel, "outcome" => outcome),
                )
                .increment(1);
            }
        }
        _ => counter!(CODES_SENT, "channel" => channel, "outcome" => outcome).increment(1),
    }
}

/// A right code.
pub fn verified() {
    if !enabled() {
        return;
    }
    VERIFIED
        .get_or_init(|| counter!(CODES_VERIFIED))
        .increment(1);
}

/// A wrong code; `blocked` when it used the last attempt.
pub fn failed(blocked: bool) {
    if !enabled() {
        return;
    }
    FAILED.get_or_init(|| counter!(CODES_FAILED)).increment(1);
    if blocked {
        BLOCKED.get_or_init(|| counter!(CODES_BLOCKED)).increment(1);
    }
}

/// A request refused by the abuse limit `limit`.
pub fn limit_hit(limit: &'static str) {
    if !enabled() {
        return;
    }
    counter!(LIMIT_HITS, "limit" => limit).increment(1);
}

/// A failed call to a backend.
pub fn backend_error(backend: &'static str, component: &'static str) {
    if !enabled() {
        return;
    }
    counter!(BACKEND_ERRORS, "backend" => backend, "component" => component).increment(1);
}

/// A key-encryption key created by the KMS `backend`.
pub fn kek_rotated(backend: &'static str) {
    if !enabled() {
        return;
    }
    counter!(KEK_ROTATIONS, "backend" => backend).increment(1);
}

/// A final action that failed after a right code.
pub fn final_action_failed() {
    if !enabled() {
        return;
    }
    counter!(FINAL_ACTION_FAILURES).increment(1);
}

/// The in-memory ID store's live sessions (set when metrics are scraped).
pub fn live_sessions(count: usize) {
    if !enabled() {
        return;
    }
    gauge!(LIVE_SESSIONS).set(count as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_outside_the_api_share_one_label() {
        assert_eq!(route("/api/otp/verify").label(), "/api/otp/verify");
        assert_eq!(route("/ready").label(), "/ready");
        assert_eq!(route("/api/otp/verify/x").label(), "other");
        assert_eq!(route("/wp-admin").label(), "other");
    }

    #[test]
    fn status_labels_are_codes_or_classes() {
        assert_eq!(status(429), "429");
        assert_eq!(status(418), "4xx");
        assert_eq!(status(502), "5xx");
        assert_eq!(status(301), "3xx");
    }
}
