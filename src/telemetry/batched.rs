//! Log lines gathered per runtime thread and handed over in one piece when the
//! thread runs out of work, instead of one `write` per line (the binary hands them
//! to its log writer thread, [`super::background`]).
//!
//! A create writes three lines (two audit events and its access line), four with the
//! SMTP or webhook sender ("code sent"); their `write` calls were a tenth of the
//! server's CPU under load. A runtime worker (a thread that
//! has parked once: [`runtime_hooks`] sets [`thread_parking`] as the runtime's
//! `on_thread_park`) keeps its lines in a thread-local buffer, handed over each time
//! it parks again, when it stops, before the buffer would pass [`CAPACITY`], or when a
//! new line finds the oldest one [`MAX_DELAY`] old: the trade nginx's
//! `access_log ... buffer= flush=` makes. An idle server therefore hands each line
//! over as soon as the request is done; a busy one about ten lines at a time.
//!
//! What it costs:
//! - A killed process (`SIGKILL`, out of memory) loses what its workers gathered since
//!   they last ran out of work (and, in the binary, what its log writer had not
//!   written yet); a worker that stays busy without logging keeps its last lines
//!   until it parks (the delay is checked when a line comes).
//! - Lines are in order per worker, not across workers (a request whose task moved
//!   between workers may see its lines written in another order).
//! - A sink must not log: a line logged while a batch is being written goes out
//!   before that batch.
//!
//! A batch stays within `PIPE_BUF` (4096 bytes), so each write to a pipe is atomic
//! and another writer on the same pipe (stderr sent to it too) cannot tear a line.
//! Every other thread (the main thread, `spawn_blocking`'s threads, which never park
//! through the hook) hands each line over at once.

use std::cell::RefCell;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

use crate::clock::monotonic_now;

/// The most bytes one batch holds: `PIPE_BUF`, the largest write a pipe keeps whole.
/// A line that would take a batch past it is gathered into the next batch.
pub const CAPACITY: usize = 4096;

/// How long a line may wait in a busy thread's buffer: checked when a new line comes.
pub const MAX_DELAY: Duration = Duration::from_millis(50);

/// Where a thread's gathered lines go: the writer of the [`Batched`] that wrote them.
trait Sink: Send + Sync {
    fn write_lines(&self, bytes: &[u8]) -> io::Result<()>;
}

impl<M> Sink for M
where
    M: for<'w> MakeWriter<'w> + Send + Sync,
{
    fn write_lines(&self, bytes: &[u8]) -> io::Result<()> {
        let mut writer = self.make_writer();
        writer.write_all(bytes)?;
        writer.flush()
    }
}

/// A thread's gathered lines.
struct Pending {
    bytes: Vec<u8>,
    oldest: Instant,
    sink: Option<Arc<dyn Sink>>,
}

impl Pending {
    fn flush(&mut self) {
        // Taken out first: a sink that panics half-way loses this batch instead of
        // writing its first part twice.
        let mut bytes = std::mem::take(&mut self.bytes);
        if let Some(sink) = &self.sink
            && !bytes.is_empty()
        {
            // A batch that cannot be written has nowhere to be reported (a worker's
            // park hook has no caller to tell).
            let _ = sink.write_lines(&bytes);
        }
        bytes.clear();
        self.bytes = bytes;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.flush();
    }
}

thread_local! {
    /// `Some` on a thread that gathers its lines.
    static PENDING: RefCell<Option<Pending>> = const { RefCell::new(None) };
}

/// Writes out the lines this thread has gathered, and makes it gather its lines from
/// now on: a thread that parks is a runtime worker, and it will park again when it
/// runs out of work. For a tokio runtime's `on_thread_park`.
pub fn thread_parking() {
    // `try_with`: nothing to do once the thread's locals are being destroyed.
    let _ = PENDING.try_with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            match p.as_mut() {
                Some(pending) => pending.flush(),
                None => {
                    *p = Some(Pending {
                        bytes: Vec::with_capacity(CAPACITY),
                        oldest: monotonic_now(),
                        sink: None,
                    });
                }
            }
        }
    });
}

/// Writes out the lines this thread has gathered. For a tokio runtime's
/// `on_thread_stop`.
pub fn flush_this_thread() {
    let _ = PENDING.try_with(|p| {
        if let Ok(mut p) = p.try_borrow_mut()
            && let Some(pending) = p.as_mut()
        {
            pending.flush();
        }
    });
}

/// Sets [`thread_parking`] and [`flush_this_thread`] as a runtime's
/// `on_thread_park` and `on_thread_stop`.
pub fn runtime_hooks(builder: &mut tokio::runtime::Builder) -> &mut tokio::runtime::Builder {
    builder
        .on_thread_park(thread_parking)
        .on_thread_stop(flush_this_thread)
}

/// A [`MakeWriter`] whose lines, on a thread that gathers them, wait in that thread's
/// buffer; on any other thread they go to `M` at once.
pub struct Batched<M> {
    inner: Arc<M>,
}

impl<M> Batched<M> {
    /// Lines for `inner`, gathered on runtime workers.
    pub fn new(inner: M) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }
    /// Where the lines go.
    pub fn inner(&self) -> &M {
        &self.inner
    }
}

impl<'a, M> MakeWriter<'a> for Batched<M>
where
    M: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    type Writer = BatchedWriter<'a, M>;

    fn make_writer(&'a self) -> Self::Writer {
        BatchedWriter { batched: self }
    }
}

/// One line's writer (the formatter writes each line with one `write_all`).
pub struct BatchedWriter<'a, M> {
    batched: &'a Batched<M>,
}

impl<M> Write for BatchedWriter<'_, M>
where
    M: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let gathered = PENDING.try_with(|p| {
            let Ok(mut p) = p.try_borrow_mut() else {
                return false;
            };
            let Some(pending) = p.as_mut() else {
                return false;
            };
            let ours = Arc::as_ptr(&self.batched.inner).cast::<()>();
            if !pending
                .sink
                .as_ref()
                .is_some_and(|s| std::ptr::eq(Arc::as_ptr(s).cast::<()>(), ours))
            {
                // Another writer's lines go to it first (a second subscriber).
                pending.flush();
                pending.sink = Some(self.batched.inner.clone());
            }
            if pending.bytes.len() + line.len() > CAPACITY {
                pending.flush();
            }
            let now = monotonic_now();
            if pending.bytes.is_empty() {
                pending.oldest = now;
            }
            pending.bytes.extend_from_slice(line);
            if pending.bytes.len() >= CAPACITY || now.duration_since(pending.oldest) >= MAX_DELAY {
                pending.flush();
            }
            true
        });
        if !gathered.unwrap_or(false) {
            // Not gathered: written now, and a failure reported to the formatter.
            self.batched.inner.write_lines(line)?;
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Each `write_lines` call's bytes, in order.
    #[derive(Clone, Default)]
    struct Calls(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Calls {
        fn take(&self) -> Vec<Vec<u8>> {
            std::mem::take(&mut *self.0.lock().expect("calls"))
        }
    }

    impl io::Write for Calls {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("calls").push(b.to_vec());
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl MakeWriter<'_> for Calls {
        type Writer = Calls;

        fn make_writer(&self) -> Calls {
            self.clone()
        }
    }

    fn line(batched: &Batched<Calls>, text: &str) {
        batched
            .make_writer()
            .write_all(text.as_bytes())
            .expect("write");
    }

    /// Runs `f` on a new thread (a gathering one if `gathering`) with a writer to a
    /// fresh [`Calls`] and that `Calls`; returns it once the thread has ended.
    fn on_a_thread(
        gathering: bool,
        f: impl FnOnce(&Batched<Calls>, &Calls) + Send + 'static,
    ) -> Calls {
        let calls = Calls::default();
        let (batched, seen) = (Batched::new(calls.clone()), calls.clone());
        std::thread::spawn(move || {
            if gathering {
                thread_parking();
            }
            f(&batched, &seen);
        })
        .join()
        .expect("thread");
        calls
    }

    #[test]
    fn a_thread_that_does_not_gather_writes_each_line_at_once() {
        let calls = on_a_thread(false, |batched, _| {
            line(batched, "a\n");
            line(batched, "b\n");
        });
        assert_eq!(calls.take(), [b"a\n".to_vec(), b"b\n".to_vec()]);
    }

    #[test]
    fn a_gathering_thread_writes_its_lines_in_one_call_when_flushed() {
        let calls = on_a_thread(true, |batched, seen| {
            line(batched, "a\n");
            line(batched, "b\n");
            assert!(seen.take().is_empty(), "nothing written before the flush");
            flush_this_thread();
            assert_eq!(seen.take(), [b"a\nb\n".to_vec()]);
            flush_this_thread();
            assert!(seen.take().is_empty(), "a second flush writes nothing");
            line(batched, "c\n");
        });
        // The thread's end writes what it still held.
        assert_eq!(calls.take(), [b"c\n".to_vec()]);
    }

    #[test]
    fn a_batch_never_passes_the_capacity_and_a_full_one_is_written_at_once() {
        on_a_thread(true, |batched, seen| {
            let quarter = format!("{}\n", "x".repeat(CAPACITY / 4 - 1));
            for _ in 0..4 {
                line(batched, &quarter);
            }
            // Four quarters fill the batch exactly: written without waiting.
            assert_eq!(seen.take(), [quarter.repeat(4).into_bytes()]);
            let long = format!("{}\n", "y".repeat(CAPACITY / 2));
            line(batched, "a\n");
            line(batched, &long);
            line(batched, &long);
            // The second long line would pass the capacity: the batch before it goes.
            assert_eq!(seen.take(), [format!("a\n{long}").into_bytes()]);
            flush_this_thread();
            assert_eq!(seen.take(), [long.clone().into_bytes()]);
            // A single line longer than a batch is written on its own.
            let huge = format!("{}\n", "z".repeat(CAPACITY));
            line(batched, &huge);
            assert_eq!(seen.take(), [huge.into_bytes()]);
        });
    }

    #[test]
    fn a_line_older_than_the_delay_is_written_with_the_next_one() {
        on_a_thread(true, |batched, seen| {
            line(batched, "a\n");
            std::thread::sleep(MAX_DELAY + Duration::from_millis(5));
            line(batched, "b\n");
            assert_eq!(seen.take(), [b"a\nb\n".to_vec()]);
        });
    }

    #[test]
    fn lines_of_two_writers_on_one_thread_each_reach_their_own() {
        let (one, two) = (Calls::default(), Calls::default());
        let first = Batched::new(one.clone());
        let second = Batched::new(two.clone());
        std::thread::spawn(move || {
            thread_parking();
            line(&first, "1a\n");
            line(&second, "2a\n");
            line(&first, "1b\n");
            flush_this_thread();
        })
        .join()
        .expect("thread");
        assert_eq!(one.take(), [b"1a\n".to_vec(), b"1b\n".to_vec()]);
        assert_eq!(two.take(), [b"2a\n".to_vec()]);
    }
}
