//! The connection loop: what `axum::serve` does, plus the limits a service on the
//! open internet needs.
//!
//! * A connection that has not sent complete request headers within the header
//!   timeout is closed; so is a keep-alive connection idle for as long (hyper's
//!   header-read timer runs whenever a connection waits for a request head).
//! * Past `max_connections` open connections a new one is closed at once; the
//!   refusals are counted in a log line at most every 10 s.
//! * HTTP/2 (cleartext, prior knowledge) only when enabled, with at most 32
//!   concurrent streams per connection.
//! * On shutdown: stop accepting, let requests in flight finish for at most the
//!   grace period, then return even if a client is stalled.
//!
//! (The request timeout, `408`, is applied per request by the router's middleware.)

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// Concurrent HTTP/2 streams allowed per connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 32;
/// How often refused connections are reported at most.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// The connection limits.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time allowed for a request's headers, and for an idle keep-alive connection.
    pub header_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Whether HTTP/2 cleartext (prior knowledge) is accepted.
    pub http2: bool,
    /// How long requests in flight may finish after the shutdown signal.
    pub shutdown_grace: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then drains for at most
/// the grace period. Every request carries its peer address as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .keep_alive_interval(options.header_timeout)
        .keep_alive_timeout(options.header_timeout);
    let builder = Arc::new(if options.http2 {
        builder
    } else {
        builder.http1_only()
    });
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let refused = RefusalLog::default();
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: keep
                    // serving the others, and do not spin on a persistent error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            refused.count(options.max_connections);
            continue;
        };
        // Small answers go out at once rather than waiting for Nagle's timer.
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        });
        let builder = Arc::clone(&builder);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!(
        connections = graceful.count(),
        grace_seconds = options.shutdown_grace.as_secs(),
        "shutting down: no new connections, finishing requests in flight"
    );
    if tokio::time::timeout(options.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over: closing the connections still open");
    }
}

/// Counts connections refused at the cap; logs at most every [`REFUSAL_LOG_EVERY`].
#[derive(Default)]
struct RefusalLog {
    since_last: AtomicU64,
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

impl RefusalLog {
    fn count(&self, cap: usize) {
        self.since_last.fetch_add(1, Ordering::Relaxed);
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let now = crate::clock::monotonic_now();
        if last.is_some_and(|t| now.duration_since(t) < REFUSAL_LOG_EVERY) {
            return;
        }
        *last = Some(now);
        let refused = self.since_last.swap(0, Ordering::Relaxed);
        tracing::warn!(
            refused,
            max_connections = cap,
            "connection limit reached (HTTP_MAX_CONNECTIONS): new connections closed"
        );
    }
}

/// Raises the open-file soft limit to the hard limit; the new soft limit.
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}
