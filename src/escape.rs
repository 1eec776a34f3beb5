//! Escaping by context for everything that is not a script: the README and
//! `explain --format markdown` (Markdown text, code spans, table cells),
//! Mermaid labels and the YAML block the RKE1 runbook prints. It is what
//! [`crate::shell::quote`] is for scripts: the Markdown templates print every
//! value through it (their auto-escape formatter and filters, see
//! [`crate::templates`]), so a template cannot forget, and a value that
//! cannot be escaped in its context is an error rather than markup.
//!
//! Validation refuses backquotes and invisible or layout characters in plan
//! values (`validate/text.rs`): the runbook's prose (written by the planner)
//! puts values inside single-backquote code spans, where a backquote could not
//! be escaped.

use std::fmt::Write as _;

/// Why a value cannot be printed in a context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unprintable(pub String);

impl std::fmt::Display for Unprintable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Characters that no Markdown context can hold: line breaks end a list item
/// or a table row; the rest are refused by validation anyway.
fn check_line(s: &str) -> Result<(), Unprintable> {
    match s
        .chars()
        .find(|&c| c.is_control() || crate::sensitive::forbidden(c))
    {
        Some(c) => Err(Unprintable(format!(
            "U+{:04X} cannot be printed in the runbook",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

/// Markdown text (a paragraph, a list item, a heading): every character that
/// could start markup is escaped, so the value reads as itself. Raw HTML
/// becomes entities. An `_` between letters or digits is left alone: it
/// cannot start emphasis there, and `INSTALL_RKE2_TYPE` stays readable.
pub fn md_text(s: &str) -> Result<String, Unprintable> {
    check_line(s)?;
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '_' => {
                let alnum = |j: Option<usize>| {
                    j.and_then(|j| chars.get(j))
                        .is_some_and(|c| c.is_alphanumeric())
                };
                if !(alnum(i.checked_sub(1)) && alnum(Some(i + 1))) {
                    out.push('\\');
                }
                out.push('_');
            }
            '\\' | '`' | '*' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            // Only where a line starts could these start a heading or a
            // list, but a value may be printed at the start of a line.
            '#' | '+' | '-' | '!' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// A Markdown code span holding `s` literally: the fence is one backquote
/// longer than the longest run inside, padded with a space when `s` starts or
/// ends with a backquote. Inside a table cell (`cell`), `|` is written `\|`
/// (GitHub's tables split rows on `|` even inside code spans).
pub fn md_code(s: &str, cell: bool) -> Result<String, Unprintable> {
    check_line(s)?;
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') || s.is_empty() {
        " "
    } else {
        ""
    };
    let body = if cell {
        s.replace('|', "\\|")
    } else {
        s.to_owned()
    };
    Ok(format!("{fence}{pad}{body}{pad}{fence}"))
}

/// Prose written by rewind's planner: text with plan values in
/// single-backquote code spans. The text between spans is escaped as
/// [`md_text`]; the spans are kept (with `|` escaped inside a table cell).
/// An unpaired backquote means a value broke a span: an error.
pub fn md_prose(s: &str, cell: bool) -> Result<String, Unprintable> {
    check_line(s)?;
    let parts: Vec<&str> = s.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return Err(Unprintable(format!(
            "an unpaired backquote in runbook text: {s}"
        )));
    }
    let mut out = String::with_capacity(s.len() + 8);
    for (i, part) in parts.iter().enumerate() {
        if i % 2 == 0 {
            out.push_str(&md_text(part)?);
        } else {
            out.push('`');
            if cell {
                out.push_str(&part.replace('|', "\\|"));
            } else {
                out.push_str(part);
            }
            out.push('`');
        }
    }
    Ok(out)
}

/// Text inside a Mermaid label `["…"]`: `#` first (it starts Mermaid's
/// entity codes), then quotes and angle brackets, become entity codes.
pub fn mermaid_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '`' => out.push_str("#96;"),
            c if c.is_control() || crate::sensitive::forbidden(c) => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A YAML scalar: bare when made of characters YAML never reads as
/// syntax, else double-quoted with every special character escaped
/// (including U+0085, U+2028 and U+2029, which YAML treats as line breaks).
pub fn yaml_scalar(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
    if bare {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control()
                || crate::sensitive::forbidden(c)
                || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') =>
            {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A YAML double-quoted scalar in the JSON style (`"…"` with `\"`, `\\` and
/// `\uXXXX` escapes), for the Ansible playbook of a bundle: every value of
/// the plan printed into a `.yml` template is one such scalar, whatever it
/// holds (`:`, `#`, `- `, `&`, `*`, `!`, quotes, line breaks). Everything
/// YAML does not print as itself is escaped: control characters, U+0085,
/// U+2028, U+2029 (line breaks to a YAML 1.1 reader such as Ansible's), the
/// BOM and the rest outside YAML's printable set. Text holding a Jinja
/// delimiter (`{{`, `{%`, `{#`) is refused: Ansible would evaluate it as a
/// template, on the control node, whatever the quoting.
pub fn yaml_quoted(s: &str) -> Result<String, Unprintable> {
    if let Some(d) = ["{{", "{%", "{#"].into_iter().find(|d| s.contains(d)) {
        return Err(Unprintable(format!(
            "`{d}` cannot be printed in the Ansible playbook (Ansible would run it as a template): {s:?}"
        )));
    }
    let printable = |c: char| {
        matches!(u32::from(c), 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x1_0000..)
            && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if printable(c) => out.push(c),
            c => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
        }
    }
    out.push('"');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_start_markup() {
        assert_eq!(
            md_text("/data/x` | **run** <b>&").unwrap(),
            "/data/x\\` \\| \\*\\*run\\*\\* &lt;b&gt;&amp;"
        );
        assert_eq!(
            md_text("INSTALL_RKE2_TYPE=agent").unwrap(),
            "INSTALL_RKE2_TYPE=agent"
        );
        assert_eq!(md_text("_x_").unwrap(), "\\_x\\_");
        assert_eq!(md_text("# h").unwrap(), "\\# h");
        assert!(md_text("a\nb").is_err());
        assert!(md_text("a\u{2028}b").is_err());
    }

    #[test]
    fn code_spans_outgrow_backquotes() {
        assert_eq!(md_code("a", false).unwrap(), "`a`");
        assert_eq!(md_code("a`b", false).unwrap(), "``a`b``");
        assert_eq!(md_code("`a", false).unwrap(), "`` `a ``");
        assert_eq!(md_code("a|b", true).unwrap(), "`a\\|b`");
    }

    #[test]
    fn prose_keeps_spans_and_escapes_the_rest() {
        assert_eq!(
            md_prose("moves `/a|b` aside <now>", false).unwrap(),
            "moves `/a|b` aside &lt;now&gt;"
        );
        assert_eq!(md_prose("`/a|b`", true).unwrap(), "`/a\\|b`");
        assert!(md_prose("moves `/data/x` | **run** | `y` aside`", false).is_err());
    }

    #[test]
    fn yaml() {
        assert_eq!(yaml_scalar("root"), "root");
        assert_eq!(yaml_scalar("a: b"), "\"a: b\"");
        assert_eq!(
            yaml_scalar("x\u{2028}- address: 6"),
            "\"x\\u2028- address: 6\""
        );
        assert_eq!(yaml_scalar("\"q\"\\"), "\"\\\"q\\\"\\\\\"");
        assert_eq!(yaml_scalar(""), "\"\"");
    }

    #[test]
    fn yaml_quoted_scalars_read_back_as_the_value() {
        let hostile = [
            "server-1",
            "",
            "a: b # c",
            "- item",
            "&anchor *alias !tag %directive @at `tick` |pipe >fold",
            "quote \" and 'single' and \\ backslash",
            "line\nbreak\r\ttab",
            "yes",
            "0x10",
            "~",
            "NEL\u{85} LS\u{2028} PS\u{2029} BOM\u{FEFF} DEL\u{7F} C1\u{9B}",
            "$(rm -rf /); ${x} `id`",
            "{ not: jinja } [a, b]",
            "ünïcödé ☃ 𝄞",
        ];
        for v in hostile {
            let q = yaml_quoted(v).unwrap();
            assert!(q.starts_with('"') && q.ends_with('"'), "{q}");
            assert!(!q.contains('\n') && !q.contains('\u{2028}'), "{q}");
            // As a value and as a key of a mapping, in a YAML document.
            let doc = format!("k: {q}\n{q}: v\n");
            let back: std::collections::BTreeMap<String, String> =
                serde_saphyr::from_str(&doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert_eq!(back.get("k").map(String::as_str), Some(v), "{doc}");
            assert_eq!(back.get(v).map(String::as_str), Some("v"), "{doc}");
            // JSON reads it too (the JSON style is a subset of YAML's).
            let json: String = serde_json::from_str(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
            assert_eq!(json, v);
        }
        for v in ["{{ lookup('pipe', 'id') }}", "a {% if %}", "{# c #}"] {
            assert!(yaml_quoted(v).is_err(), "{v}");
        }
    }

    #[test]
    fn mermaid() {
        assert_eq!(
            mermaid_label("a \"b\" #quot; <c>"),
            "a #quot;b#quot; #35;quot; #lt;c#gt;"
        );
    }
}
