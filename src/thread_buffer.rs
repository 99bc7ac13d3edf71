//! A per-thread buffer reused from one piece of output to the next (a JSON answer,
//! a log line), so composing one costs no allocation once the buffer has grown.
//! Both users follow the same rules, kept here: the buffer is emptied before each
//! use, a rare large piece does not keep its memory for the thread's lifetime, and
//! a use while the buffer is taken (re-entry) or while the thread ends gets `None`,
//! for the caller to fall back on a buffer of its own.

use std::cell::RefCell;
use std::thread::LocalKey;

/// Capacity a buffer starts with, and returns to after a large piece.
const START: usize = 1024;

/// Past this capacity a buffer is dropped after use.
const KEPT: usize = 64 * 1024;

/// A growable buffer that can be emptied (`Vec<u8>`, `String`).
pub(crate) trait Buffer {
    /// An empty buffer of [`START`] capacity.
    fn fresh() -> Self;
    /// Empties it, keeping its capacity.
    fn clear(&mut self);
    /// Its capacity in bytes.
    fn capacity(&self) -> usize;
}

impl Buffer for Vec<u8> {
    fn fresh() -> Self {
        Vec::with_capacity(START)
    }
    fn clear(&mut self) {
        Vec::clear(self);
    }
    fn capacity(&self) -> usize {
        Vec::capacity(self)
    }
}

impl Buffer for String {
    fn fresh() -> Self {
        String::with_capacity(START)
    }
    fn clear(&mut self) {
        String::clear(self);
    }
    fn capacity(&self) -> usize {
        String::capacity(self)
    }
}

/// Runs `f` on this thread's buffer `key`, emptied first; `None` when the buffer is
/// in use or the thread is ending.
pub(crate) fn with<B: Buffer + 'static, R>(
    key: &'static LocalKey<RefCell<B>>,
    f: impl FnOnce(&mut B) -> R,
) -> Option<R> {
    key.try_with(|cell| {
        let mut buf = cell.try_borrow_mut().ok()?;
        buf.clear();
        let result = f(&mut buf);
        if buf.capacity() > KEPT {
            *buf = B::fresh();
        }
        Some(result)
    })
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static TEST: RefCell<String> = RefCell::new(String::fresh());
    }

    #[test]
    fn each_use_starts_empty_a_large_buffer_is_dropped_and_re_entry_gets_none() {
        assert_eq!(with(&TEST, |b| b.push_str("first")), Some(()));
        assert_eq!(with(&TEST, |b| b.clone()), Some(String::new()));
        assert_eq!(with(&TEST, |b| b.push_str(&"x".repeat(KEPT + 1))), Some(()));
        assert_eq!(with(&TEST, |b| b.capacity()), Some(START));
        assert_eq!(with(&TEST, |_| with(&TEST, |_| ())), Some(None));
    }
}
