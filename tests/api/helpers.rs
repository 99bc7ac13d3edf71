//! Spawns the real server (the library's router on a random port) with fakes that
//! let a test read the codes sent and move the clock, and a small HTTP client.
#![allow(
    dead_code,
    reason = "each test module uses a different part of the helpers"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::response::Response as AxumResponse;
use reqwest::header::{HeaderMap, SET_COOKIE};
use secure_otp_server::error::BackendError;
use secure_otp_server::plugin::{
    EchoCredential, FinalAction, Kms as _, MemoryIdStore, MemoryKms, Verified,
};
pub use secure_otp_server::testing::{RecordingSender, SendMode};
use secure_otp_server::{AppState, Clock, Config, ManualClock, Plugins, Timestamp, router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The development settings the original's test mode used (resend and invalid blocks of 3 s).
pub const TEST_MODE: [(&str, &str); 2] = [
    ("OTP_RESEND_BLOCK_SECONDS", "3"),
    ("OTP_INVALID_BLOCK_SECONDS", "3"),
];

/// The production settings (the log sender chosen explicitly; tests use the recording sender anyway).
pub const PRODUCTION: [(&str, &str); 3] = [
    ("ENVIRONMENT", "production"),
    ("OTP_SENDER", "log"),
    ("OTP_CREDENTIAL", "json"),
];

/// Every abuse limit off, and refused addresses answered as refused. Most tests
/// send far more than a person would, all from 127.0.0.1, to test something else;
/// [`TestApp::spawn_limited`] keeps the real defaults (`tests/api/limits.rs`).
pub const NO_LIMITS: [(&str, &str); 7] = [
    ("OTP_LIMIT_SENDS_PER_CREDENTIAL", "off"),
    ("OTP_LIMIT_FAILURES_PER_CREDENTIAL", "off"),
    ("OTP_LIMIT_CREATES_PER_IP", "off"),
    ("OTP_LIMIT_VERIFIES_PER_IP", "off"),
    ("OTP_LIMIT_SENDS_PER_PREFIX", "off"),
    ("OTP_PUMPING_MIN_SENDS", "off"),
    ("OTP_HIDE_UNDELIVERABLE", "false"),
];

/// The bytes of a cookie value (unpadded base64url).
pub fn decode_cookie(value: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .expect("a cookie value is base64url")
}

/// A cookie value from its bytes.
pub fn encode_cookie(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The 8-byte key id a cookie names (after the version byte).
pub fn key_id_of(cookie: &str) -> Vec<u8> {
    decode_cookie(cookie)[1..9].to_vec()
}

/// An ISO-8601 instant `seconds` after [`START`], as the API writes it.
pub fn iso_at(seconds: f64) -> String {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "small test values"
    )]
    let ms = START.as_millis() + (seconds * 1000.0).round() as u64;
    Timestamp::from_millis(ms).to_iso8601()
}

/// A reply read from a raw TCP exchange.
#[derive(Debug)]
pub struct RawReply {
    /// Status code (0 if no status line came back).
    pub status: u16,
    /// Header block, lower-cased.
    pub head: String,
    /// Body (undecoded).
    pub body: String,
}

/// A fixed, round start time: 2026-11-19T12:00:00.000Z (a Thursday).
pub const START: Timestamp = Timestamp::from_millis(1_795_089_600_000);

/// The default final action, counting its runs.
#[derive(Debug, Default)]
pub struct CountingFinalAction {
    runs: AtomicUsize,
}

impl CountingFinalAction {
    /// How often it ran.
    pub fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl FinalAction for CountingFinalAction {
    async fn run(&self, verified: Verified) -> Result<AxumResponse, BackendError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        EchoCredential.run(verified).await
    }
}

/// A running server and handles on its fakes.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The listening address.
    pub addr: SocketAddr,
    /// The server's clock.
    pub clock: Arc<ManualClock>,
    /// The codes sent.
    pub sender: Arc<RecordingSender>,
    /// Final action runs.
    pub final_action: Arc<CountingFinalAction>,
    /// The ID store.
    pub ids: Arc<MemoryIdStore>,
    /// The KMS.
    pub kms: Arc<MemoryKms>,
    /// The configuration used.
    pub config: Arc<Config>,
    /// The client (no cookie store: tests choose the cookie they send).
    pub client: reqwest::Client,
    /// The cookie name in use.
    pub cookie_name: String,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body text.
    pub text: String,
}

impl Reply {
    /// Sends `req` and reads the whole reply.
    pub async fn of(req: reqwest::RequestBuilder) -> Self {
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        Self {
            status,
            headers,
            text,
        }
    }

    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    /// The `error` code of a JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect()
    }

    /// The new session cookie value, if one was set (not a deletion).
    pub fn cookie(&self) -> Option<String> {
        self.set_cookies().iter().find_map(|c| {
            let first = c.split(';').next()?;
            let (_, value) = first.split_once('=')?;
            (!value.is_empty()).then(|| value.to_owned())
        })
    }

    /// The first `Set-Cookie` header in full.
    pub fn set_cookie_header(&self) -> Option<String> {
        self.set_cookies().into_iter().next()
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii").to_owned())
    }

    /// Every value of a header, joined with `, `.
    pub fn header_all(&self, name: &str) -> String {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().expect("ascii"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Asserts an error that also deletes the session cookie.
    #[track_caller]
    pub fn assert_error_clearing(&self, status: u16, code: &str) {
        self.assert_error(status, code);
        assert!(
            self.clears_cookie(),
            "cookie not cleared: {:?}",
            self.set_cookies()
        );
    }

    /// Asserts an error that leaves the client's cookie alone (no `Set-Cookie`).
    #[track_caller]
    pub fn assert_error_keeping(&self, status: u16, code: &str) {
        self.assert_error(status, code);
        assert!(
            self.set_cookies().is_empty(),
            "unexpected Set-Cookie: {:?}",
            self.set_cookies()
        );
    }

    /// Whether the response deletes the session cookie.
    pub fn clears_cookie(&self) -> bool {
        self.set_cookies().iter().any(|c| c.contains("Max-Age=0"))
    }

    /// Asserts an error with `status` and `code` in the JSON error shape.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.error().as_str()),
            (status, code),
            "body: {}",
            self.text
        );
        assert!(
            self.json()["message"].is_string(),
            "message missing: {}",
            self.text
        );
    }
}

/// Serves `app` on a free loopback port for the rest of the test; its address.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("server runs");
    });
    addr
}

impl TestApp {
    /// A server with the default configuration.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// A server configured by these environment variables (on top of the defaults).
    pub async fn spawn_with(vars: &[(&str, &str)]) -> Self {
        Self::spawn_with_id_capacity(vars, 100_000).await
    }

    /// A server whose in-memory ID store holds at most `capacity` live IDs.
    pub async fn spawn_with_id_capacity(vars: &[(&str, &str)], capacity: usize) -> Self {
        let all: Vec<(&str, &str)> = NO_LIMITS.iter().chain(vars).copied().collect();
        Self::build(&all, capacity).await
    }

    /// A server with the abuse limits at their defaults (then `vars`).
    pub async fn spawn_limited(vars: &[(&str, &str)]) -> Self {
        Self::build(vars, 100_000).await
    }

    /// A server whose final action is the configured one (`OTP_FINAL_ACTION`),
    /// not the counting fake; no abuse limits.
    pub async fn spawn_stock(vars: &[(&str, &str)]) -> Self {
        let all: Vec<(&str, &str)> = NO_LIMITS.iter().chain(vars).copied().collect();
        Self::build_with(&all, 100_000, false).await
    }

    async fn build(vars: &[(&str, &str)], capacity: usize) -> Self {
        Self::build_with(vars, capacity, true).await
    }

    async fn build_with(vars: &[(&str, &str)], capacity: usize, counting: bool) -> Self {
        let config = Arc::new(
            Config::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
                .expect("test configuration is valid"),
        );
        let clock = Arc::new(ManualClock::new(START));
        let sender = Arc::new(RecordingSender::new());
        let final_action = Arc::new(CountingFinalAction::default());
        // The defaults, with fakes where a test reads them and concrete in-memory
        // stores (the test looks inside them; the configured ones are the same kinds).
        let ids = Arc::new(MemoryIdStore::new(capacity));
        let kms = Arc::new(MemoryKms::new(
            config.kms.rotation(),
            config.policy.key_retention(),
        ));
        let dyn_clock = clock.clone() as Arc<dyn Clock>;
        let mut plugins = Plugins::from_config(&config, &dyn_clock).expect("plug-ins build");
        plugins.sender = sender.clone();
        plugins.ids = ids.clone();
        plugins.kms = kms.clone();
        if counting {
            plugins.final_action = final_action.clone();
        }
        let state = AppState::new(&config, plugins, dyn_clock);
        let app = router::<()>(state);
        let addr = serve(app).await;
        Self {
            base: format!("http://{addr}"),
            addr,
            clock,
            sender,
            final_action,
            ids,
            kms,
            cookie_name: config.cookie_name(),
            config,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
        }
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, seconds: f64) {
        self.clock.advance(Duration::from_secs_f64(seconds));
    }

    /// Sends a request built by `f` and reads the whole reply.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        Reply::of(req).await
    }

    /// `POST path` with the session cookie (if any).
    pub fn post(&self, path: &str, cookie: Option<&str>) -> reqwest::RequestBuilder {
        let mut req = self.client.post(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            req = req.header("cookie", format!("{}={c}", self.cookie_name));
        }
        req
    }

    /// Create with a JSON body.
    pub async fn create_json(&self, cookie: Option<&str>, body: &serde_json::Value) -> Reply {
        self.send(
            self.post("/api/otp/create", cookie)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    /// Create with a urlencoded form body such as `email=a%40b.c`.
    pub async fn create_form(&self, cookie: Option<&str>, form: &str) -> Reply {
        self.send(
            self.post("/api/otp/create", cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.to_owned()),
        )
        .await
    }

    /// Resend.
    pub async fn resend(&self, cookie: Option<&str>) -> Reply {
        self.send(self.post("/api/otp/resend", cookie)).await
    }

    /// Verify `otp` as a urlencoded form.
    pub async fn verify(&self, cookie: Option<&str>, otp: &str) -> Reply {
        self.send(
            self.post("/api/otp/verify", cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("otp={otp}")),
        )
        .await
    }

    /// Starts a session for `{"email": email}`; returns the cookie and the code sent.
    pub async fn session(&self, email: &str) -> (String, String) {
        let r = self
            .create_json(None, &serde_json::json!({ "email": email }))
            .await;
        assert_eq!(r.status, 200, "create failed: {}", r.text);
        let cookie = r.cookie().expect("create sets the cookie");
        (cookie, self.sender.last_code())
    }

    /// How many codes have been sent so far.
    pub fn sent_count(&self) -> usize {
        self.sender.sent().len()
    }

    /// Starts a session from a JSON credential; returns the cookie and the code sent.
    pub async fn session_json(&self, body: &serde_json::Value) -> (String, String) {
        let r = self.create_json(None, body).await;
        assert_eq!(r.status, 200, "create failed: {}", r.text);
        (
            r.cookie().expect("create sets the cookie"),
            self.sender.last_code(),
        )
    }

    /// A request with an arbitrary raw `Cookie` header (no name added).
    pub fn post_raw_cookie(&self, path: &str, cookie_header: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .header("cookie", cookie_header.to_owned())
    }

    /// Seals `plaintext` exactly as the server would (current key, this cookie name):
    /// an authentic cookie holding whatever bytes a test wants.
    pub async fn forge(&self, plaintext: &[u8]) -> String {
        let (id, kek) = self.kms.current(self.clock.now()).await.expect("key");
        secure_otp_server::crypto::seal(id, &kek, &self.cookie_name, plaintext)
    }

    /// Sends raw bytes over a new TCP connection and reads the reply until the server
    /// closes it. Writing and reading run together, so an early answer (413) is read
    /// even if the server stops reading the body.
    pub async fn raw(&self, request: Vec<u8>) -> RawReply {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let (mut rd, mut wr) = stream.into_split();
        let writer = tokio::spawn(async move {
            let _ = wr.write_all(&request).await;
            let _ = wr.flush().await;
            wr
        });
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        drop(writer.await);
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        RawReply {
            status,
            head: head.to_ascii_lowercase(),
            body: body.to_owned(),
        }
    }

    /// A well-formed code that differs from `code`.
    pub fn wrong_code(&self, code: &str) -> String {
        let alt = if code.starts_with('0') { "1" } else { "0" };
        format!("{alt}{}", &code[1..])
    }
}
