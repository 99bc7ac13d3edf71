//! Purposes (issue 18, item 4): a code is bound to what it is for, each purpose
//! with its own rules; a mismatch spends no attempt; the final action, the audit
//! events and the messages see the purpose.

use crate::helpers::{Reply, TestApp, iso_at};
use crate::process::Server;

const PURPOSES: [(&str, &str); 4] = [
    ("OTP_PURPOSES", "login,step_up"),
    ("OTP_PURPOSE_STEP_UP_LENGTH", "6"),
    ("OTP_PURPOSE_STEP_UP_ALPHABET", "0123456789"),
    ("OTP_PURPOSE_STEP_UP_MAX_AGE", "60"),
];

async fn create(app: &TestApp, purpose: Option<&str>, email: &str) -> Reply {
    let path = match purpose {
        Some(p) => format!("/api/otp/create?purpose={p}"),
        None => "/api/otp/create".to_owned(),
    };
    app.send(
        app.post(&path, None)
            .header("content-type", "application/json")
            .body(serde_json::json!({ "email": email }).to_string()),
    )
    .await
}

async fn verify(app: &TestApp, cookie: &str, purpose: Option<&str>, code: &str) -> Reply {
    let path = match purpose {
        Some(p) => format!("/api/otp/verify?purpose={p}"),
        None => "/api/otp/verify".to_owned(),
    };
    app.send(
        app.post(&path, Some(cookie))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("otp={code}")),
    )
    .await
}

async fn attempts_left(app: &TestApp, cookie: &str) -> u64 {
    let r = app
        .send(
            app.client
                .get(format!("{}/api/otp/status", app.base))
                .header("cookie", format!("{}={cookie}", app.cookie_name)),
        )
        .await;
    r.json()["attemptsLeft"].as_u64().expect("attemptsLeft")
}

#[tokio::test]
async fn each_purpose_has_its_own_rules_and_the_first_is_the_default() {
    let app = TestApp::spawn_with(&PURPOSES).await;
    let login = create(&app, None, "ann@example.com").await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.json()["expires"], iso_at(180.0));
    let login_code = app.sender.last_code();
    assert_eq!(login_code.len(), 10);

    let step_up = create(&app, Some("step_up"), "bob@example.com").await;
    assert_eq!(step_up.json()["expires"], iso_at(60.0));
    let code = app.sender.last_code();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );

    create(&app, Some("signup"), "cat@example.com")
        .await
        .assert_error(400, "OTP:INVALID_PURPOSE");
    let login_cookie = login.cookie().expect("cookie");
    assert_eq!(
        verify(&app, &login_cookie, None, &login_code).await.status,
        200
    );
}

#[tokio::test]
async fn a_mismatched_purpose_or_format_spends_no_attempt() {
    let app = TestApp::spawn_with(&PURPOSES).await;
    let r = create(&app, Some("step_up"), "dan@example.com").await;
    let cookie = r.cookie().expect("cookie");
    let code = app.sender.last_code();
    let mismatch = verify(&app, &cookie, Some("login"), "0123456789").await;
    mismatch.assert_error(400, "OTP:PURPOSE_MISMATCH");
    assert!(mismatch.set_cookies().is_empty(), "the cookie is untouched");
    // A code in the login format, against the step_up token.
    verify(&app, &cookie, None, "abcdefghij")
        .await
        .assert_error(400, "OTP:INVALID_FORMAT");
    assert_eq!(attempts_left(&app, &cookie).await, 3, "no attempt used");
    verify(&app, &cookie, Some("nope"), &code)
        .await
        .assert_error(400, "OTP:INVALID_PURPOSE");
    assert_eq!(
        verify(&app, &cookie, Some("step_up"), &code).await.status,
        200
    );
}

#[tokio::test]
async fn without_purposes_a_purpose_is_unknown() {
    let app = TestApp::spawn().await;
    create(&app, Some("login"), "eve@example.com")
        .await
        .assert_error(400, "OTP:INVALID_PURPOSE");
    let (cookie, code) = app.session("eve@example.com").await;
    verify(&app, &cookie, Some("login"), &code)
        .await
        .assert_error(400, "OTP:INVALID_PURPOSE");
}

#[tokio::test]
async fn the_session_token_names_the_purpose() {
    let app =
        TestApp::spawn_stock(&[PURPOSES.as_slice(), &[("OTP_FINAL_ACTION", "session")]].concat())
            .await;
    let r = create(&app, Some("step_up"), "fay@example.com").await;
    let code = app.sender.last_code();
    let done = verify(&app, &r.cookie().expect("cookie"), None, &code).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.json()["session"]["purpose"], "step_up");
}

#[test]
fn bad_purpose_settings_are_named() {
    for (name, value, extra) in [
        ("OTP_PURPOSES", "Login", None),
        ("OTP_PURPOSES", "a,a", None),
        (
            "OTP_PURPOSE_LOGIN_LENGTH",
            "2",
            Some(("OTP_PURPOSES", "login")),
        ),
        (
            "OTP_PURPOSE_LOGIN_MAX_ATTEMPTS",
            "0",
            Some(("OTP_PURPOSES", "login")),
        ),
    ] {
        let mut vars = vec![(name.to_owned(), value.to_owned())];
        if let Some((k, v)) = extra {
            vars.push((k.to_owned(), v.to_owned()));
        }
        let err = secure_otp_server::Config::from_vars(vars)
            .expect_err(name)
            .to_string();
        assert!(err.contains(name), "{name}={value}: {err}");
    }
}

/// The audit events and the sender's line carry the purpose (the real binary's
/// JSON output).
#[tokio::test]
async fn audit_events_and_messages_see_the_purpose() {
    let mut server = Server::start(&[PURPOSES.as_slice(), &[("LOG_FORMAT", "json")]].concat());
    let r = server
        .post(
            "/api/otp/create?purpose=step_up",
            None,
            "application/json",
            r#"{"email":"gil@example.com"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = server.wait_for(|l| l.contains("otp-sender"));
    assert!(sent.contains(r#""purpose":"step_up""#), "{sent}");
    let audit = server.wait_for(|l| l.contains("session_created"));
    assert!(audit.contains(r#""purpose":"step_up""#), "{audit}");
}
