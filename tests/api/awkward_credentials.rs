//! SPEC A6 fix 1: credentials holding the original's separators, quotes or any Unicode
//! round-trip exactly; an authentic but malformed list is just an invalid cookie; no
//! client-reachable path rotates or deletes a shared key.

use serde_json::json;

use secure_otp_server::Clock as _;
use secure_otp_server::otp::token::{Token, TokenList};
use secure_otp_server::plugin::{CodeFormat, Credential, ListId};

use crate::helpers::TestApp;

#[tokio::test]
async fn a_form_with_commas_round_trips_and_breaks_nothing() {
    let app = TestApp::spawn().await;
    let (other, other_code) = app.session("other@example.com").await;
    let keys = app.kms.key_ids();
    let r = app.create_form(None, "a=1,2,3,4").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut cookie = r.cookie().expect("cookie");
    assert_eq!(app.sender.sent()[1].0, r#"{"a":"1,2,3,4"}"#);
    let code = app.sender.last_code();
    // Rewrite it a few times (each request decodes the list again).
    for _ in 0..2 {
        let r = app.verify(Some(&cookie), &app.wrong_code(&code)).await;
        r.assert_error(403, "OTP:INCORRECT");
        cookie = r.cookie().expect("cookie");
    }
    app.advance(20.0);
    let ok = app.verify(Some(&cookie), &code).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json()["credential"], r#"{"a":"1,2,3,4"}"#);
    assert_eq!(app.kms.key_ids(), keys, "no key rotated or deleted");
    let ok = app.verify(Some(&other), &other_code).await;
    assert_eq!(
        ok.status, 200,
        "another user's cookie still works: {}",
        ok.text
    );
}

#[tokio::test]
async fn separators_quotes_and_unicode_round_trip_in_one_session() {
    let app = TestApp::spawn().await;
    let creds = [
        json!("x|y||z,,\"q\""),
        json!({"k": ",,,|||", "é": "ünïcödé ✓ 🎉"}),
        json!(["%2C", "\u{0}\u{1f}", "\\", "\r\n"]),
    ];
    let mut cookie: Option<String> = None;
    let mut canonical = Vec::new();
    for c in &creds {
        let r = app.create_json(cookie.as_deref(), c).await;
        assert_eq!(r.status, 200, "{c}: {}", r.text);
        cookie = r.cookie();
        canonical.push(app.sender.sent().last().expect("sent").0.clone());
        assert_eq!(
            canonical.last().expect("c"),
            &serde_json::to_string(c).expect("json")
        );
    }
    // Switch to each, in turn, and verify the last one switched to.
    for c in &creds {
        let r = app.create_json(cookie.as_deref(), c).await;
        assert_eq!(r.status, 200, "{c}: {}", r.text);
        assert_eq!(app.sent_count(), 3, "switching sends nothing");
        cookie = r.cookie();
    }
    let ok = app
        .verify(cookie.as_deref(), &app.sender.code_for(&canonical[2]))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json()["credential"], canonical[2]);
    assert_eq!(app.kms.key_ids().len(), 1);
}

#[tokio::test]
async fn a_form_with_encoded_separators_round_trips() {
    let app = TestApp::spawn().await;
    let r = app
        .create_form(None, "e=%7C%2C%22%25&%E2%9C%93=%F0%9F%8E%89")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let text = app.sender.sent().last().cloned().expect("sent").0;
    assert_eq!(text, r#"{"e":"|,\"%","✓":"🎉"}"#);
    let ok = app
        .verify(Some(&r.cookie().expect("c")), &app.sender.last_code())
        .await;
    assert_eq!(ok.json()["credential"], text);
}

fn list_bytes(app: &TestApp, creds: &[&str]) -> Vec<u8> {
    let now = app.clock.now();
    let format = CodeFormat::original();
    TokenList {
        id: ListId::random(),
        tokens: creds
            .iter()
            .map(|c| {
                Token::new(
                    Credential::new((*c).to_owned()).expect("credential"),
                    format.parse("0123456789").expect("code"),
                    now,
                    &app.config.policy,
                )
            })
            .collect(),
    }
    .encode()
}

#[tokio::test]
async fn an_authentic_but_malformed_list_is_an_invalid_cookie_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (other, other_code) = app.session("other@example.com").await;
    let keys = app.kms.key_ids();
    let ids = app.ids.len();
    let four = list_bytes(&app, &["\"a\"", "\"b\"", "\"c\"", "\"d\""]);
    let mut trailing = list_bytes(&app, &["\"a\""]);
    trailing.push(0);
    let whole = list_bytes(&app, &["\"a\""]);
    let cut = whole[..whole.len() - 3].to_vec();
    let plaintexts: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"a|b,c".to_vec(),
        vec![0xff; 40],
        four,
        trailing,
        cut,
    ];
    for (i, plain) in plaintexts.iter().enumerate() {
        let forged = app.forge(plain).await;
        app.verify(Some(&forged), "0123456789")
            .await
            .assert_error_clearing(400, "OTP:INVALID_COOKIE");
        app.resend(Some(&forged))
            .await
            .assert_error_clearing(400, "OTP:INVALID_COOKIE");
        let r = app
            .create_json(Some(&forged), &json!({"email": "x@example.com"}))
            .await;
        r.assert_error_clearing(400, "OTP:INVALID_COOKIE");
        assert_eq!(app.kms.key_ids(), keys, "plaintext {i}: keys untouched");
    }
    assert_eq!(app.ids.len(), ids, "no id issued or deleted");
    assert_eq!(app.final_action.runs(), 0);
    let ok = app.verify(Some(&other), &other_code).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn a_well_formed_forged_list_without_a_live_id_is_refused() {
    let app = TestApp::spawn().await;
    // Even an authentic, valid list needs its single-use id on the server.
    let forged = app.forge(&list_bytes(&app, &["\"a\""])).await;
    app.verify(Some(&forged), "0123456789")
        .await
        .assert_error_clearing(400, "OTP:INVALID_COOKIE");
    assert_eq!(app.final_action.runs(), 0);
}
