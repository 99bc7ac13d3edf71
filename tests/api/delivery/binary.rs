//! The real binary with `OTP_SENDER=smtp`: codes reach the mailbox, never the log.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use super::{SinkTls, SmtpSink, code_in};

const BIN: &str = env!("CARGO_BIN_EXE_secure-otp-server");

fn collect(
    stream: impl AsyncRead + Unpin + Send + 'static,
    all: Arc<Mutex<Vec<String>>>,
    tx: mpsc::UnboundedSender<String>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            all.lock().expect("lock").push(line.clone());
            let _ = tx.send(line);
        }
    })
}

#[tokio::test]
async fn the_server_binary_sends_real_mail_and_never_logs_the_code() {
    let sink = SmtpSink::start(SinkTls::None, None, None).await;
    let mut child = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("RUST_LOG", "debug")
        .env("OTP_SENDER", "smtp")
        .env("OTP_CREDENTIAL", "email")
        .env("SMTP_HOST", "127.0.0.1")
        .env("SMTP_PORT", sink.port.to_string())
        .env("SMTP_TLS", "none")
        .env("SMTP_FROM", "no-reply@acme.test")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the server binary starts");
    let all: Arc<Mutex<Vec<String>>> = Arc::default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let out = collect(
        child.stdout.take().expect("stdout"),
        all.clone(),
        tx.clone(),
    );
    let err = collect(child.stderr.take().expect("stderr"), all.clone(), tx);

    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = rx.recv().await {
            if let Some(at) = line.find("listening on http://") {
                let rest = &line[at + "listening on ".len()..];
                return rest.split_whitespace().next().map(str::to_owned);
            }
        }
        None
    })
    .await
    .expect("the server starts within 30 s")
    .unwrap_or_else(|| panic!("no address in {:?}", all.lock().expect("lock")));

    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/api/otp/create"))
        .header("content-type", "application/json")
        .body(r#"{"email":"hal@example.com"}"#)
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 200);
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("cookie")
        .to_owned();
    let code = code_in(&sink.message(1).await);
    let r = client
        .post(format!("{base}/api/otp/verify"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("otp={code}"))
        .send()
        .await
        .expect("verify");
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!("{base}/api/otp/create"))
        .header("content-type", "application/json")
        .body(r#"{"email":"reject-me@example.com"}"#)
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 400);

    child.kill().await.expect("stop the server");
    let _ = tokio::join!(out, err);
    let log = all.lock().expect("lock").join("\n");
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
