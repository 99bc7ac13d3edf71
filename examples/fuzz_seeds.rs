//! Writes the fuzz targets' seed corpora (`fuzz/seeds/<target>/`) with the real
//! encoders: cookies sealed by `crypto::seal` under the key the `open_cookie`
//! target opens with, token lists from `TokenList::encode`, and well-formed
//! bodies, headers and settings. Run by `scripts/fuzz.sh --seeds`; the output is
//! committed.

use std::path::Path;

use secure_otp_server::Timestamp;
use secure_otp_server::crypto::{self, Kek, KeyId};
use secure_otp_server::otp::OtpPolicy;
use secure_otp_server::otp::token::{Token, TokenList};
use secure_otp_server::plugin::{CodeFormat, Credential, ListId};

const NOW: Timestamp = Timestamp::from_millis(1_795_089_600_000);

fn write(target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::other(format!("a seed's {what} is invalid"))
}

fn list(credentials: &[&str], purpose: u8) -> std::io::Result<TokenList> {
    let policy = OtpPolicy::default();
    let format = CodeFormat::original();
    let mut tokens = Vec::new();
    for (i, c) in credentials.iter().enumerate() {
        let code = format
            .parse(&format!("abc12345{i:02}"))
            .ok_or_else(|| bad("code"))?;
        let credential = Credential::new((*c).to_owned()).ok_or_else(|| bad("credential"))?;
        let mut t = Token::new(credential, code, NOW, &policy).for_purpose(purpose);
        if i == 1 {
            t.attempts = 1;
            t.otp_block = Some(NOW.plus(std::time::Duration::from_secs(20)));
        }
        if i == 2 {
            t.block();
        }
        tokens.push(t);
    }
    Ok(TokenList {
        id: ListId::from_bytes([9; 16]),
        tokens,
    })
}

fn main() -> std::io::Result<()> {
    let kek = Kek::from_bytes([7; 32]);
    let lists = [
        ("one", list(&[r#"{"email":"ann@example.com"}"#], 0)?),
        (
            "three",
            list(
                &[
                    r#"{"email":"ann@example.com"}"#,
                    r#"{"phone":"+34600000012"}"#,
                    "plain text, with | separators and ünïcode",
                ],
                0,
            )?,
        ),
    ];
    for (name, l) in &lists {
        let plain = l.encode();
        write("token_list", name, &plain)?;
        let cookie = crypto::seal(KeyId::from_bytes(*b"seedkey1"), &kek, "o", &plain);
        write("open_cookie", name, cookie.as_bytes())?;
    }
    for (name, body) in [
        ("json", &b"\x00{\"email\":\"ann@example.com\"}"[..]),
        ("form", b"\x01email=ann%40example.com&name=Ann&tags%5B%5D=a&tags%5B%5D=b"),
        (
            "multipart",
            b"\x02--XyZ\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nann@example.com\r\n--XyZ--\r\n",
        ),
    ] {
        write("create_body", name, body)?;
    }
    for (name, body) in [
        ("json", &b"\x00{\"otp\":\"k3v9x0q2mz\"}"[..]),
        ("form", b"\x01otp=k3v9x0q2mz"),
        (
            "multipart",
            b"\x02--XyZ\r\nContent-Disposition: form-data; name=\"otp\"\r\n\r\nk3v9x0q2mz\r\n--XyZ--\r\n",
        ),
    ] {
        write("verify_body", name, body)?;
    }
    for (name, text) in [
        ("simple", "es-ES,es;q=0.9,en;q=0.8"),
        ("weights", "fr-CA;q=0.5, de;q=0.9, *;q=0.1"),
    ] {
        write("accept_language", name, text.as_bytes())?;
    }
    let key = Kek::from_bytes([5; 32]).dangerous_to_base64();
    for (name, text) in [
        (
            "keys",
            format!("0123456789abcdef:{key},fedcba9876543210:{key}"),
        ),
        ("master", format!("{key},{key}")),
        ("limit", "5/10m".to_owned()),
    ] {
        write("config", name, text.as_bytes())?;
    }
    println!("seeds written to fuzz/seeds/");
    Ok(())
}
