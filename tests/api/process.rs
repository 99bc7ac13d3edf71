//! The compiled server binary as a child process: started on a free loopback port,
//! its stdout and stderr read line by line, killed when the test ends.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::helpers::Reply;

/// The server binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_secure-otp-server");

/// How long to wait for an expected line before failing (generous: the machine is shared).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The `ADDR` of the server's "listening on http://ADDR" line in `text`, if there.
pub fn listening_addr(text: &str) -> Option<String> {
    let at = text.find("listening on http://")?;
    let addr: String = text[at + "listening on http://".len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    addr.contains(':').then_some(addr)
}

/// Kills a child process (a server started by hand, a helper) when the test ends,
/// however it ends.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills the server when the test ends, however it ends.
pub struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    readers: Vec<std::thread::JoinHandle<()>>,
    /// `http://ADDR` of the running server.
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes ANSI escape sequences (there should be none: stdout is a pipe).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

pub fn command(vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("RUST_LOG", "info")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

impl Server {
    /// Starts the binary on a free loopback port with `vars` and waits for its address.
    pub fn start(vars: &[(&str, &str)]) -> Self {
        let mut child = command(&[&[("PORT", "0"), ("HOST", "127.0.0.1")], vars].concat())
            .spawn()
            .expect("the binary starts");
        let (tx, lines) = mpsc::channel();
        let stdout: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().expect("stdout"));
        let stderr: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().expect("stderr"));
        let readers = [stdout, stderr]
            .into_iter()
            .map(|stream| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { break };
                        if tx.send(strip_ansi(&line)).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        let mut server = Self {
            child,
            lines,
            readers,
            base: String::new(),
        };
        let line = server.wait_for(|l| l.contains("listening on http://"));
        assert!(
            !line.contains('\u{1b}'),
            "no colour codes when stdout is not a terminal"
        );
        let start = line.find("http://").expect("address");
        let addr: String = line[start..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"')
            .collect();
        server.base = addr;
        server
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit at most `within`; the exit status.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.pid().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        self.exit_within(within)
    }

    /// Waits for the exit at most `within`; the exit status.
    fn exit_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The next output line matching `pred`.
    pub fn wait_for(&mut self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(e) => {
                    let status = self.child.try_wait();
                    panic!("no matching output line ({e}); process status {status:?}");
                }
            }
        }
    }

    /// `POST path` with a body of `content_type` (and a `name=value` cookie), read whole.
    pub async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut req = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(pair) = cookie {
            req = req.header("cookie", pair);
        }
        Reply::of(req).await
    }

    /// The next code the `log` sender printed for a credential whose log form
    /// contains `credential` (for JSON credentials, e.g. `"a@example.com"`), from a
    /// text line (`otp=...`) or a JSON one (`"otp":"..."`).
    pub fn code_for(&mut self, credential: &str) -> String {
        let line = self.wait_for(|l| l.contains("otp-sender") && l.contains(credential));
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) {
            return json["fields"]["otp"]
                .as_str()
                .expect("an otp field")
                .to_owned();
        }
        line.split("otp=")
            .nth(1)
            .expect("otp= in the log line")
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect()
    }

    /// The magic link of the next message the `log` sender printed for a credential
    /// whose log form contains `credential` (`link=...` in text, `"link"` in JSON).
    pub fn link_for(&mut self, credential: &str) -> String {
        let line = self.wait_for(|l| l.contains("otp-sender") && l.contains(credential));
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) {
            return json["fields"]["link"]
                .as_str()
                .expect("a link field")
                .to_owned();
        }
        line.split("link=")
            .nth(1)
            .expect("link= in the log line")
            .trim_start_matches('"')
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"')
            .collect()
    }

    /// Stops the server (SIGTERM, so its workers write the log lines they gathered;
    /// SIGKILL if it has not exited within the suite's patience) and returns every
    /// output line not yet read (stdout and stderr).
    pub fn stop(&mut self) -> Vec<String> {
        let pid = self.pid().to_string();
        // Only a child not yet reaped: a reaped child's pid may be another process's.
        if self.child.try_wait().is_ok_and(|s| s.is_none())
            && Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .is_ok_and(|s| s.success())
        {
            let _ = self.exit_within(PATIENCE);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.drain()
    }

    /// Every line received so far (without waiting).
    pub fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}
