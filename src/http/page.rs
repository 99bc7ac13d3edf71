//! The few HTML pages the server answers (the magic-link confirmation, the demo
//! page): escaping, and the headers that keep them out of caches, referrers,
//! search engines and frames.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// No script, no form target elsewhere, no framing: what the link pages need.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                        frame-ancestors 'none'; base-uri 'none'";

/// The demo page: its own script and style files, and requests to this origin.
pub(crate) const DEMO_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
                                   style-src 'self'; img-src 'self'; form-action 'self'; \
                                   frame-ancestors 'none'; base-uri 'none'";

/// Escapes `& < > " '` for HTML text and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A small page: `title` (text) and `body` (HTML, already escaped).
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}\
         button{{font-size:1.1rem;padding:.6rem 1.2rem}}</style></head>\
         <body><h1>{title}</h1>\n{body}\n</body></html>\n",
        title = escape_html(title),
    );
    with_page_headers(
        (status, html).into_response(),
        "text/html; charset=utf-8",
        PAGE_CSP,
    )
}

/// Headers of every page and page asset: `no-store`, `noindex`, its CSP.
pub(crate) fn with_page_headers(
    mut response: Response,
    content_type: &'static str,
    csp: &'static str,
) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        HeaderName::from_static("x-robots-tag"),
        HeaderValue::from_static("noindex"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_markup_character_is_escaped() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
