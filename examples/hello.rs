//! The baseline of `scripts/wrk.sh` (issue 20): axum's hello world as a process of its
//! own, built with the binary's profile and allocator, so an external load generator
//! can measure it exactly as it measures `secure-otp-server`. Every "× hello" ratio is
//! the server's requests per second over this one's, in the same run.
//!
//! ```text
//! cargo run --release --example hello -- 127.0.0.1:3001
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::routing::get;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3001".into());
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        eprintln!("hello: not an address: {addr}");
        return ExitCode::from(2);
    };
    let app = Router::new().route("/", get(|| async { "Hello, World!" }));
    let served = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => axum::serve(listener, app).await,
        Err(e) => Err(e),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hello: {e}");
            ExitCode::from(1)
        }
    }
}
