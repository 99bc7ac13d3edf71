//! Log output written by a thread of its own: the runtime's workers hand it their
//! batches ([`super::batched`]) and go back to serving.
//!
//! A `write` to stdout can block for as long as its reader wants: a container
//! runtime or log shipper that reads the pipe late, a paused terminal (Ctrl-S). Written
//! from a worker, a full pipe stopped every connection that worker served (the test
//! suite's unread pipe hung the 209th request); here it stops this thread, and
//! requests go on while up to [`LIMIT`] bytes of lines wait.
//!
//! Lines wait in one queue, in the order they came; a thread that would take it past
//! [`LIMIT`] waits for room, so nothing is lost, as when it wrote itself. Before it
//! takes the queue, the writer lets [`COALESCE`] more lines come, unless [`EARLY`]
//! bytes are waiting already or a thread waits for room: on a busy core, waking it for every 4 KiB batch cost two context switches
//! a batch (BENCHMARKS.md, "Ninth round"). It writes whole lines in pieces of at
//! most `PIPE_BUF` (4096 bytes), so a write to a pipe is atomic and another writer on
//! it (stderr) cannot tear a line. [`Background::close`] writes everything queued and
//! ends the thread (at exit). If the output blocks for good, the queue fills and
//! every logging thread waits, as it did when each wrote itself.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use tracing_subscriber::fmt::MakeWriter;

/// The most bytes the queue holds before a logging thread waits for room: a quarter
/// of a second of lines at the rate of a saturated 2-core server. The writer may
/// hold as much again while it writes, so a stalled output costs up to twice this.
pub const LIMIT: usize = 8 << 20;

/// How long the writer lets lines gather before it takes them (unless [`EARLY`]
/// bytes are waiting already, or a thread waits for room or a flush).
pub const COALESCE: std::time::Duration = std::time::Duration::from_millis(2);

/// Queued bytes that the writer takes at once, without waiting [`COALESCE`].
pub const EARLY: usize = 64 << 10;

/// The largest write a pipe keeps whole.
const PIPE_BUF: usize = 4096;

/// After a burst, the writer's buffer shrinks back to this.
const KEPT: usize = 256 << 10;

#[derive(Default)]
struct State {
    queued: Vec<u8>,
    /// The writer holds bytes it has taken from the queue and not written yet.
    writing: bool,
    /// The writer sleeps until lines come.
    writer_asleep: bool,
    /// Threads waiting for room or for the queue to empty.
    waiting: usize,
    /// No more lines: the writer ends once the queue is empty.
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Lines came, or the queue closed.
    work: Condvar,
    /// The writer took the queue, or wrote what it took.
    progress: Condvar,
    limit: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A thread that panicked while holding the lock left the state consistent
        // (every change is a single assignment or append).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, cv: &Condvar, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        cv.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    fn append(&self, bytes: &[u8]) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        while !s.closed && !s.queued.is_empty() && s.queued.len() + bytes.len() > self.limit {
            s.waiting += 1;
            s = self.wait(&self.progress, s);
            s.waiting -= 1;
        }
        // Closed while waiting for room: the writer may be gone.
        if s.closed {
            return;
        }
        s.queued.extend_from_slice(bytes);
        if s.writer_asleep {
            s.writer_asleep = false;
            self.work.notify_one();
        }
    }

    /// Waits until the queue is empty and nothing taken from it is unwritten (under
    /// steady logging that moment may not come: for tests and quiet moments).
    fn flush(&self) {
        let mut s = self.lock();
        while (!s.queued.is_empty() || s.writing) && !s.closed {
            s.waiting += 1;
            s = self.wait(&self.progress, s);
            s.waiting -= 1;
        }
    }

    /// The writer's loop: takes the whole queue, writes it, until closed and empty.
    fn run(&self, out: &mut dyn Write) {
        let mut taken = Vec::new();
        loop {
            {
                let mut s = self.lock();
                s.writing = false;
                if s.waiting > 0 {
                    self.progress.notify_all();
                }
                while s.queued.is_empty() {
                    if s.closed {
                        return;
                    }
                    s.writer_asleep = true;
                    s = self.wait(&self.work, s);
                }
                if s.queued.len() < EARLY && !s.closed && s.waiting == 0 {
                    // Not asleep meanwhile: the lines that come need no wake-up.
                    drop(s);
                    std::thread::sleep(COALESCE);
                    s = self.lock();
                }
                std::mem::swap(&mut s.queued, &mut taken);
                s.writing = true;
                if s.waiting > 0 {
                    self.progress.notify_all();
                }
            }
            // A failed write has nobody to be reported to (the line's request is
            // long answered): the rest is still tried.
            for piece in pieces(&taken) {
                let _ = out.write_all(piece);
            }
            let _ = out.flush();
            taken.clear();
            if taken.capacity() > KEPT {
                taken.shrink_to(KEPT);
            }
        }
    }
}

/// `bytes` in pieces of whole lines of at most [`PIPE_BUF`] bytes (a longer line is
/// a piece of its own).
fn pieces(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let window = rest.get(..PIPE_BUF.min(rest.len())).unwrap_or(rest);
        let end = if window.len() == rest.len() {
            rest.len()
        } else {
            match window.iter().rposition(|&b| b == b'\n') {
                Some(newline) => newline + 1,
                // One line longer than a pipe write: up to its end.
                None => rest
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(rest.len(), |n| n + 1),
            }
        };
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// A [`MakeWriter`] whose lines a thread of its own writes to `out`.
#[derive(Clone)]
pub struct Background {
    shared: Arc<Shared>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Background {
    /// Starts the writer thread (`log-writer`) for `out`.
    pub fn spawn(out: impl Write + Send + 'static) -> io::Result<Self> {
        Self::with_limit(out, LIMIT)
    }

    fn with_limit(mut out: impl Write + Send + 'static, limit: usize) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            progress: Condvar::new(),
            limit,
        });
        let writer = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || writer.run(&mut out))?;
        Ok(Self {
            shared,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Waits until the queue is empty and nothing taken from it is unwritten (under
    /// steady logging that moment may not come: for tests and quiet moments).
    pub fn flush(&self) {
        self.shared.flush();
    }

    /// Writes what is queued, then ends the writer thread and waits for it (for as
    /// long as the output blocks); lines that come later, or that were waiting for
    /// room, are dropped.
    pub fn close(&self) {
        {
            let mut s = self.shared.lock();
            s.closed = true;
            self.shared.work.notify_one();
            self.shared.progress.notify_all();
        }
        // The writer drains the queue before it ends.
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl<'a> MakeWriter<'a> for Background {
    type Writer = &'a Background;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Write for &Background {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.shared.append(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// Each write's bytes, sent to the test; blocks while `gate` is held.
    struct Sink {
        writes: mpsc::Sender<Vec<u8>>,
        gate: Arc<Mutex<()>>,
    }

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let _open = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = self.writes.send(b.to_vec());
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn sink(limit: usize) -> (Background, mpsc::Receiver<Vec<u8>>, Arc<Mutex<()>>) {
        let (tx, rx) = mpsc::channel();
        let gate = Arc::new(Mutex::new(()));
        let out = Sink {
            writes: tx,
            gate: Arc::clone(&gate),
        };
        (
            Background::with_limit(out, limit).expect("thread"),
            rx,
            gate,
        )
    }

    fn written(rx: &mpsc::Receiver<Vec<u8>>) -> Vec<u8> {
        rx.try_iter().flatten().collect()
    }

    #[test]
    fn lines_are_written_in_order_and_flush_waits_for_them() {
        let (bg, rx, _gate) = sink(LIMIT);
        let mut expected = Vec::new();
        for i in 0..2000 {
            let line = format!("line {i}\n");
            (&bg).write_all(line.as_bytes()).expect("write");
            expected.extend_from_slice(line.as_bytes());
        }
        bg.flush();
        assert_eq!(written(&rx), expected);
        bg.close();
    }

    #[test]
    fn close_writes_everything_queued_and_later_lines_go_nowhere() {
        let (bg, rx, _gate) = sink(LIMIT);
        (&bg).write_all(b"a\n").expect("write");
        (&bg).write_all(b"b\n").expect("write");
        bg.close();
        assert_eq!(written(&rx), b"a\nb\n");
        (&bg)
            .write_all(b"late\n")
            .expect("neither blocks nor fails");
        bg.flush();
        assert!(written(&rx).is_empty(), "a line after close is dropped");
        assert!(bg.shared.lock().queued.is_empty(), "and not kept");
    }

    #[test]
    fn a_stalled_output_does_not_stall_the_logging_thread_until_the_queue_is_full() {
        let (bg, rx, gate) = sink(64);
        let held = gate.lock().expect("gate");
        // The writer takes the first line and blocks writing it; the next ones queue.
        (&bg).write_all(b"first\n").expect("write");
        std::thread::sleep(Duration::from_millis(50));
        for _ in 0..5 {
            (&bg)
                .write_all(b"0123456789\n")
                .expect("queued, not written");
        }
        assert!(
            written(&rx).is_empty(),
            "nothing written while the output stalls"
        );
        // A line that would pass the limit waits for room.
        let (done_tx, done_rx) = mpsc::channel();
        let waiting = bg.clone();
        let t = std::thread::spawn(move || {
            (&waiting).write_all(&[b'x'; 40]).expect("write");
            let _ = done_tx.send(());
        });
        assert!(
            done_rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "the queue is full: the thread waits"
        );
        drop(held);
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("room once the output moves");
        t.join().expect("thread");
        bg.flush();
        let all = written(&rx);
        assert!(
            all.starts_with(b"first\n0123456789\n"),
            "in order, nothing lost"
        );
        assert_eq!(all.len(), 6 + 5 * 11 + 40);
        bg.close();
    }

    #[test]
    fn pieces_are_whole_lines_within_a_pipe_write() {
        let line = format!("{}\n", "a".repeat(999));
        let long = format!("{}\n", "b".repeat(PIPE_BUF + 10));
        let text = [line.repeat(5), long.clone(), line.repeat(2)].concat();
        let sizes: Vec<usize> = pieces(text.as_bytes()).map(<[u8]>::len).collect();
        assert_eq!(sizes, [4000, 1000, long.len(), 2000]);
        assert_eq!(pieces(b"").count(), 0);
        assert_eq!(
            pieces(b"no newline at the end").collect::<Vec<_>>(),
            [b"no newline at the end"]
        );
    }
}
