//! Login out of the box (issue 17): the `session` final action and its endpoints,
//! key rotation, the JWKS checked by an independent JWT library, the `webhook`
//! final action against a real receiver, magic links and the demo page.

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use secure_otp_server::Clock as _;
use secure_otp_server::crypto::Kek;
use secure_otp_server::webhook::webhook_signature;

use crate::helpers::{Reply, TestApp};

const SESSION: [(&str, &str); 1] = [("OTP_FINAL_ACTION", "session")];

fn key() -> String {
    Kek::generate().dangerous_to_base64()
}

/// The value of the cookie called `name` set by `reply` (empty for a deletion).
fn set_cookie(reply: &Reply, name: &str) -> Option<(String, String)> {
    reply.set_cookies().into_iter().find_map(|c| {
        let (first, _) = c.split_once(';').unwrap_or((&c, ""));
        let (n, v) = first.split_once('=')?;
        (n == name).then(|| (v.to_owned(), c.clone()))
    })
}

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn whoami(app: &TestApp, token: &str) -> Reply {
    Reply::of(
        client()
            .get(format!("{}/api/session", app.base))
            .header("cookie", format!("session={token}")),
    )
    .await
}

/// Signs `email` in; the verify answer and the session token.
async fn sign_in(app: &TestApp, email: &str) -> (Reply, String) {
    let (cookie, code) = app.session(email).await;
    let r = app.verify(Some(&cookie), &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (token, _) = set_cookie(&r, "session").expect("a session cookie");
    (r, token)
}

#[tokio::test]
async fn a_verified_code_opens_a_session_that_the_session_endpoint_reads() {
    let app = TestApp::spawn_stock(&SESSION).await;
    let (r, token) = sign_in(&app, "ann@example.com").await;
    let body = r.json();
    assert_eq!(body["message"], "successfully verified");
    assert_eq!(body["session"]["sub"], "ann@example.com");
    assert_eq!(body["session"]["amr"], serde_json::json!(["email"]));
    assert!(body.get("token").is_none(), "not in the body unless asked");
    let (_, header) = set_cookie(&r, "session").expect("cookie");
    for attribute in ["Path=/", "Max-Age=86400", "HttpOnly", "SameSite=Lax"] {
        assert!(header.contains(attribute), "{attribute} in {header}");
    }
    assert!(!header.contains("Secure"), "development: {header}");
    assert!(r.clears_cookie(), "the OTP cookie is cleared too");

    let me = whoami(&app, &token).await;
    assert_eq!(me.status, 200, "{}", me.text);
    let me = me.json();
    assert_eq!(me["sub"], "ann@example.com");
    assert_eq!(me["amr"], serde_json::json!(["email"]));
    assert_eq!(
        me["exp"].as_u64().expect("exp") - me["iat"].as_u64().expect("iat"),
        86_400
    );

    // Tampered (one character of the signature), missing, then expired.
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii");
    whoami(&app, &forged)
        .await
        .assert_error(401, "SESSION:INVALID");
    whoami(&app, "not.a.token")
        .await
        .assert_error(401, "SESSION:INVALID");
    Reply::of(client().get(format!("{}/api/session", app.base)))
        .await
        .assert_error(401, "SESSION:INVALID");
    app.advance(86_399.0);
    assert_eq!(whoami(&app, &token).await.status, 200);
    app.advance(1.0);
    whoami(&app, &token)
        .await
        .assert_error(401, "SESSION:INVALID");
}

#[tokio::test]
async fn logout_revokes_the_token_and_clears_the_cookie() {
    let app = TestApp::spawn_stock(&SESSION).await;
    let (_, token) = sign_in(&app, "bob@example.com").await;
    let logout = || {
        client()
            .post(format!("{}/api/session/logout", app.base))
            .header("cookie", format!("session={token}"))
    };
    let out = Reply::of(logout()).await;
    assert_eq!(out.status, 204);
    let (value, header) = set_cookie(&out, "session").expect("a deletion");
    assert!(value.is_empty() && header.contains("Max-Age=0"), "{header}");
    whoami(&app, &token)
        .await
        .assert_error(401, "SESSION:INVALID");
    assert_eq!(Reply::of(logout()).await.status, 204, "twice is harmless");
    // Another session of the same address is untouched.
    let (_, other) = sign_in(&app, "bob@example.com").await;
    assert_eq!(whoami(&app, &other).await.status, 200);
}

#[tokio::test]
async fn the_token_in_the_body_works_as_a_bearer_token() {
    let app = TestApp::spawn_stock(&[
        ("OTP_FINAL_ACTION", "session"),
        ("OTP_SESSION_TOKEN_IN_BODY", "true"),
    ])
    .await;
    let (cookie, code) = app
        .session_json(&serde_json::json!({"phone": "+34600000012"}))
        .await;
    let r = app.verify(Some(&cookie), &code).await;
    let (cookie_token, _) = set_cookie(&r, "session").expect("a session cookie");
    let token = r.json()["token"].as_str().expect("token").to_owned();
    assert_eq!(token, cookie_token);
    let me = Reply::of(
        client()
            .get(format!("{}/api/session", app.base))
            .header("authorization", format!("Bearer {token}")),
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json()["sub"], "+34600000012");
    assert_eq!(me.json()["amr"], serde_json::json!(["sms"]));
}

fn kid_of(token: &str) -> String {
    use base64::Engine as _;
    let head = token.split('.').next().expect("header");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .expect("base64url");
    let header: serde_json::Value = serde_json::from_slice(&raw).expect("JSON");
    assert_eq!(header["alg"], "EdDSA");
    header["kid"].as_str().expect("kid").to_owned()
}

#[tokio::test]
async fn a_rotated_ring_verifies_old_tokens_and_signs_with_the_new_key() {
    let (old, new) = (key(), key());
    let before =
        TestApp::spawn_stock(&[("OTP_FINAL_ACTION", "session"), ("OTP_SESSION_KEY", &old)]).await;
    let ring = format!("{new},{old}");
    let after =
        TestApp::spawn_stock(&[("OTP_FINAL_ACTION", "session"), ("OTP_SESSION_KEY", &ring)]).await;
    let (_, old_token) = sign_in(&before, "carol@example.com").await;
    let (_, new_token) = sign_in(&after, "carol@example.com").await;
    assert_ne!(kid_of(&old_token), kid_of(&new_token));
    assert_eq!(
        whoami(&after, &old_token).await.status,
        200,
        "old key still verifies"
    );
    whoami(&before, &new_token)
        .await
        .assert_error(401, "SESSION:INVALID");
    let jwks = Reply::of(client().get(format!("{}/.well-known/jwks.json", after.base))).await;
    assert_eq!(jwks.status, 200);
    // Public keys may be cached (the edge's `no-store` is only for answers without
    // a `Cache-Control` of their own).
    assert_eq!(
        jwks.header("cache-control").as_deref(),
        Some("public, max-age=300")
    );
    let kids: Vec<String> = jwks.json()["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect();
    assert_eq!(kids, [kid_of(&new_token), kid_of(&old_token)]);
}

/// PyJWT (with `cryptography`), an implementation that shares no code with ours,
/// verifies a token with nothing but the published JWKS.
#[tokio::test]
async fn an_independent_jwt_library_verifies_a_token_with_the_jwks() {
    let app = TestApp::spawn_stock(&SESSION).await;
    let (_, token) = sign_in(&app, "dave@example.com").await;
    let jwks = Reply::of(client().get(format!("{}/.well-known/jwks.json", app.base))).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/jwks_verify.py");
    let now = (app.clock.now().as_millis() / 1000).to_string();
    let run = |token: &str| {
        std::process::Command::new("python3")
            .args([script, &jwks.text, token, &now])
            .output()
            .expect("python3 runs (scripts/test.sh installs PyJWT)")
    };
    let out = run(&token);
    assert!(
        out.status.success(),
        "PyJWT refused the token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let claims: serde_json::Value = serde_json::from_slice(&out.stdout).expect("claims as JSON");
    assert_eq!(claims["sub"], "dave@example.com");
    let mut forged = token.clone();
    forged.push('A');
    assert!(!run(&forged).status.success(), "a forged token is refused");
}

#[test]
fn production_needs_a_session_key_and_refuses_the_demo_page() {
    let base = [
        ("ENVIRONMENT", "production"),
        ("OTP_SENDER", "log"),
        ("OTP_CREDENTIAL", "email"),
    ];
    let with = |extra: &[(&str, &str)]| {
        secure_otp_server::Config::from_vars(
            base.iter()
                .chain(extra)
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    };
    let err = with(&SESSION).expect_err("no key").to_string();
    assert!(err.contains("OTP_SESSION_KEY"), "{err}");
    let k = key();
    assert!(with(&[("OTP_FINAL_ACTION", "session"), ("OTP_SESSION_KEY", &k)]).is_ok());
    let err = with(&[("OTP_DEMO_PAGE", "true")])
        .expect_err("demo")
        .to_string();
    assert!(err.contains("OTP_DEMO_PAGE"), "{err}");
    let err = with(&[("OTP_MAGIC_LINK", "true")])
        .expect_err("no URL")
        .to_string();
    assert!(err.contains("OTP_PUBLIC_URL"), "{err}");
    let err = with(&[
        ("OTP_MAGIC_LINK", "true"),
        ("OTP_PUBLIC_URL", "http://otp.example.com"),
    ])
    .expect_err("http in production")
    .to_string();
    assert!(err.contains("OTP_PUBLIC_URL"), "{err}");
    let err = with(&[("OTP_MAGIC_LINK_REDIRECT", "//evil.example")])
        .expect_err("open redirect")
        .to_string();
    assert!(err.contains("OTP_MAGIC_LINK_REDIRECT"), "{err}");
}

// ------------------------------------------------------------- the webhook

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    status: Arc<Mutex<u16>>,
}

/// A real HTTP receiver on a free port: records each request, answers `status`.
async fn receiver(status: u16) -> (Receiver, String) {
    use axum::routing::post;
    let r = Receiver::default();
    *r.status.lock().expect("lock") = status;
    let state = r.clone();
    let app = axum::Router::new().route(
        "/verified",
        post(move |headers: HeaderMap, body: String| {
            let state = state.clone();
            async move {
                state.seen.lock().expect("lock").push((headers, body));
                let status = *state.status.lock().expect("lock");
                (
                    axum::http::StatusCode::from_u16(status).expect("status"),
                    [("content-type", "application/json")],
                    r#"{"appSession":"s-123","welcome":true}"#,
                )
            }
        }),
    );
    let addr = crate::helpers::serve(app).await;
    (r, format!("http://{addr}/verified"))
}

const SECRET: &str = "0123456789abcdef-verified";

#[tokio::test]
async fn the_webhook_final_action_relays_the_backends_answer() {
    let (rx, url) = receiver(201).await;
    let app = TestApp::spawn_stock(&[
        ("OTP_FINAL_ACTION", "webhook"),
        ("OTP_VERIFIED_WEBHOOK_URL", &url),
        ("OTP_VERIFIED_WEBHOOK_SECRET", SECRET),
    ])
    .await;
    let (cookie, code) = app.session("erin@example.com").await;
    let r = app
        .send(
            app.post("/api/otp/verify", Some(&cookie))
                .header("x-request-id", "req-42")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("otp={code}")),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["appSession"], "s-123");
    let seen = rx.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    let (headers, body) = &seen[0];
    let timestamp = headers["x-otp-timestamp"].to_str().expect("ascii");
    assert_eq!(
        headers["x-otp-signature"].to_str().expect("ascii"),
        webhook_signature(SECRET.as_bytes(), timestamp, body.as_bytes())
    );
    let payload: serde_json::Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(payload["address"], "erin@example.com");
    assert_eq!(payload["channel"], "email");
    assert_eq!(payload["requestId"], "req-42");
    assert!(payload["verifiedAt"].as_str().expect("time").ends_with('Z'));
    assert!(!body.contains(&code), "the code never leaves");
}

#[tokio::test]
async fn a_failing_webhook_answers_503_and_the_code_stays_used() {
    let (rx, url) = receiver(500).await;
    let app = TestApp::spawn_stock(&[
        ("OTP_FINAL_ACTION", "webhook"),
        ("OTP_VERIFIED_WEBHOOK_URL", &url),
        ("OTP_VERIFIED_WEBHOOK_SECRET", SECRET),
    ])
    .await;
    let (cookie, code) = app.session("frank@example.com").await;
    let r = app.verify(Some(&cookie), &code).await;
    r.assert_error(503, "SERVER");
    assert!(r.header("retry-after").is_some());
    assert!(r.clears_cookie());
    app.advance(11.0);
    app.verify(Some(&cookie), &code)
        .await
        .assert_error(400, "OTP:INVALID_COOKIE");
    assert_eq!(rx.seen.lock().expect("lock").len(), 1, "one attempt");
}

// ------------------------------------------------------------- magic links

const LINKS: [(&str, &str); 4] = [
    ("OTP_FINAL_ACTION", "session"),
    ("OTP_MAGIC_LINK", "true"),
    ("OTP_PUBLIC_URL", "https://otp.example.com"),
    ("OTP_MAGIC_LINK_REDIRECT", "/welcome"),
];

/// The link sent last, pointed at the test server.
fn last_link(app: &TestApp) -> String {
    let link = app.sender.last_link().expect("a link beside the code");
    let rest = link
        .strip_prefix("https://otp.example.com")
        .expect("built from OTP_PUBLIC_URL");
    assert!(rest.starts_with("/api/otp/link?t="), "{link}");
    format!("{}{rest}", app.base)
}

fn token_of(link: &str) -> String {
    link.split_once("?t=").expect("t").1.to_owned()
}

async fn confirm(app: &TestApp, link: &str, cookie: Option<&str>) -> Reply {
    let mut req = client()
        .post(format!("{}/api/otp/link", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("t={}", token_of(link)));
    if let Some(c) = cookie {
        req = req.header("cookie", format!("{}={c}", app.cookie_name));
    }
    Reply::of(req).await
}

#[tokio::test]
async fn a_scanners_visits_change_nothing_and_the_click_signs_in_once() {
    let app = TestApp::spawn_stock(&LINKS).await;
    let (cookie, code) = app.session("gina@example.com").await;
    let link = last_link(&app);
    for _ in 0..3 {
        let page = Reply::of(client().get(&link)).await;
        assert_eq!(page.status, 200);
        assert!(
            page.text.contains("Sign in as g***@e***.com?"),
            "{}",
            page.text
        );
        assert!(page.text.contains("id=\"confirm\""));
        assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
        assert_eq!(
            page.header("referrer-policy").as_deref(),
            Some("no-referrer")
        );
        assert_eq!(page.header("x-robots-tag").as_deref(), Some("noindex"));
        assert!(page.set_cookies().is_empty(), "a GET sets nothing");
    }
    let done = confirm(&app, &link, Some(&cookie)).await;
    assert_eq!(done.status, 303, "{}", done.text);
    assert_eq!(done.header("location").as_deref(), Some("/welcome"));
    let (token, _) = set_cookie(&done, "session").expect("signed in");
    assert_eq!(whoami(&app, &token).await.json()["sub"], "gina@example.com");
    assert!(done.clears_cookie());
    // The link and the code finished the same token: both are spent (past the
    // 10 s in which a repeat counts as a double submit: 409).
    assert_eq!(confirm(&app, &link, Some(&cookie)).await.status, 409);
    app.advance(11.0);
    assert_eq!(confirm(&app, &link, Some(&cookie)).await.status, 400);
    app.verify(Some(&cookie), &code)
        .await
        .assert_error(400, "OTP:INVALID_COOKIE");
}

#[tokio::test]
async fn a_typed_code_spends_the_link_and_a_resend_retires_it() {
    let app = TestApp::spawn_stock(&LINKS).await;
    let (cookie, code) = app.session("hank@example.com").await;
    let link = last_link(&app);
    assert_eq!(app.verify(Some(&cookie), &code).await.status, 200);
    app.advance(11.0);
    assert_eq!(confirm(&app, &link, Some(&cookie)).await.status, 400);

    let app =
        TestApp::spawn_stock(&[LINKS.as_slice(), &[("OTP_RESEND_BLOCK_SECONDS", "0")]].concat())
            .await;
    let (cookie, _) = app.session("ivy@example.com").await;
    let old = last_link(&app);
    let resent = app.send(app.post("/api/otp/resend", Some(&cookie))).await;
    assert_eq!(resent.status, 200);
    let cookie = resent.cookie().expect("cookie");
    let new = last_link(&app);
    assert_ne!(old, new);
    let stale = confirm(&app, &old, Some(&cookie)).await;
    assert_eq!(
        stale.status, 403,
        "an old link is a wrong answer: {}",
        stale.text
    );
    let cookie = stale.cookie().expect("the next cookie");
    assert_eq!(confirm(&app, &new, Some(&cookie)).await.status, 303);
}

#[tokio::test]
async fn another_browser_is_refused_with_a_clear_page_and_nothing_is_spent() {
    let app = TestApp::spawn_stock(&LINKS).await;
    let (cookie, code) = app.session("jack@example.com").await;
    let link = last_link(&app);
    let elsewhere = confirm(&app, &link, None).await;
    assert_eq!(elsewhere.status, 400);
    assert!(
        elsewhere.text.contains("the browser that requested it"),
        "{}",
        elsewhere.text
    );
    assert!(elsewhere.set_cookies().is_empty());
    let forged = Reply::of(
        client()
            .post(format!("{}/api/otp/link", app.base))
            .header("cookie", format!("{}={cookie}", app.cookie_name))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("t=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    )
    .await;
    assert_eq!(forged.status, 400);
    assert!(
        forged.set_cookies().is_empty(),
        "a forged link spends nothing"
    );
    assert_eq!(app.verify(Some(&cookie), &code).await.status, 200);
}

#[tokio::test]
async fn the_pages_own_form_post_passes_the_cross_site_check() {
    let app = TestApp::spawn_stock(&LINKS).await;
    let (cookie, _) = app.session("kim@example.com").await;
    let link = last_link(&app);
    let post = |fetch_site: &str| {
        client()
            .post(format!("{}/api/otp/link", app.base))
            .header("cookie", format!("{}={cookie}", app.cookie_name))
            .header("origin", "null")
            .header("sec-fetch-site", fetch_site)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("t={}", token_of(&link)))
    };
    Reply::of(post("cross-site"))
        .await
        .assert_error(403, "REQUEST:FORBIDDEN_ORIGIN");
    assert_eq!(Reply::of(post("same-origin")).await.status, 303);
}

#[tokio::test]
async fn the_demo_page_is_served_only_when_asked_with_a_strict_policy() {
    let off = TestApp::spawn().await;
    assert_eq!(
        Reply::of(client().get(format!("{}/", off.base)))
            .await
            .status,
        404
    );
    let app =
        TestApp::spawn_stock(&[("OTP_FINAL_ACTION", "session"), ("OTP_DEMO_PAGE", "true")]).await;
    let page = Reply::of(client().get(format!("{}/", app.base))).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(page.text.contains("/demo.js"));
    for (path, kind) in [("/demo.js", "text/javascript"), ("/demo.css", "text/css")] {
        let r = Reply::of(client().get(format!("{}{path}", app.base))).await;
        assert_eq!(r.status, 200);
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with(kind))
        );
    }
}

#[tokio::test]
async fn a_wrong_code_tells_how_many_attempts_are_left() {
    let app = TestApp::spawn().await;
    let (cookie, code) = app.session("lee@example.com").await;
    let wrong = app.verify(Some(&cookie), &app.wrong_code(&code)).await;
    wrong.assert_error(403, "OTP:INCORRECT");
    assert_eq!(wrong.json()["attemptsLeft"], 2);
}
