//! What wraps every request: the body limit, CORS, security headers, and the 404.
//!
//! One middleware ([`edge`]) does all three, in the order three separate layers
//! would (body limit innermost, security headers outermost): each `from_fn` layer
//! costs a boxed service clone and a boxed future per request, and three of them
//! were most of what an OTP request spent outside its handler.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::Error;
use crate::http::AppState;

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

/// Every request: an `OPTIONS` preflight is answered here; anything else has its
/// body read up to the limit (or gets `413`) and goes to the router. Every
/// response then gets its CORS and security headers.
pub(super) async fn edge(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let inner = &state.0;
    let allowed_origin = req
        .headers()
        .get(header::ORIGIN)
        .filter(|o| inner.cors_origins.iter().any(|a| a == *o))
        .cloned();
    let mut res = if req.method() == Method::OPTIONS {
        preflight(req.headers())
    } else {
        match read_body(req, inner.body_limit).await {
            Ok(req) => next.run(req).await,
            Err(too_large) => too_large,
        }
    };
    let h = res.headers_mut();
    h.reserve(SECURE_HEADERS.len() + 5);
    cors_headers(h, allowed_origin);
    security_headers(h, inner.production);
    res
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
async fn read_body(req: Request, limit: usize) -> Result<Request, Response> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Error::BodyTooLarge.into_response());
    }
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Err(_) => Err(Error::BodyTooLarge.into_response()),
    }
}

/// `Access-Control-Allow-Origin` only for a configured origin, with credentials.
fn cors_headers(h: &mut HeaderMap, allowed_origin: Option<HeaderValue>) {
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = allowed_origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

fn security_headers(h: &mut HeaderMap, production: bool) {
    for (name, value) in SECURE_HEADERS {
        h.insert(name, value);
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if production {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=15552000; includeSubDomains"),
        );
    }
    h.remove("x-powered-by");
}

/// Unknown routes and wrong methods: `404` with an empty body.
pub(super) async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}
