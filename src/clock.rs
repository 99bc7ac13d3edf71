//! Time as a value: the only place that reads the wall clock.
//!
//! Flows take `now` as a parameter; handlers read it once per request from a
//! [`Clock`]. Tests swap in a [`ManualClock`] to move time without sleeping.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// A timestamp from milliseconds since the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This instant moved `d` later, saturating instead of overflowing.
    #[must_use]
    pub fn plus(self, d: Duration) -> Self {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn millis_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Truncated down to the whole second.
    #[must_use]
    pub fn floor_second(self) -> Self {
        Self(self.0 - self.0 % 1000)
    }

    /// Rounded up to the whole second.
    #[must_use]
    pub fn ceil_second(self) -> Self {
        match self.0 % 1000 {
            0 => self,
            r => Self(self.0.saturating_add(1000 - r)),
        }
    }

    /// Whole seconds since the epoch (truncated).
    pub fn as_secs(self) -> i64 {
        i64::try_from(self.0 / 1000).unwrap_or(i64::MAX)
    }

    /// ISO-8601 UTC with milliseconds, e.g. `2026-11-24T00:34:57.000Z`.
    pub fn to_iso8601(self) -> String {
        let mut out = String::with_capacity(24);
        let _ = self.iso8601().write(&mut out);
        out
    }

    /// The ISO-8601 form as a value that writes itself (`Display`, and `Serialize`
    /// as a string): what the JSON answers carry, without a `String` each.
    pub fn iso8601(self) -> Iso8601 {
        Iso8601(self)
    }

    /// An HTTP-date (RFC 9110, IMF-fixdate), truncated to the second, e.g.
    /// `Thu, 19 Nov 2026 12:03:00 GMT`: the cookie's `Expires`.
    pub fn to_http_date(self) -> String {
        let mut out = String::with_capacity(HTTP_DATE_LEN);
        // Writing to a `String` cannot fail.
        let _ = self.write_http_date(&mut out);
        out
    }

    /// [`Self::to_http_date`], written to `out` (the cookie header is built in one buffer).
    pub fn write_http_date(self, out: &mut impl fmt::Write) -> fmt::Result {
        const DAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
        const MONTHS: [&[u8; 3]; 12] = [
            b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
            b"Dec",
        ];
        let c = Civil::of(self);
        // Built as bytes and written once, as `rfc3339` does: a write per piece
        // cost more than the rest of the cookie header.
        let [w0, w1, w2] = *DAYS.get(c.weekday as usize % 7).copied().unwrap_or(b"Mon");
        let month = (c.month.clamp(1, 12) - 1) as usize;
        let [m0, m1, m2] = *MONTHS.get(month).copied().unwrap_or(b"Jan");
        let pair = |n: u64| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
        let ([d0, d1], [y0, y1], [y2, y3]) = (pair(c.day), pair(c.year / 100), pair(c.year));
        let ([h0, h1], [mi0, mi1], [s0, s1]) = (pair(c.hour), pair(c.minute), pair(c.second));
        let text: [u8; HTTP_DATE_LEN] = [
            w0, w1, w2, b',', b' ', d0, d1, b' ', m0, m1, m2, b' ', y0, y1, y2, y3, b' ', h0, h1,
            b':', mi0, mi1, b':', s0, s1, b' ', b'G', b'M', b'T',
        ];
        out.write_str(std::str::from_utf8(&text).unwrap_or("Thu, 01 Jan 1970 00:00:00 GMT"))
    }
}

/// The last instant written out as a date: calendars here end with year 9999 (as
/// the `time` crate's and JavaScript's ISO strings do); later instants are clamped.
const LAST_WRITTEN_MS: u64 = 253_402_300_799_999;

/// Writes the wall-clock time as RFC 3339 UTC with microseconds, e.g.
/// `2026-12-03T12:56:38.412228Z`: the timestamp of a log line (which records when
/// it was written, so it reads the clock itself).
#[expect(
    clippy::disallowed_methods,
    reason = "a log line's timestamp is the wall clock's"
)]
pub fn write_log_time(out: &mut impl fmt::Write) -> fmt::Result {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let c = Civil::of(Timestamp(
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX),
    ));
    write_rfc3339(out, &c, u64::from(since.subsec_micros()), 6)
}

/// A [`Timestamp`] written as ISO-8601 UTC with milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iso8601(Timestamp);

impl Iso8601 {
    fn write(self, out: &mut impl fmt::Write) -> fmt::Result {
        let mut buf = [0u8; RFC3339_MAX];
        out.write_str(self.text(&mut buf))
    }

    fn text(self, buf: &mut [u8; RFC3339_MAX]) -> &str {
        let c = Civil::of(self.0);
        rfc3339(buf, &c, c.milli, 3)
    }
}

impl fmt::Display for Iso8601 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f)
    }
}

impl serde::Serialize for Iso8601 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // One string, not `collect_str`: that goes through `core::fmt` and the JSON
        // escaper piece by piece, half of an answer's serialization.
        let mut buf = [0u8; RFC3339_MAX];
        serializer.serialize_str(self.text(&mut buf))
    }
}

/// The longest RFC 3339 text written here: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
const RFC3339_MAX: usize = 27;

/// Writes `c` as `YYYY-MM-DDTHH:MM:SS.` then `fraction` in `width` digits (at
/// most 6) and `Z`.
fn write_rfc3339(out: &mut impl fmt::Write, c: &Civil, fraction: u64, width: u32) -> fmt::Result {
    let mut buf = [0u8; RFC3339_MAX];
    out.write_str(rfc3339(&mut buf, c, fraction, width))
}

/// [`write_rfc3339`]'s text, in `buf`. Digits in pairs with constant divisors: a
/// loop dividing by a power of ten per digit was most of a JSON answer's dates.
fn rfc3339<'b>(buf: &'b mut [u8; RFC3339_MAX], c: &Civil, fraction: u64, width: u32) -> &'b str {
    let pair = |n: u64| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
    let ([y0, y1], [y2, y3]) = (pair(c.year / 100), pair(c.year));
    let ([mo0, mo1], [d0, d1]) = (pair(c.month), pair(c.day));
    let ([h0, h1], [mi0, mi1], [s0, s1]) = (pair(c.hour), pair(c.minute), pair(c.second));
    // Six fraction digits, then cut to `width` (3 or 6) and the `Z`.
    let width = width.clamp(1, 6);
    debug_assert!(fraction < 10u64.pow(width), "{fraction} in {width} digits");
    let micros = fraction * 10u64.pow(6 - width);
    let ([f0, f1], [f2, f3], [f4, f5]) = (pair(micros / 10_000), pair(micros / 100), pair(micros));
    *buf = [
        y0, y1, y2, y3, b'-', mo0, mo1, b'-', d0, d1, b'T', h0, h1, b':', mi0, mi1, b':', s0, s1,
        b'.', f0, f1, f2, f3, f4, f5, b'Z',
    ];
    let end = 20 + width as usize;
    if let Some(z) = buf.get_mut(end) {
        *z = b'Z';
    }
    let text = buf.get(..=end).and_then(|b| std::str::from_utf8(b).ok());
    text.unwrap_or("1970-01-01T00:00:00.000Z")
}

/// A UTC calendar date and time of day, computed without a date library: these
/// strings are written on every response, and formatting through `time` was a
/// tenth of an in-process create.
struct Civil {
    year: u64,
    month: u64,
    day: u64,
    hour: u64,
    minute: u64,
    second: u64,
    milli: u64,
    /// 0 = Monday.
    weekday: u64,
}

impl Civil {
    /// Howard Hinnant's `civil_from_days`, for days on or after 1970-01-01.
    fn of(t: Timestamp) -> Self {
        let ms = t.0.min(LAST_WRITTEN_MS);
        let secs = ms / 1000;
        let days = secs / 86_400;
        let in_day = secs % 86_400;
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z % 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u64::from(month <= 2);
        Self {
            year,
            month,
            day,
            hour: in_day / 3600,
            minute: in_day % 3600 / 60,
            second: in_day % 60,
            milli: ms % 1000,
            // 1970-01-01 was a Thursday.
            weekday: (days + 3) % 7,
        }
    }
}

/// The length of an HTTP-date (`Thu, 19 Nov 2026 12:03:00 GMT`).
const HTTP_DATE_LEN: usize = 29;

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_iso8601())
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "the one reading of the wall clock"
    )]
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Timestamp(ms)
    }
}

/// The monotonic clock, for measuring elapsed time (caches, timeouts), never for
/// what a client sees: the one reading of it in the library.
#[expect(
    clippy::disallowed_methods,
    reason = "the one reading of the monotonic clock"
)]
pub fn monotonic_now() -> Instant {
    Instant::now()
}

/// A clock that only moves when told to; for tests and simulations.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(AtomicU64::new(start.0))
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_has_milliseconds_and_z() {
        assert_eq!(
            Timestamp::from_millis(1_795_999_297_123).to_iso8601(),
            "2026-11-30T00:41:37.123Z"
        );
        assert_eq!(
            Timestamp::from_millis(0).to_iso8601(),
            "1970-01-01T00:00:00.000Z"
        );
        let t = Timestamp::from_millis(1_795_999_297_123);
        assert_eq!(
            serde_json::to_string(&t.iso8601()).expect("serializes"),
            "\"2026-11-30T00:41:37.123Z\""
        );
        // A log line's form: microseconds.
        let mut line = String::new();
        write_rfc3339(&mut line, &Civil::of(t), 123_456, 6).expect("writes");
        assert_eq!(line, "2026-11-30T00:41:37.123456Z");
        line.clear();
        write_rfc3339(&mut line, &Civil::of(t), 7, 6).expect("writes");
        assert_eq!(line, "2026-11-30T00:41:37.000007Z");
    }

    #[test]
    fn dates_match_a_date_library_across_the_whole_range() {
        // Every day boundary would be slow; a stride that walks through every
        // month, leap years, century rules, and the clamped end of year 9999.
        let mut ms = 0u64;
        while ms <= LAST_WRITTEN_MS + 86_400_000 {
            let t = Timestamp::from_millis(ms);
            let clamped = ms.min(LAST_WRITTEN_MS);
            let d =
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(clamped) * 1_000_000)
                    .expect("in range");
            let iso = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                d.year(),
                u8::from(d.month()),
                d.day(),
                d.hour(),
                d.minute(),
                d.second(),
                d.millisecond()
            );
            assert_eq!(t.to_iso8601(), iso, "{ms}");
            let http = d
                .format(&time::format_description::well_known::Rfc2822)
                .expect("formats");
            // RFC 2822 writes `+0000`; an HTTP-date writes `GMT`.
            assert_eq!(t.to_http_date(), http.replace(" +0000", " GMT"), "{ms}");
            ms += 3_999_999_937;
        }
        assert_eq!(
            Timestamp::from_millis(u64::MAX).to_iso8601(),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            Timestamp::from_millis(1_795_089_780_000).to_http_date(),
            "Thu, 19 Nov 2026 12:03:00 GMT"
        );
    }

    #[test]
    fn rounding_to_seconds() {
        let t = Timestamp::from_millis(10_001);
        assert_eq!(t.floor_second().as_millis(), 10_000);
        assert_eq!(t.ceil_second().as_millis(), 11_000);
        let exact = Timestamp::from_millis(10_000);
        assert_eq!(exact.ceil_second(), exact);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp::from_millis(5));
        assert_eq!(c.now().as_millis(), 5);
        c.advance(Duration::from_secs(2));
        assert_eq!(c.now().as_millis(), 2005);
    }
}
