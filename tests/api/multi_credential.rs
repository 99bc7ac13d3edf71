//! Sessions holding several credentials: adding, the cap, switching, which token is current.

use serde_json::json;

use crate::helpers::TestApp;

const A: &str = r#"{"email":"a@example.com"}"#;
const B: &str = r#"{"email":"b@example.com"}"#;
const C: &str = r#"{"email":"c@example.com"}"#;
const D: &str = r#"{"email":"d@example.com"}"#;

fn body(credential: &str) -> serde_json::Value {
    serde_json::from_str(credential).expect("json")
}

/// Creates `credential` in the session of `cookie`; returns the new cookie.
async fn add(app: &TestApp, cookie: &str, credential: &str) -> String {
    let r = app.create_json(Some(cookie), &body(credential)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.cookie().expect("create sets the cookie")
}

/// A session holding A, B and C (C current).
async fn three(app: &TestApp) -> String {
    let (cookie, _) = app.session_json(&body(A)).await;
    let cookie = add(app, &cookie, B).await;
    add(app, &cookie, C).await
}

#[tokio::test]
async fn a_second_and_third_credential_join_the_session_each_with_its_own_code() {
    let app = TestApp::spawn().await;
    let _ = three(&app).await;
    let sent: Vec<String> = app.sender.sent().into_iter().map(|(c, _)| c).collect();
    assert_eq!(sent, [A, B, C]);
    let codes: Vec<String> = app.sender.sent().into_iter().map(|(_, c)| c).collect();
    assert_ne!(codes[0], codes[1]);
    assert_ne!(codes[1], codes[2]);
}

#[tokio::test]
async fn a_fourth_credential_is_too_many_and_leaves_the_cookie_alone() {
    let app = TestApp::spawn().await;
    let cookie = three(&app).await;
    let r = app.create_json(Some(&cookie), &body(D)).await;
    r.assert_error_keeping(400, "OTP:TOO_MANY_CREDENTIALS");
    assert_eq!(app.sent_count(), 3, "nothing sent to the fourth");
    // The cookie still works: the current credential (C) verifies.
    let ok = app.verify(Some(&cookie), &app.sender.code_for(C)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json()["credential"], C);
}

#[tokio::test]
async fn the_credential_cap_follows_otp_max_credentials() {
    let app = TestApp::spawn_with(&[("OTP_MAX_CREDENTIALS", "1")]).await;
    let (cookie, _) = app.session_json(&body(A)).await;
    let r = app.create_json(Some(&cookie), &body(B)).await;
    r.assert_error_keeping(400, "OTP:TOO_MANY_CREDENTIALS");
    // Switching to the pending one is not adding.
    let again = app.create_json(Some(&cookie), &body(A)).await;
    assert_eq!(again.status, 200, "{}", again.text);
}

#[tokio::test]
async fn switching_back_to_a_pending_credential_answers_its_state_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let (cookie, _) = app.session_json(&body(A)).await;
    app.advance(10.0);
    let cookie = add(&app, &cookie, B).await;
    let sent = app.sent_count();
    let r = app.create_json(Some(&cookie), &body(A)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.sent_count(), sent, "switching sends no code");
    // A's own state (created at t=0), not B's (t=10).
    assert_eq!(r.json()["expires"], crate::helpers::iso_at(180.0));
    assert_eq!(r.json()["resendBlock"], crate::helpers::iso_at(30.0));
    assert!(r.cookie().is_some(), "the reordered list is sealed again");
    // The cookie itself lives as long as the session's longest token (B, t=190).
    let set = r.set_cookie_header().expect("set-cookie");
    assert!(
        set.contains("Expires=Thu, 19 Nov 2026 12:03:10 GMT"),
        "{set}"
    );
}

#[tokio::test]
async fn resend_and_verify_act_on_the_last_credential_created() {
    let app = TestApp::spawn().await;
    let (cookie, code_a) = app.session_json(&body(A)).await;
    let cookie = add(&app, &cookie, B).await;
    // A's code is not B's: wrong for the current token.
    let r = app.verify(Some(&cookie), &code_a).await;
    r.assert_error(403, "OTP:INCORRECT");
    let cookie = r.cookie().expect("cookie");
    app.advance(30.0);
    let r = app.resend(Some(&cookie)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.sender.sent().last().expect("sent").0, B);
    let cookie = r.cookie().expect("cookie");
    let ok = app.verify(Some(&cookie), &app.sender.code_for(B)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json()["credential"], B);
}

#[tokio::test]
async fn after_switching_back_the_earlier_credentials_code_verifies() {
    let app = TestApp::spawn().await;
    let (cookie, code_a) = app.session_json(&body(A)).await;
    let cookie = add(&app, &cookie, B).await;
    let cookie = add(&app, &cookie, C).await;
    let cookie = add(&app, &cookie, A).await;
    let ok = app.verify(Some(&cookie), &code_a).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json()["credential"], A);
    assert_eq!(app.final_action.runs(), 1);
}

#[tokio::test]
async fn switching_keeps_each_credentials_attempts_and_blocks() {
    let app = TestApp::spawn().await;
    let (cookie, code_a) = app.session_json(&body(A)).await;
    let wrong = app.wrong_code(&code_a);
    let mut cookie = cookie;
    for _ in 0..3 {
        let r = app.verify(Some(&cookie), &wrong).await;
        cookie = r.cookie().expect("cookie");
        app.advance(21.0);
    }
    // A is now blocked for good; B can still be added and verified.
    let cookie = add(&app, &cookie, B).await;
    let r = app.create_json(Some(&cookie), &body(A)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["blocked"], true);
    assert!(r.json().get("resendBlock").is_none(), "{}", r.text);
    let cookie = r.cookie().expect("cookie");
    let r = app.verify(Some(&cookie), &code_a).await;
    r.assert_error_keeping(403, "OTP:VERIFICATION_NOT_ALLOWED");
    let cookie = add(&app, &cookie, B).await;
    let ok = app.verify(Some(&cookie), &app.sender.code_for(B)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn expired_credentials_are_dropped_on_create_and_free_their_place() {
    let app = TestApp::spawn().await;
    let (cookie, _) = app.session_json(&body(A)).await;
    app.advance(100.0);
    let cookie = add(&app, &cookie, B).await;
    let cookie = add(&app, &cookie, C).await;
    // A expires at t=180; B and C live until t=280.
    app.advance(81.0);
    let r = app.create_json(Some(&cookie), &body(D)).await;
    assert_eq!(r.status, 200, "A's place is free: {}", r.text);
    let cookie = r.cookie().expect("cookie");
    // The session is full again (B, C, D): A would be a fourth.
    let sent = app.sent_count();
    let r = app.create_json(Some(&cookie), &body(A)).await;
    r.assert_error_keeping(400, "OTP:TOO_MANY_CREDENTIALS");
    assert_eq!(app.sent_count(), sent);
    // Switching to B (still pending) works.
    let r = app.create_json(Some(&cookie), &body(B)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.sent_count(), sent);
}

#[tokio::test]
async fn an_expired_credential_created_again_gets_a_new_code() {
    let app = TestApp::spawn().await;
    let (cookie, code_a) = app.session_json(&body(A)).await;
    app.advance(100.0);
    let cookie = add(&app, &cookie, B).await;
    app.advance(81.0);
    let r = app.create_json(Some(&cookie), &body(A)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.sent_count(), 3, "A was expired, so it is new again");
    assert_eq!(r.json()["expires"], crate::helpers::iso_at(361.0));
    let new_code = app.sender.code_for(A);
    assert_ne!(new_code, code_a);
    let cookie = r.cookie().expect("cookie");
    let ok = app.verify(Some(&cookie), &new_code).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn a_json_body_and_a_form_giving_the_same_canonical_credential_match() {
    let app = TestApp::spawn().await;
    let r = app.create_json(None, &json!({"b": "2", "a": "1"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let cookie = r.cookie().expect("cookie");
    assert_eq!(app.sender.sent()[0].0, r#"{"a":"1","b":"2"}"#);
    let r = app.create_form(Some(&cookie), "a=1&b=2").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.sent_count(), 1, "the form names the same credential");
    // Whitespace in the JSON text does not matter either.
    let cookie = r.cookie().expect("cookie");
    let r = app
        .send(
            app.post("/api/otp/create", Some(&cookie))
                .header("content-type", "application/json")
                .body("{ \"a\" : \"1\",\n \"b\":\"2\" }"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.sent_count(), 1);
}

#[tokio::test]
async fn a_form_with_repeated_names_is_an_array_credential() {
    let app = TestApp::spawn().await;
    let r = app.create_form(None, "a=1&a=2&t%5B%5D=x").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.sender.sent()[0].0, r#"{"a":["1","2"],"t[]":["x"]}"#);
    let cookie = r.cookie().expect("cookie");
    let r = app
        .create_json(Some(&cookie), &json!({"a": ["1", "2"], "t[]": ["x"]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.sent_count(), 1);
}
