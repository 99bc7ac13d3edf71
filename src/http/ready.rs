//! `GET /ready`: whether this instance can serve requests now (its ID store and KMS
//! answer), for load balancers and orchestrators. `/health` only says the process is up.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

use crate::error::{BackendError, RETRY_AFTER_SECONDS};
use crate::http::AppState;

/// Bound on the whole check, whatever the backends' own timeouts.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `200 {"status":"ready"}`, or `503 {"status":"unavailable"}` with `Retry-After`.
pub(super) async fn handler(State(app): State<AppState>) -> Response {
    let app = &app.0;
    let check = async {
        let (ids, kms) = tokio::join!(app.ids.ping(), app.kms.ping());
        ids.and(kms)
    };
    let result = tokio::time::timeout(READY_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| {
            Err(BackendError::Unavailable(
                "readiness check timed out".into(),
            ))
        });
    match result {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            let mut r = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable" })),
            )
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            r
        }
    }
}
