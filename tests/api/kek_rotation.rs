//! Key rotation (SPEC A6 fix 9): one new key per rotation period, new cookies under the
//! newest key, old cookies readable until their key's retention ends.

use serde_json::json;

use crate::helpers::{TestApp, key_id_of};

const ROTATION: [(&str, &str); 1] = [("OTP_KEK_ROTATION_SECONDS", "60")];

#[tokio::test]
async fn a_new_key_seals_new_cookies_after_the_rotation_period() {
    let app = TestApp::spawn_with(&ROTATION).await;
    let (first, _) = app.session("ann@example.com").await;
    let (second, _) = app.session("bob@example.com").await;
    assert_eq!(
        key_id_of(&first),
        key_id_of(&second),
        "same period, same key"
    );
    assert_eq!(app.kms.key_ids().len(), 1);
    app.advance(61.0);
    let (third, _) = app.session("carl@example.com").await;
    assert_ne!(key_id_of(&third), key_id_of(&first), "a new key id prefix");
    let ids = app.kms.key_ids();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[1].as_bytes().to_vec(), key_id_of(&third));
    // Within the new period every request uses that one key.
    for i in 0..5 {
        let (c, _) = app.session(&format!("u{i}@example.com")).await;
        assert_eq!(key_id_of(&c), key_id_of(&third));
    }
    assert_eq!(app.kms.key_ids().len(), 2, "exactly one key per period");
}

#[tokio::test]
async fn a_rewritten_session_moves_to_the_new_key() {
    let app = TestApp::spawn_with(&ROTATION).await;
    let (cookie, code) = app.session("ann@example.com").await;
    app.advance(61.0);
    let r = app.verify(Some(&cookie), &app.wrong_code(&code)).await;
    r.assert_error(403, "OTP:INCORRECT");
    let next = r.cookie().expect("cookie");
    assert_ne!(key_id_of(&next), key_id_of(&cookie));
    let ok = app.verify(Some(&next), &code).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn an_old_cookie_works_until_its_keys_retention_ends() {
    let app = TestApp::spawn_with(&ROTATION).await;
    // Two sessions under the first key.
    let (used, used_code) = app.session("ann@example.com").await;
    let (idle, idle_code) = app.session("bob@example.com").await;
    app.advance(61.0);
    // A request at t=61 rotates: the first key retires at 61 + 181 = t=242.
    let (_, _) = app.session("carl@example.com").await;
    let ok = app.verify(Some(&used), &used_code).await;
    assert_eq!(
        ok.status, 200,
        "an old-key cookie still verifies: {}",
        ok.text
    );
    // The idle cookie is still readable (it answers EXPIRED, not INVALID_COOKIE) …
    app.advance(180.0);
    app.verify(Some(&idle), &idle_code)
        .await
        .assert_error_keeping(400, "OTP:EXPIRED");
    // … until the key's retention ends.
    app.advance(1.0);
    app.verify(Some(&idle), &idle_code)
        .await
        .assert_error_clearing(400, "OTP:INVALID_COOKIE");
    app.resend(Some(&idle))
        .await
        .assert_error_clearing(400, "OTP:INVALID_COOKIE");
    let r = app
        .create_json(Some(&idle), &json!({"email": "bob@example.com"}))
        .await;
    assert_eq!(r.status, 200, "a fresh session: {}", r.text);
    let fresh = r.cookie().expect("cookie");
    assert_ne!(key_id_of(&fresh), key_id_of(&idle));
    let ok = app.verify(Some(&fresh), &app.sender.last_code()).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn keys_older_than_their_retention_are_forgotten() {
    let app = TestApp::spawn_with(&ROTATION).await;
    let _ = app.session("a@example.com").await;
    for _ in 0..6 {
        app.advance(61.0);
        let _ = app.session("a@example.com").await;
    }
    // Rotations every 61 s, retention 181 s: at most the current and three retired keys.
    let held = app.kms.key_ids().len();
    assert!((2..=4).contains(&held), "{held} keys held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_at_a_rotation_create_one_key() {
    let app = std::sync::Arc::new(TestApp::spawn_with(&ROTATION).await);
    let (cookie, _) = app.session("ann@example.com").await;
    app.advance(61.0);
    let handles: Vec<_> = (0..32)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                app.create_json(None, &json!({"email": format!("u{i}@example.com")}))
                    .await
            })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for h in handles {
        let r = h.await.expect("task");
        assert_eq!(r.status, 200, "{}", r.text);
        ids.insert(key_id_of(&r.cookie().expect("cookie")));
    }
    assert_eq!(ids.len(), 1, "every request used the same new key");
    assert!(!ids.contains(&key_id_of(&cookie)));
    assert_eq!(app.kms.key_ids().len(), 2);
}
