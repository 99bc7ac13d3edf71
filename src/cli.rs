//! The command line: serve (the default), `check-config`, `keygen` and
//! `healthcheck`. Everything else is configured through the environment.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use secure_otp_server::crypto::{Kek, KeyId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One-time-password HTTP service with stateless, envelope-encrypted cookie sessions.
///
/// Without a command it serves the API on HOST:PORT (default 127.0.0.1:3000) until
/// SIGTERM or Ctrl-C. Every setting comes from the environment; see sample.env and
/// the README's Configuration section. ENVIRONMENT=production for real deployments.
#[derive(Debug, Parser)]
#[command(name = "secure-otp-server", version, about, long_about)]
pub(crate) struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve the API (the default).
    Serve,
    /// Validate the environment's configuration and print the active backends;
    /// exit 0 when valid, 2 (with every problem named) when not.
    CheckConfig,
    /// Print a fresh random key for OTP_KEYS, OTP_KMS_MASTER_KEY, OTP_LIMIT_KEY or OTP_SESSION_KEY.
    Keygen {
        /// `entry`: an OTP_KEYS item (`<key id>:<key>`); `key`: base64url of 32
        /// random bytes; `both` (default): one of each, with comments.
        #[arg(long, value_enum, default_value_t = KeyFormat::Both)]
        format: KeyFormat,
    },
    /// GET the readiness endpoint; exit 0 when it answers 200, 1 otherwise (for a
    /// container's HEALTHCHECK: no shell or curl needed).
    Healthcheck {
        /// The URL to check (plain HTTP); default http://127.0.0.1:$PORT/ready.
        #[arg(long)]
        url: Option<String>,
    },
}

/// What `keygen` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyFormat {
    /// An OTP_KEYS item.
    Entry,
    /// A bare key.
    Key,
    /// One of each, with comments.
    Both,
}

/// `keygen`: keys from the operating system's random generator.
pub(crate) fn keygen(format: KeyFormat) -> ExitCode {
    let entry = || {
        format!(
            "{}:{}",
            KeyId::random().to_hex(),
            Kek::generate().dangerous_to_base64()
        )
    };
    let key = || Kek::generate().dangerous_to_base64();
    match format {
        KeyFormat::Entry => println!("{}", entry()),
        KeyFormat::Key => println!("{}", key()),
        KeyFormat::Both => {
            println!("# OTP_KEYS item (OTP_KMS=static; comma-separated, the current key first):");
            println!("{}", entry());
            println!(
                "# OTP_KMS_MASTER_KEY, OTP_LIMIT_KEY or OTP_SESSION_KEY (base64url of 32 random bytes):"
            );
            println!("{}", key());
        }
    }
    ExitCode::SUCCESS
}

/// How long a health check may take in all.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// `healthcheck`: 0 when `url` answers 200.
pub(crate) async fn healthcheck(url: Option<String>) -> ExitCode {
    let url = url.unwrap_or_else(|| {
        let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
        format!("http://127.0.0.1:{port}/ready")
    });
    match tokio::time::timeout(HEALTHCHECK_TIMEOUT, status_of(&url)).await {
        Ok(Ok(200)) => ExitCode::SUCCESS,
        Ok(Ok(status)) => {
            eprintln!("secure-otp-server: {url} answered {status}");
            ExitCode::from(1)
        }
        Ok(Err(e)) => {
            eprintln!("secure-otp-server: {url}: {e}");
            ExitCode::from(1)
        }
        Err(_) => {
            eprintln!("secure-otp-server: {url}: no answer within {HEALTHCHECK_TIMEOUT:?}");
            ExitCode::from(1)
        }
    }
}

/// The status code of `GET url` (plain HTTP/1.1, one request, connection closed).
async fn status_of(url: &str) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported (the check runs beside the server)")?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    if authority.is_empty() {
        return Err("the URL has no host".into());
    }
    let address = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send: {e}"))?;
    let mut head = [0u8; 64];
    let n = stream
        .read(&mut head)
        .await
        .map_err(|e| format!("cannot read: {e}"))?;
    let line = String::from_utf8_lossy(head.get(..n).unwrap_or_default());
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "not an HTTP answer".to_owned())
}
