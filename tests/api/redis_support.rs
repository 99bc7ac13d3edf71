//! Real Redis servers and a real 3-master Redis Cluster for the scale-out tests.
//! Every process is started by the test on a free loopback port and killed by a
//! `Drop` guard. `scripts/test.sh` installs `redis-server`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secure_otp_server::Config;
use secure_otp_server::crypto::{Kek, KeyId};
use secure_otp_server::redis::RedisConnection;

use crate::delivery::SelfSigned;

/// How long a process or a cluster may take to start (a hang guard, not a timing
/// assertion: under the full suite a cluster has taken up to ~25 s to form here).
pub const START_DEADLINE: Duration = Duration::from_secs(90);

/// Waits until `f` holds, checking every 50 ms; panics after `deadline` saying `what`.
pub fn wait_until(deadline: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A free port `p` whose cluster-bus port `p + 10000` is free too.
fn free_port() -> u16 {
    loop {
        let mut b = [0u8; 2];
        rand::fill(&mut b);
        let port = 20_000 + u16::from_le_bytes(b) % 10_000;
        if port_is_free(port) && port_is_free(port + 10_000) {
            return port;
        }
    }
}

fn scratch_dir(port: u16) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("otp-redis-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// One `redis-server` process (no persistence), killed on drop.
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    cluster: bool,
    dir: PathBuf,
    /// TLS only (`rediss://`), with this certificate (also the CA clients trust).
    tls: Option<SelfSigned>,
}

impl RedisServer {
    /// A standalone server on a free port.
    pub fn start() -> Self {
        Self::start_on(free_port(), false)
    }

    /// A standalone server speaking only TLS, with a fresh self-signed certificate
    /// for `localhost` (see [`RedisServer::ca_file`]).
    pub fn start_tls() -> Self {
        let port = free_port();
        let dir = scratch_dir(port);
        let tls = Some(SelfSigned::generate(&dir));
        let mut s = Self {
            port,
            child: None,
            cluster: false,
            dir,
            tls,
        };
        s.restart();
        s
    }

    fn start_on(port: u16, cluster: bool) -> Self {
        let dir = scratch_dir(port);
        let mut s = Self {
            port,
            child: None,
            cluster,
            dir,
            tls: None,
        };
        s.restart();
        s
    }

    /// `redis://127.0.0.1:<port>`, or `rediss://localhost:<port>` for a TLS server.
    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("rediss://localhost:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// The certificate a client must trust to reach a TLS server.
    pub fn ca_file(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.cert.as_path())
    }

    /// Runs `redis-cli` against this server (over TLS if it speaks TLS).
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let mut all: Vec<&str> = Vec::new();
        if let Some(tls) = &self.tls {
            all.extend(["--tls", "--cacert", tls.cert.to_str().expect("utf-8 path")]);
        }
        all.extend(args);
        redis_cli(self.port, &all)
    }

    /// Kills the server (as a crash would) and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// (Re)starts the server on the same port, empty, and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let mut cmd = Command::new("redis-server");
        match &self.tls {
            None => cmd.args(["--port", &self.port.to_string()]),
            Some(tls) => cmd
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(&tls.cert)
                .arg("--tls-key-file")
                .arg(&tls.key)
                .args(["--tls-auth-clients", "no"]),
        };
        cmd.args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.cluster {
            cmd.args(["--cluster-enabled", "yes"]).args([
                "--cluster-config-file",
                &format!("nodes-{}.conf", self.port),
            ]);
        }
        let child = cmd
            .spawn()
            .expect("redis-server is installed (scripts/test.sh installs it)");
        self.child = Some(child);
        wait_until(START_DEADLINE, "redis-server to answer", || {
            self.cli(&["PING"]).is_some_and(|o| o.trim() == "PONG")
        });
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `redis-cli -p port args...`; its stdout if it ran.
pub fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Three masters forming a Redis Cluster (all 16384 slots, no replicas).
pub struct RedisCluster {
    /// The nodes.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three nodes and joins them with `redis-cli --cluster create`.
    pub fn start() -> Self {
        let mut nodes: Vec<RedisServer> = Vec::new();
        while nodes.len() < 3 {
            let port = free_port();
            if nodes.iter().all(|n| n.port != port) {
                nodes.push(RedisServer::start_on(port, true));
            }
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli is installed");
        assert!(status.success(), "redis-cli --cluster create failed");
        for n in &nodes {
            let port = n.port;
            wait_until(START_DEADLINE, "the cluster to be ok", || {
                redis_cli(port, &["CLUSTER", "INFO"])
                    .is_some_and(|o| o.contains("cluster_state:ok"))
            });
        }
        Self { nodes }
    }

    /// `redis://a,redis://b,redis://c` for `REDIS_CLUSTER_NODES`.
    pub fn nodes_var(&self) -> String {
        self.nodes
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Where a test's Redis is.
pub enum Backend {
    /// One server.
    Single(RedisServer),
    /// A cluster.
    Cluster(RedisCluster),
}

impl Backend {
    /// A fresh standalone server.
    pub fn single() -> Self {
        Backend::Single(RedisServer::start())
    }

    /// A fresh 3-master cluster.
    pub fn cluster() -> Self {
        Backend::Cluster(RedisCluster::start())
    }

    /// The variable that points the server at this backend.
    pub fn env(&self) -> (&'static str, String) {
        match self {
            Backend::Single(s) => ("REDIS_URL", s.url()),
            Backend::Cluster(c) => ("REDIS_CLUSTER_NODES", c.nodes_var()),
        }
    }

    /// A library-level connection (for contract tests).
    pub fn connection(&self) -> RedisConnection {
        let (name, value) = self.env();
        let config = Config::from_vars([("OTP_ID_STORE", "redis".to_owned()), (name, value)])
            .expect("valid redis configuration");
        RedisConnection::new(config.redis.as_ref().expect("redis configured")).expect("client")
    }

    /// A raw command (routed by its key on a cluster), to read what is stored.
    pub fn raw(&self, cmd: &redis::Cmd) -> redis::Value {
        match self {
            Backend::Single(s) => {
                let client = redis::Client::open(s.url()).expect("client");
                let mut con = client.get_connection().expect("connection");
                cmd.query(&mut con).expect("raw command")
            }
            Backend::Cluster(c) => {
                let client = redis::cluster::ClusterClient::new(
                    c.nodes.iter().map(RedisServer::url).collect::<Vec<_>>(),
                )
                .expect("client");
                let mut con = client.get_connection().expect("connection");
                cmd.query(&mut con).expect("raw command")
            }
        }
    }
}

/// A fresh random master key (base64url of 32 bytes) for `OTP_KMS_MASTER_KEY`.
pub fn master_key() -> String {
    Kek::generate().dangerous_to_base64()
}

/// The KEK id a cookie names (bytes 1..9 of the envelope).
pub fn cookie_key_id(cookie: &str) -> KeyId {
    let raw = URL_SAFE_NO_PAD.decode(cookie).expect("cookie is base64url");
    let mut id = [0u8; 8];
    id.copy_from_slice(&raw[1..9]);
    KeyId::from_bytes(id)
}
