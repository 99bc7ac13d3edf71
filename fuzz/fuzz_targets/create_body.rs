//! Parsing a create body: the first byte picks the media type (JSON, urlencoded
//! form, multipart with a fixed boundary, other), the rest is the body.
#![no_main]

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use secure_otp_server::http::body::create_value;

const TYPES: [&str; 4] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=XyZ",
    "text/plain",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    let media = TYPES[usize::from(pick) % TYPES.len()];
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let _ = rt.block_on(create_value(&headers, Bytes::copy_from_slice(body)));
});
