//! `GET /api/otp/status` and `POST /api/otp/cancel`: read the session without
//! spending it, or end it on purpose.

use crate::http::json::JsonAnswer;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::Error;
use crate::http::{AppState, StateBody};
use crate::otp::CookieUpdate;

/// `200 {"state", "attemptsLeft", "resendsLeft"?, "resendAfter"?, "expires",
/// "otpBlock"?, "credentials"}`; no `Set-Cookie`, nothing consumed.
pub(super) async fn status(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let app = &app.0;
    let cookie = app.cookies.read(&headers);
    match app.service.status(cookie.as_deref(), app.clock.now()).await {
        Ok((standing, state)) => {
            let mut body = StateBody::of(&state);
            body.state = Some(standing.as_str());
            body.credentials = Some(state.credentials);
            JsonAnswer(body).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `204`, the cookie cleared and its ID spent; `400 OTP:INVALID_COOKIE` for a
/// cookie that was not live.
pub(super) async fn cancel(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let app = &app.0;
    let cookie = app.cookies.read(&headers);
    let had_cookie = cookie.is_some();
    match app.service.cancel(cookie.as_deref(), app.clock.now()).await {
        Ok(()) => app.with_cookie(
            StatusCode::NO_CONTENT.into_response(),
            &CookieUpdate::Clear,
            had_cookie,
        ),
        Err(e @ Error::InvalidCookie) => {
            app.with_cookie(e.into_response(), &CookieUpdate::Clear, had_cookie)
        }
        Err(e) => e.into_response(),
    }
}
