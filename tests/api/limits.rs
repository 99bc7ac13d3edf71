//! Abuse limits at their defaults, each at its boundary, through the real server:
//! budgets per address that no new session or IP resets, per client network,
//! per phone prefix, the pumping breaker, and the client address behind proxies.

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{Reply, TestApp, iso_at};

/// The test server's peer address, trusted as a reverse proxy where a test needs
/// many client addresses.
const PROXY: (&str, &str) = ("OTP_TRUSTED_PROXIES", "127.0.0.1");

/// A create for `email` as if from `client` (an `X-Forwarded-For` entry).
async fn create_from(app: &TestApp, email: &str, client: &str) -> Reply {
    app.send(
        app.post("/api/otp/create", None)
            .header("x-forwarded-for", client)
            .header("content-type", "application/json")
            .body(json!({ "email": email }).to_string()),
    )
    .await
}

/// A create for a phone number (`OTP_CREDENTIAL=phone`).
async fn create_phone(app: &TestApp, number: &str) -> Reply {
    app.create_json(None, &json!({ "phone": number })).await
}

/// A verify of `otp` as if from `client`.
async fn verify_from(app: &TestApp, cookie: &str, otp: &str, client: &str) -> Reply {
    app.send(
        app.post("/api/otp/verify", Some(cookie))
            .header("x-forwarded-for", client)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("otp={otp}")),
    )
    .await
}

/// Asserts a limit refusal: 429, the JSON shape, `Retry-After` in seconds, the same
/// instant as `retryAfter`, and the client's cookie left alone.
#[track_caller]
fn assert_limited(r: &Reply, retry_after_seconds: u64) {
    r.assert_error_keeping(429, "OTP:TOO_MANY_REQUESTS");
    assert_eq!(
        r.header("retry-after").as_deref(),
        Some(retry_after_seconds.to_string().as_str()),
        "Retry-After"
    );
    assert!(r.json()["retryAfter"].is_string(), "retryAfter: {}", r.text);
}

/// A verify refused by the failure budget: 429 with `Retry-After`, and the next
/// cookie (the request spent the old one's single-use ID).
#[track_caller]
fn assert_verify_limited(r: &Reply, retry_after_seconds: u64) {
    r.assert_error(429, "OTP:TOO_MANY_REQUESTS");
    assert_eq!(
        r.header("retry-after").as_deref(),
        Some(retry_after_seconds.to_string().as_str())
    );
    assert!(r.cookie().is_some(), "the renewed cookie");
}

#[tokio::test]
async fn five_codes_per_address_per_ten_minutes_whatever_the_session() {
    let app = TestApp::spawn_limited(&[
        ("OTP_RESEND_BLOCK_SECONDS", "0"),
        ("OTP_ALLOW_ONLY_ONE_RESENDING", "false"),
    ])
    .await;
    // Four fresh sessions and one resend: five sends.
    let mut cookie = String::new();
    for _ in 0..4 {
        cookie = app.session("victim@example.com").await.0;
    }
    let r = app.resend(Some(&cookie)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let cookie = r.cookie().unwrap();
    assert_eq!(app.sent_count(), 5);
    // The sixth, by a new session or by a resend, is refused and sends nothing.
    let r = app
        .create_json(None, &json!({ "email": "victim@example.com" }))
        .await;
    assert_limited(&r, 600);
    assert_eq!(r.json()["retryAfter"], iso_at(600.0));
    assert_limited(&app.resend(Some(&cookie)).await, 600);
    // Another address is not affected; the case of the address does not matter.
    app.session("other@example.com").await;
    assert_limited(
        &app.create_json(None, &json!({ "email": "VICTIM@example.com" }))
            .await,
        600,
    );
    assert_eq!(app.sent_count(), 6);
    // The budget returns when the first send leaves the window, not before.
    app.advance(599.0);
    assert_limited(
        &app.create_json(None, &json!({ "email": "victim@example.com" }))
            .await,
        1,
    );
    app.advance(1.0);
    app.session("victim@example.com").await;
    assert_eq!(app.sent_count(), 7);
}

#[tokio::test]
async fn fresh_sessions_from_many_addresses_share_one_guess_budget_per_address() {
    let app = TestApp::spawn_limited(&[PROXY, ("OTP_INVALID_BLOCK_SECONDS", "0")]).await;
    let email = "target@example.com";
    // Each session from its own client address; 3 guesses per code.
    let mut wrong_answers = 0;
    let mut refused_at = None;
    for k in 0..4 {
        let client = format!("198.51.100.{k}");
        let r = create_from(&app, email, &client).await;
        assert_eq!(r.status, 200, "session {k}: {}", r.text);
        let mut cookie = r.cookie().unwrap();
        let code = app.sender.code_for(&json!({ "email": email }).to_string());
        for _ in 0..3 {
            let r = verify_from(&app, &cookie, &app.wrong_code(&code), &client).await;
            if r.status == 429 {
                refused_at.get_or_insert(wrong_answers);
                // The refusal renews the cookie (its ID was spent), same content:
                // even the right code is refused once the budget is spent.
                assert_verify_limited(&r, 3600);
                let right = verify_from(&app, &r.cookie().unwrap(), &code, &client).await;
                assert_verify_limited(&right, 3600);
                break;
            }
            assert_eq!(r.status, 403, "{}", r.text);
            wrong_answers += 1;
            match r.cookie() {
                Some(next) => cookie = next,
                None => break,
            }
        }
    }
    assert_eq!(wrong_answers, 10, "the failure budget is 10 per hour");
    assert_eq!(refused_at, Some(10));
    // New codes are not sent either, from any address.
    let sent = app.sent_count();
    assert_limited(&create_from(&app, email, "203.0.113.9").await, 3600);
    assert_eq!(app.sent_count(), sent);
    // An hour after the first failure, the address gets a fresh budget.
    app.advance(3600.0);
    let r = create_from(&app, email, "203.0.113.9").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let code = app.sender.code_for(&json!({ "email": email }).to_string());
    let r = verify_from(&app, &r.cookie().unwrap(), &code, "203.0.113.9").await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn thirty_two_parallel_creates_for_one_address_send_at_most_five() {
    let app = TestApp::spawn_limited(&[PROXY]).await;
    let replies = join_all((0..32).map(|i| {
        let client = format!("192.0.2.{i}");
        let app = &app;
        async move { create_from(app, "burst@example.com", &client).await }
    }))
    .await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 5, "exactly the budget gets through");
    for r in replies.iter().filter(|r| r.status != 200) {
        r.assert_error_keeping(429, "OTP:TOO_MANY_REQUESTS");
    }
    assert_eq!(app.sent_count(), 5);
}

#[tokio::test]
async fn thirty_creates_per_client_per_five_minutes_and_ipv6_counts_per_64() {
    let app = TestApp::spawn_limited(&[PROXY]).await;
    for n in 0..30 {
        let r = create_from(&app, &format!("u{n}@example.com"), "198.51.100.7").await;
        assert_eq!(r.status, 200, "create {n}: {}", r.text);
    }
    let r = create_from(&app, "u30@example.com", "198.51.100.7").await;
    assert_limited(&r, 300);
    assert_eq!(app.sent_count(), 30);
    // A resend from that client is a create request too.
    let cookie = app.session("fresh@example.com").await.0;
    let r = app
        .send(
            app.post("/api/otp/resend", Some(&cookie))
                .header("x-forwarded-for", "198.51.100.7"),
        )
        .await;
    assert_limited(&r, 300);
    // Another client is not affected.
    assert_eq!(
        create_from(&app, "u31@example.com", "198.51.100.8")
            .await
            .status,
        200
    );
    // IPv6: one /64 is one client.
    for n in 0..30 {
        let client = format!("2001:db8:0:1::{:x}", n + 1);
        assert_eq!(
            create_from(&app, &format!("v{n}@example.com"), &client)
                .await
                .status,
            200
        );
    }
    assert_limited(
        &create_from(&app, "v30@example.com", "2001:db8:0:1:ffff::1").await,
        300,
    );
    assert_eq!(
        create_from(&app, "v31@example.com", "2001:db8:0:2::1")
            .await
            .status,
        200
    );
    app.advance(300.0);
    assert_eq!(
        create_from(&app, "u32@example.com", "198.51.100.7")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn three_hundred_sixty_verifies_per_client_per_hour() {
    let app = TestApp::spawn_limited(&[]).await;
    let code = "a".repeat(app.config.code_format.length());
    let forged = "x".repeat(40);
    for n in 0..360 {
        let r = app.verify(Some(&forged), &code).await;
        assert_eq!(r.status, 400, "verify {n}: {}", r.text);
    }
    let r = app.verify(Some(&forged), &code).await;
    assert_limited(&r, 3600);
    app.advance(3600.0);
    app.verify(Some(&forged), &code)
        .await
        .assert_error(400, "OTP:INVALID_COOKIE");
}

#[tokio::test]
async fn a_forwarded_for_from_an_untrusted_peer_is_ignored() {
    // No trusted proxy: every request is 127.0.0.1, whatever the header claims.
    let app = TestApp::spawn_limited(&[]).await;
    for n in 0..30 {
        let r = create_from(
            &app,
            &format!("s{n}@example.com"),
            &format!("203.0.113.{n}"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_limited(
        &create_from(&app, "s30@example.com", "198.51.100.200").await,
        300,
    );
    // Behind a trusted proxy, a spoofed entry on the left is not the client either:
    // the rightmost untrusted address is.
    let app = TestApp::spawn_limited(&[PROXY]).await;
    for n in 0..30 {
        let chain = format!("203.0.113.{n}, 192.0.2.50");
        let r = create_from(&app, &format!("t{n}@example.com"), &chain).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_limited(
        &create_from(&app, "t30@example.com", "10.9.9.9, 192.0.2.50").await,
        300,
    );
}

#[tokio::test]
async fn a_global_send_ceiling_counts_every_send() {
    let app = TestApp::spawn_limited(&[PROXY, ("OTP_LIMIT_SENDS_GLOBAL", "3/1m")]).await;
    for n in 0..3 {
        let r = create_from(&app, &format!("g{n}@example.com"), &format!("192.0.2.{n}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_limited(&create_from(&app, "g3@example.com", "192.0.2.3").await, 60);
    app.advance(60.0);
    assert_eq!(
        create_from(&app, "g3@example.com", "192.0.2.3")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn phone_numbers_outside_the_allowed_countries_are_refused() {
    let app = TestApp::spawn_limited(&[
        ("OTP_CREDENTIAL", "phone"),
        ("OTP_PHONE_COUNTRIES", "34,351"),
    ])
    .await;
    let r = create_phone(&app, "+447911123456").await;
    r.assert_error_keeping(400, "CREDENTIAL:UNSUPPORTED_COUNTRY");
    assert_eq!(app.sent_count(), 0);
    assert_eq!(create_phone(&app, "+34612345678").await.status, 200);
    assert_eq!(create_phone(&app, "+351912345678").await.status, 200);
    assert_eq!(app.sent_count(), 2);
}

#[tokio::test]
async fn fifty_sends_per_phone_prefix_per_hour() {
    let app = TestApp::spawn_limited(&[
        ("OTP_CREDENTIAL", "phone"),
        ("OTP_PUMPING_MIN_SENDS", "off"),
        ("OTP_LIMIT_CREATES_PER_IP", "off"),
    ])
    .await;
    for n in 0..50 {
        let r = create_phone(&app, &format!("+34612{n:06}")).await;
        assert_eq!(r.status, 200, "send {n}: {}", r.text);
    }
    assert_limited(&create_phone(&app, "+34612000050").await, 3600);
    // The next prefix is another budget.
    assert_eq!(create_phone(&app, "+34613000000").await.status, 200);
    assert_eq!(app.sent_count(), 51);
}

#[tokio::test]
async fn a_prefix_whose_codes_are_not_verified_is_paused_for_an_hour() {
    let app = TestApp::spawn_limited(&[
        ("OTP_CREDENTIAL", "phone"),
        ("OTP_LIMIT_CREATES_PER_IP", "off"),
    ])
    .await;
    // 20 sends, 1 verified (5 %): the 21st trips the breaker.
    for n in 0..20 {
        let r = create_phone(&app, &format!("+34622{n:06}")).await;
        assert_eq!(r.status, 200, "send {n}: {}", r.text);
        if n == 0 {
            let code = app.sender.last_code();
            let v = app.verify(r.cookie().as_deref(), &code).await;
            assert_eq!(v.status, 200, "{}", v.text);
        }
    }
    assert_limited(&create_phone(&app, "+34622000020").await, 3600);
    // Paused for the hour, whatever happens meanwhile; other prefixes go on.
    app.advance(1800.0);
    assert_limited(&create_phone(&app, "+34622000021").await, 1800);
    assert_eq!(create_phone(&app, "+34623000000").await.status, 200);
    app.advance(1800.0);
    assert_eq!(create_phone(&app, "+34622000021").await.status, 200);

    // A prefix whose people verify (2 of 20, 10 %) keeps sending.
    for n in 0..20 {
        let r = create_phone(&app, &format!("+34632{n:06}")).await;
        assert_eq!(r.status, 200, "send {n}: {}", r.text);
        if n < 2 {
            let code = app.sender.last_code();
            assert_eq!(app.verify(r.cookie().as_deref(), &code).await.status, 200);
        }
    }
    assert_eq!(create_phone(&app, "+34632000020").await.status, 200);
}

#[tokio::test]
async fn limits_off_let_everything_through() {
    let app = TestApp::spawn().await;
    for _ in 0..12 {
        app.session("often@example.com").await;
    }
    assert_eq!(app.sent_count(), 12);
}

/// A limit store that cannot be reached.
#[derive(Debug)]
struct Unreachable;

#[async_trait::async_trait]
impl secure_otp_server::plugin::LimitStore for Unreachable {
    async fn hit(
        &self,
        _: &secure_otp_server::plugin::limit_store::LimitKey,
        _: secure_otp_server::plugin::limit_store::Rule,
        _: bool,
        _: secure_otp_server::Timestamp,
    ) -> Result<secure_otp_server::plugin::limit_store::Hit, secure_otp_server::error::BackendError>
    {
        Err(secure_otp_server::error::BackendError::Unavailable(
            "limit store down".into(),
        ))
    }

    async fn undo(
        &self,
        _: &secure_otp_server::plugin::limit_store::LimitKey,
        _: secure_otp_server::plugin::limit_store::Receipt,
    ) -> Result<(), secure_otp_server::error::BackendError> {
        Ok(())
    }
}

#[tokio::test]
async fn limits_that_cannot_be_checked_refuse_instead_of_letting_through() {
    use std::sync::Arc;

    use secure_otp_server::testing::RecordingSender;
    use secure_otp_server::{AppState, Clock, Config, Plugins, SystemClock, router};

    let config = Config::development();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut plugins = Plugins::from_config(&config, &clock).unwrap();
    let sender = Arc::new(RecordingSender::new());
    plugins.sender = sender.clone();
    plugins.limits = Arc::new(Unreachable);
    let addr = crate::helpers::serve(router(AppState::new(&config, plugins, clock))).await;
    let client = reqwest::Client::new();
    for (path, body, kind) in [
        (
            "create",
            r#"{"email":"a@example.com"}"#.to_owned(),
            "application/json",
        ),
        (
            "verify",
            "otp=aaaaaaaaaa".to_owned(),
            "application/x-www-form-urlencoded",
        ),
        ("resend", String::new(), "text/plain"),
    ] {
        let r = Reply::of(
            client
                .post(format!("http://{addr}/api/otp/{path}"))
                .header("content-type", kind)
                .body(body),
        )
        .await;
        r.assert_error(503, "SERVER");
        assert!(r.header("retry-after").is_some());
    }
    assert!(sender.sent().is_empty(), "nothing is sent unchecked");
}
