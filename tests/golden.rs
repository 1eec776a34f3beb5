//! Every reference plan compiles to exactly its golden bundle: the same set
//! of files, the same bytes, the same modes. A difference is a change of
//! procedure; it fails with unified diffs, and `UPDATE_GOLDEN=1` rewrites
//! `golden/` instead (then review the diff with `git diff golden/`).

mod common;

use camino::Utf8Path;
use rewind::golden::{self, Outcome};

/// How to accept a reviewed change of procedure.
const REFRESH: &str = "UPDATE_GOLDEN=1 cargo test --test golden";

/// Diffs shown per plan before the rest is only listed.
const DIFFS_PER_PLAN: usize = 3;

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| !v.is_empty() && v != "0")
}

#[test]
fn every_plan_compiles_to_its_golden_bundle() {
    // Relative paths: cargo runs integration tests from the repository root,
    // and the plan's name is what diagnostics would print.
    let plans_dir = Utf8Path::new(common::PLANS);
    let golden_dir = Utf8Path::new(common::GOLDEN);
    let pairing = golden::pair(plans_dir, golden_dir).expect("list plans/ and golden/");
    assert!(!pairing.entries.is_empty(), "no plans/*.toml");
    let update = updating();
    let mut failures = Vec::new();
    // Only drift and missing folders are fixed by refreshing.
    let mut refreshable = false;

    for orphan in &pairing.orphans {
        if update && orphan.join(rewind::bundle::MARKER).is_file() {
            std::fs::remove_dir_all(orphan).expect("remove a golden folder without a plan");
            eprintln!("removed {orphan}: no plan compiles to it");
        } else {
            failures.push(format!(
                "{orphan}: no plans/*.toml compiles to it; golden/ holds only one folder per plan \
                 (remove it, or rename it after its plan)"
            ));
        }
    }

    for entry in &pairing.entries {
        let written = |actual: &rewind::bundle::Bundle| {
            golden::update(&entry.golden, actual)
                .unwrap_or_else(|e| panic!("cannot rewrite {}: {e}", entry.golden));
            eprintln!("rewrote {}", entry.golden);
        };
        match golden::audit(entry) {
            Outcome::Same => {}
            Outcome::NoGolden(actual) if update => written(&actual),
            Outcome::Drifted { actual, .. } if update => written(&actual),
            Outcome::NoGolden(_) => {
                refreshable = true;
                failures.push(format!(
                    "{}: missing; {} compiles, but its golden bundle was never written",
                    entry.golden, entry.plan
                ));
            }
            Outcome::Drifted {
                expected,
                actual,
                drifts,
            } => {
                refreshable = true;
                failures.push(format!(
                    "{} does not compile to {} any more ({} differences):\n{}",
                    entry.plan,
                    entry.golden,
                    drifts.len(),
                    golden::render(
                        &expected,
                        &actual,
                        &drifts,
                        entry.golden.as_str(),
                        &format!("compiled/{}", entry.name),
                        DIFFS_PER_PLAN,
                    )
                ));
            }
            Outcome::Rejected(diagnostics) => failures.push(format!(
                "{} is a reference plan but is rejected:\n{diagnostics}",
                entry.plan
            )),
            Outcome::Unreadable(why) => failures.push(why),
        }
    }

    let hint = if refreshable {
        format!(
            "\n\nIf the change of procedure is intended, refresh the golden bundles and review \
             the result with `git diff golden/`:\n    {REFRESH}\n"
        )
    } else {
        String::new()
    };
    assert!(failures.is_empty(), "\n{}{hint}", failures.join("\n\n"));
}

/// The comparison looks at the files on disk, so a stray byte or a lost
/// execute bit in `golden/` must show up as drift (this guards the test
/// itself against comparing a bundle with its own copy).
#[test]
fn a_changed_golden_copy_is_drift() {
    let (name, plan) = common::plans().into_iter().next().expect("a plan");
    let text = std::fs::read_to_string(common::repo().join(&plan)).expect("read plan");
    let source = rewind::source::SourceFile::new(plan.as_str(), text);
    let compiled = rewind::compiler::build(&source, None).expect("reference plan compiles");

    let dir = tempfile::tempdir().expect("tempdir");
    let golden_dir = Utf8Path::from_path(dir.path()).expect("utf-8").join(&name);
    golden::update(&golden_dir, &compiled).expect("write copy");
    let copy = golden::read(&golden_dir).expect("read copy");
    assert!(golden::compare(&copy, &compiled).is_empty());

    let script = compiled
        .files
        .iter()
        .find(|(p, _)| p.ends_with(".sh"))
        .map(|(p, _)| p.clone())
        .expect("a script");
    let mut bytes = copy.files[&script].bytes.clone();
    bytes[0] ^= 1;
    std::fs::write(golden_dir.join(&script), &bytes).expect("damage copy");
    set_mode(&golden_dir.join("README.md"), 0o755);
    let damaged = golden::read(&golden_dir).expect("read copy");
    assert_eq!(
        golden::compare(&damaged, &compiled),
        vec![
            golden::Drift::Mode {
                path: "README.md".into(),
                expected: 0o755,
                actual: 0o644
            },
            golden::Drift::Changed(script),
        ]
    );
}

fn set_mode(path: &Utf8Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}
