//! `OTP_SENDER=webhook` against a real HTTP receiver, and routing by credential kind.

use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

use super::{DeliveryApp, Hook, Receiver, SinkTls, SmtpSink, code_in, pairs, smtp_vars};

const SECRET: &str = "whsec-0123456789abcdef0123456789";

fn webhook_vars(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("OTP_SENDER", "webhook".to_owned()),
        ("OTP_CREDENTIAL", "phone".to_owned()),
        ("OTP_WEBHOOK_URL", url.to_owned()),
        ("OTP_WEBHOOK_SECRET", SECRET.to_owned()),
        ("OTP_WEBHOOK_CHANNEL", "whatsapp".to_owned()),
        ("OTP_WEBHOOK_TIMEOUT_SECONDS", "2".to_owned()),
        ("OTP_WEBHOOK_RETRIES", "2".to_owned()),
        ("OTP_WEBHOOK_BACKOFF_MS", "10".to_owned()),
    ]
}

/// What a receiver does: recompute the HMAC over the timestamp and the exact body,
/// compare in constant time, and refuse a timestamp outside five minutes.
fn receiver_accepts(secret: &str, timestamp: &str, body: &[u8], signature: &str, now: i64) -> bool {
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    if (now - ts).abs() > 300 {
        return false;
    }
    let Some(hex) = signature.strip_prefix("v1=") else {
        return false;
    };
    let Some(given) = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

fn header(hook: &Hook, name: &str) -> String {
    hook.headers
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .to_str()
        .expect("ascii")
        .to_owned()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

#[tokio::test]
async fn a_phone_code_is_posted_signed_and_the_code_verifies() {
    let receiver = Receiver::start().await;
    let app = DeliveryApp::spawn(&pairs(&webhook_vars(&receiver.url))).await;

    let r = app
        .create(json!({"phone": "+34 600 00 00 12"}), Some("es-ES,es;q=0.9"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let hooks = receiver.received();
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(header(hook, "content-type"), "application/json");
    let body: serde_json::Value = serde_json::from_slice(&hook.body).expect("JSON body");
    assert_eq!(body["channel"], "whatsapp");
    assert_eq!(body["to"], "+34600000012");
    assert_eq!(body["locale"], "es-es");
    let expires = r.json()["expires"].as_str().expect("expires").to_owned();
    assert_eq!(
        body["expires"].as_str().expect("expires")[..19],
        expires[..19]
    );
    let code = body["code"].as_str().expect("code").to_owned();

    let timestamp = header(hook, "x-otp-timestamp");
    let signature = header(hook, "x-otp-signature");
    let now = unix_now();
    assert!(receiver_accepts(
        SECRET, &timestamp, &hook.body, &signature, now
    ));
    // A tampered body, signature, timestamp or secret is refused; so is an old request.
    let tampered = String::from_utf8_lossy(&hook.body).replace(&code, "0000000000");
    assert!(!receiver_accepts(
        SECRET,
        &timestamp,
        tampered.as_bytes(),
        &signature,
        now
    ));
    let mut bad_sig = signature.clone();
    bad_sig.replace_range(
        bad_sig.len() - 1..,
        if signature.ends_with('0') { "1" } else { "0" },
    );
    assert!(!receiver_accepts(
        SECRET, &timestamp, &hook.body, &bad_sig, now
    ));
    let shifted = (timestamp.parse::<i64>().expect("number") - 1).to_string();
    assert!(!receiver_accepts(
        SECRET, &shifted, &hook.body, &signature, now
    ));
    assert!(!receiver_accepts(
        "another-secret-0123456789",
        &timestamp,
        &hook.body,
        &signature,
        now
    ));
    assert!(!receiver_accepts(
        SECRET,
        &timestamp,
        &hook.body,
        &signature,
        now + 3600
    ));

    let r = app.verify(&r.cookie().expect("cookie"), &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["credential"], r#"{"phone":"+34600000012"}"#);
}

#[tokio::test]
async fn a_webhook_4xx_is_credential_invalid_without_retries() {
    let receiver = Receiver::start().await;
    receiver.answer(422);
    let app = DeliveryApp::spawn(&pairs(&webhook_vars(&receiver.url))).await;

    let r = app.create(json!({"phone": "+34612345678"}), None).await;
    r.assert_error(400, "CREDENTIAL:INVALID");
    assert!(r.set_cookies().is_empty());
    assert_eq!(receiver.received().len(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn a_webhook_500_is_a_quick_503_after_bounded_retries_and_no_session() {
    let receiver = Receiver::start().await;
    receiver.answer(500);
    let app = DeliveryApp::spawn(&pairs(&webhook_vars(&receiver.url))).await;

    let started = Instant::now();
    let r = app.create(json!({"phone": "+34612345678"}), None).await;
    let elapsed = started.elapsed();
    println!("503 from a failing webhook after {elapsed:?}");
    r.assert_error(503, "SERVER");
    assert!(r.headers.get("retry-after").is_some());
    assert!(r.set_cookies().is_empty(), "no session, so no usable code");
    assert_eq!(receiver.received().len(), 3, "one attempt and two retries");
    assert!(
        elapsed < Duration::from_secs(30),
        "hang guard, not a timing test: took {elapsed:?}"
    );
    // Each attempt is signed afresh and verifies.
    for hook in receiver.received() {
        let (ts, sig) = (
            header(&hook, "x-otp-timestamp"),
            header(&hook, "x-otp-signature"),
        );
        assert!(receiver_accepts(SECRET, &ts, &hook.body, &sig, unix_now()));
    }
}

#[tokio::test]
async fn email_goes_to_smtp_and_phones_to_the_webhook_when_both_are_listed() {
    let sink = SmtpSink::start(SinkTls::None, None, None).await;
    let receiver = Receiver::start().await;
    let port = sink.port.to_string();
    let mut vars = smtp_vars(&port, "none");
    vars.extend(webhook_vars(&receiver.url));
    vars.retain(|(k, _)| *k != "OTP_SENDER" && *k != "OTP_CREDENTIAL");
    vars.push(("OTP_SENDER", "smtp,webhook".to_owned()));
    vars.push(("OTP_CREDENTIAL", "email_or_phone".to_owned()));
    let app = DeliveryApp::spawn(&pairs(&vars)).await;

    let r = app.create(json!({"email": "gil@example.com"}), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mail = sink.message(1).await;
    assert_eq!(mail.rcpt_tos, ["gil@example.com"]);
    assert!(receiver.received().is_empty());
    let r2 = app
        .verify(&r.cookie().expect("cookie"), &code_in(&mail))
        .await;
    assert_eq!(r2.status, 200, "{}", r2.text);

    let r = app.create(json!({"phone": "+34699887766"}), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let hooks = receiver.received();
    assert_eq!(hooks.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&hooks[0].body).expect("JSON");
    assert_eq!(body["to"], "+34699887766");
    assert_eq!(sink.count(), 1, "the phone code did not go by e-mail");
}
