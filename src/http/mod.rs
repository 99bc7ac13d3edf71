//! The axum adapter: the router, one file per endpoint, the cookie and the middleware.
//!
//! Handlers are thin: read the clock once, extract the cookie and the body, call one
//! [`OtpService`] flow, and turn its [`Outcome`] into a response.

/// Request-body parsing (public for the fuzz targets in `fuzz/`).
#[doc(hidden)]
pub mod body;
pub mod client;
mod content_length;
pub mod cookie;
mod create;
mod demo;
mod health;
mod idempotency;
pub(crate) mod json;
mod layers;
mod link;
pub mod page;
mod ready;
mod resend;
pub mod serve;
mod session;
mod status;
mod verify;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use crate::clock::{Clock, Iso8601};
use crate::error::Error;
use crate::http::json::JsonAnswer;
use crate::limit::Limits;
use crate::login::Sessions;
use crate::otp::{CookieUpdate, MagicLinks, OtpService, Outcome, SessionState};
use crate::plugin::{CredentialSchema, FinalAction, IdStore, Kms, Locale, Plugins};
use crate::settings::Config;
pub use client::TrustedProxies;
pub use cookie::CookieSettings;
pub(crate) use layers::inside_the_edge;

/// Everything a request needs; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    service: OtpService,
    sessions: Option<Arc<Sessions>>,
    link_redirect: String,
    demo_page: bool,
    credential: Arc<dyn CredentialSchema>,
    final_action: Arc<dyn FinalAction>,
    ids: Arc<dyn IdStore>,
    replays: Arc<dyn crate::plugin::ReplayStore>,
    kms: Arc<dyn Kms>,
    cookies: CookieSettings,
    cors_origins: Vec<HeaderValue>,
    /// The headers every answer starts from ([`layers::fixed_headers`]).
    fixed_headers: axum::http::HeaderMap,
    trusted_proxies: TrustedProxies,
    body_limit: usize,
    request_timeout: std::time::Duration,
    body_budget: tokio::sync::Semaphore,
    clock: Arc<dyn Clock>,
}

impl AppState {
    /// Wires the configuration, the plug-ins and a clock together.
    pub fn new(config: &Config, plugins: Plugins, clock: Arc<dyn Clock>) -> Self {
        let production = config.server.is_production();
        let cookie_name = config.cookie_name();
        let mut service = OtpService::new(config.policy.clone(), cookie_name.clone(), &plugins)
            .with_send_budget(config.server.send_budget())
            .with_limits(Limits::new(
                config.limits.clone(),
                Arc::clone(&plugins.limits),
                config.limit_secret(),
            ));
        let purposes = config
            .purposes
            .build(&config.policy, Arc::clone(&plugins.generator));
        service = service.with_purposes(purposes);
        if !config.test_credentials.is_empty() {
            service = service.with_test_credentials(config.test_credentials.clone());
        }
        if let (true, Some(url)) = (config.login.magic_link, &config.login.public_url) {
            service = service.with_magic_links(MagicLinks::new(url, config.limit_secret()));
        }
        Self(Arc::new(Inner {
            service,
            sessions: plugins.sessions.clone(),
            link_redirect: config.login.link_redirect.clone(),
            demo_page: config.login.demo_page,
            credential: plugins.credential,
            final_action: plugins.final_action,
            ids: plugins.ids,
            replays: plugins.replays,
            kms: plugins.kms,
            cookies: CookieSettings::new(cookie_name, config.server.cookie_secure)
                .with_same_site(config.server.cookie_same_site),
            cors_origins: config
                .server
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect(),
            fixed_headers: layers::fixed_headers(production),
            trusted_proxies: config.server.trusted_proxies.clone(),
            body_limit: config.server.body_limit,
            request_timeout: config.server.request_timeout,
            body_budget: tokio::sync::Semaphore::new(layers::BODY_BUDGET_KIB as usize),
            clock,
        }))
    }

    /// The protocol engine (for embedding apps that want to call flows directly).
    pub fn service(&self) -> &OtpService {
        &self.0.service
    }
}

/// The OTP API as a router that a host app can `nest` or `merge`.
pub fn router<S>(state: AppState) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut routes = Router::new()
        .route("/api/otp/create", post(create::handler))
        .route("/api/otp/resend", post(resend::handler))
        .route("/api/otp/verify", post(verify::handler))
        .route("/api/otp/status", get(status::status))
        .route("/api/otp/cancel", post(status::cancel))
        // The methods the original answered (GET, HEAD, POST, PUT, PATCH, DELETE);
        // TRACE and the rest are 404 like any unrouted request.
        .route(
            "/health",
            get(health::handler)
                .post(health::handler)
                .put(health::handler)
                .patch(health::handler)
                .delete(health::handler),
        )
        .route("/ready", get(ready::handler));
    if state.0.service.magic_links().is_some() {
        routes = routes.route("/api/otp/link", get(link::show).post(link::confirm));
    }
    if state.0.sessions.is_some() {
        routes = routes
            .route("/api/session", get(session::current))
            .route("/api/session/logout", post(session::logout))
            .route("/.well-known/jwks.json", get(session::jwks));
    }
    if state.0.demo_page {
        routes = routes
            .route("/", get(demo::html))
            .route("/demo.js", get(demo::script))
            .route("/demo.css", get(demo::style));
    }
    // The edge (span and access line, client address, request id, body limit and
    // timeout, headers) around every route. The handlers read the bodies the edge
    // has already read and bounded, so axum's own body limit has no part in it.
    routes
        .fallback(layers::not_found)
        .method_not_allowed_fallback(layers::not_found)
        .layer(layers::EdgeLayer(state.clone()))
        .with_state(state)
}

/// The session-state body of create, resend and status (ISO-8601; `expires`
/// truncated, blocks and `resendAfter` rounded up to the second).
#[derive(Serialize)]
struct StateBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
    expires: Iso8601,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked: Option<bool>,
    #[serde(rename = "resendBlock", skip_serializing_if = "Option::is_none")]
    resend_block: Option<Iso8601>,
    #[serde(rename = "otpBlock", skip_serializing_if = "Option::is_none")]
    otp_block: Option<Iso8601>,
    #[serde(rename = "attemptsLeft")]
    attempts_left: u8,
    #[serde(rename = "resendsLeft", skip_serializing_if = "Option::is_none")]
    resends_left: Option<u8>,
    #[serde(rename = "resendAfter", skip_serializing_if = "Option::is_none")]
    resend_after: Option<Iso8601>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credentials: Option<usize>,
}

impl StateBody {
    fn of(s: &SessionState) -> Self {
        Self {
            state: None,
            expires: s.expires.floor_second().iso8601(),
            blocked: s.blocked.then_some(true),
            resend_block: s.resend_block.map(|t| t.ceil_second().iso8601()),
            otp_block: s.otp_block.map(|t| t.ceil_second().iso8601()),
            attempts_left: s.attempts_left,
            resends_left: s.resends_left,
            resend_after: s.resend_after.map(|t| t.ceil_second().iso8601()),
            credentials: None,
        }
    }
}

/// `?purpose=NAME` as a purpose index; `None` when absent; `INVALID_PURPOSE` for
/// a name no configured purpose has (any name, when purposes are not configured).
fn purpose_param(app: &Inner, query: Option<&str>) -> Result<Option<u8>, Error> {
    let Some(name) = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "purpose")
            .map(|(_, v)| v.into_owned())
    }) else {
        return Ok(None);
    };
    let index = app
        .service
        .purposes()
        .index_of(&name)
        .ok_or(Error::InvalidPurpose)?;
    tracing::Span::current().record("purpose", name.as_str());
    Ok(Some(index))
}

/// The headers and the body of a request, taken apart without a copy: axum's
/// `HeaderMap` extractor clones the map (three allocations a request). The body
/// was read whole, within its limit, by the edge middleware, so this cannot fail;
/// if it did, the body would be empty and answered as one.
async fn headers_and_body(
    request: axum::extract::Request,
) -> (axum::http::HeaderMap, bytes::Bytes) {
    let (parts, body) = request.into_parts();
    let body = layers::collect(body, usize::MAX).await.unwrap_or_default();
    (parts.headers, body)
}

/// The client's languages, from `Accept-Language` (for the message sent).
fn locale(headers: &axum::http::HeaderMap) -> Locale {
    Locale::from_accept_language(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

fn state_response(s: SessionState) -> Response {
    JsonAnswer(StateBody::of(&s)).into_response()
}

impl Inner {
    fn respond<T>(&self, outcome: Outcome<T>, had_cookie: bool, ok: fn(T) -> Response) -> Response {
        let response = match outcome.result {
            Ok(v) => ok(v),
            Err(e) => e.into_response_with_state(outcome.state.as_ref()),
        };
        self.with_cookie(response, &outcome.cookie, had_cookie)
    }

    fn respond_error(&self, e: Error) -> Response {
        e.into_response()
    }

    fn with_cookie(
        &self,
        mut response: Response,
        update: &CookieUpdate,
        had_cookie: bool,
    ) -> Response {
        if let Some(value) = self.cookies.header(update, had_cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::extract::{RawQuery, Request, State};

    use super::client::ClientIp;
    use super::{AppState, create, resend, verify};
    use crate::clock::{Clock, SystemClock};
    use crate::plugin::Plugins;
    use crate::settings::Config;

    /// The app as the binary builds it with no settings: in-memory stores, default plug-ins.
    pub(crate) fn default_app() -> AppState {
        let config = Config::from_vars(Vec::<(&str, String)>::new()).expect("defaults");
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let plugins = Plugins::from_config(&config, &clock).expect("default plug-ins");
        AppState::new(&config, plugins, clock)
    }

    /// A handler's future is built on the stack and moved into axum's box whole, on
    /// every request: its size is copied per request. A future passed by value into
    /// another one is stored twice, which once made the create handler's 10 KB.
    #[test]
    fn handler_futures_stay_small() {
        const CEILING: usize = 5 * 1024;
        let app = default_app();
        let req = || Request::new(Body::empty());
        let sizes = [
            (
                "create",
                size_of_val(&create::handler(
                    State(app.clone()),
                    ClientIp(None),
                    RawQuery(None),
                    req(),
                )),
            ),
            (
                "resend",
                size_of_val(&resend::handler(State(app.clone()), ClientIp(None), req())),
            ),
            (
                "verify",
                size_of_val(&verify::handler(
                    State(app.clone()),
                    ClientIp(None),
                    RawQuery(None),
                    req(),
                )),
            ),
        ];
        for (name, size) in sizes {
            println!("{name}: {size} bytes");
            // 3.1-3.8 KB on Rust 1.95 (create was 10.9 KB, resend 9.1 KB); room for growth,
            // none for another copy of a flow's future.
            assert!(size <= CEILING, "{name}'s handler future is {size} bytes");
        }
    }
}
