//! The token list sealed inside the cookie, and its compact binary encoding.
//!
//! ```text
//! list   := list_id[16] count:u8 token{count}          (no trailing bytes)
//! token  := cred_len:u16be cred[cred_len] expires:u64be flags:u8
//!           [purpose:u8]                               if flags & PURPOSE
//!           [otp_len:u8 otp[otp_len] attempts:u8]      if flags & OTP
//!           [resend_block:u64be]                       if flags & RESEND_BLOCK
//!           [otp_block:u64be]                          if flags & OTP_BLOCK
//! ```
//!
//! Every field is length-prefixed or fixed-size, so a credential containing any byte
//! (`,`, `|`, quotes, any Unicode) round-trips exactly. Times are milliseconds since
//! the epoch. The last token is the *current* one (the target of resend and verify).
//! Decoding re-checks every invariant against the policy; a list that fails is
//! reported as malformed and treated as an invalid cookie.

use crate::clock::Timestamp;
use crate::otp::policy::OtpPolicy;
use crate::plugin::id_store::LIST_ID_LEN;
use crate::plugin::{CodeFormat, Credential, ListId, OtpCode};

const OTP: u8 = 1;
const RESEND_BLOCK: u8 = 1 << 1;
const OTP_BLOCK: u8 = 1 << 2;
const RESENT: u8 = 1 << 3;
const PURPOSE: u8 = 1 << 4;
const KNOWN_FLAGS: u8 = OTP | RESEND_BLOCK | OTP_BLOCK | RESENT | PURPOSE;

/// Encoded bytes of a list holding `credentials` tokens of `credential_len`-byte
/// credentials and `code_len`-character codes, at most.
pub const fn max_encoded_len(credentials: usize, credential_len: usize, code_len: usize) -> usize {
    LIST_ID_LEN + 1 + credentials * (2 + credential_len + 8 + 1 + 1 + 1 + code_len + 1 + 8 + 8)
}

/// One credential's state in a session.
#[derive(Debug, Clone)]
pub struct Token {
    /// Where the code went.
    pub credential: Credential,
    /// When this token stops working.
    pub expires: Timestamp,
    /// The code; `None` means the token is blocked for good.
    pub otp: Option<OtpCode>,
    /// Wrong guesses left (0 when blocked).
    pub attempts: u8,
    /// No resend before this instant.
    pub resend_block: Option<Timestamp>,
    /// No verification before this instant.
    pub otp_block: Option<Timestamp>,
    /// A resend has been used.
    pub resent: bool,
    /// The purpose's index (0: the default one; see [`crate::otp::purpose`]).
    pub purpose: u8,
}

impl Token {
    /// A fresh token for a code just sent.
    pub fn new(credential: Credential, code: OtpCode, now: Timestamp, policy: &OtpPolicy) -> Self {
        Self {
            credential,
            expires: now.plus(policy.max_age),
            otp: Some(code),
            attempts: policy.max_attempts,
            resend_block: (!policy.resend_block.is_zero()).then(|| now.plus(policy.resend_block)),
            otp_block: None,
            resent: false,
            purpose: 0,
        }
    }

    /// The same token for the purpose at `index`.
    #[must_use]
    pub fn for_purpose(mut self, index: u8) -> Self {
        self.purpose = index;
        self
    }

    /// Whether the token is still usable at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires
    }

    /// Whether the token is blocked for good (no code left).
    pub fn is_blocked(&self) -> bool {
        self.otp.is_none()
    }

    /// Blocks the token for good: no code, no attempts, no pending blocks.
    pub fn block(&mut self) {
        self.otp = None;
        self.attempts = 0;
        self.resend_block = None;
        self.otp_block = None;
    }
}

/// The whole sealed session: its single-use ID and its tokens (current last).
#[derive(Debug, Clone)]
pub struct TokenList {
    /// The single-use list ID.
    pub id: ListId,
    /// Tokens in order; the last is current.
    pub tokens: Vec<Token>,
}

/// The decrypted bytes do not form a valid list for this policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed token list")]
pub struct Malformed;

impl TokenList {
    /// The session's expiry: the latest expiry of its tokens.
    pub fn expires(&self) -> Timestamp {
        self.tokens
            .iter()
            .map(|t| t.expires)
            .max()
            .unwrap_or_default()
    }

    /// Binary encoding (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// The length of [`TokenList::encode`]'s bytes, exactly: the sealing buffer
    /// is sized once, so it never grows with plaintext in it and leaves no copy
    /// behind in memory it gives back.
    pub fn encoded_len(&self) -> usize {
        let tokens: usize = self
            .tokens
            .iter()
            .map(|t| {
                let purpose = usize::from(t.purpose != 0);
                let otp = t.otp.as_ref().map_or(0, |code| {
                    let blocks = [t.resend_block, t.otp_block].iter().flatten().count();
                    1 + code.as_bytes().len() + 1 + 8 * blocks
                });
                2 + t.credential.len() + 8 + 1 + purpose + otp
            })
            .sum();
        self.id.as_bytes().len() + 1 + tokens
    }

    /// Appends the binary encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.id.as_bytes());
        out.push(u8::try_from(self.tokens.len()).unwrap_or(u8::MAX));
        for t in &self.tokens {
            let cred = t.credential.as_str().as_bytes();
            out.extend_from_slice(&u16::try_from(cred.len()).unwrap_or(u16::MAX).to_be_bytes());
            out.extend_from_slice(cred);
            out.extend_from_slice(&t.expires.as_millis().to_be_bytes());
            let mut flags = 0;
            if t.otp.is_some() {
                flags |= OTP;
                if t.resend_block.is_some() {
                    flags |= RESEND_BLOCK;
                }
                if t.otp_block.is_some() {
                    flags |= OTP_BLOCK;
                }
                if t.resent {
                    flags |= RESENT;
                }
            }
            if t.purpose != 0 {
                flags |= PURPOSE;
            }
            out.push(flags);
            if t.purpose != 0 {
                out.push(t.purpose);
            }
            if let Some(code) = &t.otp {
                let b = code.as_bytes();
                out.push(u8::try_from(b.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(b);
                out.push(t.attempts);
                for ts in [t.resend_block, t.otp_block].into_iter().flatten() {
                    out.extend_from_slice(&ts.as_millis().to_be_bytes());
                }
            }
        }
    }

    /// Decodes and checks every field against `policy` and `format` at `now`
    /// (one implicit purpose).
    pub fn decode(
        bytes: &[u8],
        policy: &OtpPolicy,
        format: &CodeFormat,
        now: Timestamp,
    ) -> Result<Self, Malformed> {
        Self::decode_with(
            bytes,
            policy,
            &|p| (p == 0).then_some((policy, format)),
            now,
        )
    }

    /// Decodes and checks every token against the rules of its purpose
    /// (`rules(index)`, `None` for an unknown purpose), and the session's caps in
    /// `session`, at `now`.
    pub fn decode_with<'r>(
        bytes: &[u8],
        session: &OtpPolicy,
        rules: &dyn Fn(u8) -> Option<(&'r OtpPolicy, &'r CodeFormat)>,
        now: Timestamp,
    ) -> Result<Self, Malformed> {
        let policy = session;
        let mut r = Reader(bytes);
        let id = ListId::from_bytes(r.array()?);
        let count = usize::from(r.u8()?);
        if count == 0 || count > policy.max_credentials {
            return Err(Malformed);
        }
        let mut tokens = Vec::with_capacity(count);
        for _ in 0..count {
            tokens.push(decode_token(&mut r, policy, rules, now)?);
        }
        if !r.0.is_empty() {
            return Err(Malformed);
        }
        Ok(Self { id, tokens })
    }
}

fn decode_token<'r>(
    r: &mut Reader<'_>,
    session: &OtpPolicy,
    rules: &dyn Fn(u8) -> Option<(&'r OtpPolicy, &'r CodeFormat)>,
    now: Timestamp,
) -> Result<Token, Malformed> {
    let len = usize::from(u16::from_be_bytes(r.array()?));
    if len > session.max_credential_len {
        return Err(Malformed);
    }
    let text = std::str::from_utf8(r.take(len)?).map_err(|_| Malformed)?;
    let credential = Credential::new(text.to_owned()).ok_or(Malformed)?;
    let expires = r.time()?;
    let flags = r.u8()?;
    if flags & !KNOWN_FLAGS != 0 || (flags & OTP == 0 && flags & !PURPOSE != 0) {
        return Err(Malformed);
    }
    let purpose = if flags & PURPOSE != 0 {
        match r.u8()? {
            0 => return Err(Malformed),
            p => p,
        }
    } else {
        0
    };
    let (policy, format) = rules(purpose).ok_or(Malformed)?;
    if expires > now.plus(policy.max_age) {
        return Err(Malformed);
    }
    let mut token = Token {
        credential,
        expires,
        otp: None,
        attempts: 0,
        resend_block: None,
        otp_block: None,
        resent: flags & RESENT != 0,
        purpose,
    };
    if flags & OTP == 0 {
        return Ok(token);
    }
    let code_len = usize::from(r.u8()?);
    let code = std::str::from_utf8(r.take(code_len)?).map_err(|_| Malformed)?;
    if code_len != format.length() {
        return Err(Malformed);
    }
    token.otp = Some(format.parse(code).ok_or(Malformed)?);
    token.attempts = r.u8()?;
    if token.attempts == 0 || token.attempts > policy.max_attempts {
        return Err(Malformed);
    }
    if flags & RESEND_BLOCK != 0 {
        let rb = r.time()?;
        if rb > now.plus(policy.resend_block) {
            return Err(Malformed);
        }
        token.resend_block = Some(rb);
    }
    if flags & OTP_BLOCK != 0 {
        let ob = r.time()?;
        if token.attempts > policy.attempts_block || ob > now.plus(policy.invalid_block) {
            return Err(Malformed);
        }
        token.otp_block = Some(ob);
    }
    Ok(token)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        self.take(N)?.try_into().map_err(|_| Malformed)
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.array::<1>()?[0])
    }

    fn time(&mut self) -> Result<Timestamp, Malformed> {
        Ok(Timestamp::from_millis(u64::from_be_bytes(self.array()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{OtpGenerator, RandomGenerator};

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn cred(s: &str) -> Credential {
        Credential::new(s.to_owned()).expect("non-empty")
    }

    fn list(creds: &[&str]) -> TokenList {
        let p = OtpPolicy::default();
        let g = RandomGenerator::new(CodeFormat::original());
        TokenList {
            id: ListId::random(),
            tokens: creds
                .iter()
                .map(|c| Token::new(cred(c), g.generate(), NOW, &p))
                .collect(),
        }
    }

    fn round_trip(l: &TokenList) -> TokenList {
        TokenList::decode(
            &l.encode(),
            &OtpPolicy::default(),
            &CodeFormat::original(),
            NOW,
        )
        .expect("decodes")
    }

    #[test]
    fn awkward_credentials_round_trip_exactly() {
        let creds = [r#"{"a":"1,2,3,4"}"#, "x|y||z,,\"q\"", "ünïcödé ✓ 🎉"];
        let l = list(&creds);
        let back = round_trip(&l);
        assert_eq!(back.id, l.id);
        let got: Vec<&str> = back.tokens.iter().map(|t| t.credential.as_str()).collect();
        assert_eq!(got, creds);
        assert_eq!(back.encode(), l.encode());
    }

    #[test]
    fn every_optional_field_round_trips() {
        let mut l = list(&["a"]);
        let t = &mut l.tokens[0];
        t.attempts = 1;
        t.otp_block = Some(NOW.plus(std::time::Duration::from_secs(5)));
        t.resent = true;
        t.resend_block = None;
        let b = round_trip(&l);
        assert_eq!(b.tokens[0].otp_block, l.tokens[0].otp_block);
        assert!(b.tokens[0].resent);
        assert_eq!(b.tokens[0].resend_block, None);
        let mut blocked = list(&["a"]);
        blocked.tokens[0].block();
        assert!(round_trip(&blocked).tokens[0].is_blocked());
    }

    #[test]
    fn truncation_and_trailing_bytes_are_malformed() {
        let l = list(&["a", "b"]);
        let bytes = l.encode();
        let (p, f) = (OtpPolicy::default(), CodeFormat::original());
        for n in 0..bytes.len() {
            assert!(
                TokenList::decode(&bytes[..n], &p, &f, NOW).is_err(),
                "prefix {n}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(TokenList::decode(&longer, &p, &f, NOW).is_err());
    }

    #[test]
    fn invariants_are_checked_on_decode() {
        let (p, f) = (OtpPolicy::default(), CodeFormat::original());
        let four = list(&["a", "b", "c", "d"]);
        assert!(
            TokenList::decode(&four.encode(), &p, &f, NOW).is_err(),
            "too many tokens"
        );
        let mut far = list(&["a"]);
        far.tokens[0].expires = NOW.plus(std::time::Duration::from_secs(181));
        assert!(
            TokenList::decode(&far.encode(), &p, &f, NOW).is_err(),
            "expiry beyond max age"
        );
        let mut bad_attempts = list(&["a"]);
        bad_attempts.tokens[0].attempts = 4;
        assert!(TokenList::decode(&bad_attempts.encode(), &p, &f, NOW).is_err());
        let mut block_too_early = list(&["a"]);
        block_too_early.tokens[0].otp_block = Some(NOW);
        assert!(
            TokenList::decode(&block_too_early.encode(), &p, &f, NOW).is_err(),
            "block with 3 attempts"
        );
        let other_format = CodeFormat::new("0123456789", 6).expect("format");
        assert!(TokenList::decode(&list(&["a"]).encode(), &p, &other_format, NOW).is_err());
    }

    /// A cheap stand-in for fuzzing: mutated and random inputs never panic and
    /// anything accepted re-encodes to the same bytes.
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder() {
        use rand::RngExt as _;
        let (p, f) = (OtpPolicy::default(), CodeFormat::original());
        let seed = list(&["a@b.c", "x,y|z", "ü"]).encode();
        let mut rng = rand::rng();
        for round in 0..20_000 {
            let mut bytes = if round % 4 == 0 {
                (0..rng.random_range(0..200))
                    .map(|_| rng.random::<u8>())
                    .collect()
            } else {
                seed.clone()
            };
            for _ in 0..rng.random_range(1..4) {
                if bytes.is_empty() {
                    break;
                }
                let i = rng.random_range(0..bytes.len());
                match rng.random_range(0..3) {
                    0 => bytes[i] ^= 1 << rng.random_range(0..8),
                    1 => bytes.truncate(i),
                    _ => bytes.insert(i, rng.random()),
                }
            }
            if let Ok(l) = TokenList::decode(&bytes, &p, &f, NOW) {
                assert_eq!(l.encode(), bytes);
            }
        }
    }

    #[test]
    fn max_encoded_len_bounds_the_encoding() {
        let p = OtpPolicy::default();
        let long = "x".repeat(p.max_credential_len);
        let mut l = list(&[&long, &long, &long]);
        for t in &mut l.tokens {
            t.attempts = 1;
            t.otp_block = Some(NOW);
        }
        assert!(l.encode().len() <= max_encoded_len(3, p.max_credential_len, 10));
    }

    #[test]
    fn encoded_len_is_the_encoding_s_length_for_every_shape() {
        let long = "x".repeat(OtpPolicy::default().max_credential_len);
        let mut l = list(&["a", "ünïcödé ✓ 🎉", &long]);
        assert_eq!(l.encoded_len(), l.encode().len());
        l.tokens[0].otp_block = Some(NOW);
        l.tokens[1].resend_block = Some(NOW);
        l.tokens[1].otp_block = Some(NOW);
        l.tokens[1].purpose = 2;
        l.tokens[2].block();
        assert_eq!(l.encoded_len(), l.encode().len());
        // A code with no timestamps, one with `otp_block` alone, a resent one, a
        // blocked one with a purpose, and a blocked one whose timestamps are still
        // set (not written without a code).
        let mut l = list(&["a", "b", "c", "d", "e"]);
        l.tokens[0].resend_block = None;
        l.tokens[1].resend_block = None;
        l.tokens[1].otp_block = Some(NOW);
        l.tokens[2].resent = true;
        l.tokens[3].purpose = 1;
        l.tokens[3].block();
        l.tokens[4].block();
        l.tokens[4].resend_block = Some(NOW);
        l.tokens[4].otp_block = Some(NOW);
        assert_eq!(l.encoded_len(), l.encode().len());
        let mut into = b"head".to_vec();
        l.encode_into(&mut into);
        assert_eq!(into.get(4..), Some(&*l.encode()));
    }
}
