//! Delivery through real servers: an SMTP server (aiosmtpd, `tests/smtp_sink.py`)
//! and an HTTP webhook receiver (axum), both on loopback.
//!
//! The server under test is the library's router with the senders the configuration
//! builds (`Plugins::from_config`), on port 0; `binary.rs` runs the real binary.

mod binary;
mod smtp;
mod webhook;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use secure_otp_server::{AppState, Clock, Config, Plugins, SystemClock, router};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::Reply;

/// A fresh, empty folder under the system's temporary folder.
pub fn temp_dir(tag: &str) -> PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "otp-test-{tag}-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A self-signed certificate for `127.0.0.1` and `localhost`, written as PEM files.
pub struct SelfSigned {
    /// The certificate (also the CA file the client trusts).
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

impl SelfSigned {
    pub fn generate(dir: &Path) -> Self {
        let generated = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .expect("certificate");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, generated.cert.pem()).expect("write cert");
        std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write key");
        Self { cert, key }
    }
}

/// A message the SMTP server received (decoded by Python's `email` package).
#[derive(Debug, serde::Deserialize)]
pub struct Mail {
    pub subject: String,
    pub to: String,
    pub from: String,
    pub text: String,
    pub html: String,
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub tls: bool,
    pub authenticated: bool,
}

/// How the test SMTP server protects its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkTls {
    None,
    StartTls,
    Implicit,
}

/// A real SMTP server (aiosmtpd) on 127.0.0.1 writing each message to a folder.
/// Recipients starting with `reject` are refused with 550.
pub struct SmtpSink {
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

impl SmtpSink {
    pub async fn start(
        tls: SinkTls,
        cert: Option<&SelfSigned>,
        login: Option<(&str, &str)>,
    ) -> Self {
        let dir = temp_dir("smtp");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).arg(&dir);
        let mode = match tls {
            SinkTls::None => "none",
            SinkTls::StartTls => "starttls",
            SinkTls::Implicit => "tls",
        };
        cmd.args(["--tls", mode]);
        if let Some(c) = cert {
            cmd.arg("--cert").arg(&c.cert).arg("--key").arg(&c.key);
        }
        if let Some((user, password)) = login {
            cmd.args(["--user", user, "--password", password]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs tests/smtp_sink.py (scripts/test.sh installs aiosmtpd)");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the SMTP sink starts within 30 s")
            .expect("read")
            .expect("the SMTP sink prints its port (is aiosmtpd installed?)");
        let port = first
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        Self { port, dir, child }
    }

    /// The `n`th message received (1-based), waiting up to 10 s for it.
    pub async fn message(&self, n: usize) -> Mail {
        let path = self.dir.join(format!("{n}.json"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(text) = std::fs::read_to_string(&path) {
                return serde_json::from_str(&text).expect("sink JSON");
            }
            assert!(Instant::now() < deadline, "no message {n} arrived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How many messages arrived so far.
    pub fn count(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Stops the server (its port then refuses connections).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The code in a message: the word before " is your" / " es tu" in the subject.
pub fn code_in(mail: &Mail) -> String {
    mail.subject
        .split_whitespace()
        .next()
        .expect("the subject starts with the code")
        .to_owned()
}

/// A free loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// One request the webhook receiver got.
#[derive(Debug, Clone)]
pub struct Hook {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A real HTTP receiver (axum on port 0) that records requests and answers `status`.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Hook>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    pub async fn start() -> Self {
        let received: Arc<Mutex<Vec<Hook>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (r, s) = (received.clone(), status.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (r, s) = (r.clone(), s.clone());
                async move {
                    r.lock().expect("lock").push(Hook { headers, body });
                    StatusCode::from_u16(s.load(Ordering::SeqCst)).expect("status")
                }
            }),
        );
        let addr = crate::helpers::serve(app).await;
        Self {
            url: format!("http://{addr}/hook"),
            received,
            status,
        }
    }

    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Hook> {
        self.received.lock().expect("lock").clone()
    }
}

/// The server under test with real senders chosen by `vars`.
pub struct DeliveryApp {
    pub base: String,
    pub client: reqwest::Client,
    pub cookie_name: String,
}

impl DeliveryApp {
    pub async fn spawn(vars: &[(&str, &str)]) -> Self {
        let config = Config::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .expect("test configuration is valid");
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let plugins = Plugins::from_config(&config, &clock).expect("plug-ins build");
        let app = router::<()>(AppState::new(&config, plugins, clock));
        let addr = crate::helpers::serve(app).await;
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            cookie_name: config.cookie_name(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.expect("request");
        Reply {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            text: res.text().await.expect("body"),
        }
    }

    fn post(&self, path: &str, cookie: Option<&str>) -> reqwest::RequestBuilder {
        let mut req = self.client.post(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            req = req.header("cookie", format!("{}={c}", self.cookie_name));
        }
        req
    }

    /// Create with a JSON body and an optional `Accept-Language`.
    pub async fn create(&self, body: serde_json::Value, language: Option<&str>) -> Reply {
        let mut req = self
            .post("/api/otp/create", None)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(l) = language {
            req = req.header("accept-language", l);
        }
        self.send(req).await
    }

    pub async fn resend(&self, cookie: &str) -> Reply {
        self.send(self.post("/api/otp/resend", Some(cookie))).await
    }

    pub async fn verify(&self, cookie: &str, otp: &str) -> Reply {
        self.send(
            self.post("/api/otp/verify", Some(cookie))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("otp={otp}")),
        )
        .await
    }
}

/// The SMTP settings for a sink on `port`.
pub fn smtp_vars(port: &str, tls: &'static str) -> Vec<(&'static str, String)> {
    vec![
        ("OTP_SENDER", "smtp".to_owned()),
        ("OTP_CREDENTIAL", "email".to_owned()),
        ("SMTP_HOST", "127.0.0.1".to_owned()),
        ("SMTP_PORT", port.to_owned()),
        ("SMTP_TLS", tls.to_owned()),
        ("SMTP_FROM", "Acme <no-reply@acme.test>".to_owned()),
        ("SMTP_TIMEOUT_SECONDS", "5".to_owned()),
        ("OTP_PRODUCT_NAME", "Acme".to_owned()),
    ]
}

/// `(&str, &str)` pairs for [`DeliveryApp::spawn`].
pub fn pairs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
