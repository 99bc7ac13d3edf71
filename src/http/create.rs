//! `POST /api/otp/create`: send a code to the credential in the body.

use axum::extract::{RawQuery, Request, State};
use axum::response::{IntoResponse, Response};

use crate::error::Error;
use crate::http::client::ClientIp;
use crate::http::{
    AppState, body, headers_and_body, idempotency, locale, purpose_param, state_response,
};

/// Parses the credential, then runs the create flow.
pub(super) async fn handler(
    State(app): State<AppState>,
    ClientIp(client_ip): ClientIp,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let app = &app.0;
    let (headers, body) = headers_and_body(request).await;
    let cookie = app.cookies.read(&headers);
    let purpose = match purpose_param(app, query.as_deref()) {
        Ok(p) => p.unwrap_or(0),
        Err(e) => return e.into_response(),
    };
    let work = std::pin::pin!(async {
        let now = app.clock.now();
        let credential = body::create_value(&headers, body.clone())
            .await
            .and_then(|value| app.credential.parse(&value));
        let Some(credential) = credential else {
            return app.respond_error(Error::CredentialInvalid);
        };
        let locale = locale(&headers);
        let outcome = app
            .service
            .create(
                cookie.as_deref(),
                credential,
                purpose,
                &locale,
                client_ip,
                now,
            )
            .await;
        app.respond(outcome, cookie.is_some(), state_response)
    });
    idempotency::once(
        app,
        "create",
        client_ip,
        &headers,
        cookie.as_deref(),
        (query.as_deref(), &body),
        work,
    )
    .await
}
