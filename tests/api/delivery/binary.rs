//! The real binary with `OTP_SENDER=smtp`: codes reach the mailbox, never the log.

use tokio::process::Command;

use super::{SinkTls, SmtpSink, code_in};
use crate::process::{BIN, Server};

#[tokio::test]
async fn the_server_binary_sends_real_mail_and_never_logs_the_code() {
    let sink = SmtpSink::start(SinkTls::None, None, None).await;
    let port = sink.port.to_string();
    let mut server = Server::start(&[
        ("RUST_LOG", "debug"),
        ("OTP_SENDER", "smtp"),
        ("OTP_CREDENTIAL", "email"),
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", &port),
        ("SMTP_TLS", "none"),
        ("SMTP_FROM", "no-reply@acme.test"),
    ]);
    let r = server
        .post(
            "/api/otp/create",
            None,
            "application/json",
            r#"{"email":"hal@example.com"}"#,
        )
        .await;
    assert_eq!(r.status, 200);
    let set = r.set_cookie_header().expect("cookie");
    let cookie = set.split(';').next().expect("cookie");
    let code = code_in(&sink.message(1).await);
    let r = server
        .post(
            "/api/otp/verify",
            Some(cookie),
            "application/x-www-form-urlencoded",
            format!("otp={code}"),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = server
        .post(
            "/api/otp/create",
            None,
            "application/json",
            r#"{"email":"reject-me@example.com"}"#,
        )
        .await;
    assert_eq!(r.status, 400);

    let log = server.stop().join("\n");
    assert!(!log.contains(&code), "the code leaked into the log:\n{log}");
    assert!(
        !log.contains("hal@example.com"),
        "a full address leaked:\n{log}"
    );
    assert!(
        !log.contains("reject-me@example.com"),
        "a full address leaked:\n{log}"
    );
    // The credential is the JSON text {"email":"..."}; its masked form keeps the domain's
    // first letter and its top-level domain only.
    for line in ["smtp: code sent", "the server refused the recipient"] {
        assert!(
            log.lines()
                .any(|l| l.contains(line) && l.contains("***@e***.com")),
            "{line:?} is logged with the credential masked:\n{log}"
        );
    }
}

#[tokio::test]
async fn production_refuses_the_implicit_log_sender_and_names_the_sender_variables() {
    let out = Command::new(BIN)
        .env_clear()
        .env("ENVIRONMENT", "production")
        .env("PORT", "0")
        .kill_on_drop(true)
        .output()
        .await
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    for name in [
        "OTP_SENDER",
        "SMTP_HOST",
        "OTP_WEBHOOK_URL",
        "OTP_WEBHOOK_SECRET",
    ] {
        assert!(text.contains(name), "{name} not named in: {text}");
    }
}
