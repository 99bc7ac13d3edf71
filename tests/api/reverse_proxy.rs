//! The real binary behind a real nginx with TLS, configured with the README's
//! `deploy/nginx.conf`: the `__Host-` cookie works over HTTPS through the proxy,
//! the client address the server logs is the one nginx saw, and an
//! `X-Forwarded-For` sent by the client does not become the client address.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::delivery::{SelfSigned, temp_dir};
use crate::process::{PATIENCE, Server};

/// The configuration the README tells operators to use.
const CONFIG: &str = include_str!("../../deploy/nginx.conf");

/// The address the client connects from: not nginx's own (127.0.0.1), so the test
/// can tell the client from the proxy.
const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "nginx is not installed: the reverse-proxy test needs a real nginx \
                 (scripts/test.sh installs it: apt-get install nginx)"
            )
        })
}

/// nginx in the foreground with `deploy/nginx.conf`, pointed at `upstream` and
/// listening on `port` with a self-signed certificate; killed on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn start(upstream: &str, port: u16, tls: &SelfSigned, dir: &Path) -> Self {
        let site = CONFIG
            .replace("server 127.0.0.1:3000", &format!("server {upstream}"))
            .replace("listen 443 ssl;", &format!("listen 127.0.0.1:{port} ssl;"))
            .replace("otp.example.com;", "localhost;")
            .replace(
                "/etc/nginx/tls/otp.example.com.crt",
                tls.cert.to_str().expect("utf-8"),
            )
            .replace(
                "/etc/nginx/tls/otp.example.com.key",
                tls.key.to_str().expect("utf-8"),
            );
        assert!(site.contains(upstream) && site.contains(&port.to_string()));
        std::fs::write(dir.join("site.conf"), site).expect("site");
        let d = dir.display();
        // As root the workers would switch to `nobody`, who cannot read the key here.
        let user = if is_root() { "user root;" } else { "" };
        let main = format!(
            "{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
    log_format proxy '$remote_addr $request_id \"$request\" $status';
    access_log {d}/access.log proxy;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/site.conf;
}}
"
        );
        std::fs::write(dir.join("nginx.conf"), main).expect("nginx.conf");
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx starts");
        let deadline = std::time::Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let error_log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            assert!(
                std::time::Instant::now() < deadline,
                "nginx did not listen on {port}: {error_log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            dir: dir.to_owned(),
        }
    }

    /// The line of nginx's access log (`remote_addr request_id "request" status`)
    /// that names `id`. nginx writes it after the response has gone out, so the
    /// client can be faster than the log: wait for it.
    fn access_line(&self, id: &str) -> String {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let log = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
            if let Some(line) = log.lines().find(|l| l.contains(id)) {
                return line.to_owned();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nginx logged no request {id}: {log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The JSON access line of the request `id` from the server's output.
fn access_line(server: &mut Server, id: &str) -> serde_json::Value {
    let line = server.wait_for(|l| l.contains("\"message\":\"request\"") && l.contains(id));
    serde_json::from_str(&line).expect("a JSON line")
}

#[test]
fn the_readme_shows_the_tested_configuration() {
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains(CONFIG.trim()),
        "README.md's nginx block must be deploy/nginx.conf, verbatim"
    );
}

#[tokio::test]
async fn behind_nginx_with_tls_the_host_cookie_works_and_the_client_ip_is_the_one_nginx_saw() {
    let dir = temp_dir("nginx");
    let tls = SelfSigned::generate(&dir);
    let mut server = Server::start(&[
        ("ENVIRONMENT", "production"),
        ("OTP_SENDER", "log"),
        ("OTP_CREDENTIAL", "email"),
        ("OTP_TRUSTED_PROXIES", "127.0.0.1/32"),
    ]);
    let upstream = server.base.trim_start_matches("http://").to_owned();
    let port = free_port();
    let nginx = Nginx::start(&upstream, port, &tls, &dir);

    let ca = reqwest::Certificate::from_pem(&std::fs::read(&tls.cert).expect("cert")).expect("pem");
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)))
        .local_address(CLIENT)
        .build()
        .expect("client");
    let base = format!("https://localhost:{port}");

    // Create, with a spoofed X-Forwarded-For from the client.
    let email = "proxied@example.com";
    let created = client
        .post(format!("{base}/api/otp/create"))
        .header("content-type", "application/json")
        .header("origin", &base)
        .header("x-forwarded-for", "203.0.113.9")
        .body(format!(r#"{{"email":"{email}"}}"#))
        .send()
        .await
        .expect("create through nginx");
    assert_eq!(created.status(), 200);
    assert!(created.headers().contains_key("strict-transport-security"));
    let set_cookie = created.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    // What a browser requires of a __Host- cookie: Secure, Path=/, no Domain.
    assert!(set_cookie.starts_with("__Host-Http-o="), "{set_cookie}");
    for attribute in ["Secure", "HttpOnly", "Path=/", "SameSite=Strict"] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} missing: {set_cookie}"
        );
    }
    assert!(
        !set_cookie.to_ascii_lowercase().contains("domain="),
        "{set_cookie}"
    );
    let id = created.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();

    // The server logged the address nginx saw, not the spoofed one.
    let line = access_line(&mut server, &id);
    assert_eq!(line["span"]["client_ip"], CLIENT.to_string(), "{line}");
    let proxied = nginx.access_line(&id);
    assert!(proxied.starts_with(&format!("{CLIENT} ")), "{proxied}");

    // The right code, with the cookie, through the proxy.
    let code = server.code_for(email);
    let cookie = set_cookie.split(';').next().expect("pair").to_owned();
    let verified = client
        .post(format!("{base}/api/otp/verify"))
        .header("content-type", "application/json")
        .header("origin", &base)
        .header("cookie", cookie)
        .body(format!(r#"{{"otp":"{code}"}}"#))
        .send()
        .await
        .expect("verify through nginx");
    assert_eq!(verified.status(), 200);
    let cleared = verified.headers()["set-cookie"].to_str().expect("ascii");
    assert!(cleared.starts_with("__Host-Http-o=;"), "{cleared}");
    let id = verified.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let line = access_line(&mut server, &id);
    assert_eq!(line["span"]["client_ip"], CLIENT.to_string(), "{line}");
    assert_eq!(line["fields"]["status"], 200, "{line}");

    // /ready answers through the proxy (the upstream check a balancer probes).
    let ready = client
        .get(format!("{base}/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), 200);
}
