//! JSON answers, serialized in a per-thread buffer and copied once into the body:
//! axum's `Json` starts from a 128-byte buffer that an answer with dates outgrows,
//! then freezes it into shared bytes, three allocations where this takes one.
//! The answer carries its `Content-Length` from a static table, where axum would
//! format the length into a header value of its own.

use std::cell::RefCell;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

/// A JSON answer (`Content-Type: application/json`), like axum's `Json`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsonAnswer<T>(pub T);

impl<T: Serialize> IntoResponse for JsonAnswer<T> {
    fn into_response(self) -> Response {
        match to_json(&self.0) {
            Ok(body) => (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    ),
                    (header::CONTENT_LENGTH, content_length(body.len())),
                ],
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

/// Lengths with a ready `Content-Length` value: every JSON answer but a rare large one.
const TABLED: usize = 2048;

/// The decimal digits of `0..TABLED`, right-aligned in four bytes.
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an index out of range fails the build"
)]
static DIGITS: [[u8; 4]; TABLED] = {
    let mut table = [[b'0'; 4]; TABLED];
    let mut n = 0;
    while n < TABLED {
        let (mut rest, mut at) = (n, 4);
        while at > 0 {
            at -= 1;
            table[n][at] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        n += 1;
    }
    table
};

/// `len` as a `Content-Length` value, borrowed from [`DIGITS`] when it is tabled.
fn content_length(len: usize) -> HeaderValue {
    let digits = len.checked_ilog10().map_or(1, |log| log as usize + 1);
    DIGITS
        .get(len)
        .and_then(|padded| padded.get(4usize.saturating_sub(digits)..))
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .map_or_else(|| HeaderValue::from(len), HeaderValue::from_static)
}

thread_local! {
    /// Each thread's serialization buffer, emptied before each answer.
    static BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));
}

/// `value` as JSON, serialized in this thread's buffer and copied out at its length.
fn to_json<T: Serialize>(value: &T) -> serde_json::Result<Bytes> {
    let shared = BUFFER.try_with(|cell| {
        let mut buf = cell.try_borrow_mut().ok()?;
        buf.clear();
        let json = serde_json::to_writer(&mut *buf, value).map(|()| Bytes::copy_from_slice(&buf));
        // A rare large answer does not keep its memory for the thread's lifetime.
        if buf.capacity() > 64 * 1024 {
            *buf = Vec::with_capacity(1024);
        }
        Some(json)
    });
    match shared {
        Ok(Some(json)) => json,
        // No shared buffer (in use, or the thread is ending): a fresh one.
        _ => serde_json::to_vec(value).map(Bytes::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_length_is_the_length_in_decimal_tabled_or_not() {
        for len in [0, 1, 9, 10, 99, 100, 999, 1000, TABLED - 1, TABLED, 123_456] {
            assert_eq!(content_length(len), HeaderValue::from(len), "{len}");
        }
    }

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
