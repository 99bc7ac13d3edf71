//! The real compiled binary: start-up from the environment, the `log` sender's line,
//! and refusing bad configuration.

use crate::process::{Server, command};

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
