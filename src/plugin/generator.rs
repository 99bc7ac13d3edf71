//! One-time codes: their format, the code type, and the generator plug-in.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::config::Env;

/// The shape of a valid code: an alphabet of ASCII characters and an exact length.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeFormat {
    alphabet: Vec<u8>,
    allowed: [bool; 256],
    length: usize,
}

/// Why a [`CodeFormat`] could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodeFormatError {
    /// The alphabet has fewer than two characters, non-printable ASCII or repeats.
    #[error("the alphabet needs 2 to 94 distinct printable ASCII characters (no space)")]
    Alphabet,
    /// The length is outside 4..=64.
    #[error("the length must be between 4 and 64")]
    Length,
}

impl CodeFormat {
    /// The original's format: 10 characters of `0-9a-z`.
    pub fn original() -> Self {
        // The literal alphabet and length are valid by inspection; fall back is unreachable.
        Self::new("0123456789abcdefghijklmnopqrstuvwxyz", 10).unwrap_or_else(|_| Self {
            alphabet: Vec::new(),
            allowed: [false; 256],
            length: 0,
        })
    }

    /// A format from an alphabet (distinct printable ASCII characters) and a length.
    #[expect(
        clippy::indexing_slicing,
        reason = "a u8 always indexes the 256-entry table"
    )]
    pub fn new(alphabet: &str, length: usize) -> Result<Self, CodeFormatError> {
        let mut allowed = [false; 256];
        for &c in alphabet.as_bytes() {
            if !c.is_ascii_graphic() || allowed[usize::from(c)] {
                return Err(CodeFormatError::Alphabet);
            }
            allowed[usize::from(c)] = true;
        }
        if alphabet.len() < 2 {
            return Err(CodeFormatError::Alphabet);
        }
        if !(4..=MAX_LENGTH).contains(&length) {
            return Err(CodeFormatError::Length);
        }
        Ok(Self {
            alphabet: alphabet.as_bytes().to_vec(),
            allowed,
            length,
        })
    }

    /// The alphabet.
    pub fn alphabet(&self) -> &[u8] {
        &self.alphabet
    }

    /// The exact code length.
    pub fn length(&self) -> usize {
        self.length
    }

    /// A well-formed code of the first symbol repeated: a placeholder for tests and
    /// benchmarks that need a code of the right shape, almost surely wrong (a generated
    /// code equals it with probability `alphabet^-length`).
    pub fn placeholder(&self) -> String {
        let first = self.alphabet.first().copied().unwrap_or(b'0');
        String::from(char::from(first)).repeat(self.length)
    }

    /// Parses user input: trimmed, exactly `length` characters of the alphabet.
    #[expect(
        clippy::indexing_slicing,
        reason = "a u8 always indexes the 256-entry table"
    )]
    pub fn parse(&self, text: &str) -> Option<OtpCode> {
        let t = text.trim().as_bytes();
        (t.len() == self.length && t.iter().all(|&c| self.allowed[usize::from(c)]))
            .then(|| OtpCode::of(t))
    }

    /// A regular expression equivalent to this format, for documentation.
    pub fn pattern(&self) -> String {
        let mut class = String::new();
        for &c in &self.alphabet {
            if b"\\]^-[".contains(&c) {
                class.push('\\');
            }
            class.push(char::from(c));
        }
        format!("^[{class}]{{{}}}$", self.length)
    }
}

/// The weakest format start-up accepts, in bits of entropy per code: 6 decimal
/// digits (19.9 bits, NIST SP 800-63B's floor for a look-up secret) rounded to 20.
pub const MIN_CODE_BITS: f64 = 19.9;

impl CodeFormat {
    /// Reads `OTP_LENGTH` (default 10) and `OTP_ALPHABET` (default `0-9a-z`), and
    /// refuses formats weaker than 6 decimal digits ([`MIN_CODE_BITS`]).
    pub fn read(env: &mut Env) -> Self {
        Self::original().overridden(env, "OTP_")
    }

    /// This format with `<prefix>LENGTH` and `<prefix>ALPHABET` applied where set (a
    /// purpose's overrides: `OTP_PURPOSE_LOGIN_`).
    pub fn overridden(&self, env: &mut Env, prefix: &str) -> Self {
        let (length_var, alphabet_var) = (format!("{prefix}LENGTH"), format!("{prefix}ALPHABET"));
        let length = env.number(&length_var, self.length, 4, 64);
        let own_alphabet = String::from_utf8_lossy(&self.alphabet).into_owned();
        let alphabet = env.string(&alphabet_var, &own_alphabet);
        match CodeFormat::new(&alphabet, length) {
            Ok(f) if f.bits() >= MIN_CODE_BITS => f,
            Ok(f) => {
                env.problem(format!(
                    "{length_var}={length} with {alphabet_var}={alphabet:?} gives codes of {:.1} bits, \
                     under the 20-bit floor (6 decimal digits, as in NIST SP 800-63B): \
                     raise {length_var} or use a larger {alphabet_var}",
                    f.bits()
                ));
                self.clone()
            }
            Err(e) => {
                env.fail(&alphabet_var, &alphabet, &e.to_string());
                self.clone()
            }
        }
    }

    /// Entropy of one uniformly drawn code, in bits: `length * log2(alphabet size)`.
    pub fn bits(&self) -> f64 {
        #[expect(
            clippy::cast_precision_loss,
            reason = "alphabet sizes and lengths are small"
        )]
        let (size, length) = (self.alphabet.len() as f64, self.length as f64);
        length * size.log2()
    }
}

impl fmt::Debug for CodeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeFormat")
            .field("alphabet", &String::from_utf8_lossy(&self.alphabet))
            .field("length", &self.length)
            .finish()
    }
}

/// The longest code a [`CodeFormat`] allows.
const MAX_LENGTH: usize = 64;

/// A one-time code. Secret: zeroized on drop, redacted in `Debug`, compared in constant time.
/// Held inline (a format allows at most 64 characters), so parsing a code typed in,
/// opening a cookie's token or generating a code allocates nothing. The trade: a
/// move copies the bytes, and the compiler may leave such copies on the stack, which
/// the drop does not reach (a heap code moved only its pointer). The code typed in
/// also sits in the request's body, and a generated one in the message sent, neither
/// of which is zeroized: the zeroizing is a last layer, not the protection.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct OtpCode {
    bytes: [u8; MAX_LENGTH],
    len: u8,
}

impl OtpCode {
    /// A code of `chars`, which the caller has checked against a format (so at most
    /// [`MAX_LENGTH`] of them; more would be cut, never reached).
    fn of(chars: &[u8]) -> Self {
        debug_assert!(chars.len() <= MAX_LENGTH, "a code longer than any format");
        let mut code = OtpCode {
            bytes: [0; MAX_LENGTH],
            len: 0,
        };
        for (slot, &c) in code.bytes.iter_mut().zip(chars) {
            *slot = c;
            code.len += 1;
        }
        code
    }

    /// The code's characters, for a sender to deliver.
    pub fn expose(&self) -> &str {
        // Codes only ever hold ASCII from a `CodeFormat` alphabet.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// Constant-time equality (lengths are public: they are fixed by the format).
    pub fn ct_eq(&self, other: &OtpCode) -> bool {
        self.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode([REDACTED])")
    }
}

/// Makes new codes. Implementations must use a CSPRNG and be uniform over
/// the format's alphabet, and must only produce codes that `format().parse` accepts.
pub trait OtpGenerator: Send + Sync + fmt::Debug {
    /// The format of the codes this generator makes.
    fn format(&self) -> &CodeFormat;
    /// A new random code.
    fn generate(&self) -> OtpCode;
}

/// The default generator: the thread-local CSPRNG with rejection sampling,
/// so every character is exactly uniform over the alphabet.
#[derive(Debug, Clone)]
pub struct RandomGenerator {
    format: CodeFormat,
}

impl RandomGenerator {
    /// A generator for `format`.
    pub fn new(format: CodeFormat) -> Self {
        Self { format }
    }
}

impl OtpGenerator for RandomGenerator {
    fn format(&self) -> &CodeFormat {
        &self.format
    }

    fn generate(&self) -> OtpCode {
        let alphabet = &self.format.alphabet;
        let n = alphabet.len();
        // Bytes at or above `limit` would favour the first `256 % n` characters: drop them.
        let limit = 256 - 256 % n;
        let length = self.format.length.min(MAX_LENGTH);
        let mut code = OtpCode::of(&[]);
        let mut pool = [0u8; 64];
        while usize::from(code.len) < length {
            rand::fill(&mut pool);
            for &b in &pool {
                if usize::from(b) < limit
                    && let (Some(&c), Some(slot)) = (
                        alphabet.get(usize::from(b) % n),
                        code.bytes.get_mut(usize::from(code.len)),
                    )
                {
                    *slot = c;
                    code.len += 1;
                    if usize::from(code.len) == length {
                        break;
                    }
                }
            }
        }
        pool.zeroize();
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_anchored_and_trims() {
        let f = CodeFormat::original();
        assert!(f.parse("abcdef0123").is_some());
        assert!(f.parse("  abcdef0123 ").is_some());
        assert!(f.parse("!!!!!!!!!a").is_none());
        assert!(f.parse("abcdef012").is_none());
        assert!(f.parse("abcdef01234").is_none());
        assert!(f.parse("ABCDEF0123").is_none());
        assert!(f.parse("abcdéf012").is_none());
        assert_eq!(f.pattern(), "^[0123456789abcdefghijklmnopqrstuvwxyz]{10}$");
    }

    #[test]
    fn bad_formats_are_refused() {
        assert_eq!(CodeFormat::new("a", 6), Err(CodeFormatError::Alphabet));
        assert_eq!(CodeFormat::new("aa", 6), Err(CodeFormatError::Alphabet));
        assert_eq!(CodeFormat::new("a b", 6), Err(CodeFormatError::Alphabet));
        assert_eq!(CodeFormat::new("01", 3), Err(CodeFormatError::Length));
        assert_eq!(CodeFormat::new("01", 65), Err(CodeFormatError::Length));
    }

    #[test]
    fn generated_codes_parse_and_differ() {
        let g = RandomGenerator::new(CodeFormat::original());
        let a = g.generate();
        assert!(g.format().parse(a.expose()).is_some());
        assert!(!a.ct_eq(&g.generate()));
        assert_eq!(format!("{a:?}"), "OtpCode([REDACTED])");
    }

    /// Chi-squared test of uniformity over the alphabet, at every position.
    /// 36 symbols → 35 degrees of freedom; the 1e-6 critical value is about 86.
    /// A modulo-biased generator (256 % 36 = 4) fails this decisively at this sample size.
    #[test]
    fn codes_are_uniform_over_the_alphabet() {
        let g = RandomGenerator::new(CodeFormat::original());
        let n = 36usize;
        let samples = 40_000usize;
        let mut counts = vec![[0u64; 36]; 10];
        let mut total = [0u64; 36];
        for _ in 0..samples {
            for (pos, c) in g.generate().as_bytes().iter().enumerate() {
                let idx = g
                    .format()
                    .alphabet()
                    .iter()
                    .position(|a| a == c)
                    .expect("in alphabet");
                counts[pos][idx] += 1;
                total[idx] += 1;
            }
        }
        let chi = |obs: &[u64], expected: f64| -> f64 {
            obs.iter()
                .map(|&o| (o as f64 - expected).powi(2) / expected)
                .sum()
        };
        let per_pos = samples as f64 / n as f64;
        for (pos, c) in counts.iter().enumerate() {
            let x = chi(c, per_pos);
            assert!(x < 86.0, "position {pos}: chi-squared {x}");
        }
        let x = chi(&total, (samples * 10) as f64 / n as f64);
        assert!(x < 86.0, "overall chi-squared {x}");
    }
}
