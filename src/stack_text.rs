//! Text gathered on the stack (on the heap only past 256 bytes): the parts of a
//! log line or a header that are built before they are written, without an
//! allocation each.

use std::fmt;

use smallvec::SmallVec;

/// A `fmt::Write` target on the stack.
#[derive(Default)]
pub(crate) struct StackText(SmallVec<[u8; 256]>);

impl StackText {
    pub(crate) fn as_str(&self) -> &str {
        // Only `write_str` fills it, with whole `str`s.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}
