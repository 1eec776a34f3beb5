//! The compile pipeline as a library: read a plan ([`read`]), check it
//! ([`check`]), plan it ([`plan`]), and print the bundle into memory
//! ([`build`]) or into a folder ([`write()`]). Each call runs the stages in
//! order — spec → validate → plan → render → bundle — and returns what they
//! found; it prints nothing and decides no exit code, which is the command
//! line's business (`app`). The golden test, `rewind audit` and `rewind diff`
//! compile through here too, so every way into the pipeline is the same.

use camino::{Utf8Path, Utf8PathBuf};
use thiserror::Error;

use crate::bundle::{Bundle, BundleError, Writer};
use crate::diagnostic::Diagnostic;
use crate::plan::Plan;
use crate::source::SourceFile;
use crate::{render, spec, validate};

pub use crate::validate::Checked;

/// A plan file that cannot be read (missing, not a regular file, too big).
#[derive(Debug, Error)]
#[error("cannot read plan {path}: {cause}")]
pub struct ReadError {
    /// The plan's path, as given.
    pub path: Utf8PathBuf,
    /// Why (printed in the message, not chained).
    pub cause: std::io::Error,
}

/// Reads a plan file: a regular file of at most
/// [`spec::MAX_PLAN_BYTES`], under the name diagnostics print.
pub fn read(path: &Utf8Path) -> Result<SourceFile, ReadError> {
    spec::load(path).map_err(|cause| ReadError {
        path: path.to_owned(),
        cause,
    })
}

/// Checks plan text (`--to`, when given, wins over the plan's target): the
/// model when there is no error, and every finding.
pub fn check(source: &SourceFile, to: Option<&str>) -> Checked {
    validate::check(source, to)
}

/// A plan that passed [`check`], planned.
#[derive(Debug)]
pub struct Planned {
    /// Every step and script of the rollback.
    pub plan: Plan,
    /// The warnings of the check (an accepted plan has no error).
    pub warnings: Vec<Diagnostic>,
}

/// Checks and plans plan text; when it is rejected, every finding (errors
/// and warnings) instead.
pub fn plan(source: &SourceFile, to: Option<&str>) -> Result<Planned, Vec<Diagnostic>> {
    let checked = check(source, to);
    match checked.model {
        Some(model) => Ok(Planned {
            plan: crate::plan::plan(&model),
            warnings: checked.diagnostics,
        }),
        None => Err(checked.diagnostics),
    }
}

/// Compiles plan text into a bundle in memory, sealed (pure: the golden
/// test, `audit` and `diff` compare it with folders).
pub fn build(source: &SourceFile, to: Option<&str>) -> Result<Bundle, Vec<Diagnostic>> {
    let planned = plan(source, to)?;
    Ok(render::bundle(&planned.plan)
        .unwrap_or_else(|e| panic!("bug in rewind: rendering failed: {e:#}")))
}

/// Why [`write()`] wrote nothing.
#[derive(Debug, Error)]
pub enum WriteError {
    /// The destination, the writer or a signal stopped it
    /// ([`BundleError::Exists`], [`BundleError::NotABundle`],
    /// [`BundleError::Interrupted`], [`BundleError::Io`]).
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A template failed: a bug in rewind, never the plan's fault.
    #[error("bug in rewind: rendering failed")]
    Render(#[from] minijinja::Error),
}

/// A bundle [`write()`] put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// sha256 of its `SHA256SUMS`: the one value that pins the whole
    /// bundle, for a reviewer to publish out of band.
    pub digest: String,
}

/// Renders `plan` into the folder `out`, atomically: each file is written as
/// soon as it is rendered (a bundle of thousands of hosts never has to fit
/// in memory), `SHA256SUMS` last, and the folder renamed into place; an
/// existing `out` is replaced only with `force` and only if it is a rewind
/// bundle. On any error the destination is as it was. A program that wants
/// SIGINT and SIGTERM to stop the writer cleanly calls
/// [`crate::interrupt::install`] first.
pub fn write(plan: &Plan, out: &Utf8Path, force: bool) -> Result<Written, WriteError> {
    let mut writer = Writer::create(out, force)?;
    render::each_file(plan, |path, text, mode| {
        writer.add(path, text, mode).map_err(WriteError::from)
    })?;
    let digest = writer.seal()?;
    writer.finish()?;
    Ok(Written { digest })
}
