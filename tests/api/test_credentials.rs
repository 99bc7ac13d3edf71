//! Test credentials (issue 18, item 6): a fixed code for listed addresses, nothing
//! sent to them, every other rule kept; refused in production without the flag.

use crate::helpers::TestApp;
use crate::process::{Server, command};

const REVIEW: (&str, &str) = (
    "OTP_TEST_CREDENTIALS",
    r#"{"Review@Example.com": "4242424242"}"#,
);

#[tokio::test]
async fn a_listed_address_gets_its_fixed_code_and_nothing_is_sent() {
    let app = TestApp::spawn_with(&[REVIEW]).await;
    let (cookie, _) = {
        let r = app
            .create_json(None, &serde_json::json!({"email": "review@example.com"}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        (r.cookie().expect("cookie"), ())
    };
    assert_eq!(app.sent_count(), 0, "nothing is sent to a test credential");
    assert_eq!(app.verify(Some(&cookie), "4242424242").await.status, 200);
    // Another address is untouched: a random code, sent.
    let (_, code) = app.session("someone@example.com").await;
    assert_ne!(code, "4242424242");
    assert_eq!(app.sent_count(), 1);
}

#[tokio::test]
async fn the_fixed_code_obeys_the_attempt_rules() {
    let app = TestApp::spawn_with(&[REVIEW, ("OTP_INVALID_BLOCK_SECONDS", "0")]).await;
    let r = app
        .create_json(None, &serde_json::json!({"email": "review@example.com"}))
        .await;
    let mut cookie = r.cookie().expect("cookie");
    for expected in ["OTP:INCORRECT", "OTP:INCORRECT", "OTP:TOO_MANY_ATTEMPTS"] {
        let wrong = app.verify(Some(&cookie), "0000000000").await;
        wrong.assert_error(403, expected);
        cookie = wrong.cookie().expect("cookie");
    }
    app.verify(Some(&cookie), "4242424242")
        .await
        .assert_error(403, "OTP:VERIFICATION_NOT_ALLOWED");
    // And it expires like any code.
    let r = app
        .create_json(None, &serde_json::json!({"email": "review@example.com"}))
        .await;
    app.advance(180.0);
    app.verify(Some(&r.cookie().expect("cookie")), "4242424242")
        .await
        .assert_error(400, "OTP:EXPIRED");
}

#[test]
fn a_test_credential_in_production_without_the_flag_stops_start_up() {
    let production = [
        ("PORT", "0"),
        ("ENVIRONMENT", "production"),
        ("OTP_SENDER", "log"),
        ("OTP_CREDENTIAL", "email"),
        REVIEW,
    ];
    let out = command(&production).output().expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("OTP_TEST_CREDENTIALS"), "{stderr}");
    assert!(
        !stderr.contains("4242424242"),
        "the code is never printed: {stderr}"
    );
    let bad_code = command(&[
        ("PORT", "0"),
        ("OTP_TEST_CREDENTIALS", r#"{"a@example.com":"12"}"#),
    ])
    .output()
    .expect("runs");
    assert!(!bad_code.status.success(), "a code of the wrong format");
}

#[tokio::test]
async fn each_use_is_an_audit_event_in_production_with_the_flag() {
    let mut server = Server::start(&[
        ("ENVIRONMENT", "production"),
        ("HOST", "127.0.0.1"),
        ("OTP_SENDER", "log"),
        ("OTP_CREDENTIAL", "email"),
        ("OTP_TEST_CREDENTIALS_IN_PRODUCTION", "true"),
        ("OTP_HIDE_UNDELIVERABLE", "false"),
        REVIEW,
    ]);
    let r = server
        .post(
            "/api/otp/create",
            None,
            "application/json",
            r#"{"email":"review@example.com"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let line = server.wait_for(|l| l.contains("test_credential_used"));
    assert!(line.contains("r***@e***.com"), "{line}");
    assert!(
        !line.contains("4242424242") && !line.contains("review@"),
        "{line}"
    );
    let rest = server.stop();
    assert!(
        rest.iter().all(|l| !l.contains("otp-sender")),
        "nothing was sent: {rest:#?}"
    );
}
