//! Metrics and audit events of the real binary: a Prometheus scrape of
//! `METRICS_ADDR` parsed as the exposition format, and the audit events read from
//! its JSON output, with no code or full address in them.

use std::collections::HashMap;

use crate::process::Server;

/// One sample of the exposition format: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: HashMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format strictly enough to catch a malformed line:
/// `# HELP` / `# TYPE` comments, and `name{label="value",...} number` samples whose
/// family has a `# TYPE`.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut typed: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap());
            let what = parts.next().unwrap_or_default();
            match kind {
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&what),
                        "{line}"
                    );
                    typed.insert(name.to_owned(), what.to_owned());
                }
                "HELP" => assert!(!what.is_empty(), "{line}"),
                _ => panic!("unknown comment: {line}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("not a number: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), HashMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                let labels = body
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once("=\"").expect("label=\"value\"");
                        (k.to_owned(), v.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels)
            }
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains_key(*f)))
            .unwrap_or(&name);
        assert!(typed.contains_key(family), "no # TYPE for {line}");
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    samples
}

/// The value of the sample `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

async fn post(base: &str, path: &str, cookie: Option<&str>, body: &str) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.expect("answer")
}

fn cookie_of(r: &reqwest::Response) -> String {
    let set = r.headers()["set-cookie"].to_str().expect("ascii");
    set.split(';').next().expect("pair").to_owned()
}

/// create, a wrong code, the right code, and a create refused by the per-IP limit.
async fn one_of_each(server: &mut Server, email: &str) -> String {
    let base = server.base.clone();
    let created = post(
        &base,
        "/api/otp/create",
        None,
        &format!(r#"{{"email":"{email}"}}"#),
    )
    .await;
    assert_eq!(created.status(), 200);
    let code = server.code_for(email);
    // The same code with its last character changed: well-formed, and wrong.
    let last = code.chars().last().expect("a code");
    let wrong = format!(
        "{}{}",
        &code[..code.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let r = post(
        &base,
        "/api/otp/verify",
        Some(&cookie_of(&created)),
        &format!(r#"{{"otp":"{wrong}"}}"#),
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = post(
        &base,
        "/api/otp/verify",
        Some(&cookie_of(&r)),
        &format!(r#"{{"otp":"{code}"}}"#),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = post(
        &base,
        "/api/otp/create",
        None,
        r#"{"email":"other@example.com"}"#,
    )
    .await;
    assert_eq!(
        r.status(),
        429,
        "the second create from this IP is over 1/1h"
    );
    code
}

/// The default generator's codes (10 letters and digits) do not turn up by chance
/// in a timestamp or a request id, as a 6-digit code could.
const VARS: [(&str, &str); 1] = [("OTP_LIMIT_CREATES_PER_IP", "1/1h")];

#[tokio::test]
async fn metrics_are_scraped_on_their_own_address_in_the_exposition_format() {
    let mut server = Server::start(&[&VARS[..], &[("METRICS_ADDR", "127.0.0.1:0")]].concat());
    let line = server.wait_for(|l| l.contains("metrics on http://"));
    let start = line.find("http://").expect("address");
    let url: String = line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect();
    one_of_each(&mut server, "metrics@example.com").await;

    let scrape = reqwest::get(&url).await.expect("scrape");
    assert_eq!(scrape.status(), 200);
    let content_type = scrape.headers()["content-type"].to_str().expect("ascii");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = scrape.text().await.expect("body");
    let samples = parse_exposition(&text);
    let create = [("route", "/api/otp/create")];
    let expect = |name: &str, labels: &[(&str, &str)], want: f64| {
        assert_eq!(
            value(&samples, name, labels),
            Some(want),
            "{name} {labels:?}\n{text}"
        );
    };
    expect(
        "otp_http_requests_total",
        &[create[0], ("status", "200")],
        1.0,
    );
    expect(
        "otp_http_requests_total",
        &[create[0], ("status", "429")],
        1.0,
    );
    expect(
        "otp_http_requests_total",
        &[("route", "/api/otp/verify"), ("status", "403")],
        1.0,
    );
    expect("otp_http_request_duration_seconds_count", &create, 2.0);
    expect(
        "otp_http_request_duration_seconds_bucket",
        &[create[0], ("le", "+Inf")],
        2.0,
    );
    expect("otp_codes_created_total", &[], 1.0);
    expect(
        "otp_codes_sent_total",
        &[("channel", "email"), ("outcome", "sent")],
        1.0,
    );
    expect("otp_codes_verified_total", &[], 1.0);
    expect("otp_codes_failed_total", &[], 1.0);
    expect("otp_limit_hits_total", &[("limit", "creates:ip")], 1.0);
    expect("otp_kek_rotations_total", &[("backend", "memory")], 1.0);
    // The verified session's ID is gone; the superseded ones were replaced.
    assert!(
        value(&samples, "otp_live_sessions", &[]).is_some(),
        "{text}"
    );
    assert!(
        value(
            &samples,
            "otp_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ) == Some(1.0),
        "{text}"
    );
    // Not on the API's address.
    let r = reqwest::get(format!("{}/metrics", server.base))
        .await
        .expect("answer");
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn audit_events_name_what_happened_and_never_the_code_or_the_address() {
    let email = "audit.person@example.com";
    let mut server = Server::start(&[&VARS[..], &[("LOG_FORMAT", "json")]].concat());
    let code = one_of_each(&mut server, email).await;
    // stop() ends the process with SIGTERM: the workers write what they gathered.
    let lines = server.stop();
    let events: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "audit")
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["fields"]["event"].as_str().expect("event"))
        .collect();
    for want in [
        "code_sent",
        "session_created",
        "verify_failed",
        "verified",
        "limit_hit",
    ] {
        assert!(names.contains(&want), "no {want} in {names:?}");
    }
    let mut hashes = Vec::new();
    for e in &events {
        let f = &e["fields"];
        assert!(e["timestamp"].is_string(), "{e}");
        assert_eq!(e["span"]["client_ip"], "127.0.0.1", "{e}");
        assert_eq!(
            e["span"]["request_id"].as_str().map(str::len),
            Some(32),
            "{e}"
        );
        assert!(f["outcome"].is_string(), "{e}");
        if f["event"] == "limit_hit" {
            assert_eq!(f["limit"], "creates:ip", "{e}");
            continue;
        }
        let masked = f["credential"].as_str().expect("masked credential");
        assert!(
            masked.contains('*') && !masked.contains("audit.person"),
            "{e}"
        );
        let hash = f["credential_hash"].as_str().expect("hash");
        assert_eq!(hash.len(), 24, "{e}");
        hashes.push(hash.to_owned());
    }
    hashes.dedup();
    assert_eq!(hashes.len(), 1, "one address, one hash: {hashes:?}");
    let failed = events
        .iter()
        .find(|e| e["fields"]["event"] == "verify_failed")
        .expect("verify_failed");
    assert_eq!(failed["fields"]["outcome"], "incorrect");
    assert!(failed["fields"]["attempts_left"].is_u64(), "{failed}");
    // Only the development sender's own line holds the code or the address.
    for line in lines.iter().filter(|l| !l.contains("otp-sender")) {
        assert!(!line.contains(&code), "the code leaked: {line}");
        assert!(!line.contains(email), "the address leaked: {line}");
    }
}

/// The binary's workers gather log lines while busy (`telemetry::batched`): under a
/// burst from many connections at once, every request still gets exactly one whole
/// access line, none split or merged with another, all written by the time the
/// process has stopped gracefully.
#[tokio::test]
async fn under_a_burst_every_request_has_one_whole_access_line() {
    const REQUESTS: usize = 200;
    let mut server = Server::start(&[("LOG_FORMAT", "json")]);
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|n| {
            let (client, base) = (client.clone(), server.base.clone());
            tokio::spawn(async move {
                let r = client
                    .post(format!("{base}/api/otp/verify"))
                    .header("content-type", "application/json")
                    .header("x-request-id", format!("burst-{n}"))
                    .body(r#"{"otp":"123456"}"#)
                    .send()
                    .await
                    .expect("answer");
                r.status().as_u16()
            })
        })
        .collect();
    for t in tasks {
        // No cookie: a 400 whose access line names the request.
        assert_eq!(t.await.expect("task"), 400);
    }
    let lines = server.stop();
    let mut seen = std::collections::HashSet::new();
    for line in lines.iter().filter(|l| l.contains("burst-")) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["fields"]["message"] == "request" {
            let id = v["span"]["request_id"].as_str().expect("request id");
            assert!(seen.insert(id.to_owned()), "two access lines for {id}");
        }
    }
    assert_eq!(seen.len(), REQUESTS, "access lines: {}", seen.len());
}
