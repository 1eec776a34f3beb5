//! Compiler-style diagnostics: `error[code]: message`, `--> file:line:col`,
//! the source line with a caret, and a `help:` line.
//!
//! Validation never stops at the first problem: it collects [`Diagnostic`]s
//! and the caller renders them all at once, as text (annotate-snippets, the
//! renderer rustc itself uses) or as JSON for tools.

mod code;

use std::ops::Range;

pub use code::Code;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;

use crate::source::SourceFile;

/// How bad a finding is: errors reject the plan, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The plan is rejected; nothing is written.
    Error,
    /// The plan compiles; the operator should read this first.
    Warning,
}

/// One finding about the plan, pointing at the text it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The rule's code (`snapshot-minor`, `first-server`, …), listed in docs/plan-format.md.
    pub code: Code,
    /// What is wrong, in one sentence.
    pub message: String,
    /// The byte range of the plan text this is about, if any.
    pub span: Option<Range<usize>>,
    /// A short label printed under the caret.
    pub label: Option<String>,
    /// What to do about it.
    pub help: Option<String>,
    /// A byte range of the plan that is never printed (a value that looks
    /// like a secret): the source line is shown with it masked.
    pub mask: Option<Range<usize>>,
}

impl Diagnostic {
    /// An error about `span`.
    pub fn error(code: Code, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            label: None,
            help: None,
            mask: None,
        }
    }

    /// A warning about `span`.
    pub fn warning(code: Code, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, span, message)
        }
    }

    /// Adds the `help:` line.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds the label under the caret.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Never prints the text of `range` (see [`Diagnostic::mask`]).
    #[must_use]
    pub fn masked(mut self, range: Range<usize>) -> Self {
        self.mask = Some(range);
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders this diagnostic like rustc does, without colour.
    pub fn render(&self, source: &SourceFile) -> String {
        let level = match self.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        // Nothing printed may echo a credential (`sensitive::mask_credentials`).
        let message = visible(&crate::sensitive::mask_credentials(&self.message));
        let label = self
            .label
            .as_deref()
            .map(|l| visible(&crate::sensitive::mask_credentials(l)));
        let help = self
            .help
            .as_deref()
            .map(|h| visible(&crate::sensitive::mask_credentials(h)));
        let title = level.primary_title(message.as_str()).id(self.code.as_str());
        let mut group = Group::with_title(title);
        // Only the lines of the span are handed to the renderer, numbered
        // from where they are: rendering costs the size of the span, not of
        // the plan (thousands of diagnostics on a large plan stay linear).
        let excerpt;
        if let Some(span) = &self.span {
            let span = source.clamp(span);
            let first = source.line(span.start);
            let last = source.line(span.end.saturating_sub(1).max(span.start));
            let window = source.line_range(first).start..source.line_range(last).end;
            let mut text = source.text[window.clone()].to_owned();
            if let Some(mask) = &self.mask {
                let mask = source.clamp(mask);
                let (from, to) = (
                    mask.start.clamp(window.start, window.end) - window.start,
                    mask.end.clamp(window.start, window.end) - window.start,
                );
                if from < to {
                    let stars = "*".repeat(to - from);
                    text.replace_range(from..to, &stars);
                }
            }
            excerpt = visible(&crate::sensitive::mask_credentials(&text));
            let local = (span.start - window.start).min(excerpt.len())
                ..(span.end.min(window.end) - window.start).min(excerpt.len());
            let local = floor(&excerpt, local.start)..floor(&excerpt, local.end);
            let mut annotation = AnnotationKind::Primary.span(local);
            if let Some(label) = &label {
                annotation = annotation.label(label.as_str());
            }
            group = group.element(
                Snippet::source(excerpt.as_str())
                    .line_start(first)
                    .path(source.name.as_str())
                    .fold(true)
                    .annotation(annotation),
            );
        }
        if let Some(help) = &help {
            group = group.element(Level::HELP.message(help.as_str()));
        }
        let report: &[Group<'_>] = &[group];
        Renderer::plain().render(report)
    }

    /// The JSON form used by `check --format json`.
    pub fn to_json(&self, source: &SourceFile) -> serde_json::Value {
        let (line, column) = match &self.span {
            Some(span) => {
                let (l, c) = source.line_col(source.clamp(span).start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        serde_json::json!({
            "severity": self.severity,
            "code": self.code,
            "message": visible(&crate::sensitive::mask_credentials(&self.message)),
            "file": source.name,
            "line": line,
            "column": column,
            "label": self.label.as_deref().map(|l| visible(&crate::sensitive::mask_credentials(l))),
            "help": self.help.as_deref().map(|h| visible(&crate::sensitive::mask_credentials(h))),
        })
    }
}

/// Renders every diagnostic, errors first in source order, then a summary line.
pub fn render_all(diags: &[Diagnostic], source: &SourceFile) -> String {
    let mut sorted: Vec<&Diagnostic> = diags.iter().collect();
    // By the code's word, not its variant: the order operators see does not
    // change when a code is added or the enum reordered.
    sorted.sort_by_key(|d| {
        (
            d.severity,
            d.span.as_ref().map_or(0, |s| s.start),
            d.code.as_str(),
        )
    });
    let mut out = String::new();
    for d in &sorted {
        out.push_str(&d.render(source));
        out.push_str("\n\n");
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    if errors > 0 {
        out.push_str(&format!(
            "error: {} rejected: {} error{}, {} warning{}; nothing was written\n",
            source.name,
            errors,
            plural(errors),
            warnings,
            plural(warnings)
        ));
    } else if warnings > 0 {
        out.push_str(&format!(
            "warning: {}: {} warning{}\n",
            source.name,
            warnings,
            plural(warnings)
        ));
    }
    out
}

/// `text` with the characters a plan may not contain (bidi controls,
/// zero-width and other format characters; control characters but tab and
/// line ends) shown as `?`, one per byte so that spans stay right: a
/// diagnostic about such a character must not reorder the terminal line
/// that shows it.
fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if crate::sensitive::forbidden(c) {
            out.extend(std::iter::repeat_n('?', c.len_utf8()));
        } else {
            out.push(c);
        }
    }
    out
}

/// The nearest character boundary at or before `i`.
fn floor(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
