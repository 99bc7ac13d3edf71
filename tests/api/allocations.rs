//! The per-request work budget, checked on every CI run: heap allocations of a
//! create, a wrong verify and a probe through the real router in process (no
//! socket), with the abuse limits on and the production JSON logging on. Counted on
//! this thread only (`allocation-counter`), so neither other tests nor the machine's
//! speed move them: a change that adds work to every request fails here, long
//! before anyone runs a benchmark. The ceilings are the figures of 2026-12-07 plus
//! a margin; BENCHMARKS.md ("Per-request budget") has the figures and their history.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use secure_otp_server::telemetry::logging;
use secure_otp_server::testing::{NullSender, call};
use secure_otp_server::{AppState, Clock, Config, Plugins, SystemClock, router};

/// Allocations per request, at most (median of 64 requests, debug build). Measured
/// on 2026-12-07, sixth session: health 19, create 37, verify-wrong 35; about a
/// quarter more is allowed.
const HEALTH_CEILING: u64 = 25;
const CREATE_CEILING: u64 = 47;
const VERIFY_WRONG_CEILING: u64 = 44;

fn app() -> (Router, String) {
    let config = Config::from_vars([("OTP_TRUSTED_PROXIES", "127.0.0.1")]).expect("config");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut plugins = Plugins::from_config(&config, &clock).expect("plug-ins");
    plugins.sender = Arc::new(NullSender);
    let wrong = config.code_format.placeholder();
    (router(AppState::new(&config, plugins, clock)), wrong)
}

/// A request as the server gets it from a socket: with the peer's address, and a
/// client address of its own in `X-Forwarded-For` (so the per-client limits count).
fn request(method: &str, path: &str, n: usize) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header("x-forwarded-for", format!("10.1.{}.{}", n / 256, n % 256))
        .extension(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))))
}

fn create(n: usize) -> Request<Body> {
    request("POST", "/api/otp/create", n)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(format!(r#"{{"email":"user{n}@example.com"}}"#)))
        .expect("request")
}

/// The median allocation count of 64 requests made by `make` (outside the count),
/// each answered with `expect`, after 16 uncounted ones (lazy statics, first growth
/// of the maps).
fn median_allocations(
    rt: &tokio::runtime::Runtime,
    app: &Router,
    mut make: impl FnMut(usize) -> Request<Body>,
    expect: StatusCode,
) -> u64 {
    let mut counts: Vec<u64> = (0..80)
        .map(|n| {
            let req = make(n);
            let mut status = None;
            let counted = allocation_counter::measure(|| {
                status = Some(rt.block_on(call(app, req)).0);
            });
            assert_eq!(status, Some(expect));
            counted.count_total
        })
        .skip(16)
        .collect();
    counts.sort_unstable();
    counts[counts.len() / 2]
}

#[test]
fn a_request_allocates_no_more_than_its_budget() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The production log format, on this thread, into a sink.
    let subscriber =
        logging::json_subscriber(tracing_subscriber::EnvFilter::new("info"), std::io::sink);
    let _logging = tracing::subscriber::set_default(subscriber);
    let (app, wrong) = app();

    let health = median_allocations(
        &rt,
        &app,
        |n| {
            request("GET", "/health", n)
                .body(Body::empty())
                .expect("request")
        },
        StatusCode::OK,
    );
    let create_count = median_allocations(&rt, &app, |n| create(1000 + n), StatusCode::OK);
    let verify = median_allocations(
        &rt,
        &app,
        |n| {
            let (_, cookie) = rt.block_on(call(&app, create(2000 + n)));
            request("POST", "/api/otp/verify", 3000 + n)
                .header(header::COOKIE, cookie.expect("a session cookie"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("otp={wrong}")))
                .expect("request")
        },
        StatusCode::FORBIDDEN,
    );
    println!(
        "allocations per request: health {health}, create {create_count}, verify-wrong {verify}"
    );
    assert!(
        health > 0 && create_count > 0 && verify > 0,
        "the counting allocator is not active"
    );
    for (name, got, ceiling) in [
        ("GET /health", health, HEALTH_CEILING),
        ("create", create_count, CREATE_CEILING),
        ("verify with a wrong code", verify, VERIFY_WRONG_CEILING),
    ] {
        assert!(
            got <= ceiling,
            "{name} allocates {got} times per request, above its ceiling of {ceiling}: \
             find the new work (BENCHMARKS.md, 'Per-request budget', says how), or raise \
             the ceiling in a commit that says why"
        );
    }
}
