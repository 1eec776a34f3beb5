//! `rewind init`: a commented starting plan for one datastore, online or
//! air-gapped. Every value rewind cannot guess is a `<FILL: …>` marker that
//! `rewind check` rejects (it is not a version, path or host name), so the
//! first `check` lists exactly what is left to fill in; once filled in, the
//! plan passes.
//!
//! `init --from-nodes` ([`crate::init_nodes`]) and `init --from-rke`
//! ([`crate::init_rke`]) import what the cluster already says (nodes, roles,
//! versions, the init server, the RKE1 cluster file's nodes) instead, and
//! leave `<FILL: …>` only where the source cannot tell. The helpers below are
//! what both importers write with: TOML strings quoted one way, comments
//! that cannot end early, and errors that name the file and line.

use std::fmt;

use crate::choice::DatastoreKind;
use crate::model::Flavor;
use crate::templates;

/// The start of every value the user must replace.
pub const FILL: &str = "<FILL: ";

/// What RKE2 and K3s write in place of a secret in a node's annotations.
pub const MASKED: &str = "********";

/// The steps at the top of every imported plan (the same as `init`'s).
pub const STEPS: &str = "\n\
1. Replace every value marked <FILL: ...> (and delete what you do not need).\n\
2. Run `rewind check THIS-FILE`: it names every value still missing or wrong.\n\
3. Run `rewind compile THIS-FILE --out DIR` and read DIR/README.md.\n";

/// The starting plan for `datastore` (a word of [`DatastoreKind`]).
pub fn plan(datastore: &str, airgap: bool) -> String {
    plan_for(datastore, airgap, &Flavor::RKE2)
}

/// The starting plan of a `flavor` (RKE2 or K3s) cluster for `datastore`.
pub fn plan_for(datastore: &str, airgap: bool, f: &Flavor) -> String {
    let datastore = DatastoreKind::parse(datastore)
        .unwrap_or_else(|| panic!("bug in rewind: unknown datastore {datastore}"));
    templates::environment()
        .get_template("init.toml")
        .and_then(|t| t.render(minijinja::context! { datastore => datastore.as_str(), airgap, f => minijinja::Value::from(minijinja::value::Serde(f)) }))
        .unwrap_or_else(|e| panic!("bug in rewind: init template: {e:#}"))
}

/// A plan imported from a cluster's own description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The plan text (TOML with comments).
    pub plan: String,
    /// What the operator should know before filling it in (printed on
    /// stderr, one `note:` line each): mixed versions, no init server, …
    pub notes: Vec<String>,
}

/// Why an input file cannot be imported. Nothing is written then.
///
/// The message never quotes the input's text: a cluster file holds S3 keys
/// and SSH key paths, a node list masked tokens, and an error must not be
/// the way one of them reaches a terminal or a CI log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// The file as named on the command line.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known (only with a line).
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub help: String,
}

impl ImportError {
    /// An error about the whole file.
    pub fn new(file: &str, message: impl Into<String>, help: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: None,
            column: None,
            message: message.into(),
            help: help.into(),
        }
    }

    /// Points the error at `line` (and `column`, if known).
    #[must_use]
    pub fn at(mut self, line: usize, column: Option<usize>) -> Self {
        if line > 0 {
            self.line = Some(line);
            self.column = column.filter(|c| *c > 0);
        }
        self
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ImportError {}

/// `s` as a TOML basic string, quotes included.
pub fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text that is safe inside a `#` comment: control characters (a newline
/// would end the comment and start a key) become spaces.
pub fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A plan being written, line by line.
#[derive(Debug, Default)]
pub struct PlanText {
    text: String,
}

impl PlanText {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// One `# …` line per line of `text`; an empty `text` writes `#`.
    pub fn comment(&mut self, text: &str) -> &mut Self {
        for line in text.split('\n') {
            let line = comment_text(line);
            if line.is_empty() {
                self.text.push_str("#\n");
            } else {
                self.text.push_str("# ");
                self.text.push_str(&line);
                self.text.push('\n');
            }
        }
        self
    }

    /// `text` as one paragraph of `# …` lines, words wrapped at 80 columns
    /// (line breaks in `text` are spaces; a word longer than a line stays whole).
    pub fn para(&mut self, text: &str) -> &mut Self {
        let mut line = String::new();
        for word in comment_text(text).split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > 78 {
                self.comment(&line);
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        self.comment(&line)
    }

    /// `key = "value"`.
    pub fn string(&mut self, key: &str, value: &str) -> &mut Self {
        self.raw(&format!("{key} = {}", toml_str(value)))
    }

    /// `key = "<FILL: what>"`.
    pub fn fill(&mut self, key: &str, what: &str) -> &mut Self {
        self.string(key, &format!("{FILL}{}>", comment_text(what)))
    }

    /// A line written as it is (rewind's own text, or values already quoted).
    pub fn raw(&mut self, line: &str) -> &mut Self {
        self.text.push_str(line);
        self.text.push('\n');
        self
    }

    /// An empty line.
    pub fn blank(&mut self) -> &mut Self {
        self.text.push('\n');
        self
    }

    /// The finished text. A masked secret can only have come from a bug: it
    /// is refused here, the one place every imported plan passes through.
    pub fn finish(self) -> String {
        assert!(
            !self.text.contains(MASKED),
            "bug in rewind: a masked value reached an imported plan"
        );
        self.text
    }
}

/// The `<FILL: …>` markers left in a plan: values to replace, and choices
/// explained in a comment that starts with the marker.
pub fn markers(plan: &str) -> usize {
    plan.lines()
        .filter(|l| l.contains(&format!("= \"{FILL}")) || l.starts_with(&format!("# {FILL}")))
        .count()
}

/// `n` and the noun, singular or plural.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The last path component of `path` (what a plan names an input file by:
/// the folder it was read from says nothing about the cluster).
pub fn file_name(path: &str) -> &str {
    path.rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_is_toml_with_markers() {
        for ds in DatastoreKind::NAMES {
            for airgap in [false, true] {
                let text = plan(ds, airgap);
                assert!(text.contains(FILL), "{ds}");
                assert!(
                    toml::from_str::<toml::Table>(&text).is_ok(),
                    "{ds} {airgap}\n{text}"
                );
                assert_eq!(text.contains("artifacts ="), airgap);
            }
        }
    }

    #[test]
    fn k3s_plans_are_k3s_and_check_once_filled() {
        for ds in DatastoreKind::NAMES {
            let text = plan_for(ds, true, &Flavor::K3S);
            assert!(text.contains("distribution = \"k3s\""), "{ds}");
            assert!(!text.contains("rke2"), "{ds}\n{text}");
            assert!(toml::from_str::<toml::Table>(&text).is_ok(), "{ds}\n{text}");
        }
        assert_eq!(plan_for("etcd", false, &Flavor::RKE2), plan("etcd", false));
    }

    #[test]
    fn strings_and_comments_cannot_break_out() {
        let hostile = "a\"b\\c\nd = 1\te\u{7}";
        let mut p = PlanText::new();
        p.comment(&format!("about {hostile}"))
            .string("name", hostile);
        let text = p.finish();
        let table: toml::Table = toml::from_str(&text).expect("valid TOML");
        assert_eq!(table.len(), 1, "{text}");
        assert_eq!(table["name"].as_str(), Some(hostile));
    }

    #[test]
    fn paragraphs_wrap_at_80_columns() {
        let mut p = PlanText::new();
        p.para(&"word ".repeat(40)).para("short\nline");
        let text = p.finish();
        assert!(text.lines().all(|l| l.len() <= 80), "{text}");
        assert!(text.ends_with("# short line\n"), "{text}");
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = ImportError::new("nodes.json", "not JSON", "help");
        assert_eq!(e.to_string(), "nodes.json: not JSON");
        assert_eq!(
            e.clone().at(3, Some(7)).to_string(),
            "nodes.json:3:7: not JSON"
        );
        assert_eq!(e.clone().at(3, None).to_string(), "nodes.json:3: not JSON");
        assert_eq!(e.at(0, Some(1)).to_string(), "nodes.json: not JSON");
    }

    #[test]
    fn markers_count_values_and_choices_not_the_instructions() {
        let mut p = PlanText::new();
        p.comment(STEPS)
            .fill("name", "cluster name")
            .comment("<FILL: the init server> which one?")
            .fill("path", "a path");
        assert_eq!(markers(&p.finish()), 3);
        assert_eq!(
            markers(&plan("etcd", false)),
            plan("etcd", false).matches("= \"<FILL").count()
        );
        assert_eq!(count(1, "marker", "markers"), "1 marker");
        assert_eq!(count(2, "marker", "markers"), "2 markers");
    }

    #[test]
    fn file_names() {
        assert_eq!(file_name("a/b/rancher-cluster.yml"), "rancher-cluster.yml");
        assert_eq!(file_name("nodes.json"), "nodes.json");
    }
}
