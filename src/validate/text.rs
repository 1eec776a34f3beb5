//! Rules about the plan as text, run before and while it is parsed, so that
//! every rejection has a location (issue 11):
//!
//! - bytes that are not UTF-8 (`encoding`);
//! - more lines than any plan needs, or nesting deeper than any plan needs
//!   (`limits`): the TOML reader's memory grows with the lines, and its own
//!   recursion limit does not always say where it was reached;
//! - invisible and direction-changing characters anywhere, even in comments
//!   (`characters`): zero-width spaces, bidi controls, U+2028/U+2029, a BOM
//!   inside the text, other format characters. They make a reviewer read
//!   something other than what runs, and can break out of the README's
//!   Markdown or the YAML the runbook prints. A value written with a `\u`
//!   escape is caught on the parsed value;
//! - backquotes in values (`characters`): the runbook prints values inside
//!   the planner's `…` code spans, where one cannot be escaped;
//! - values shaped like credentials in any field (`secrets`): no field of a
//!   plan takes a secret, so `user:pass@host`, `password=…` or an RKE2 token
//!   is a mistake that would put the secret into every script. The value is
//!   never printed: the diagnostic masks it.

use crate::sensitive::{credential, first_forbidden};
use std::ops::Range;

use crate::diagnostic::{Code, Diagnostic};
use crate::source::SourceFile;

/// More lines than this is not a plan (a 5,000-node plan has about 20,000).
pub const MAX_LINES: usize = 1_000_000;

/// Deeper nesting than this is not a plan (plans nest three levels).
pub const MAX_DEPTH: usize = 32;

/// Checks that need no parsing; a finding here stops before the TOML reader.
pub fn before_parse(source: &SourceFile) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Some(at) = source.invalid_utf8() {
        out.push(
            Diagnostic::error(Code::Encoding, Some(at..at + '\u{fffd}'.len_utf8()), "the plan is not UTF-8 text")
                .label("this byte is not UTF-8")
                .help("save the plan as UTF-8 (TOML files are UTF-8); if it was copied from another system, convert it with `iconv -t UTF-8`"),
        );
        return out;
    }
    let lines = source.line(source.text.len());
    if lines > MAX_LINES {
        let at = source.line_range(MAX_LINES + 1).start;
        out.push(
            Diagnostic::error(
                Code::Limits,
                Some(at..at),
                format!("the plan has more than {MAX_LINES} lines"),
            )
            .label("the plan should have ended before here")
            .help("a plan of 5,000 nodes has about 20,000 lines: check that this is the file you meant"),
        );
        return out;
    }
    if let Some(at) = too_deep(&source.text) {
        out.push(
            Diagnostic::error(
                Code::Limits,
                Some(at..at + 1),
                format!("the plan nests deeper than {MAX_DEPTH} levels"),
            )
            .label("too deep here")
            .help("a plan nests at most three levels (`[snapshot.s3]`, `roles = [...]`): remove the extra brackets, braces or dotted keys"),
        );
        return out;
    }
    // A byte order mark is allowed at the very start.
    let bom = if source.text.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    if let Some((at, c)) = first_forbidden(&source.text[bom..]).map(|(i, c)| (i + bom, c)) {
        out.push(characters(at..at + c.len_utf8(), c, false));
    }
    out
}

/// Checks every string of the parsed document (with its span, whichever
/// reader parsed it): characters a `\u` escape produced, and
/// credential-shaped values. Findings are sorted by position, so the order
/// the strings come in does not matter.
pub fn values<'s>(
    strings: impl Iterator<Item = (&'s str, Range<usize>)>,
    text: &str,
    out: &mut Vec<Diagnostic>,
) {
    for (value, span) in strings {
        string(value, span, text, out);
    }
    out.sort_by_key(|d| d.span.as_ref().map(|s| s.start));
}

fn string(value: &str, span: Range<usize>, text: &str, out: &mut Vec<Diagnostic>) {
    // A marker `rewind init` wrote for the operator: one finding that says
    // so, instead of whatever rule the marker happens to break.
    if let Some(what) = value.trim().strip_prefix("<FILL:") {
        let what = what.trim_end().trim_end_matches('>').trim();
        out.push(
            Diagnostic::error(Code::NotFilled, Some(span.clone()), "not filled in")
                .label("a placeholder from `rewind init`")
                .help(format!("replace it with {what}")),
        );
        return;
    }
    // A character written as itself was reported before parsing.
    let raw = text.get(span.clone()).unwrap_or_default();
    if let Some((_, c)) = first_forbidden(value)
        && first_forbidden(raw).is_none()
    {
        out.push(characters(span.clone(), c, true));
    }
    if value.contains('`') {
        let at = raw
            .find('`')
            .map_or(span.clone(), |i| span.start + i..span.start + i + 1);
        out.push(
            Diagnostic::error(Code::Characters, Some(at), "the value contains a backquote")
                .label("a backquote")
                .help("remove it: the runbook prints values inside `…` code spans, where a backquote would end the span and the rest of the value would be read as Markdown"),
        );
    }
    if let Some(what) = credential(value) {
        out.push(
            Diagnostic::error(
                Code::Secrets,
                Some(span.clone()),
                format!("this value looks like a credential ({what})"),
            )
            .label("not printed here")
            .masked(span)
            .help("no field of a plan takes a secret, and every value is copied into the scripts: remove it. Scripts read passwords, tokens and keys at run time (docs/plan-format.md)"),
        );
    }
}

fn characters(span: Range<usize>, c: char, escaped: bool) -> Diagnostic {
    let name = char_name(c);
    Diagnostic::error(
        Code::Characters,
        Some(span),
        format!(
            "the plan contains U+{:04X} ({name}){}",
            u32::from(c),
            if escaped { ", written as an escape" } else { "" }
        ),
    )
    .label("an invisible or layout-changing character")
    .help("remove it: rewind refuses characters that make the plan, README or scripts read differently from what runs (zero-width and bidi controls, line and paragraph separators, byte order marks, other format characters)")
}

fn char_name(c: char) -> &'static str {
    match u32::from(c) {
        0x200B => "zero width space",
        0x200C => "zero width non-joiner",
        0x200D => "zero width joiner",
        0x200E | 0x200F | 0x061C => "a direction mark",
        0x202A..=0x202E | 0x2066..=0x2069 => "a bidirectional control",
        0x2028 => "line separator",
        0x2029 => "paragraph separator",
        0xFEFF => "byte order mark",
        0x00AD => "soft hyphen",
        0x2060 => "word joiner",
        _ if c.is_control() => "a control character",
        _ => "a format character",
    }
}

/// The first offset where brackets, braces and dotted keys nest deeper
/// than [`MAX_DEPTH`], outside strings and comments.
fn too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut dots = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\n' => dots = 0,
            q @ (b'"' | b'\'') => {
                let triple = b[i..].starts_with(&[q, q, q]);
                i += if triple { 3 } else { 1 };
                while i < b.len() {
                    if q == b'"' && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if triple && b[i..].starts_with(&[q, q, q]) {
                        i += 3;
                        // A closing run may hold up to two more quotes.
                        while i < b.len() && b[i] == q {
                            i += 1;
                        }
                        break;
                    }
                    if !triple && (b[i] == q || b[i] == b'\n') {
                        i += 1;
                        break;
                    }
                    i += 1;
                }
                continue;
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'.' => dots += 1,
            b'=' | b',' => dots = 0,
            _ => {}
        }
        if depth + dots > MAX_DEPTH {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth() {
        assert_eq!(too_deep("a = [[1]]\n[[nodes]]\nb.c.d = 1\n"), None);
        assert!(too_deep(&format!("a = {}", "[".repeat(40))).is_some());
        assert!(too_deep(&format!("a{} = 1", ".a".repeat(40))).is_some());
        assert_eq!(too_deep(&format!("a = \"{}\"", "[".repeat(40))), None);
        assert_eq!(too_deep(&format!("# {}\na = 1", "[".repeat(40))), None);
        assert_eq!(too_deep(&format!("a = '''{}'''", "{".repeat(40))), None);
    }
}
