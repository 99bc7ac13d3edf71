//! The training program of the profile-guided build (scripts/pgo/train.rs), run for
//! two seconds against the server binary as scripts/pgo.sh runs it. CI's container
//! test builds the image plainly (the profile-guided build doubles its time), so this
//! is what keeps the training from going stale: an API or log-format change that
//! stops it from creating sessions, or from reading a code back and having it
//! accepted, fails here instead of in a release build.

use std::fs::File;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::delivery::temp_dir;
use crate::process::{Killed, PATIENCE, command};

/// The trainer compiled with `rustc` alone, as pgo.sh compiles it but without `-O`
/// (the test needs it to work, not to be fast).
fn compile_trainer(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("train");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pgo/train.rs");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let built = Command::new(rustc)
        .args(["--edition", "2024", "-o"])
        .arg(&out)
        .arg(&source)
        .output()
        .expect("rustc runs");
    assert!(
        built.status.success(),
        "scripts/pgo/train.rs does not compile:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    out
}

/// The address the server logged, read from its log file.
fn listening_addr(log: &Path) -> String {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(addr) = crate::process::listening_addr(&text) {
            return addr;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "the server never logged its address:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[test]
fn the_pgo_training_creates_sessions_and_has_right_and_wrong_codes_answered() {
    let dir = temp_dir("pgo-trainer");
    let trainer = compile_trainer(&dir);
    let log = dir.join("server.log");
    let file = File::create(&log).expect("log file");

    // The environment pgo.sh gives the instrumented server.
    let mut server = command(&[
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("LOG_FORMAT", "json"),
        ("OTP_SENDER", "log"),
        ("OTP_TRUSTED_PROXIES", "127.0.0.1"),
        ("METRICS_ADDR", "127.0.0.1:0"),
    ]);
    server
        .stdout(file.try_clone().expect("log file"))
        .stderr(file);
    let _server = Killed(server.spawn().expect("the server starts"));
    let addr = listening_addr(&log);

    // Its sockets time out after 10 s; pgo.sh bounds the whole run, and so does this.
    let mut running = Killed(
        Command::new(&trainer)
            .arg(&addr)
            .arg(&log)
            .arg("2")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the trainer runs"),
    );
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = running.0.try_wait().expect("the trainer's status") {
            break status;
        }
        assert!(Instant::now() < deadline, "the training did not end");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    if let Some(mut out) = running.0.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut out, &mut stdout);
    }
    assert!(status.success(), "the training failed: {stdout}");

    // Its own summary: "N sessions created, N right codes accepted, N wrong codes
    // refused"; the exit status already requires each above zero, this reads them
    // back so a summary that stopped counting fails too.
    let counts: Vec<u64> = stdout
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("a count"))
        .collect();
    assert_eq!(counts.len(), 3, "unexpected summary: {stdout}");
    assert!(
        counts.iter().all(|&n| n > 0),
        "a path was never trained: {stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
