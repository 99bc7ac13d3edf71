//! `POST /api/otp/verify`: check the code in the form field `otp`.

use axum::extract::{RawQuery, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::error::Error;
use crate::http::client::ClientIp;
use std::net::IpAddr;

use crate::clock::Timestamp;
use crate::http::{AppState, Inner, body, headers_and_body, purpose_param};
use crate::otp::CookieUpdate;
use crate::otp::Finished;
use crate::plugin::Verified;
use crate::telemetry::audit::Event;
use crate::telemetry::metric;

/// Checks the code's format first (before the cookie, as the original does), then
/// runs the verify flow; on success runs the final action once and clears the cookie.
pub(super) async fn handler(
    State(app): State<AppState>,
    ClientIp(client_ip): ClientIp,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let app = &app.0;
    let (headers, body) = headers_and_body(request).await;
    let now = app.clock.now();
    let purpose = match purpose_param(app, query.as_deref()) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    // The format is checked before the cookie (as the original does): the named
    // purpose's format, or any purpose's (the token's own is checked once open).
    let purposes = app.service.purposes();
    let code = body::otp_field(&headers, &body)
        .await
        .and_then(|text| match purpose {
            Some(p) => purposes.of(p).generator.format().parse(&text),
            None => purposes.parse_any(&text),
        });
    let Some(code) = code else {
        return app.respond_error(Error::InvalidFormat);
    };
    let cookie = app.cookies.read(&headers);
    let had_cookie = cookie.is_some();
    let outcome = app
        .service
        .verify(cookie.as_deref(), &code, purpose, client_ip, now)
        .await;
    let finished = match outcome.result {
        Ok(finished) => finished,
        Err(e) => {
            let answer = e.into_response_with_state(outcome.state.as_ref());
            return app.with_cookie(answer, &outcome.cookie, had_cookie);
        }
    };
    let response = final_action(app, finished, client_ip, headers, now).await;
    app.with_cookie(response, &CookieUpdate::Clear, had_cookie)
}

/// Runs the final action for a verified `credential` (exactly once per session:
/// only the winner of the session's single-use ID gets here); its failure is
/// counted, audited and answered as `503`/`500`.
pub(super) async fn final_action(
    app: &Inner,
    finished: Finished,
    client_ip: Option<IpAddr>,
    headers: HeaderMap,
    now: Timestamp,
) -> Response {
    let audited = finished.credential.clone();
    let mut verified = Verified::new(finished.credential, client_ip, headers, now);
    verified.purpose = finished.purpose;
    match app.final_action.run(verified).await {
        Ok(response) => response,
        Err(e) => {
            metric::final_action_failed();
            app.service
                .audit()
                .record(Event::FinalActionFailed, Some(&audited));
            Error::from(e).into_response()
        }
    }
}
