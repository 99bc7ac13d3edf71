//! Envelope encryption of the session cookie; the only module that names AES.
//!
//! # Wire format, version 1
//!
//! The cookie value is unpadded base64url (RFC 4648 §5, canonical: trailing
//! bits must be zero) of:
//!
//! ```text
//! offset  len  field
//! 0       1    version = 0x01 (a version byte is never reused for another layout)
//! 1       8    key id of the KEK in the KMS
//! 9       40   AES-256-KW(KEK, DEK)          RFC 3394 wrap of a fresh 32-byte DEK
//! 49      n    AES-256-GCM(DEK, nonce, AAD, plaintext) ciphertext
//! 49+n    16   GCM tag
//! ```
//!
//! * AAD = the 49-byte header (version, key id, wrapped DEK) followed by the
//!   cookie name, so a value cannot be moved to another version, key id or cookie.
//! * Every seal draws a **fresh DEK**, so each DEK encrypts exactly one message;
//!   the nonce is therefore the constant 96-bit zero and can never repeat under a
//!   key (the same construction `age` uses for its per-file keys). This saves the
//!   12 nonce bytes the original carried.
//! * Overhead: 65 bytes, i.e. `ceil((65 + plaintext) * 4 / 3)` characters.
//!
//! Any decode, length, key, unwrap or tag failure is one opaque [`CryptoError`].

mod at_rest;
mod keys;

pub use at_rest::{MasterKey, WRAPPED_KEK_LEN, unwrap_kek, wrap_kek};
pub use keys::{KEY_ID_LEN, KEY_LEN, Kek, KeyId, decode_key};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use aes_kw::KwAes256;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keys::Dek;
use zeroize::Zeroize as _;

/// The current format version byte.
pub const VERSION: u8 = 0x01;
const WRAPPED_LEN: usize = KEY_LEN + 8;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + WRAPPED_LEN;
const TAG_LEN: usize = 16;
/// Bytes a sealed value adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// Longest cookie value we even try to decode; browsers cap a cookie at 4096 bytes.
pub const MAX_SEALED_CHARS: usize = 4096;

/// The opaque failure of [`Sealed::open`]: no detail, by design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sealed value is invalid")]
pub struct CryptoError;

/// Characters of the sealed form of a plaintext of `plaintext_len` bytes.
pub const fn sealed_len(plaintext_len: usize) -> usize {
    (OVERHEAD + plaintext_len).div_ceil(3) * 4 - pad_chars(OVERHEAD + plaintext_len)
}

const fn pad_chars(bytes: usize) -> usize {
    match bytes % 3 {
        1 => 2,
        2 => 1,
        _ => 0,
    }
}

/// A cookie value whose header has been parsed but not yet authenticated.
#[derive(Debug)]
pub struct Sealed {
    bytes: Vec<u8>,
}

impl Sealed {
    /// Decodes a cookie value far enough to learn which KEK it needs.
    pub fn parse(value: &str) -> Result<Self, CryptoError> {
        if value.len() > MAX_SEALED_CHARS {
            return Err(CryptoError);
        }
        let bytes = URL_SAFE_NO_PAD.decode(value).map_err(|_| CryptoError)?;
        if bytes.len() < OVERHEAD || bytes.first() != Some(&VERSION) {
            return Err(CryptoError);
        }
        Ok(Self { bytes })
    }

    /// The key id the value names.
    pub fn key_id(&self) -> KeyId {
        // `parse` guarantees at least `OVERHEAD` bytes, so the range is there.
        let id = self
            .bytes
            .get(1..1 + KEY_ID_LEN)
            .and_then(|s| <[u8; KEY_ID_LEN]>::try_from(s).ok())
            .unwrap_or([0; KEY_ID_LEN]);
        KeyId::from_bytes(id)
    }

    /// Unwraps the DEK with `kek` and decrypts; any failure is [`CryptoError`].
    /// The plaintext is wiped from memory when dropped.
    pub fn open(
        mut self,
        kek: &Kek,
        cookie_name: &str,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        let mut dek = Dek([0u8; KEY_LEN]);
        let header = self.bytes.get(..HEADER_LEN).ok_or(CryptoError)?;
        let wrapped = header.get(1 + KEY_ID_LEN..).ok_or(CryptoError)?;
        KwAes256::new(kek.bytes().into())
            .unwrap_key(wrapped, &mut dek.0)
            .map_err(|_| CryptoError)?;
        let aad = aad(header, cookie_name);
        // Decrypted where it lies, then the header and the tag dropped: no copy.
        let tag_at = self
            .bytes
            .len()
            .checked_sub(TAG_LEN)
            .filter(|&at| at >= HEADER_LEN)
            .ok_or(CryptoError)?;
        let (sealed, tag) = self.bytes.split_at_mut(tag_at);
        let tag = aes_gcm::Tag::try_from(&*tag).map_err(|_| CryptoError)?;
        let body = sealed.get_mut(HEADER_LEN..).ok_or(CryptoError)?;
        Aes256Gcm::new((&dek.0).into())
            .decrypt_inout_detached(&Nonce::default(), &aad, body.into(), &tag)
            .map_err(|_| CryptoError)?;
        self.bytes.truncate(tag_at);
        self.bytes.drain(..HEADER_LEN);
        Ok(zeroize::Zeroizing::new(self.bytes))
    }
}

/// Seals `plaintext` under a fresh DEK wrapped with `kek`, for the cookie `cookie_name`.
pub fn seal(key_id: KeyId, kek: &Kek, cookie_name: &str, plaintext: &[u8]) -> String {
    seal_with(key_id, kek, cookie_name, plaintext.len(), |out| {
        out.extend_from_slice(plaintext);
    })
}

/// Seals the `len` bytes of plaintext that `write` appends, as [`seal`]: they are
/// written straight into the sealed buffer and encrypted there, so the plaintext is
/// never copied, and the buffer, sized once, never grows with it inside.
pub fn seal_with(
    key_id: KeyId,
    kek: &Kek,
    cookie_name: &str,
    len: usize,
    write: impl FnOnce(&mut Vec<u8>),
) -> String {
    let dek = Dek::generate();
    let mut out = Vec::with_capacity(OVERHEAD + len);
    out.push(VERSION);
    out.extend_from_slice(key_id.as_bytes());
    out.resize(HEADER_LEN, 0);
    // Wrapping a 32-byte key into a 40-byte buffer cannot fail.
    let (_, slot) = out.split_at_mut(1 + KEY_ID_LEN);
    let wrapped = KwAes256::new(kek.bytes().into()).wrap_key(&dek.0, slot);
    debug_assert!(wrapped.is_ok());
    let aad = aad(&out, cookie_name);
    // Encrypted in place after the header, the tag appended: one buffer, sized once.
    write(&mut out);
    let written = out.len() == HEADER_LEN + len;
    debug_assert!(written, "the plaintext is not `len` bytes");
    let body = out.get_mut(HEADER_LEN..).unwrap_or_default();
    let tag = Aes256Gcm::new((&dek.0).into()).encrypt_inout_detached(
        &Nonce::default(),
        &aad,
        body.into(),
    );
    match tag {
        Ok(tag) if written => {
            out.extend_from_slice(&tag);
            URL_SAFE_NO_PAD.encode(out)
        }
        // Neither happens (GCM refuses only messages over 64 GiB, and `len` is the
        // encoder's own count), but the buffer must not leave with plaintext in it:
        // an empty value opens as no session at all.
        _ => {
            out.zeroize();
            String::new()
        }
    }
}

/// The associated data: the header and the cookie's name (on the stack).
fn aad(header: &[u8], cookie_name: &str) -> smallvec::SmallVec<[u8; 128]> {
    let mut aad = smallvec::SmallVec::with_capacity(header.len() + cookie_name.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(cookie_name.as_bytes());
    aad
}

/// HMAC-SHA256 under a 32-byte key (the limit counters' keys, the audit hashes).
///
/// HMAC pads a short key with zeros to the block size: the same MAC as the 32-byte
/// key, through the constructor that cannot fail.
pub fn keyed_mac(key: &[u8; 32]) -> hmac::Hmac<sha2::Sha256> {
    let mut block = [0u8; 64];
    for (b, k) in block.iter_mut().zip(key) {
        *b = *k;
    }
    <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new(&block.into())
}

/// `bytes` in lower-case hex: two digits per byte, `N` digits (the first `N / 2`
/// bytes), on the stack.
pub fn hex<const N: usize>(bytes: &[u8]) -> [u8; N] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digit = |d: u8| DIGITS.get(usize::from(d)).copied().unwrap_or(b'0');
    let mut out = [b'0'; N];
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        if let [hi, lo] = pair {
            *hi = digit(byte >> 4);
            *lo = digit(byte & 15);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> (KeyId, Kek) {
        (
            KeyId::from_bytes(*b"kid-0001"),
            Kek::from_bytes([42; KEY_LEN]),
        )
    }

    fn open(value: &str, kek: &Kek, name: &str) -> Result<Vec<u8>, CryptoError> {
        Sealed::parse(value)?.open(kek, name).map(|p| p.to_vec())
    }

    #[test]
    fn seal_then_open_round_trips() {
        let (id, k) = kek();
        let v = seal(id, &k, "o", b"hello");
        let s = Sealed::parse(&v).expect("parses");
        assert_eq!(s.key_id(), id);
        assert_eq!(s.open(&k, "o").expect("opens").as_slice(), b"hello");
        assert_eq!(v.len(), sealed_len(5));
    }

    #[test]
    fn what_seal_with_writes_opens_as_what_was_written() {
        let (id, k) = kek();
        let v = seal_with(id, &k, "o", 9, |out| {
            out.extend_from_slice(b"two ");
            out.extend_from_slice(b"parts");
        });
        assert_eq!(open(&v, &k, "o").unwrap(), b"two parts");
        assert_eq!(v.len(), sealed_len(9));
    }

    #[test]
    fn sealed_len_matches_for_all_remainders() {
        let (id, k) = kek();
        for n in 0..10 {
            assert_eq!(seal(id, &k, "o", &vec![1; n]).len(), sealed_len(n));
        }
    }

    #[test]
    fn two_seals_of_the_same_text_differ() {
        let (id, k) = kek();
        assert_ne!(seal(id, &k, "o", b"x"), seal(id, &k, "o", b"x"));
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let (id, k) = kek();
        let v = seal(id, &k, "o", b"some token list");
        let raw = URL_SAFE_NO_PAD.decode(&v).expect("b64");
        for i in 0..raw.len() {
            for bit in 0..8 {
                let mut t = raw.clone();
                t[i] ^= 1 << bit;
                let tv = URL_SAFE_NO_PAD.encode(&t);
                assert_eq!(open(&tv, &k, "o"), Err(CryptoError), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn wrong_key_name_or_version_is_rejected() {
        let (id, k) = kek();
        let v = seal(id, &k, "o", b"x");
        assert_eq!(
            open(&v, &Kek::from_bytes([1; KEY_LEN]), "o"),
            Err(CryptoError)
        );
        assert_eq!(open(&v, &k, "__Host-Http-o"), Err(CryptoError));
        let mut raw = URL_SAFE_NO_PAD.decode(&v).expect("b64");
        raw[0] = 2;
        assert!(Sealed::parse(&URL_SAFE_NO_PAD.encode(&raw)).is_err());
    }

    #[test]
    fn truncated_padded_and_garbage_values_are_rejected() {
        let (id, k) = kek();
        let v = seal(id, &k, "o", b"abc");
        for n in 0..v.len() {
            assert_eq!(open(&v[..n], &k, "o"), Err(CryptoError), "prefix {n}");
        }
        assert!(open(&format!("{v}="), &k, "o").is_err());
        assert!(open(&format!("{v}A"), &k, "o").is_err());
        assert!(open("!!!!", &k, "o").is_err());
        assert!(Sealed::parse(&"A".repeat(MAX_SEALED_CHARS + 4)).is_err());
    }

    /// RFC 3394 §4.6: wrap 256 bits of key data with a 256-bit KEK.
    #[test]
    fn aes_kw_matches_rfc3394_vector_4_6() {
        let kek = hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
        let data = hex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
        let want =
            hex("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21");
        let kw = KwAes256::new(kek.as_slice().try_into().expect("32 bytes"));
        let mut buf = [0u8; 40];
        assert_eq!(
            kw.wrap_key(&data, &mut buf).expect("wraps"),
            want.as_slice()
        );
        let mut back = [0u8; 32];
        assert_eq!(
            kw.unwrap_key(&want, &mut back).expect("unwraps"),
            data.as_slice()
        );
        let mut bad = want.clone();
        bad[0] ^= 1;
        assert!(kw.unwrap_key(&bad, &mut back).is_err());
    }

    /// RFC 3394 §4.3: wrap 128 bits of key data with a 256-bit KEK.
    #[test]
    fn aes_kw_matches_rfc3394_vector_4_3() {
        let kek = hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
        let data = hex("00112233445566778899AABBCCDDEEFF");
        let want = hex("64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7");
        let kw = KwAes256::new(kek.as_slice().try_into().expect("32 bytes"));
        let mut buf = [0u8; 24];
        assert_eq!(
            kw.wrap_key(&data, &mut buf).expect("wraps"),
            want.as_slice()
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }
}
