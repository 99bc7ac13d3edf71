//! The demo page in a real browser: the compiled server with sessions, magic links
//! and the demo page on, driven by headless Chromium through Selenium
//! (`tests/browser/login.py`; `scripts/test.sh` installs both). The script asks
//! for the codes and links the server's `log` sender printed; this test answers
//! from the server's output.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use crate::process::Server;

/// A free loopback port (the public URL must be known before the server starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn a_person_signs_in_with_a_code_and_with_a_scanned_magic_link_in_chromium() {
    for needed in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            std::path::Path::new(needed).exists(),
            "{needed} is missing: install chromium and chromium-driver (scripts/test.sh does)"
        );
    }
    let port = free_port().to_string();
    let public = format!("http://127.0.0.1:{port}");
    let mut server = Server::start(&[
        ("PORT", &port),
        ("OTP_FINAL_ACTION", "session"),
        ("OTP_DEMO_PAGE", "true"),
        ("OTP_MAGIC_LINK", "true"),
        ("OTP_PUBLIC_URL", &public),
    ]);
    assert_eq!(server.base, public);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/login.py");
    let mut browser = Command::new("python3")
        .args([script, &server.base])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs the browser script");
    let mut answers = browser.stdin.take().expect("stdin");
    let questions = BufReader::new(browser.stdout.take().expect("stdout"));
    let mut steps = Vec::new();
    let mut passed = false;
    for line in questions.lines() {
        let line = line.expect("a line from the script");
        if let Some(address) = line.strip_prefix("CODE? ") {
            let code = server.code_for(&format!("\"{address}\""));
            writeln!(answers, "{code}").expect("answer");
        } else if let Some(address) = line.strip_prefix("LINK? ") {
            let link = server.link_for(&format!("\"{address}\""));
            assert!(link.starts_with(&public), "{link}");
            writeln!(answers, "{link}").expect("answer");
        } else if line == "PASS" {
            passed = true;
        } else {
            assert!(
                !line.starts_with("FAIL"),
                "the browser flow failed: {line}\n{steps:#?}"
            );
            steps.push(line);
        }
    }
    let status = browser.wait().expect("the script ends");
    assert!(passed && status.success(), "no PASS ({status}): {steps:#?}");
    for step in [
        "signed in as",
        "signed out",
        "scanner fetched the link twice",
        "spent link",
    ] {
        assert!(
            steps.iter().any(|s| s.contains(step)),
            "step {step:?} missing: {steps:#?}"
        );
    }
}
