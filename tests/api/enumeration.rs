//! Anti-enumeration (`OTP_HIDE_UNDELIVERABLE`): an address the channel refuses
//! is answered like one it accepts, in content and in time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secure_otp_server::error::BackendError;
use secure_otp_server::plugin::{Delivery, OtpMessage, Sender};
use secure_otp_server::{AppState, Clock, Config, Plugins, SystemClock, router};
use serde_json::{Value, json};

use crate::helpers::{NO_LIMITS, PRODUCTION, Reply, SendMode, TestApp};

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

/// Waits until the sender recorded a code for a credential containing `needle`
/// (hidden sends run after the answer).
async fn wait_for_send(app: &TestApp, needle: &str) {
    let start = Instant::now();
    while !app.sender.sent().iter().any(|(c, _)| c.contains(needle)) {
        assert!(start.elapsed() < Duration::from_secs(10), "never sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn hidden_a_refused_address_gets_the_same_answer_as_a_delivered_one() {
    let app = TestApp::spawn_with(&[("OTP_HIDE_UNDELIVERABLE", "true")]).await;
    let delivered = app
        .create_json(None, &json!({ "email": "exists@example.com" }))
        .await;
    // The code does arrive, after the answer.
    wait_for_send(&app, "exists@example.com").await;
    app.sender.set_mode(SendMode::Reject);
    let refused = app
        .create_json(None, &json!({ "email": "nobody@example.com" }))
        .await;
    for r in [&delivered, &refused] {
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.cookie().is_some(), "a session cookie either way");
    }
    assert_eq!(keys(&delivered.json()), keys(&refused.json()));
    assert_eq!(delivered.json()["expires"], refused.json()["expires"]);
    // The refused session behaves like any other, and simply never verifies.
    let cookie = refused.cookie().unwrap();
    let r = app.verify(Some(&cookie), &"a".repeat(10)).await;
    r.assert_error(403, "OTP:INCORRECT");
    // A failing channel is hidden as well (only the log says so).
    app.sender.set_mode(SendMode::Fail);
    let r = app
        .create_json(None, &json!({ "email": "down@example.com" }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(keys(&r.json()), keys(&delivered.json()));
}

#[tokio::test]
async fn not_hidden_a_refused_address_is_an_invalid_credential() {
    let app = TestApp::spawn().await;
    app.sender.set_mode(SendMode::Reject);
    app.create_json(None, &json!({ "email": "nobody@example.com" }))
        .await
        .assert_error_keeping(400, "CREDENTIAL:INVALID");
}

#[test]
fn hiding_is_on_in_production_and_off_in_development_by_default() {
    let production = Config::from_vars(PRODUCTION).unwrap();
    assert!(production.limits.hide_undeliverable);
    assert!(!Config::development().limits.hide_undeliverable);
}

/// Accepts addresses with `real` in them after a channel's delay; refuses the
/// others at once, as a mail server refusing an unknown mailbox would.
#[derive(Debug)]
struct SlowForRealAddresses;

#[async_trait]
impl Sender for SlowForRealAddresses {
    async fn send(&self, message: &OtpMessage<'_>) -> Result<Delivery, BackendError> {
        if message.credential.as_str().contains("real") {
            tokio::time::sleep(Duration::from_millis(30)).await;
            Ok(Delivery::Sent)
        } else {
            Ok(Delivery::Rejected)
        }
    }
}

async fn server(hide: bool) -> String {
    let mut vars: Vec<(String, String)> = NO_LIMITS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    vars.push(("OTP_HIDE_UNDELIVERABLE".into(), hide.to_string()));
    let config = Config::from_vars(vars).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut plugins = Plugins::from_config(&config, &clock).unwrap();
    plugins.sender = Arc::new(SlowForRealAddresses);
    let addr = crate::helpers::serve(router(AppState::new(&config, plugins, clock))).await;
    format!("http://{addr}/api/otp/create")
}

/// Latencies (µs) of `n` creates for deliverable and `n` for refused addresses,
/// interleaved so drift hits both alike.
async fn latencies(url: &str, n: usize, round: usize) -> (Vec<f64>, Vec<f64>) {
    let client = reqwest::Client::new();
    let (mut real, mut fake) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n + 20 {
        for kind in ["real", "fake"] {
            let body = json!({ "email": format!("{kind}{round}-{i}@example.com") }).to_string();
            let start = Instant::now();
            let r = Reply::of(
                client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
            let micros = start.elapsed().as_secs_f64() * 1e6;
            assert!(matches!(r.status, 200 | 400), "{}", r.text);
            // The first 20 of each warm the connection and the caches.
            if i >= 20 {
                if kind == "real" {
                    real.push(micros);
                } else {
                    fake.push(micros);
                }
            }
        }
    }
    (real, fake)
}

/// The two-sample Kolmogorov-Smirnov test: the statistic D and its asymptotic
/// p-value (Numerical Recipes' `probks` with the small-sample correction).
fn kolmogorov_smirnov(a: &[f64], b: &[f64]) -> (f64, f64) {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len(), b.len());
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < n && j < m {
        let x = a[i].min(b[j]);
        while i < n && a[i] <= x {
            i += 1;
        }
        while j < m && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n as f64 - j as f64 / m as f64).abs());
    }
    let en = ((n * m) as f64 / (n + m) as f64).sqrt();
    let lambda = (en + 0.12 + 0.11 / en) * d;
    let mut p = 0.0;
    let mut sign = 1.0;
    for k in 1..=100 {
        let term = sign * 2.0 * (-2.0 * (k * k) as f64 * lambda * lambda).exp();
        p += term;
        if term.abs() < 1e-10 {
            break;
        }
        sign = -sign;
    }
    (d, if lambda < 0.2 { 1.0 } else { p.clamp(0.0, 1.0) })
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_the_answer_time_does_not_tell_a_refused_address_from_a_real_one() {
    const N: usize = 200;
    // Without hiding, the same measurement tells them apart at once: the test can
    // see a leak when there is one.
    let url = server(false).await;
    let (real, fake) = latencies(&url, N, 0).await;
    let (d, p) = kolmogorov_smirnov(&real, &fake);
    eprintln!(
        "not hidden: median {:.0} µs (real) vs {:.0} µs (refused), D = {d:.3}, p = {p:.2e}",
        median(&real),
        median(&fake)
    );
    assert!(p < 1e-6, "the control must show the leak (p = {p})");

    // Hidden: the distributions overlap. Under equal distributions p < 0.01 happens
    // in 1 run of 100 by chance, so a second measurement is allowed; a real leak
    // fails both (as the control above does with p < 1e-6).
    let url = server(true).await;
    let mut last = 0.0;
    for round in 1..=2 {
        let (real, fake) = latencies(&url, N, round).await;
        let (d, p) = kolmogorov_smirnov(&real, &fake);
        eprintln!(
            "hidden, round {round}: median {:.0} µs (real) vs {:.0} µs (refused), D = {d:.3}, p = {p:.3}",
            median(&real),
            median(&fake)
        );
        last = p;
        if p > 0.01 {
            return;
        }
    }
    panic!("the answer times differ (KS p = {last} twice)");
}
