//! JSON answers, serialized on the stack and copied once into the body: axum's
//! `Json` starts from a 128-byte buffer that an answer with dates outgrows, then
//! freezes it into shared bytes, three allocations where this takes one.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use smallvec::SmallVec;

/// A JSON answer (`Content-Type: application/json`), like axum's `Json`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsonAnswer<T>(pub T);

impl<T: Serialize> IntoResponse for JsonAnswer<T> {
    fn into_response(self) -> Response {
        let mut buf = StackBytes::default();
        match serde_json::to_writer(&mut buf, &self.0) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                Bytes::copy_from_slice(&buf.0),
            )
                .into_response(),
            // As axum's `Json` answers (no answer type here can fail).
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                )],
                e.to_string(),
            )
                .into_response(),
        }
    }
}

/// Bytes gathered on the stack (on the heap past 512).
#[derive(Default)]
struct StackBytes(SmallVec<[u8; 512]>);

impl std::io::Write for StackBytes {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_is_the_json_text_with_its_media_type() {
        let long = "x".repeat(600);
        for value in [
            serde_json::json!({"a": 1, "b": "é\""}),
            serde_json::json!({"long": long}),
        ] {
            let res = JsonAnswer(&value).into_response();
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(
                res.headers().get(header::CONTENT_TYPE),
                Some(&HeaderValue::from_static("application/json"))
            );
            let body = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap_or_default();
            assert_eq!(body, serde_json::to_vec(&value).unwrap_or_default());
        }
    }
}
