//! Turns the toml crate's errors (bad syntax, unknown key, wrong type) into
//! diagnostics with their own codes and a `help:` that says what to write.
//!
//! serde stops at the first such error, so a plan with one of these gets
//! exactly one diagnostic; the rules of docs/plan-format.md ("Diagnostic codes") run only once the
//! text has the shape of a plan.

use crate::diagnostic::{Code, Diagnostic};

/// The diagnostic for a TOML or shape error, pointing at its span (the
/// start of the plan when the reader gives none: every rejection has a
/// location). `text` is the plan, to mask the value of an unknown key whose
/// name suggests a secret.
pub(super) fn diagnostic(e: &toml::de::Error, text: &str) -> Diagnostic {
    let message = e.message().trim_end();
    let span = Some(e.span().unwrap_or(0..0));
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let mut quoted = backquoted(rest);
        let key = quoted.next().unwrap_or_default();
        let allowed: Vec<&str> = quoted.collect();
        let help = match closest(key, &allowed) {
            Some(near) => format!("did you mean `{near}`? docs/plan-format.md lists every key"),
            None if allowed.is_empty() => {
                "remove it: this table takes no keys; docs/plan-format.md lists every key".into()
            }
            None => format!(
                "remove it or fix its spelling; this table's keys are {}",
                allowed
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let d = Diagnostic::error(
            Code::UnknownKey,
            span.clone(),
            format!("unknown key `{key}`"),
        )
        .label("not a key of this table")
        .help(help);
        if crate::sensitive::secret_key(key)
            && let Some(span) = span
        {
            // Mask everything after the key on its line: its value is not
            // printed, whatever it is.
            let end = text[span.end.min(text.len())..]
                .find('\n')
                .map_or(text.len(), |i| span.end + i);
            return d.masked(span.end..end);
        }
        return d;
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (found, expected) = rest.rsplit_once(", expected ").unwrap_or((rest, ""));
        let (what, help) = match expected {
            "a string" => ("a string", "put the value in double quotes: `key = \"…\"`"),
            "a boolean" => ("true or false", "write `true` or `false`, without quotes"),
            "i64" => ("a whole number", "write a whole number without quotes"),
            "a sequence" => (
                "a list",
                "write a list in brackets, e.g. `roles = [\"etcd\", \"controlplane\"]`",
            ),
            _ => (
                "another type",
                "write a value of the type docs/plan-format.md gives for this key",
            ),
        };
        return Diagnostic::error(
            Code::Type,
            span,
            format!("wrong type: {found}, expected {what}"),
        )
        .label(format!("expected {what}"))
        .help(help);
    }
    if message.contains("recursion") || message.contains("recurse") {
        return Diagnostic::error(Code::Limits, span, format!("TOML syntax: {message}"))
            .label("nested too deep")
            .help("a plan nests at most three levels: remove the extra brackets, braces or dotted keys");
    }
    if message.contains("duplicate") {
        return Diagnostic::error(Code::Syntax, span, format!("TOML syntax: {message}"))
            .label("already defined above")
            .help("write each key once per table, and each [table] header once: remove or merge the repeated one");
    }
    Diagnostic::error(Code::Syntax, span, format!("TOML syntax: {message}"))
        .label("the plan is not valid TOML here")
        .help("fix the TOML at this position: strings in double quotes, one `key = value` per line, each table header once; docs/plan-format.md shows a full plan")
}

/// The words written between backquotes, in order.
fn backquoted(s: &str) -> impl Iterator<Item = &str> {
    s.split('`').skip(1).step_by(2)
}

/// The allowed key nearest to `key`: at most two edits away, or the same
/// words in a different case or separator (`taken_on`, `takenOn`).
fn closest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let fold = |s: &str| {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect::<String>()
    };
    if let Some(same) = allowed.iter().find(|a| fold(a) == fold(key)) {
        return Some(same);
    }
    allowed
        .iter()
        .map(|a| (distance(key, a), *a))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, a)| a)
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_keys() {
        let keys = ["name", "distribution", "current-version", "target-version"];
        assert_eq!(closest("nmae", &keys), Some("name"));
        assert_eq!(closest("target_version", &keys), Some("target-version"));
        assert_eq!(closest("currentVersion", &keys), Some("current-version"));
        assert_eq!(closest("bogus", &keys), None);
    }

    #[test]
    fn edit_distance() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("same", "same"), 0);
    }
}
