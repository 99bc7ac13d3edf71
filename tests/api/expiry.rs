//! Expiry on the manual clock, and how instants are written.

use crate::helpers::{TestApp, iso_at};

#[tokio::test]
async fn a_code_still_works_one_second_before_it_expires() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    app.advance(179.999);
    let r = app.verify(Some(&cookie), &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn after_the_max_age_verify_answers_expired_and_keeps_the_cookie() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    app.advance(180.0);
    let r = app.verify(Some(&cookie), &code).await;
    r.assert_error_keeping(400, "OTP:EXPIRED");
    assert_eq!(app.final_action.runs(), 0);
}

#[tokio::test]
async fn after_the_max_age_resend_answers_expired_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let (cookie, _) = app.session("ann@example.com").await;
    app.advance(200.0);
    let r = app.resend(Some(&cookie)).await;
    r.assert_error_keeping(400, "OTP:EXPIRED");
    assert_eq!(app.sent_count(), 1);
}

#[tokio::test]
async fn the_max_age_is_configurable() {
    let app = TestApp::spawn_with(&[("OTP_MAX_AGE", "60")]).await;
    let (cookie, code) = app.session("ann@example.com").await;
    app.advance(60.0);
    app.verify(Some(&cookie), &code)
        .await
        .assert_error_keeping(400, "OTP:EXPIRED");
}

#[tokio::test]
async fn the_current_token_expired_is_expired_even_if_an_older_one_lives() {
    let app = TestApp::spawn().await;
    let (cookie, _) = app.session("a@example.com").await;
    app.advance(100.0);
    let r = app
        .create_json(
            Some(&cookie),
            &serde_json::json!({"email": "b@example.com"}),
        )
        .await;
    let cookie_b = r.cookie().expect("cookie");
    // Switch back to A (expires t=180) while B lives until t=280.
    let r = app
        .create_json(
            Some(&cookie_b),
            &serde_json::json!({"email": "a@example.com"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["expires"], iso_at(180.0));
    let cookie = r.cookie().expect("cookie");
    app.advance(81.0);
    app.verify(
        Some(&cookie),
        &app.sender.code_for(r#"{"email":"a@example.com"}"#),
    )
    .await
    .assert_error_keeping(400, "OTP:EXPIRED");
    // Create switches to the live one.
    let r = app
        .create_json(
            Some(&cookie),
            &serde_json::json!({"email": "b@example.com"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ok = app
        .verify(
            Some(&r.cookie().expect("cookie")),
            &app.sender.code_for(r#"{"email":"b@example.com"}"#),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn create_after_everything_expired_starts_a_fresh_session() {
    let app = TestApp::spawn().await;
    let (cookie, old_code) = app.session("ann@example.com").await;
    app.advance(181.0);
    let r = app
        .create_json(
            Some(&cookie),
            &serde_json::json!({"email": "ann@example.com"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.sent_count(), 2, "a new code for the same credential");
    assert_eq!(r.json()["expires"], iso_at(361.0));
    assert_eq!(r.json()["resendBlock"], iso_at(211.0));
    let fresh = r.cookie().expect("cookie");
    let new_code = app.sender.last_code();
    assert_ne!(new_code, old_code);
    let ok = app.verify(Some(&fresh), &new_code).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn expires_is_truncated_and_blocks_are_rounded_up_to_the_second() {
    let app = TestApp::spawn().await;
    app.advance(0.25);
    let r = app
        .create_json(None, &serde_json::json!({"email": "ann@example.com"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Created at 12:00:00.250.
    assert_eq!(r.json()["expires"], "2026-11-19T12:03:00.000Z");
    assert_eq!(r.json()["resendBlock"], "2026-11-19T12:00:31.000Z");
    let cookie = r.cookie().expect("cookie");
    let wrong = app.wrong_code(&app.sender.last_code());
    let r = app.verify(Some(&cookie), &wrong).await;
    let cookie = r.cookie().expect("cookie");
    app.advance(0.5);
    // Second wrong attempt at 12:00:00.750: blocked until 12:00:20.750, shown as :21.
    let r = app.verify(Some(&cookie), &wrong).await;
    r.assert_error(403, "OTP:INCORRECT");
    assert_eq!(r.json()["otpBlock"], "2026-11-19T12:00:21.000Z");
}

#[tokio::test]
async fn iso_instants_have_milliseconds_and_a_z() {
    let app = TestApp::spawn().await;
    let r = app
        .create_json(None, &serde_json::json!({"email": "ann@example.com"}))
        .await;
    for key in ["expires", "resendBlock"] {
        let v = r.json()[key].as_str().expect(key).to_owned();
        assert_eq!(v.len(), "2026-11-19T12:03:00.000Z".len(), "{v}");
        assert!(v.ends_with(".000Z"), "{v}");
        assert_eq!(&v[10..11], "T", "{v}");
    }
}

#[tokio::test]
async fn the_cookie_expires_with_the_session() {
    let app = TestApp::spawn().await;
    app.advance(0.9);
    let r = app
        .create_json(None, &serde_json::json!({"email": "ann@example.com"}))
        .await;
    let set = r.set_cookie_header().expect("set-cookie");
    assert!(
        set.contains("Expires=Thu, 19 Nov 2026 12:03:00 GMT"),
        "{set}"
    );
}

#[tokio::test]
async fn a_resend_extends_the_expiry_by_the_max_age() {
    let app = TestApp::spawn().await;
    let (cookie, _) = app.session("ann@example.com").await;
    app.advance(30.0);
    let r = app.resend(Some(&cookie)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["expires"], iso_at(210.0));
    let cookie = r.cookie().expect("cookie");
    app.advance(179.0);
    let ok = app.verify(Some(&cookie), &app.sender.last_code()).await;
    assert_eq!(ok.status, 200, "still live at t=209: {}", ok.text);
}

#[tokio::test]
async fn a_temporary_block_ends_after_its_time() {
    let app = TestApp::spawn().await;
    let (mut cookie, code) = app.session("ann@example.com").await;
    let wrong = app.wrong_code(&code);
    for _ in 0..2 {
        cookie = app.verify(Some(&cookie), &wrong).await.cookie().expect("c");
    }
    app.advance(19.999);
    app.verify(Some(&cookie), &code)
        .await
        .assert_error_keeping(403, "OTP:VERIFICATION_NOT_ALLOWED");
    app.advance(0.001);
    let ok = app.verify(Some(&cookie), &code).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn a_block_reaching_the_expiry_blocks_the_token_for_good() {
    let app = TestApp::spawn().await;
    let (mut cookie, code) = app.session("ann@example.com").await;
    let wrong = app.wrong_code(&code);
    cookie = app.verify(Some(&cookie), &wrong).await.cookie().expect("c");
    // 20 s block at t=159.5 ends 0.5 s before the expiry: no use, so blocked for good.
    app.advance(159.5);
    let r = app.verify(Some(&cookie), &wrong).await;
    r.assert_error(403, "OTP:TOO_MANY_ATTEMPTS");
    let cookie = r.cookie().expect("c");
    app.verify(Some(&cookie), &code)
        .await
        .assert_error_keeping(403, "OTP:VERIFICATION_NOT_ALLOWED");
}
