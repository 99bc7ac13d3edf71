//! Stateful API fuzzing: Schemathesis (pinned in `scripts/test.sh`) against the
//! real binary and `openapi.json`, every check on and every phase run (examples,
//! coverage, fuzzing, and the stateful phase that follows the spec's links from
//! create to status, resend, verify and cancel). Checks are only excluded where
//! the spec's `info.x-contract-choices` documents a deliberate difference;
//! `tests/schemathesis/schemathesis.toml` lists the state-dependent refusals.
//!
//! `OTP_API_FUZZ_SECONDS` bounds the run (default 60).

use std::process::Command;

use crate::helpers::NO_LIMITS;
use crate::process::Server;

/// Each documented contract choice, and the Schemathesis check it turns off.
const CHOICES: [(&str, Option<&str>); 3] = [
    ("unsupported-method", Some("unsupported_method")),
    // Handled per operation in schemathesis.toml, not excluded everywhere: negative
    // data off for create only; expected statuses per operation.
    ("form-values-are-text", None),
    ("state-dependent-refusals", None),
];

fn spec() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json"))
        .expect("openapi.json");
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn schemathesis_finds_no_failure_in_any_phase() {
    let documented: Vec<String> = spec()["info"]["x-contract-choices"]
        .as_object()
        .expect("info.x-contract-choices")
        .keys()
        .cloned()
        .collect();
    let mut known: Vec<&str> = CHOICES.iter().map(|(name, _)| *name).collect();
    known.sort_unstable();
    assert_eq!(
        documented, known,
        "every contract choice is known to this test"
    );
    let excluded: Vec<&str> = CHOICES.iter().filter_map(|(_, check)| *check).collect();
    assert!(!excluded.contains(&"not_a_server_error"));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port().to_string())
        .expect("a free port");
    let public = format!("http://127.0.0.1:{port}");
    let mut vars: Vec<(&str, &str)> = NO_LIMITS.to_vec();
    vars.extend([
        ("PORT", port.as_str()),
        ("OTP_FINAL_ACTION", "session"),
        ("OTP_MAGIC_LINK", "true"),
        ("OTP_PUBLIC_URL", public.as_str()),
        ("OTP_DEMO_PAGE", "true"),
        ("OTP_PURPOSES", "login,step_up"),
    ]);
    let server = Server::start(&vars);
    let seconds = std::env::var("OTP_API_FUZZ_SECONDS").unwrap_or_else(|_| "60".to_owned());
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("st")
        .args([
            "--config-file",
            &format!("{root}/tests/schemathesis/schemathesis.toml"),
            "run",
            &format!("{root}/openapi.json"),
            "--url",
            &server.base,
            // Every check runs by default; `--checks all` here would also override
            // the per-operation settings of schemathesis.toml (the CLI wins).
            "--exclude-checks",
            &excluded.join(","),
            "--max-time",
            &seconds,
            "--request-timeout",
            "10",
            "--no-color",
        ])
        .output()
        .expect(
            "schemathesis runs (scripts/test.sh installs it: pip install schemathesis==4.32.5)",
        );
    let report = String::from_utf8_lossy(&out.stdout);
    let summary: String = report
        .lines()
        .skip_while(|l| !l.contains("SUMMARY"))
        .collect::<Vec<_>>()
        .join("\n");
    println!("{summary}");
    assert!(out.status.success(), "schemathesis failed:\n{report}");
    assert!(
        report.contains("Stateful") && !report.contains("failures"),
        "{summary}"
    );
}
