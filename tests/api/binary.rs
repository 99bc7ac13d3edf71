//! The real compiled binary: start-up from the environment, the `log` sender's line,
//! and refusing bad configuration.

use crate::process::{Server, command};

#[tokio::test]
async fn the_binary_prints_the_code_with_the_log_sender_and_it_verifies() {
    let mut server = Server::start(&[]);
    let r = server
        .post(
            "/api/otp/create",
            None,
            "application/json",
            r#"{"email":"bin@example.com"}"#,
        )
        .await;
    assert_eq!(r.status, 200);
    let set = r.set_cookie_header().expect("cookie");
    let pair = set.split(';').next().expect("pair").to_owned();
    assert!(pair.starts_with("o="), "{set}");
    let credential = r#"credential={"email":"bin@example.com"}"#;
    let code = server.code_for(r#""bin@example.com""#);
    assert_eq!(code.len(), 10, "{code}");
    // Exactly one line carries it.
    let r = server
        .post(
            "/api/otp/verify",
            Some(&pair),
            "application/x-www-form-urlencoded",
            format!("otp={code}"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["credential"], r#"{"email":"bin@example.com"}"#);
    let later = server.drain();
    let repeats = later
        .iter()
        .filter(|l| l.contains(credential) || l.contains(&format!("otp={code}")))
        .count();
    assert_eq!(repeats, 0, "the code was printed once: {later:?}");
    let health = reqwest::Client::new()
        .get(format!("{}/health", server.base))
        .send()
        .await
        .expect("health");
    assert_eq!(health.text().await.expect("body"), "OK");
}

#[test]
fn production_without_otp_sender_refuses_to_start() {
    let out = command(&[("ENVIRONMENT", "production"), ("PORT", "0")])
        .output()
        .expect("runs");
    assert!(!out.status.success(), "{:?}", out.status);
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("OTP_SENDER"), "{text}");
}

#[test]
fn node_env_production_is_production_too() {
    let out = command(&[("NODE_ENV", "production"), ("PORT", "0")])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("OTP_SENDER"));
}

#[test]
fn a_bad_value_stops_start_up_naming_the_variable() {
    for (name, value) in [
        ("OTP_LENGTH", "abc"),
        ("OTP_MAX_AGE", "-1"),
        ("PORT", "http"),
        ("OTP_ALLOW_ONLY_ONE_RESENDING", "maybe"),
        ("CORS_ORIGIN", "*"),
    ] {
        let port = if name == "PORT" { value } else { "0" };
        let out = command(&[("PORT", port), (name, value)])
            .output()
            .expect("runs");
        assert!(!out.status.success(), "{name}={value}: {:?}", out.status);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(name), "{name}={value}: {stderr}");
    }
}

#[test]
fn several_bad_values_are_reported_together() {
    let out = command(&[
        ("OTP_LENGTH", "abc"),
        ("OTP_MAX_ATTEMPTS", "zero"),
        ("PORT", "0"),
    ])
    .output()
    .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("OTP_LENGTH") && stderr.contains("OTP_MAX_ATTEMPTS"),
        "{stderr}"
    );
}

#[tokio::test]
async fn production_with_an_explicit_sender_starts_with_secure_cookies() {
    let server = Server::start(&[
        ("ENVIRONMENT", "production"),
        ("OTP_SENDER", "log"),
        ("OTP_CREDENTIAL", "email"),
    ]);
    let r = server
        .post(
            "/api/otp/create",
            None,
            "application/x-www-form-urlencoded",
            "email=prod%40example.com",
        )
        .await;
    assert_eq!(r.status, 200);
    let set = r.set_cookie_header().expect("cookie");
    assert!(set.starts_with("__Host-Http-o="), "{set}");
    assert!(set.contains("Secure"), "{set}");
    assert!(r.header("strict-transport-security").is_some());
}

#[tokio::test]
async fn each_request_is_logged_with_the_client_address_resolved_through_trusted_proxies() {
    let post = |base: &str| {
        reqwest::Client::new()
            .post(format!("{base}/api/otp/verify"))
            .header("x-forwarded-for", "198.51.100.23, 127.0.0.1")
            .send()
    };
    let mut server = Server::start(&[("OTP_TRUSTED_PROXIES", "127.0.0.1")]);
    assert_eq!(post(&server.base).await.expect("answer").status(), 400);
    let line = server.wait_for(|l| l.contains("status=400"));
    assert!(line.contains("client_ip=198.51.100.23"), "{line}");
    assert!(line.contains("error=\"OTP:INVALID_FORMAT\""), "{line}");
    // Without the proxy trusted, the header is not believed.
    let mut server = Server::start(&[]);
    post(&server.base).await.expect("answer");
    let line = server.wait_for(|l| l.contains("status=400"));
    assert!(line.contains("client_ip=127.0.0.1"), "{line}");
}

#[tokio::test]
async fn a_pumping_pause_is_logged_with_its_reason_and_no_number() {
    let mut server = Server::start(&[("OTP_CREDENTIAL", "phone"), ("OTP_PUMPING_MIN_SENDS", "3")]);
    for n in 0..3 {
        let body = format!(r#"{{"phone":"+3465500000{n}"}}"#);
        let r = server
            .post("/api/otp/create", None, "application/json", body)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = server
        .post(
            "/api/otp/create",
            None,
            "application/json",
            r#"{"phone":"+34655000009"}"#,
        )
        .await;
    r.assert_error(429, "OTP:TOO_MANY_REQUESTS");
    let line = server.wait_for(|l| l.contains("pumping_pause"));
    for part in ["prefix=\"+34655\"", "sends=3", "verified=0", "SMS pumping"] {
        assert!(line.contains(part), "{part} missing: {line}");
    }
    assert!(
        !line.contains("34655000009"),
        "no number in the audit line: {line}"
    );
}

fn run(vars: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String) {
    let out = command(vars).args(args).output().expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_names_the_backends_or_every_problem() {
    let (code, out, _) = run(&[], &["check-config"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("configuration OK"), "{out}");
    assert!(
        out.contains("id_store=memory") && out.contains("limits=["),
        "{out}"
    );
    let (code, _, err) = run(
        &[("PORT", "http"), ("OTP_LIMIT_CREATES_PER_IP", "many")],
        &["check-config"],
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("PORT") && err.contains("OTP_LIMIT_CREATES_PER_IP"),
        "{err}"
    );
    let (code, _, err) = run(&[], &["no-such-command"]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn keygen_prints_keys_the_configuration_accepts() {
    let (code, entry, _) = run(&[], &["keygen", "--format", "entry"]);
    assert_eq!(code, Some(0));
    let entry = entry.trim().to_owned();
    let (code, key, _) = run(&[], &["keygen", "--format", "key"]);
    assert_eq!(code, Some(0));
    let key = key.trim().to_owned();
    assert_ne!(
        run(&[], &["keygen", "--format", "key"]).1.trim(),
        key,
        "fresh each time"
    );
    let (code, out, err) = run(
        &[
            ("OTP_KMS", "static"),
            ("OTP_KEYS", &entry),
            ("OTP_LIMIT_KEY", &key),
        ],
        &["check-config"],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("kms=static"), "{out}");
    let (_, both, _) = run(&[], &["keygen"]);
    assert_eq!(
        both.lines().filter(|l| l.starts_with('#')).count(),
        2,
        "{both}"
    );
}

#[tokio::test]
async fn healthcheck_exits_0_when_ready_and_1_when_not() {
    let server = Server::start(&[]);
    let url = format!("{}/ready", server.base);
    let out = command(&[])
        .args(["healthcheck", "--url", &url])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The default URL follows PORT.
    let port = server.base.rsplit(':').next().expect("port");
    let out = command(&[("PORT", port)])
        .arg("healthcheck")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    drop(server);
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = free.local_addr().expect("addr").port();
    drop(free);
    let out = command(&[])
        .args([
            "healthcheck",
            "--url",
            &format!("http://127.0.0.1:{closed}/ready"),
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let out = command(&[])
        .args(["healthcheck", "--url", "https://example.com/ready"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn json_logs_carry_the_request_id_on_every_line_of_a_request() {
    let mut server = Server::start(&[("LOG_FORMAT", "json")]);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/api/otp/create", server.base))
        .header("content-type", "application/json")
        .header("x-request-id", "req-42.a_b")
        .body(r#"{"email":"json@example.com"}"#)
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-request-id"],
        "req-42.a_b",
        "a sane id is echoed"
    );
    // The code is sent during the request, so its line comes before the access line.
    let sender = server.wait_for(|l| l.contains("otp-sender"));
    let access = server.wait_for(|l| l.contains("\"message\":\"request\""));
    for line in [&access, &sender] {
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object per line");
        assert_eq!(v["span"]["request_id"], "req-42.a_b", "{line}");
        assert_eq!(v["span"]["client_ip"], "127.0.0.1", "{line}");
    }
    let v: serde_json::Value = serde_json::from_str(&access).expect("JSON");
    assert_eq!(v["fields"]["status"], 200, "{access}");
    assert!(v["fields"]["duration_us"].is_u64(), "{access}");
    // A forged id (spaces, quotes, too long) is replaced by a fresh one.
    for bad in ["a b", "\"x\"", &"x".repeat(65)] {
        let r = client
            .post(format!("{}/api/otp/verify", server.base))
            .header("x-request-id", bad)
            .send()
            .await
            .expect("answer");
        let id = r.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        let line = server.wait_for(|l| l.contains("\"message\":\"request\""));
        assert!(line.contains(&id), "{line}");
        assert!(line.contains("\"error\":\"OTP:INVALID_FORMAT\""), "{line}");
    }
    // Probes stay out of an info log.
    client
        .get(format!("{}/health", server.base))
        .send()
        .await
        .expect("answer");
    let lines = server.stop();
    assert!(
        !lines.iter().any(|l| l.contains("/health")),
        "a probe was logged at info: {lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("\"message\":\"request\"") && !l.contains("\"uri\"")),
        "an access line without its span (a probe's, at info): {lines:?}"
    );
}

/// A log output that stops taking lines (a pipe nobody reads: a container runtime's
/// log driver falling behind, a paused terminal) must not stop requests: the
/// lines queue for the log writer thread, and every one arrives once the output
/// moves again.
#[tokio::test]
async fn a_stalled_log_pipe_does_not_stall_requests_and_loses_no_line() {
    use std::io::{BufRead, BufReader};
    const REQUESTS: usize = 1000;
    let mut child = command(&[("PORT", "0"), ("HOST", "127.0.0.1"), ("LOG_FORMAT", "json")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut child = crate::process::Killed(child);
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(out.read_line(&mut line).expect("a line") > 0, "no address");
        if let Some(addr) = crate::process::listening_addr(&line) {
            break addr;
        }
    };
    // From here the test reads nothing: the pipe (64 KiB) fills after about two
    // hundred access lines, and a server writing on its request path would hang.
    let client = reqwest::Client::new();
    for i in 0..REQUESTS {
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            client
                .post(format!("http://{addr}/api/otp/verify"))
                .header("x-request-id", format!("stalled-{i}"))
                .send(),
        )
        .await;
        let answer = answer
            .unwrap_or_else(|_| panic!("request {i} hung behind the unread log pipe"))
            .expect("answer");
        assert_eq!(answer.status(), 400, "request {i}");
    }
    // The output moves again: every access line arrives.
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in out.lines() {
            let Ok(line) = line else { break };
            // The access lines (lines are in order per worker, not across them).
            if !line.contains("\"message\":\"request\"") {
                continue;
            }
            if let Some(at) = line.find("\"request_id\":\"stalled-") {
                let id: String = line[at + 22..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                seen.push(id.parse::<usize>().expect("id"));
                if seen.len() == REQUESTS {
                    break;
                }
            }
        }
        seen
    });
    let deadline = std::time::Instant::now() + crate::process::PATIENCE;
    while !reader.is_finished() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.0.kill();
    let _ = child.0.wait();
    let mut seen = reader.join().expect("reader");
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..REQUESTS).collect::<Vec<_>>(),
        "every access line, once"
    );
}
