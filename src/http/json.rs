//! JSON answers, serialized in a per-thread buffer and copied once into the body:
//! axum's `Json` starts from a 128-byte buffer that an answer with dates outgrows,
//! then freezes it into shared bytes, three allocations where this takes one.

use std::cell::RefCell;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

use crate::thread_buffer;

/// A JSON answer (`Content-Type: application/json`), like axum's `Json`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsonAnswer<T>(pub T);

impl<T: Serialize> IntoResponse for JsonAnswer<T> {
    fn into_response(self) -> Response {
        match to_json(&self.0) {
            Ok(body) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
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

thread_local! {
    /// Each thread's serialization buffer.
    static BUFFER: RefCell<Vec<u8>> = RefCell::new(thread_buffer::Buffer::fresh());
}

/// `value` as JSON, serialized in this thread's buffer and copied out at its length.
fn to_json<T: Serialize>(value: &T) -> serde_json::Result<Bytes> {
    let shared = thread_buffer::with(&BUFFER, |buf| {
        serde_json::to_writer(&mut *buf, value).map(|()| Bytes::copy_from_slice(buf))
    });
    match shared {
        Some(json) => json,
        // No shared buffer (in use, or the thread is ending): a fresh one.
        None => serde_json::to_vec(value).map(Bytes::from),
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
