//! `openapi.json` cannot drift from the server: its routes answer, other routes do not,
//! its error codes and statuses are the `Error` enum's, and real bodies fit its schemas.

use std::collections::BTreeSet;

use secure_otp_server::Error;
use serde_json::Value;

use crate::helpers::TestApp;

fn spec() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json"))
        .expect("openapi.json at the crate root");
    serde_json::from_str(&text).expect("openapi.json is JSON")
}

/// Every client-facing error; the match below stops compiling when a variant is added.
fn all_errors() -> Vec<Error> {
    let all = vec![
        Error::BodyTooLarge,
        Error::CredentialInvalid,
        Error::Conflict,
        Error::Expired,
        Error::Incorrect {
            otp_block: None,
            attempts_left: 1,
        },
        Error::SessionInvalid,
        Error::IdempotencyKeyInvalid,
        Error::IdempotencyMismatch,
        Error::InvalidPurpose,
        Error::PurposeMismatch,
        Error::InvalidCookie,
        Error::InvalidFormat,
        Error::ResentNotAllowed,
        Error::TooManyAttempts,
        Error::TooManyCredentials,
        Error::VerificationNotAllowed,
        Error::TooManyRequests {
            retry_at: secure_otp_server::Timestamp::from_millis(0),
            retry_in: 1,
        },
        Error::UnsupportedCountry,
        Error::ForbiddenOrigin,
        Error::RequestTimeout,
        Error::Unavailable(String::new()),
        Error::Internal(String::new()),
    ];
    for e in &all {
        match e {
            Error::BodyTooLarge
            | Error::CredentialInvalid
            | Error::Conflict
            | Error::Expired
            | Error::Incorrect { .. }
            | Error::InvalidCookie
            | Error::InvalidFormat
            | Error::ResentNotAllowed
            | Error::TooManyAttempts
            | Error::TooManyCredentials
            | Error::VerificationNotAllowed
            | Error::TooManyRequests { .. }
            | Error::UnsupportedCountry
            | Error::SessionInvalid
            | Error::IdempotencyKeyInvalid
            | Error::IdempotencyMismatch
            | Error::InvalidPurpose
            | Error::PurposeMismatch
            | Error::ForbiddenOrigin
            | Error::RequestTimeout
            | Error::Unavailable(_)
            | Error::Internal(_) => {}
        }
    }
    all
}

#[test]
fn the_documented_error_codes_are_exactly_the_servers() {
    let spec = spec();
    let documented: BTreeSet<String> = spec["components"]["schemas"]["ErrorResponse"]["properties"]
        ["error"]["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect();
    let actual: BTreeSet<String> = all_errors().iter().map(|e| e.code().to_owned()).collect();
    assert_eq!(documented, actual);
    for e in all_errors() {
        let status = spec["x-error-statuses"][e.code()]
            .as_u64()
            .expect("status documented");
        if e.code() == "SERVER" {
            assert!(matches!(e.status().as_u16(), 500 | 503));
        } else {
            assert_eq!(u64::from(e.status().as_u16()), status, "{}", e.code());
        }
    }
}

#[test]
fn each_operation_documents_its_codes_under_their_status() {
    let spec = spec();
    let statuses = &spec["x-error-statuses"];
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operation") {
            for (status, response) in op["responses"].as_object().expect("responses") {
                let Some(examples) =
                    response["content"]["application/json"]["examples"].as_object()
                else {
                    continue;
                };
                for example in examples.values() {
                    let code = example["value"]["error"].as_str().expect("code");
                    let expected = statuses[code].as_u64().expect("known code");
                    assert_eq!(
                        status.parse::<u64>().ok(),
                        Some(expected),
                        "{method} {path}: {code}"
                    );
                    let message = all_errors()
                        .into_iter()
                        .find(|e| e.code() == code)
                        .map(|e| e.message())
                        .expect("a real code");
                    assert_eq!(example["value"]["message"], message, "{code}");
                }
            }
        }
    }
}

#[tokio::test]
async fn every_documented_route_answers_and_no_other_does() {
    // Every optional endpoint on: sessions, magic links, the demo page.
    let app = TestApp::spawn_stock(&[
        ("OTP_FINAL_ACTION", "session"),
        ("OTP_MAGIC_LINK", "true"),
        ("OTP_PUBLIC_URL", "https://otp.example.com"),
        ("OTP_DEMO_PAGE", "true"),
    ])
    .await;
    let spec = spec();
    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("operation").keys() {
            documented.insert((method.to_uppercase(), path.clone()));
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let r = app
                .send(app.client.request(m, format!("{}{path}", app.base)))
                .await;
            assert_ne!(
                r.status, 404,
                "{method} {path} is documented but not routed"
            );
        }
    }
    let paths = [
        "/",
        "/api",
        "/api/otp",
        "/api/otp/create/",
        "/api/otp/other",
        "/healthz",
        "/api/otp/verify/x",
    ];
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH"];
    for path in paths
        .iter()
        .map(|p| p.to_string())
        .chain(spec["paths"].as_object().expect("paths").keys().cloned())
    {
        for method in methods {
            if documented.contains(&(method.to_owned(), path.clone())) {
                continue;
            }
            let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let r = app
                .send(app.client.request(m, format!("{}{path}", app.base)))
                .await;
            assert_eq!(
                r.status, 404,
                "{method} {path} answers but is not documented"
            );
            assert!(r.text.is_empty());
        }
    }
}

fn assert_fits(schema: &Value, body: &Value) {
    let object = body.as_object().expect("an object body");
    let properties = schema["properties"].as_object().expect("properties");
    for key in object.keys() {
        assert!(
            properties.contains_key(key),
            "undocumented field {key} in {body}"
        );
    }
    for required in schema["required"].as_array().expect("required") {
        assert!(
            object.contains_key(required.as_str().expect("name")),
            "missing {required} in {body}"
        );
    }
}

#[tokio::test]
async fn real_responses_fit_the_documented_schemas() {
    let app = TestApp::spawn_with(&[("OTP_ATTEMPTS_BLOCK", "2")]).await;
    let spec = spec();
    let schemas = &spec["components"]["schemas"];
    let created = app
        .create_json(None, &serde_json::json!({"email": "s@example.com"}))
        .await;
    assert_fits(&schemas["OtpSessionState"], &created.json());
    let cookie = created.cookie().expect("cookie");
    let code = app.sender.last_code();
    let wrong = app.verify(Some(&cookie), &app.wrong_code(&code)).await;
    assert_eq!(wrong.error(), "OTP:INCORRECT");
    assert!(wrong.json()["otpBlock"].is_string());
    assert_fits(&schemas["ErrorResponse"], &wrong.json());
    app.advance(30.0);
    let cookie = wrong.cookie().expect("cookie");
    let ok = app.verify(Some(&cookie), &code).await;
    assert_eq!(ok.status, 200);
    assert_fits(&schemas["Verified"], &ok.json());
    let pattern = schemas["VerifyForm"]["properties"]["otp"]["pattern"]
        .as_str()
        .expect("pattern");
    assert_eq!(
        pattern,
        app.config
            .code_format
            .pattern()
            .replace("0123456789abcdefghijklmnopqrstuvwxyz", "0-9a-z")
    );
}
