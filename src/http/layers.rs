//! What wraps every request: the client's address (through the trusted proxies),
//! the request's span and access line, the cross-site check, the request timeout,
//! the body limit, CORS, security headers, and the 404.
//!
//! One middleware ([`edge`]) does all of it, in the order separate layers would
//! (body limit innermost, security headers outermost): each `from_fn` layer costs
//! a boxed service clone and a boxed future per request, and three of them were
//! most of what an OTP request spent outside its handler. It is a tower service
//! of its own ([`Edge`]) rather than a `from_fn`, which boxed the inner service
//! and its future once more per request.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use tokio::sync::Semaphore;
use tower::{Layer, Service};
use tracing::{Instrument, Level, Span};

use crate::error::{Error, ErrorCode};
use crate::http::AppState;
use crate::http::client::ClientIp;
use crate::http::content_length::content_length;
use crate::telemetry::metric;

/// Memory all bodies being read may hold at once, in KiB (16 MiB).
pub(super) const BODY_BUDGET_KIB: u32 = 16 * 1024;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const ALLOWED_METHODS: HeaderValue = HeaderValue::from_static("GET, HEAD, POST");
const PREFLIGHT_MAX_AGE: HeaderValue = HeaderValue::from_static("600");

/// The original's secure headers (Hono defaults); `Cache-Control: no-store` and, in
/// production, HSTS are added beside them. Constants, so no name is parsed per request.
const SECURE_HEADERS: [(HeaderName, HeaderValue); 10] = [
    secure("cross-origin-opener-policy", "same-origin"),
    secure("cross-origin-resource-policy", "same-origin"),
    secure("origin-agent-cluster", "?1"),
    secure("referrer-policy", "no-referrer"),
    secure("x-content-type-options", "nosniff"),
    secure("x-dns-prefetch-control", "off"),
    secure("x-download-options", "noopen"),
    secure("x-frame-options", "SAMEORIGIN"),
    secure("x-permitted-cross-domain-policies", "none"),
    secure("x-xss-protection", "0"),
];

const fn secure(name: &'static str, value: &'static str) -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static(name),
        HeaderValue::from_static(value),
    )
}

/// The layer that puts [`edge`] around a router's routes.
#[derive(Clone)]
pub(super) struct EdgeLayer(pub(super) AppState);

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            state: self.0.clone(),
            inner,
        }
    }
}

/// A route behind [`edge`].
#[derive(Clone)]
pub(super) struct Edge<S> {
    state: AppState,
    inner: S,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The service polled ready goes with this request; a clone waits for the next.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Box::pin(async move { Ok(edge(state, req, ready).await) })
    }
}

/// Every request: its span and access line; an `OPTIONS` preflight is answered
/// here; a cross-site `POST` gets `403`; anything else has its body read up to the
/// limit (or gets `413`) and goes to the router, all within the request timeout
/// (or `408`). Every response then gets its CORS and security headers.
///
/// The span is built here, with every field at once, rather than by tower-http's
/// `TraceLayer` with fields recorded later: each `record` re-formats the span's
/// fields, and the layer was one more boxed service and future per request.
async fn edge<S>(state: AppState, mut req: Request, mut next: S) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let inner = &state.0;
    let started = crate::clock::monotonic_now();
    let route = metric::route(req.uri().path());
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| inner.trusted_proxies.client_ip(addr.ip(), req.headers()));
    if let Some(client) = client {
        req.extensions_mut().insert(ClientIp(Some(client)));
    }
    let request_id = request_id(req.headers());
    let span = request_span(&req, client, &request_id);
    // Handlers (and the final action) see the id the logs and the answer carry.
    req.headers_mut().insert(X_REQUEST_ID, request_id.clone());
    let allowed_origin = req
        .headers()
        .get(header::ORIGIN)
        .filter(|o| inner.cors_origins.iter().any(|a| a == *o))
        .cloned();
    let answer = async {
        if req.method() == Method::OPTIONS {
            preflight(req.headers())
        } else if req.method() == Method::POST
            && allowed_origin.is_none()
            && is_cross_site(req.headers())
        {
            Error::ForbiddenOrigin.into_response()
        } else {
            let handled = async {
                match read_body(req, inner.body_limit, &inner.body_budget).await {
                    Ok(req) => match next.call(req).await {
                        Ok(res) => res,
                        Err(never) => match never {},
                    },
                    Err(too_large) => too_large,
                }
            };
            match tokio::time::timeout(inner.request_timeout, handled).await {
                Ok(res) => res,
                Err(_) => Error::RequestTimeout.into_response(),
            }
        }
    };
    let mut res = INSIDE_THE_EDGE
        .scope((), answer.instrument(span.clone()))
        .await;
    let known_len = res.body().size_hint().exact();
    let h = res.headers_mut();
    let answer = std::mem::replace(h, inner.fixed_headers.clone());
    let error = merge_answer(h, answer);
    h.insert(X_REQUEST_ID, request_id);
    cors_headers(h, allowed_origin);
    // Set here, before axum would: its value is formatted into an allocation of its
    // own. The body is final past this point (a `HEAD` answer loses it later, and
    // keeps the length, as with axum).
    if let Some(len) = known_len
        && !h.contains_key(header::CONTENT_LENGTH)
    {
        h.insert(header::CONTENT_LENGTH, content_length(len));
    }
    let elapsed = started.elapsed();
    let error = error_code(error.as_ref(), &res);
    span.in_scope(|| access_line(&span, &res, error, elapsed));
    metric::http_request(route, res.status().as_u16(), elapsed.as_secs_f64());
    res
}

/// The span every request's log lines carry: method, path, client address and
/// request id (`purpose` is recorded by the handlers that take one). Probes
/// (`/health`, `/ready`) get a debug span, so their access lines stay out of an
/// `info` log.
fn request_span(req: &Request, client: Option<IpAddr>, request_id: &HeaderValue) -> Span {
    let path = req.uri().path();
    let client_ip = client.map(tracing::field::display);
    let request_id = request_id.to_str().unwrap_or_default();
    if matches!(path, "/health" | "/ready") {
        tracing::debug_span!(
            "request",
            method = %req.method(),
            uri = %path,
            client_ip,
            request_id,
        )
    } else {
        tracing::info_span!(
            "request",
            method = %req.method(),
            uri = %path,
            client_ip,
            request_id,
            purpose = tracing::field::Empty,
        )
    }
}

tokio::task_local! {
    /// Set while a request is inside [`edge`]: error answers made there carry their
    /// code in [`ErrorCode::HEADER`], which the edge takes out.
    static INSIDE_THE_EDGE: ();
}

/// Whether this task is answering a request inside [`edge`] (so an internal header
/// of the answer is taken out before it leaves).
pub(crate) fn inside_the_edge() -> bool {
    INSIDE_THE_EDGE.try_with(|()| ()).is_ok()
}

/// An answer's error code for its access line: from the internal header the edge
/// took out of it, else (an answer made outside the edge's task) its extensions.
fn error_code<'a>(header: Option<&'a HeaderValue>, res: &'a Response) -> Option<&'a str> {
    match header {
        Some(header) => header.to_str().ok(),
        None => res.extensions().get::<ErrorCode>().map(|c| c.0),
    }
}

/// The access line's target (where `TraceLayer` used to live).
const ACCESS_TARGET: &str = "secure_otp_server::http";

/// One access line per request, at the span's level: status, error code and
/// duration (the span adds method, path, client address and request id). A `5xx`
/// also gets an `ERROR` line, as tower-http's trace layer wrote one before.
fn access_line(span: &Span, res: &Response, error: Option<&str>, elapsed: Duration) {
    let status = res.status();
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let code = status.as_u16();
    // A probe's debug span is disabled at `info`: its line must not fall back
    // to `info` (it would then be logged, without its span). Both lines keep the
    // targets they had under tower-http's trace layer, which `RUST_LOG`
    // directives and log pipelines may name.
    if span.is_disabled() || span.metadata().is_some_and(|m| *m.level() == Level::DEBUG) {
        tracing::debug!(target: ACCESS_TARGET, status = code, error, duration_us = micros, "request");
    } else {
        tracing::info!(target: ACCESS_TARGET, status = code, error, duration_us = micros, "request");
    }
    if status.is_server_error() {
        tracing::error!(
            target: "tower_http::trace::on_failure",
            classification = %format_args!("Status code: {status}"),
            latency = %format_args!("{} ms", elapsed.as_millis()),
            "response failed"
        );
    }
}

/// The request's id: the client's (or the proxy's) `X-Request-Id` when it is 1 to 64
/// characters of `A-Z a-z 0-9 . _ -` (anything else could forge log lines or
/// bloat them), else 16 random bytes in hex.
fn request_id(h: &HeaderMap) -> HeaderValue {
    let sane = |v: &&HeaderValue| {
        let b = v.as_bytes();
        (1..=64).contains(&b.len())
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    };
    if let Some(v) = h.get(X_REQUEST_ID).filter(sane) {
        return v.clone();
    }
    let mut raw = [0u8; 16];
    rand::fill(&mut raw);
    let text: [u8; 32] = crate::crypto::hex(&raw);
    // Owned by a shared buffer from the start: the id is cloned into the request
    // and the answer, and a clone of a copied-in value allocates once more.
    HeaderValue::from_maybe_shared(Bytes::from_owner(text))
        .unwrap_or(HeaderValue::from_static("unknown"))
}

/// Whether a request comes from another site's page: its `Origin` is not this
/// server's own (same host and port as `Host`; `null` counts as foreign), or it
/// has no `Origin` but the browser says `Sec-Fetch-Site: cross-site`. Requests
/// without either (curl, server-to-server calls) are not cross-site. Allowed
/// `CORS_ORIGIN` origins are checked before this.
///
/// One exception: `Origin: null` with `Sec-Fetch-Site: same-origin`. A browser
/// sends that for a form posted by this server's own page under
/// `Referrer-Policy: no-referrer` (the magic-link page); no script can set
/// `Sec-Fetch-Site`, so another site's page cannot claim it.
fn is_cross_site(h: &HeaderMap) -> bool {
    let fetch_site = h.get("sec-fetch-site").map(HeaderValue::as_bytes);
    match h.get(header::ORIGIN).map(HeaderValue::as_bytes) {
        Some(b"null") if fetch_site == Some(b"same-origin") => false,
        Some(origin) => {
            let authority = origin
                .strip_prefix(b"https://")
                .or_else(|| origin.strip_prefix(b"http://"));
            let host = h.get(header::HOST).map(HeaderValue::as_bytes);
            !matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
        }
        None => fetch_site.is_some_and(|v| v.eq_ignore_ascii_case(b"cross-site")),
    }
}

/// `204` with the allowed methods, echoing the requested headers.
fn preflight(req: &HeaderMap) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS);
    h.insert(header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE);
    if let Some(requested) = req.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
        h.append(
            header::VARY,
            HeaderValue::from_static("Access-Control-Request-Headers"),
        );
    }
    res
}

/// Reads the whole body up to `limit` (streamed bodies too), or the `413` answer.
///
/// Bodies being read share one memory budget ([`BODY_BUDGET_KIB`]): a request
/// takes its declared size (or the limit, for a chunked body) before reading, and
/// waits while the budget is spent. Stalled uploads then sit in the kernel's socket
/// buffers, not in this process: 1000 clients holding 100 KB bodies cost the
/// budget, not 100 MB.
async fn read_body(req: Request, limit: usize, budget: &Semaphore) -> Result<Request, Response> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Error::BodyTooLarge.into_response());
    }
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    let bytes = match declared {
        Some(n) => n,
        None if chunked => limit as u64,
        None => 0,
    };
    let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
    let _reserved = if kib == 0 {
        None
    } else {
        let kib = kib.min(BODY_BUDGET_KIB);
        Some(
            budget
                .acquire_many(kib)
                .await
                .map_err(|_| Error::Internal("body budget closed".into()).into_response())?,
        )
    };
    let (parts, body) = req.into_parts();
    match collect(body, limit).await {
        Some(bytes) => Ok(Request::from_parts(parts, Body::from(bytes))),
        None => Err(Error::BodyTooLarge.into_response()),
    }
}

/// The whole body if it is at most `limit` bytes and reads without an error. A
/// body of one chunk (the usual request, and every body [`read_body`] hands on)
/// is returned as it came, where axum's `to_bytes` queues its chunks in a list it
/// allocates first. Chunks are joined once, at the end, at their exact length.
pub(super) async fn collect(mut body: Body, limit: usize) -> Option<Bytes> {
    let mut first: Option<Bytes> = None;
    let mut more: Vec<Bytes> = Vec::new();
    let mut len = 0usize;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        // Trailers carry no body bytes.
        let Ok(data) = frame.ok()?.into_data() else {
            continue;
        };
        len = len.saturating_add(data.len());
        if len > limit {
            return None;
        }
        if first.is_none() {
            first = Some(data);
        } else {
            more.push(data);
        }
    }
    let first = first.unwrap_or_default();
    if more.is_empty() {
        return Some(first);
    }
    let mut joined = BytesMut::with_capacity(len);
    joined.extend_from_slice(&first);
    for chunk in more {
        joined.extend_from_slice(&chunk);
    }
    Some(joined.freeze())
}

/// `Access-Control-Allow-Origin` only for a configured origin, with credentials.
/// (`Vary: Origin` is among the [`fixed_headers`].)
fn cors_headers(h: &mut HeaderMap, allowed_origin: Option<HeaderValue>) {
    if let Some(origin) = allowed_origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        // Lets a frontend on another origin read how long to wait after a 429 / 503,
        // the id to quote in a support request, and whether an answer was replayed.
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Retry-After, X-Request-Id, Idempotent-Replayed"),
        );
    }
}

/// The headers every answer carries, built once: the security headers (HSTS in
/// production), `Cache-Control: no-store` and `Vary: Origin`. Each answer starts from
/// a copy of this map and takes the handler's headers into it ([`merge_answer`]):
/// inserting the same dozen names into each answer hashed every one of them and
/// grew the map, a tenth of what an empty handler's request cost.
pub(super) fn fixed_headers(production: bool) -> HeaderMap {
    // The room only sizes the index table, which a copy keeps; the entries of a copy
    // are allocated at their count, and grow once for the handler's headers.
    let mut h = HeaderMap::with_capacity(SECURE_HEADERS.len() + 8);
    for (name, value) in SECURE_HEADERS {
        h.insert(name, value);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    if production {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=15552000; includeSubDomains"),
        );
    }
    h
}

/// Takes a handler's headers into `h` (a copy of [`fixed_headers`]). The security
/// headers keep their fixed values, whatever the handler set (HSTS is the edge's
/// alone, in development too); a handler's `Cache-Control` replaces `no-store`; its
/// `Vary` values join `Origin`; and `X-Powered-By` is dropped, as Hono's
/// `secureHeaders` drops it: no fingerprint of the server. The error code an error
/// answer carries for the access line ([`ErrorCode::HEADER`]) is taken out and
/// returned.
fn merge_answer(h: &mut HeaderMap, answer: HeaderMap) -> Option<HeaderValue> {
    let mut error = None;
    let mut current: Option<HeaderName> = None;
    for (name, value) in answer {
        // The first value of a name comes with it; the next ones of the same
        // name come with `None`.
        let first = name.is_some();
        if name.is_some() {
            current = name;
        }
        let Some(name) = &current else { continue };
        if *name == ErrorCode::HEADER {
            error = Some(value);
        } else if *name == header::CACHE_CONTROL && first {
            h.insert(header::CACHE_CONTROL, value);
        } else if *name == header::CACHE_CONTROL
            || *name == header::VARY
            || (*name != "x-powered-by" && !is_fixed(name))
        {
            h.append(name.clone(), value);
        }
    }
    error
}

fn is_fixed(name: &HeaderName) -> bool {
    *name == header::STRICT_TRANSPORT_SECURITY || SECURE_HEADERS.iter().any(|(n, _)| n == name)
}

/// Unknown routes and wrong methods: `404` with an empty body.
pub(super) async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_keeps_its_own_headers_but_not_over_the_fixed_ones() {
        let mut answer = HeaderMap::new();
        let v = HeaderValue::from_static;
        answer.append(header::SET_COOKIE, v("a=1"));
        answer.append(header::SET_COOKIE, v("b=2"));
        answer.append(header::CACHE_CONTROL, v("public"));
        answer.append(header::CACHE_CONTROL, v("max-age=300"));
        answer.append(header::VARY, v("Accept-Language"));
        answer.append(header::VARY, v("Cookie"));
        answer.insert(header::X_FRAME_OPTIONS, v("ALLOWALL"));
        answer.insert("x-powered-by", v("PHP"));
        answer.insert(header::CONTENT_TYPE, v("application/json"));
        let mut h = fixed_headers(true);
        merge_answer(&mut h, answer);

        assert_eq!(all_of(&h, header::SET_COOKIE), ["a=1", "b=2"]);
        assert_eq!(all_of(&h, header::CACHE_CONTROL), ["public", "max-age=300"]);
        assert_eq!(
            all_of(&h, header::VARY),
            ["Origin", "Accept-Language", "Cookie"]
        );
        assert_eq!(all_of(&h, header::X_FRAME_OPTIONS), ["SAMEORIGIN"]);
        assert_eq!(all_of(&h, header::CONTENT_TYPE), ["application/json"]);
        assert!(h.get("x-powered-by").is_none());
        assert!(h.contains_key(header::STRICT_TRANSPORT_SECURITY));
        for (name, value) in SECURE_HEADERS {
            assert_eq!(h.get(name), Some(&value));
        }

        // Without a Cache-Control of its own, an answer is not stored; HSTS is the
        // edge's alone, so development answers never carry one.
        let mut h = fixed_headers(false);
        let mut answer = HeaderMap::new();
        answer.insert(header::STRICT_TRANSPORT_SECURITY, v("max-age=1"));
        merge_answer(&mut h, answer);
        assert_eq!(all_of(&h, header::CACHE_CONTROL), ["no-store"]);
        assert!(!h.contains_key(header::STRICT_TRANSPORT_SECURITY));
    }

    /// The access line carries the status and error code inside the request's span;
    /// a 5xx adds the ERROR line tower-http's trace layer wrote, and a 4xx does not.
    #[test]
    fn a_server_error_gets_an_error_line_beside_its_access_line() {
        #[derive(Clone, Default)]
        struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                if let Ok(mut lines) = self.0.lock() {
                    lines.extend_from_slice(b);
                }
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        // Made outside the subscriber: an internal error logs a line of its own. The
        // first outside the edge's task (its code in the extensions), the second
        // inside (its code in the internal header).
        let answers = [
            Error::Internal("boom".into()).into_response(),
            INSIDE_THE_EDGE.sync_scope((), || Error::BodyTooLarge.into_response()),
        ];
        assert!(answers[0].headers().get(ErrorCode::HEADER).is_none());
        assert!(answers[1].extensions().get::<ErrorCode>().is_none());
        let lines = Lines::default();
        let out = lines.clone();
        let filter = tracing_subscriber::EnvFilter::new("info");
        let subscriber = crate::telemetry::logging::json_subscriber(filter, move || out.clone());
        tracing::subscriber::with_default(subscriber, || {
            let req = Request::builder()
                .uri("/api/otp/verify")
                .body(Body::empty())
                .unwrap_or_default();
            let id = HeaderValue::from_static("req-1");
            let span = request_span(&req, Some(IpAddr::from([10, 0, 0, 1])), &id);
            for mut res in answers {
                // As the edge does: the error code comes out of the answer's headers.
                let mut h = fixed_headers(false);
                let error = merge_answer(&mut h, std::mem::take(res.headers_mut()));
                assert!(
                    !h.contains_key(ErrorCode::HEADER),
                    "the internal header leaves"
                );
                *res.headers_mut() = h;
                let error = error_code(error.as_ref(), &res);
                span.in_scope(|| access_line(&span, &res, error, Duration::from_millis(3)));
            }
        });
        let text = lines.0.lock().map(|l| l.clone()).unwrap_or_default();
        let got: Vec<serde_json::Value> = String::from_utf8_lossy(&text)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_default())
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0]["level"], "INFO");
        assert_eq!(got[0]["fields"]["status"], 500);
        assert_eq!(got[0]["fields"]["error"], "SERVER");
        assert_eq!(got[0]["span"]["request_id"], "req-1");
        assert_eq!(got[0]["span"]["client_ip"], "10.0.0.1");
        assert_eq!(got[0]["span"]["uri"], "/api/otp/verify");
        assert_eq!(got[0]["target"], "secure_otp_server::http");
        assert_eq!(got[1]["target"], "tower_http::trace::on_failure");
        assert_eq!(got[1]["level"], "ERROR");
        assert_eq!(got[1]["fields"]["message"], "response failed");
        assert_eq!(
            got[1]["fields"]["classification"],
            "Status code: 500 Internal Server Error"
        );
        assert_eq!(got[1]["fields"]["latency"], "3 ms");
        assert_eq!(got[1]["span"]["request_id"], "req-1");
        assert_eq!(got[2]["fields"]["status"], 413);
        assert_eq!(got[2]["fields"]["error"], Error::BodyTooLarge.code());
        assert_eq!(got[2]["level"], "INFO");
    }

    fn all_of(h: &HeaderMap, name: HeaderName) -> Vec<&str> {
        h.get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or_default())
            .collect()
    }
}
