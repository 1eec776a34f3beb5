//! The golden bundles, run the way an operator runs them (issue 3).
//!
//! Every test builds worlds with the sandbox harness (`tests/sandbox/`): one
//! fake host per node plus the workstation, seeded like real RKE2 hosts, each
//! script run in its own mount, UTS and PID namespace with the stand-ins of
//! `tests/stubs/` first on PATH. Needs root and the six shells.
//!
//! - `walk_*`: every golden bundle, all steps in README order, under each of
//!   the six shells: the order of commands across hosts, the files
//!   afterwards, the journal lines, no secret anywhere; the trace of
//!   commands is the same under every shell (insta snapshot per plan).
//! - `dry_run_*`: before each step runs for real, its dry run changes no file
//!   of any host and prints exactly the commands the real run then runs.
//! - `faults_*`: each command a step runs, made to fail: the step stops at
//!   once and says so; fixed, it resumes; finished, it says "already done".
//! - `guard_*`: wrong host, not root, no terminal, bad hashes, `server:` on
//!   the init server.

mod common;
#[path = "sandbox/mod.rs"]
#[allow(dead_code)] // each test crate uses part of the harness
mod harness;

use harness::checks;
use harness::shells::Shell;
use harness::world::{ScriptRun, World, golden_plans};

/// Walks every golden bundle under `shell`; returns every problem found.
fn walk_every_bundle(shell: Shell) {
    let mut failures = Vec::new();
    for plan in golden_plans() {
        let t = std::time::Instant::now();
        let w = World::golden(&plan, shell);
        let before = w.digest();
        let runs = match w.walk(&[]) {
            Ok(runs) => runs,
            Err(runs) => {
                failures.push(format!(
                    "{plan}: the walk stopped:\n{}",
                    runs.last().expect("a run").describe()
                ));
                continue;
            }
        };
        let mut p = if w.rke1.is_some() {
            let mut p = harness::rke1::order(&w, &w.journal());
            p.extend(harness::rke1::state(&w, &runs));
            p
        } else {
            let mut p = checks::order(&w, &w.journal());
            p.extend(checks::state(&w, &runs, &before));
            p
        };
        p.extend(checks::no_secrets(&w, &runs));
        p.extend(checks::bundle_intact(&w));
        if !p.is_empty() {
            failures.push(format!("{plan} ({}):\n  {}", shell.name(), p.join("\n  ")));
            continue;
        }
        eprintln!(
            "{plan} under {}: {} runs in {:.1?}",
            shell.name(),
            runs.len(),
            t.elapsed()
        );
        let trace = checks::trace(&w.journal());
        insta::with_settings!({ snapshot_suffix => plan.clone(), prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!("sandbox_trace", trace);
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn walk_under_dash() {
    walk_every_bundle(Shell::Dash);
}

#[test]
fn walk_under_posh() {
    walk_every_bundle(Shell::Posh);
}

#[test]
fn walk_under_yash() {
    walk_every_bundle(Shell::Yash);
}

#[test]
fn walk_under_mksh() {
    walk_every_bundle(Shell::Mksh);
}

#[test]
fn walk_under_busybox() {
    walk_every_bundle(Shell::Busybox);
}

#[test]
fn walk_under_bash() {
    walk_every_bundle(Shell::Bash);
}

/// Runs every script again after a walk: each says it is already done,
/// exits 0 and runs nothing.
fn rerun_problems(w: &World) -> Vec<String> {
    let mut p = Vec::new();
    for script in w.scripts() {
        let r: ScriptRun = w.run(&script, &[("REWIND_YES", "1")]);
        if r.run.code != 0 || !r.run.stdout.contains("already done") || !r.calls.is_empty() {
            p.push(format!("re-running a finished step:\n{}", r.describe()));
        }
    }
    p
}

#[test]
fn finished_steps_say_already_done() {
    let mut failures = Vec::new();
    for plan in golden_plans() {
        let w = World::golden(&plan, Shell::Dash);
        if let Err(runs) = w.walk(&[]) {
            failures.push(format!(
                "{plan}: the walk stopped:\n{}",
                runs.last().expect("a run").describe()
            ));
            continue;
        }
        let p = rerun_problems(&w);
        if !p.is_empty() {
            failures.push(format!("{plan}:\n{}", p.join("\n")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
