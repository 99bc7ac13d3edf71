//! Create: what bodies make a credential, the credential length cap (SPEC A6 fix 7),
//! and what happens when the sender refuses or fails.

use secure_otp_server::Clock as _;
use serde_json::json;

use crate::helpers::{SendMode, TestApp};

#[tokio::test]
async fn empty_json_values_are_invalid_credentials() {
    let app = TestApp::spawn().await;
    for body in [
        "", "false", "true", "null", "\"\"", "\"   \"", "[]", "{}", "0",
    ] {
        let r = app
            .send(
                app.post("/api/otp/create", None)
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        r.assert_error_keeping(400, "CREDENTIAL:INVALID");
    }
    assert_eq!(app.sent_count(), 0);
}

#[tokio::test]
async fn any_non_empty_json_value_is_a_credential_in_canonical_form() {
    let app = TestApp::spawn().await;
    let cases = [
        ("\"x\"", "\"x\""),
        ("7", "7"),
        ("[1, 2]", "[1,2]"),
        ("{\"z\": {\"b\": 1, \"a\": 2}}", r#"{"z":{"a":2,"b":1}}"#),
    ];
    for (body, canonical) in cases {
        let r = app
            .send(
                app.post("/api/otp/create", None)
                    .header("content-type", "application/json; charset=utf-8")
                    .body(body),
            )
            .await;
        assert_eq!(r.status, 200, "{body}: {}", r.text);
        assert_eq!(app.sender.sent().last().expect("sent").0, canonical);
    }
}

#[tokio::test]
async fn an_empty_form_is_an_invalid_credential() {
    let app = TestApp::spawn().await;
    app.create_form(None, "")
        .await
        .assert_error_keeping(400, "CREDENTIAL:INVALID");
}

#[tokio::test]
async fn other_content_types_are_invalid_credentials() {
    let app = TestApp::spawn().await;
    for ct in ["text/plain", "application/xml", "application/octet-stream"] {
        let r = app
            .send(
                app.post("/api/otp/create", None)
                    .header("content-type", ct)
                    .body("email=a%40b.c"),
            )
            .await;
        r.assert_error_keeping(400, "CREDENTIAL:INVALID");
    }
}

#[tokio::test]
async fn a_form_credential_is_the_json_text_of_the_form() {
    let app = TestApp::spawn().await;
    let r = app.create_form(None, "email=a%40b.c").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.sender.sent()[0].0, r#"{"email":"a@b.c"}"#);
    let ok = app
        .verify(Some(&r.cookie().expect("cookie")), &app.sender.last_code())
        .await;
    assert_eq!(ok.json()["credential"], r#"{"email":"a@b.c"}"#);
}

#[tokio::test]
async fn a_credential_over_the_length_cap_is_invalid() {
    let app = TestApp::spawn().await;
    // `"` + n × `x` + `"`: 256 bytes is the default cap.
    let ok = app.create_json(None, &json!("x".repeat(254))).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let cookie = ok.cookie().expect("cookie");
    let r = app.create_json(None, &json!("x".repeat(255))).await;
    r.assert_error_keeping(400, "CREDENTIAL:INVALID");
    // Bytes count, not characters: 128 two-byte characters are 258 bytes.
    let r = app.create_json(None, &json!("é".repeat(128))).await;
    r.assert_error_keeping(400, "CREDENTIAL:INVALID");
    // Within a session the cookie is left alone.
    let r = app
        .create_json(Some(&cookie), &json!("y".repeat(300)))
        .await;
    r.assert_error_keeping(400, "CREDENTIAL:INVALID");
    assert_eq!(app.sent_count(), 1);
}

#[tokio::test]
async fn the_length_cap_follows_otp_max_credential_length() {
    let app = TestApp::spawn_with(&[("OTP_MAX_CREDENTIAL_LENGTH", "20")]).await;
    let r = app.create_json(None, &json!("x".repeat(18))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.create_json(None, &json!("x".repeat(19)))
        .await
        .assert_error_keeping(400, "CREDENTIAL:INVALID");
}

#[tokio::test]
async fn three_credentials_of_the_largest_size_fit_a_browser_cookie() {
    let app = TestApp::spawn().await;
    // Three 256-byte credentials, in a session where every optional field is set.
    let cred = |c: char| json!(c.to_string().repeat(254));
    let r = app.create_json(None, &cred('a')).await;
    let mut cookie = r.cookie().expect("cookie");
    for c in ['b', 'c'] {
        let r = app.create_json(Some(&cookie), &cred(c)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        cookie = r.cookie().expect("cookie");
    }
    let wrong = app.wrong_code(&app.sender.last_code());
    let mut longest = 0;
    for _ in 0..2 {
        let r = app.verify(Some(&cookie), &wrong).await;
        let set = r.set_cookie_header().expect("set-cookie");
        let pair = set.split(';').next().expect("pair").len();
        longest = longest.max(pair);
        cookie = r.cookie().expect("cookie");
    }
    assert!(longest < 4096, "name=value is {longest} bytes");
    assert!(
        longest > 3 * 256,
        "the cookie really holds three credentials"
    );
    // And the largest size of multi-byte text.
    let r = app.create_json(None, &json!("€".repeat(84))).await;
    assert_eq!(r.status, 200, "254 bytes of € are allowed: {}", r.text);
}

#[tokio::test]
async fn a_refused_credential_starts_no_session() {
    let app = TestApp::spawn().await;
    app.sender.set_mode(SendMode::Reject);
    let r = app
        .create_json(None, &json!({"email": "nobody@example.com"}))
        .await;
    r.assert_error_keeping(400, "CREDENTIAL:INVALID");
    assert_eq!(app.ids.len(), 0, "no list id stored");
}

#[tokio::test]
async fn a_refused_credential_leaves_an_existing_session_usable() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    app.sender.set_mode(SendMode::Reject);
    let r = app
        .create_json(Some(&cookie), &json!({"email": "nobody@example.com"}))
        .await;
    r.assert_error(400, "CREDENTIAL:INVALID");
    app.sender.set_mode(SendMode::Deliver);
    // Whichever cookie the client ends up holding still verifies Ann.
    let cookie = r.cookie().unwrap_or(cookie);
    let ok = app.verify(Some(&cookie), &code).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json()["credential"], r#"{"email":"ann@example.com"}"#);
}

#[tokio::test]
async fn a_failing_sender_is_a_503_with_retry_after_and_no_session() {
    let app = TestApp::spawn().await;
    app.sender.set_mode(SendMode::Fail);
    let r = app
        .create_json(None, &json!({"email": "ann@example.com"}))
        .await;
    r.assert_error_keeping(503, "SERVER");
    assert_eq!(r.header("retry-after").as_deref(), Some("5"));
    assert_eq!(
        r.json()["message"],
        "The server has some issues, it's not your fault."
    );
}

#[tokio::test]
async fn the_server_stores_only_ids_never_credentials_or_codes() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("secret-person@example.com").await;
    assert_eq!(app.ids.len(), 1);
    let stored = format!("{:?}", app.ids);
    assert!(!stored.contains("secret-person"), "{stored}");
    assert!(!stored.contains(&code), "{stored}");
    // The cookie does not show them in clear either.
    let raw = crate::helpers::decode_cookie(&cookie);
    assert!(!String::from_utf8_lossy(&raw).contains("secret-person"));
    assert!(!cookie.contains(&code));
}

#[tokio::test]
async fn a_garbage_cookie_on_create_starts_a_fresh_session() {
    let app = TestApp::spawn().await;
    let r = app
        .create_json(Some("garbage!!"), &json!({"email": "ann@example.com"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ok = app
        .verify(Some(&r.cookie().expect("cookie")), &app.sender.last_code())
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn hostile_bodies_are_invalid_credentials_not_crashes() {
    let app = TestApp::spawn().await;
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let many_fields = "a=1&".repeat(20_000);
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", deep.into_bytes()),
        ("application/json", b"{\"a\":\xff\xfe}".to_vec()),
        ("application/json", b"\"\xc3\x28\"".to_vec()),
        ("application/json", b"{\"a\":1}{\"b\":2}".to_vec()),
        ("application/json", b"1e999999".to_vec()),
        (
            "application/x-www-form-urlencoded",
            many_fields.into_bytes(),
        ),
        (
            "application/x-www-form-urlencoded",
            b"%ff%fe=%c3%28".to_vec(),
        ),
    ];
    for (ct, body) in bodies {
        let r = app
            .send(
                app.post("/api/otp/create", None)
                    .header("content-type", ct)
                    .body(body),
            )
            .await;
        assert!(r.status < 500, "{ct}: {} {}", r.status, r.text);
        if r.status != 200 {
            r.assert_error_keeping(400, "CREDENTIAL:INVALID");
        }
    }
    let health = app
        .send(app.client.get(format!("{}/health", app.base)))
        .await;
    assert_eq!(health.text, "OK");
}

#[tokio::test]
async fn a_full_id_store_is_a_503_at_once_and_sends_nothing_until_swept() {
    let app = TestApp::spawn_with_id_capacity(&[], 2).await;
    let (a, code_a) = app.session("a@example.com").await;
    let _ = app.session("b@example.com").await;
    let r = app
        .create_json(None, &json!({"email": "c@example.com"}))
        .await;
    r.assert_error_keeping(503, "SERVER");
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        app.sent_count(),
        2,
        "no code is sent without a stored session"
    );
    // Live sessions keep working (a rewrite replaces an id, it does not add one).
    let r = app.verify(Some(&a), &app.wrong_code(&code_a)).await;
    r.assert_error(403, "OTP:INCORRECT");
    // Dead ids are dropped by the sweeper (on its timer, never per request).
    app.advance(181.0);
    app.create_json(None, &json!({"email": "c@example.com"}))
        .await
        .assert_error_keeping(503, "SERVER");
    app.ids.sweep(app.clock.now());
    let r = app
        .create_json(None, &json!({"email": "c@example.com"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(app.ids.len() <= 2);
}
