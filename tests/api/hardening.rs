//! The limits a service on the open internet needs, each proven against the real
//! binary or the real router: stalled clients are cut off, idle sockets do not
//! starve new clients, shutdown is bounded, nothing is sent without a stored
//! session, cross-site pages cannot trigger sends, a lost race keeps the cookie.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;
use crate::process::Server;

fn addr_of(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

/// Reads until the peer closes (or `limit` passes); what was read, and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
        }
    }
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let server = Server::start(&[("HTTP_HEADER_TIMEOUT_SECONDS", "1")]);
    let mut s = TcpStream::connect(addr_of(&server.base))
        .await
        .expect("connect");
    s.write_all(b"POST /api/otp/create HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(closed, "still open after 10 s");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // An idle keep-alive connection is closed after the same time.
    let mut idle = TcpStream::connect(addr_of(&server.base))
        .await
        .expect("connect");
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let (text, closed) = read_until_closed(&mut idle, Duration::from_secs(10)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed, "an idle keep-alive connection stays open");
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408_in_the_error_shape() {
    let server = Server::start(&[("HTTP_REQUEST_TIMEOUT_SECONDS", "3")]);
    let mut s = TcpStream::connect(addr_of(&server.base))
        .await
        .expect("connect");
    s.write_all(
        b"POST /api/otp/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"email\":",
    )
    .await
    .expect("write");
    let started = Instant::now();
    let (text, _) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"error\":\"REQUEST:TIMEOUT\""), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn five_hundred_idle_connections_do_not_keep_a_new_client_waiting() {
    let server = Server::start(&[]);
    let addr = addr_of(&server.base);
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    let started = Instant::now();
    let r = reqwest::get(format!("{}/health", server.base))
        .await
        .expect("health");
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once_and_logged() {
    let mut server = Server::start(&[("HTTP_MAX_CONNECTIONS", "4")]);
    let addr = addr_of(&server.base);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(&addr).await.expect("connect");
    let _ = extra
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (text, closed) = read_until_closed(&mut extra, Duration::from_secs(5)).await;
    assert!(closed && text.is_empty(), "{text}");
    server.wait_for(|l| l.contains("HTTP_MAX_CONNECTIONS"));
    drop(held);
}

#[tokio::test]
async fn a_thousand_stalled_bodies_keep_the_process_small() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let server = Server::start(&[]);
    let addr = addr_of(&server.base);
    let chunk = vec![b'a'; 100 * 1024];
    let mut held = Vec::new();
    for _ in 0..1000 {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(
            b"POST /api/otp/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 102400\r\n\r\n",
        )
        .await
        .expect("headers");
        // All but the last byte of the body: the server must hold it, and wait.
        s.write_all(&chunk[..chunk.len() - 1]).await.expect("body");
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_mb = rss_kb(server.pid()) / 1024;
    assert!(rss_mb < 64, "RSS {rss_mb} MB with 1000 stalled bodies");
    drop(held);
}

#[test]
fn sigterm_with_a_stalled_client_exits_0_within_the_grace_period() {
    let mut server = Server::start(&[("SHUTDOWN_GRACE_SECONDS", "2")]);
    let addr = addr_of(&server.base);
    let mut stalled = std::net::TcpStream::connect(&addr).expect("connect");
    std::io::Write::write_all(
        &mut stalled,
        b"POST /api/otp/create HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{",
    )
    .expect("write");
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let status = server
        .terminate(Duration::from_secs(6))
        .expect("exited within the grace period + 1 s (and some slack for a loaded machine)");
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn cross_site_pages_cannot_make_browsers_send_codes() {
    let app = TestApp::spawn_with(&[("CORS_ORIGIN", "https://app.example.com")]).await;
    let post = |origin: Option<&str>, fetch_site: Option<&str>| {
        let mut req = app
            .post("/api/otp/create", None)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=ann%40example.com");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(f) = fetch_site {
            req = req.header("sec-fetch-site", f);
        }
        req
    };
    for (origin, site) in [
        (Some("https://evil.example"), None),
        (Some("null"), None),
        (None, Some("cross-site")),
    ] {
        let r = app.send(post(origin, site)).await;
        r.assert_error_keeping(403, "REQUEST:FORBIDDEN_ORIGIN");
    }
    assert_eq!(app.sent_count(), 0, "nothing was sent");
    let own = app.base.clone();
    for (origin, site) in [
        (None, None),
        (Some("https://app.example.com"), None),
        (Some(own.as_str()), Some("same-origin")),
    ] {
        let r = app.send(post(origin, site)).await;
        assert_eq!(r.status, 200, "{origin:?}: {}", r.text);
    }
    assert_eq!(app.sent_count(), 3);
}

#[tokio::test]
async fn a_double_submit_leaves_the_browser_with_a_working_cookie() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    let wrong = app.wrong_code(&code);
    let (a, b) = tokio::join!(
        app.verify(Some(&cookie), &wrong),
        app.verify(Some(&cookie), &wrong)
    );
    // A cookie jar applies the answers in arrival order (either order here).
    for order in [[&a, &b], [&b, &a]] {
        let mut jar = Some(cookie.clone());
        for r in order {
            if r.clears_cookie() {
                jar = None;
            } else if let Some(c) = r.cookie() {
                jar = Some(c);
            }
        }
        let jar = jar.expect("the jar still holds a cookie");
        assert_ne!(jar, cookie, "the winner's cookie");
    }
    let (winner, loser) = if a.status == 409 { (&b, &a) } else { (&a, &b) };
    loser.assert_error_keeping(409, "OTP:CONFLICT");
    winner.assert_error(403, "OTP:INCORRECT");
    let next = winner.cookie().expect("next cookie");
    assert_eq!(app.verify(Some(&next), &code).await.status, 200);
}

#[tokio::test]
async fn verify_takes_a_json_body_too() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    let r = app
        .send(
            app.post("/api/otp/verify", Some(&cookie))
                .header("content-type", "application/json")
                .body(json!({ "otp": code }).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn cors_answers_expose_retry_after_and_same_site_is_configurable() {
    let app = TestApp::spawn_with(&[
        ("CORS_ORIGIN", "https://app.example.com"),
        ("OTP_COOKIE_SAMESITE", "none"),
        ("OTP_COOKIE_SECURE", "true"),
    ])
    .await;
    let r = app
        .send(
            app.post("/api/otp/create", None)
                .header("origin", "https://app.example.com")
                .header("content-type", "application/json")
                .body(json!({"email": "ann@example.com"}).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.header("access-control-expose-headers").as_deref(),
        Some("Retry-After, X-Request-Id, Idempotent-Replayed")
    );
    let set = r.set_cookies().join("\n");
    assert!(set.contains("; Secure; SameSite=None"), "{set}");
}

#[tokio::test]
async fn the_email_schema_refuses_unknown_keys() {
    let app = TestApp::spawn_with(&[("OTP_CREDENTIAL", "email")]).await;
    let r = app
        .create_json(
            None,
            &json!({"email": "attacker@example.com", "userId": "admin"}),
        )
        .await;
    r.assert_error_keeping(400, "CREDENTIAL:INVALID");
    assert_eq!(app.sent_count(), 0);
}

#[test]
fn help_and_version_print_and_exit() {
    for (arg, expect) in [
        ("--help", "Usage:"),
        ("--version", env!("CARGO_PKG_VERSION")),
    ] {
        let out = crate::process::command(&[])
            .arg(arg)
            .output()
            .expect("runs");
        assert!(out.status.success(), "{arg}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(expect),
            "{arg}"
        );
    }
    let out = crate::process::command(&[("CORS_ORIGIN", "http://é.example")])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CORS_ORIGIN"));
}

#[tokio::test]
async fn with_redis_stopped_create_answers_503_and_sends_nothing() {
    use std::sync::Arc;

    use secure_otp_server::testing::RecordingSender;
    use secure_otp_server::{AppState, Clock, Config, Plugins, SystemClock, router};

    let mut redis = crate::redis_support::RedisServer::start();
    let config = Config::from_vars([
        ("OTP_ID_STORE", "redis".to_owned()),
        ("REDIS_URL", redis.url()),
        ("REDIS_TIMEOUT_MS", "300".to_owned()),
    ])
    .expect("valid");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut plugins = Plugins::from_config(&config, &clock).expect("plug-ins");
    let sender = Arc::new(RecordingSender::new());
    plugins.sender = sender.clone();
    let addr = crate::helpers::serve(router(AppState::new(&config, plugins, clock))).await;
    redis.stop();
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/api/otp/create"))
        .header("content-type", "application/json")
        .body(json!({"email": "ann@example.com"}).to_string())
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 503);
    assert!(
        sender.sent().is_empty(),
        "a code was sent without a stored session"
    );
}
