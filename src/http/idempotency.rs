//! `Idempotency-Key` on create and resend: a repeat of a request (same key, same
//! body, same client) within ten minutes gets the first answer again, status,
//! body and `Set-Cookie` alike, and sends nothing; the same key with another body
//! is `422 REQUEST:IDEMPOTENCY_MISMATCH`. Concurrent repeats wait for the first.
//!
//! The store key is a digest of the route, the client's address, the cookie it
//! presented and its key, so no client can name another client's answer (which
//! holds a session cookie). Answers that a retry could improve on (408, 409,
//! 429, 5xx) are not kept.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

use crate::error::Error;
use crate::http::Inner;
use crate::plugin::ReplayStore;
use crate::plugin::replay_store::{Claim, StoredAnswer};

const KEY_HEADER: &str = "idempotency-key";
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// How long an answer is kept.
const TTL: Duration = Duration::from_secs(600);
/// The longest key accepted.
const MAX_KEY_LEN: usize = 64;
/// How long a repeat waits for the first request's answer, and how often it looks.
const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);
/// Larger answers are not kept (create and resend answer a few hundred bytes).
const MAX_ANSWER: usize = 16 * 1024;

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in parts {
        h.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// Runs `work` once per key: the first request with a key runs it and keeps the
/// answer, repeats get that answer. Without the header, `work` simply runs.
///
/// `work` is pinned by the caller and only ever awaited through that reference: a
/// future passed by value is stored again in each future it is moved into (this
/// one's state, then `first`'s), and the create handler's future was 10.9 KB,
/// holding its work three times, copied whole on every request.
pub(super) async fn once(
    app: &Inner,
    route: &'static str,
    client: Option<IpAddr>,
    headers: &HeaderMap,
    cookie: Option<&str>,
    request: (Option<&str>, &[u8]),
    mut work: Pin<&mut impl Future<Output = Response>>,
) -> Response {
    let (query, body) = request;
    let Some(raw) = headers.get(KEY_HEADER) else {
        return work.await;
    };
    let text = raw.as_bytes();
    if text.is_empty() || text.len() > MAX_KEY_LEN || !text.iter().all(|b| b.is_ascii_graphic()) {
        return Error::IdempotencyKeyInvalid.into_response();
    }
    let client = client.map(|ip| ip.to_string()).unwrap_or_default();
    let key = digest(&[
        b"idempotency v1",
        route.as_bytes(),
        client.as_bytes(),
        cookie.unwrap_or_default().as_bytes(),
        text,
    ]);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map_or(&b""[..], HeaderValue::as_bytes);
    let query = query.unwrap_or_default().as_bytes();
    let fingerprint = digest(&[route.as_bytes(), query, content_type, body]);
    let started = crate::clock::monotonic_now();
    loop {
        let now = app.clock.now();
        match app.replays.claim(&key, &fingerprint, TTL, now).await {
            Err(e) => return Error::from(e).into_response(),
            Ok(Claim::Fresh) => return first(app, &key, &fingerprint, work.as_mut()).await,
            Ok(Claim::Done { fingerprint: f, .. } | Claim::Pending { fingerprint: f })
                if f != fingerprint =>
            {
                return Error::IdempotencyMismatch.into_response();
            }
            Ok(Claim::Done { answer, .. }) => return replay(answer),
            Ok(Claim::Pending { .. }) => {
                if crate::clock::monotonic_now().saturating_duration_since(started) > WAIT {
                    return Error::Conflict.into_response();
                }
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// Releases a claimed key when its request ends without settling it: cancelled by
/// the request timeout (408) or by the client going away. Left alone, the key stayed
/// pending for its whole TTL, and every retry with it (what a client does after a
/// 408) waited ten seconds and got 409.
struct Claimed {
    replays: Arc<dyn ReplayStore>,
    key: [u8; 32],
    settled: bool,
}

impl Drop for Claimed {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (replays, key) = (Arc::clone(&self.replays), self.key);
        // Outside a runtime (a process shutting down) the key expires with its TTL.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = replays.release(&key).await {
                    tracing::warn!(error = %e, "could not release an abandoned idempotency key");
                }
            });
        }
    }
}

/// Runs the work for the request that claimed the key, and keeps its answer.
async fn first(
    app: &Inner,
    key: &[u8; 32],
    fingerprint: &[u8; 32],
    work: Pin<&mut impl Future<Output = Response>>,
) -> Response {
    let mut claimed = Claimed {
        replays: Arc::clone(&app.replays),
        key: *key,
        settled: false,
    };
    let response = work.await;
    // From here on the work is done: a request cancelled while its answer is being
    // kept leaves the key to its TTL rather than running the work again.
    claimed.settled = true;
    let status = response.status();
    let keep = !(status.is_server_error()
        || matches!(
            status,
            StatusCode::REQUEST_TIMEOUT | StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS
        ));
    if !keep {
        if let Err(e) = app.replays.release(key).await {
            tracing::warn!(error = %e, "could not release an idempotency key");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ANSWER).await else {
        let _ = app.replays.release(key).await;
        return Error::Internal("an answer too large to keep".to_owned()).into_response();
    };
    let answer = StoredAnswer {
        status: parts.status.as_u16(),
        set_cookies: parts
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect(),
        body: bytes.to_vec(),
    };
    if let Err(e) = app
        .replays
        .complete(key, fingerprint, &answer, TTL, app.clock.now())
        .await
    {
        // The work is done and answered; only a repeat will find no answer.
        tracing::warn!(error = %e, "could not keep an idempotent answer");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The first answer again, marked as a replay.
fn replay(answer: StoredAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, answer.body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(REPLAYED, HeaderValue::from_static("true"));
    for cookie in answer.set_cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            h.append(header::SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::{HeaderMap, HeaderValue, StatusCode};
    use axum::response::{IntoResponse, Response};

    use super::{KEY_HEADER, once};
    use crate::http::tests::default_app;

    #[tokio::test]
    async fn a_request_cancelled_while_working_frees_its_key() {
        let app = default_app();
        let mut headers = HeaderMap::new();
        headers.insert(KEY_HEADER, HeaderValue::from_static("k-1"));
        let request = (None, &b"{}"[..]);

        // The first request never finishes its work: the timeout cancels it.
        let stuck = std::pin::pin!(std::future::pending::<Response>());
        let first = once(&app.0, "create", None, &headers, None, request, stuck);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), first)
                .await
                .is_err()
        );

        // The retry runs its work at once, instead of waiting on a pending key.
        tokio::task::yield_now().await;
        let ran = std::pin::pin!(async { StatusCode::OK.into_response() });
        let retry = once(&app.0, "create", None, &headers, None, request, ran);
        let answer = tokio::time::timeout(Duration::from_secs(1), retry)
            .await
            .expect("the key was released");
        assert_eq!(answer.status(), StatusCode::OK);
        assert!(answer.headers().get(super::REPLAYED).is_none());
    }
}
