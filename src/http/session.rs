//! The session endpoints (`OTP_FINAL_ACTION=session`): `GET /api/session`,
//! `POST /api/session/logout` and `GET /.well-known/jwks.json`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::Error;
use crate::http::AppState;
use crate::login::session::SessionBody;

/// `200 {"sub","iat","exp","amr"}` for a valid session, `401 SESSION:INVALID` otherwise.
pub(super) async fn current(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let app = &app.0;
    let Some(sessions) = &app.sessions else {
        return Error::SessionInvalid.into_response();
    };
    let Some(token) = sessions.token_in(&headers) else {
        return Error::SessionInvalid.into_response();
    };
    match sessions.check(&token, app.clock.now()).await {
        Ok(claims) => Json(SessionBody::from(&claims)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Revokes the session's token (every instance sharing the store then refuses it)
/// and clears the cookie; `204` whether or not a valid session was presented, so
/// logging out twice is harmless. A store outage answers `503`: the token would
/// otherwise stay valid while the client believes it logged out.
pub(super) async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let app = &app.0;
    let Some(sessions) = &app.sessions else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let now = app.clock.now();
    if let Some(token) = sessions.token_in(&headers) {
        match sessions.check(&token, now).await {
            Ok(claims) => {
                if let Err(e) = sessions.revoke(&claims, now).await {
                    return e.into_response();
                }
            }
            Err(Error::SessionInvalid) => {}
            Err(e) => return e.into_response(),
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, sessions.clear_cookie());
    response
}

/// The public keys that verify session tokens, for other backends.
pub(super) async fn jwks(State(app): State<AppState>) -> Response {
    let keys = app
        .0
        .sessions
        .as_ref()
        .map_or_else(|| serde_json::json!({"keys": []}), |s| s.jwks());
    let mut response = Json(keys).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
