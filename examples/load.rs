//! Load benchmark (issues 7 and 20): the real router under HTTP/1.1 keep-alive load,
//! with every protection on.
//!
//! ```text
//! cargo run --release --example load -- --seconds 10 --connections 64
//! ```
//!
//! One process, two pinned single-threaded tokio runtimes: the server (the library's
//! router with plug-ins built from `Config`, plus a minimal axum "hello world" on a
//! second port as the baseline) on the first core, the load generator (a minimal
//! HTTP/1.1 client, one task per connection, latencies in an HDR histogram) on the
//! second. The sender records codes in memory so the full create → verify flow can
//! read them. By default the server runs as the binary does in production: abuse
//! limits, JSON log lines (access lines with request ids, audit events) written to a
//! file, the Prometheus recorder and its listener.
//!
//! Each scenario also prints the share of a core used by the server thread and by
//! the generator (from `/proc/self/task/*/stat`): a generator near 100 % would bound
//! the rate, and the ratio to hello would flatter the server. And the heap
//! allocations per request on the server thread (counted on that thread only).
//! Even with headroom the ratios come out about a quarter high: a hello costs the
//! server more with this generator in its process than under an external one.
//! `scripts/wrk.sh` gives the honest ratios (BENCHMARKS.md, seventh round); this
//! example gives the rest (flow, allocations, prefill, Redis, comparisons).
//!
//! Scenarios, each for the same time and connection count: `hello` (baseline),
//! `create` (a new credential per request), `verify-wrong` (a wrong code, each request
//! with its own single-use cookie from a pool sealed before the timed phase) and
//! `flow` (create, then verify with the right code). Then the cookie sizes, and the
//! RSS of 1k and 1M live IDs in `MemoryIdStore`, each measured in a fresh child process
//! (`--memory-child N`). Every figure is printed beside its target with PASS/MISS;
//! nothing here is a test: the figures depend on the machine.
//!
//! Options: `--seconds S` (10), `--warmup S` (1), `--connections N` (64),
//! `--credentials K` (1; credentials in each verify-wrong cookie), `--prefill N`
//! (0; live IDs put in the store first; the process RSS is printed after it),
//! `--only a,b` (scenarios), `--bare` (no logs, no metrics recorder; the limits stay
//! on), `--stock-json-logs` (tracing-subscriber's JSON format instead of the binary's,
//! for comparison, with a `write` per line), `--unbatched-logs` (a `write` per line
//! instead of the lines of a busy thread gathered, for comparison), `--no-memory`,
//! `--redis URL` (then every scenario but `hello` runs a second time on a server whose
//! ID store and KMS are in that Redis, and the ratio to the in-memory run is printed;
//! with `--compare-redis` too, `create`, `verify-wrong` and `flow` then run in
//! alternating rounds on the two servers),
//! `--compare-limits` (then `create` and `verify-wrong` run a second time on a server
//! with every abuse limit off, and the ratio limits on / off is printed),
//! `--rounds N` (5; alternating rounds of the comparisons),
//! `--compare-metrics` (the Prometheus recorder installed, `create` and `verify-wrong`
//! with metrics recorded and not, in alternating rounds on one server),
//! `--compare-batching` (the same with the log lines of a busy thread gathered and
//! written a `write` each).
//! Every POST names a client in `X-Forwarded-For` (1 048 576 in turn; the server trusts
//! 127.0.0.1 as a proxy) and every create a new address, so the abuse limits do all their work
//! (client address resolution, HMAC of the address, one counter per client and per
//! address) without any being hit.
//! `OTP_*` variables in the environment configure the server as they do the binary.
//!
//! The server is the library's router built in release mode inside this process (the
//! binary is a thin wrapper around the same router), so the flow scenario can read the
//! codes from a recording sender instead of parsing logs.

#![allow(
    clippy::disallowed_methods,
    reason = "a load generator measures real elapsed time"
)]
#![allow(
    unsafe_code,
    reason = "the counting allocator forwards each call to the real one"
)]

use std::collections::HashMap;
use std::error::Error as StdError;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::routing::get;
use dashmap::DashMap;
use hdrhistogram::Histogram;
use secure_otp_server::crypto;
use secure_otp_server::error::BackendError;
use secure_otp_server::otp::CookieUpdate;
use secure_otp_server::otp::token::{Token, TokenList};
use secure_otp_server::plugin::{
    Credential, Delivery, IdStore, ListId, Locale, MemoryIdStore, OtpGenerator, OtpMessage,
    Plugins, RandomGenerator, Sender,
};
use secure_otp_server::telemetry::batched;
use secure_otp_server::telemetry::exporter::Exporter;
use secure_otp_server::telemetry::logging;
use secure_otp_server::telemetry::metric;
use secure_otp_server::{AppState, Clock, Config, SystemClock, Timestamp, router};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

type BoxError = Box<dyn StdError + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

/// Throughput targets relative to the baseline, and the latency target.
const CREATE_TARGET: f64 = 0.60;
const VERIFY_TARGET: f64 = 0.70;
const P99_TARGET_MS: f64 = 5.0;
const MEMORY_TARGET_MB: f64 = 150.0;
const COOKIE_3X100_TARGET: usize = 1024;
const REDIS_TARGET: f64 = 0.50;
/// Limits on, as a fraction of limits off (issue 15: within 10 %).
const LIMITS_TARGET: f64 = 0.90;
/// Metrics on / off for create and verify-wrong (issue 16: overhead under 5 %).
const METRICS_TARGET: f64 = 0.95;
const MILLION: usize = 1_000_000;
/// The scenarios `--compare-limits`, `--compare-metrics` and `--compare-batching` run.
const COMPARED: [Scenario; 2] = [Scenario::Create, Scenario::VerifyWrong];

/// The binary's allocator (mimalloc with the default features, else the C
/// library's malloc), counting the allocations of the threads that ask: the
/// server's figures are those of the allocator it runs with.
struct CountingAllocator;

#[cfg(feature = "mimalloc")]
static INNER: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[cfg(not(feature = "mimalloc"))]
static INNER: std::alloc::System = std::alloc::System;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

thread_local! {
    /// This thread's allocations while it counts ([`count_allocations`]).
    static ALLOCATIONS: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

fn count_one() {
    let _ = ALLOCATIONS.try_with(|n| {
        if let Some(count) = n.get() {
            n.set(Some(count + 1));
        }
    });
}

// SAFETY: every call goes to one allocator, `INNER`, with the caller's arguments.
// The counting neither allocates nor unwinds: its thread-local is const-initialised
// and has no destructor, so `try_with` works even while a thread is torn down.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded as received.
        unsafe { INNER.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded as received.
        unsafe { INNER.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        // Counted as an allocation, as `allocation-counter` (the in-process tests'
        // counter) counts the allocation a default `realloc` makes.
        count_one();
        // SAFETY: forwarded as received.
        unsafe { INNER.realloc(ptr, layout, size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: forwarded as received.
        unsafe { INNER.dealloc(ptr, layout) }
    }
}

/// Runs `f`, and returns how many allocations this thread made meanwhile.
fn count_allocations(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(Some(0)));
    f();
    ALLOCATIONS.with(|n| n.replace(None)).unwrap_or(0)
}

fn main() -> Result<()> {
    let args = Args::parse(std::env::args().skip(1))?;
    if let Some(n) = args.memory_child {
        return memory_child(n);
    }
    if !args.bare {
        // What the binary does in production: JSON lines at INFO (access lines with
        // request ids, audit events), here to a file instead of stdout.
        let path = std::env::temp_dir().join(format!("otp-load-{}.log", std::process::id()));
        let file = std::fs::File::create(&path)?;
        if args.stock_json_logs {
            // The stock JSON format (the binary's before 2026-12-03), for comparison.
            tracing_subscriber::fmt()
                .with_env_filter("info")
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(std::sync::Mutex::new(file))
                .init();
        } else {
            let filter = tracing_subscriber::EnvFilter::new("info");
            GATHER_LINES.store(!args.unbatched_logs, Ordering::Relaxed);
            let writer = EitherLogPath {
                batched: batched::Batched::new(std::sync::Mutex::new(file)),
            };
            tracing::subscriber::set_global_default(logging::json_subscriber(filter, writer))?;
        }
        println!(
            "protections on: abuse limits, JSON logs to {}{}, metrics listener",
            path.display(),
            if args.stock_json_logs {
                " (stock format, a write per line)"
            } else if args.unbatched_logs {
                " (a write per line)"
            } else {
                ""
            }
        );
    } else {
        println!("--bare: no logs and no metrics recorder (the abuse limits stay on)");
    }
    let config = Arc::new(bench_config(None, true)?);
    let cores = Cores::pick();
    println!("{}", cores.describe());

    let server = Server::start(&config, &cores, args.prefill, !args.bare)?;
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    cores.pin_client();
    let results = client_rt.block_on(run_scenarios(&args, &config, &server, true))?;
    print_results(&args, &results);
    if let Some(url) = &args.redis {
        let redis_config = Arc::new(bench_config(Some(url), true)?);
        let redis_server = Server::start(&redis_config, &cores, args.prefill, false)?;
        eprintln!("redis ({url}):");
        let redis_results =
            client_rt.block_on(run_scenarios(&args, &redis_config, &redis_server, false))?;
        print_redis(&results, &redis_results);
        if args.compare_redis {
            let scenarios = [Scenario::Create, Scenario::VerifyWrong, Scenario::Flow];
            let pairs = alternate(&args, "Redis", &scenarios, |only, redis| {
                let (config, server) = if redis {
                    (&redis_config, &redis_server)
                } else {
                    (&config, &server)
                };
                client_rt.block_on(run_scenarios(only, config, server, false))
            })?;
            print_comparison("Redis", REDIS_TARGET, &scenarios, &pairs);
        }
    }
    if args.compare_limits {
        let off_config = Arc::new(bench_config(None, false)?);
        let off_server = Server::start(&off_config, &cores, args.prefill, false)?;
        let pairs = alternate(&args, "limits", &COMPARED, |only, on| {
            let (config, server) = if on {
                (&config, &server)
            } else {
                (&off_config, &off_server)
            };
            client_rt.block_on(run_scenarios(only, config, server, false))
        })?;
        print_comparison("abuse limits", LIMITS_TARGET, &COMPARED, &pairs);
    }
    if args.compare_batching && !args.bare && !args.stock_json_logs {
        // One server: its log lines gathered per thread, or a `write` each.
        let pairs = alternate(&args, "gathered log lines", &COMPARED, |only, on| {
            GATHER_LINES.store(on, Ordering::Relaxed);
            client_rt.block_on(run_scenarios(only, &config, &server, false))
        })?;
        GATHER_LINES.store(!args.unbatched_logs, Ordering::Relaxed);
        print_comparison("gathered log lines", 1.0, &COMPARED, &pairs);
    }
    if let (true, Some(exporter)) = (args.compare_metrics, &server.exporter) {
        // One server: the recorder is installed once, and recording is switched
        // on and off between rounds (what METRICS_ADDR set or unset changes).
        let pairs = alternate(&args, "metrics", &COMPARED, |only, on| {
            metric::set_enabled(on);
            client_rt.block_on(run_scenarios(only, &config, &server, false))
        })?;
        metric::set_enabled(true);
        let scraped = exporter.render();
        println!(
            "\nmetrics scrape after the rounds: {} bytes, {} series",
            scraped.len(),
            scraped.lines().filter(|l| !l.starts_with('#')).count()
        );
        print_comparison("metrics", METRICS_TARGET, &COMPARED, &pairs);
    }

    println!();
    cookie_sizes(&config)?;
    if !args.no_memory {
        println!();
        memory_report()?;
    }
    Ok(())
}

/// Whether the server's log lines go through [`batched::Batched`] (as the binary's
/// do) or a `write` each (`--unbatched-logs`, and the off rounds of
/// `--compare-batching`).
static GATHER_LINES: AtomicBool = AtomicBool::new(true);

/// The log file, through [`batched::Batched`] or directly, as [`GATHER_LINES`] says.
struct EitherLogPath {
    batched: batched::Batched<std::sync::Mutex<std::fs::File>>,
}

/// One line's writer of [`EitherLogPath`].
enum LogLine<'a> {
    Gathered(batched::BatchedWriter<'a, std::sync::Mutex<std::fs::File>>),
    Direct(tracing_subscriber::fmt::writer::MutexGuardWriter<'a, std::fs::File>),
}

impl std::io::Write for LogLine<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        match self {
            LogLine::Gathered(w) => w.write(line),
            LogLine::Direct(w) => w.write(line),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            LogLine::Gathered(w) => w.flush(),
            LogLine::Direct(w) => w.flush(),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for EitherLogPath {
    type Writer = LogLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        if GATHER_LINES.load(Ordering::Relaxed) {
            LogLine::Gathered(self.batched.make_writer())
        } else {
            LogLine::Direct(self.batched.inner().make_writer())
        }
    }
}

// ---------------------------------------------------------------------------------
// Command line

#[derive(Debug, Clone)]
struct Args {
    seconds: f64,
    warmup: f64,
    connections: usize,
    credentials: usize,
    prefill: usize,
    only: Option<Vec<String>>,
    bare: bool,
    stock_json_logs: bool,
    unbatched_logs: bool,
    no_memory: bool,
    redis: Option<String>,
    compare_limits: bool,
    compare_metrics: bool,
    compare_batching: bool,
    compare_redis: bool,
    rounds: usize,
    memory_child: Option<usize>,
}

impl Args {
    fn parse(mut it: impl Iterator<Item = String>) -> Result<Self> {
        let mut a = Args {
            seconds: 10.0,
            warmup: 1.0,
            connections: 64,
            credentials: 1,
            prefill: 0,
            only: None,
            bare: false,
            stock_json_logs: false,
            unbatched_logs: false,
            no_memory: false,
            redis: None,
            compare_limits: false,
            compare_metrics: false,
            compare_batching: false,
            compare_redis: false,
            rounds: 5,
            memory_child: None,
        };
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--seconds" => a.seconds = value()?.parse()?,
                "--warmup" => a.warmup = value()?.parse()?,
                "--connections" => a.connections = value()?.parse()?,
                "--credentials" => a.credentials = value()?.parse()?,
                "--prefill" => a.prefill = value()?.parse()?,
                "--only" => a.only = Some(value()?.split(',').map(str::to_owned).collect()),
                "--redis" => a.redis = Some(value()?),
                "--memory-child" => a.memory_child = Some(value()?.parse()?),
                "--bare" => a.bare = true,
                "--stock-json-logs" => a.stock_json_logs = true,
                "--unbatched-logs" => a.unbatched_logs = true,
                "--no-memory" => a.no_memory = true,
                "--compare-limits" => a.compare_limits = true,
                "--compare-metrics" => a.compare_metrics = true,
                "--compare-batching" => a.compare_batching = true,
                "--compare-redis" => a.compare_redis = true,
                "--rounds" => a.rounds = value()?.parse()?,
                other => {
                    return Err(format!(
                        "unknown option {other} (see the docs at the top of examples/load.rs)"
                    )
                    .into());
                }
            }
        }
        if a.connections == 0 || a.seconds <= 0.0 || a.credentials == 0 || a.rounds == 0 {
            return Err(
                "--connections, --seconds, --credentials and --rounds must be positive".into(),
            );
        }
        Ok(a)
    }

    fn wants(&self, scenario: Scenario) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == scenario.name()))
    }
}

/// The configuration from the environment, with room for a long run: sessions live an
/// hour (no cookie of the pool expires mid-run) and the ID store holds 20M IDs. With
/// `redis`, the ID store and the KMS are in that Redis (a fresh master key, and a
/// key prefix of its own so a run never meets another's keys).
fn bench_config(redis: Option<&str>, limits: bool) -> Result<Config> {
    let defaults = [
        ("OTP_MAX_AGE", "3600"),
        ("OTP_ID_STORE_CAPACITY", "20000000"),
        ("OTP_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    let mut vars: HashMap<String, String> = defaults
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    vars.extend(std::env::vars());
    if let Some(url) = redis {
        let prefix = format!("otp-bench-{}", crypto::KeyId::random());
        vars.extend(
            [
                ("OTP_ID_STORE", "redis"),
                ("OTP_KMS", "redis"),
                ("REDIS_URL", url),
                ("REDIS_KEY_PREFIX", &prefix),
                (
                    "OTP_KMS_MASTER_KEY",
                    &crypto::Kek::generate().dangerous_to_base64(),
                ),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
    }
    if !limits {
        vars.extend(
            [
                "OTP_LIMIT_SENDS_PER_CREDENTIAL",
                "OTP_LIMIT_FAILURES_PER_CREDENTIAL",
                "OTP_LIMIT_CREATES_PER_IP",
                "OTP_LIMIT_VERIFIES_PER_IP",
                "OTP_LIMIT_SENDS_GLOBAL",
                "OTP_LIMIT_SENDS_PER_PREFIX",
                "OTP_PUMPING_MIN_SENDS",
            ]
            .map(|k| (k.to_owned(), "off".to_owned())),
        );
    }
    Ok(Config::from_vars(vars)?)
}

// ---------------------------------------------------------------------------------
// Cores

struct Cores {
    server: Option<core_affinity::CoreId>,
    client: Option<core_affinity::CoreId>,
}

impl Cores {
    fn pick() -> Self {
        match core_affinity::get_core_ids().as_deref() {
            Some([a, b, ..]) => Self {
                server: Some(*a),
                client: Some(*b),
            },
            _ => Self {
                server: None,
                client: None,
            },
        }
    }

    fn describe(&self) -> String {
        match (self.server, self.client) {
            (Some(s), Some(c)) => format!(
                "pinning: server runtime on core {}, load generator on core {} (one thread each)",
                s.id, c.id
            ),
            _ => "pinning: fewer than two cores available, server and load generator share \
                  the machine unpinned (figures are a lower bound)"
                .to_owned(),
        }
    }

    fn pin_client(&self) {
        if let Some(c) = self.client {
            core_affinity::set_for_current(c);
        }
    }
}

// ---------------------------------------------------------------------------------
// The server under test

/// A sender that keeps the codes of credentials the flow scenario will verify.
#[derive(Debug, Default)]
struct RecordingSender {
    recording: AtomicBool,
    codes: DashMap<String, String>,
}

#[async_trait]
impl Sender for RecordingSender {
    async fn send(&self, m: &OtpMessage<'_>) -> Result<Delivery, BackendError> {
        if self.recording.load(Ordering::Relaxed) {
            self.codes
                .insert(m.credential.as_str().to_owned(), m.code.expose().to_owned());
        }
        Ok(Delivery::Sent)
    }
}

struct Server {
    otp: SocketAddr,
    hello: SocketAddr,
    state: AppState,
    handle: tokio::runtime::Handle,
    sender: Arc<RecordingSender>,
    /// The Prometheus recorder, when this server installed it.
    exporter: Option<Exporter>,
    /// Starts a measured phase on the server thread.
    phases: mpsc::UnboundedSender<Phase>,
    /// `/proc/self/task/TID/stat` of the server thread (its CPU time).
    stat: String,
    /// `/proc/self/task/TID/io` of the server thread (its write calls).
    io: String,
}

/// A stretch of serving whose heap allocations on the server thread are counted:
/// `started` is signalled once counting runs, `stop` ends it, `allocations` gets
/// the count.
struct Phase {
    started: std::sync::mpsc::Sender<()>,
    stop: oneshot::Receiver<()>,
    allocations: std::sync::mpsc::Sender<u64>,
}

/// The plug-ins the binary would pick for `config`, except the recording sender.
fn plugins(
    config: &Config,
    clock: &Arc<dyn Clock>,
    sender: Arc<RecordingSender>,
) -> Result<Plugins> {
    let mut plugins = Plugins::from_config(config, clock)?;
    plugins.sender = sender;
    Ok(plugins)
}

impl Server {
    /// Starts both routers on a single-threaded runtime in a thread pinned to the
    /// server core; with `metrics`, installs the Prometheus recorder there and serves
    /// it on a port of its own, as `METRICS_ADDR` does.
    fn start(config: &Arc<Config>, cores: &Cores, prefill: usize, metrics: bool) -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Result<Server, String>>();
        let config = Arc::clone(config);
        let core = cores.server;
        std::thread::Builder::new()
            .name("server".into())
            .spawn(move || {
                if let Some(c) = core {
                    core_affinity::set_for_current(c);
                }
                let mut builder = tokio::runtime::Builder::new_current_thread();
                // As the binary: log lines gathered while there is work, written when
                // the thread runs out of it.
                batched::runtime_hooks(builder.enable_all());
                let rt = match builder.build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let (phases, mut next_phase) = mpsc::unbounded_channel();
                match rt.block_on(Server::serve(&config, prefill, metrics, phases)) {
                    Ok(server) => {
                        let _ = tx.send(Ok(server));
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                }
                // Serve (the runtime runs its tasks inside `block_on`) until the
                // process exits; a measured phase serves inside an allocation count
                // of this thread only.
                while let Some(phase) = rt.block_on(next_phase.recv()) {
                    let Phase {
                        started,
                        stop,
                        allocations,
                    } = phase;
                    let counted = count_allocations(|| {
                        let _ = started.send(());
                        let _ = rt.block_on(stop);
                    });
                    let _ = allocations.send(counted);
                }
            })?;
        Ok(rx.recv()??)
    }

    async fn serve(
        config: &Config,
        prefill: usize,
        metrics: bool,
        phases: mpsc::UnboundedSender<Phase>,
    ) -> Result<Server> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let sender = Arc::new(RecordingSender::default());
        let plugins = plugins(config, &clock, Arc::clone(&sender))?;
        let ids = Arc::clone(&plugins.ids);
        if prefill > 0 {
            let start = Instant::now();
            let now = clock.now();
            let expires = now.plus(config.policy.max_age);
            for _ in 0..prefill {
                ids.issue(expires, now).await?;
            }
            println!(
                "prefill: {prefill} live IDs in the store in {:.1} s; process RSS {:.1} MB",
                start.elapsed().as_secs_f64(),
                proc_status_kb("VmRSS")? as f64 / 1024.0
            );
        }
        let exporter = if metrics {
            let exporter = Exporter::install(Arc::clone(&ids))?;
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let app = exporter.clone().router();
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            Some(exporter)
        } else {
            None
        };
        let state = AppState::new(config, plugins, clock);
        let otp_app = router::<()>(state.clone());
        let hello_app = Router::new().route("/", get(|| async { "Hello, World!" }));
        let otp_listener = TcpListener::bind("127.0.0.1:0").await?;
        let hello_listener = TcpListener::bind("127.0.0.1:0").await?;
        let thread = std::fs::read_link("/proc/thread-self")?;
        let tid = thread
            .file_name()
            .and_then(|t| t.to_str())
            .ok_or("no thread id in /proc/thread-self")?;
        let server = Server {
            otp: otp_listener.local_addr()?,
            hello: hello_listener.local_addr()?,
            state,
            handle: tokio::runtime::Handle::current(),
            sender,
            exporter,
            phases,
            stat: format!("/proc/self/task/{tid}/stat"),
            io: format!("/proc/self/task/{tid}/io"),
        };
        tokio::spawn(async move {
            let app = otp_app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(otp_listener, app).await {
                eprintln!("otp server: {e}");
            }
        });
        tokio::spawn(async move {
            if let Err(e) = axum::serve(hello_listener, hello_app).await {
                eprintln!("hello server: {e}");
            }
        });
        Ok(server)
    }
}

// ---------------------------------------------------------------------------------
// Scenarios

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Hello,
    Create,
    VerifyWrong,
    Flow,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::Hello,
        Scenario::Create,
        Scenario::VerifyWrong,
        Scenario::Flow,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Hello => "hello",
            Scenario::Create => "create",
            Scenario::VerifyWrong => "verify-wrong",
            Scenario::Flow => "flow",
        }
    }

    /// The throughput target as a fraction of the baseline, if the issue sets one.
    fn target(self) -> Option<f64> {
        match self {
            Scenario::Create => Some(CREATE_TARGET),
            Scenario::VerifyWrong => Some(VERIFY_TARGET),
            Scenario::Hello | Scenario::Flow => None,
        }
    }
}

/// Single-use cookies for verify-wrong, sealed before the timed phase.
struct Pool {
    cookies: Vec<String>,
    next: AtomicUsize,
}

impl Pool {
    fn take(&self) -> Option<&str> {
        self.cookies
            .get(self.next.fetch_add(1, Ordering::Relaxed))
            .map(String::as_str)
    }
}

/// What the load tasks share.
struct Ctx {
    scenario: Scenario,
    addr: SocketAddr,
    cookie_name: String,
    wrong_code: String,
    sender: Arc<RecordingSender>,
    pool: Option<Pool>,
    serial: AtomicU64,
    measure_from: Instant,
    stop_at: Instant,
}

/// One scenario's figures.
struct Stats {
    scenario: Scenario,
    requests: u64,
    flows: u64,
    errors: u64,
    elapsed: Duration,
    latency_us: Histogram<u64>,
    note: Option<String>,
    /// Share of one core the server thread used over the scenario (warm-up included).
    server_cpu: f64,
    /// Share of one core the load generator used: near 1.0 it, not the server,
    /// would bound the rate.
    generator_cpu: f64,
    /// Heap allocations on the server thread per request.
    allocations: f64,
    /// CPU time of the server thread per request (warm-up included), in µs: what a
    /// request costs, whatever share of the core the VM lets the thread have.
    server_us: f64,
    /// `write`/`writev` calls of the server thread per request (answers and log
    /// lines; socket reads are `recv` calls, which `/proc` does not count): a figure
    /// the VM's noise does not move.
    io_calls: f64,
}

impl Stats {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }
}

async fn run_scenarios(
    args: &Args,
    config: &Config,
    server: &Server,
    with_hello: bool,
) -> Result<Vec<Stats>> {
    let mut out: Vec<Stats> = Vec::new();
    let mut create_rate = None;
    for scenario in Scenario::ALL
        .into_iter()
        .filter(|s| args.wants(*s) && (with_hello || *s != Scenario::Hello))
    {
        let (addr, pool) = match scenario {
            Scenario::Hello => (server.hello, None),
            Scenario::VerifyWrong => {
                // Enough single-use cookies for twice the create rate (verify does
                // similar work); if they run out the scenario ends early and says so.
                let per_second = create_rate.unwrap_or(20_000.0) * 2.0;
                let wanted = (per_second * (args.seconds + args.warmup)) as usize;
                let size = wanted.clamp(10_000, 4_000_000);
                (
                    server.otp,
                    Some(build_pool(server, size, args.credentials).await?),
                )
            }
            Scenario::Create | Scenario::Flow => (server.otp, None),
        };
        server
            .sender
            .recording
            .store(scenario == Scenario::Flow, Ordering::Relaxed);
        let stats = run_one(scenario, addr, pool, config, server, args).await?;
        if scenario == Scenario::Create {
            create_rate = Some(stats.rate());
        }
        eprintln!(
            "  {:<13} {:>9.0} req/s  p99 {:.2} ms  ({} errors; server {:.0} %, generator {:.0} % \
             of a core; {:.1} allocations per request)",
            scenario.name(),
            stats.rate(),
            stats.ms(0.99),
            stats.errors,
            stats.server_cpu * 100.0,
            stats.generator_cpu * 100.0,
            stats.allocations
        );
        out.push(stats);
        server.sender.codes.clear();
    }
    Ok(out)
}

/// Seals `size` sessions of `credentials` credentials each through the real flows, on
/// the server's runtime (before the timed phase, so it does not compete with it).
async fn build_pool(server: &Server, size: usize, credentials: usize) -> Result<Pool> {
    let state = server.state.clone();
    let start = Instant::now();
    let cookies = server
        .handle
        .spawn(async move {
            let service = state.service();
            let clock = SystemClock;
            // Every pool gets addresses of its own: a second pool sending to the
            // same addresses would spend their send budgets.
            static POOLS: AtomicUsize = AtomicUsize::new(0);
            let pool = POOLS.fetch_add(1, Ordering::Relaxed);
            let mut cookies = Vec::with_capacity(size);
            for n in 0..size {
                let mut cookie: Option<String> = None;
                for k in 0..credentials {
                    let text = format!("{{\"email\":\"pool{pool}-{n}-{k}@bench.example\"}}");
                    let credential = Credential::new(text).ok_or("empty credential")?;
                    let outcome = service
                        .create(
                            cookie.as_deref(),
                            credential,
                            0,
                            &Locale::default(),
                            None,
                            clock.now(),
                        )
                        .await;
                    match (outcome.result, outcome.cookie) {
                        (Ok(_), CookieUpdate::Set { value, .. }) => cookie = Some(value),
                        (r, _) => return Err(format!("pool create failed: {r:?}")),
                    }
                }
                cookies.extend(cookie);
            }
            Ok::<_, String>(cookies)
        })
        .await??;
    eprintln!(
        "  pool: {size} cookies of {credentials} credential(s) sealed in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(Pool {
        cookies,
        next: AtomicUsize::new(0),
    })
}

async fn run_one(
    scenario: Scenario,
    addr: SocketAddr,
    pool: Option<Pool>,
    config: &Config,
    server: &Server,
    args: &Args,
) -> Result<Stats> {
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let ctx = Arc::new(Ctx {
        scenario,
        addr,
        cookie_name: config.cookie_name(),
        wrong_code: config.code_format.placeholder(),
        sender: Arc::clone(&server.sender),
        pool,
        serial: AtomicU64::new(0),
        measure_from,
        stop_at: measure_from + Duration::from_secs_f64(args.seconds),
    });
    let (stop, stop_rx) = oneshot::channel();
    let (started, started_rx) = std::sync::mpsc::channel();
    let (allocations, allocations_rx) = std::sync::mpsc::channel();
    server.phases.send(Phase {
        started,
        stop: stop_rx,
        allocations,
    })?;
    started_rx.recv()?;
    let cpu_from = (
        thread_cpu(&server.stat)?,
        thread_cpu("/proc/thread-self/stat")?,
    );
    let calls_from = thread_io_calls(&server.io)?;
    let tasks: Vec<_> = (0..args.connections)
        .map(|_| tokio::spawn(connection(Arc::clone(&ctx))))
        .collect();
    let mut stats = Stats {
        scenario,
        requests: 0,
        flows: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency_us: new_histogram()?,
        note: None,
        server_cpu: 0.0,
        generator_cpu: 0.0,
        allocations: 0.0,
        server_us: 0.0,
        io_calls: 0.0,
    };
    let mut last_end = measure_from;
    let mut sent = 0;
    for t in tasks {
        let one = t.await??;
        sent += one.sent;
        stats.requests += one.requests;
        stats.flows += one.flows;
        stats.errors += one.errors;
        stats.latency_us.add(&one.latency_us)?;
        last_end = last_end.max(one.last_end);
    }
    stats.elapsed = last_end.saturating_duration_since(measure_from);
    let wall = start.elapsed().as_secs_f64().max(1e-9);
    let server_seconds = thread_cpu(&server.stat)? - cpu_from.0;
    stats.server_cpu = server_seconds / wall;
    stats.server_us = server_seconds * 1e6 / sent.max(1) as f64;
    stats.io_calls = (thread_io_calls(&server.io)? - calls_from) as f64 / sent.max(1) as f64;
    stats.generator_cpu = (thread_cpu("/proc/thread-self/stat")? - cpu_from.1) / wall;
    let _ = stop.send(());
    stats.allocations = allocations_rx.recv()? as f64 / sent.max(1) as f64;
    if let Some(pool) = &ctx.pool
        && pool.next.load(Ordering::Relaxed) >= pool.cookies.len()
    {
        stats.note = Some(format!(
            "pool of {} ran out after {:.1} s",
            pool.cookies.len(),
            stats.elapsed.as_secs_f64()
        ));
    }
    Ok(stats)
}

/// `write`-family system calls (`syscw`) of the thread whose `io` file is `path`.
fn thread_io_calls(path: &str) -> Result<u64> {
    let io = std::fs::read_to_string(path)?;
    let count = |key: &str| -> Result<u64> {
        let line = io
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .ok_or_else(|| format!("no {key} in {path}"))?;
        Ok(line.trim().parse()?)
    };
    count("syscw:")
}

/// CPU time (user + system, seconds) of the thread whose `stat` file is `path`.
fn thread_cpu(path: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(path)?;
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .ok_or("no command in a stat file")?
        .1
        .split_whitespace()
        .collect();
    let ticks =
        |i: usize| -> Result<f64> { Ok(fields.get(i).ok_or("a short stat file")?.parse::<f64>()?) };
    // Clock ticks of 1/100 s (USER_HZ on Linux).
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

fn new_histogram() -> Result<Histogram<u64>> {
    // 1 µs to 60 s, three significant digits.
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

/// One connection's figures.
struct ConnStats {
    requests: u64,
    /// Every request, the warm-up's included (allocations are counted over both).
    sent: u64,
    flows: u64,
    errors: u64,
    latency_us: Histogram<u64>,
    last_end: Instant,
}

/// A minimal HTTP/1.1 keep-alive client: requests are formatted into one reused
/// buffer and written in one call, answers parsed in place with `httparse`. A
/// general client (hyper's, the first version of this benchmark) spent more CPU per
/// request than the hello-world server it measured, which capped the baseline.
struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
    inp: Vec<u8>,
}

/// What the benchmark reads of an answer.
struct Reply {
    status: u16,
    /// The session cookie's value, when asked for and set.
    cookie: Option<String>,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            out: Vec::with_capacity(4096),
            inp: Vec::with_capacity(4096),
        })
    }

    fn get(&mut self, path: &str) {
        self.out.clear();
        let _ = write!(self.out, "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    }

    /// A POST from the next client address (`X-Forwarded-For`).
    fn post(&mut self, path: &str, content_type: &str, body: &str, cookie: Option<(&str, &str)>) {
        self.out.clear();
        let _ = write!(
            self.out,
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {content_type}\r\n\
             x-forwarded-for: "
        );
        next_client(&mut self.out);
        let _ = write!(self.out, "\r\ncontent-length: {}\r\n", body.len());
        if let Some((name, value)) = cookie {
            let _ = write!(self.out, "cookie: {name}={value}\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(body.as_bytes());
    }

    /// Writes the formatted request and reads the whole answer (its body sized by
    /// `content-length`, which every answer of these servers has).
    async fn exchange(&mut self, want_cookie: bool) -> Result<Reply> {
        self.stream.write_all(&self.out).await?;
        self.inp.clear();
        loop {
            if self.stream.read_buf(&mut self.inp).await? == 0 {
                return Err("the server closed the connection".into());
            }
            let mut headers = [httparse::EMPTY_HEADER; 24];
            let mut res = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(head) = res.parse(&self.inp)? else {
                continue;
            };
            let mut length = None;
            let mut cookie = None;
            for h in res.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    length = std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|v| v.parse().ok());
                } else if want_cookie && h.name.eq_ignore_ascii_case("set-cookie") {
                    cookie = std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|v| v.split(';').next())
                        .and_then(|v| v.split_once('='))
                        .map(|(_, value)| value.to_owned())
                        .filter(|v| !v.is_empty());
                }
            }
            let status = res.code.unwrap_or(0);
            let length: usize = length.ok_or("an answer without content-length")?;
            while self.inp.len() < head + length {
                if self.stream.read_buf(&mut self.inp).await? == 0 {
                    return Err("the server closed the connection mid-body".into());
                }
            }
            return Ok(Reply { status, cookie });
        }
    }
}

/// One keep-alive connection issuing requests back to back until the stop time.
async fn connection(ctx: Arc<Ctx>) -> Result<ConnStats> {
    let mut conn = Conn::connect(ctx.addr).await?;
    let mut s = ConnStats {
        requests: 0,
        sent: 0,
        flows: 0,
        errors: 0,
        latency_us: new_histogram()?,
        last_end: ctx.measure_from,
    };
    let mut body = String::with_capacity(64);
    loop {
        let t0 = Instant::now();
        if t0 >= ctx.stop_at {
            break;
        }
        let counted = t0 >= ctx.measure_from;
        let done = match ctx.scenario {
            Scenario::Hello => {
                conn.get("/");
                call(&mut conn, false, &mut s, counted, t0).await?.status == 200
            }
            Scenario::Create => {
                credential_body(&ctx, &mut body);
                conn.post("/api/otp/create", "application/json", &body, None);
                call(&mut conn, false, &mut s, counted, t0).await?.status == 200
            }
            Scenario::VerifyWrong => {
                let Some(cookie) = ctx.pool.as_ref().and_then(Pool::take) else {
                    break;
                };
                body.clear();
                body.push_str("otp=");
                body.push_str(&ctx.wrong_code);
                conn.post(
                    "/api/otp/verify",
                    "application/x-www-form-urlencoded",
                    &body,
                    Some((&ctx.cookie_name, cookie)),
                );
                call(&mut conn, false, &mut s, counted, t0).await?.status == 403
            }
            Scenario::Flow => flow(&ctx, &mut conn, &mut body, &mut s, counted, t0).await?,
        };
        if !done && counted {
            s.errors += 1;
        }
    }
    Ok(s)
}

/// Create for a new credential, read the code the sender recorded, verify it.
async fn flow(
    ctx: &Ctx,
    conn: &mut Conn,
    body: &mut String,
    s: &mut ConnStats,
    counted: bool,
    t0: Instant,
) -> Result<bool> {
    credential_body(ctx, body);
    conn.post("/api/otp/create", "application/json", body, None);
    let reply = call(conn, true, s, counted, t0).await?;
    let (Some(cookie), Some((_, code))) = (reply.cookie, ctx.sender.codes.remove(body.as_str()))
    else {
        return Ok(false);
    };
    if reply.status != 200 {
        return Ok(false);
    }
    body.clear();
    body.push_str("otp=");
    body.push_str(&code);
    conn.post(
        "/api/otp/verify",
        "application/x-www-form-urlencoded",
        body,
        Some((&ctx.cookie_name, &cookie)),
    );
    let ok = call(conn, false, s, counted, Instant::now()).await?.status == 200;
    if counted && ok {
        s.flows += 1;
    }
    Ok(ok)
}

/// Appends the client address of the next request: 1 048 576 clients in turn
/// (10.0.0.0/12), enough that no per-client limit is hit in a whole run (30 creates
/// per 5 minutes: 65 536 clients were too few once the compare modes ran 40 s of
/// creates), few enough that clients come back as real ones do.
fn next_client(out: &mut Vec<u8>) {
    static CLIENTS: AtomicU64 = AtomicU64::new(0);
    let n = CLIENTS.fetch_add(1, Ordering::Relaxed);
    let _ = write!(out, "10.{}.{}.{}", (n >> 16) & 15, (n >> 8) & 255, n & 255);
}

/// A new credential's JSON body, which is also its canonical text.
fn credential_body(ctx: &Ctx, body: &mut String) {
    let n = ctx.serial.fetch_add(1, Ordering::Relaxed);
    body.clear();
    let _ = std::fmt::Write::write_fmt(
        body,
        format_args!("{{\"email\":\"user{n}@bench.example\"}}"),
    );
}

/// Sends the formatted request, reads the answer, records the latency if `counted`.
async fn call(
    conn: &mut Conn,
    want_cookie: bool,
    s: &mut ConnStats,
    counted: bool,
    t0: Instant,
) -> Result<Reply> {
    let reply = conn.exchange(want_cookie).await?;
    let end = Instant::now();
    s.sent += 1;
    if counted {
        let us = u64::try_from(end.duration_since(t0).as_micros()).unwrap_or(u64::MAX);
        s.latency_us.saturating_record(us.max(1));
        s.requests += 1;
        s.last_end = end;
    }
    Ok(reply)
}

// ---------------------------------------------------------------------------------
// Report

fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn print_results(args: &Args, results: &[Stats]) {
    println!(
        "\nload: {} connections, {} s per scenario after {} s warm-up, {} credential(s) per \
         verify-wrong cookie, {} prefilled IDs{}",
        args.connections,
        args.seconds,
        args.warmup,
        args.credentials,
        args.prefill,
        if args.bare {
            ", bare (no logs, no metrics)"
        } else {
            ", protections on (limits, JSON logs to a file, metrics)"
        }
    );
    let base = results
        .iter()
        .find(|s| s.scenario == Scenario::Hello)
        .map(Stats::rate);
    println!(
        "{:<13} {:>9} {:>8} {:>16} {:>8} {:>8} {:>8} {:>12} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8}",
        "scenario",
        "req/s",
        "x base",
        "target",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "p99 < 5 ms",
        "errors",
        "srv cpu",
        "gen cpu",
        "allocs/r",
        "srv µs/r",
        "writes/r"
    );
    for s in results {
        let rate = s.rate();
        let ratio = base.map(|b| rate / b);
        let ratio_text = ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
        let target = match (s.scenario.target(), ratio) {
            (Some(t), Some(r)) => format!(">= {t:.2} {}", pass(r >= t)),
            (Some(t), None) => format!(">= {t:.2} (no base)"),
            (None, _) => "-".to_owned(),
        };
        let p99 = s.ms(0.99);
        println!(
            "{:<13} {:>9.0} {:>8} {:>16} {:>8.2} {:>8.2} {:>8.2} {:>12} {:>7} {:>6.0}% {:>6.0}% {:>8.1} {:>8.1} {:>8.2}",
            s.scenario.name(),
            rate,
            ratio_text,
            target,
            s.ms(0.5),
            p99,
            s.ms(0.999),
            pass(p99 < P99_TARGET_MS),
            s.errors,
            s.server_cpu * 100.0,
            s.generator_cpu * 100.0,
            s.allocations,
            s.server_us,
            s.io_calls
        );
        if s.scenario == Scenario::Flow {
            println!(
                "{:<13} {:>9.0} flows/s (create + verify with the right code; latency per request)",
                "",
                s.flows as f64 / s.elapsed.as_secs_f64().max(1e-9)
            );
        }
        if let Some(note) = &s.note {
            println!("{:<13} note: {note}", "");
        }
    }
    if args.redis.is_none() {
        println!("redis: not measured (run with --redis redis://127.0.0.1:6379)");
    }
}

/// Each scenario's Redis throughput and latency beside the in-memory run's.
fn print_redis(memory: &[Stats], redis: &[Stats]) {
    println!(
        "\nwith Redis (ID store and KMS; one multiplexed connection):\n{:<13} {:>9} {:>10} {:>16} {:>8} {:>8} {:>8} {:>7}",
        "scenario", "req/s", "x memory", "target", "p50 ms", "p99 ms", "p99.9 ms", "errors"
    );
    for s in redis {
        let ratio = memory
            .iter()
            .find(|m| m.scenario == s.scenario)
            .map(|m| s.rate() / m.rate().max(1e-9));
        let (ratio_text, target) = match ratio {
            Some(r) => (
                format!("{r:.2}"),
                format!(">= {REDIS_TARGET:.2} {}", pass(r >= REDIS_TARGET)),
            ),
            None => ("-".to_owned(), "-".to_owned()),
        };
        println!(
            "{:<13} {:>9.0} {:>10} {:>16} {:>8.2} {:>8.2} {:>8.2} {:>7}",
            s.scenario.name(),
            s.rate(),
            ratio_text,
            target,
            s.ms(0.5),
            s.ms(0.99),
            s.ms(0.999),
            s.errors
        );
        if let Some(note) = &s.note {
            println!("{:<13} note: {note}", "");
        }
    }
}

/// `create` and `verify-wrong` with a protection on beside the same scenario with it
/// off, round by round, and the median ratios.
/// Runs `create` and `verify-wrong` in `--rounds` rounds, `run(args, true)` and
/// `run(args, false)` taking turns scenario by scenario, the first of each pair
/// swapping every round (on-off, off-on, ...) so a drift within a round favours neither:
/// the VM's noise between two runs of one server is ±20 %, so only alternating rounds
/// compare fairly.
fn alternate(
    args: &Args,
    what: &str,
    scenarios: &[Scenario],
    mut run: impl FnMut(&Args, bool) -> Result<Vec<Stats>>,
) -> Result<Vec<(Stats, Stats)>> {
    let mut pairs = Vec::new();
    for round in 1..=args.rounds {
        for &scenario in scenarios {
            let only = Args {
                only: Some(vec![scenario.name().to_owned()]),
                ..args.clone()
            };
            let mut one = |on: bool| -> Result<Option<Stats>> {
                eprintln!("round {round}, {what} {}:", if on { "on" } else { "off" });
                Ok(run(&only, on)?.pop())
            };
            let on_first = round % 2 == 1;
            let first = one(on_first)?;
            let second = one(!on_first)?;
            let (on, off) = if on_first {
                (first, second)
            } else {
                (second, first)
            };
            if let (Some(on), Some(off)) = (on, off) {
                pairs.push((on, off));
            }
        }
    }
    Ok(pairs)
}

/// Each round's on/off ratios and their medians, against `target`: requests per second
/// (what the target names), and the server thread's CPU per request off/on (the same
/// ratio when the server is saturated, without the time the VM took the core away).
fn print_comparison(what: &str, target: f64, scenarios: &[Scenario], pairs: &[(Stats, Stats)]) {
    println!(
        "\n{what} on vs off ({} alternating rounds; target on/off >= {target:.2}):\n\
         {:<13} {:>9} {:>9} {:>7} {:>8} {:>8} {:>11} {:>10} {:>10}",
        pairs.len() / scenarios.len().max(1),
        "scenario",
        "on req/s",
        "off req/s",
        "on/off",
        "on µs",
        "off µs",
        "cpu off/on",
        "on p99 ms",
        "off p99 ms"
    );
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    for &scenario in scenarios {
        let (mut rates, mut cpus) = (Vec::new(), Vec::new());
        for (on, off) in pairs.iter().filter(|(on, _)| on.scenario == scenario) {
            let ratio = on.rate() / off.rate().max(1e-9);
            let cpu = off.server_us / on.server_us.max(1e-9);
            rates.push(ratio);
            cpus.push(cpu);
            println!(
                "{:<13} {:>9.0} {:>9.0} {:>7.2} {:>8.1} {:>8.1} {:>11.2} {:>10.2} {:>10.2}",
                scenario.name(),
                on.rate(),
                off.rate(),
                ratio,
                on.server_us,
                off.server_us,
                cpu,
                on.ms(0.99),
                off.ms(0.99)
            );
        }
        if let (Some(rate), Some(cpu)) = (median(rates), median(cpus)) {
            println!(
                "{:<13} median on/off {rate:.2} {}; server CPU per request off/on {cpu:.2} {}",
                scenario.name(),
                pass(rate >= target),
                pass(cpu >= target)
            );
        }
    }
}

/// Cookie sizes from real seals of real token lists.
fn cookie_sizes(config: &Config) -> Result<()> {
    let policy = &config.policy;
    let name = config.cookie_name();
    let generator = RandomGenerator::new(config.code_format.clone());
    let now = SystemClock.now();
    let (id, kek) = (crypto::KeyId::random(), crypto::Kek::generate());
    let size = |count: usize, len: usize| -> Result<usize> {
        let tokens = (0..count)
            .map(|n| {
                let mut t = Token::new(json_credential(n, len)?, generator.generate(), now, policy);
                // Every optional field present: the largest encoding of a token.
                t.resend_block = Some(t.resend_block.unwrap_or(now));
                t.otp_block = Some(now);
                Ok(t)
            })
            .collect::<Result<Vec<_>>>()?;
        let list = TokenList {
            id: ListId::random(),
            tokens,
        };
        let value = crypto::seal(id, &kek, &name, &list.encode());
        Ok(name.len() + 1 + value.len())
    };
    println!("cookie size (name=value, real seals of real token lists, every optional field set):");
    for count in 1..=policy.max_credentials.min(3) {
        let n = size(count, 100)?;
        let target = if count == 3 {
            format!(
                "  target <= {COOKIE_3X100_TARGET}: {}",
                pass(n <= COOKIE_3X100_TARGET)
            )
        } else {
            String::new()
        };
        println!("  {count} credential(s) of 100 bytes: {n:>5} bytes{target}");
    }
    let max = size(policy.max_credentials, policy.max_credential_len)?;
    println!(
        "  at the configured maxima ({} credentials of {} bytes, {}-character codes): {max} bytes \
         (Config::max_cookie_len() = {}); target < {}: {}",
        policy.max_credentials,
        policy.max_credential_len,
        config.code_format.length(),
        config.max_cookie_len(),
        secure_otp_server::config::BROWSER_COOKIE_LIMIT,
        pass(max < secure_otp_server::config::BROWSER_COOKIE_LIMIT)
    );
    Ok(())
}

/// A JSON credential of exactly `len` bytes (at least the fixed part), distinct per `n`.
fn json_credential(n: usize, len: usize) -> Result<Credential> {
    let head = format!("{{\"email\":\"u{n}-");
    let tail = "@example.com\"}";
    let pad = len.saturating_sub(head.len() + tail.len());
    Ok(Credential::new(format!("{head}{}{tail}", "x".repeat(pad))).ok_or("empty")?)
}

/// Runs the memory mode in fresh child processes for 1k and 1M IDs.
fn memory_report() -> Result<()> {
    println!("memory: MemoryIdStore, fresh process each, VmRSS before/after filling:");
    let exe = std::env::current_exe()?;
    for n in [1_000, MILLION] {
        let out = std::process::Command::new(&exe)
            .args(["--memory-child", &n.to_string()])
            .output()?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
        }
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(())
}

/// `--memory-child N`: fills a `MemoryIdStore` with N live IDs and prints the RSS.
fn memory_child(n: usize) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let before = proc_status_kb("VmRSS")?;
    let now = Timestamp::from_millis(1_795_089_600_000);
    let expires = now.plus(Duration::from_secs(180));
    let store = MemoryIdStore::new(n);
    let start = Instant::now();
    rt.block_on(async {
        for _ in 0..n {
            store.issue(expires, now).await?;
        }
        Ok::<_, BackendError>(())
    })?;
    let fill = start.elapsed();
    let after = proc_status_kb("VmRSS")?;
    let peak = proc_status_kb("VmHWM")?;
    let mb = |kb: u64| kb as f64 / 1024.0;
    let target = if n >= MILLION {
        format!(
            "; target < {MEMORY_TARGET_MB} MB: {}",
            pass(mb(after) < MEMORY_TARGET_MB)
        )
    } else {
        String::new()
    };
    println!(
        "  {n:>9} live IDs: RSS {:.1} MB -> {:.1} MB (+{:.1} MB, {:.0} bytes/ID, peak {:.1} MB), \
         filled in {:.2} s{target}",
        mb(before),
        mb(after),
        mb(after.saturating_sub(before)),
        (after.saturating_sub(before) * 1024) as f64 / n as f64,
        mb(peak),
        fill.as_secs_f64(),
    );
    drop(store);
    Ok(())
}

fn proc_status_kb(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/self/status").into())
}
