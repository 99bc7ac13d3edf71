//! The demo page (`OTP_DEMO_PAGE=true`, development only): plain HTML and a
//! script that use the JSON API to sign in, show the session and log out.

use axum::response::{IntoResponse, Response};

use crate::http::page::{DEMO_CSP, with_page_headers};

const HTML: &str = include_str!("../login/demo.html");
const SCRIPT: &str = include_str!("../login/demo.js");
const STYLE: &str = include_str!("../login/demo.css");

pub(super) async fn html() -> Response {
    with_page_headers(HTML.into_response(), "text/html; charset=utf-8", DEMO_CSP)
}

pub(super) async fn script() -> Response {
    with_page_headers(
        SCRIPT.into_response(),
        "text/javascript; charset=utf-8",
        DEMO_CSP,
    )
}

pub(super) async fn style() -> Response {
    with_page_headers(STYLE.into_response(), "text/css; charset=utf-8", DEMO_CSP)
}
