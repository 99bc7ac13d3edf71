//! The training run of a profile-guided build (scripts/pgo.sh): drives an
//! instrumented server through what production asks of it, so the profile says which
//! paths are hot. Standard library only, compiled with `rustc` alone (the builder
//! image has no Python, curl or wrk).
//!
//!     train ADDR LOG SECONDS
//!
//! ADDR is the server (`127.0.0.1:PORT`), started with the development `log` sender
//! and JSON lines written to LOG, from which each code is read back. For SECONDS,
//! four connections, one thread each, loop over a mix weighted like the benchmarks
//! (creates, wrong verifies) with every other endpoint and the usual mistakes in
//! smaller shares: full flows (create, status, resend, verify with the right code),
//! cancels, malformed bodies, missing cookies, a client over its limit, probes. Exits
//! non-zero unless creates, right codes and wrong codes were each answered as
//! expected, so a broken training run cannot pass for a profile.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CONNECTIONS: u64 = 4;

struct Answer {
    status: u16,
    cookie: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn failed() -> Self {
        Answer {
            status: 0,
            cookie: None,
            body: Vec::new(),
        }
    }

    fn error_is(&self, code: &str) -> bool {
        let needle = format!("\"error\":\"{code}\"");
        String::from_utf8_lossy(&self.body).contains(&needle)
    }
}

struct Client {
    addr: String,
    stream: Option<BufReader<TcpStream>>,
}

impl Client {
    /// One request and its answer; status 0 when the exchange failed. A request is
    /// never sent twice (a create or a verify is not idempotent): a failed exchange
    /// drops the connection, and the next request opens a new one.
    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        if self.stream.is_none() {
            let Ok(s) = TcpStream::connect(&self.addr) else {
                std::thread::sleep(Duration::from_millis(50));
                return Answer::failed();
            };
            // A server that stops answering fails the exchange instead of hanging
            // the build.
            let timeout = Some(Duration::from_secs(10));
            if s.set_read_timeout(timeout).is_err() || s.set_write_timeout(timeout).is_err() {
                return Answer::failed();
            }
            self.stream = Some(BufReader::new(s));
        }
        self.exchange(method, path, headers, body)
            .unwrap_or_else(|| {
                self.stream = None;
                Answer::failed()
            })
    }

    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Option<Answer> {
        let stream = self.stream.as_mut()?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: train\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.get_mut().write_all(request.as_bytes()).ok()?;
        let mut line = String::new();
        if stream.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let status = line.split(' ').nth(1)?.parse().ok()?;
        let (mut length, mut cookie, mut close) = (0usize, None, false);
        loop {
            line.clear();
            if stream.read_line(&mut line).ok()? == 0 {
                return None; // closed within the headers
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':')?;
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().ok()?,
                "set-cookie" => cookie = value.split(';').next().map(str::to_owned),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                // The server sends lengths; anything else would desynchronise the
                // connection: given up (and the connection dropped).
                "transfer-encoding" => return None,
                _ => {}
            }
        }
        let mut body = vec![0; length];
        stream.read_exact(&mut body).ok()?;
        if close {
            self.stream = None;
        }
        Some(Answer {
            status,
            cookie,
            body,
        })
    }
}

/// The code the development sender logged for `email`, once its line is written
/// (the server writes its lines in batches, at the latest 50 ms after a request).
fn code_for(log: &str, email: &str) -> Option<String> {
    let needle = format!("\\\"email\\\":\\\"{email}\\\"");
    for _ in 0..40 {
        // The last 2 MiB (the log grows by megabytes a second), whole lines only.
        let mut file = std::fs::File::open(log).ok()?;
        let len = file.metadata().ok()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(2 << 20)))
            .ok()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        let complete = text.rsplit_once('\n').map_or("", |(done, _)| done);
        let code = complete
            .lines()
            .rev()
            .find(|l| l.contains("otp-sender") && l.contains(&needle))
            .and_then(|line| line.split_once("\"otp\":\"")?.1.split_once('"'))
            .map(|(code, _)| code.to_owned());
        if code.is_some() {
            return code;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// What the training saw answered as it should be, each counted apart: a profile
/// missing one of them would train nothing on that path.
#[derive(Default)]
struct Counts {
    created: AtomicU64,
    right: AtomicU64,
    wrong: AtomicU64,
}

fn run(worker: u64, addr: &str, log: &str, until: Instant, counts: &Counts) {
    let mut c = Client {
        addr: addr.to_owned(),
        stream: None,
    };
    let json = ("content-type", "application/json");
    let form = ("content-type", "application/x-www-form-urlencoded");
    let mut n = worker * 1_000_000;
    while Instant::now() < until {
        n += 1;
        // A new client address and a new credential each round: the limits count
        // them without refusing (one round of each kind hits a limit on purpose).
        let ip = format!("10.{}.{}.{}", 100 + worker, (n / 250) % 250, n % 250 + 1);
        let email = format!("train{n}@example.com");
        let client = ("x-forwarded-for", ip.as_str());
        let created = c.send(
            "POST",
            "/api/otp/create",
            &[json, client],
            &format!("{{\"email\":\"{email}\"}}"),
        );
        let Some(cookie) = created.cookie.filter(|_| created.status == 200) else {
            continue;
        };
        counts.created.fetch_add(1, Ordering::Relaxed);
        let session = ("cookie", cookie.as_str());
        match n % 16 {
            // A full flow: status, one wrong code, a too-early resend, the right code.
            0 => {
                c.send("GET", "/api/otp/status", &[client, session], "");
                let wrong = c.send(
                    "POST",
                    "/api/otp/verify",
                    &[form, client, session],
                    "otp=0000000000",
                );
                let cookie = wrong.cookie.unwrap_or(cookie);
                let session = ("cookie", cookie.as_str());
                c.send("POST", "/api/otp/resend", &[client, session], "");
                if let Some(code) = code_for(log, &email) {
                    let right = c.send(
                        "POST",
                        "/api/otp/verify",
                        &[json, client, session],
                        &format!("{{\"otp\":\"{code}\"}}"),
                    );
                    if right.status == 200 {
                        counts.right.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            1 => {
                c.send("POST", "/api/otp/cancel", &[client, session], "");
            }
            // The mistakes: a malformed code, no body, no cookie, bad JSON, a wrong route.
            2 => {
                c.send(
                    "POST",
                    "/api/otp/verify",
                    &[form, client, session],
                    "otp=%%%",
                );
                c.send(
                    "POST",
                    "/api/otp/verify",
                    &[json, client],
                    "{\"otp\":\"0000000000\"}",
                );
                c.send("POST", "/api/otp/create", &[json, client], "{\"email\":");
                c.send("POST", "/api/otp/create", &[json, client], "");
                c.send("GET", "/nowhere", &[client], "");
            }
            // One client over its create limit: the 429 path.
            3 => {
                let crowded = ("x-forwarded-for", "10.99.99.99");
                c.send(
                    "POST",
                    "/api/otp/create",
                    &[json, crowded],
                    "{\"email\":\"crowd@example.com\"}",
                );
                c.send("GET", "/health", &[], "");
                c.send("GET", "/ready", &[], "");
            }
            // Mostly: the benchmarks' wrong verify, with a code of the right shape.
            _ => {
                let answer = c.send(
                    "POST",
                    "/api/otp/verify",
                    &[form, client, session],
                    "otp=0000000000",
                );
                if answer.status == 403 && answer.error_is("OTP:INCORRECT") {
                    counts.wrong.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, log, seconds] = args.as_slice() else {
        eprintln!("usage: train ADDR LOG SECONDS");
        std::process::exit(2);
    };
    let seconds: u64 = seconds.parse().expect("SECONDS is a number");
    let until = Instant::now() + Duration::from_secs(seconds);
    let counts = Arc::new(Counts::default());
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|w| {
            let (addr, log, counts) = (addr.clone(), log.clone(), counts.clone());
            std::thread::spawn(move || run(w, &addr, &log, until, &counts))
        })
        .collect();
    for w in workers {
        w.join().expect("a training thread panicked");
    }
    let [created, right, wrong] =
        [&counts.created, &counts.right, &counts.wrong].map(|c| c.load(Ordering::Relaxed));
    println!(
        "pgo training: {created} sessions created, {right} right codes accepted, \
         {wrong} wrong codes refused (OTP:INCORRECT)"
    );
    if created == 0 || right == 0 || wrong == 0 {
        eprintln!("pgo training: a path was never answered as expected; no profile");
        std::process::exit(1);
    }
}
