//! The original's test suite (SPEC B §8, cases 1–21), with the outcomes the port
//! must give (Part A wins), in the original's test mode (3 s blocks) on a manual clock.

use serde_json::json;

use crate::helpers::{START, TEST_MODE, TestApp};

/// The original's mangling: characters 3..8 of the cookie value (inside the key id) become `aaaaa`.
fn mangle_key_id(cookie: &str) -> String {
    let replacement = if &cookie[3..8] == "aaaaa" {
        "bbbbb"
    } else {
        "aaaaa"
    };
    format!("{}{replacement}{}", &cookie[..3], &cookie[8..])
}

/// A well-formed code (10 characters of `0-9a-z`).
const SOME_CODE: &str = "k3j9x0q2zp";

/// The original's `fetchOtpcookie`: create with a JSON string credential (Part A2
/// accepts JSON), keep the cookie and the code sent.
async fn created(app: &TestApp) -> (String, String) {
    let n = app.sent_count();
    let r = app.create_json(None, &json!(format!("user-{n}"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    (r.cookie().expect("cookie"), app.sender.last_code())
}

// describe "OTP Generation"

#[tokio::test]
async fn case_01_create_without_content_type_or_body_is_an_invalid_credential() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let r = app.send(app.post("/api/otp/create", None)).await;
    r.assert_error_keeping(400, "CREDENTIAL:INVALID");
    assert_eq!(app.sent_count(), 0);
}

#[tokio::test]
async fn case_02_create_with_json_content_type_and_no_body_is_an_invalid_credential() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let r = app
        .send(
            app.post("/api/otp/create", None)
                .header("content-type", "application/json"),
        )
        .await;
    r.assert_error_keeping(400, "CREDENTIAL:INVALID");
}

#[tokio::test]
async fn case_03_create_with_a_text_plain_body_is_an_invalid_credential() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let r = app
        .send(
            app.post("/api/otp/create", None)
                .header("content-type", "text/plain")
                .body(r#"["test"]"#),
        )
        .await;
    r.assert_error_keeping(400, "CREDENTIAL:INVALID");
}

#[tokio::test]
async fn case_04_create_with_malformed_json_is_an_invalid_credential_in_json_shape() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let r = app
        .send(
            app.post("/api/otp/create", None)
                .header("content-type", "application/json")
                .body("test"),
        )
        .await;
    r.assert_error_keeping(400, "CREDENTIAL:INVALID");
    assert!(
        r.header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json")),
        "{:?}",
        r.headers
    );
}

#[tokio::test]
async fn case_05_create_with_json_false_is_an_invalid_credential() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let r = app.create_json(None, &json!(false)).await;
    r.assert_error_keeping(400, "CREDENTIAL:INVALID");
    assert_eq!(app.sent_count(), 0);
}

#[tokio::test]
async fn case_06_create_succeeds_with_expiry_and_resend_block_in_the_future() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let now = START.to_iso8601();
    for r in [
        app.create_json(None, &json!("some-random-credential"))
            .await,
        app.create_form(None, "credential=some-random-credential")
            .await,
    ] {
        assert_eq!(r.status, 200, "{}", r.text);
        let body = r.json();
        let expires = body["expires"].as_str().expect("expires");
        let resend_block = body["resendBlock"].as_str().expect("resendBlock");
        // ISO-8601 strings of one width compare like the instants they name.
        assert!(expires > now.as_str(), "{expires}");
        assert!(resend_block > now.as_str(), "{resend_block}");
        assert!(r.cookie().is_some(), "no cookie set");
    }
    assert_eq!(app.sent_count(), 2);
}

// describe "OTP Resending"

#[tokio::test]
async fn case_07_create_again_starts_a_fresh_session() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let (first, _) = created(&app).await;
    let (second, _) = created(&app).await;
    assert_ne!(first, second);
    assert_eq!(app.sent_count(), 2);
}

#[tokio::test]
async fn case_08_resend_without_a_cookie_is_an_invalid_cookie() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let _ = created(&app).await;
    let r = app.resend(None).await;
    r.assert_error_keeping(400, "OTP:INVALID_COOKIE");
}

#[tokio::test]
async fn case_09_resend_with_a_mangled_key_id_is_an_invalid_cookie() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let (cookie, _) = created(&app).await;
    app.advance(4.0);
    let r = app.resend(Some(&mangle_key_id(&cookie))).await;
    r.assert_error_clearing(400, "OTP:INVALID_COOKIE");
    assert_eq!(app.sent_count(), 1, "nothing was resent");
}

#[tokio::test]
async fn case_10_resend_immediately_is_not_allowed() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let (cookie, _) = created(&app).await;
    let r = app.resend(Some(&cookie)).await;
    r.assert_error_keeping(400, "OTP:RESENT_NOT_ALLOWED");
    assert_eq!(app.sent_count(), 1);
}

#[tokio::test]
async fn case_11_resend_after_the_resend_block_sends_a_new_code() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let (cookie, first_code) = created(&app).await;
    app.advance(3.0);
    let r = app.resend(Some(&cookie)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json()["expires"].is_string());
    assert!(r.cookie().is_some());
    assert_eq!(app.sent_count(), 2);
    assert_ne!(app.sender.last_code(), first_code, "a new code was sent");
}

// describe "OTP Sending"

#[tokio::test]
async fn case_12_create_again_before_verifying() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let (cookie, code) = created(&app).await;
    assert_eq!(code.len(), 10);
    assert!(
        code.bytes()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
    );
    assert!(!cookie.is_empty());
}

#[tokio::test]
async fn case_13_verify_with_a_code_of_the_wrong_length_is_an_invalid_format() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let (cookie, _) = created(&app).await;
    // Math.random().toString(36) gives "0." and 10–11 base-36 digits.
    for otp in ["0.4fzyo82mvyr", "4fzyo82mvyr", "4fzyo82mvyrx", "4fzyo82mv"] {
        let r = app.verify(Some(&cookie), otp).await;
        r.assert_error_keeping(400, "OTP:INVALID_FORMAT");
    }
}

#[tokio::test]
async fn case_14_verify_a_well_formed_code_without_a_cookie_is_an_invalid_cookie() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let _ = created(&app).await;
    let r = app.verify(None, SOME_CODE).await;
    r.assert_error_keeping(400, "OTP:INVALID_COOKIE");
}

#[tokio::test]
async fn case_15_verify_with_a_mangled_key_id_is_an_invalid_cookie() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let (cookie, code) = created(&app).await;
    let r = app.verify(Some(&mangle_key_id(&cookie)), &code).await;
    r.assert_error_clearing(400, "OTP:INVALID_COOKIE");
    assert_eq!(app.final_action.runs(), 0);
}

#[tokio::test]
async fn case_16_verify_with_json_content_type_and_no_body_is_an_invalid_format() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let (cookie, _) = created(&app).await;
    let r = app
        .send(
            app.post("/api/otp/verify", Some(&cookie))
                .header("content-type", "application/json"),
        )
        .await;
    r.assert_error_keeping(400, "OTP:INVALID_FORMAT");
}

#[tokio::test]
async fn case_17_verify_with_form_content_type_and_no_body_is_an_invalid_format() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let (cookie, _) = created(&app).await;
    let r = app
        .send(
            app.post("/api/otp/verify", Some(&cookie))
                .header("content-type", "application/x-www-form-urlencoded"),
        )
        .await;
    r.assert_error_keeping(400, "OTP:INVALID_FORMAT");
}

#[tokio::test]
async fn case_18_verify_with_the_wrong_field_name_is_an_invalid_format() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let (cookie, code) = created(&app).await;
    let r = app
        .send(
            app.post("/api/otp/verify", Some(&cookie))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("ot={code}")),
        )
        .await;
    r.assert_error_keeping(400, "OTP:INVALID_FORMAT");
}

/// Cases 19–21 form one sequence in the original; each test replays the prefix it needs.
async fn wrong_attempts(app: &TestApp, n: usize) -> (String, Vec<crate::helpers::Reply>) {
    let (mut cookie, code) = created(app).await;
    let wrong = app.wrong_code(&code);
    let mut replies = Vec::new();
    for _ in 0..n {
        let r = app.verify(Some(&cookie), &wrong).await;
        if let Some(next) = r.cookie() {
            cookie = next;
        }
        replies.push(r);
    }
    (cookie, replies)
}

#[tokio::test]
async fn case_19_a_first_wrong_attempt_is_incorrect_and_sets_a_new_cookie() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let (cookie, code) = created(&app).await;
    let r = app.verify(Some(&cookie), &app.wrong_code(&code)).await;
    r.assert_error(403, "OTP:INCORRECT");
    assert!(r.json().get("otpBlock").is_none(), "{}", r.text);
    let next = r.cookie().expect("a new cookie after a wrong attempt");
    assert_ne!(next, cookie);
    // The new cookie still carries the session: the right code now succeeds.
    let ok = app.verify(Some(&next), &code).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn case_20_a_second_wrong_attempt_is_incorrect_with_an_otp_block_in_the_future() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let (_, replies) = wrong_attempts(&app, 2).await;
    let r = &replies[1];
    r.assert_error(403, "OTP:INCORRECT");
    let block = r.json()["otpBlock"]
        .as_str()
        .expect("otpBlock present")
        .to_owned();
    assert!(block.as_str() > START.to_iso8601().as_str(), "{block}");
    assert_eq!(block, crate::helpers::iso_at(3.0));
    assert!(r.cookie().is_some());
}

#[tokio::test]
async fn case_21_a_third_wrong_attempt_after_the_block_is_too_many_attempts() {
    let app = TestApp::spawn_with(&TEST_MODE).await;
    let (cookie, _) = wrong_attempts(&app, 2).await;
    app.advance(3.0);
    let wrong = app.wrong_code(&app.sender.last_code());
    let r = app.verify(Some(&cookie), &wrong).await;
    r.assert_error(403, "OTP:TOO_MANY_ATTEMPTS");
    let blocked = r.cookie().expect("the blocked token is kept");
    // Even the right code is refused afterwards.
    let again = app.verify(Some(&blocked), &app.sender.last_code()).await;
    again.assert_error_keeping(403, "OTP:VERIFICATION_NOT_ALLOWED");
    assert_eq!(app.final_action.runs(), 0);
}
