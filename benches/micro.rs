//! Micro-benchmarks of the per-request building blocks (issue 7), and of whole
//! requests through the real router in process (no socket), beside a hello world.
//!
//! Run with `cargo bench --bench micro`. Under `cargo test --benches` criterion
//! runs each function once, and the ID store is filled with 1k instead of 1M IDs,
//! so the test run stays quick.
#![forbid(unsafe_code)]
#![allow(
    clippy::expect_used,
    clippy::disallowed_methods,
    missing_docs,
    reason = "benchmark set-up: a failure is a bug in the benchmark itself; timing is real"
)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use secure_otp_server::crypto::{self, Kek, KeyId, Sealed};
use secure_otp_server::otp::token::{Token, TokenList};
use secure_otp_server::plugin::{
    CodeFormat, Credential, IdStore, ListId, MemoryIdStore, OtpGenerator, RandomGenerator,
};
use secure_otp_server::telemetry::exporter::Exporter;
use secure_otp_server::telemetry::logging;
use secure_otp_server::testing::{NullSender, call};
use secure_otp_server::{
    AppState, Clock, Config, OtpPolicy, Plugins, SystemClock, Timestamp, router,
};

/// The binary's allocator, so whole requests cost here what they cost there.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW: Timestamp = Timestamp::from_millis(1_795_089_600_000);
const COOKIE: &str = "o";

/// Runs a future that never waits (the in-memory store's methods are `async` only
/// because the trait is); panics if it would.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("the in-memory store never waits"),
    }
}

/// A JSON credential of exactly `len` bytes, distinct per `n`.
fn credential(n: usize, len: usize) -> Credential {
    let head = format!("{{\"email\":\"u{n}-");
    let tail = "@example.com\"}";
    let pad = len.saturating_sub(head.len() + tail.len());
    Credential::new(format!("{head}{}{tail}", "x".repeat(pad))).expect("non-empty")
}

/// A token list of `count` fresh tokens with `len`-byte credentials.
fn list(count: usize, len: usize, policy: &OtpPolicy) -> TokenList {
    let generator = RandomGenerator::new(CodeFormat::original());
    TokenList {
        id: ListId::random(),
        tokens: (0..count)
            .map(|n| Token::new(credential(n, len), generator.generate(), NOW, policy))
            .collect(),
    }
}

fn short() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args()
}

fn envelope(c: &mut Criterion) {
    let policy = OtpPolicy::default();
    let (id, kek) = (KeyId::random(), Kek::generate());
    let mut g = c.benchmark_group("cookie");
    for count in [1, policy.max_credentials] {
        let plain = list(count, 100, &policy).encode();
        let sealed = crypto::seal(id, &kek, COOKIE, &plain);
        g.throughput(Throughput::Bytes(plain.len() as u64));
        g.bench_with_input(BenchmarkId::new("seal", count), &plain, |b, plain| {
            b.iter(|| crypto::seal(id, &kek, COOKIE, black_box(plain)));
        });
        g.bench_with_input(BenchmarkId::new("open", count), &sealed, |b, sealed| {
            b.iter(|| {
                Sealed::parse(black_box(sealed))
                    .and_then(|s| s.open(&kek, COOKIE))
                    .expect("opens")
            });
        });
    }
    g.finish();
}

fn token_list(c: &mut Criterion) {
    let policy = OtpPolicy::default();
    let format = CodeFormat::original();
    let mut g = c.benchmark_group("token_list");
    for count in [1, policy.max_credentials] {
        let l = list(count, 100, &policy);
        let bytes = l.encode();
        g.bench_with_input(BenchmarkId::new("encode", count), &l, |b, l| {
            b.iter(|| black_box(l).encode());
        });
        g.bench_with_input(BenchmarkId::new("decode", count), &bytes, |b, bytes| {
            b.iter(|| TokenList::decode(black_box(bytes), &policy, &format, NOW).expect("valid"));
        });
    }
    g.finish();
}

fn generator(c: &mut Criterion) {
    let g = RandomGenerator::new(CodeFormat::original());
    c.bench_function("generator/10_of_36", |b| b.iter(|| g.generate()));
}

fn id_store(c: &mut Criterion) {
    // 1M live IDs only when actually benchmarking: `cargo test` runs this once.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if benchmarking {
        &[1_000, 1_000_000]
    } else {
        &[1_000]
    };
    let expires = NOW.plus(Duration::from_secs(180));
    let mut g = c.benchmark_group("id_store_replace");
    for &live in sizes {
        // Filled on first use: criterion calls the closure only when the filter
        // selects this benchmark, so other runs (and profiles) skip the fill.
        let mut filled: Option<(MemoryIdStore, ListId)> = None;
        g.bench_function(BenchmarkId::from_parameter(live), |b| {
            let (store, id) = filled.get_or_insert_with(|| {
                let store = MemoryIdStore::new(live + 16);
                for _ in 0..live {
                    ready(store.issue(expires, NOW)).expect("room");
                }
                let id = ready(store.issue(expires, NOW)).expect("room");
                (store, id)
            });
            b.iter(|| {
                *id = ready(store.replace(black_box(*id), expires, NOW))
                    .expect("room")
                    .expect("live");
            });
        });
    }
    g.finish();
}

/// The library's router with the in-memory defaults, as the binary serves it, and a
/// well-formed code that is (almost surely) wrong; `limits` off turns every abuse
/// limit off (in process there is no client address, so the per-IP ones never count).
fn otp_router(limits: bool) -> (Router, String) {
    let mut vars = vec![("OTP_RESEND_BLOCK_SECONDS", "0".to_owned())];
    if !limits {
        for name in [
            "OTP_LIMIT_SENDS_PER_CREDENTIAL",
            "OTP_LIMIT_FAILURES_PER_CREDENTIAL",
            "OTP_LIMIT_SENDS_PER_PREFIX",
            "OTP_PUMPING_MIN_SENDS",
        ] {
            vars.push((name, "off".to_owned()));
        }
    }
    let config = Config::from_vars(vars).expect("valid configuration");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut plugins = Plugins::from_config(&config, &clock).expect("default plug-ins");
    plugins.sender = Arc::new(NullSender);
    let wrong = config.code_format.placeholder();
    (router(AppState::new(&config, plugins, clock)), wrong)
}

fn create_request(n: u64) -> Request<Body> {
    Request::post("/api/otp/create")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(format!("{{\"email\":\"user{n}@example.com\"}}")))
        .expect("request")
}

/// Whole requests in process: what the server itself spends per request, without
/// sockets, beside a hello world through the same axum stack.
fn requests(c: &mut Criterion) {
    // Timers on: every request runs under the request timeout, as in the binary.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (otp, wrong) = otp_router(true);
    let (otp_no_limits, _) = otp_router(false);
    let wrong_body = format!("otp={wrong}");
    let hello: Router = Router::new().route("/", get(|| async { "Hello, World!" }));
    let mut g = c.benchmark_group("request");
    g.bench_function("hello", |b| {
        b.iter(|| {
            let req = Request::get("/").body(Body::empty()).expect("request");
            rt.block_on(call(&hello, req))
        });
    });
    // The OTP router's fixed cost: every layer, a handler that does nothing.
    g.bench_function("health", |b| {
        b.iter(|| {
            let req = Request::get("/health")
                .body(Body::empty())
                .expect("request");
            rt.block_on(call(&otp, req))
        });
    });
    let mut n = 0u64;
    let variants = [
        ("", &otp, false, false),
        (" (limits off)", &otp_no_limits, false, false),
        // The binary's JSON lines at `info` (access lines, audit events), to nowhere.
        (" (logs on)", &otp, true, false),
        // Last: the recorder, once installed, stays for the rest of the process.
        (" (metrics on)", &otp, false, true),
    ];
    for (suffix, otp, logs, metrics) in variants {
        let _logging = logs.then(|| {
            let filter = tracing_subscriber::EnvFilter::new("info");
            tracing::subscriber::set_default(logging::json_subscriber(filter, std::io::sink))
        });
        if metrics {
            let ids: Arc<dyn IdStore> = Arc::new(MemoryIdStore::new(1));
            rt.block_on(async { Exporter::install(ids) })
                .expect("the Prometheus recorder installs");
        }
        g.bench_function(format!("create{suffix}"), |b| {
            b.iter(|| {
                n += 1;
                let (status, _) = rt.block_on(call(otp, create_request(n)));
                assert_eq!(status, StatusCode::OK);
            });
        });
        // Each verify spends its cookie: a fresh one per iteration, made outside the timing.
        g.bench_function(format!("verify-wrong{suffix}"), |b| {
            b.iter_batched(
                || {
                    n += 1;
                    let (_, cookie) = rt.block_on(call(otp, create_request(n)));
                    cookie.expect("create sets a cookie")
                },
                |cookie| {
                    let req = Request::post("/api/otp/verify")
                        .header(header::COOKIE, cookie)
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(Body::from(wrong_body.clone()))
                        .expect("request");
                    let (status, _) = rt.block_on(call(otp, req));
                    assert_eq!(status, StatusCode::FORBIDDEN);
                },
                BatchSize::SmallInput,
            );
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = short();
    targets = envelope, token_list, generator, id_store, requests
}
criterion_main!(benches);
