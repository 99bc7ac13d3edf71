//! `OTP_SENDER=smtp` against a real SMTP server on loopback.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{
    DeliveryApp, SelfSigned, SinkTls, SmtpSink, closed_port, code_in, pairs, smtp_vars, temp_dir,
};

#[tokio::test]
async fn an_email_arrives_with_the_recipient_subject_and_code_and_the_code_verifies() {
    let sink = SmtpSink::start(SinkTls::None, None, None).await;
    let port = sink.port.to_string();
    let app = DeliveryApp::spawn(&pairs(&smtp_vars(&port, "none"))).await;

    let r = app.create(json!({"email": "Ann@Example.com"}), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let cookie = r.cookie().expect("cookie");
    let mail = sink.message(1).await;
    assert_eq!(mail.rcpt_tos, ["Ann@example.com"]);
    assert_eq!(mail.to, "Ann@example.com");
    assert_eq!(mail.mail_from, "no-reply@acme.test");
    assert_eq!(mail.from, "Acme <no-reply@acme.test>");
    let code = code_in(&mail);
    assert_eq!(code.len(), 10);
    assert_eq!(mail.subject, format!("{code} is your Acme code"));
    assert!(
        mail.text.contains(&code) && mail.text.contains("3 minutes"),
        "{}",
        mail.text
    );
    assert!(
        mail.html.contains(&format!("<strong>{code}</strong>")),
        "{}",
        mail.html
    );

    let r = app.verify(&cookie, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["credential"], r#"{"email":"Ann@example.com"}"#);
}

#[tokio::test]
async fn the_language_follows_accept_language_and_html_is_escaped() {
    let sink = SmtpSink::start(SinkTls::None, None, None).await;
    let port = sink.port.to_string();
    let mut vars = smtp_vars(&port, "none");
    vars.retain(|(k, _)| *k != "OTP_PRODUCT_NAME");
    vars.push(("OTP_PRODUCT_NAME", "<b>Acme & Co</b>".to_owned()));
    let app = DeliveryApp::spawn(&pairs(&vars)).await;

    let r = app
        .create(
            json!({"email": "ana@example.com"}),
            Some("fr;q=0.9, es-ES, en;q=0.5"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mail = sink.message(1).await;
    let code = code_in(&mail);
    assert_eq!(
        mail.subject,
        format!("{code} es tu código de <b>Acme & Co</b>")
    );
    assert!(mail.text.contains("Caduca en 3 minutos"), "{}", mail.text);
    assert!(
        mail.html.contains("&lt;b&gt;Acme &amp; Co&lt;/b&gt;"),
        "{}",
        mail.html
    );
    assert!(!mail.html.contains("<b>Acme"), "{}", mail.html);

    let r = app
        .create(json!({"email": "otto@example.com"}), Some("de-DE"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        sink.message(2).await.subject.contains(" is your "),
        "English fallback"
    );
}

#[tokio::test]
async fn starttls_with_login_works_against_a_self_signed_server_trusted_through_smtp_ca_file() {
    let dir = temp_dir("tls");
    let cert = SelfSigned::generate(&dir);
    let sink = SmtpSink::start(
        SinkTls::StartTls,
        Some(&cert),
        Some(("mailer", "s3cret pass")),
    )
    .await;
    let port = sink.port.to_string();
    let password_file = dir.join("smtp-password");
    std::fs::write(&password_file, "s3cret pass\n").expect("write");
    let mut vars = smtp_vars(&port, "starttls");
    vars.push(("SMTP_CA_FILE", cert.cert.display().to_string()));
    vars.push(("SMTP_USERNAME", "mailer".to_owned()));
    vars.push(("SMTP_PASSWORD_FILE", password_file.display().to_string()));
    let app = DeliveryApp::spawn(&pairs(&vars)).await;

    let r = app.create(json!({"email": "bo@example.com"}), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mail = sink.message(1).await;
    assert!(mail.tls, "the message travelled over TLS");
    assert!(mail.authenticated, "the sender logged in");
    let r = app
        .verify(&r.cookie().expect("cookie"), &code_in(&mail))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn implicit_tls_works_against_a_self_signed_server_trusted_through_smtp_ca_file() {
    let dir = temp_dir("tls");
    let cert = SelfSigned::generate(&dir);
    let sink = SmtpSink::start(SinkTls::Implicit, Some(&cert), None).await;
    let port = sink.port.to_string();
    let mut vars = smtp_vars(&port, "tls");
    vars.push(("SMTP_CA_FILE", cert.cert.display().to_string()));
    let app = DeliveryApp::spawn(&pairs(&vars)).await;

    let r = app.create(json!({"email": "cy@example.com"}), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mail = sink.message(1).await;
    assert!(mail.tls);
    assert_eq!(mail.rcpt_tos, ["cy@example.com"]);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_503_and_nothing_is_sent() {
    let dir = temp_dir("tls");
    let cert = SelfSigned::generate(&dir);
    let sink = SmtpSink::start(SinkTls::StartTls, Some(&cert), None).await;
    let port = sink.port.to_string();
    // No SMTP_CA_FILE: the self-signed certificate is not trusted.
    let app = DeliveryApp::spawn(&pairs(&smtp_vars(&port, "starttls"))).await;

    let r = app.create(json!({"email": "di@example.com"}), None).await;
    r.assert_error(503, "SERVER");
    assert!(r.cookie().is_none());
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn a_refused_mailbox_is_credential_invalid_and_leaves_no_session() {
    let sink = SmtpSink::start(SinkTls::None, None, None).await;
    let port = sink.port.to_string();
    let app = DeliveryApp::spawn(&pairs(&smtp_vars(&port, "none"))).await;

    let r = app
        .create(json!({"email": "rejected@example.com"}), None)
        .await;
    r.assert_error(400, "CREDENTIAL:INVALID");
    assert!(r.set_cookies().is_empty(), "no session is created");
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn a_dead_smtp_server_is_a_quick_503_with_retry_after_and_no_session() {
    let port = closed_port().to_string();
    let app = DeliveryApp::spawn(&pairs(&smtp_vars(&port, "none"))).await;

    let started = Instant::now();
    let r = app.create(json!({"email": "ed@example.com"}), None).await;
    let elapsed = started.elapsed();
    println!("503 from a dead SMTP server after {elapsed:?}");
    r.assert_error(503, "SERVER");
    assert!(r.headers.get("retry-after").is_some());
    assert!(r.set_cookies().is_empty(), "no session, so no usable code");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

#[tokio::test]
async fn a_resend_that_cannot_be_delivered_leaves_no_usable_code() {
    let sink = SmtpSink::start(SinkTls::None, None, None).await;
    let port = sink.port.to_string();
    let mut vars = smtp_vars(&port, "none");
    vars.push(("OTP_RESEND_BLOCK_SECONDS", "0".to_owned()));
    let app = DeliveryApp::spawn(&pairs(&vars)).await;

    let r = app.create(json!({"email": "flo@example.com"}), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let cookie = r.cookie().expect("cookie");
    let first_code = code_in(&sink.message(1).await);
    sink.stop().await;

    let r = app.resend(&cookie).await;
    r.assert_error(503, "SERVER");
    let cookie = r.cookie().expect("the blocked session is sealed again");
    let r = app.verify(&cookie, &first_code).await;
    r.assert_error(403, "OTP:VERIFICATION_NOT_ALLOWED");
}
