//! Key material as types: key ids, key-encryption keys and data keys.
//!
//! Keys zeroize on drop, cannot be cloned or serialised, and print as `[REDACTED]`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Bytes in a key id.
pub const KEY_ID_LEN: usize = 8;
/// Bytes in an AES-256 key.
pub const KEY_LEN: usize = 32;

/// Names a key-encryption key; written in clear at the front of every cookie.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    /// A key id from its raw bytes.
    pub const fn from_bytes(bytes: [u8; KEY_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh random key id.
    pub fn random() -> Self {
        let mut b = [0u8; KEY_ID_LEN];
        rand::fill(&mut b);
        Self(b)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; KEY_ID_LEN] {
        &self.0
    }

    /// Parses the 16-hex-digit form used in configuration and logs.
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.as_bytes();
        if text.len() != KEY_ID_LEN * 2 {
            return None;
        }
        let mut out = [0u8; KEY_ID_LEN];
        for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
            let [hi, lo] = pair else { return None };
            *byte = hex_digit(*hi)? << 4 | hex_digit(*lo)?;
        }
        Some(Self(out))
    }

    /// The 16-hex-digit form (key ids are not secret).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A 256-bit AES-KW key-encryption key held by a KMS.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Kek([u8; KEY_LEN]);

impl Kek {
    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut k = [0u8; KEY_LEN];
        rand::fill(&mut k);
        Self(k)
    }

    /// A key from raw bytes (e.g. from a configured key ring).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses unpadded base64url (or standard base64) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Option<Self> {
        decode_key(text).map(|k| Self(*k))
    }

    /// Unpadded base64url of the key: only for storing it in a key store.
    pub fn dangerous_to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek([REDACTED])")
    }
}

/// A 256-bit AES-GCM data key; lives for one seal or one open.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct Dek(pub(crate) [u8; KEY_LEN]);

impl Dek {
    pub(crate) fn generate() -> Self {
        let mut k = [0u8; KEY_LEN];
        rand::fill(&mut k);
        Self(k)
    }
}

impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dek([REDACTED])")
    }
}

/// 32 secret bytes from unpadded (or padded) base64url or standard base64: the
/// format of every key setting (`OTP_KEYS`, `OTP_KMS_MASTER_KEY`, `OTP_SESSION_KEY`).
/// The decoded buffer is wiped whatever its length.
pub fn decode_key(text: &str) -> Option<zeroize::Zeroizing<[u8; KEY_LEN]>> {
    let trimmed = text.trim().trim_end_matches('=');
    let mut raw = URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
        .ok()?;
    let out = <[u8; KEY_LEN]>::try_from(raw.as_slice())
        .ok()
        .map(zeroize::Zeroizing::new);
    raw.zeroize();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_hex_round_trips() {
        let id = KeyId::from_bytes([0, 1, 2, 0xab, 0xcd, 0xef, 0x10, 0xff]);
        assert_eq!(id.to_hex(), "000102abcdef10ff");
        assert_eq!(KeyId::from_hex("000102ABCDEF10ff"), Some(id));
        assert_eq!(KeyId::from_hex("000102abcdef10f"), None);
        assert_eq!(KeyId::from_hex("000102abcdef10fg"), None);
    }

    #[test]
    fn keys_never_print_their_bytes() {
        let k = Kek::from_bytes([7; KEY_LEN]);
        assert_eq!(format!("{k:?}"), "Kek([REDACTED])");
        assert_eq!(format!("{:?}", Dek([9; KEY_LEN])), "Dek([REDACTED])");
    }

    #[test]
    fn kek_parses_base64_of_32_bytes_only() {
        let k = Kek::generate();
        let text = k.dangerous_to_base64();
        let back = Kek::from_base64(&text).map(|k| *k.bytes());
        assert_eq!(back, Some(*k.bytes()));
        assert!(Kek::from_base64("c2hvcnQ").is_none());
        assert!(Kek::from_base64("not base64 !!").is_none());
    }
}
