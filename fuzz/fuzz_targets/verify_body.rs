//! Parsing a verify body's `otp` field (JSON, urlencoded form or multipart), then
//! the code against the default format.
#![no_main]

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use secure_otp_server::http::body::otp_field;
use secure_otp_server::plugin::CodeFormat;

const TYPES: [&str; 3] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=XyZ",
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
    let body = Bytes::copy_from_slice(body);
    if let Some(text) = rt.block_on(otp_field(&headers, &body)) {
        let _ = CodeFormat::original().parse(&text);
    }
});
