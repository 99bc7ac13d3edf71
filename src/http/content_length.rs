//! `Content-Length` values without an allocation: axum formats each answer's
//! length into a header value of its own; the edge sets it first, from a static
//! table of ready values, for every body of a known length under [`TABLED`] bytes.

use axum::http::HeaderValue;

/// Lengths with a ready `Content-Length` value: every answer here but a rare large one.
const TABLED: usize = 2048;

/// The decimal digits of `0..TABLED`, right-aligned in four bytes.
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an index out of range fails the build"
)]
static DIGITS: [[u8; 4]; TABLED] = {
    let mut table = [[b'0'; 4]; TABLED];
    let mut n = 0;
    while n < TABLED {
        let (mut rest, mut at) = (n, 4);
        while at > 0 {
            at -= 1;
            table[n][at] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        n += 1;
    }
    table
};

/// `len` as a `Content-Length` value, borrowed from [`DIGITS`] when it is tabled.
pub(super) fn content_length(len: u64) -> HeaderValue {
    let digits = len.checked_ilog10().map_or(1, |log| log as usize + 1);
    usize::try_from(len)
        .ok()
        .and_then(|at| DIGITS.get(at))
        .and_then(|padded| padded.get(4usize.saturating_sub(digits)..))
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .map_or_else(|| HeaderValue::from(len), HeaderValue::from_static)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_length_is_the_length_in_decimal_tabled_or_not() {
        for len in [
            0,
            1,
            9,
            10,
            99,
            100,
            999,
            1000,
            TABLED as u64 - 1,
            TABLED as u64,
            123_456,
        ] {
            assert_eq!(content_length(len), HeaderValue::from(len), "{len}");
        }
    }
}
