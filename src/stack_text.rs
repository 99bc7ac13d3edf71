//! Text gathered on the stack (on the heap only past 256 bytes): the parts of a
//! log line or a header that are built before they are written, without an
//! allocation each.

use std::fmt;

/// Bytes kept on the stack before spilling to the heap.
const INLINE: usize = 256;

/// A `fmt::Write` target on the stack. One copy per write: `SmallVec`'s
/// `extend_from_slice` made two calls to the C library's `memmove` for each.
pub(crate) struct StackText {
    inline: [u8; INLINE],
    len: usize,
    /// All of the text, once it outgrew `inline`.
    spilled: Option<String>,
}

impl Default for StackText {
    fn default() -> Self {
        Self {
            inline: [0; INLINE],
            len: 0,
            spilled: None,
        }
    }
}

impl StackText {
    pub(crate) fn as_str(&self) -> &str {
        match &self.spilled {
            Some(text) => text,
            // Only `write_str` fills it, with whole `str`s.
            None => std::str::from_utf8(self.inline.get(..self.len).unwrap_or_default())
                .unwrap_or_default(),
        }
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(text) = &mut self.spilled {
            text.push_str(s);
            return Ok(());
        }
        let end = self.len + s.len();
        match self.inline.get_mut(self.len..end) {
            Some(room) => {
                room.copy_from_slice(s.as_bytes());
                self.len = end;
            }
            None => {
                let mut text = String::with_capacity(end * 2);
                text.push_str(self.as_str());
                text.push_str(s);
                self.spilled = Some(text);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    #[test]
    fn text_past_the_inline_room_spills_whole_and_in_order() {
        let mut text = StackText::default();
        let mut expected = String::new();
        for i in 0..100 {
            let piece = format!("{i}é,");
            let _ = text.write_str(&piece);
            expected.push_str(&piece);
            assert_eq!(text.as_str(), expected);
        }
        assert!(expected.len() > INLINE);
    }
}
