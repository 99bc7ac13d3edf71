//! The HTTP surface: routes and 404s, `/health`, the body limit (also streamed),
//! multipart, CORS (SPEC A6 fix 8), security headers and the JSON error shape.

use serde_json::json;

use crate::helpers::{PRODUCTION, TestApp};

const LIMIT: usize = 102_400;

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_404_with_an_empty_body() {
    let app = TestApp::spawn().await;
    let cases = [
        ("GET", "/api/otp/create"),
        ("GET", "/api/otp/verify"),
        ("PUT", "/api/otp/resend"),
        ("DELETE", "/api/otp/create"),
        ("POST", "/api/otp/unknown"),
        ("POST", "/api/otp/create/"),
        ("GET", "/"),
        ("POST", "/health/x"),
        ("GET", "/api/otp"),
    ];
    for (method, path) in cases {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let r = app
            .send(app.client.request(m, format!("{}{path}", app.base)))
            .await;
        assert_eq!(r.status, 404, "{method} {path}");
        assert_eq!(r.text, "", "{method} {path}");
        assert!(r.header("content-type").is_none(), "{method} {path}");
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
    }
}

#[tokio::test]
async fn health_answers_ok_to_any_method() {
    let app = TestApp::spawn().await;
    for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let r = app
            .send(app.client.request(m, format!("{}/health", app.base)))
            .await;
        assert_eq!((r.status, r.text.as_str()), (200, "OK"), "{method}");
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.to_ascii_lowercase().starts_with("text/plain")),
            "{method}: {:?}",
            r.headers
        );
    }
    let r = app
        .send(app.client.head(format!("{}/health", app.base)))
        .await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
}

fn padded_verify_form(code: &str, total: usize) -> String {
    let head = format!("otp={code}&pad=");
    format!("{head}{}", "x".repeat(total - head.len()))
}

#[tokio::test]
async fn a_body_of_exactly_the_limit_passes() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    let body = padded_verify_form(&code, LIMIT);
    assert_eq!(body.len(), LIMIT);
    let r = app
        .send(
            app.post("/api/otp/verify", Some(&cookie))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_on_every_route() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    for path in ["/api/otp/create", "/api/otp/resend", "/api/otp/verify"] {
        let r = app
            .send(
                app.post(path, Some(&cookie))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(padded_verify_form(&code, LIMIT + 1)),
            )
            .await;
        r.assert_error_keeping(413, "BODY:TOO_LARGE");
        assert_eq!(
            r.json()["message"],
            "The body of your request is too large."
        );
    }
    // Nothing was consumed: the session still verifies.
    assert_eq!(app.verify(Some(&cookie), &code).await.status, 200);
}

fn chunked_request(app: &TestApp, path: &str, cookie: &str, body: &[u8], chunk: usize) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nCookie: {}={cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.addr, app.cookie_name
    )
    .into_bytes();
    for part in body.chunks(chunk) {
        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend_from_slice(part);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    req
}

#[tokio::test]
async fn a_streamed_body_without_length_is_counted_too() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    let over = padded_verify_form(&code, LIMIT + 1);
    let r = app
        .raw(chunked_request(
            &app,
            "/api/otp/verify",
            &cookie,
            over.as_bytes(),
            4096,
        ))
        .await;
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&chunk_payload(&r.body)).expect("json")["error"],
        "BODY:TOO_LARGE"
    );
    let exact = padded_verify_form(&code, LIMIT);
    let r = app
        .raw(chunked_request(
            &app,
            "/api/otp/verify",
            &cookie,
            exact.as_bytes(),
            4096,
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// The payload of a reply that may itself be chunked.
fn chunk_payload(body: &str) -> String {
    let t = body.trim();
    if t.starts_with('{') {
        return t.to_owned();
    }
    let mut out = String::new();
    let mut rest = t;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_reading() {
    let app = TestApp::spawn().await;
    let req = format!(
        "POST /api/otp/create HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: 10000000\r\nConnection: close\r\n\r\n{{\"a\":1}}",
        app.addr
    );
    let r = app.raw(req.into_bytes()).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(app.sent_count(), 0);
}

fn multipart(fields: &[(&str, &str)], boundary: &str) -> String {
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body
}

#[tokio::test]
async fn multipart_create_and_verify_work() {
    let app = TestApp::spawn().await;
    let ct = "multipart/form-data; boundary=XyZ123";
    let r = app
        .send(
            app.post("/api/otp/create", None)
                .header("content-type", ct)
                .body(multipart(&[("email", "ann@example.com")], "XyZ123")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.sender.sent()[0].0, r#"{"email":"ann@example.com"}"#);
    let cookie = r.cookie().expect("cookie");
    let r = app
        .send(
            app.post("/api/otp/verify", Some(&cookie))
                .header("content-type", ct)
                .body(multipart(&[("otp", &app.sender.last_code())], "XyZ123")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["credential"], r#"{"email":"ann@example.com"}"#);
}

#[tokio::test]
async fn malformed_multipart_is_a_json_error_not_text() {
    let app = TestApp::spawn().await;
    let (cookie, _) = app.session("ann@example.com").await;
    let bodies = [
        ("multipart/form-data; boundary=XyZ", "garbage".to_owned()),
        ("multipart/form-data", multipart(&[("otp", "0123456789")], "XyZ")),
        (
            "multipart/form-data; boundary=XyZ",
            "--XyZ\r\nContent-Disposition: form-data; name=\"otp\"\r\n\r\n0123".to_owned(),
        ),
        (
            "multipart/form-data; boundary=XyZ",
            "--XyZ\r\nContent-Disposition: form-data; name=\"otp\"; filename=\"a.txt\"\r\n\r\n0123456789\r\n--XyZ--\r\n"
                .to_owned(),
        ),
    ];
    for (ct, body) in bodies {
        let r = app
            .send(
                app.post("/api/otp/verify", Some(&cookie))
                    .header("content-type", ct)
                    .body(body.clone()),
            )
            .await;
        r.assert_error_keeping(400, "OTP:INVALID_FORMAT");
        let r = app
            .send(
                app.post("/api/otp/create", None)
                    .header("content-type", ct)
                    .body(body.replace("otp", "email")),
            )
            .await;
        r.assert_error_keeping(400, "CREDENTIAL:INVALID");
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{:?}",
            r.headers
        );
    }
}

#[tokio::test]
async fn every_error_body_is_error_and_message_json() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    let replies = vec![
        app.create_json(None, &json!(null)).await,
        app.resend(None).await,
        app.resend(Some(&cookie)).await,
        app.verify(Some(&cookie), "bad").await,
        app.verify(Some("junk"), &code).await,
        app.verify(Some(&cookie), &app.wrong_code(&code)).await,
    ];
    for r in replies {
        assert!(r.status >= 400, "{}", r.text);
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{:?}",
            r.headers
        );
        let body = r.json();
        let keys: Vec<&str> = body
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        // `error` and `message`, and beyond them only the documented optional fields.
        assert!(
            keys.contains(&"error") && keys.contains(&"message"),
            "{}",
            r.text
        );
        assert!(
            keys.iter().all(|k| {
                [
                    "error",
                    "message",
                    "otpBlock",
                    "attemptsLeft",
                    "resendsLeft",
                    "resendAfter",
                    "expires",
                    "retryAfter",
                ]
                .contains(k)
            }),
            "{}",
            r.text
        );
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

const SECURITY_HEADERS: [(&str, &str); 10] = [
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("origin-agent-cluster", "?1"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("x-dns-prefetch-control", "off"),
    ("x-download-options", "noopen"),
    ("x-frame-options", "SAMEORIGIN"),
    ("x-permitted-cross-domain-policies", "none"),
    ("x-xss-protection", "0"),
];

/// The edge sets `Content-Length` itself (axum would, in an allocation of its own):
/// it must be every body's length, and a `HEAD` keeps the `GET` answer's.
#[tokio::test]
async fn every_answer_declares_the_length_of_its_body() {
    let app = TestApp::spawn().await;
    for r in sample_replies(&app).await {
        match r.header("content-length") {
            Some(declared) => assert_eq!(declared, r.text.len().to_string(), "{r:?}"),
            None => assert!(r.status == 204 && r.text.is_empty(), "{r:?}"),
        }
    }
    let get = app
        .send(app.client.get(format!("{}/health", app.base)))
        .await;
    let head = app
        .send(app.client.head(format!("{}/health", app.base)))
        .await;
    assert_eq!((head.status, head.text.as_str()), (200, ""));
    assert_eq!(head.header("content-length"), get.header("content-length"));
    assert_eq!(
        get.header("content-length"),
        Some(get.text.len().to_string())
    );
}

async fn sample_replies(app: &TestApp) -> Vec<crate::helpers::Reply> {
    vec![
        app.send(app.client.get(format!("{}/health", app.base)))
            .await,
        app.create_json(None, &json!({"email": "ann@example.com"}))
            .await,
        app.resend(None).await,
        app.send(app.client.get(format!("{}/nope", app.base))).await,
        app.send(app.client.request(
            reqwest::Method::OPTIONS,
            format!("{}/api/otp/create", app.base),
        ))
        .await,
        app.send(
            app.post("/api/otp/verify", None)
                .body("x".repeat(LIMIT + 1)),
        )
        .await,
    ]
}

#[tokio::test]
async fn security_headers_are_on_every_response_and_hsts_only_in_production() {
    let dev = TestApp::spawn().await;
    for r in sample_replies(&dev).await {
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(
                r.header(name).as_deref(),
                Some(value),
                "{name} on {}",
                r.status
            );
        }
        assert!(
            r.header("strict-transport-security").is_none(),
            "no HSTS in development"
        );
        assert!(r.header("x-powered-by").is_none());
        // The error code travels to the access line in an internal header that the
        // edge takes out.
        assert!(r.header("x-otp-internal-error-code").is_none());
    }
    let prod = TestApp::spawn_with(&PRODUCTION).await;
    for r in sample_replies(&prod).await {
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(
                r.header(name).as_deref(),
                Some(value),
                "{name} on {}",
                r.status
            );
        }
        assert_eq!(
            r.header("strict-transport-security").as_deref(),
            Some("max-age=15552000; includeSubDomains"),
            "on {}",
            r.status
        );
    }
}

const CORS: [(&str, &str); 1] = [("CORS_ORIGIN", "https://a.example,https://b.example")];

#[tokio::test]
async fn cors_allows_each_configured_origin_with_credentials() {
    let app = TestApp::spawn_with(&CORS).await;
    for origin in ["https://a.example", "https://b.example"] {
        let r = app
            .send(
                app.post("/api/otp/create", None)
                    .header("origin", origin)
                    .header("content-type", "application/json")
                    .body(r#"{"email":"ann@example.com"}"#),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.header("access-control-allow-origin").as_deref(),
            Some(origin)
        );
        assert_eq!(
            r.header("access-control-allow-credentials").as_deref(),
            Some("true")
        );
        assert!(r.header_all("vary").contains("Origin"), "{:?}", r.headers);
        // Errors carry the CORS headers too, so the page can read them.
        let e = app
            .send(app.post("/api/otp/resend", None).header("origin", origin))
            .await;
        e.assert_error(400, "OTP:INVALID_COOKIE");
        assert_eq!(
            e.header("access-control-allow-origin").as_deref(),
            Some(origin)
        );
    }
}

#[tokio::test]
async fn cors_ignores_a_foreign_origin() {
    let app = TestApp::spawn_with(&CORS).await;
    for origin in [
        "https://evil.example",
        "https://a.example.evil.example",
        "http://a.example",
        "https://A.example.",
        "null",
    ] {
        let r = app
            .send(
                app.client
                    .get(format!("{}/health", app.base))
                    .header("origin", origin),
            )
            .await;
        assert_eq!(r.status, 200);
        assert!(
            r.header("access-control-allow-origin").is_none(),
            "{origin}"
        );
        assert!(
            r.header("access-control-allow-credentials").is_none(),
            "{origin}"
        );
        assert!(r.header_all("vary").contains("Origin"));
    }
    // Without CORS_ORIGIN nobody is allowed.
    let closed = TestApp::spawn().await;
    let r = closed
        .send(
            closed
                .client
                .get(format!("{}/health", closed.base))
                .header("origin", "https://a.example"),
        )
        .await;
    assert!(r.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_preflight_on_any_path_is_204_with_the_allowed_methods() {
    let app = TestApp::spawn_with(&CORS).await;
    for path in [
        "/api/otp/create",
        "/api/otp/verify",
        "/health",
        "/unknown/path",
    ] {
        let r = app
            .send(
                app.client
                    .request(reqwest::Method::OPTIONS, format!("{}{path}", app.base))
                    .header("origin", "https://b.example")
                    .header("access-control-request-method", "POST")
                    .header("access-control-request-headers", "content-type"),
            )
            .await;
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(r.text, "");
        let methods = r.header("access-control-allow-methods").expect("methods");
        for m in ["GET", "HEAD", "POST"] {
            assert!(methods.contains(m), "{methods}");
        }
        assert_eq!(
            r.header("access-control-allow-headers").as_deref(),
            Some("content-type")
        );
        let vary = r.header_all("vary");
        assert!(vary.contains("Origin"), "{vary}");
        assert!(vary.contains("Access-Control-Request-Headers"), "{vary}");
        assert_eq!(
            r.header("access-control-allow-origin").as_deref(),
            Some("https://b.example")
        );
        assert_eq!(
            r.header("access-control-allow-credentials").as_deref(),
            Some("true")
        );
        assert!(r.header_all("vary").contains("Origin"));
    }
    // A preflight from a foreign origin is answered but not allowed.
    let r = app
        .send(
            app.client
                .request(
                    reqwest::Method::OPTIONS,
                    format!("{}/api/otp/create", app.base),
                )
                .header("origin", "https://evil.example"),
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(r.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn responses_are_not_cached() {
    let app = TestApp::spawn().await;
    let r = app
        .create_json(None, &json!({"email": "ann@example.com"}))
        .await;
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
}
