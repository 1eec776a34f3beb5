//! `rewind audit PLANS_DIR GOLDEN_DIR`: recompile every plan and compare the
//! bundle with its golden copy, for an auditor checking that a new rewind
//! still produces the reviewed procedures.
//!
//! The pairing, compilation and byte comparison are [`crate::golden`]'s,
//! the same code the project's own golden test runs; this module turns the
//! outcomes into a report with the command that refreshes each drifted
//! bundle. One difference is forgiven: the rewind version in `plan.json`
//! (and so `SHA256SUMS`). It is written there, and only there, so that a
//! newer rewind emitting the same procedure passes the audit.
//!
//! The result is a [`Report`] and its [`Verdict`]; the command line turns
//! the verdict into an exit code.

use std::fmt::Write as _;

use camino::Utf8Path;

use crate::bundle::{Bundle, MARKER};
use crate::golden::{self, Drift, Outcome};

/// How many files' diffs a drifted plan shows.
const MAX_DIFFS: usize = 10;

/// The audit's result.
#[derive(Debug, Default)]
pub struct Report {
    /// The report (stdout).
    pub text: String,
    /// Diagnostics of rejected plans and read errors (stderr).
    pub errors: String,
    /// Plans whose bundle matches.
    pub ok: usize,
    /// Plans that drifted, were rejected, or have no golden bundle.
    pub failed: usize,
    /// Golden folders without a plan (not plans: counted apart, so that
    /// `ok + failed` is the number of plans).
    pub orphans: usize,
    /// A plan or golden folder could not be read.
    pub unreadable: bool,
}

/// What an audit concludes, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A plan or golden folder could not be read: the audit is incomplete.
    Unreadable,
    /// Some plan drifted, was rejected or has no golden bundle, or a golden
    /// folder has no plan.
    Drift,
    /// Every plan compiles to its golden bundle.
    AllMatch,
}

impl Report {
    /// The conclusion: unreadable beats drift, which beats a match.
    pub fn verdict(&self) -> Verdict {
        if self.unreadable {
            Verdict::Unreadable
        } else if self.failed + self.orphans > 0 {
            Verdict::Drift
        } else {
            Verdict::AllMatch
        }
    }
}

/// Audits every `PLANS_DIR/*.toml` against `GOLDEN_DIR/<name>/`.
pub fn run(plans_dir: &Utf8Path, golden_dir: &Utf8Path) -> std::io::Result<Report> {
    let pairing = golden::pair(plans_dir, golden_dir)?;
    let mut r = Report::default();
    for entry in &pairing.entries {
        // Commands for the operator to paste: every path is one shell word.
        let (plan, golden) = (
            crate::shell::quote(entry.plan.as_str()),
            crate::shell::quote(entry.golden.as_str()),
        );
        let refresh = format!("rewind compile {plan} --out {golden} --force");
        match golden::audit(entry) {
            Outcome::Same => {
                r.ok += 1;
                let _ = writeln!(r.text, "ok       {}", entry.golden);
            }
            Outcome::Drifted {
                expected,
                actual,
                drifts,
            } => {
                if let Some(version) = same_but_version(&expected, &actual) {
                    r.ok += 1;
                    let _ = writeln!(
                        r.text,
                        "ok       {} (written by rewind {version})",
                        entry.golden
                    );
                    continue;
                }
                r.failed += 1;
                let _ = writeln!(
                    r.text,
                    "DRIFT    {}: {} difference{} from compiling {}",
                    entry.golden,
                    drifts.len(),
                    if drifts.len() == 1 { "" } else { "s" },
                    entry.plan
                );
                r.text.push_str(&golden::render(
                    &expected,
                    &actual,
                    &drifts,
                    entry.golden.as_str(),
                    "compiled",
                    MAX_DIFFS,
                ));
                let _ = writeln!(
                    r.text,
                    "\n  A drift is a change of procedure: review it (rewind diff {golden} {plan}), then refresh:\n    {refresh}\n",
                );
            }
            Outcome::NoGolden(_) => {
                r.failed += 1;
                let _ = writeln!(
                    r.text,
                    "MISSING  {}: no golden bundle for {}; create it after review:\n    rewind compile {} --out {}\n",
                    entry.golden, entry.plan, entry.plan, entry.golden
                );
            }
            Outcome::Rejected(diagnostics) => {
                r.failed += 1;
                r.errors.push_str(&diagnostics);
                let _ = writeln!(
                    r.text,
                    "REJECTED {}: the plan no longer passes `rewind check` (diagnostics on stderr)",
                    entry.plan
                );
            }
            Outcome::Unreadable(message) => {
                r.unreadable = true;
                let _ = writeln!(r.errors, "error: {message}");
                let _ = writeln!(r.text, "ERROR    {}: cannot be read", entry.golden);
            }
        }
    }
    for orphan in &pairing.orphans {
        r.orphans += 1;
        let _ = writeln!(
            r.text,
            "ORPHAN   {orphan}: no plan in {plans_dir} explains it; remove it or add the plan"
        );
    }
    let _ = write!(
        r.text,
        "audit: {} plan{}, {} ok, {} failed",
        pairing.entries.len(),
        if pairing.entries.len() == 1 { "" } else { "s" },
        r.ok,
        r.failed
    );
    let _ = match r.orphans {
        0 => writeln!(r.text),
        1 => writeln!(r.text, "; 1 golden bundle without a plan"),
        n => writeln!(r.text, "; {n} golden bundles without a plan"),
    };
    Ok(r)
}

/// If `actual` differs from `expected` only by the rewind version written
/// in `plan.json` (and so `SHA256SUMS`), that older version: both manifests
/// are the same once the version is set alike, every other file is the same
/// bytes and mode, and the golden `SHA256SUMS` is the sums of the golden
/// files (so it differs from the compiled one only by `plan.json`'s line).
fn same_but_version(expected: &Bundle, actual: &Bundle) -> Option<String> {
    let old = expected.manifest().ok()?;
    let mut new = actual.manifest().ok()?;
    if new.rewind_version == old.rewind_version {
        return None;
    }
    new.rewind_version.clone_from(&old.rewind_version);
    if new != old {
        return None;
    }
    let elsewhere = golden::compare(expected, actual)
        .iter()
        .any(|d| !matches!(d, Drift::Changed(p) if p == MARKER || p == SUMS));
    if elsewhere {
        return None;
    }
    let mut resealed = expected.clone();
    resealed.seal();
    (resealed.files.get(SUMS) == expected.files.get(SUMS)).then_some(old.rewind_version)
}

/// The checksums file of a bundle.
const SUMS: &str = "SHA256SUMS";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Manifest, ManifestStep};

    fn bundle(version: &str, title: &str, script: &str) -> Bundle {
        let manifest = Manifest {
            rewind_version: version.into(),
            format: crate::manifest::FORMAT,
            plan_sha256: "x".into(),
            cluster: "c".into(),
            distribution: "rke2".into(),
            scenario: "s".into(),
            from: "a".into(),
            to: "b".into(),
            steps: vec![ManifestStep {
                number: 1,
                id: "x".into(),
                title: title.into(),
                hosts: vec!["workstation".into()],
                scripts: vec!["workstation/01-x.sh".into()],
                parallel: false,
                destructive: false,
            }],
        };
        let mut b = Bundle::default();
        b.add(MARKER, manifest.to_json(), 0o644);
        b.add("workstation/01-x.sh", script, 0o755);
        b.seal();
        b
    }

    #[test]
    fn only_the_rewind_version_is_forgiven() {
        let golden = bundle("0.1.0", "X", "echo\n");
        assert_eq!(
            same_but_version(&golden, &bundle("0.2.0", "X", "echo\n")).as_deref(),
            Some("0.1.0")
        );
        // Another script, another step title: not forgiven.
        assert_eq!(
            same_but_version(&golden, &bundle("0.2.0", "X", "rm\n")),
            None
        );
        assert_eq!(
            same_but_version(&golden, &bundle("0.2.0", "Y", "echo\n")),
            None
        );
        // The same version: nothing to forgive (that is a drift or a match).
        assert_eq!(
            same_but_version(&golden, &bundle("0.1.0", "X", "rm\n")),
            None
        );
    }

    #[test]
    fn a_golden_sha256sums_that_is_not_its_files_sums_is_not_forgiven() {
        let mut golden = bundle("0.1.0", "X", "echo\n");
        golden.add("SHA256SUMS", "0000  workstation/01-x.sh\n", 0o644);
        assert_eq!(
            same_but_version(&golden, &bundle("0.2.0", "X", "echo\n")),
            None
        );
    }

    #[test]
    fn the_verdict_puts_unreadable_before_drift() {
        let mut r = Report::default();
        assert_eq!(r.verdict(), Verdict::AllMatch);
        r.failed = 1;
        assert_eq!(r.verdict(), Verdict::Drift);
        r.unreadable = true;
        assert_eq!(r.verdict(), Verdict::Unreadable);
    }
}
