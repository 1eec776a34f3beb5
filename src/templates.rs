//! The template registry and the minijinja environment.
//!
//! Templates are embedded at compile time (a rewind binary needs no files
//! beside it). `.sh` templates auto-escape every `{{ value }}` with
//! [`crate::shell::quote`]: a template cannot forget to quote, and a value can
//! only be printed raw if Rust code marks it safe (the library text, which is
//! rewind's own code). `.md` templates escape every value as Markdown text
//! ([`crate::escape::md_text`]); the filters `code`, `cell_code`, `prose`,
//! `cell_prose` and `anchor` print it for another Markdown context instead,
//! and `sh` quotes a word of a command shown to the operator.
//!
//! The Ansible playbook's templates (`templates/ansible/`) have their own
//! environment ([`ansible_environment`]), whose delimiters are `<< >>`,
//! `<% %>` and `<# #>`, so that Ansible's own `{{ }}` expressions are text
//! there. Its `.yml` templates print every value as a YAML double-quoted
//! scalar ([`crate::escape::yaml_quoted`]), which also refuses a value that
//! Ansible would evaluate as a template.

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};

use crate::{escape, shell};

/// `(name, source)` of a template whose file is `templates/<name>.j2`.
macro_rules! runbook {
    ($name:literal) => {
        ($name, include_str!(concat!("../templates/", $name, ".j2")))
    };
}

/// `(name, source)` of every template.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("script.sh", include_str!("../templates/script.sh.j2")),
    ("lib.sh", include_str!("../templates/lib.sh.j2")),
    ("README.md", include_str!("../templates/README.md.j2")),
    ("verify.sh", include_str!("../templates/verify.sh.j2")),
    ("host.sh", include_str!("../templates/host.sh.j2")),
    ("explain.md", include_str!("../templates/explain.md.j2")),
    ("explain.txt", include_str!("../templates/explain.txt.j2")),
    ("init.toml", include_str!("../templates/init.toml.j2")),
    (
        "capture/README.md",
        include_str!("../templates/capture/README.md.j2"),
    ),
    // The runbook's words (README.md includes them): the layout of a step's
    // section, then per distribution one template per step, the checks by
    // hand, the verification, the cleanup rows and shared macros.
    runbook!("runbook/step.md"),
    runbook!("runbook/k3s/cleanup.md"),
    runbook!("runbook/k3s/install.md"),
    runbook!("runbook/k3s/manual.md"),
    runbook!("runbook/k3s/steps-intro.md"),
    runbook!("runbook/k3s/verification.md"),
    runbook!("runbook/rke2/cleanup.md"),
    runbook!("runbook/rke2/drain.md"),
    runbook!("runbook/rke2/install.md"),
    runbook!("runbook/rke2/macros.md"),
    runbook!("runbook/rke2/manual.md"),
    runbook!("runbook/rke2/preflight.md"),
    runbook!("runbook/rke2/rejoin.md"),
    runbook!("runbook/rke2/restore-db.md"),
    runbook!("runbook/rke2/restore-etcd.md"),
    runbook!("runbook/rke2/restore-sqlite.md"),
    runbook!("runbook/rke2/start-agents.md"),
    runbook!("runbook/rke2/start-servers.md"),
    runbook!("runbook/rke2/start.md"),
    runbook!("runbook/rke2/stop.md"),
    runbook!("runbook/rke2/suspend-upgrades.md"),
    runbook!("runbook/rke2/verification.md"),
    runbook!("runbook/rke2/verify.md"),
    runbook!("runbook/rke1/cleanup.md"),
    runbook!("runbook/rke1/cluster-file.md"),
    runbook!("runbook/rke1/fetch-snapshot.md"),
    runbook!("runbook/rke1/macros.md"),
    runbook!("runbook/rke1/manual.md"),
    runbook!("runbook/rke1/preflight.md"),
    runbook!("runbook/rke1/restart.md"),
    runbook!("runbook/rke1/restore.md"),
    runbook!("runbook/rke1/save-current.md"),
    runbook!("runbook/rke1/set-image.md"),
    runbook!("runbook/rke1/up.md"),
    runbook!("runbook/rke1/verification.md"),
    runbook!("runbook/rke1/verify.md"),
];

/// `(name, source)` of the templates of the bundle's `ansible/` folder
/// (rendered by [`ansible_environment`]).
pub const ANSIBLE_TEMPLATES: &[(&str, &str)] = &[
    (
        "ansible/rollback.yml",
        include_str!("../templates/ansible/rollback.yml.j2"),
    ),
    (
        "ansible/inventory.example.yml",
        include_str!("../templates/ansible/inventory.example.yml.j2"),
    ),
    (
        "ansible/README.md",
        include_str!("../templates/ansible/README.md.j2"),
    ),
];

/// `(fragment, source)` of the shell library, inserted verbatim into scripts.
pub const LIBRARY: &[(&str, &str)] = &[
    ("core", include_str!("../templates/lib/core.sh")),
    ("capture", include_str!("../templates/lib/capture.sh")),
    ("docker", include_str!("../templates/lib/docker.sh")),
    ("etcd", include_str!("../templates/lib/etcd.sh")),
    ("files", include_str!("../templates/lib/files.sh")),
    ("host", include_str!("../templates/lib/host.sh")),
    ("install", include_str!("../templates/lib/install.sh")),
    ("k3s", include_str!("../templates/lib/k3s.sh")),
    ("kube", include_str!("../templates/lib/kube.sh")),
    ("mysql", include_str!("../templates/lib/mysql.sh")),
    ("postgres", include_str!("../templates/lib/postgres.sh")),
    ("rancher", include_str!("../templates/lib/rancher.sh")),
    ("rke1", include_str!("../templates/lib/rke1.sh")),
    ("rke2", include_str!("../templates/lib/rke2.sh")),
    ("sqlite", include_str!("../templates/lib/sqlite.sh")),
    ("token", include_str!("../templates/lib/token.sh")),
];

/// The source of a library fragment.
pub fn library(name: &str) -> &'static str {
    LIBRARY.iter().find(|(n, _)| *n == name).map_or_else(
        || panic!("bug in rewind: unknown library fragment {name}"),
        |(_, s)| *s,
    )
}

/// A strict environment with every template loaded.
pub fn environment() -> Environment<'static> {
    let mut syntax = minijinja::syntax::SyntaxConfig::builder();
    let mut env = configured(&mut syntax);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("bug in rewind: template {name} does not parse: {e}"));
    }
    env
}

/// The environment of the `ansible/` templates: the same escaping and
/// filters, with the delimiters `<< >>`, `<% %>` and `<# #>` (Ansible's
/// `{{ }}` is text there).
pub fn ansible_environment() -> Environment<'static> {
    let mut syntax = minijinja::syntax::SyntaxConfig::builder();
    syntax
        .variable_delimiters("<<", ">>")
        .block_delimiters("<%", "%>")
        .comment_delimiters("<#", "#>");
    let mut env = configured(&mut syntax);
    for (name, source) in ANSIBLE_TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("bug in rewind: template {name} does not parse: {e}"));
    }
    env
}

/// An environment with rewind's escaping, formatter and filters, and no
/// template.
fn configured(syntax: &mut minijinja::syntax::SyntaxConfigBuilder) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_syntax(
        syntax
            .keep_trailing_newline(true)
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("bug in rewind: syntax config"),
    );
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".sh") {
            AutoEscape::Custom("sh".into())
        } else if name.ends_with(".md") {
            AutoEscape::Custom("md".into())
        } else if name.ends_with(".yml") {
            AutoEscape::Custom("yml".into())
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(|out, state, value| {
        if let AutoEscape::Custom(ctx) = state.auto_escape()
            && ctx == "yml"
        {
            if value.is_safe() {
                return out.write_str(value.as_str().unwrap_or_default()).map_err(Error::from);
            }
            if value.is_number() || value.kind() == minijinja::value::ValueKind::Bool {
                // A YAML number or boolean, as itself.
                return out.write_str(&value.to_string()).map_err(Error::from);
            }
            let text = printable(value, "the Ansible playbook")?;
            return out
                .write_str(&escape::yaml_quoted(&text).map_err(|e| refused(&e))?)
                .map_err(Error::from);
        }
        if let AutoEscape::Custom(ctx) = state.auto_escape()
            && ctx == "md"
        {
            if value.is_safe() {
                return out.write_str(value.as_str().unwrap_or_default()).map_err(Error::from);
            }
            let text = printable(value, "a runbook")?;
            return out.write_str(&escape::md_text(&text).map_err(|e| refused(&e))?).map_err(Error::from);
        }
        if let AutoEscape::Custom(_) = state.auto_escape() {
            if value.is_safe() {
                return out.write_str(value.as_str().unwrap_or_default()).map_err(Error::from);
            }
            let text = match value.as_str() {
                Some(s) => s.to_owned(),
                None if value.is_number() || value.kind() == minijinja::value::ValueKind::Bool => {
                    value.to_string()
                }
                None => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("bug in rewind: only strings and numbers may be printed into a script, not {}", value.kind()),
                    ));
                }
            };
            out.write_str(&shell::quote(&text)).map_err(Error::from)
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    // Nothing in a template may mark a value safe: only Rust code can
    // (`trusted`), for rewind's own text (the library code, the diagram).
    env.remove_filter("safe");
    env.add_filter("comment", comment);
    // A template's if-chain over a planner's enum ends with `fail(...)`: a
    // variant without words is a bug, not a silently missing line.
    env.add_function("fail", |what: String| -> Result<Value, Error> {
        Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("bug in rewind: {what}"),
        ))
    });
    // Markdown by context (`escape`): each returns text marked safe.
    env.add_filter("code", |v: &Value| md(v, |s| escape::md_code(s, false)));
    env.add_filter("cell_code", |v: &Value| md(v, |s| escape::md_code(s, true)));
    env.add_filter("prose", |v: &Value| md(v, |s| escape::md_prose(s, false)));
    env.add_filter("cell_prose", |v: &Value| {
        md(v, |s| escape::md_prose(s, true))
    });
    env.add_filter("anchor", |v: &Value| {
        md(v, |s| {
            if !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                Ok(s.to_owned())
            } else {
                Err(escape::Unprintable(format!("not an anchor: {s}")))
            }
        })
    });
    // A word as the operator would type it in a shell (not marked safe:
    // the context escapes it next, e.g. `{{ ("sh " ~ (p | sh)) | code }}`).
    env.add_filter("sh", |v: &Value| -> Result<Value, Error> {
        Ok(Value::from(shell::quote(&printable(v, "a command")?)))
    });
    env
}

/// A whole `#` comment holding the value: `{{ title | comment }}` prints
/// `# <title>`, with control characters (which could end the comment and
/// start code) as spaces. The filter writes the `#` itself, so whatever
/// position it is used in, what it prints is a comment, never code.
fn comment(value: &Value) -> Value {
    let text = value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned);
    let mut out = String::from("# ");
    out.extend(text.chars().map(|c| if c.is_control() { ' ' } else { c }));
    Value::from_safe_string(out)
}

/// The text of a string, number or boolean; anything else is a bug.
fn printable(value: &Value, into: &str) -> Result<String, Error> {
    match value.as_str() {
        Some(s) => Ok(s.to_owned()),
        None if value.is_number() || value.kind() == minijinja::value::ValueKind::Bool => {
            Ok(value.to_string())
        }
        None => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "bug in rewind: only strings and numbers may be printed into {into}, not {}",
                value.kind()
            ),
        )),
    }
}

fn refused(e: &escape::Unprintable) -> Error {
    Error::new(ErrorKind::InvalidOperation, e.to_string())
}

/// Applies a Markdown escaping and marks the result safe.
fn md(
    value: &Value,
    f: impl Fn(&str) -> Result<String, escape::Unprintable>,
) -> Result<Value, Error> {
    let text = printable(value, "a runbook")?;
    Ok(Value::from_safe_string(f(&text).map_err(|e| refused(&e))?))
}

/// Marks rewind's own text (never plan values) as safe to print raw.
pub fn trusted(text: String) -> Value {
    Value::from_safe_string(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_templates_quote_every_value() {
        let mut env = environment();
        env.add_template("t.sh", "x={{ v }}").unwrap();
        let out = env
            .get_template("t.sh")
            .unwrap()
            .render(minijinja::context! { v => "$(rm -rf /)'" })
            .unwrap();
        assert_eq!(out, "x='$(rm -rf /)'\"'\"''");
    }

    #[test]
    fn sh_templates_refuse_lists() {
        let mut env = environment();
        env.add_template("t.sh", "x={{ v }}").unwrap();
        let r = env
            .get_template("t.sh")
            .unwrap()
            .render(minijinja::context! { v => vec!["a"] });
        assert!(r.is_err());
    }

    /// Where a `{{ … }}` of a `.sh` template stands, by a small lexer of
    /// the shell text around it (minijinja tags and comments skipped).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Context {
        Word,
        SingleQuoted,
        DoubleQuoted,
        Comment,
        HereDoc,
    }

    fn contexts(template: &str) -> Vec<(usize, Context)> {
        let b = template.as_bytes();
        let mut out = Vec::new();
        let mut state = Context::Word;
        let mut heredoc: Option<String> = None;
        let mut pending: Option<String> = None;
        let mut line_start = true;
        let mut i = 0;
        while i < b.len() {
            let rest = &template[i..];
            if rest.starts_with("{%") || rest.starts_with("{#") {
                let close = if rest.starts_with("{%") { "%}" } else { "#}" };
                i += rest.find(close).expect("closed tag") + 2;
                continue;
            }
            if rest.starts_with("{{") {
                let line = template[..i].matches('\n').count() + 1;
                out.push((
                    line,
                    if heredoc.is_some() {
                        Context::HereDoc
                    } else {
                        state
                    },
                ));
                i += rest.find("}}").expect("closed value") + 2;
                line_start = false;
                continue;
            }
            let c = b[i];
            if let Some(end) = &heredoc {
                if line_start && rest.trim_start_matches('\t').starts_with(end.as_str()) {
                    heredoc = None;
                }
                line_start = c == b'\n';
                i += 1;
                continue;
            }
            match (state, c) {
                (Context::Word | Context::DoubleQuoted, b'\\') => i += 1,
                (Context::Word, b'\'') => state = Context::SingleQuoted,
                (Context::Word, b'"') => state = Context::DoubleQuoted,
                (Context::Word, b'#') if i == 0 || b[i - 1].is_ascii_whitespace() || line_start => {
                    state = Context::Comment;
                }
                (Context::Word, b'<') if rest.starts_with("<<") && !rest.starts_with("<<<") => {
                    let word: String = rest[2..]
                        .trim_start_matches('-')
                        .trim_start()
                        .chars()
                        .take_while(|c| !c.is_whitespace())
                        .filter(|c| !matches!(c, '\'' | '"' | '\\'))
                        .collect();
                    pending = Some(word);
                    i += 1;
                }
                (Context::SingleQuoted, b'\'') | (Context::DoubleQuoted, b'"') => {
                    state = Context::Word;
                }
                (Context::Comment, b'\n') => state = Context::Word,
                _ => {}
            }
            if c == b'\n' && state == Context::Word {
                heredoc = pending.take();
            }
            line_start = c == b'\n';
            i += 1;
        }
        out
    }

    #[test]
    fn every_value_of_a_sh_template_is_a_plain_word() {
        let mut problems = Vec::new();
        for (name, source) in TEMPLATES.iter().filter(|(n, _)| n.ends_with(".sh")) {
            for (line, context) in contexts(source) {
                if context != Context::Word {
                    problems.push(format!(
                        "templates/{name}.j2:{line}: a value in {context:?}"
                    ));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn the_context_lexer_sees_quotes_heredocs_and_comments() {
        let found = |t: &str| contexts(t).into_iter().map(|(_, c)| c).collect::<Vec<_>>();
        assert_eq!(found("x={{ v }}"), [Context::Word]);
        assert_eq!(found("x='{{ v }}'"), [Context::SingleQuoted]);
        assert_eq!(found("x=\"a {{ v }}\""), [Context::DoubleQuoted]);
        assert_eq!(
            found("# {{ v }}\ny={{ w }}"),
            [Context::Comment, Context::Word]
        );
        assert_eq!(
            found("cat <<EOF\n{{ v }}\nEOF\nx={{ w }}"),
            [Context::HereDoc, Context::Word]
        );
        assert_eq!(found("a=\"$(b \"c\")\" {{ v }}"), [Context::Word]);
    }

    #[test]
    fn no_template_can_mark_a_value_safe_and_comment_writes_its_own_hash() {
        let mut env = environment();
        env.add_template("t.sh", "x={{ v | safe }}").unwrap();
        assert!(
            env.get_template("t.sh")
                .unwrap()
                .render(minijinja::context! { v => "$(id)" })
                .is_err()
        );
        env.add_template("c.sh", "x={{ v | comment }}").unwrap();
        let out = env
            .get_template("c.sh")
            .unwrap()
            .render(minijinja::context! { v => "a\nrm x" })
            .unwrap();
        assert_eq!(out, "x=# a rm x");
    }

    #[test]
    fn yml_templates_quote_every_value_as_one_yaml_scalar() {
        let mut env = ansible_environment();
        env.add_template("t.yml", "name: << v >>\nn: << n >>\n")
            .unwrap();
        let t = env.get_template("t.yml").unwrap();
        let out = t
            .render(minijinja::context! { v => "a: b\n- c # \"d\"", n => 3 })
            .unwrap();
        assert_eq!(out, "name: \"a: b\\u000A- c # \\\"d\\\"\"\nn: 3\n");
        // Ansible's own expressions are text in these templates.
        let mut env = ansible_environment();
        env.add_template("u.yml", "x: \"{{ y }}\" << v >>").unwrap();
        let out = env
            .get_template("u.yml")
            .unwrap()
            .render(minijinja::context! { v => "z" })
            .unwrap();
        assert_eq!(out, "x: \"{{ y }}\" \"z\"");
        // A value Ansible would evaluate is refused.
        let mut env = ansible_environment();
        env.add_template("t.yml", "name: << v >>\nn: << n >>\n")
            .unwrap();
        let t = env.get_template("t.yml").unwrap();
        assert!(
            t.render(minijinja::context! { v => "{{ lookup('pipe', 'id') }}", n => 1 })
                .is_err()
        );
        assert!(
            t.render(minijinja::context! { v => vec!["a"], n => 1 })
                .is_err()
        );
    }

    #[test]
    fn every_template_and_fragment_loads() {
        let env = environment();
        for (name, _) in TEMPLATES {
            env.get_template(name).unwrap();
        }
        let env = ansible_environment();
        for (name, _) in ANSIBLE_TEMPLATES {
            env.get_template(name).unwrap();
        }
        for (name, src) in LIBRARY {
            assert!(!src.trim().is_empty(), "{name} is empty");
        }
    }

    #[test]
    fn a_planner_enum_without_words_is_a_bug() {
        let env = environment();
        let err = env
            .get_template("runbook/rke2/manual.md")
            .unwrap()
            .render(minijinja::context! {
                plan => minijinja::context! { manual_checks => vec!["no-such-check"] },
            })
            .unwrap_err();
        assert!(
            format!("{err:#}")
                .contains("bug in rewind: no words for the RKE2 check by hand no-such-check"),
            "{err:#}"
        );
    }

    /// The runbook's own words are Markdown as they are written: outside
    /// code spans they hold no character that starts markup unless it is
    /// escaped (`\*`, `&lt;`), so what a template says reads as itself. Plan
    /// values are escaped by the auto-escape and the filters; the words by
    /// whoever writes them, and this is where a slip shows.
    #[test]
    fn runbook_words_hold_no_stray_markup() {
        let mut problems = Vec::new();
        for (name, source) in TEMPLATES.iter().filter(|(n, _)| n.starts_with("runbook/")) {
            for (i, line) in words(source).lines().enumerate() {
                // Table rows: the cell separators are the template's markup.
                let line = match line.strip_prefix("| ") {
                    Some(row) => row.trim_end_matches(" |").replace(" | ", " X "),
                    None => line.to_owned(),
                };
                for (k, part) in line.split('`').enumerate() {
                    if k % 2 == 0
                        && let Some(why) = stray_markup(part)
                    {
                        problems.push(format!("{name}:{}: {why} in {part:?}", i + 1));
                    }
                }
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }

    /// The text a template writes itself: comments and tags removed, every
    /// `{{ … }}` (a value, escaped where it is printed) an `X`.
    fn words(source: &str) -> String {
        let mut out = String::new();
        let mut rest = source;
        while let Some(i) = rest.find('{') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            let close = match tail.get(..2) {
                Some("{#") => "#}",
                Some("{%") => "%}",
                Some("{{") => "}}",
                _ => {
                    out.push('{');
                    rest = &tail[1..];
                    continue;
                }
            };
            let end = tail.find(close).expect("an unclosed tag") + 2;
            if close == "}}" {
                out.push('X');
            }
            rest = &tail[end..];
        }
        out.push_str(rest);
        out
    }

    /// Why `text` (outside code spans) would not read as itself.
    fn stray_markup(text: &str) -> Option<String> {
        let c: Vec<char> = text.chars().collect();
        for (j, &ch) in c.iter().enumerate() {
            let escaped = j > 0 && c[j - 1] == '\\';
            let ok = match ch {
                '<' | '>' => false,
                '&' => ["&lt;", "&gt;", "&amp;"]
                    .iter()
                    .any(|e| text[text.char_indices().nth(j).unwrap().0..].starts_with(e)),
                '*' | '[' | ']' | '|' | '~' => escaped,
                '_' => {
                    escaped
                        || (j > 0
                            && c[j - 1].is_alphanumeric()
                            && c.get(j + 1).is_some_and(|n| n.is_alphanumeric()))
                }
                '\\' => c.get(j + 1).is_some_and(char::is_ascii_punctuation),
                _ => true,
            };
            if !ok {
                return Some(format!("{ch:?}"));
            }
        }
        None
    }
}
