//! The plan text as read from disk, with the name it is reported under.
//!
//! Diagnostics point into this text by byte range; this module turns a range
//! into the `line:column` an operator sees. Line starts are indexed once, so
//! a lookup costs a binary search, not a scan of the text: thousands of
//! diagnostics on a large plan stay linear.

use std::ops::Range;

/// One input file: the name shown in diagnostics and its full text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user typed it (never canonicalised, so output does not
    /// depend on the working directory).
    pub name: String,
    /// The file's text.
    pub text: String,
    /// Byte offset where each line starts (4 bytes a line: a plan is at
    /// most [`crate::spec::MAX_PLAN_BYTES`]).
    line_starts: Vec<u32>,
    /// The byte offset of the first byte that is not UTF-8, when the file
    /// was not (then `text` holds it with U+FFFD in place of such bytes).
    invalid_utf8: Option<usize>,
}

impl SourceFile {
    /// Wraps a name and a text.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(
                text.bytes()
                    .enumerate()
                    .filter(|(_, b)| *b == b'\n')
                    .map(|(i, _)| u32::try_from(i + 1).unwrap_or(u32::MAX)),
            )
            .collect();
        Self {
            name: name.into(),
            text,
            line_starts,
            invalid_utf8: None,
        }
    }

    /// Wraps bytes read from a file; bytes that are not UTF-8 are kept as
    /// U+FFFD and remembered, so that validation can point at the first.
    pub fn from_bytes(name: impl Into<String>, bytes: Vec<u8>) -> Self {
        match String::from_utf8(bytes) {
            Ok(text) => Self::new(name, text),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                Self {
                    invalid_utf8: Some(at),
                    ..Self::new(name, text)
                }
            }
        }
    }

    /// The byte offset (in `text`) of the first byte of the file that was
    /// not UTF-8; `text` holds U+FFFD there.
    pub fn invalid_utf8(&self) -> Option<usize> {
        self.invalid_utf8
    }

    /// 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        let offset = u32::try_from(offset.min(self.text.len())).unwrap_or(u32::MAX);
        self.line_starts.partition_point(|&s| s <= offset).max(1)
    }

    /// Byte range of a 1-based line, without its newline.
    pub fn line_range(&self, line: usize) -> Range<usize> {
        let at = |i: usize| self.line_starts.get(i).map(|&s| s as usize);
        let start = at(line.saturating_sub(1)).unwrap_or(self.text.len());
        let end = at(line).map_or(self.text.len(), |next| next - 1);
        start..end.max(start)
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line(offset);
        let start = self.line_range(line).start.min(offset);
        (line, self.text[start..offset].chars().count() + 1)
    }

    /// The span clamped into the text (toml spans can point one past the end)
    /// and onto character boundaries.
    pub fn clamp(&self, span: &Range<usize>) -> Range<usize> {
        let floor = |mut i: usize| {
            i = i.min(self.text.len());
            while !self.text.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let end = floor(span.end);
        floor(span.start.min(end))..end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let f = SourceFile::new("x", "a = 1\nbé = 2\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(6), (2, 1));
        assert_eq!(f.line_col(9), (2, 3));
        assert_eq!(f.line_col(100), (3, 1));
        assert_eq!(f.line_range(2), 6..13);
        assert_eq!(f.line_range(3), 14..14);
    }

    #[test]
    fn invalid_utf8_is_remembered() {
        let f = SourceFile::from_bytes("x", b"a = \"\xff\"\n".to_vec());
        assert_eq!(f.invalid_utf8(), Some(5));
        assert_eq!(f.text, "a = \"\u{fffd}\"\n");
        assert_eq!(
            SourceFile::from_bytes("x", b"a".to_vec()).invalid_utf8(),
            None
        );
    }
}
