//! Magic links: `GET /api/otp/link?t=...` shows a confirmation page and changes
//! nothing (mail scanners open links before people do); the page's `POST` verifies
//! the link against the session cookie and runs the final action once.
//!
//! Same browser only: the session lives in the cookie of the browser that asked
//! for the code. Elsewhere the `POST` refuses with a page that says so and
//! consumes nothing (SECURITY.md explains why there is no cross-device mode).

use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::{Error, ErrorCode};
use crate::http::client::ClientIp;
use crate::http::page::{escape_html, page};
use crate::http::{AppState, headers_and_body, verify};
use crate::otp::CookieUpdate;

/// The `t` parameter of a query string or a form body.
fn token_param(encoded: &[u8]) -> Option<String> {
    form_urlencoded::parse(encoded)
        .find(|(k, _)| k == "t")
        .map(|(_, v)| v.into_owned())
}

fn invalid_link() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "This link does not work",
        "<p>The link is incomplete or was not made by this server. \
         Request a new code, or type the code from the same message.</p>",
    )
}

/// The confirmation page: the masked address and one button. Reads nothing but
/// the link, so any number of visits leave it usable.
pub(super) async fn show(State(app): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let Some(links) = app.0.service.magic_links() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let text = token_param(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let Some(link) = links.parse(&text) else {
        return invalid_link();
    };
    let masked = escape_html(link.masked());
    page(
        StatusCode::OK,
        &format!("Sign in as {}?", link.masked()),
        &format!(
            "<p>Continue as <strong>{masked}</strong> in this browser.</p>\n\
             <form method=\"post\" action=\"/api/otp/link\">\
             <input type=\"hidden\" name=\"t\" value=\"{}\">\
             <button id=\"confirm\" type=\"submit\">Sign in</button></form>\n\
             <p>If you did not ask for this, close this page: nothing happens until you press the button.</p>",
            escape_html(&text)
        ),
    )
}

/// Verifies the link with the session cookie; on success runs the final action
/// and redirects (`303`) to `OTP_MAGIC_LINK_REDIRECT` with the final action's
/// cookies. Every refusal is a page with the same status the JSON API would use.
pub(super) async fn confirm(
    State(app): State<AppState>,
    ClientIp(client_ip): ClientIp,
    request: Request,
) -> Response {
    let app = &app.0;
    let (headers, body) = headers_and_body(request).await;
    let Some(links) = app.service.magic_links() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(link) = token_param(&body).and_then(|t| links.parse(&t)) else {
        return invalid_link();
    };
    let Some(cookie) = app.cookies.read(&headers) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "Open this link in the browser where you asked for the code",
            "<p>For your safety, a sign-in link only works in the browser that requested it. \
             Open it there, or type the code from the same message.</p>",
            Error::InvalidCookie.code(),
        );
    };
    let now = app.clock.now();
    let outcome = app
        .service
        .verify_link(Some(&*cookie), &link, client_ip, now)
        .await;
    let finished = match outcome.result {
        Ok(finished) => finished,
        Err(e) => {
            let answer = refused(
                e.status(),
                "This link cannot be used",
                &format!(
                    "<p>{}</p><p>Request a new code if you still need one.</p>",
                    escape_html(e.message())
                ),
                e.code(),
            );
            return app.with_cookie(answer, &outcome.cookie, true);
        }
    };
    let done = verify::final_action(app, finished, client_ip, headers, now).await;
    let answer = if done.status().is_success() {
        let mut redirect = StatusCode::SEE_OTHER.into_response();
        if let Ok(location) = HeaderValue::from_str(&app.link_redirect) {
            redirect.headers_mut().insert(header::LOCATION, location);
        }
        for cookie in done.headers().get_all(header::SET_COOKIE) {
            redirect
                .headers_mut()
                .append(header::SET_COOKIE, cookie.clone());
        }
        redirect
    } else {
        refused(
            done.status(),
            "Sign-in failed",
            "<p>The code was accepted but the sign-in could not be completed. Please try again later.</p>",
            "SERVER",
        )
    };
    app.with_cookie(answer, &CookieUpdate::Clear, true)
}

fn refused(status: StatusCode, title: &str, body: &str, code: &'static str) -> Response {
    let mut response = page(status, title, body);
    ErrorCode(code).attach(&mut response);
    response
}
