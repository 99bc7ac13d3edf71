//! What happens once a code is verified: the final-action plug-in.

use std::fmt;

use async_trait::async_trait;
use axum::Json;
use axum::response::{IntoResponse, Response};

use crate::error::BackendError;
use crate::plugin::credential::Credential;

/// Runs after a successful verification, at most once per session; its response is
/// returned to the client (the server adds the cookie deletion). Typical uses: issue a
/// session or a JWT, mark an address verified, approve a pending action.
#[async_trait]
pub trait FinalAction: Send + Sync + fmt::Debug {
    /// Builds the response for a verified credential.
    async fn run(&self, credential: Credential) -> Result<Response, BackendError>;
}

/// The original's final action: `200 {"credential": ..., "message": "successfully verified"}`.
#[derive(Debug, Default, Clone, Copy)]
pub struct EchoCredential;

#[async_trait]
impl FinalAction for EchoCredential {
    async fn run(&self, credential: Credential) -> Result<Response, BackendError> {
        let body = serde_json::json!({
            "credential": credential.as_str(),
            "message": "successfully verified",
        });
        Ok(Json(body).into_response())
    }
}
