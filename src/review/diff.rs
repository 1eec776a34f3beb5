//! `rewind diff`: how the procedure changes between two bundles, for the
//! people who review a plan change in a pull request.
//!
//! A reviewer first needs the shape of the change: which steps were added,
//! removed or moved, which hosts a step runs on, whether it may run in
//! parallel, whether it destroys data. Then the exact script text. Steps
//! are matched by id (not number), and scripts by step and host (not path),
//! so inserting one step shows one new step rather than every later script
//! renamed.
//!
//! Two kinds of noise are taken out of the script diffs, and said so in the
//! summary: the plan's sha256 (every edit of the plan, even of a comment,
//! changes it, and it is written into the library, done-marker folders and
//! moved-aside suffixes), the library's sha256 that every script pins, and
//! the step numbers of renumbered steps. The library, whose file name
//! carries its hash, is compared as one file: a change to it shows once. Identical changes on many hosts (a 5,000-node cluster) are shown
//! once with the list of the other scripts that have the same change.
//! `plan.json` and `SHA256SUMS` are summarised, not diffed: they follow from
//! the rest.
//!
//! Either side is a bundle folder or a plan compiled in memory
//! ([`Side::open`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use camino::Utf8Path;
use similar::{Algorithm, DiffOp, TextDiff, capture_diff_slices};

use crate::bundle::{Bundle, MARKER};
use crate::compiler::{self, ReadError};
use crate::diagnostic::Diagnostic;
use crate::manifest::{Manifest, ManifestStep};
use crate::mermaid::{self, Marks};
use crate::source::SourceFile;
use crate::{golden, verify};

/// Written instead of the plan's sha256 in script diffs.
pub const PLAN_SHA_MASK: &str = "<plan-sha256>";

/// Written instead of the library's sha256 (and the short form in its
/// name) in script diffs: every script pins the library, and the library
/// holds the plan's sha256, so any plan edit would otherwise touch them all.
pub const LIBRARY_SHA_MASK: &str = "<library-sha256>";

/// Markdown output stops adding file diffs past this many characters: a
/// pull-request comment holds at most 65,536.
const MARKDOWN_BUDGET: usize = 45_000;

/// At most this many other paths are named for a shared change.
const MAX_ALSO: usize = 8;

/// One side of the comparison: a bundle and the procedure its `plan.json`
/// states.
#[derive(Debug, Clone)]
pub struct Side {
    /// How the user named it (a plan file or a bundle folder).
    pub label: String,
    /// The bundle (compiled in memory, or read from the folder).
    pub bundle: Bundle,
    /// Its `plan.json`.
    pub manifest: Manifest,
}

/// What [`Side::open`] found at a path.
#[derive(Debug)]
pub struct Opened {
    /// Why a folder does not verify (each problem, then a summary), or why
    /// it could not be verified: to show before the comparison or the error.
    pub warnings: Vec<String>,
    /// The side, or why there is nothing to compare.
    pub side: Result<Side, OpenError>,
}

/// Why [`Side::open`] has nothing to compare.
#[derive(Debug)]
pub enum OpenError {
    /// The plan file cannot be read.
    Read(ReadError),
    /// The plan is rejected: its text and every finding.
    Rejected(SourceFile, Vec<Diagnostic>),
    /// The folder is not a bundle, or its `plan.json` is not rewind's.
    NotABundle(String),
}

impl Side {
    /// Reads the procedure out of the bundle.
    pub fn new(label: impl Into<String>, bundle: Bundle) -> Result<Self, String> {
        let manifest = bundle.manifest()?;
        Ok(Self {
            label: label.into(),
            bundle,
            manifest,
        })
    }

    /// One side of `rewind diff`: the bundle folder at `path` (with modes as
    /// git keeps them), or the plan file at `path` compiled in memory. A
    /// folder that does not verify is still compared (that is often why one
    /// diffs it), with warnings.
    pub fn open(path: &Utf8Path) -> Opened {
        let mut warnings = Vec::new();
        let side = Self::read(path, &mut warnings);
        Opened { warnings, side }
    }

    fn read(path: &Utf8Path, warnings: &mut Vec<String>) -> Result<Side, OpenError> {
        let bundle = if path.is_dir() {
            match verify::dir(path) {
                Ok(report) if !report.problems.is_empty() => {
                    for p in &report.problems {
                        warnings.push(format!("{path}/{p}"));
                    }
                    warnings.push(format!(
                        "{path} does not verify ({} problem{}): it is not exactly the bundle rewind wrote",
                        report.problems.len(),
                        if report.problems.len() == 1 { "" } else { "s" }
                    ));
                }
                Ok(_) => {}
                Err(e) => warnings.push(format!("{path}: cannot verify: {e}")),
            }
            golden::read(path)
                .map_err(|e| OpenError::NotABundle(format!("cannot read bundle {path}: {e}")))?
        } else {
            let source = compiler::read(path).map_err(OpenError::Read)?;
            match compiler::build(&source, None) {
                Ok(b) => b,
                Err(diagnostics) => return Err(OpenError::Rejected(source, diagnostics)),
            }
        };
        Side::new(path.as_str(), bundle).map_err(|e| OpenError::NotABundle(format!("{path}: {e}")))
    }
}

/// A plan-level field that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// What (`target version`, `cluster`, …).
    pub name: &'static str,
    /// Before.
    pub old: String,
    /// After.
    pub new: String,
}

/// One row of the step table, in the new run order (removed steps where
/// they used to be).
#[derive(Debug, Clone)]
pub struct StepRow {
    /// The step before the change (absent if added).
    pub old: Option<ManifestStep>,
    /// The step after the change (absent if removed).
    pub new: Option<ManifestStep>,
    /// The step changed its place relative to the other steps.
    pub moved: bool,
    /// What changed in it, in words.
    pub changes: Vec<String>,
    /// How many of its scripts changed text.
    pub scripts_changed: usize,
}

impl StepRow {
    /// Added, removed, or any change but its number.
    pub fn is_changed(&self) -> bool {
        self.old.is_none()
            || self.new.is_none()
            || self.moved
            || !self.changes.is_empty()
            || self.scripts_changed > 0
    }

    fn renumbered(&self) -> Option<(usize, usize)> {
        match (&self.old, &self.new) {
            (Some(o), Some(n)) if o.number != n.number => Some((o.number, n.number)),
            _ => None,
        }
    }
}

/// What happened to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// Only in the new bundle.
    Added,
    /// Only in the old bundle.
    Removed,
    /// In both, with different text or mode.
    Changed,
}

/// A file that differs, with its diff.
#[derive(Debug, Clone)]
pub struct FileChange {
    /// Added, removed or changed.
    pub kind: FileKind,
    /// Path in the old bundle.
    pub old_path: Option<String>,
    /// Path in the new bundle.
    pub new_path: Option<String>,
    /// Unified diff of the masked texts (with `---`/`+++` headers).
    pub diff: String,
    /// Mode change, if any.
    pub mode: Option<(u32, u32)>,
    /// An added script is shown as a diff against this script of the same
    /// step on another host (the new host's script is usually the same but
    /// for the name).
    pub like: Option<String>,
    /// The same change (host name aside) in these other files.
    pub also: Vec<String>,
}

impl FileChange {
    /// The path to show first.
    pub fn path(&self) -> &str {
        self.new_path
            .as_deref()
            .or(self.old_path.as_deref())
            .unwrap_or_default()
    }
}

/// Everything that differs between two bundles.
#[derive(Debug, Clone)]
pub struct Diff {
    /// The old side's label.
    pub old_label: String,
    /// The new side's label.
    pub new_label: String,
    /// The old procedure.
    pub old: Manifest,
    /// The new procedure.
    pub new: Manifest,
    /// Plan-level changes.
    pub fields: Vec<FieldChange>,
    /// Every step, changed or not, in run order.
    pub steps: Vec<StepRow>,
    /// Files that differ, grouped, in step order then path order.
    pub files: Vec<FileChange>,
}

impl Diff {
    /// The two sides run the same procedure (the plan sha256 and the rewind
    /// version aside).
    pub fn is_equal(&self) -> bool {
        self.fields.is_empty()
            && self.files.is_empty()
            && self
                .steps
                .iter()
                .all(|r| !r.is_changed() && r.renumbered().is_none())
    }

    fn counts(&self) -> String {
        let mut added = 0;
        let mut removed = 0;
        let mut moved = 0;
        let mut changed = 0;
        for r in &self.steps {
            match (&r.old, &r.new) {
                (None, _) => added += 1,
                (_, None) => removed += 1,
                _ if r.moved => moved += 1,
                _ if r.is_changed() => changed += 1,
                _ => {}
            }
        }
        let scripts: usize = self.files.iter().map(|f| 1 + f.also.len()).sum();
        let mut parts = Vec::new();
        for (n, what) in [
            (added, "added"),
            (removed, "removed"),
            (moved, "moved"),
            (changed, "changed"),
        ] {
            if n > 0 {
                parts.push(format!("{n} step{} {what}", plural(n)));
            }
        }
        if scripts > 0 {
            parts.push(format!("{scripts} file{} differ", plural(scripts)));
        }
        if parts.is_empty() {
            "steps renumbered".into()
        } else {
            parts.join(", ")
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Compares two bundles.
pub fn diff(old: &Side, new: &Side) -> Diff {
    let fields = field_changes(&old.manifest, &new.manifest);
    let mut steps = step_rows(&old.manifest, &new.manifest);
    let masks = (Masker::new(old), Masker::new(new));
    let mut files = Vec::new();
    let mut claimed: BTreeSet<String> = BTreeSet::from([MARKER.into(), "SHA256SUMS".into()]);
    // The library has a new name whenever it changes: compare it as one file.
    if masks.0.library.is_some() || masks.1.library.is_some() {
        let path = |m: &Masker| m.library.as_ref().map(|(p, _)| p.clone());
        let pair = Pair {
            host: "",
            old: path(&masks.0),
            new: path(&masks.1),
            renumber: None,
            like: None,
        };
        claimed.extend(pair.old.iter().chain(&pair.new).cloned());
        if let Some(c) = compare_file(old, new, &masks, &pair) {
            files.push((Vec::new(), c));
        }
    }
    let mut counts = Vec::with_capacity(steps.len());
    for row in &steps {
        let mut changed_here = 0;
        for pair in script_pairs(row) {
            claimed.extend(pair.old.iter().chain(&pair.new).cloned());
            if let Some(c) = compare_file(old, new, &masks, &pair) {
                if c.kind == FileKind::Changed {
                    changed_here += 1;
                }
                let mut hosts = vec![pair.host.to_owned()];
                hosts.extend(pair.like.map(|(h, _)| h.to_owned()));
                files.push((hosts, c));
            }
        }
        counts.push(changed_here);
    }
    for (row, n) in steps.iter_mut().zip(counts) {
        row.scripts_changed = n;
    }
    // Files outside the steps (README.md, verify.sh, anything else), by path.
    let rest: BTreeSet<&str> = old
        .bundle
        .files
        .keys()
        .chain(new.bundle.files.keys())
        .map(String::as_str)
        .filter(|p| !claimed.contains(*p))
        .collect();
    for path in rest {
        let pair = Pair {
            host: "",
            old: old.bundle.files.contains_key(path).then(|| path.to_owned()),
            new: new.bundle.files.contains_key(path).then(|| path.to_owned()),
            renumber: None,
            like: None,
        };
        if let Some(c) = compare_file(old, new, &masks, &pair) {
            files.push((Vec::new(), c));
        }
    }
    Diff {
        old_label: old.label.clone(),
        new_label: new.label.clone(),
        old: old.manifest.clone(),
        new: new.manifest.clone(),
        fields,
        steps,
        files: group(files),
    }
}

fn field_changes(old: &Manifest, new: &Manifest) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (name, o, n) in [
        ("cluster", &old.cluster, &new.cluster),
        ("distribution", &old.distribution, &new.distribution),
        ("scenario", &old.scenario, &new.scenario),
        ("current version", &old.from, &new.from),
        ("target version", &old.to, &new.to),
    ] {
        if o != n {
            out.push(FieldChange {
                name,
                old: o.clone(),
                new: n.clone(),
            });
        }
    }
    out
}

/// Ids made unique by occurrence (`start`, `start#2`), so a procedure that
/// repeats an id still matches step for step.
fn keys(steps: &[ManifestStep]) -> Vec<String> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    steps
        .iter()
        .map(|s| {
            let n = seen.entry(&s.id).or_default();
            *n += 1;
            if *n == 1 {
                s.id.clone()
            } else {
                format!("{}#{n}", s.id)
            }
        })
        .collect()
}

fn step_rows(old: &Manifest, new: &Manifest) -> Vec<StepRow> {
    let (ok, nk) = (keys(&old.steps), keys(&new.steps));
    // (old index, new index) in display order.
    let mut pairs: Vec<(Option<usize>, Option<usize>)> = Vec::new();
    for op in capture_diff_slices(Algorithm::Myers, &ok, &nk) {
        let (o, n) = (op.old_range(), op.new_range());
        if let DiffOp::Equal { .. } = op {
            pairs.extend(o.zip(n).map(|(i, j)| (Some(i), Some(j))));
        } else {
            pairs.extend(o.map(|i| (Some(i), None)));
            pairs.extend(n.map(|j| (None, Some(j))));
        }
    }
    // A key both removed and added moved: keep one row, at its new place.
    let removed: BTreeMap<&str, usize> = pairs
        .iter()
        .filter_map(|p| match p {
            (Some(i), None) => Some((ok[*i].as_str(), *i)),
            _ => None,
        })
        .collect();
    let mut moved = BTreeSet::new();
    for p in &mut pairs {
        if let (None, Some(j)) = *p
            && let Some(&i) = removed.get(nk[j].as_str())
        {
            *p = (Some(i), Some(j));
            moved.insert(i);
        }
    }
    pairs
        .into_iter()
        .filter(|p| !matches!(p, (Some(i), None) if moved.contains(i)))
        .map(|(i, j)| {
            let o = i.map(|i| old.steps[i].clone());
            let n = j.map(|j| new.steps[j].clone());
            let changes = match (&o, &n) {
                (Some(o), Some(n)) => step_changes(o, n),
                _ => Vec::new(),
            };
            StepRow {
                moved: i.is_some_and(|i| moved.contains(&i)),
                old: o,
                new: n,
                changes,
                scripts_changed: 0,
            }
        })
        .collect()
}

fn step_changes(o: &ManifestStep, n: &ManifestStep) -> Vec<String> {
    let mut c = Vec::new();
    if o.title != n.title {
        c.push(format!("title was \"{}\"", o.title));
    }
    // Sets: a step of a 5,000-node cluster lists 5,000 hosts.
    let in_old: BTreeSet<&String> = o.hosts.iter().collect();
    let in_new: BTreeSet<&String> = n.hosts.iter().collect();
    let added: Vec<String> = n
        .hosts
        .iter()
        .filter(|h| !in_old.contains(h))
        .cloned()
        .collect();
    let removed: Vec<String> = o
        .hosts
        .iter()
        .filter(|h| !in_new.contains(h))
        .cloned()
        .collect();
    if !added.is_empty() {
        c.push(format!("runs also on {}", hosts_brief(&added)));
    }
    if !removed.is_empty() {
        c.push(format!("no longer runs on {}", hosts_brief(&removed)));
    }
    let kept_old: Vec<&String> = o.hosts.iter().filter(|h| in_new.contains(h)).collect();
    let kept_new: Vec<&String> = n.hosts.iter().filter(|h| in_old.contains(h)).collect();
    if kept_old != kept_new {
        let order = |v: Vec<&String>| hosts_brief(&v.into_iter().cloned().collect::<Vec<_>>());
        c.push(format!(
            "host order {} (was {})",
            order(kept_new),
            order(kept_old)
        ));
    }
    if o.parallel != n.parallel {
        c.push(if n.parallel {
            "now parallel (was one host at a time)".into()
        } else {
            "now one host at a time (was parallel)".into()
        });
    }
    if o.destructive != n.destructive {
        c.push(if n.destructive {
            "now DESTROYS DATA (did not)".into()
        } else {
            "no longer destroys data".into()
        });
    }
    c
}

/// Two scripts to compare: one step on one host, before and after.
struct Pair<'a> {
    host: &'a str,
    old: Option<String>,
    new: Option<String>,
    /// `(old number, new number, id)` when both sides have the step.
    renumber: Option<(usize, usize, &'a str)>,
    /// For an added script: `(host, path)` of the new script to diff against.
    like: Option<(&'a str, &'a str)>,
}

fn script_pairs(row: &StepRow) -> Vec<Pair<'_>> {
    let mut out = Vec::new();
    let renumber = match (&row.old, &row.new) {
        (Some(o), Some(n)) => Some((o.number, n.number, n.id.as_str())),
        _ => None,
    };
    if let Some(n) = &row.new {
        let old_runs: BTreeMap<&str, &str> = row
            .old
            .as_ref()
            .map(|o| o.runs().collect())
            .unwrap_or_default();
        let old_run = |host: &str| old_runs.get(host).map(|p| (*p).to_owned());
        // What an added script is compared with: the host that had the step
        // before and whose name is most like it (`agent-3` → `agent-2`), else
        // the step's first host.
        let model = |host: &str| {
            let common = |h: &str| {
                h.bytes()
                    .zip(host.bytes())
                    .take_while(|(a, b)| a == b)
                    .count()
            };
            n.runs()
                .enumerate()
                .filter(|(_, (h, _))| old_run(h).is_some())
                .max_by_key(|(i, (h, _))| (common(h), *i))
                .map(|(_, run)| run)
                .or_else(|| n.runs().next())
                .filter(|(h, _)| *h != host)
        };
        for (host, path) in n.runs() {
            let old = old_run(host);
            out.push(Pair {
                host,
                renumber: old.as_ref().and(renumber),
                like: if old.is_none() { model(host) } else { None },
                old,
                new: Some(path.to_owned()),
            });
        }
    }
    if let Some(o) = &row.old {
        let in_new: BTreeSet<&str> = row
            .new
            .as_ref()
            .map(|n| n.hosts.iter().map(String::as_str).collect())
            .unwrap_or_default();
        for (host, path) in o.runs() {
            let still = in_new.contains(host);
            if !still {
                out.push(Pair {
                    host,
                    old: Some(path.to_owned()),
                    new: None,
                    renumber: None,
                    like: None,
                });
            }
        }
    }
    out
}

/// Replaces what every edit of the plan changes anyway.
struct Masker {
    sha: String,
    suffix: String,
    /// The runtime library's path and sha256, if the bundle has one.
    library: Option<(String, String)>,
}

impl Masker {
    fn new(side: &Side) -> Self {
        let p = &side.manifest;
        let library = side
            .bundle
            .files
            .iter()
            .find(|(path, _)| crate::render::Library::is_library(path))
            .map(|(path, f)| (path.clone(), crate::digest::sha256_hex(&f.bytes)));
        Self {
            sha: p.plan_sha256.clone(),
            suffix: crate::plan::suffix_of(&p.plan_sha256),
            library,
        }
    }

    fn apply(&self, text: &str) -> String {
        let mut text = text.to_owned();
        if let Some((_, sha)) = &self.library {
            text = text.replace(sha.as_str(), LIBRARY_SHA_MASK).replace(
                &format!("rewind-{}.sh", &sha[..12]),
                "rewind-<library-sha12>.sh",
            );
        }
        if self.sha.is_empty() {
            return text;
        }
        text.replace(&self.sha, PLAN_SHA_MASK)
            .replace(&self.suffix, "rewind-<plan-sha8>")
    }
}

fn compare_file(
    old: &Side,
    new: &Side,
    masks: &(Masker, Masker),
    pair: &Pair<'_>,
) -> Option<FileChange> {
    let of = pair.old.as_ref().and_then(|p| old.bundle.files.get(p));
    let nf = pair.new.as_ref().and_then(|p| new.bundle.files.get(p));
    let text = |f: Option<&crate::bundle::File>, m: &Masker| {
        f.map(|f| m.apply(&String::from_utf8_lossy(&f.bytes)))
    };
    let mut ot = text(of, &masks.0);
    let nt = text(nf, &masks.1);
    if let (Some(t), Some((on, nn, id))) = (&mut ot, pair.renumber) {
        // The script template writes the step as `NN-id` (file name, README
        // anchor, REWIND_STEP).
        *t = t.replace(&format!("{on:02}-{id}"), &format!("{nn:02}-{id}"));
    }
    let mode = match (of, nf) {
        (Some(a), Some(b)) if a.mode != b.mode => Some((a.mode, b.mode)),
        _ => None,
    };
    if ot == nt && mode.is_none() {
        return None;
    }
    let kind = match (of, nf) {
        (None, _) => FileKind::Added,
        (_, None) => FileKind::Removed,
        _ => FileKind::Changed,
    };
    let like = match (&kind, pair.like) {
        (FileKind::Added, Some((_, p))) => new.bundle.files.get(p).map(|f| (p, f)),
        _ => None,
    };
    if let Some((_, f)) = like {
        ot = text(Some(f), &masks.1);
    }
    let a = ot.unwrap_or_default();
    let b = nt.unwrap_or_default();
    // A removed file is named, not printed: the step table says what is
    // no longer run, and its text was reviewed when it was added.
    let diff = if a == b || kind == FileKind::Removed {
        String::new()
    } else {
        let old_name = match (like, &pair.old) {
            (Some((p, _)), _) => format!("new/{p}"),
            (None, Some(p)) => format!("old/{p}"),
            (None, None) => "/dev/null".to_owned(),
        };
        let new_name = pair
            .new
            .as_ref()
            .map_or_else(|| "/dev/null".to_owned(), |p| format!("new/{p}"));
        TextDiff::configure()
            .algorithm(Algorithm::Patience)
            .diff_lines(&a, &b)
            .unified_diff()
            .context_radius(3)
            .header(&old_name, &new_name)
            .to_string()
    };
    Some(FileChange {
        kind,
        old_path: pair.old.clone(),
        new_path: pair.new.clone(),
        diff,
        mode,
        like: like.map(|(p, _)| p.to_owned()),
        also: Vec::new(),
    })
}

/// Merges changes that are the same but for the host name, keeping the
/// first one's diff.
fn group(files: Vec<(Vec<String>, FileChange)>) -> Vec<FileChange> {
    let mut out: Vec<FileChange> = Vec::new();
    let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
    for (hosts, f) in files {
        let key = change_key(&hosts, &f);
        if let Some(&i) = by_key.get(&key) {
            out[i].also.push(f.path().to_owned());
        } else {
            by_key.insert(key, out.len());
            out.push(f);
        }
    }
    out
}

/// The changed lines (not their context, not the headers) with the host
/// names masked where they stand as words.
fn change_key(hosts: &[String], f: &FileChange) -> String {
    let mask = |line: &str| {
        hosts.iter().enumerate().fold(line.to_owned(), |l, (i, h)| {
            mask_word(&l, h, &format!("<host{i}>"))
        })
    };
    let mut key = format!("{:?} {:?} {}\n", f.kind, f.mode, f.like.is_some());
    for line in f.diff.lines().skip(2) {
        if line.starts_with('+') || line.starts_with('-') {
            key.push_str(&mask(line));
            key.push('\n');
        }
    }
    if f.diff.is_empty() {
        key.push_str(&mask(&f.path().replace('/', " / ")));
    }
    key
}

fn mask_word(line: &str, word: &str, with: &str) -> String {
    if word.is_empty() {
        return line.to_owned();
    }
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_';
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + word.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_none_or(|c| !is_name(c)) && after.is_none_or(|c| !is_name(c)) {
            out.push_str(with);
        } else {
            out.push_str(word);
        }
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------- rendering

/// Hosts for a table cell or a label: all of them when few, else the first
/// three, an ellipsis, the last and the count (a 5,000-node cluster must
/// stay readable).
fn hosts_brief(hosts: &[String]) -> String {
    const FEW: usize = 6;
    if hosts.len() <= FEW {
        return hosts.join(", ");
    }
    format!(
        "{}, … {} ({} hosts)",
        hosts[..3].join(", "),
        hosts[hosts.len() - 1],
        hosts.len()
    )
}

fn step_label(s: &ManifestStep) -> String {
    format!("{}. {}", s.number, s.title)
}

fn flags(s: &ManifestStep) -> String {
    let mut f = vec![hosts_brief(&s.hosts)];
    if s.hosts.len() > 1 {
        f.push(
            if s.parallel {
                "parallel"
            } else {
                "one at a time"
            }
            .into(),
        );
    }
    if s.destructive {
        f.push("DESTROYS DATA".into());
    }
    f.join("; ")
}

fn row_words(r: &StepRow) -> Vec<String> {
    let mut w = Vec::new();
    if r.moved {
        w.push(format!(
            "moved (was step {})",
            r.old.as_ref().map_or(0, |o| o.number)
        ));
    } else if let Some((o, _)) = r.renumbered() {
        w.push(format!("was step {o}"));
    }
    w.extend(r.changes.iter().cloned());
    if r.scripts_changed > 0 {
        w.push(format!(
            "{} script{} changed",
            r.scripts_changed,
            plural(r.scripts_changed)
        ));
    }
    w
}

impl Diff {
    /// What a reviewer must not miss: a step that destroys data now runs on
    /// a host that did not run it, or the backup is now expected elsewhere
    /// (the restore moved, e.g. with the init server).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        for r in &self.steps {
            let (Some(o), Some(n)) = (&r.old, &r.new) else {
                continue;
            };
            let added: Vec<&str> = n
                .hosts
                .iter()
                .filter(|h| !o.hosts.contains(h))
                .map(String::as_str)
                .collect();
            if added.is_empty() {
                continue;
            }
            if matches!(n.id.as_str(), "restore" | "restore-db") {
                w.push(format!(
                    "step {} ({}) now runs on {} instead of {}: the backup and the saved token must be there",
                    n.number,
                    n.title,
                    n.hosts.join(", "),
                    o.hosts.join(", ")
                ));
            } else if n.destructive && o.destructive {
                w.push(format!(
                    "step {} ({}) destroys data and now also runs on {}",
                    n.number,
                    n.title,
                    added.join(", ")
                ));
            }
        }
        w
    }

    fn notes(&self) -> Vec<String> {
        let mut n = Vec::new();
        if self.old.plan_sha256 != self.new.plan_sha256 {
            n.push(format!(
                "plan sha256 {} → {}; script diffs write it as {PLAN_SHA_MASK}, and the library's sha256 (which every script pins) as {LIBRARY_SHA_MASK}",
                short(&self.old.plan_sha256),
                short(&self.new.plan_sha256)
            ));
        }
        if self.old.rewind_version != self.new.rewind_version {
            n.push(format!(
                "written by rewind {} → {}",
                self.old.rewind_version, self.new.rewind_version
            ));
        }
        if self.steps.iter().any(|r| r.renumbered().is_some()) {
            n.push("scripts of renumbered steps are compared as if renumbered".into());
        }
        n
    }

    /// Plain text: summary, step list, then unified diffs.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "old: {}", self.old_label);
        let _ = writeln!(o, "new: {}", self.new_label);
        let _ = writeln!(
            o,
            "cluster {} ({}): {} → {}",
            self.new.cluster, self.new.distribution, self.new.from, self.new.to
        );
        if self.is_equal() {
            let _ = writeln!(o, "\nThe procedure is the same.");
        } else {
            let _ = writeln!(o, "\nThe procedure differs: {}.", self.counts());
        }
        for warning in self.warnings() {
            let _ = writeln!(o, "warning: {warning}");
        }
        for note in self.notes() {
            let _ = writeln!(o, "note: {note}");
        }
        if !self.fields.is_empty() {
            o.push('\n');
            for f in &self.fields {
                let _ = writeln!(o, "{}: {} → {}", f.name, f.old, f.new);
            }
        }
        o.push_str("\nSteps (new order):\n");
        for r in &self.steps {
            let (mark, s) = match (&r.old, &r.new) {
                (None, Some(n)) => ('+', n),
                (Some(o), None) => ('-', o),
                (_, Some(n)) if r.is_changed() => ('~', n),
                (_, Some(n)) => (' ', n),
                (None, None) => continue,
            };
            let num = if r.new.is_none() {
                "  -".to_owned()
            } else {
                format!("{:3}", s.number)
            };
            let _ = writeln!(o, "{mark} {num}  {}  [{}]", s.title, flags(s));
            let words = if r.new.is_none() {
                vec![format!("removed (was step {})", s.number)]
            } else if r.old.is_none() {
                vec!["added".to_owned()]
            } else {
                row_words(r)
            };
            if !words.is_empty() {
                let _ = writeln!(o, "        {}", words.join("; "));
            }
        }
        for f in &self.files {
            o.push('\n');
            o.push_str(&file_title(f, false));
            o.push('\n');
            o.push_str(&f.diff);
        }
        o
    }

    /// Markdown for a pull-request comment: summary, step table, diagram,
    /// then the diffs (cut to stay under the comment size limit).
    pub fn markdown(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "## rewind diff: `{}` {} → {}\n",
            self.new.cluster, self.new.from, self.new.to
        );
        let _ = writeln!(o, "Old: `{}` · new: `{}`\n", self.old_label, self.new_label);
        if self.is_equal() {
            o.push_str("**The procedure is the same.**\n\n");
        } else {
            let _ = writeln!(o, "**The procedure changes:** {}.\n", self.counts());
        }
        let destroys: Vec<&StepRow> = self
            .steps
            .iter()
            .filter(|r| {
                r.new.as_ref().is_some_and(|n| n.destructive)
                    && (r.old.is_none() || r.old.as_ref().is_some_and(|o| !o.destructive))
            })
            .collect();
        let mut warnings = Vec::new();
        if !destroys.is_empty() {
            let names: Vec<String> = destroys
                .iter()
                .filter_map(|r| r.new.as_ref().map(step_label))
                .collect();
            warnings.push(format!("Newly destructive: {}", names.join("; ")));
        }
        warnings.extend(self.warnings());
        if !warnings.is_empty() {
            o.push_str("> [!WARNING]\n");
            for w in &warnings {
                let _ = writeln!(o, "> - {}", md_cell(w));
            }
            o.push('\n');
        }
        if !self.fields.is_empty() {
            o.push_str("| | old | new |\n|---|---|---|\n");
            for f in &self.fields {
                let _ = writeln!(
                    o,
                    "| {} | `{}` | `{}` |",
                    f.name,
                    md_cell(&f.old),
                    md_cell(&f.new)
                );
            }
            o.push('\n');
        }
        for note in self.notes() {
            let _ = writeln!(o, "- {}", md_cell(&note));
        }
        if !self.notes().is_empty() {
            o.push('\n');
        }
        o.push_str("### Steps\n\n");
        o.push_str("| # | step | where | parallel | destroys data | change |\n");
        o.push_str("|---|---|---|---|---|---|\n");
        for r in &self.steps {
            o.push_str(&md_row(r));
        }
        if self.steps.iter().any(StepRow::is_changed) {
            let mut marks = Marks::default();
            for r in &self.steps {
                match (&r.old, &r.new) {
                    (None, Some(n)) => {
                        marks.added.insert(n.number);
                    }
                    (Some(o), Some(n)) if r.is_changed() => {
                        marks.changed.insert(n.number);
                        let new: std::collections::BTreeSet<String> = n
                            .hosts
                            .iter()
                            .filter(|h| !o.hosts.contains(h))
                            .cloned()
                            .collect();
                        if !new.is_empty() {
                            marks.new_hosts.insert(n.number, new);
                        }
                    }
                    _ => {}
                }
            }
            let _ = write!(
                o,
                "\n<details><summary>Order after the change</summary>\n\n```mermaid\n{}```\n\n</details>\n",
                mermaid::flowchart_marked(&self.new, &marks)
            );
        }
        if !self.files.is_empty() {
            o.push_str("\n### Files\n");
            let mut budget = MARKDOWN_BUDGET;
            let mut skipped = Vec::new();
            // Small, telling diffs first; whole new scripts and the runbook
            // last, so the budget goes to what a reviewer must read.
            // The library, whose every change is shown once, comes after
            // the step bodies so that it never crowds them out.
            let rank = |f: &FileChange| match (&f.kind, &f.like) {
                _ if f.path() == "README.md" => 5,
                _ if crate::render::Library::is_library(f.path()) => 4,
                (FileKind::Changed, _) => 0,
                (FileKind::Added, Some(_)) => 1,
                (FileKind::Removed, _) => 2,
                (FileKind::Added, None) => 3,
            };
            let mut ordered: Vec<&FileChange> = self.files.iter().collect();
            ordered.sort_by_key(|f| rank(f));
            for f in ordered {
                let fence = fence(&f.diff);
                let block = if f.diff.is_empty() {
                    String::new()
                } else {
                    format!("{fence}diff\n{}{fence}\n", f.diff)
                };
                let title = file_title(f, true);
                if block.len() > budget {
                    skipped.push(title);
                    continue;
                }
                budget -= block.len();
                // The runbook is long and follows from the steps: fold it.
                if f.path() == "README.md" && !block.is_empty() {
                    let _ = write!(
                        o,
                        "\n<details><summary>README.md (the runbook)</summary>\n\n{block}\n</details>\n"
                    );
                } else {
                    let _ = write!(o, "\n{title}\n\n{block}");
                }
            }
            if !skipped.is_empty() {
                let _ = writeln!(
                    o,
                    "\nNot shown here (too long for a comment; run `rewind diff` for them):\n"
                );
                for t in skipped {
                    let _ = writeln!(o, "- {t}");
                }
            }
        }
        o
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn file_title(f: &FileChange, md: bool) -> String {
    let q = |p: &str| if md { format!("`{p}`") } else { p.to_owned() };
    let what = match (&f.kind, &f.old_path, &f.new_path) {
        (FileKind::Added, _, Some(n)) => match &f.like {
            Some(l) => format!("added {}, shown as a diff against {}", q(n), q(l)),
            None => format!("added {}", q(n)),
        },
        (FileKind::Removed, Some(o), _) => format!("removed {}", q(o)),
        (_, Some(o), Some(n)) if o != n => format!("{} → {}", q(o), q(n)),
        _ => q(f.path()),
    };
    let mut t = if md {
        format!("**{what}**")
    } else {
        format!("=== {what}")
    };
    if let Some((a, b)) = f.mode {
        let _ = write!(t, " (mode {a:04o} → {b:04o})");
    }
    if !f.also.is_empty() {
        let shown: Vec<String> = f.also.iter().take(MAX_ALSO).map(|p| q(p)).collect();
        let more = f.also.len().saturating_sub(MAX_ALSO);
        let _ = write!(
            t,
            " and the same change in {} more: {}{}",
            f.also.len(),
            shown.join(", "),
            if more > 0 {
                format!(", … ({more} not named)")
            } else {
                String::new()
            }
        );
    }
    t
}

fn md_row(r: &StepRow) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" };
    match (&r.old, &r.new) {
        (Some(o), None) => format!(
            "| ~~{}~~ | ~~{}~~ | ~~{}~~ | {} | {} | **removed** |\n",
            o.number,
            md_cell(&o.title),
            md_cell(&hosts_brief(&o.hosts)),
            yes(o.parallel),
            if o.destructive { "⚠ yes" } else { "no" }
        ),
        (_, Some(n)) => {
            let changed = r.is_changed();
            let b = |t: String| if changed { format!("**{t}**") } else { t };
            let destroys = if n.destructive {
                "⚠ **yes**".to_owned()
            } else {
                "no".to_owned()
            };
            let change = if r.old.is_none() {
                "**added**".to_owned()
            } else {
                md_cell(&row_words(r).join("; "))
            };
            format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                b(n.number.to_string()),
                b(md_cell(&n.title)),
                md_cell(&hosts_brief(&n.hosts)),
                yes(n.parallel),
                destroys,
                change
            )
        }
        (None, None) => String::new(),
    }
}

/// Text for one markdown table cell.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A code fence longer than any backtick run inside the text.
fn fence(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_brief_shortens_long_lists() {
        let few: Vec<String> = ["a", "b"].map(String::from).to_vec();
        assert_eq!(hosts_brief(&few), "a, b");
        let many: Vec<String> = (1..=5000).map(|i| format!("agent-{i}")).collect();
        assert_eq!(
            hosts_brief(&many),
            "agent-1, agent-2, agent-3, … agent-5000 (5000 hosts)"
        );
    }

    #[test]
    fn host_names_are_masked_only_as_words() {
        assert_eq!(
            mask_word("-drain a-1 xa-1 a-10", "a-1", "<h>"),
            "-drain <h> xa-1 a-10"
        );
        assert_eq!(mask_word("a-1", "a-1", "<h>"), "<h>");
    }

    #[test]
    fn fences_outgrow_backticks_inside() {
        assert_eq!(fence("no ticks"), "```");
        assert_eq!(fence("a ```` b"), "`````");
    }
}
