//! Single-use cookies: every superseded cookie is refused, and N concurrent requests
//! with one cookie let exactly one through (SPEC A6 fix 3, issue 2 item 4).

use std::sync::Arc;

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{Reply, TestApp};

const N: usize = 32;

const ANN: &str = r#"{"email":"ann@example.com"}"#;
const BOB: &str = r#"{"email":"bob@example.com"}"#;

/// A cookie the session held, and the code that was current for it.
struct Held {
    step: &'static str,
    cookie: String,
    code: String,
}

#[tokio::test]
async fn every_superseded_cookie_is_refused() {
    let app = TestApp::spawn().await;
    let mut held = Vec::new();
    let (c0, ann1) = app.session("ann@example.com").await;
    held.push(Held {
        step: "create",
        cookie: c0.clone(),
        code: ann1.clone(),
    });
    let r = app.verify(Some(&c0), &app.wrong_code(&ann1)).await;
    r.assert_error(403, "OTP:INCORRECT");
    let c1 = r.cookie().expect("cookie");
    held.push(Held {
        step: "wrong verify",
        cookie: c1.clone(),
        code: ann1.clone(),
    });
    app.advance(30.0);
    let r = app.resend(Some(&c1)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let c2 = r.cookie().expect("cookie");
    let ann2 = app.sender.code_for(ANN);
    held.push(Held {
        step: "resend",
        cookie: c2.clone(),
        code: ann2.clone(),
    });
    let r = app
        .create_json(Some(&c2), &json!({"email": "bob@example.com"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let c3 = r.cookie().expect("cookie");
    let bob = app.sender.code_for(BOB);
    held.push(Held {
        step: "add credential",
        cookie: c3.clone(),
        code: bob.clone(),
    });
    let r = app
        .create_json(Some(&c3), &json!({"email": "ann@example.com"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let c4 = r.cookie().expect("cookie");
    held.push(Held {
        step: "switch",
        cookie: c4.clone(),
        code: ann2.clone(),
    });
    let r = app
        .create_json(Some(&c4), &json!({"email": "bob@example.com"}))
        .await;
    let live = r.cookie().expect("cookie");

    // Past the race window a superseded cookie is simply stale.
    app.advance(11.0);
    let sent = app.sent_count();
    for h in &held {
        // With the code that was right for it, on every endpoint.
        let r = app.verify(Some(&h.cookie), &h.code).await;
        assert_eq!(
            (r.status, r.error()),
            (400, "OTP:INVALID_COOKIE".to_owned()),
            "verify replay after {}: {}",
            h.step,
            r.text
        );
        assert!(r.clears_cookie(), "after {}", h.step);
        let r = app.resend(Some(&h.cookie)).await;
        assert_ne!(r.status, 200, "resend replay after {}: {}", h.step, r.text);
        let r = app
            .create_json(Some(&h.cookie), &json!({"email": "carl@example.com"}))
            .await;
        r.assert_error_clearing(400, "OTP:INVALID_COOKIE");
        let r = app
            .create_json(Some(&h.cookie), &json!({"email": "ann@example.com"}))
            .await;
        r.assert_error_clearing(400, "OTP:INVALID_COOKIE");
    }
    assert_eq!(app.final_action.runs(), 0);
    assert_eq!(app.sent_count(), sent, "no replay sent anything");

    // The live cookie was not disturbed by the replays; its success is single-use too.
    let ok = app.verify(Some(&live), &bob).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json()["credential"], BOB);
    app.verify(Some(&live), &bob)
        .await
        .assert_error_keeping(409, "OTP:CONFLICT");
    app.advance(11.0);
    app.verify(Some(&live), &bob)
        .await
        .assert_error_clearing(400, "OTP:INVALID_COOKIE");
    assert_eq!(app.final_action.runs(), 1);
}

#[tokio::test]
async fn a_superseded_cookie_past_the_resend_block_cannot_resend() {
    let app = TestApp::spawn().await;
    let (c0, code) = app.session("ann@example.com").await;
    let c1 = app
        .verify(Some(&c0), &app.wrong_code(&code))
        .await
        .cookie()
        .expect("cookie");
    app.advance(30.0);
    app.resend(Some(&c0))
        .await
        .assert_error_clearing(400, "OTP:INVALID_COOKIE");
    assert_eq!(app.sent_count(), 1);
    let r = app.resend(Some(&c1)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

async fn storm<F, Fut>(n: usize, f: F) -> Vec<Reply>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Reply> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    join_all(handles)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect()
}

/// The replies that won the race for the cookie's ID. Every loser lost it moments
/// ago: `409 OTP:CONFLICT` without `Set-Cookie`, so it cannot delete the winner's
/// cookie in a browser that applies answers in arrival order.
fn not_invalid_cookie(replies: &[Reply]) -> Vec<&Reply> {
    for r in replies {
        assert!(r.status < 500, "{} {}", r.status, r.text);
        if r.status == 409 {
            r.assert_error_keeping(409, "OTP:CONFLICT");
        }
    }
    replies.iter().filter(|r| r.status != 409).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_32_concurrent_wrong_verifies_one_counts_and_uses_one_attempt() {
    let app = Arc::new(TestApp::spawn().await);
    let (cookie, code) = app.session("ann@example.com").await;
    let wrong = app.wrong_code(&code);
    let replies = storm(N, |_| {
        let (app, cookie, wrong) = (app.clone(), cookie.clone(), wrong.clone());
        async move { app.verify(Some(&cookie), &wrong).await }
    })
    .await;
    let winners = not_invalid_cookie(&replies);
    assert_eq!(winners.len(), 1, "exactly one proceeds");
    let winner = winners[0];
    winner.assert_error(403, "OTP:INCORRECT");
    assert!(
        winner.json().get("otpBlock").is_none(),
        "first attempt only"
    );
    // One attempt was used: the next wrong code is the second (blocked), not a later one.
    let next = app
        .verify(Some(&winner.cookie().expect("cookie")), &wrong)
        .await;
    next.assert_error(403, "OTP:INCORRECT");
    assert!(next.json()["otpBlock"].is_string(), "{}", next.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_32_concurrent_verifies_mixing_right_and_wrong_codes_one_counts() {
    for _round in 0..3 {
        let app = Arc::new(TestApp::spawn().await);
        let (cookie, code) = app.session("ann@example.com").await;
        let wrong = app.wrong_code(&code);
        let replies = storm(N, |i| {
            let (app, cookie) = (app.clone(), cookie.clone());
            let otp = if i % 2 == 0 {
                code.clone()
            } else {
                wrong.clone()
            };
            async move { app.verify(Some(&cookie), &otp).await }
        })
        .await;
        let winners = not_invalid_cookie(&replies);
        assert_eq!(winners.len(), 1, "exactly one proceeds");
        let successes = replies.iter().filter(|r| r.status == 200).count();
        assert!(successes <= 1);
        assert_eq!(
            app.final_action.runs(),
            successes,
            "final action at most once"
        );
        if successes == 0 {
            let w = winners[0];
            w.assert_error(403, "OTP:INCORRECT");
            assert!(w.json().get("otpBlock").is_none(), "one attempt used");
            let ok = app.verify(Some(&w.cookie().expect("c")), &code).await;
            assert_eq!(ok.status, 200, "{}", ok.text);
            assert_eq!(app.final_action.runs(), 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_32_concurrent_right_verifies_the_final_action_runs_once() {
    let app = Arc::new(TestApp::spawn().await);
    let (cookie, code) = app.session("ann@example.com").await;
    let replies = storm(N, |_| {
        let (app, cookie, code) = (app.clone(), cookie.clone(), code.clone());
        async move { app.verify(Some(&cookie), &code).await }
    })
    .await;
    let winners = not_invalid_cookie(&replies);
    assert_eq!(winners.len(), 1);
    assert_eq!(winners[0].status, 200, "{}", winners[0].text);
    assert_eq!(app.final_action.runs(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_32_concurrent_resends_one_counts_and_one_code_is_sent() {
    let app = Arc::new(TestApp::spawn().await);
    let (cookie, _) = app.session("ann@example.com").await;
    app.advance(30.0);
    let replies = storm(N, |_| {
        let (app, cookie) = (app.clone(), cookie.clone());
        async move { app.resend(Some(&cookie)).await }
    })
    .await;
    let winners = not_invalid_cookie(&replies);
    assert_eq!(winners.len(), 1);
    assert_eq!(winners[0].status, 200, "{}", winners[0].text);
    assert_eq!(app.sent_count(), 2, "at most one code sent by the storm");
    let ok = app
        .verify(
            Some(&winners[0].cookie().expect("c")),
            &app.sender.last_code(),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_32_concurrent_creates_adding_a_credential_one_counts() {
    let app = Arc::new(TestApp::spawn().await);
    let (cookie, _) = app.session("ann@example.com").await;
    let replies = storm(N, |i| {
        let (app, cookie) = (app.clone(), cookie.clone());
        async move {
            app.create_json(
                Some(&cookie),
                &json!({"email": format!("u{i}@example.com")}),
            )
            .await
        }
    })
    .await;
    let winners = not_invalid_cookie(&replies);
    assert_eq!(winners.len(), 1);
    assert_eq!(winners[0].status, 200, "{}", winners[0].text);
    assert_eq!(app.sent_count(), 2, "one code for the one added credential");
    let (added, code) = app.sender.sent().last().cloned().expect("sent");
    let ok = app
        .verify(Some(&winners[0].cookie().expect("c")), &code)
        .await;
    assert_eq!(ok.json()["credential"], added);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_32_concurrent_switches_to_a_pending_credential_one_counts() {
    let app = Arc::new(TestApp::spawn().await);
    let (cookie, _) = app.session("ann@example.com").await;
    let cookie = app
        .create_json(Some(&cookie), &json!({"email": "bob@example.com"}))
        .await
        .cookie()
        .expect("cookie");
    let replies = storm(N, |_| {
        let (app, cookie) = (app.clone(), cookie.clone());
        async move {
            app.create_json(Some(&cookie), &json!({"email": "ann@example.com"}))
                .await
        }
    })
    .await;
    assert_eq!(not_invalid_cookie(&replies).len(), 1);
    assert_eq!(app.sent_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_fresh_sessions_share_one_key() {
    let app = Arc::new(TestApp::spawn().await);
    let replies = storm(N, |i| {
        let app = app.clone();
        async move {
            app.create_json(None, &json!({"email": format!("u{i}@example.com")}))
                .await
        }
    })
    .await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(
        app.kms.key_ids().len(),
        1,
        "one key created, not one per request"
    );
    let first = crate::helpers::key_id_of(&replies[0].cookie().expect("c"));
    for r in &replies {
        assert_eq!(crate::helpers::key_id_of(&r.cookie().expect("c")), first);
    }
}
