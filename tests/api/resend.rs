//! Resend rules (SPEC A6 fix 4): one resend by default, a block between resends
//! otherwise, never for a blocked token; attempts carry over.

use crate::helpers::{SendMode, TestApp, iso_at};

#[tokio::test]
async fn with_only_one_resending_the_second_resend_is_not_allowed() {
    let app = TestApp::spawn_with(&[("OTP_ALLOW_ONLY_ONE_RESENDING", "true")]).await;
    let (cookie, _) = app.session("ann@example.com").await;
    app.advance(30.0);
    let r = app.resend(Some(&cookie)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json().get("resendBlock").is_none(), "{}", r.text);
    let cookie = r.cookie().expect("cookie");
    for wait in [0.0, 30.0, 100.0] {
        app.advance(wait);
        app.resend(Some(&cookie))
            .await
            .assert_error_keeping(400, "OTP:RESENT_NOT_ALLOWED");
    }
    assert_eq!(app.sent_count(), 2, "exactly one resend");
}

#[tokio::test]
async fn only_one_resending_is_the_default() {
    let app = TestApp::spawn().await;
    let (cookie, _) = app.session("ann@example.com").await;
    app.advance(30.0);
    let cookie = app.resend(Some(&cookie)).await.cookie().expect("cookie");
    app.advance(60.0);
    app.resend(Some(&cookie))
        .await
        .assert_error_keeping(400, "OTP:RESENT_NOT_ALLOWED");
}

#[tokio::test]
async fn with_unlimited_resending_each_resend_waits_the_block() {
    let app = TestApp::spawn_with(&[("OTP_ALLOW_ONLY_ONE_RESENDING", "false")]).await;
    let (mut cookie, _) = app.session("ann@example.com").await;
    let mut t = 0.0;
    for round in 1..=4 {
        app.advance(29.0);
        t += 29.0;
        app.resend(Some(&cookie))
            .await
            .assert_error_keeping(400, "OTP:RESENT_NOT_ALLOWED");
        app.advance(1.0);
        t += 1.0;
        let r = app.resend(Some(&cookie)).await;
        assert_eq!(r.status, 200, "round {round}: {}", r.text);
        assert_eq!(r.json()["resendBlock"], iso_at(t + 30.0));
        assert_eq!(r.json()["expires"], iso_at(t + 180.0));
        cookie = r.cookie().expect("cookie");
    }
    assert_eq!(app.sent_count(), 5);
}

#[tokio::test]
async fn the_resent_code_replaces_the_old_one() {
    let app = TestApp::spawn().await;
    let (cookie, old) = app.session("ann@example.com").await;
    app.advance(30.0);
    let cookie = app.resend(Some(&cookie)).await.cookie().expect("cookie");
    let new = app.sender.last_code();
    assert_ne!(new, old);
    let r = app.verify(Some(&cookie), &old).await;
    r.assert_error(403, "OTP:INCORRECT");
    let ok = app.verify(Some(&r.cookie().expect("cookie")), &new).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn a_blocked_token_cannot_be_resent() {
    let app = TestApp::spawn().await;
    let (mut cookie, code) = app.session("ann@example.com").await;
    let wrong = app.wrong_code(&code);
    for _ in 0..3 {
        cookie = app.verify(Some(&cookie), &wrong).await.cookie().expect("c");
        app.advance(21.0);
    }
    let sent = app.sent_count();
    let r = app.resend(Some(&cookie)).await;
    r.assert_error_keeping(400, "OTP:RESENT_NOT_ALLOWED");
    assert_eq!(app.sent_count(), sent);
    // The cookie stays readable: nothing was broken or rotated by the attempt.
    app.verify(Some(&cookie), &code)
        .await
        .assert_error_keeping(403, "OTP:VERIFICATION_NOT_ALLOWED");
    assert_eq!(app.kms.key_ids().len(), 1);
}

#[tokio::test]
async fn attempts_and_a_pending_block_carry_over_to_the_resent_code() {
    let app = TestApp::spawn().await;
    let (mut cookie, code) = app.session("ann@example.com").await;
    let wrong = app.wrong_code(&code);
    for _ in 0..2 {
        cookie = app.verify(Some(&cookie), &wrong).await.cookie().expect("c");
    }
    app.advance(10.0);
    // Blocked until t=20; the resend block ended... not yet (t=30).
    app.resend(Some(&cookie))
        .await
        .assert_error_keeping(400, "OTP:RESENT_NOT_ALLOWED");
    app.advance(20.0);
    let r = app.resend(Some(&cookie)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let cookie = r.cookie().expect("cookie");
    let new = app.sender.last_code();
    // One attempt left: a wrong guess blocks the token for good.
    let r = app.verify(Some(&cookie), &app.wrong_code(&new)).await;
    r.assert_error(403, "OTP:TOO_MANY_ATTEMPTS");
}

#[tokio::test]
async fn a_resend_the_sender_refuses_blocks_the_token() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    app.advance(30.0);
    app.sender.set_mode(SendMode::Reject);
    let r = app.resend(Some(&cookie)).await;
    r.assert_error(400, "CREDENTIAL:INVALID");
    let cookie = r.cookie().expect("the blocked state is sealed");
    app.sender.set_mode(SendMode::Deliver);
    app.verify(Some(&cookie), &code)
        .await
        .assert_error_keeping(403, "OTP:VERIFICATION_NOT_ALLOWED");
    app.resend(Some(&cookie))
        .await
        .assert_error_keeping(400, "OTP:RESENT_NOT_ALLOWED");
    assert_eq!(app.sent_count(), 1);
}

#[tokio::test]
async fn a_resend_whose_transport_fails_is_a_503_and_leaves_no_usable_code() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    app.advance(30.0);
    app.sender.set_mode(SendMode::Fail);
    let r = app.resend(Some(&cookie)).await;
    r.assert_error(503, "SERVER");
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    let cookie = r.cookie().expect("the session moves to a new id");
    app.sender.set_mode(SendMode::Deliver);
    // A code that may or may not have arrived must not stay usable: the token is blocked.
    let r = app.verify(Some(&cookie), &code).await;
    r.assert_error(403, "OTP:VERIFICATION_NOT_ALLOWED");
    assert_eq!(app.final_action.runs(), 0);
}

#[tokio::test]
async fn resend_with_a_zero_block_is_allowed_at_once() {
    let app = TestApp::spawn_with(&[("OTP_RESEND_BLOCK_SECONDS", "0")]).await;
    let r = app
        .create_json(None, &serde_json::json!({"email": "ann@example.com"}))
        .await;
    assert!(r.json().get("resendBlock").is_none(), "{}", r.text);
    let r = app.resend(Some(&r.cookie().expect("cookie"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.sent_count(), 2);
}
