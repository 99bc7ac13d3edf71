//! Damaged cookies (SPEC A6 fix 5): every flipped bit, every truncation, oversized and
//! garbage values give `400 OTP:INVALID_COOKIE` (the cookie cleared), never a 5xx,
//! and the server keeps serving.

use serde_json::json;

use crate::helpers::{TestApp, decode_cookie, encode_cookie};

/// Regions of the decoded cookie (crypto module docs): version, key id, wrapped DEK,
/// ciphertext, tag.
fn region(i: usize, len: usize) -> &'static str {
    match i {
        0 => "version",
        1..=8 => "key id",
        9..=48 => "wrapped DEK",
        _ if i >= len - 16 => "tag",
        _ => "ciphertext",
    }
}

#[tokio::test]
async fn every_flipped_bit_on_verify_is_an_invalid_cookie_that_is_cleared() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    let raw = decode_cookie(&cookie);
    assert!(raw.len() > 49 + 16, "there is a ciphertext");
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..raw.len() {
        for bit in 0..8 {
            let mut t = raw.clone();
            t[i] ^= 1 << bit;
            // The right code: a tampered cookie that opened would succeed.
            let r = app.verify(Some(&encode_cookie(&t)), &code).await;
            assert_eq!(
                (r.status, r.error()),
                (400, "OTP:INVALID_COOKIE".to_owned()),
                "byte {i} ({}) bit {bit}: {}",
                region(i, raw.len()),
                r.text
            );
            assert!(r.clears_cookie(), "byte {i} bit {bit}");
        }
        seen.insert(region(i, raw.len()));
    }
    assert_eq!(seen.len(), 5, "all regions covered: {seen:?}");
    assert_eq!(app.final_action.runs(), 0);
    // Nothing was consumed: the genuine cookie still verifies.
    let ok = app.verify(Some(&cookie), &code).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn a_flipped_bit_in_every_byte_on_resend_is_an_invalid_cookie() {
    let app = TestApp::spawn().await;
    let (cookie, _) = app.session("ann@example.com").await;
    app.advance(30.0);
    let raw = decode_cookie(&cookie);
    for i in 0..raw.len() {
        let mut t = raw.clone();
        t[i] ^= 1 << (i % 8);
        let r = app.resend(Some(&encode_cookie(&t))).await;
        assert_eq!(
            (r.status, r.error()),
            (400, "OTP:INVALID_COOKIE".to_owned()),
            "byte {i} ({}): {}",
            region(i, raw.len()),
            r.text
        );
        assert!(r.clears_cookie());
    }
    assert_eq!(app.sent_count(), 1, "no tampered cookie got a code resent");
    assert_eq!(app.resend(Some(&cookie)).await.status, 200);
}

#[tokio::test]
async fn a_flipped_bit_in_every_byte_on_create_starts_a_fresh_session() {
    let app = TestApp::spawn().await;
    let (cookie, _) = app.session("ann@example.com").await;
    let raw = decode_cookie(&cookie);
    for i in 0..raw.len() {
        let mut t = raw.clone();
        t[i] ^= 0x80 >> (i % 8);
        let r = app
            .create_json(
                Some(&encode_cookie(&t)),
                &json!({"email": "bob@example.com"}),
            )
            .await;
        assert_eq!(r.status, 200, "byte {i}: {}", r.text);
        assert!(r.cookie().is_some());
    }
}

#[tokio::test]
async fn every_truncation_is_an_invalid_cookie() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    for n in 0..cookie.len() {
        let r = app.verify(Some(&cookie[..n]), &code).await;
        assert_eq!(
            (r.status, r.error()),
            (400, "OTP:INVALID_COOKIE".to_owned()),
            "first {n} characters: {}",
            r.text
        );
        // An empty cookie is no cookie: nothing to clear.
        assert_eq!(r.clears_cookie(), n > 0, "first {n} characters");
    }
    // Truncating the decoded bytes (re-encoded canonically) too.
    let raw = decode_cookie(&cookie);
    for n in 0..raw.len() {
        let r = app.verify(Some(&encode_cookie(&raw[..n])), &code).await;
        assert_eq!(r.status, 400, "first {n} bytes: {}", r.text);
        assert_eq!(r.error(), "OTP:INVALID_COOKIE");
    }
    assert_eq!(app.verify(Some(&cookie), &code).await.status, 200);
}

#[tokio::test]
async fn extended_cookies_are_invalid() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    let mut raw = decode_cookie(&cookie);
    raw.push(0);
    for bad in [
        format!("{cookie}A"),
        format!("{cookie}AA"),
        format!("{cookie}="),
        format!("{cookie}=="),
        encode_cookie(&raw),
        format!("{cookie}{cookie}"),
    ] {
        app.verify(Some(&bad), &code)
            .await
            .assert_error_clearing(400, "OTP:INVALID_COOKIE");
    }
}

#[tokio::test]
async fn oversized_cookies_never_cause_a_server_error() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    for len in [4097, 5000, 20_000, 100_000] {
        let big: String = cookie.chars().cycle().take(len).collect();
        for r in [
            app.verify(Some(&big), &code).await,
            app.resend(Some(&big)).await,
        ] {
            assert!(r.status < 500, "{len}: {} {}", r.status, r.text);
            if r.status != 431 {
                r.assert_error_clearing(400, "OTP:INVALID_COOKIE");
            }
        }
        let r = app
            .create_json(Some(&big), &json!({"email": "bob@example.com"}))
            .await;
        assert!(r.status == 200 || r.status == 431, "{len}: {}", r.status);
    }
    assert_eq!(app.verify(Some(&cookie), &code).await.status, 200);
}

#[tokio::test]
async fn garbage_values_are_invalid_cookies() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    let garbage = [
        "x",
        "AAAA",
        "!!!!!!!!",
        "%%%%",
        "%zz%",
        "%41%42%43",
        "\"\"\"",
        "\"abc\"",
        "not base64 at all",
        "AQ",
        "AQAAAAAAAAAA",
        "+/+/+/+/",
        "ÿÿÿÿ",
        "\u{1F600}",
    ];
    for value in garbage.iter().map(|g| (*g).to_owned()).chain([
        // The genuine value in the other base64 alphabet, or with padding.
        cookie.replace('-', "+").replace('_', "/") + "+",
        format!("{cookie}===="),
        // Percent-encoding that does not decode to the genuine value.
        format!("%{cookie}"),
        cookie.to_uppercase(),
    ]) {
        let header = format!("{}={}", app.cookie_name, value);
        if reqwest::header::HeaderValue::from_str(&header).is_err() {
            continue;
        }
        for path in ["/api/otp/verify", "/api/otp/resend"] {
            let r = app
                .send(
                    app.post_raw_cookie(path, &header)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(format!("otp={code}")),
                )
                .await;
            assert_eq!(
                (r.status, r.error()),
                (400, "OTP:INVALID_COOKIE".to_owned()),
                "{path} with {value:?}: {}",
                r.text
            );
        }
    }
    assert_eq!(app.verify(Some(&cookie), &code).await.status, 200);
}

#[tokio::test]
async fn an_empty_or_blank_cookie_is_no_cookie() {
    let app = TestApp::spawn().await;
    for header in ["o=", "o=   ", "o=\"\"", "o", "other=1"] {
        let r = app
            .send(
                app.post_raw_cookie("/api/otp/verify", header)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("otp=0123456789"),
            )
            .await;
        r.assert_error(400, "OTP:INVALID_COOKIE");
    }
}

#[tokio::test]
async fn a_quoted_or_percent_encoded_genuine_cookie_is_read_like_the_original_parser() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    // Hono strips surrounding quotes and percent-decodes; base64url has nothing to decode.
    let quoted = format!("{}=\"{cookie}\"", app.cookie_name);
    let r = app
        .send(
            app.post_raw_cookie("/api/otp/verify", &quoted)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("otp={}", app.wrong_code(&code))),
        )
        .await;
    r.assert_error(403, "OTP:INCORRECT");
    let next = r.cookie().expect("cookie");
    let encoded: String = next.bytes().map(|b| format!("%{b:02X}")).collect();
    let r = app
        .send(
            app.post_raw_cookie("/api/otp/verify", &format!("{}={encoded}", app.cookie_name))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("otp={code}")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn the_first_cookie_of_the_name_wins() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    let name = &app.cookie_name;
    let r = app
        .send(
            app.post_raw_cookie(
                "/api/otp/verify",
                &format!("{name}=garbage; {name}={cookie}"),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("otp={code}")),
        )
        .await;
    r.assert_error_clearing(400, "OTP:INVALID_COOKIE");
    let r = app
        .send(
            app.post_raw_cookie(
                "/api/otp/verify",
                &format!("x=1; {name}={cookie}; {name}=garbage"),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("otp={code}")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_cookie_from_another_server_is_invalid() {
    let ours = TestApp::spawn().await;
    let theirs = TestApp::spawn().await;
    let (foreign, code) = theirs.session("ann@example.com").await;
    ours.verify(Some(&foreign), &code)
        .await
        .assert_error_clearing(400, "OTP:INVALID_COOKIE");
    let r = ours
        .create_json(Some(&foreign), &json!({"email": "ann@example.com"}))
        .await;
    assert_eq!(r.status, 200, "a fresh session: {}", r.text);
}

#[tokio::test]
async fn a_value_sealed_for_another_cookie_name_is_invalid() {
    use secure_otp_server::Clock as _;
    use secure_otp_server::crypto::{Sealed, seal};
    use secure_otp_server::plugin::Kms as _;
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("ann@example.com").await;
    let (id, kek) = app.kms.current(app.clock.now()).await.expect("key");
    let plain = Sealed::parse(&cookie)
        .expect("parses")
        .open(&kek, &app.cookie_name)
        .expect("opens");
    // The name is bound into the ciphertext: the same list sealed for another name fails.
    let moved = seal(id, &kek, "another-name", &plain);
    app.verify(Some(&moved), &code)
        .await
        .assert_error_clearing(400, "OTP:INVALID_COOKIE");
    // Sealed for the right name, the same list opens (so the refusal was the name).
    let resealed = seal(id, &kek, &app.cookie_name, &plain);
    assert_eq!(app.verify(Some(&resealed), &code).await.status, 200);
}

#[tokio::test]
async fn the_server_keeps_serving_after_abuse() {
    let app = TestApp::spawn().await;
    let (cookie, _) = app.session("ann@example.com").await;
    let raw = decode_cookie(&cookie);
    for i in 0..raw.len() {
        let mut t = raw.clone();
        t[i] = t[i].wrapping_add(1);
        let _ = app.resend(Some(&encode_cookie(&t))).await;
        let _ = app
            .verify(Some(&encode_cookie(&t[..i])), "0123456789")
            .await;
    }
    assert_eq!(app.kms.key_ids().len(), 1, "no key rotated or deleted");
    let (cookie, code) = app.session("bob@example.com").await;
    assert_eq!(app.verify(Some(&cookie), &code).await.status, 200);
    let health = app
        .send(app.client.get(format!("{}/health", app.base)))
        .await;
    assert_eq!(health.text, "OK");
}
