//! Micro-benchmarks of the per-request building blocks (issue 7).
//!
//! Run with `cargo bench --bench micro`. Under `cargo test --all-targets` criterion
//! runs each function once, and the ID store is filled with 1k instead of 1M IDs,
//! so the test run stays quick.
#![allow(
    clippy::expect_used,
    missing_docs,
    reason = "benchmark set-up: a failure is a bug in the benchmark itself"
)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use secure_otp_server::crypto::{self, Kek, KeyId, Sealed};
use secure_otp_server::otp::token::{Token, TokenList};
use secure_otp_server::plugin::{
    CodeFormat, Credential, IdStore, ListId, MemoryIdStore, OtpGenerator, RandomGenerator,
};
use secure_otp_server::{OtpPolicy, Timestamp};

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
        let store = MemoryIdStore::new(live + 16);
        for _ in 0..live {
            ready(store.issue(expires, NOW)).expect("room");
        }
        let mut id = ready(store.issue(expires, NOW)).expect("room");
        g.bench_function(BenchmarkId::from_parameter(live), |b| {
            b.iter(|| {
                id = ready(store.replace(black_box(id), expires, NOW))
                    .expect("room")
                    .expect("live");
            });
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = short();
    targets = envelope, token_list, generator, id_store
}
criterion_main!(benches);
