//! `Idempotency-Key` on create and resend (issue 18, item 3): a repeat gets the
//! first answer and sends nothing; another body is refused; concurrent repeats
//! send once; one client's key never replays another client's answer.

use futures_util::future::join_all;

use crate::helpers::{Reply, TestApp};

fn create(app: &TestApp, key: &str, email: &str) -> reqwest::RequestBuilder {
    app.post("/api/otp/create", None)
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(serde_json::json!({ "email": email }).to_string())
}

#[tokio::test]
async fn a_repeat_gets_the_first_answer_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let first = app.send(create(&app, "k-1", "ann@example.com")).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert!(first.header("idempotent-replayed").is_none());
    app.advance(5.0);
    let again = app.send(create(&app, "k-1", "ann@example.com")).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.text, first.text);
    assert_eq!(again.set_cookies(), first.set_cookies());
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(app.sent_count(), 1);
    // The replayed cookie is the live one: it verifies.
    let code = app.sender.last_code();
    assert_eq!(
        app.verify(again.cookie().as_deref(), &code).await.status,
        200
    );
    // Ten minutes later the key is forgotten: a new session, a new code.
    app.advance(600.0);
    assert_eq!(
        app.send(create(&app, "k-1", "ann@example.com"))
            .await
            .status,
        200
    );
    assert_eq!(app.sent_count(), 2);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.send(create(&app, "k-2", "bob@example.com"))
            .await
            .status,
        200
    );
    app.send(create(&app, "k-2", "eve@example.com"))
        .await
        .assert_error(422, "REQUEST:IDEMPOTENCY_MISMATCH");
    assert_eq!(app.sent_count(), 1);
    for bad in ["", &"x".repeat(65), "sp ace"] {
        app.send(create(&app, bad, "bob@example.com"))
            .await
            .assert_error(400, "REQUEST:INVALID_IDEMPOTENCY_KEY");
    }
}

#[tokio::test]
async fn sixteen_concurrent_repeats_send_one_code() {
    let app = TestApp::spawn().await;
    let replies: Vec<Reply> =
        join_all((0..16).map(|_| app.send(create(&app, "k-3", "cat@example.com")))).await;
    assert_eq!(app.sent_count(), 1, "one code for one key");
    let cookies: Vec<_> = replies.iter().map(Reply::cookie).collect();
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert!(
        cookies.windows(2).all(|w| w[0] == w[1]),
        "one session: {cookies:?}"
    );
}

#[tokio::test]
async fn another_client_with_the_same_key_gets_its_own_answer() {
    let app = TestApp::spawn_with(&[("OTP_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let a = app
        .send(create(&app, "k-4", "dan@example.com").header("x-forwarded-for", "198.51.100.1"))
        .await;
    let b = app
        .send(create(&app, "k-4", "dan@example.com").header("x-forwarded-for", "198.51.100.2"))
        .await;
    assert_eq!((a.status, b.status), (200, 200));
    assert_ne!(a.cookie(), b.cookie(), "no session cookie crosses clients");
    assert!(b.header("idempotent-replayed").is_none());
    assert_eq!(app.sent_count(), 2);
}

#[tokio::test]
async fn a_repeated_resend_sends_once() {
    let app = TestApp::spawn_with(&[
        ("OTP_RESEND_BLOCK_SECONDS", "0"),
        ("OTP_ALLOW_ONLY_ONE_RESENDING", "false"),
    ])
    .await;
    let (cookie, _) = app.session("eli@example.com").await;
    let resend = || {
        app.post("/api/otp/resend", Some(&cookie))
            .header("idempotency-key", "r-1")
    };
    let first = app.send(resend()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = app.send(resend()).await;
    assert_eq!(
        (again.status, again.text.as_str()),
        (200, first.text.as_str())
    );
    assert_eq!(app.sent_count(), 2, "the create and one resend");
}

#[tokio::test]
async fn refusals_a_retry_could_fix_are_not_kept() {
    let app = TestApp::spawn().await;
    app.sender.set_mode(crate::helpers::SendMode::Fail);
    let failed = app.send(create(&app, "k-5", "fay@example.com")).await;
    assert_eq!(failed.status, 503);
    app.sender.set_mode(crate::helpers::SendMode::Deliver);
    let retried = app.send(create(&app, "k-5", "fay@example.com")).await;
    assert_eq!(retried.status, 200, "the retry runs: {}", retried.text);
    assert_eq!(app.sent_count(), 1);
}

#[tokio::test]
async fn the_query_is_part_of_the_request() {
    let app = TestApp::spawn_with(&[("OTP_PURPOSES", "login,step_up")]).await;
    let with = |purpose: &str| {
        app.post(&format!("/api/otp/create?purpose={purpose}"), None)
            .header("idempotency-key", "k-6")
            .header("content-type", "application/json")
            .body(r#"{"email":"gus@example.com"}"#)
    };
    assert_eq!(app.send(with("login")).await.status, 200);
    app.send(with("step_up"))
        .await
        .assert_error(422, "REQUEST:IDEMPOTENCY_MISMATCH");
}
