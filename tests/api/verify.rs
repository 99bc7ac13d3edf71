//! Verification: the code format (anchored), wrong codes, the success path, and the
//! final action running exactly once (SPEC A6 fixes 3 and 6).

use crate::helpers::TestApp;

#[tokio::test]
async fn the_right_code_verifies_once_clears_the_cookie_and_runs_the_final_action() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    let r = app.verify(Some(&cookie), &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        serde_json::json!({"credential": r#"{"email":"ann@example.com"}"#, "message": "successfully verified"})
    );
    assert!(r.clears_cookie(), "{:?}", r.set_cookies());
    assert!(r.cookie().is_none());
    assert_eq!(app.final_action.runs(), 1);
}

#[tokio::test]
async fn the_cookie_of_a_successful_verify_cannot_be_verified_again() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    assert_eq!(app.verify(Some(&cookie), &code).await.status, 200);
    // Moments later it looks like the loser of a double submit: 409, cookie kept.
    app.verify(Some(&cookie), &code)
        .await
        .assert_error_keeping(409, "OTP:CONFLICT");
    app.advance(11.0);
    for _ in 0..3 {
        let r = app.verify(Some(&cookie), &code).await;
        r.assert_error_clearing(400, "OTP:INVALID_COOKIE");
    }
    app.resend(Some(&cookie))
        .await
        .assert_error_keeping(400, "OTP:RESENT_NOT_ALLOWED");
    app.advance(30.0);
    app.resend(Some(&cookie))
        .await
        .assert_error_clearing(400, "OTP:INVALID_COOKIE");
    assert_eq!(app.final_action.runs(), 1, "exactly once");
}

#[tokio::test]
async fn wrong_codes_of_the_right_format_are_refused() {
    let app = TestApp::spawn_with(&[("OTP_MAX_ATTEMPTS", "20"), ("OTP_ATTEMPTS_BLOCK", "0")]).await;
    let (mut cookie, code) = app.session("ann@example.com").await;
    // Differ in one position each (first, middle, last), by case-preserving neighbours.
    let mut wrongs = Vec::new();
    for i in [0, 4, 9] {
        let mut b = code.clone().into_bytes();
        b[i] = if b[i] == b'z' {
            b'0'
        } else if b[i] == b'9' {
            b'a'
        } else {
            b[i] + 1
        };
        wrongs.push(String::from_utf8(b).expect("ascii"));
    }
    wrongs.push("0000000000".into());
    wrongs.push("zzzzzzzzzz".into());
    for wrong in wrongs.iter().filter(|w| **w != code) {
        let r = app.verify(Some(&cookie), wrong).await;
        r.assert_error(403, "OTP:INCORRECT");
        cookie = r.cookie().expect("cookie");
    }
    assert_eq!(app.final_action.runs(), 0);
    let ok = app.verify(Some(&cookie), &code).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn the_code_format_check_is_anchored() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    let upper = code.to_ascii_uppercase();
    let candidates = [
        "!!!!!!!!!a".to_owned(),
        "a!!!!!!!!!".to_owned(),
        format!("{}!", &code[..9]),
        format!("-{}", &code[1..]),
        format!("{} {}", &code[..4], &code[5..]),
        format!("{code}a"),
        code[..9].to_owned(),
        String::new(),
        "ééééé".to_owned(),
    ];
    for otp in candidates
        .iter()
        .chain(std::iter::once(&upper).filter(|u| **u != code))
    {
        let r = app
            .send(
                app.post("/api/otp/verify", Some(&cookie))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("otp={}", urlencode(otp))),
            )
            .await;
        r.assert_error_keeping(400, "OTP:INVALID_FORMAT");
    }
    // None of these counted: the session still has all its attempts and verifies.
    let ok = app.verify(Some(&cookie), &code).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn the_code_is_trimmed_before_the_check() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    let r = app.verify(Some(&cookie), &format!("++{code}+")).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_repeated_otp_field_is_an_invalid_format() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    let r = app
        .send(
            app.post("/api/otp/verify", Some(&cookie))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("otp={code}&otp={code}")),
        )
        .await;
    r.assert_error_keeping(400, "OTP:INVALID_FORMAT");
}

#[tokio::test]
async fn the_format_follows_otp_length_and_otp_alphabet() {
    let app = TestApp::spawn_with(&[("OTP_LENGTH", "6"), ("OTP_ALPHABET", "0123456789")]).await;
    let (cookie, code) = app.session("ann@example.com").await;
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
    app.verify(Some(&cookie), "abcdef")
        .await
        .assert_error_keeping(400, "OTP:INVALID_FORMAT");
    app.verify(Some(&cookie), "1234567")
        .await
        .assert_error_keeping(400, "OTP:INVALID_FORMAT");
    let ok = app.verify(Some(&cookie), &code).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn the_format_is_checked_before_the_cookie() {
    let app = TestApp::spawn().await;
    app.verify(Some("not-a-cookie"), "short")
        .await
        .assert_error_keeping(400, "OTP:INVALID_FORMAT");
    app.verify(None, "short")
        .await
        .assert_error_keeping(400, "OTP:INVALID_FORMAT");
}

#[tokio::test]
async fn the_default_attempt_sequence_is_incorrect_then_blocked_then_too_many() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    let wrong = app.wrong_code(&code);
    let r1 = app.verify(Some(&cookie), &wrong).await;
    r1.assert_error(403, "OTP:INCORRECT");
    assert!(r1.json().get("otpBlock").is_none());
    let r2 = app.verify(Some(&r1.cookie().expect("c")), &wrong).await;
    r2.assert_error(403, "OTP:INCORRECT");
    assert_eq!(r2.json()["otpBlock"], crate::helpers::iso_at(20.0));
    let c2 = r2.cookie().expect("c");
    // During the block even the right code is refused, and no attempt is used.
    app.advance(10.0);
    app.verify(Some(&c2), &code)
        .await
        .assert_error_keeping(403, "OTP:VERIFICATION_NOT_ALLOWED");
    app.advance(10.0);
    let r3 = app.verify(Some(&c2), &wrong).await;
    r3.assert_error(403, "OTP:TOO_MANY_ATTEMPTS");
    let c3 = r3.cookie().expect("c");
    app.advance(100.0);
    app.verify(Some(&c3), &code)
        .await
        .assert_error_keeping(403, "OTP:VERIFICATION_NOT_ALLOWED");
    assert_eq!(app.final_action.runs(), 0);
}

#[tokio::test]
async fn the_right_code_after_the_block_still_succeeds() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    let wrong = app.wrong_code(&code);
    let c1 = app.verify(Some(&cookie), &wrong).await.cookie().expect("c");
    let c2 = app.verify(Some(&c1), &wrong).await.cookie().expect("c");
    app.advance(20.0);
    let ok = app.verify(Some(&c2), &code).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(app.final_action.runs(), 1);
}
