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

/// `(name, source)` of every template.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("script.sh", include_str!("../templates/script.sh.j2")),
    ("lib.sh", include_str!("../templates/lib.sh.j2")),
    ("README.md", include_str!("../templates/README.md.j2")),
    ("verify.sh", include_str!("../templates/verify.sh.j2")),
    ("explain.md", include_str!("../templates/explain.md.j2")),
    ("explain.txt", include_str!("../templates/explain.txt.j2")),
    ("init.toml", include_str!("../templates/init.toml.j2")),
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
    ("docker", include_str!("../templates/lib/docker.sh")),
    ("etcd", include_str!("../templates/lib/etcd.sh")),
    ("files", include_str!("../templates/lib/files.sh")),
    ("install", include_str!("../templates/lib/install.sh")),
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
    LIBRARY
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .unwrap_or_else(|| panic!("bug in rewind: unknown library fragment {name}"))
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
                .write_str(&escape::yaml_quoted(&text).map_err(refused)?)
                .map_err(Error::from);
        }
        if let AutoEscape::Custom(ctx) = state.auto_escape()
            && ctx == "md"
        {
            if value.is_safe() {
                return out.write_str(value.as_str().unwrap_or_default()).map_err(Error::from);
            }
            let text = printable(value, "a runbook")?;
            return out.write_str(&escape::md_text(&text).map_err(refused)?).map_err(Error::from);
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
    env.add_filter("comment", comment);
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

/// Prints a value inside a `#` comment: control characters (which could end
/// the comment and start code) become spaces; nothing else is needed there.
fn comment(value: &Value) -> Value {
    let text = value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned);
    Value::from_safe_string(
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
    )
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

fn refused(e: escape::Unprintable) -> Error {
    Error::new(ErrorKind::InvalidOperation, e.to_string())
}

/// Applies a Markdown escaping and marks the result safe.
fn md(
    value: &Value,
    f: impl Fn(&str) -> Result<String, escape::Unprintable>,
) -> Result<Value, Error> {
    let text = printable(value, "a runbook")?;
    Ok(Value::from_safe_string(f(&text).map_err(refused)?))
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
}
