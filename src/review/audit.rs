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

use std::fmt::Write as _;

use camino::Utf8Path;

use crate::bundle::{Bundle, MARKER};
use crate::golden::{self, Outcome};
use crate::procedure::Procedure;

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
    /// Plans that drifted, were rejected, or have no golden bundle, plus
    /// golden folders without a plan.
    pub failed: usize,
    /// A plan or golden folder could not be read.
    pub unreadable: bool,
}

impl Report {
    /// Exit code: 0 all match, 1 any drift, 3 something unreadable.
    pub fn code(&self) -> u8 {
        if self.unreadable {
            crate::app::exit::IO
        } else if self.failed > 0 {
            crate::app::exit::REJECTED
        } else {
            crate::app::exit::OK
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
        r.failed += 1;
        let _ = writeln!(
            r.text,
            "ORPHAN   {orphan}: no plan in {plans_dir} explains it; remove it or add the plan"
        );
    }
    let _ = writeln!(
        r.text,
        "audit: {} plan{}, {} ok, {} failed",
        pairing.entries.len(),
        if pairing.entries.len() == 1 { "" } else { "s" },
        r.ok,
        r.failed
    );
    Ok(r)
}

/// If `actual` differs from `expected` only by the rewind version written
/// in `plan.json` (and so `SHA256SUMS`), that older version.
fn same_but_version(expected: &Bundle, actual: &Bundle) -> Option<String> {
    let old = Procedure::of_bundle(expected).ok()?.rewind_version;
    let new = Procedure::of_bundle(actual).ok()?.rewind_version;
    if old == new {
        return None;
    }
    let mut aligned = actual.clone();
    let file = aligned.files.get_mut(MARKER)?;
    let text = String::from_utf8(file.bytes.clone()).ok()?;
    file.bytes = text
        .replacen(
            &format!("\"rewind_version\": \"{new}\""),
            &format!("\"rewind_version\": \"{old}\""),
            1,
        )
        .into_bytes();
    aligned.seal();
    golden::compare(expected, &aligned)
        .is_empty()
        .then_some(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(version: &str, script: &str) -> Bundle {
        let mut b = Bundle::default();
        b.add(
            MARKER,
            format!(
                "{{\n  \"rewind_version\": \"{version}\",\n  \"plan_sha256\": \"x\",\n  \"cluster\": \"c\",\n  \"distribution\": \"rke2\",\n  \"scenario\": \"s\",\n  \"from\": \"a\",\n  \"to\": \"b\",\n  \"steps\": []\n}}\n"
            ),
            0o644,
        );
        b.add("workstation/01-x.sh", script, 0o755);
        b.seal();
        b
    }

    #[test]
    fn only_the_rewind_version_is_forgiven() {
        let golden = bundle("0.1.0", "echo\n");
        assert_eq!(
            same_but_version(&golden, &bundle("0.2.0", "echo\n")).as_deref(),
            Some("0.1.0")
        );
        assert_eq!(same_but_version(&golden, &bundle("0.2.0", "rm\n")), None);
        assert_eq!(same_but_version(&golden, &bundle("0.1.0", "rm\n")), None);
    }
}
