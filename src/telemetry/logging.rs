//! How log lines are written: text for people (development), or one JSON object per
//! line for log pipelines (production), both at `RUST_LOG`'s level.
//!
//! The JSON lines have the shape of `tracing-subscriber`'s JSON format
//! (`timestamp`, `level`, `fields`, `target`, and the current span's fields plus its
//! `name` under `span`), written by hand: that format stores a span's fields as a
//! JSON object and parses it again for every line and every `Span::record`, which
//! made logging the largest cost of a request (about 100 heap allocations and a
//! third of the CPU of a create, in the load benchmark). Here a span's fields are
//! kept as ready-to-write `"key":value` pairs and copied into each line.

use std::fmt::{self, Write as _};
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use super::background::Background;
use super::batched::Batched;
use crate::config::LogFormat;
use crate::stack_text::StackText;
use crate::thread_buffer;

/// The process's log output, once [`init`] has run: [`finish`] waits for it.
static OUTPUT: OnceLock<Background> = OnceLock::new();

/// Installs the process's subscriber: `format` lines on stdout, at `RUST_LOG`'s
/// level (default `info`), gathered per runtime thread as [`batched`] explains and
/// written by a thread of their own ([`background`]). Call [`finish`] before the
/// process exits, or the lines still queued are lost. Does nothing if a subscriber
/// is installed already; fails if the writer thread cannot start.
///
/// [`batched`]: super::batched
/// [`background`]: super::background
pub fn init(format: LogFormat) -> std::io::Result<()> {
    if OUTPUT.get().is_some() || tracing::dispatcher::has_been_set() {
        return Ok(());
    }
    let output = Background::spawn(std::io::stdout())?;
    let output = OUTPUT.get_or_init(|| output).clone();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Batched::new(output));
    let _ = match format {
        LogFormat::Json => builder
            .fmt_fields(JsonFields)
            .event_format(JsonLines)
            .try_init(),
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .try_init(),
    };
    Ok(())
}

/// Writes every line logged so far, stops the writer thread and waits for it: at
/// the end of `main`, after the runtime (whose workers hand over what they gathered
/// as they stop). Lines logged later are dropped.
pub fn finish() {
    if let Some(output) = OUTPUT.get() {
        output.close();
    }
}

/// A subscriber writing JSON lines to `writer` under `filter`, for embedders and
/// benchmarks that log somewhere else than stdout.
pub fn json_subscriber<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(JsonFields)
        .event_format(JsonLines)
        .with_writer(writer)
        .finish()
}

/// Formats a span's fields as `"key":value` pairs, comma-separated, without braces,
/// so a line copies them as they are and a later `Span::record` only appends.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonFields;

impl<'w> FormatFields<'w> for JsonFields {
    /// A new span's fields, staged on the stack and written in one go: the span's
    /// text starts empty, and writing pair by pair grew it four or five times.
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut staged = StackText::default();
        let mut pairs = Pairs::new(&mut staged);
        fields.record(&mut pairs);
        let result = pairs.result;
        writer.write_str(staged.as_str())?;
        result
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let before = current.fields.len();
        if before > 0 {
            current.fields.push(',');
        }
        let mut pairs = Pairs::new(&mut current.fields);
        fields.record(&mut pairs);
        let (result, wrote) = (pairs.result, !pairs.first);
        // Nothing written, or a value whose `Debug` failed half-way (the caller
        // ignores the error): the span keeps the fields it had, still valid JSON.
        if !wrote || result.is_err() {
            current.fields.truncate(before);
        }
        keep_last_of_each_key(&mut current.fields);
        result
    }
}

/// A field recorded twice on a span (the request's `purpose` can be) keeps its
/// last value, as the stock format's object did: a line with a key twice is valid
/// JSON, but some log stores refuse it. Allocates only when there is a duplicate.
fn keep_last_of_each_key(fields: &mut String) {
    if let Some(deduplicated) = without_earlier_duplicates(fields) {
        *fields = deduplicated;
    }
}

/// `fields` without the pairs whose key comes again later; `None` when no key does.
fn without_earlier_duplicates(text: &str) -> Option<String> {
    let mut pairs: smallvec::SmallVec<[(&str, &str); 8]> = smallvec::SmallVec::new();
    let mut at = 0;
    while let Some((key, end)) = next_pair(text, at) {
        pairs.push((key, text.get(at..end).unwrap_or_default()));
        at = end + 1;
        if text.as_bytes().get(end) != Some(&b',') {
            break;
        }
    }
    let later = |i: usize, key: &str| pairs.iter().skip(i + 1).any(|(k, _)| *k == key);
    if !pairs.iter().enumerate().any(|(i, (key, _))| later(i, key)) {
        return None;
    }
    let kept: Vec<&str> = pairs
        .iter()
        .enumerate()
        .filter(|(i, (key, _))| !later(*i, key))
        .map(|(_, (_, pair))| *pair)
        .collect();
    Some(kept.join(","))
}

/// The pair starting at `at` in text written by [`Pairs`] (`"key":value`, the
/// value a JSON string or a bare number or word): its key and where it ends.
fn next_pair(text: &str, at: usize) -> Option<(&str, usize)> {
    let bytes = text.as_bytes();
    let key_end = string_end(bytes, at)?;
    if bytes.get(key_end) != Some(&b':') {
        return None;
    }
    let value = key_end + 1;
    let end = if bytes.get(value) == Some(&b'"') {
        string_end(bytes, value)?
    } else {
        bytes
            .get(value..)?
            .iter()
            .position(|&b| b == b',')
            .map_or(bytes.len(), |n| value + n)
    };
    Some((text.get(at..key_end)?, end))
}

/// Where the JSON string starting at `at` ends (just past its closing quote).
fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let mut i = at + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// One JSON object per event: `{"timestamp","level","fields","target","span"}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // The line is composed in this thread's buffer, a `String` whose writes
        // inline, and handed over in one piece: each of a line's thirty-odd pieces
        // written through `Writer` was a dynamic call. A line formatted while
        // another is (a `Debug` value that logs) writes straight through.
        let staged = thread_buffer::with(&LINE, |line| {
            write_line(line, ctx, event).and_then(|()| w.write_str(line))
        });
        match staged {
            Some(result) => result,
            None => write_line(&mut w, ctx, event),
        }
    }
}

thread_local! {
    /// Each thread's line buffer.
    static LINE: std::cell::RefCell<String> = std::cell::RefCell::new(thread_buffer::Buffer::fresh());
}

/// One event as a JSON line into `w`.
fn write_line<S>(
    w: &mut impl fmt::Write,
    ctx: &FmtContext<'_, S, JsonFields>,
    event: &Event<'_>,
) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let meta = event.metadata();
    w.write_str("{\"timestamp\":\"")?;
    crate::clock::write_log_time(w)?;
    w.write_str("\",\"level\":\"")?;
    w.write_str(meta.level().as_str())?;
    w.write_str("\",\"fields\":{")?;
    let mut pairs = Pairs::new(&mut *w);
    event.record(&mut pairs);
    let (result, log_target) = (pairs.result, pairs.log_target);
    result?;
    w.write_str("},\"target\":")?;
    string(w, log_target.as_deref().unwrap_or(meta.target()))?;
    if let Some(span) = ctx.parent_span() {
        w.write_str(",\"span\":{")?;
        if let Some(fields) = span.extensions().get::<FormattedFields<JsonFields>>()
            && !fields.fields.is_empty()
        {
            w.write_str(&fields.fields)?;
            w.write_char(',')?;
        }
        w.write_str("\"name\":")?;
        string(w, span.name())?;
        w.write_char('}')?;
    }
    w.write_str("}\n")
}

/// Writes visited fields as `"key":value` pairs into `out`.
struct Pairs<'a, W: fmt::Write> {
    out: &'a mut W,
    first: bool,
    result: fmt::Result,
    /// The `log.target` of an event that came from the `log` crate: the line's
    /// target (its other `log.*` fields are left out, as the stock format does).
    log_target: Option<String>,
}

impl<'a, W: fmt::Write> Pairs<'a, W> {
    fn new(out: &'a mut W) -> Self {
        Self {
            out,
            first: true,
            result: Ok(()),
            log_target: None,
        }
    }

    /// Writes the separator and `"name":`, unless the field is left out.
    fn key(&mut self, field: &Field) -> bool {
        if self.result.is_err() || field.name().starts_with("log.") {
            return false;
        }
        let open = if self.first { "\"" } else { ",\"" };
        self.first = false;
        self.result = self
            .out
            .write_str(open)
            .and_then(|()| Escaped(self.out).write_str(field.name()))
            .and_then(|()| self.out.write_str("\":"));
        self.result.is_ok()
    }

    fn integer(&mut self, field: &Field, value: impl itoa::Integer) {
        if self.key(field) {
            self.result = self.out.write_str(itoa::Buffer::new().format(value));
        }
    }

    fn raw(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.key(field) {
            self.result = self.out.write_fmt(value);
        }
    }
}

impl<W: fmt::Write> Visit for Pairs<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "log.target" {
            self.log_target = Some(value.to_owned());
        }
        if self.key(field) {
            self.result = string(self.out, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.key(field) {
            self.result = self
                .out
                .write_char('"')
                .and_then(|()| write!(Escaped(self.out), "{value:?}"))
                .and_then(|()| self.out.write_char('"'));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.key(field) {
            self.result = self
                .out
                .write_char('"')
                .and_then(|()| write!(Escaped(self.out), "{value}"))
                .and_then(|()| self.out.write_char('"'));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.integer(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.integer(field, value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.integer(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.integer(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.key(field) {
            self.result = self.out.write_str(if value { "true" } else { "false" });
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.raw(field, format_args!("{value}"));
        } else {
            self.raw(field, format_args!("null"));
        }
    }
}

/// Writes `s` as a JSON string.
fn string(out: &mut (impl fmt::Write + ?Sized), s: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_str(s)?;
    out.write_char('"')
}

/// Escapes what it is given for the inside of a JSON string.
struct Escaped<'a, W: ?Sized>(&'a mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        while let Some(i) = next_escape(s.as_bytes(), plain) {
            self.0.write_str(s.get(plain..i).unwrap_or_default())?;
            let b = s.as_bytes().get(i).copied().unwrap_or_default();
            match b {
                b'"' => self.0.write_str("\\\"")?,
                b'\\' => self.0.write_str("\\\\")?,
                b'\n' => self.0.write_str("\\n")?,
                b'\r' => self.0.write_str("\\r")?,
                b'\t' => self.0.write_str("\\t")?,
                _ => write!(self.0, "\\u{b:04x}")?,
            }
            plain = i + 1;
        }
        self.0.write_str(s.get(plain..).unwrap_or_default())
    }
}

/// Where the next byte from `from` on that a JSON string must escape is (`"`,
/// `\`, a control character). Eight bytes at a time: a byte at a time was the
/// largest single cost of a log line.
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Has a zero byte / a byte under 0x20 (exact for "any", the classic bit trick).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_ne_bytes(word);
        let found = zero(w ^ (ONES * u64::from(b'"')))
            | zero(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
        if found != 0 {
            break;
        }
        at += 8;
    }
    let rest = bytes.get(at..)?;
    rest.iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Lines written under a JSON subscriber, parsed.
    fn lines(f: impl FnOnce()) -> Vec<serde_json::Value> {
        raw_lines(f)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Lines written under a JSON subscriber, as written.
    fn raw_lines(f: impl FnOnce()) -> Vec<String> {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .map_err(|_| std::io::ErrorKind::Other)?
                    .extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let out = buffer.clone();
        let subscriber = json_subscriber(EnvFilter::new("debug"), move || out.clone());
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buffer.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn lines_have_the_stock_json_shape_and_escape_everything() {
        let nasty = "quote \" backslash \\ newline \n tab \t bell \u{7} unicode é ✓";
        let got = lines(|| {
            let span = tracing::info_span!(
                "request",
                method = "POST",
                client_ip = tracing::field::Empty,
                purpose = tracing::field::Empty
            );
            let _entered = span.enter();
            span.record("client_ip", tracing::field::display("10.0.0.1"));
            span.record("purpose", nasty);
            tracing::info!(
                status = 200u16,
                took = 1.5,
                ok = true,
                neg = -3i64,
                text = nasty,
                "hello {}",
                "world"
            );
            tracing::warn!(target: "audit", debug = ?Some(nasty), "audit");
        });
        assert_eq!(got.len(), 2, "{got:?}");
        let first = &got[0];
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["fields"]["message"], "hello world");
        assert_eq!(first["fields"]["status"], 200);
        assert_eq!(first["fields"]["took"], 1.5);
        assert_eq!(first["fields"]["ok"], true);
        assert_eq!(first["fields"]["neg"], -3);
        assert_eq!(first["fields"]["text"], nasty);
        assert_eq!(first["target"], module_path!());
        assert_eq!(first["span"]["name"], "request");
        assert_eq!(first["span"]["method"], "POST");
        assert_eq!(first["span"]["client_ip"], "10.0.0.1");
        assert_eq!(first["span"]["purpose"], nasty);
        let time = first["timestamp"].as_str().unwrap_or_default();
        assert_eq!(time.len(), "2026-12-03T12:56:38.412228Z".len(), "{time}");
        assert!(
            time.ends_with('Z') && time.as_bytes().get(10) == Some(&b'T'),
            "{time}"
        );
        let second = &got[1];
        assert_eq!(second["level"], "WARN");
        assert_eq!(second["target"], "audit");
        assert_eq!(second["fields"]["debug"], format!("{:?}", Some(nasty)));
    }

    #[test]
    fn a_span_field_recorded_twice_appears_once_with_its_last_value() {
        let raw = raw_lines(|| {
            let span = tracing::info_span!(
                "request",
                method = "POST",
                purpose = tracing::field::Empty,
                client_ip = tracing::field::Empty
            );
            let _entered = span.enter();
            span.record("purpose", "a \"quoted\", value");
            span.record("client_ip", 7u8);
            span.record("purpose", "step_up");
            tracing::info!("once");
        });
        let line = &raw[0];
        assert_eq!(line.matches("\"purpose\"").count(), 1, "{line}");
        let got: Vec<serde_json::Value> = raw
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_default())
            .collect();
        assert_eq!(got[0]["span"]["purpose"], "step_up");
        assert_eq!(got[0]["span"]["client_ip"], 7);
        assert_eq!(got[0]["span"]["method"], "POST");
    }

    #[test]
    fn a_value_that_fails_to_format_leaves_the_span_valid() {
        struct Failing;
        impl fmt::Debug for Failing {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("half")?;
                Err(fmt::Error)
            }
        }
        let got = lines(|| {
            let span = tracing::info_span!("request", a = 1u8, b = tracing::field::Empty);
            let _entered = span.enter();
            span.record("b", tracing::field::debug(Failing));
            tracing::info!("after");
        });
        assert_eq!(
            got[0]["span"],
            serde_json::json!({"a": 1, "name": "request"})
        );
    }

    #[test]
    fn the_word_at_a_time_scan_finds_what_the_byte_at_a_time_one_does() {
        let naive = |b: &[u8], from: usize| {
            b.iter()
                .skip(from)
                .position(|&c| c < 0x20 || c == b'"' || c == b'\\')
                .map(|i| from + i)
        };
        let mut texts: Vec<Vec<u8>> = vec![Vec::new(), b"plain ascii text, long enough".to_vec()];
        for special in [
            b'"', b'\\', 0, 0x1f, b'\n', 0x7f, 0x80, 0xff, b' ', b'!', b'#', b']',
        ] {
            for at in 0..20 {
                let mut t = "é✓abcdefghijklmnopqrstuvwxyz".as_bytes().to_vec();
                t.insert(at, special);
                texts.push(t);
            }
        }
        // Short texts, and two special bytes in one word (a borrow from the lower
        // one can flag bytes above it).
        for len in 1..=9 {
            for (a, b) in [
                (0u8, b'"'),
                (b'"', 0x01),
                (0x1f, b'\\'),
                (0x20, 0x1f),
                (0x80, 0),
            ] {
                for i in 0..len {
                    for j in i..len {
                        let mut t = vec![b'x'; len];
                        t[i] = a;
                        t[j] = b;
                        texts.push(t);
                    }
                }
            }
        }
        for t in &texts {
            for from in 0..=t.len() {
                assert_eq!(next_escape(t, from), naive(t, from), "{t:?} from {from}");
            }
        }
    }

    #[test]
    fn an_event_outside_a_span_has_no_span_and_a_span_without_fields_only_a_name() {
        let got = lines(|| {
            tracing::info!("alone");
            let span = tracing::info_span!("bare");
            span.in_scope(|| tracing::info!(x = 1u8, "inside"));
        });
        assert!(got[0].get("span").is_none(), "{}", got[0]);
        assert_eq!(got[1]["span"], serde_json::json!({"name": "bare"}));
        assert_eq!(got[1]["fields"]["x"], 1);
    }
}
