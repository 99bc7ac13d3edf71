//! The real compiled binary: start-up from the environment, the `log` sender's line,
//! and refusing bad configuration.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_secure-otp-server");

/// How long to wait for an expected line before failing (generous: the machine is shared).
const PATIENCE: Duration = Duration::from_secs(30);

/// Kills the server when the test ends, however it ends.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes ANSI escape sequences (there should be none: stdout is a pipe).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn command(vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("RUST_LOG", "info")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

impl Server {
    fn start(vars: &[(&str, &str)]) -> Self {
        let mut child = command(&[&[("PORT", "0"), ("HOST", "127.0.0.1")], vars].concat())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(strip_ansi(&line)).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            child,
            lines,
            base: String::new(),
        };
        let line = server.wait_for(|l| l.contains("listening on http://"));
        assert!(
            !line.contains('\u{1b}'),
            "no colour codes when stdout is not a terminal"
        );
        let start = line.find("http://").expect("address");
        let addr: String = line[start..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"')
            .collect();
        server.base = addr;
        server
    }

    /// The next stdout line matching `pred`.
    fn wait_for(&mut self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(e) => {
                    let status = self.child.try_wait();
                    panic!("no matching stdout line ({e}); process status {status:?}");
                }
            }
        }
    }

    /// Every line received so far (without waiting).
    fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

#[tokio::test]
async fn the_binary_prints_the_code_with_the_log_sender_and_it_verifies() {
    let mut server = Server::start(&[]);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/api/otp/create", server.base))
        .header("content-type", "application/json")
        .body(r#"{"email":"bin@example.com"}"#)
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 200);
    let set = r
        .headers()
        .get("set-cookie")
        .expect("cookie")
        .to_str()
        .expect("ascii")
        .to_owned();
    let pair = set.split(';').next().expect("pair").to_owned();
    assert!(pair.starts_with("o="), "{set}");
    let credential = r#"credential={"email":"bin@example.com"}"#;
    let line = server.wait_for(|l| l.contains(credential));
    let code: String = line
        .split("otp=")
        .nth(1)
        .expect("otp= in the line")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    assert_eq!(code.len(), 10, "{line}");
    // Exactly one line carries it.
    let r = client
        .post(format!("{}/api/otp/verify", server.base))
        .header("cookie", &pair)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("otp={code}"))
        .send()
        .await
        .expect("verify");
    assert_eq!(r.status(), 200);
    let body: serde_json::Value =
        serde_json::from_str(&r.text().await.expect("body")).expect("json");
    assert_eq!(body["credential"], r#"{"email":"bin@example.com"}"#);
    let later = server.drain();
    let repeats = later
        .iter()
        .filter(|l| l.contains(credential) || l.contains(&format!("otp={code}")))
        .count();
    assert_eq!(repeats, 0, "the code was printed once: {later:?}");
    let health = client
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
    let server = Server::start(&[("ENVIRONMENT", "production"), ("OTP_SENDER", "log")]);
    let r = reqwest::Client::new()
        .post(format!("{}/api/otp/create", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=prod%40example.com")
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 200);
    let set = r
        .headers()
        .get("set-cookie")
        .expect("cookie")
        .to_str()
        .expect("ascii");
    assert!(set.starts_with("__Host-Http-o="), "{set}");
    assert!(set.contains("Secure"), "{set}");
    assert!(r.headers().get("strict-transport-security").is_some());
}
