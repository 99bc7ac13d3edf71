//! `POST /api/otp/resend`: a new code for the session's current credential.

use axum::extract::{Request, State};
use axum::response::Response;

use crate::http::client::ClientIp;
use crate::http::{AppState, headers_and_body, idempotency, locale, state_response};

/// Runs the resend flow; any body is ignored.
pub(super) async fn handler(
    State(app): State<AppState>,
    ClientIp(client_ip): ClientIp,
    request: Request,
) -> Response {
    let app = &app.0;
    let (headers, body) = headers_and_body(request).await;
    let cookie = app.cookies.read(&headers);
    let work = std::pin::pin!(async {
        let now = app.clock.now();
        let outcome = app
            .service
            .resend(cookie.as_deref(), &locale(&headers), client_ip, now)
            .await;
        app.respond(outcome, cookie.is_some(), state_response)
    });
    idempotency::once(
        app,
        "resend",
        client_ip,
        &headers,
        cookie.as_deref(),
        (None, &body),
        work,
    )
    .await
}
