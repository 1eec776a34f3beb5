//! Golden bundles: the reviewed output of the reference plans.
//!
//! `golden/<name>/` holds the bundle that `plans/<name>.toml` compiles to. A
//! new rewind must produce exactly those files, bytes and modes; any
//! difference is a change of procedure, which a reviewer reads as a diff. The
//! golden test and an auditor's check of a new rewind release share this
//! module: [`pair`] matches plans with folders, [`audit`] compiles one plan and
//! [`compare`]s it with its folder, [`render`] prints the drift as unified
//! diffs, and [`update`] rewrites a folder on request.

use std::fmt::{self, Write as _};
use std::fs;

use camino::{Utf8Path, Utf8PathBuf};
use similar::TextDiff;

use crate::bundle::{self, Bundle, BundleError};
use crate::compiler;
use crate::diagnostic::render_all;

/// How a compiled bundle differs from its golden copy at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The golden bundle has this file; the compiled one does not.
    Missing(String),
    /// The compiled bundle has a file the golden one does not.
    Added(String),
    /// Both have the file, with different contents.
    Changed(String),
    /// Both have the file, with different modes.
    Mode {
        /// The file.
        path: String,
        /// Its mode in the golden bundle.
        expected: u32,
        /// Its mode in the compiled bundle.
        actual: u32,
    },
}

impl Drift {
    /// The bundle-relative path the drift is about.
    pub fn path(&self) -> &str {
        match self {
            Drift::Missing(p) | Drift::Added(p) | Drift::Changed(p) => p,
            Drift::Mode { path, .. } => path,
        }
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::Missing(p) => write!(f, "{p}: in the golden bundle, no longer compiled"),
            Drift::Added(p) => write!(f, "{p}: compiled now, not in the golden bundle"),
            Drift::Changed(p) => write!(f, "{p}: contents differ"),
            Drift::Mode {
                path,
                expected,
                actual,
            } => write!(f, "{path}: mode {actual:04o}, golden has {expected:04o}"),
        }
    }
}

/// Every difference between two bundles, sorted by path (a file whose
/// contents and mode both differ yields two drifts).
pub fn compare(expected: &Bundle, actual: &Bundle) -> Vec<Drift> {
    let mut out = Vec::new();
    for (path, e) in &expected.files {
        match actual.files.get(path) {
            None => out.push(Drift::Missing(path.clone())),
            Some(a) => {
                if a.bytes != e.bytes {
                    out.push(Drift::Changed(path.clone()));
                }
                if a.mode != e.mode {
                    out.push(Drift::Mode {
                        path: path.clone(),
                        expected: e.mode,
                        actual: a.mode,
                    });
                }
            }
        }
    }
    for path in actual.files.keys() {
        if !expected.files.contains_key(path) {
            out.push(Drift::Added(path.clone()));
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

/// The most lines of one file's diff that [`render`] prints.
const MAX_DIFF_LINES: usize = 200;

/// Renders drifts for a human: one line per drift, then unified diffs of
/// the first `max_diffs` files whose contents differ (or that exist on one
/// side only). `expected_label` and `actual_label` prefix the paths in the
/// diff headers (e.g. `golden/sqlite` and `compiled`).
pub fn render(
    expected: &Bundle,
    actual: &Bundle,
    drifts: &[Drift],
    expected_label: &str,
    actual_label: &str,
    max_diffs: usize,
) -> String {
    let mut out = String::new();
    for d in drifts {
        let _ = writeln!(out, "  {d}");
    }
    let empty = Vec::new();
    let with_text = drifts
        .iter()
        .filter(|d| !matches!(d, Drift::Mode { .. }))
        .collect::<Vec<_>>();
    for d in with_text.iter().take(max_diffs) {
        let path = d.path();
        let old = expected.files.get(path).map_or(&empty, |f| &f.bytes);
        let new = actual.files.get(path).map_or(&empty, |f| &f.bytes);
        out.push('\n');
        out.push_str(&unified(
            old,
            new,
            &format!("{expected_label}/{path}"),
            &format!("{actual_label}/{path}"),
        ));
    }
    if with_text.len() > max_diffs {
        let _ = writeln!(
            out,
            "\n({} more files differ; diffs not shown)",
            with_text.len() - max_diffs
        );
    }
    out
}

/// A unified diff of two file contents, cut after [`MAX_DIFF_LINES`] lines.
fn unified(old: &[u8], new: &[u8], old_name: &str, new_name: &str) -> String {
    let (Ok(old), Ok(new)) = (std::str::from_utf8(old), std::str::from_utf8(new)) else {
        return format!("Binary files {old_name} and {new_name} differ\n");
    };
    let diff = TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string();
    let total = diff.lines().count();
    if total <= MAX_DIFF_LINES {
        return diff;
    }
    let mut cut: String = diff
        .split_inclusive('\n')
        .take(MAX_DIFF_LINES)
        .collect::<String>();
    let _ = writeln!(cut, "… ({} more diff lines)", total - MAX_DIFF_LINES);
    cut
}

/// The mode git records for a file: 0755 if its owner may execute it, else
/// 0644. A checkout's modes also depend on the umask, so golden folders are
/// compared in these terms.
pub fn git_mode(mode: u32) -> u32 {
    if mode & 0o100 != 0 { 0o755 } else { 0o644 }
}

/// Reads a golden folder, with modes as git keeps them ([`git_mode`]).
pub fn read(dir: &Utf8Path) -> Result<Bundle, BundleError> {
    let mut b = bundle::read(dir)?;
    for f in b.files.values_mut() {
        f.mode = git_mode(f.mode);
    }
    Ok(b)
}

/// Replaces the golden folder `dir` by `bundle` (creating its parent if
/// needed). The bundle writer swaps folders atomically, so stale files go
/// with the old folder; a folder that is not a rewind bundle is refused.
pub fn update(dir: &Utf8Path, bundle: &Bundle) -> Result<(), BundleError> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|cause| BundleError::Io {
            path: parent.to_owned(),
            cause,
        })?;
    }
    bundle::write(bundle, dir, true)
}

/// A reference plan and the golden folder that holds its bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The plan's file stem (`etcd-online`).
    pub name: String,
    /// `PLANS_DIR/<name>.toml`.
    pub plan: Utf8PathBuf,
    /// `GOLDEN_DIR/<name>`.
    pub golden: Utf8PathBuf,
}

/// Plans matched with golden folders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pairing {
    /// One entry per `*.toml` of the plans folder, sorted by name.
    pub entries: Vec<Entry>,
    /// What the golden folder holds that no plan explains: folders without
    /// a plan, and stray files. Sorted.
    pub orphans: Vec<Utf8PathBuf>,
}

/// Pairs every `*.toml` of `plans_dir` with `golden_dir/<stem>`. A missing
/// `golden_dir` holds nothing (every golden folder is then missing).
pub fn pair(plans_dir: &Utf8Path, golden_dir: &Utf8Path) -> std::io::Result<Pairing> {
    let mut entries = Vec::new();
    for name in sorted_names(plans_dir)? {
        if let Some(stem) = name.strip_suffix(".toml") {
            entries.push(Entry {
                name: stem.to_owned(),
                plan: plans_dir.join(&name),
                golden: golden_dir.join(stem),
            });
        }
    }
    let mut orphans = Vec::new();
    if golden_dir.exists() {
        for name in sorted_names(golden_dir)? {
            let path = golden_dir.join(&name);
            let planned = entries.iter().any(|e| e.name == name);
            if !planned || !path.is_dir() {
                orphans.push(path);
            }
        }
    }
    Ok(Pairing { entries, orphans })
}

fn sorted_names(dir: &Utf8Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in dir.read_dir_utf8()? {
        names.push(entry?.file_name().to_owned());
    }
    names.sort();
    Ok(names)
}

/// What [`audit`] found for one plan.
#[derive(Debug)]
pub enum Outcome {
    /// The plan compiles to its golden folder exactly.
    Same,
    /// The plan compiles, but not to what its golden folder holds.
    Drifted {
        /// The golden folder's bundle.
        expected: Bundle,
        /// The compiled bundle.
        actual: Bundle,
        /// The differences, sorted by path.
        drifts: Vec<Drift>,
    },
    /// The plan compiles; its golden folder does not exist.
    NoGolden(Bundle),
    /// The plan is rejected; the rendered diagnostics.
    Rejected(String),
    /// The plan or the golden folder cannot be read.
    Unreadable(String),
}

/// Compiles `entry.plan` (as `rewind compile` would, without `--to`) and
/// compares the bundle with `entry.golden`.
pub fn audit(entry: &Entry) -> Outcome {
    // Read as `rewind compile` reads a plan: a regular file, size-capped.
    let source = match compiler::read(&entry.plan) {
        Ok(s) => s,
        Err(e) => return Outcome::Unreadable(format!("{}: {}", e.path, e.cause)),
    };
    let actual = match compiler::build(&source, None) {
        Ok(b) => b,
        Err(diags) => return Outcome::Rejected(render_all(&diags, &source)),
    };
    if !entry.golden.exists() {
        return Outcome::NoGolden(actual);
    }
    let expected = match read(&entry.golden) {
        Ok(b) => b,
        Err(e) => return Outcome::Unreadable(e.to_string()),
    };
    let drifts = compare(&expected, &actual);
    if drifts.is_empty() {
        Outcome::Same
    } else {
        Outcome::Drifted {
            expected,
            actual,
            drifts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(files: &[(&str, &str, u32)]) -> Bundle {
        let mut b = Bundle::default();
        for (p, t, m) in files {
            b.add(*p, *t, *m);
        }
        b
    }

    #[test]
    fn compare_finds_every_kind_of_drift_sorted_by_path() {
        let golden = bundle(&[
            ("a.sh", "x\n", 0o755),
            ("b.sh", "same\n", 0o755),
            ("c.md", "old\n", 0o644),
            ("gone", "", 0o644),
        ]);
        let compiled = bundle(&[
            ("a.sh", "y\n", 0o644),
            ("b.sh", "same\n", 0o755),
            ("c.md", "new\n", 0o644),
            ("new", "", 0o644),
        ]);
        assert_eq!(
            compare(&golden, &compiled),
            vec![
                Drift::Changed("a.sh".into()),
                Drift::Mode {
                    path: "a.sh".into(),
                    expected: 0o755,
                    actual: 0o644
                },
                Drift::Changed("c.md".into()),
                Drift::Missing("gone".into()),
                Drift::Added("new".into()),
            ]
        );
        assert!(compare(&golden, &golden).is_empty());
    }

    #[test]
    fn render_prints_unified_diffs_up_to_the_limit() {
        let golden = bundle(&[("a", "1\n2\n3\n", 0o644), ("b", "x\n", 0o644)]);
        let compiled = bundle(&[("a", "1\nTWO\n3\n", 0o644), ("b", "y\n", 0o644)]);
        let drifts = compare(&golden, &compiled);
        let text = render(&golden, &compiled, &drifts, "golden/p", "compiled", 1);
        assert!(text.contains("--- golden/p/a\n+++ compiled/a\n"), "{text}");
        assert!(text.contains("-2\n+TWO\n"), "{text}");
        assert!(!text.contains("+++ compiled/b"), "{text}");
        assert!(
            text.contains("(1 more files differ; diffs not shown)"),
            "{text}"
        );
    }

    #[test]
    fn git_mode_keeps_only_the_owner_execute_bit() {
        assert_eq!(git_mode(0o775), 0o755);
        assert_eq!(git_mode(0o700), 0o755);
        assert_eq!(git_mode(0o664), 0o644);
        assert_eq!(git_mode(0o600), 0o644);
    }
}
