//! The plan text as read from disk, with the name it is reported under.
//!
//! Diagnostics point into this text by byte range; this module turns a range
//! into the `line:column` an operator sees.

use std::ops::Range;

/// One input file: the name shown in diagnostics and its full text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user typed it (never canonicalised, so output does not
    /// depend on the working directory).
    pub name: String,
    /// The file's text.
    pub text: String,
}

impl SourceFile {
    /// Wraps a name and a text.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// The span clamped into the text (toml spans can point one past the end).
    pub fn clamp(&self, span: &Range<usize>) -> Range<usize> {
        let end = span.end.min(self.text.len());
        span.start.min(end)..end
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
    }
}
