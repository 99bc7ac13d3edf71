//! The counters in every answer about a session, `GET /api/otp/status` and
//! `POST /api/otp/cancel` (issue 18, items 1, 2 and 5).

use crate::helpers::{Reply, TestApp, iso_at};

async fn status(app: &TestApp, cookie: &str) -> Reply {
    app.send(
        app.client
            .get(format!("{}/api/otp/status", app.base))
            .header("cookie", format!("{}={cookie}", app.cookie_name)),
    )
    .await
}

async fn cancel(app: &TestApp, cookie: &str) -> Reply {
    app.send(app.post("/api/otp/cancel", Some(cookie))).await
}

/// The counters of a body: attempts, resends, resend time, expiry.
fn counters(r: &Reply) -> (u64, Option<u64>, Option<String>, String) {
    let b = r.json();
    (
        b["attemptsLeft"].as_u64().expect("attemptsLeft"),
        b["resendsLeft"].as_u64(),
        b["resendAfter"].as_str().map(str::to_owned),
        b["expires"].as_str().expect("expires").to_owned(),
    )
}

#[tokio::test]
async fn the_counters_follow_a_whole_sequence() {
    // The defaults: 3 attempts, a 20 s block at 1 left, one resend after 30 s, 180 s.
    let app = TestApp::spawn().await;
    let created = app
        .create_json(None, &serde_json::json!({"email": "ann@example.com"}))
        .await;
    assert_eq!(
        counters(&created),
        (3, Some(1), Some(iso_at(30.0)), iso_at(180.0))
    );
    let code = app.sender.last_code();
    let wrong = app.wrong_code(&code);

    let first = app
        .verify(Some(&created.cookie().expect("cookie")), &wrong)
        .await;
    first.assert_error(403, "OTP:INCORRECT");
    assert_eq!(
        counters(&first),
        (2, Some(1), Some(iso_at(30.0)), iso_at(180.0))
    );

    let second = app
        .verify(Some(&first.cookie().expect("cookie")), &wrong)
        .await;
    second.assert_error(403, "OTP:INCORRECT");
    assert_eq!(second.json()["otpBlock"], iso_at(20.0));
    assert_eq!(counters(&second).0, 1);
    let cookie = second.cookie().expect("cookie");

    let s = status(&app, &cookie).await;
    assert_eq!(
        (s.status, s.json()["state"].as_str()),
        (200, Some("blocked"))
    );
    assert_eq!(s.json()["credentials"], 1);
    assert_eq!(
        counters(&s),
        (1, Some(1), Some(iso_at(30.0)), iso_at(180.0))
    );
    let blocked = app.verify(Some(&cookie), &code).await;
    blocked.assert_error(403, "OTP:VERIFICATION_NOT_ALLOWED");
    assert_eq!(counters(&blocked).0, 1);

    app.advance(30.0);
    let resent = app.send(app.post("/api/otp/resend", Some(&cookie))).await;
    assert_eq!(resent.status, 200, "{}", resent.text);
    assert_eq!(counters(&resent), (1, Some(0), None, iso_at(210.0)));
    let code = app.sender.last_code();

    let last = app
        .verify(
            Some(&resent.cookie().expect("cookie")),
            &app.wrong_code(&code),
        )
        .await;
    last.assert_error(403, "OTP:TOO_MANY_ATTEMPTS");
    assert_eq!(counters(&last).0, 0);
    let s = status(&app, &last.cookie().expect("cookie")).await;
    assert_eq!(s.json()["state"], "locked");
    assert_eq!(counters(&s).0, 0);
}

#[tokio::test]
async fn unlimited_resends_are_not_counted() {
    let app = TestApp::spawn_with(&[("OTP_ALLOW_ONLY_ONE_RESENDING", "false")]).await;
    let created = app
        .create_json(None, &serde_json::json!({"email": "bob@example.com"}))
        .await;
    let (attempts, resends, after, _) = counters(&created);
    assert_eq!((attempts, resends, after), (3, None, Some(iso_at(30.0))));
}

#[tokio::test]
async fn status_never_spends_the_cookie_and_knows_expiry() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("carol@example.com").await;
    for _ in 0..3 {
        let s = status(&app, &cookie).await;
        assert_eq!(s.status, 200, "{}", s.text);
        assert_eq!(s.json()["state"], "pending");
        assert!(s.set_cookies().is_empty(), "status sets no cookie");
    }
    assert_eq!(app.verify(Some(&cookie), &code).await.status, 200);
    status(&app, &cookie)
        .await
        .assert_error(400, "OTP:INVALID_COOKIE");

    let (cookie, _) = app.session("dan@example.com").await;
    app.advance(180.0);
    assert_eq!(status(&app, &cookie).await.json()["state"], "expired");
    let missing = app
        .send(app.client.get(format!("{}/api/otp/status", app.base)))
        .await;
    missing.assert_error(400, "OTP:INVALID_COOKIE");
    status(&app, "junk")
        .await
        .assert_error(400, "OTP:INVALID_COOKIE");
}

#[tokio::test]
async fn a_cancelled_session_is_invalid_everywhere_at_once() {
    let app = TestApp::spawn_with(&[("OTP_RESEND_BLOCK_SECONDS", "0")]).await;
    let (cookie, code) = app.session("erin@example.com").await;
    let done = cancel(&app, &cookie).await;
    assert_eq!(done.status, 204);
    assert!(done.clears_cookie());
    app.verify(Some(&cookie), &code)
        .await
        .assert_error_clearing(400, "OTP:INVALID_COOKIE");
    app.send(app.post("/api/otp/resend", Some(&cookie)))
        .await
        .assert_error_clearing(400, "OTP:INVALID_COOKIE");
    status(&app, &cookie)
        .await
        .assert_error(400, "OTP:INVALID_COOKIE");
    cancel(&app, &cookie)
        .await
        .assert_error_clearing(400, "OTP:INVALID_COOKIE");
}
