//! Turns what the user wrote ([`Spec`]) into what rewind will act on
//! ([`Model`]), checking every precondition of docs/plan-format.md ("Diagnostic codes").
//!
//! Validation never stops at the first problem: every rule runs and every
//! finding is returned, errors and warnings together, each pointing at the
//! TOML it is about. A model is returned only when there is no error.

mod common;
mod dbname;
mod fields;
mod rke1;
mod rke2;
mod syntax;
mod text;

use crate::choice::Distribution;
use crate::diagnostic::{Code, Diagnostic};
use crate::digest::sha256_hex;
use crate::model::{Flavor, Kind, Model};
use crate::source::SourceFile;
use crate::spec::{self, Spec};

pub use fields::{is_dns_label, is_hostname};

/// The result of checking a plan: the model (if no errors) and all findings.
#[derive(Debug)]
pub struct Checked {
    /// `Some` when the plan has no errors.
    pub model: Option<Model>,
    /// Every error and warning, in the order found.
    pub diagnostics: Vec<Diagnostic>,
}

/// A target version given on the command line (`--to`), which wins over the plan's.
pub type TargetOverride<'a> = Option<&'a str>;

/// Parses and validates plan text.
pub fn check(source: &SourceFile, to: TargetOverride<'_>) -> Checked {
    check_reading(source, to, spec::Reader::Fast)
}

/// [`check`] with the reader chosen: tests compare the fast reader with the
/// toml crate on the same text.
pub fn check_reading(source: &SourceFile, to: TargetOverride<'_>, with: spec::Reader) -> Checked {
    let early = text::before_parse(source);
    if !early.is_empty() {
        return Checked {
            model: None,
            diagnostics: early,
        };
    }
    let mut found = Vec::new();
    match spec::parse_inspecting(source, with, |strings| {
        text::values(strings, &source.text, &mut found);
    }) {
        Ok(spec) => validate_with(&spec, source, to, found),
        Err(e) => Checked {
            model: None,
            diagnostics: vec![syntax::diagnostic(&e, &source.text)],
        },
    }
}

/// Validates a parsed spec.
pub fn validate(spec: &Spec, source: &SourceFile, to: TargetOverride<'_>) -> Checked {
    validate_with(spec, source, to, Vec::new())
}

/// Validates a parsed spec, starting from what was already found in its text.
fn validate_with(
    spec: &Spec,
    source: &SourceFile,
    to: TargetOverride<'_>,
    found: Vec<Diagnostic>,
) -> Checked {
    let mut cx = fields::Ctx::new(&source.text);
    cx.diags = found;
    if let Some(format) = &spec.format
        && *format.get_ref() != 1
    {
        cx.push(
            Diagnostic::error(Code::Format, Some(format.span()), "unsupported plan format")
                .label("only format 1 exists")
                .help("write `format = 1` or leave the key out"),
        );
    }
    let Some(cluster) = &spec.cluster else {
        cx.push(
            Diagnostic::error(
                Code::Required,
                Some(first_statement(&source.text)),
                "the plan has no [cluster] table",
            )
            .label("no [cluster] anywhere in this plan")
            .help("start the plan with [cluster] and its name, current-version and target-version"),
        );
        return finish(cx, None);
    };
    let cluster_span = Some(cluster.span());
    let c = cluster.get_ref();
    let name = cx
        .require(&c.name, cluster_span.clone(), "cluster.name", "add `name = \"<dns label>\"` to [cluster]")
        .and_then(|n| {
            if fields::is_dns_label(n.get_ref()) {
                Some(n.get_ref().clone())
            } else {
                cx.push(
                    Diagnostic::error(Code::Names, Some(n.span()), "cluster name is not a DNS label")
                        .label("expected [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
                        .help("use lowercase letters, digits and `-`; it names log files and folders on every host"),
                );
                None
            }
        });
    let distribution = match &c.distribution {
        None => Some(Distribution::default()),
        Some(d) => cx.one_of(d, "cluster.distribution"),
    };
    let mut checked = Vec::new();
    let mut warnings = Vec::new();
    let kind = match distribution {
        Some(Distribution::Rke1) => rke1::validate(spec, &mut cx, to, &mut checked).map(Kind::Rke1),
        Some(Distribution::Rke2) => {
            rke2::validate(spec, &mut cx, &Flavor::RKE2, to, &mut checked).map(Kind::Rke2)
        }
        Some(Distribution::K3s) => {
            rke2::validate(spec, &mut cx, &Flavor::K3S, to, &mut checked).map(Kind::Rke2)
        }
        None => None,
    };
    for d in cx.diags.iter().filter(|d| !d.is_error()) {
        warnings.push(format!("{}: {}", d.code, d.message));
    }
    let model = match (name, kind) {
        (Some(cluster), Some(kind)) if !cx.has_errors() => Some(Model {
            cluster,
            plan_sha256: sha256_hex(source.text.as_bytes()),
            kind,
            checked,
            warnings,
        }),
        _ => None,
    };
    finish(cx, model)
}

/// The first line that is neither blank nor a comment: where a missing table
/// would go. An empty plan gives the empty span at its start.
fn first_statement(text: &str) -> std::ops::Range<usize> {
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end();
        let indent = body.len() - body.trim_start().len();
        if !body.trim_start().is_empty() && !body.trim_start().starts_with('#') {
            return start + indent..start + body.len();
        }
        start += line.len();
    }
    0..0
}

fn finish(mut cx: fields::Ctx, model: Option<Model>) -> Checked {
    // A placeholder left from `rewind init` is reported once, as such: the
    // rules it breaks by being a placeholder say nothing more.
    let placeholders: Vec<std::ops::Range<usize>> = cx
        .diags
        .iter()
        .filter(|d| d.code == Code::NotFilled)
        .filter_map(|d| d.span.clone())
        .collect();
    if !placeholders.is_empty() {
        cx.diags.retain(|d| {
            d.code == Code::NotFilled
                || !d.span.as_ref().is_some_and(|s| {
                    placeholders
                        .iter()
                        .any(|p| s.start < p.end && p.start < s.end.max(s.start + 1))
                })
        });
    }
    Checked {
        model,
        diagnostics: hide_secrets(cx),
    }
}

/// A value that looks like a credential is never printed: other findings
/// about the same value are dropped (the credential is the problem to fix),
/// and findings whose source lines show it print it masked.
fn hide_secrets(cx: fields::Ctx) -> Vec<Diagnostic> {
    let masks: Vec<std::ops::Range<usize>> = cx
        .diags
        .iter()
        .filter(|d| d.code == Code::Secrets)
        .filter_map(|d| d.mask.clone())
        .collect();
    if masks.is_empty() {
        return cx.diags;
    }
    let overlaps = |a: &std::ops::Range<usize>, b: &std::ops::Range<usize>| {
        a.start < b.end.max(b.start + 1) && b.start < a.end.max(a.start + 1)
    };
    let mut out = Vec::with_capacity(cx.diags.len());
    for mut d in cx.diags.iter().cloned() {
        if d.mask.is_none()
            && let Some(span) = &d.span
        {
            if masks.iter().any(|m| overlaps(m, span)) {
                continue;
            }
            let lines = cx.line(span.start)..=cx.line(span.end);
            if let Some(m) = masks.iter().find(|m| lines.contains(&cx.line(m.start))) {
                d.mask = Some(m.clone());
            }
        }
        out.push(d);
    }
    out
}
