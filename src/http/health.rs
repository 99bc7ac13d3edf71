//! `/health` (any method): the process is up.

/// `200 OK` with a plain-text body.
pub(super) async fn handler() -> &'static str {
    "OK"
}
