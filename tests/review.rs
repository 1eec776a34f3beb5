//! The review and audit tools (issue 6), through the real binary where an
//! exit code or a file layout is the contract: `diff` (plans, bundles,
//! markdown), `audit` (drift, refresh, missing, orphans, a newer rewind),
//! `explain --format mermaid` and the README diagram, `schema` (current,
//! and every reference plan names it and fits it), `init` (rejected until
//! filled in, accepted after), `completions`, `man`, and every `--help`.

mod common;

use std::fs;

use camino::{Utf8Path, Utf8PathBuf};
use common::{assert_code, describe, repo, run};
use rewind::bundle::{Bundle, MARKER};
use rewind::review::diff::{self, Side};
use serde_json::{Value, json};

const OLD: &str = "tests/review/old.toml";
const NEW: &str = "tests/review/new.toml";

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("UTF-8 stderr")
}

struct Scratch {
    _dir: tempfile::TempDir,
    root: Utf8PathBuf,
}

fn scratch() -> Scratch {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Utf8Path::from_path(dir.path())
        .expect("UTF-8 temp path")
        .to_owned();
    Scratch { _dir: dir, root }
}

fn compile(plan: &str, out: &Utf8Path) {
    let o = run(&["compile", plan, "--out", out.as_str()]);
    assert_code(&o, 0);
}

// ------------------------------------------------------------------ diff

#[test]
fn diff_of_a_plan_with_itself_is_equal_and_exits_0() {
    let out = run(&["diff", OLD, OLD]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("The procedure is the same."),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_comment_edit_changes_the_plan_hash_but_not_the_procedure() {
    let s = scratch();
    let edited = s.root.join("edited.toml");
    let text = fs::read_to_string(repo().join(OLD)).unwrap();
    fs::write(&edited, format!("# reviewed by the night shift\n{text}")).unwrap();
    let out = run(&["diff", OLD, edited.as_str()]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("The procedure is the same."), "{text}");
    assert!(text.contains("note: plan sha256 "), "{text}");
}

#[test]
fn diff_between_a_plan_and_its_bundle_and_between_bundles() {
    let s = scratch();
    let (old_dir, new_dir) = (s.root.join("old"), s.root.join("new"));
    compile(OLD, &old_dir);
    compile(NEW, &new_dir);
    assert_code(&run(&["diff", OLD, old_dir.as_str()]), 0);
    let plans = run(&["diff", OLD, NEW, "--format", "markdown"]);
    let bundles = run(&[
        "diff",
        old_dir.as_str(),
        new_dir.as_str(),
        "--format",
        "markdown",
    ]);
    assert_code(&plans, 1);
    assert_code(&bundles, 1);
    // Same report but for the labels.
    assert_eq!(
        stdout(&plans).replace(OLD, "OLD").replace(NEW, "NEW"),
        stdout(&bundles)
            .replace(old_dir.as_str(), "OLD")
            .replace(new_dir.as_str(), "NEW")
    );
}

/// The part of the markdown a reviewer reads first (summary, steps table,
/// diagram) is snapshotted; of the file diffs, only their titles, since
/// the scripts' text belongs to the golden bundles.
#[test]
fn markdown_diff_tells_a_reviewer_what_changes() {
    let out = run(&["diff", OLD, NEW, "--format", "markdown"]);
    assert_code(&out, 1);
    let md = stdout(&out);
    let (head, files) = md.split_once("### Files\n").expect("a Files section");
    let titles: Vec<&str> = files
        .lines()
        .filter(|l| l.starts_with("**") || l.starts_with("<details>"))
        .collect();
    insta::assert_snapshot!("diff_markdown_head", head);
    insta::assert_snapshot!("diff_markdown_file_titles", titles.join("\n"));
    // The new host's scripts are shown against a similar host's, not whole.
    assert!(md.contains(
        "**added `nodes/agent-3/01-preflight.sh`, shown as a diff against `nodes/agent-2/01-preflight.sh`**"
    ));
    assert!(
        md.contains("-REWIND_NODE=agent-2\n+REWIND_NODE=agent-3\n"),
        "{md}"
    );
    // A removed step's script is named, not printed.
    assert!(
        md.contains("**removed `workstation/02-drain.sh`**\n"),
        "{md}"
    );
    // Renumbering and the plan hash are not noise in the diffs.
    assert!(!md.contains("-REWIND_STEP="), "{md}");
    assert!(!md.contains("-REWIND_PLAN="), "{md}");
    assert!(md.contains("+\tcheck_installed_version /usr/local/bin/rke2 v1.28.10+rke2r1"));
    assert!(md.len() < 65_536, "fits a pull-request comment");
}

#[test]
fn text_diff_lists_steps_then_unified_diffs() {
    let out = run(&["diff", OLD, NEW]);
    assert_code(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains("target version: v1.28.9+rke2r1 → v1.28.10+rke2r1\n"),
        "{text}"
    );
    assert!(
        text.contains("-   -  Drain the nodes (workstation)  [workstation]\n"),
        "{text}"
    );
    assert!(text.contains("        removed (was step 2)\n"), "{text}");
    assert!(
        text.contains(
            "\n--- old/nodes/server-1/05-restore.sh\n+++ new/nodes/server-1/04-restore.sh\n"
        ),
        "{text}"
    );
}

#[test]
fn diff_of_a_rejected_plan_exits_4_with_its_diagnostics() {
    // 1 means "the procedures differ"; a rejected input is 4 (issue 11).
    let s = scratch();
    let bad = s.root.join("bad.toml");
    fs::write(&bad, "[cluster]\nname = \"x\"\n").unwrap();
    let out = run(&["diff", OLD, bad.as_str()]);
    assert_code(&out, 4);
    assert!(stderr(&out).contains("error["), "{}", describe(&out));
    assert!(stdout(&out).is_empty());
}

#[test]
fn diff_of_a_folder_that_is_no_bundle_is_a_rejected_input() {
    let s = scratch();
    let out = run(&["diff", OLD, s.root.as_str()]);
    assert_code(&out, 4);
    assert!(
        stderr(&out).contains("does not verify"),
        "{}",
        describe(&out)
    );
    assert!(
        stderr(&out).contains("not a rewind bundle"),
        "{}",
        describe(&out)
    );
    let missing = s.root.join("missing.toml");
    assert_code(&run(&["diff", OLD, missing.as_str()]), 3);
}

/// A bundle made by hand: `steps` are `(id, hosts, parallel, destructive)`;
/// every script says its step and host, plus `extra` for chosen steps.
fn bundle(sha: &str, steps: &[(&str, &[&str], bool, bool)], extra: &[(&str, &str)]) -> Side {
    let mut b = Bundle::default();
    let mut json_steps = Vec::new();
    for (i, (id, hosts, parallel, destructive)) in steps.iter().enumerate() {
        let n = i + 1;
        let scripts: Vec<String> = hosts
            .iter()
            .map(|h| format!("nodes/{h}/{n:02}-{id}.sh"))
            .collect();
        for (h, path) in hosts.iter().zip(&scripts) {
            let more = extra
                .iter()
                .filter(|(s, _)| s == id)
                .map(|(_, t)| *t)
                .collect::<String>();
            b.add(
                path.clone(),
                format!(
                    "#!/bin/sh\n# plan {sha}\n# host: {h}\nREWIND_STEP={n:02}-{id}\nREWIND_SUFFIX=rewind-{}\n{id}_on {h}\n{more}",
                    &sha[..8]
                ),
                0o755,
            );
        }
        json_steps.push(json!({
            "number": n, "id": id, "title": format!("Step {id}"), "where": hosts,
            "scripts": scripts, "parallel": parallel, "destructive": destructive,
        }));
    }
    let plan = json!({
        "rewind_version": "0.1.0", "format": 1, "plan_sha256": sha, "cluster": "c",
        "distribution": "rke2", "scenario": "s", "from": "v2", "to": "v1", "steps": json_steps,
    });
    b.add(MARKER, serde_json::to_string_pretty(&plan).unwrap(), 0o644);
    b.seal();
    Side::new("hand-made", b).unwrap()
}

const SHA_A: &str = "aaaaaaaa00000000000000000000000000000000000000000000000000000000";
const SHA_B: &str = "bbbbbbbb00000000000000000000000000000000000000000000000000000000";

#[test]
fn only_the_plan_hash_differs_means_equal() {
    let steps: &[(&str, &[&str], bool, bool)] = &[("a", &["n1", "n2"], true, false)];
    let d = diff::diff(&bundle(SHA_A, steps, &[]), &bundle(SHA_B, steps, &[]));
    assert!(d.is_equal(), "{}", d.text());
}

#[test]
fn a_moved_step_is_one_row_and_renumbering_alone_changes_no_script() {
    let old: &[(&str, &[&str], bool, bool)] = &[
        ("a", &["n1"], true, false),
        ("b", &["n1"], true, false),
        ("c", &["n1"], true, false),
    ];
    let new: &[(&str, &[&str], bool, bool)] = &[
        ("a", &["n1"], true, false),
        ("c", &["n1"], true, false),
        ("b", &["n1"], true, false),
    ];
    let d = diff::diff(&bundle(SHA_A, old, &[]), &bundle(SHA_B, new, &[]));
    assert!(!d.is_equal());
    assert_eq!(d.steps.len(), 3, "{}", d.text());
    let moved: Vec<_> = d.steps.iter().filter(|r| r.moved).collect();
    assert_eq!(moved.len(), 1);
    assert!(
        d.files.is_empty(),
        "renumbered scripts are the same: {}",
        d.text()
    );
    assert!(
        d.markdown().contains("moved (was step "),
        "{}",
        d.markdown()
    );
}

#[test]
fn flags_hosts_and_order_changes_are_named() {
    let old: &[(&str, &[&str], bool, bool)] = &[
        ("stop", &["n1", "n2"], true, false),
        ("rejoin", &["n2", "n3"], false, true),
    ];
    let new: &[(&str, &[&str], bool, bool)] = &[
        ("stop", &["n1", "n2"], false, true),
        ("rejoin", &["n3", "n2", "n4"], false, true),
    ];
    let d = diff::diff(
        &bundle(SHA_A, old, &[]),
        &bundle(SHA_A, new, &[("rejoin", "sleep 1\n")]),
    );
    let md = d.markdown();
    assert!(
        md.contains("> [!WARNING]\n> - Newly destructive: 1. Step stop\n> - step 2 (Step rejoin) destroys data and now also runs on n4\n"),
        "{md}"
    );
    assert!(
        md.contains("now one host at a time (was parallel); now DESTROYS DATA (did not)"),
        "{md}"
    );
    assert!(
        md.contains("runs also on n4; host order n3, n2 (was n2, n3); 2 scripts changed"),
        "{md}"
    );
    // The same change on n2 and n3 is shown once.
    assert!(
        md.contains(
            "**`nodes/n3/02-rejoin.sh`** and the same change in 1 more: `nodes/n2/02-rejoin.sh`"
        ),
        "{md}"
    );
    assert!(
        md.contains("· NEW") || md.contains("· CHANGED"),
        "diagram marks: {md}"
    );
}

#[test]
fn identical_changes_on_thousands_of_hosts_are_shown_once() {
    let hosts: Vec<String> = (1..=2000).map(|i| format!("agent-{i}")).collect();
    let refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let steps: &[(&str, &[&str], bool, bool)] = &[("start", &refs, true, false)];
    let d = diff::diff(
        &bundle(SHA_A, steps, &[]),
        &bundle(SHA_B, steps, &[("start", "wait_ready\n")]),
    );
    assert_eq!(d.files.len(), 1);
    assert_eq!(d.files[0].also.len(), 1999);
    let md = d.markdown();
    assert!(md.contains("and the same change in 1999 more:"), "{md}");
    assert!(md.contains("… (1991 not named)"), "{md}");
    assert!(md.contains("agent-1, agent-2, agent-3, … agent-2000 (2000 hosts)"));
    assert!(md.len() < 10_000, "{}", md.len());
}

// ----------------------------------------------------------------- audit

fn golden_of(plans: &[&str], s: &Scratch) -> (Utf8PathBuf, Utf8PathBuf) {
    let plans_dir = s.root.join("plans");
    let golden_dir = s.root.join("golden");
    fs::create_dir_all(&plans_dir).unwrap();
    fs::create_dir_all(&golden_dir).unwrap();
    for p in plans {
        let name = Utf8Path::new(p).file_name().unwrap();
        fs::copy(repo().join(p), plans_dir.join(name)).unwrap();
        let stem = name.strip_suffix(".toml").unwrap();
        compile(plans_dir.join(name).as_str(), &golden_dir.join(stem));
    }
    (plans_dir, golden_dir)
}

#[test]
fn audit_passes_on_fresh_golden_bundles() {
    let s = scratch();
    let (plans, golden) = golden_of(&[OLD, NEW], &s);
    let out = run(&["audit", plans.as_str(), golden.as_str()]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains(&format!("ok       {golden}/new\n")), "{text}");
    assert!(text.ends_with("audit: 2 plans, 2 ok, 0 failed\n"), "{text}");
}

#[test]
fn audit_shows_drift_and_the_command_that_refreshes_it() {
    let s = scratch();
    let (plans, golden) = golden_of(&[OLD, NEW], &s);
    let script = golden.join("old/nodes/server-1/05-restore.sh");
    let text = fs::read_to_string(&script).unwrap();
    fs::write(&script, text.replace("set -eu", "set -u")).unwrap();
    let out = run(&["audit", plans.as_str(), golden.as_str()]);
    assert_code(&out, 1);
    let report = stdout(&out);
    assert!(
        report.contains(&format!("DRIFT    {golden}/old: 1 difference")),
        "{report}"
    );
    assert!(
        report.contains("  nodes/server-1/05-restore.sh: contents differ\n"),
        "{report}"
    );
    assert!(report.contains("-set -u\n+set -eu\n"), "{report}");
    let refresh = format!("rewind compile {plans}/old.toml --out {golden}/old --force");
    assert!(report.contains(&refresh), "{report}");
    assert!(
        report.contains(&format!("ok       {golden}/new\n")),
        "{report}"
    );
    // Running the printed command (without the program name) fixes it.
    let args: Vec<&str> = refresh.split(' ').skip(1).collect();
    assert_code(&run(&args), 0);
    assert_code(&run(&["audit", plans.as_str(), golden.as_str()]), 0);
}

#[test]
fn audit_reports_missing_and_orphaned_golden_bundles() {
    let s = scratch();
    let (plans, golden) = golden_of(&[OLD], &s);
    fs::copy(repo().join(NEW), plans.join("new.toml")).unwrap();
    fs::rename(golden.join("old"), golden.join("retired")).unwrap();
    let out = run(&["audit", plans.as_str(), golden.as_str()]);
    assert_code(&out, 1);
    let report = stdout(&out);
    assert!(
        report.contains(&format!("MISSING  {golden}/new: no golden bundle")),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "rewind compile {plans}/new.toml --out {golden}/new\n"
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!("ORPHAN   {golden}/retired: no plan")),
        "{report}"
    );
    assert!(
        report.ends_with("audit: 2 plans, 0 ok, 2 failed; 1 golden bundle without a plan\n"),
        "{report}"
    );
}

#[test]
fn audit_forgives_only_the_rewind_version_of_an_older_golden() {
    let s = scratch();
    let (plans, golden) = golden_of(&[OLD], &s);
    let dir = golden.join("old");
    let plan_json = dir.join(MARKER);
    let text = fs::read_to_string(&plan_json).unwrap();
    let version = format!("\"rewind_version\": \"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(text.contains(&version));
    fs::write(
        &plan_json,
        text.replace(&version, "\"rewind_version\": \"0.0.1\""),
    )
    .unwrap();
    // Reseal as that older rewind would have.
    let mut b = rewind::bundle::read(&dir).unwrap();
    b.seal();
    fs::write(dir.join("SHA256SUMS"), &b.files["SHA256SUMS"].bytes).unwrap();
    let out = run(&["audit", plans.as_str(), golden.as_str()]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("(written by rewind 0.0.1)"),
        "{}",
        describe(&out)
    );
}

#[test]
fn audit_of_a_rejected_plan_fails_with_its_diagnostics() {
    let s = scratch();
    let (plans, golden) = golden_of(&[OLD], &s);
    fs::write(plans.join("old.toml"), "[cluster]\nname = \"x\"\n").unwrap();
    let out = run(&["audit", plans.as_str(), golden.as_str()]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("REJECTED"), "{}", describe(&out));
    assert!(stderr(&out).contains("error["), "{}", describe(&out));
}

// --------------------------------------------------------------- mermaid

#[test]
fn explain_mermaid_and_the_readme_show_the_same_diagram() {
    let out = run(&["explain", OLD, "--format", "mermaid"]);
    assert_code(&out, 0);
    let diagram = stdout(&out);
    assert!(diagram.starts_with("flowchart TD\n"));
    assert!(
        diagram.contains("⚠ 5. Restore the snapshot on server-1"),
        "{diagram}"
    );
    let fenced = format!("```mermaid\n{diagram}```\n");
    let md = stdout(&run(&["explain", OLD, "--format", "markdown"]));
    assert!(md.contains(&fenced), "{md}");
    let s = scratch();
    compile(OLD, &s.root.join("b"));
    let readme = fs::read_to_string(s.root.join("b/README.md")).unwrap();
    assert!(readme.contains(&fenced), "{readme}");
    insta::assert_snapshot!("explain_mermaid", diagram);
}

#[test]
fn the_diagram_of_a_large_cluster_stays_small() {
    let mut plan = fs::read_to_string(repo().join(OLD)).unwrap();
    for i in 3..=300 {
        plan.push_str(&format!(
            "\n[[nodes]]\nname = \"agent-{i}\"\nrole = \"agent\"\n"
        ));
    }
    let s = scratch();
    let path = s.root.join("large.toml");
    fs::write(&path, plan).unwrap();
    let out = run(&["explain", path.as_str(), "--format", "mermaid"]);
    assert_code(&out, 0);
    let diagram = stdout(&out);
    assert!(
        diagram.contains("[\"agent-1 … agent-300 (300 hosts)\"]"),
        "{diagram}"
    );
    assert!(diagram.lines().count() < 100, "{diagram}");
}

// ---------------------------------------------------------------- schema

#[test]
fn the_checked_in_schema_is_current() {
    let on_disk = fs::read_to_string(repo().join(rewind::schema::PATH)).unwrap_or_default();
    assert!(
        on_disk == rewind::schema::json(),
        "{} is stale; regenerate it: cargo run -q -- schema > {}",
        rewind::schema::PATH,
        rewind::schema::PATH
    );
    let out = run(&["schema"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), on_disk);
}

#[test]
fn every_reference_plan_names_the_schema_and_fits_it() {
    let schema: Value = serde_json::from_str(&rewind::schema::json()).unwrap();
    for (name, path) in common::plans() {
        let text = fs::read_to_string(repo().join(&path)).unwrap();
        assert_eq!(
            text.lines().next(),
            Some(rewind::schema::DIRECTIVE),
            "{path} must start with `{}`",
            rewind::schema::DIRECTIVE
        );
        let doc: toml::Value = toml::from_str(&text).unwrap();
        let mut problems = Vec::new();
        fits(&schema, &schema, &doc, &name, &mut problems);
        assert!(problems.is_empty(), "{path}: {problems:#?}");
    }
}

/// A small structural check of `value` against `schema`: known keys, types
/// of tables and arrays, and enums. (Enough to catch a schema that would
/// flag a valid plan in an editor.)
fn fits(root: &Value, schema: &Value, value: &toml::Value, at: &str, out: &mut Vec<String>) {
    let schema = resolve(root, schema);
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        let v: Value = serde_json::to_value(value).unwrap();
        if !allowed.contains(&v) {
            out.push(format!("{at}: {v} not in {allowed:?}"));
        }
    }
    match value {
        toml::Value::Table(t) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (k, v) in t {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => fits(root, s, v, &format!("{at}.{k}"), out),
                    None => out.push(format!("{at}.{k}: not in the schema")),
                }
            }
        }
        toml::Value::Array(items) => {
            let item = schema.get("items").expect("array schema has items");
            for (i, v) in items.iter().enumerate() {
                fits(root, item, v, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let target = schema
        .get("$ref")
        .or_else(|| schema.pointer("/allOf/0/$ref"))
        .and_then(Value::as_str);
    match target {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            resolve(root, &root["definitions"][name])
        }
        None => schema,
    }
}

// ------------------------------------------------------------------ init

/// Fills the `<FILL: …>` markers of an `init` plan with plausible values.
fn fill(text: &str) -> String {
    let mut section = "";
    let mut node = 0;
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with('[') {
            section = line.trim();
        }
        let filled = match line.split_once(" = \"<FILL: ") {
            Some((key, _)) => {
                let value = match (section, key) {
                    ("[cluster]", "name") => "lab".to_owned(),
                    // A target that runs every datastore (SQLite from v1.29.6).
                    ("[cluster]", "current-version") => "v1.30.4+rke2r1".into(),
                    ("[cluster]", "target-version") | ("[snapshot]", "taken-on") => {
                        "v1.29.6+rke2r1".into()
                    }
                    ("[snapshot]", "path") => "/root/backup/snapshot".into(),
                    ("[token]", "file") => "/root/backup/token".into(),
                    ("[install]", "artifacts") => "/root/rke2-artifacts".into(),
                    ("[drain]", "kubeconfig") => "/root/.kube/config".into(),
                    ("[datastore]", "host") => "db.internal".into(),
                    ("[datastore]", "database" | "user") => "rke2".into(),
                    ("[[nodes]]", "name") => {
                        node += 1;
                        format!("node-{node}")
                    }
                    other => panic!("a marker the test cannot fill: {other:?}"),
                };
                format!("{key} = \"{value}\"")
            }
            None => line.to_owned(),
        };
        out.push_str(&filled);
        out.push('\n');
    }
    out
}

#[test]
fn init_plans_are_rejected_until_filled_in_then_pass_check() {
    let s = scratch();
    for datastore in ["etcd", "sqlite", "postgres", "mysql"] {
        for airgap in [false, true] {
            let mut args = vec!["init", "--datastore", datastore];
            if airgap {
                args.push("--airgap");
            }
            let out = run(&args);
            assert_code(&out, 0);
            let text = stdout(&out);
            let name = format!("{datastore}-{airgap}");
            let raw = s.root.join(format!("{name}-raw.toml"));
            fs::write(&raw, &text).unwrap();
            let check = run(&["check", raw.as_str()]);
            assert_code(&check, 1);
            let filled = fill(&text);
            assert!(!filled.contains("\"<FILL"), "{filled}");
            let path = s.root.join(format!("{name}.toml"));
            fs::write(&path, &filled).unwrap();
            let check = run(&["check", path.as_str()]);
            assert_code(&check, 0);
            assert_code(
                &run(&[
                    "compile",
                    path.as_str(),
                    "--out",
                    s.root.join(&name).as_str(),
                ]),
                0,
            );
        }
    }
}

#[test]
fn init_default_plan() {
    let out = run(&["init"]);
    assert_code(&out, 0);
    insta::assert_snapshot!("init_etcd_online", stdout(&out));
}

// ------------------------------------------------- completions, man, help

#[test]
fn bash_completions_parse_and_know_every_subcommand() {
    let out = run(&["completions", "bash"]);
    assert_code(&out, 0);
    let script = stdout(&out);
    for sub in [
        "check", "compile", "explain", "verify", "diff", "audit", "schema", "init",
    ] {
        assert!(script.contains(sub), "{sub}");
    }
    let s = scratch();
    let path = s.root.join("rewind.bash");
    fs::write(&path, &script).unwrap();
    let parse = std::process::Command::new("bash")
        .args(["-n", path.as_str()])
        .output()
        .expect("bash is required for this test");
    assert_code(&parse, 0);
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = run(&["completions", shell]);
        assert_code(&out, 0);
        assert!(stdout(&out).contains("rewind"), "{shell}");
    }
}

#[test]
fn man_pages_for_rewind_and_each_subcommand() {
    let out = run(&["man"]);
    assert_code(&out, 0);
    let page = stdout(&out);
    assert!(page.contains(".TH rewind 1"), "{page}");
    assert!(page.contains("rewind\\-audit(1)"), "{page}");
    assert!(page.contains("Exit codes: 0 ok"), "{page}");
    let out = run(&["man", "diff"]);
    assert_code(&out, 0);
    let page = stdout(&out);
    assert!(page.contains(".TH rewind-diff 1"), "{page}");
    assert!(page.contains("\\fBrewind diff\\fR"), "{page}");
    assert_code(&run(&["man", "nope"]), 2);
}

#[test]
fn help_of_every_command() {
    let subs = [
        "check",
        "compile",
        "explain",
        "verify",
        "diff",
        "audit",
        "schema",
        "init",
        "completions",
        "man",
    ];
    let out = run(&["--help"]);
    assert_code(&out, 0);
    insta::assert_snapshot!("help", stdout(&out));
    for sub in subs {
        let out = run(&[sub, "--help"]);
        assert_code(&out, 0);
        insta::assert_snapshot!(format!("help_{sub}"), stdout(&out));
    }
}

/// Moving the init server moves the restore, and with it where the backup
/// must be; adding a node makes it run the destructive steps: both are said
/// first, in the text and in the pull-request comment.
#[test]
fn diff_warns_when_the_restore_moves_or_a_host_newly_destroys_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = repo().join("plans/etcd-online.toml");
    let text = fs::read_to_string(&old).expect("read plan");
    let moved =
        text.replace(
            "name = \"server-1\"\nrole = \"server\"\ninit = true\n",
            "name = \"server-1\"\nrole = \"server\"\n",
        )
        .replace(
            "name = \"server-2\"\nrole = \"server\"\n",
            "name = \"server-2\"\nrole = \"server\"\ninit = true\n",
        ) + "\n[[nodes]]\nname = \"agent-3\"\nrole = \"agent\"\n";
    assert_ne!(moved, text, "the edit applies");
    let new = Utf8PathBuf::from_path_buf(dir.path().join("new.toml")).expect("utf-8");
    fs::write(&new, moved).expect("write plan");
    let out = run(&["diff", old.as_str(), new.as_str()]);
    assert_code(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains("warning: step 5 (Restore the snapshot on server-2) now runs on server-2 instead of server-1"),
        "{text}"
    );
    assert!(
        text.contains(
            "now runs on server-2 instead of server-1: the backup and the saved token must be there"
        ),
        "{text}"
    );
    assert!(
        text.contains("destroys data and now also runs on agent-3"),
        "{text}"
    );
    let md = stdout(&run(&[
        "diff",
        old.as_str(),
        new.as_str(),
        "--format",
        "markdown",
    ]));
    assert!(md.contains("> [!WARNING]\n> - step"), "{md}");
    assert!(md.contains("instead of server-1"), "{md}");
}
