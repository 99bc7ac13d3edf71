//! Production mode (SPEC A6 fix 2): `__Host-Http-o`, `Secure`, and every path that
//! clears the cookie clears it with the attributes it was set with, never a 500.

use serde_json::json;

use crate::helpers::{PRODUCTION, Reply, TestApp, decode_cookie, encode_cookie};

fn attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

#[track_caller]
fn assert_set_like_production(r: &Reply) {
    let set = r.set_cookie_header().expect("set-cookie");
    assert!(set.starts_with("__Host-Http-o="), "{set}");
    let attrs = attributes(&set);
    for a in ["secure", "httponly", "path=/", "samesite=strict"] {
        assert!(attrs.iter().any(|x| x == a), "{a} missing in {set}");
    }
    assert!(attrs.iter().any(|x| x.starts_with("expires=")), "{set}");
    assert!(!attrs.iter().any(|x| x.starts_with("domain")), "{set}");
}

#[track_caller]
fn assert_cleared_like_production(r: &Reply) {
    assert!(r.status < 500, "{} {}", r.status, r.text);
    assert!(r.clears_cookie(), "not cleared: {:?}", r.set_cookies());
    let set = r.set_cookie_header().expect("set-cookie");
    assert!(set.starts_with("__Host-Http-o=;"), "{set}");
    let attrs = attributes(&set);
    for a in ["secure", "path=/", "max-age=0"] {
        assert!(attrs.iter().any(|x| x == a), "{a} missing in {set}");
    }
    assert!(!attrs.iter().any(|x| x.starts_with("domain")), "{set}");
}

#[tokio::test]
async fn production_sets_a_secure_host_prefixed_cookie() {
    let app = TestApp::spawn_with(&PRODUCTION).await;
    assert_eq!(app.cookie_name, "__Host-Http-o");
    let r = app
        .create_json(None, &json!({"email": "ann@example.com"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_set_like_production(&r);
    let cookie = r.cookie().expect("cookie");
    let r = app
        .verify(Some(&cookie), &app.wrong_code(&app.sender.last_code()))
        .await;
    assert_set_like_production(&r);
}

#[tokio::test]
async fn development_cookies_are_not_secure_and_named_o() {
    let app = TestApp::spawn().await;
    let r = app
        .create_json(None, &json!({"email": "ann@example.com"}))
        .await;
    let set = r.set_cookie_header().expect("set-cookie");
    assert!(set.starts_with("o="), "{set}");
    let attrs = attributes(&set);
    assert!(!attrs.iter().any(|x| x == "secure"), "{set}");
    for a in ["httponly", "path=/", "samesite=strict"] {
        assert!(attrs.iter().any(|x| x == a), "{a} missing in {set}");
    }
}

#[tokio::test]
async fn a_successful_verify_in_production_clears_the_cookie_once() {
    let app = TestApp::spawn_with(&PRODUCTION).await;
    let (cookie, code) = app.session("ann@example.com").await;
    let r = app.verify(Some(&cookie), &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_cleared_like_production(&r);
    assert_eq!(app.final_action.runs(), 1);
    // Not replayable (the original's production bug allowed it); past the race
    // window, so the answer is the stale-cookie one.
    app.advance(11.0);
    let again = app.verify(Some(&cookie), &code).await;
    again.assert_error(400, "OTP:INVALID_COOKIE");
    assert_cleared_like_production(&again);
    assert_eq!(app.final_action.runs(), 1);
}

#[tokio::test]
async fn every_clearing_path_in_production_answers_without_a_server_error() {
    let app = TestApp::spawn_with(&PRODUCTION).await;
    let (cookie, code) = app.session("ann@example.com").await;
    let mut raw = decode_cookie(&cookie);
    // Unreadable: tampered, truncated, unknown key.
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let tampered = encode_cookie(&raw);
    let truncated = cookie[..cookie.len() / 2].to_owned();
    for bad in [&tampered, &truncated, &"garbage".to_owned()] {
        let r = app.verify(Some(bad), &code).await;
        r.assert_error(400, "OTP:INVALID_COOKIE");
        assert_cleared_like_production(&r);
        let r = app.resend(Some(bad)).await;
        r.assert_error(400, "OTP:INVALID_COOKIE");
        assert_cleared_like_production(&r);
    }
    // Superseded (replayed) cookie on verify, resend and create.
    let next = app
        .verify(Some(&cookie), &app.wrong_code(&code))
        .await
        .cookie()
        .expect("cookie");
    app.advance(11.0);
    let r = app.verify(Some(&cookie), &code).await;
    r.assert_error(400, "OTP:INVALID_COOKIE");
    assert_cleared_like_production(&r);
    let r = app
        .create_json(Some(&cookie), &json!({"email": "bob@example.com"}))
        .await;
    r.assert_error(400, "OTP:INVALID_COOKIE");
    assert_cleared_like_production(&r);
    app.advance(30.0);
    let r = app.resend(Some(&cookie)).await;
    r.assert_error(400, "OTP:INVALID_COOKIE");
    assert_cleared_like_production(&r);
    // An authentic but malformed list.
    let forged = app.forge(b"not a token list").await;
    for r in [
        app.verify(Some(&forged), &code).await,
        app.resend(Some(&forged)).await,
        app.create_json(Some(&forged), &json!({"email": "bob@example.com"}))
            .await,
    ] {
        r.assert_error(400, "OTP:INVALID_COOKIE");
        assert_cleared_like_production(&r);
    }
    // The live session is untouched by all that.
    let ok = app.verify(Some(&next), &code).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_cleared_like_production(&ok);
}

#[tokio::test]
async fn production_answers_like_development_apart_from_cookie_attributes() {
    let dev = TestApp::spawn().await;
    let prod = TestApp::spawn_with(&PRODUCTION).await;
    let mut outcomes = Vec::new();
    for app in [&dev, &prod] {
        let (c0, code) = app.session("ann@example.com").await;
        let wrong = app.wrong_code(&code);
        let r1 = app.verify(Some(&c0), &wrong).await;
        let c1 = r1.cookie().expect("c");
        let r2 = app.resend(Some(&c1)).await;
        let r3 = app.verify(Some(&c0), &code).await;
        let r4 = app.verify(Some(&c1), &code).await;
        let r5 = app.verify(Some(&c1), &code).await;
        outcomes.push(
            [&r1, &r2, &r3, &r4, &r5]
                .iter()
                .map(|r| (r.status, r.text.clone(), r.clears_cookie()))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(outcomes[0], outcomes[1]);
}
