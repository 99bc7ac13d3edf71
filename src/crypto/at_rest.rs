//! Key-encryption keys at rest: a shared KMS stores each KEK encrypted under a
//! master key from configuration, so a dump of the store alone reveals no key.
//!
//! # Format, version 1
//!
//! ```text
//! offset  len  field
//! 0       1    version = 0x01
//! 1       12   random nonce
//! 13      32   AES-256-GCM(master, nonce, AAD, KEK) ciphertext
//! 45      16   GCM tag
//! ```
//!
//! AAD = `"secure-otp-server kek v1"` ‖ key id (8 bytes) ‖ creation time (8 bytes,
//! big-endian milliseconds), so a stored key cannot be moved to another id or have
//! its lifetime changed without the master key. Random nonces are safe here: a
//! master key encrypts a few keys per rotation period, far below GCM's 2^32 limit.

use std::fmt;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::keys::{KEY_LEN, Kek, KeyId};
use super::{CryptoError, TAG_LEN};
use crate::clock::Timestamp;

const AT_REST_VERSION: u8 = 0x01;
const NONCE_LEN: usize = 12;
/// Bytes of a KEK encrypted at rest.
pub const WRAPPED_KEK_LEN: usize = 1 + NONCE_LEN + KEY_LEN + TAG_LEN;
const AAD_LABEL: &[u8] = b"secure-otp-server kek v1";

/// A 256-bit AES-GCM master key that encrypts KEKs at rest (`OTP_KMS_MASTER_KEY`).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; KEY_LEN]);

impl MasterKey {
    /// Parses unpadded base64url (or standard base64) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Option<Self> {
        Kek::from_base64(text).map(|k| Self(*k.bytes()))
    }

    /// A key from raw bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

fn aad(id: KeyId, created: Timestamp) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + 16);
    aad.extend_from_slice(AAD_LABEL);
    aad.extend_from_slice(id.as_bytes());
    aad.extend_from_slice(&created.as_millis().to_be_bytes());
    aad
}

/// Encrypts `kek` (named `id`, created at `created`) under `master` for storage.
pub fn wrap_kek(master: &MasterKey, id: KeyId, created: Timestamp, kek: &Kek) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::fill(&mut nonce);
    let mut body = kek.bytes().to_vec();
    // GCM only fails for messages over 64 GiB.
    let sealed = Aes256Gcm::new((&master.0).into()).encrypt_in_place(
        &Nonce::from(nonce),
        &aad(id, created),
        &mut body,
    );
    debug_assert!(sealed.is_ok());
    let mut out = Vec::with_capacity(WRAPPED_KEK_LEN);
    out.push(AT_REST_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    body.zeroize();
    out
}

/// Decrypts a stored KEK; any length, version, key, id, time or tag mismatch is
/// one opaque [`CryptoError`].
pub fn unwrap_kek(
    master: &MasterKey,
    id: KeyId,
    created: Timestamp,
    stored: &[u8],
) -> Result<Kek, CryptoError> {
    if stored.len() != WRAPPED_KEK_LEN {
        return Err(CryptoError);
    }
    let Some((&AT_REST_VERSION, rest)) = stored.split_first() else {
        return Err(CryptoError);
    };
    let (nonce_bytes, body) = rest.split_at_checked(NONCE_LEN).ok_or(CryptoError)?;
    let nonce: [u8; NONCE_LEN] = nonce_bytes.try_into().map_err(|_| CryptoError)?;
    let mut body = body.to_vec();
    Aes256Gcm::new((&master.0).into())
        .decrypt_in_place(&Nonce::from(nonce), &aad(id, created), &mut body)
        .map_err(|_| CryptoError)?;
    let out = <[u8; KEY_LEN]>::try_from(body.as_slice())
        .map(Kek::from_bytes)
        .map_err(|_| CryptoError);
    body.zeroize();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn a_wrapped_kek_round_trips_and_hides_the_key() {
        let master = MasterKey::from_bytes([3; KEY_LEN]);
        let kek = Kek::from_bytes([9; KEY_LEN]);
        let id = KeyId::from_bytes([1; 8]);
        let stored = wrap_kek(&master, id, at(5), &kek);
        assert_eq!(stored.len(), WRAPPED_KEK_LEN);
        assert!(!stored.windows(KEY_LEN).any(|w| w == kek.bytes()));
        let back = unwrap_kek(&master, id, at(5), &stored).expect("opens");
        assert_eq!(back.bytes(), kek.bytes());
        assert_ne!(stored, wrap_kek(&master, id, at(5), &kek), "fresh nonce");
    }

    #[test]
    fn the_id_the_time_the_master_and_every_bit_are_bound() {
        let master = MasterKey::from_bytes([3; KEY_LEN]);
        let kek = Kek::generate();
        let id = KeyId::from_bytes([1; 8]);
        let stored = wrap_kek(&master, id, at(5), &kek);
        assert!(unwrap_kek(&master, KeyId::from_bytes([2; 8]), at(5), &stored).is_err());
        assert!(unwrap_kek(&master, id, at(6), &stored).is_err());
        assert!(unwrap_kek(&MasterKey::from_bytes([4; KEY_LEN]), id, at(5), &stored).is_err());
        for i in 0..stored.len() {
            let mut t = stored.clone();
            t[i] ^= 0x80;
            assert!(unwrap_kek(&master, id, at(5), &t).is_err(), "byte {i}");
        }
        assert!(unwrap_kek(&master, id, at(5), &stored[..stored.len() - 1]).is_err());
    }
}
