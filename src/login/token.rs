//! Session tokens: compact JWS (a JWT) signed with Ed25519 (`"alg":"EdDSA"`), a
//! key ring for rotation, and the JWKS document that publishes its public keys.
//!
//! Only what a session needs: one algorithm, fixed claims, a `kid` naming the key.
//! Verification refuses any other `alg` (no `none`, no HMAC confusion), any key not
//! in the ring, and tokens over [`MAX_TOKEN_LEN`] before decoding anything.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// Longer tokens are refused unread (a session token is ~400 bytes).
pub const MAX_TOKEN_LEN: usize = 4096;

/// Clock skew allowed on `iat` between instances.
const IAT_SKEW_SECS: u64 = 60;

/// What a session token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who signed in: the verified address.
    pub sub: String,
    /// Issued at (unix seconds).
    pub iat: u64,
    /// Expires at (unix seconds).
    pub exp: u64,
    /// The token's unique id (revocation names it).
    pub jti: String,
    /// How the user authenticated: `email`, `sms` or `otp`.
    pub amr: Vec<String>,
    /// The issuer (`OTP_PUBLIC_URL`), when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The OTP session's purpose, when purposes are configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// Why a token was refused (logged at debug; the client sees `SESSION:INVALID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts of JSON, too long, or another algorithm.
    #[error("malformed token")]
    Malformed,
    /// Signed by a key not in the ring.
    #[error("unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Past `exp`, or issued in the future.
    #[error("expired")]
    Expired,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    kid: String,
}

struct SigningKey {
    kid: String,
    pair: Ed25519KeyPair,
}

/// The Ed25519 keys sessions are signed with: the first signs, all verify.
pub struct SessionKeys {
    keys: Vec<SigningKey>,
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("SessionKeys").field("kids", &kids).finish()
    }
}

impl SessionKeys {
    /// A ring from 32-byte Ed25519 seeds, the signing key first; `None` when empty.
    pub fn from_seeds(seeds: &[Zeroizing<[u8; 32]>]) -> Option<Self> {
        let keys: Vec<SigningKey> = seeds
            .iter()
            .filter_map(|seed| Ed25519KeyPair::from_seed_unchecked(&seed[..]).ok())
            .map(|pair| SigningKey {
                kid: key_id(pair.public_key().as_ref()),
                pair,
            })
            .collect();
        (!keys.is_empty() && keys.len() == seeds.len()).then_some(Self { keys })
    }

    /// A ring of one fresh random key (development).
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::fill(&mut seed[..]);
        match Self::from_seeds(&[seed]) {
            Some(keys) => keys,
            None => unreachable_key(),
        }
    }

    /// The signing key's id.
    pub fn current_kid(&self) -> &str {
        self.keys.first().map_or("", |k| k.kid.as_str())
    }

    /// `claims` as a signed compact JWS.
    pub fn sign(&self, claims: &Claims) -> String {
        let Some(key) = self.keys.first() else {
            return String::new();
        };
        let header = Header {
            alg: "EdDSA".to_owned(),
            typ: Some("JWT".to_owned()),
            kid: key.kid.clone(),
        };
        let mut out = part(&header);
        out.push('.');
        out.push_str(&part(claims));
        let signature = key.pair.sign(out.as_bytes());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        out
    }

    /// The claims of a token this ring signed, if it is still valid at `now_secs`.
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(head), Some(body), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Header = decode_part(head)?;
        if header.alg != "EdDSA" {
            return Err(TokenError::Malformed);
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == header.kid)
            .ok_or(TokenError::UnknownKey)?;
        let signature = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenError::Malformed)?;
        let signed_len = head.len() + 1 + body.len();
        let signed = token.get(..signed_len).ok_or(TokenError::Malformed)?;
        UnparsedPublicKey::new(&ED25519, key.pair.public_key().as_ref())
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| TokenError::BadSignature)?;
        let claims: Claims = decode_part(body)?;
        if now_secs >= claims.exp || claims.iat > now_secs.saturating_add(IAT_SKEW_SECS) {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// The JWKS document (RFC 7517, OKP keys of RFC 8037): every key of the ring.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "alg": "EdDSA",
                    "use": "sig",
                    "kid": k.kid,
                    "x": URL_SAFE_NO_PAD.encode(k.pair.public_key().as_ref()),
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

/// A key's id: the first 8 bytes of the SHA-256 of its public key, base64url.
fn key_id(public: &[u8]) -> String {
    let digest = Sha256::digest(public);
    URL_SAFE_NO_PAD.encode(digest.get(..8).unwrap_or_default())
}

fn part<T: Serialize>(value: &T) -> String {
    // Serialising these plain structs cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

fn decode_part<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

#[expect(clippy::panic, reason = "any 32 bytes are an Ed25519 seed")]
fn unreachable_key() -> SessionKeys {
    panic!("a random 32-byte seed is a valid Ed25519 key")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "ann@example.com".to_owned(),
            iat: 1000,
            exp,
            jti: "j".to_owned(),
            amr: vec!["email".to_owned()],
            iss: None,
            purpose: None,
        }
    }

    fn seed(b: u8) -> Zeroizing<[u8; 32]> {
        Zeroizing::new([b; 32])
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let keys = SessionKeys::from_seeds(&[seed(1)]).expect("ring");
        let token = keys.sign(&claims(2000));
        assert_eq!(keys.verify(&token, 1500), Ok(claims(2000)));
        assert_eq!(keys.verify(&token, 2000), Err(TokenError::Expired));
        assert_eq!(
            keys.verify(&token, 950),
            Ok(claims(2000)),
            "within the skew"
        );
        assert_eq!(
            keys.verify(&token, 900),
            Err(TokenError::Expired),
            "from the future"
        );
    }

    #[test]
    fn rotation_signs_with_the_first_and_verifies_with_all() {
        let old = SessionKeys::from_seeds(&[seed(1)]).expect("ring");
        let rotated = SessionKeys::from_seeds(&[seed(2), seed(1)]).expect("ring");
        let old_token = old.sign(&claims(2000));
        assert!(rotated.verify(&old_token, 1500).is_ok());
        let new_token = rotated.sign(&claims(2000));
        assert_eq!(old.verify(&new_token, 1500), Err(TokenError::UnknownKey));
        assert_ne!(old.current_kid(), rotated.current_kid());
        assert_eq!(rotated.jwks()["keys"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn tampering_and_other_algorithms_are_refused() {
        let keys = SessionKeys::from_seeds(&[seed(1)]).expect("ring");
        let token = keys.sign(&claims(2000));
        let (head, rest) = token.split_once('.').expect("parts");
        let (body, sig) = rest.split_once('.').expect("parts");
        let mut other = claims(2000);
        other.sub = "admin@example.com".to_owned();
        let forged = format!("{head}.{}.{sig}", part(&other));
        assert_eq!(keys.verify(&forged, 1500), Err(TokenError::BadSignature));
        let none = part(&serde_json::json!({"alg": "none", "kid": keys.current_kid()}));
        assert_eq!(
            keys.verify(&format!("{none}.{body}."), 1500),
            Err(TokenError::Malformed)
        );
        for junk in ["", "a.b", "a.b.c.d", "....", &"x".repeat(MAX_TOKEN_LEN + 1)] {
            assert!(keys.verify(junk, 1500).is_err(), "{junk:.20}");
        }
    }
}
