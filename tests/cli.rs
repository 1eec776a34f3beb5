//! The command line as an operator meets it (README.md), through the real
//! binary: exit codes, what `compile` leaves on disk when it fails or
//! replaces a bundle, `verify` on intact and damaged bundles, `explain` and
//! `check` formats, and `--to`.

mod common;

use std::collections::BTreeSet;
use std::fs;

use camino::{Utf8Path, Utf8PathBuf};
use common::{assert_code, describe, rewind, run};
use rewind::bundle::{self, Bundle};
use serde_json::Value;

/// A plan that breaks two rules at once: the target is newer than the
/// current version, and the snapshot was taken on another minor.
const INVALID_PLAN: &str = r#"[cluster]
name = "broken"
current-version = "v1.28.9+rke2r1"
target-version = "v1.29.4+rke2r1"

[snapshot]
path = "/var/lib/rancher/rke2/server/db/snapshots/pre-upgrade"
taken-on = "v1.27.1+rke2r1"

[[nodes]]
name = "server-1"
role = "server"
init = true
"#;

struct Scratch {
    _dir: tempfile::TempDir,
    root: Utf8PathBuf,
}

fn scratch() -> Scratch {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Utf8Path::from_path(dir.path())
        .expect("utf-8 temp path")
        .to_owned();
    Scratch { _dir: dir, root }
}

/// The names in a folder, to prove nothing was left beside a bundle.
fn listing(dir: &Utf8Path) -> BTreeSet<String> {
    dir.read_dir_utf8()
        .expect("list folder")
        .map(|e| e.expect("entry").file_name().to_owned())
        .collect()
}

fn names(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn compile(plan: &str, out: &Utf8Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["compile", plan, "--out", out.as_str()];
    args.extend_from_slice(extra);
    run(&args)
}

fn in_memory(plan: &str) -> Bundle {
    let text = fs::read_to_string(common::repo().join(plan)).expect("read plan");
    rewind::compiler::build(&rewind::source::SourceFile::new(plan, text), None)
        .expect("reference plan compiles")
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}",
            String::from_utf8_lossy(bytes)
                .chars()
                .take(2000)
                .collect::<String>()
        )
    })
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_plan_with_warnings_compiles_with_exit_0() {
    let s = scratch();
    let out = s.root.join("bundle");
    let res = compile("plans/warnings.toml", &out, &[]);
    assert_code(&res, 0);
    assert!(stderr(&res).contains("warning["), "{}", describe(&res));
    assert!(out.join("plan.json").is_file());
}

#[test]
fn compile_creates_the_missing_parents_of_out() {
    // A fresh checkout has no build/: the review guide's CI compiles into
    // build/<plan> without creating it first.
    let s = scratch();
    let out = s.root.join("build/site/edge-17");
    let res = compile("plans/sqlite.toml", &out, &[]);
    assert_code(&res, 0);
    assert!(out.join("plan.json").is_file(), "{}", describe(&res));
    assert_eq!(listing(&s.root.join("build/site")), names(&["edge-17"]));
}

#[test]
fn a_write_error_names_each_path_once() {
    let s = scratch();
    fs::write(s.root.join("build"), "a file where a folder should be").expect("write");
    let res = compile("plans/sqlite.toml", &s.root.join("build/x"), &[]);
    assert_code(&res, 3);
    let err = stderr(&res);
    assert!(err.contains("is a file, not a folder"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // /proc takes no new folders: the temporary folder cannot be made, and
    // the message does not repeat the folder (tempfile's `at path "…"`).
    let res = compile(
        "plans/sqlite.toml",
        Utf8Path::new("/proc/rewind-cli-test"),
        &[],
    );
    assert_code(&res, 3);
    let err = stderr(&res);
    assert!(!err.contains("at path"), "{err}");
    assert_eq!(err.matches("/proc").count(), 2, "{err}");
}

#[test]
fn audit_names_the_folder_it_cannot_list() {
    let s = scratch();
    let res = rewind(&s.root)
        .args(["audit", "no-plans", "golden"])
        .output()
        .expect("spawn rewind");
    assert_code(&res, 3);
    assert_eq!(
        stderr(&res).lines().next(),
        Some(
            "error: cannot list the plans folder no-plans: No such file or directory (os error 2)"
        ),
        "{}",
        describe(&res)
    );
}

#[test]
fn a_rejected_plan_exits_1_and_writes_nothing() {
    let s = scratch();
    fs::write(s.root.join("broken.toml"), INVALID_PLAN).expect("write plan");
    let res = rewind(&s.root)
        .args(["compile", "broken.toml", "--out", "bundle"])
        .output()
        .expect("spawn rewind");
    assert_code(&res, 1);
    let err = stderr(&res);
    assert!(err.contains("error[direction]"), "{err}");
    assert!(err.contains("error[snapshot-minor]"), "{err}");
    assert_eq!(listing(&s.root), names(&["broken.toml"]), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate"],
        &["compile", "plans/sqlite.toml"],
        &["explain", "plans/sqlite.toml", "--format", "yaml"],
        &["check", "plans/sqlite.toml", "--no-such-flag"],
    ];
    for args in cases {
        let res = run(args);
        assert_eq!(
            res.status.code(),
            Some(2),
            "rewind {args:?}: {}",
            describe(&res)
        );
    }
}

#[test]
fn compile_into_an_existing_folder_without_force_exits_2_and_changes_nothing() {
    let s = scratch();
    let out = s.root.join("bundle");
    assert_code(&compile("plans/sqlite.toml", &out, &[]), 0);
    let before = bundle::read(&out).expect("read bundle");

    let res = compile("plans/etcd-online.toml", &out, &[]);
    assert_code(&res, 2);
    assert!(stderr(&res).contains("--force"), "{}", describe(&res));
    assert_eq!(bundle::read(&out).expect("read bundle"), before);
    assert_eq!(listing(&s.root), names(&["bundle"]));

    let empty = s.root.join("empty");
    fs::create_dir(&empty).expect("mkdir");
    assert_code(&compile("plans/sqlite.toml", &empty, &[]), 2);
    assert!(listing(&empty).is_empty());
}

#[test]
fn an_unreadable_plan_exits_3() {
    let s = scratch();
    for plan in [s.root.join("no-such-plan.toml"), s.root.clone()] {
        let out = s.root.join("bundle");
        let res = compile(plan.as_str(), &out, &[]);
        assert_code(&res, 3);
        assert!(stderr(&res).contains(plan.as_str()), "{}", describe(&res));
        assert!(!out.exists());
        assert_code(&run(&["check", plan.as_str()]), 3);
        assert_code(&run(&["explain", plan.as_str()]), 3);
    }
    assert_code(&run(&["verify", s.root.join("nothing").as_str()]), 3);
}

#[test]
fn force_replaces_a_bundle_and_drops_its_stale_files() {
    let s = scratch();
    let out = s.root.join("bundle");
    // The sqlite bundle's files that the etcd bundle does not have go with
    // it. (A file rewind did not write makes --force refuse: tests/hardening.rs.)
    assert_code(&compile("plans/sqlite.toml", &out, &[]), 0);

    assert_code(&compile("plans/etcd-online.toml", &out, &["--force"]), 0);
    let written = rewind::golden::read(&out).expect("read bundle");
    let drift = rewind::golden::compare(&in_memory("plans/etcd-online.toml"), &written);
    assert!(drift.is_empty(), "{drift:#?}");
    assert_eq!(
        listing(&s.root),
        names(&["bundle"]),
        "temporary folders left"
    );
}

#[test]
fn force_refuses_a_folder_that_is_not_a_bundle() {
    let s = scratch();
    let out = s.root.join("precious");
    fs::create_dir(&out).expect("mkdir");
    fs::write(out.join("thesis.tex"), "years of work").expect("write");

    let res = compile("plans/sqlite.toml", &out, &["--force"]);
    assert_code(&res, 2);
    assert!(
        stderr(&res).contains("not a rewind bundle"),
        "{}",
        describe(&res)
    );
    assert_eq!(listing(&out), names(&["thesis.tex"]));
    assert_eq!(
        fs::read_to_string(out.join("thesis.tex")).expect("read"),
        "years of work"
    );
    assert_eq!(
        listing(&s.root),
        names(&["precious"]),
        "temporary folders left"
    );
}

#[test]
fn verify_accepts_a_fresh_bundle_and_rejects_any_change() {
    let s = scratch();
    let fresh = |name: &str| {
        let out = s.root.join(name);
        assert_code(&compile("plans/etcd-online.toml", &out, &[]), 0);
        out
    };
    let ok = fresh("ok");
    assert_code(&run(&["verify", ok.as_str()]), 0);

    let script = "nodes/server-1/05-restore.sh";
    let changed = fresh("changed");
    let mut bytes = fs::read(changed.join(script)).expect("read script");
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'x' { b'y' } else { b'x' };
    fs::write(changed.join(script), bytes).expect("write");

    let added = fresh("added");
    fs::write(added.join("nodes/server-1/00-extra.sh"), "#!/bin/sh\n").expect("write");

    let deleted = fresh("deleted");
    fs::remove_file(deleted.join("nodes/agent-2/03-stop.sh")).expect("rm");

    for (dir, file) in [
        (&changed, script),
        (&added, "nodes/server-1/00-extra.sh"),
        (&deleted, "nodes/agent-2/03-stop.sh"),
    ] {
        let res = run(&["verify", dir.as_str()]);
        assert_code(&res, 1);
        assert!(stderr(&res).contains(file), "{}", describe(&res));
    }
}

#[test]
fn explain_prints_text_markdown_and_the_json_of_plan_json() {
    let s = scratch();
    let out = s.root.join("bundle");
    assert_code(&compile("plans/etcd-online.toml", &out, &[]), 0);
    let plan_json = json(&fs::read(out.join("plan.json")).expect("read plan.json"));
    let steps = plan_json["steps"].as_array().expect("steps");
    assert!(!steps.is_empty());

    let explained = run(&["explain", "plans/etcd-online.toml", "--format", "json"]);
    assert_code(&explained, 0);
    assert_eq!(json(&explained.stdout)["steps"], plan_json["steps"]);

    for format in ["text", "markdown"] {
        let res = run(&["explain", "plans/etcd-online.toml", "--format", format]);
        assert_code(&res, 0);
        let text = String::from_utf8_lossy(&res.stdout);
        for step in steps {
            let title = step["title"].as_str().expect("title");
            assert!(text.contains(title), "{format}: no `{title}`:\n{text}");
        }
        if format == "markdown" {
            assert!(text.contains("|---") || text.contains("| ---"), "{text}");
        }
    }
    // The default format is text.
    let default = run(&["explain", "plans/etcd-online.toml"]);
    let text = run(&["explain", "plans/etcd-online.toml", "--format", "text"]);
    assert_eq!(default.stdout, text.stdout);
}

#[test]
fn check_format_json_is_one_json_document() {
    let good = run(&["check", "plans/etcd-online.toml", "--format", "json"]);
    assert_code(&good, 0);
    let doc = json(&good.stdout);
    assert_eq!(doc["ok"], Value::Bool(true), "{doc}");
    assert!(doc["diagnostics"].is_array(), "{doc}");

    let warned = run(&["check", "plans/warnings.toml", "--format", "json"]);
    assert_code(&warned, 0);
    let doc = json(&warned.stdout);
    assert_eq!(doc["ok"], Value::Bool(true), "{doc}");
    assert!(!doc["diagnostics"].as_array().expect("array").is_empty());

    let s = scratch();
    fs::write(s.root.join("broken.toml"), INVALID_PLAN).expect("write plan");
    let bad = rewind(&s.root)
        .args(["check", "broken.toml", "--format", "json"])
        .output()
        .expect("spawn rewind");
    assert_code(&bad, 1);
    let doc = json(&bad.stdout);
    assert_eq!(doc["ok"], Value::Bool(false), "{doc}");
    assert!(doc["diagnostics"].as_array().expect("array").len() >= 2);
}

#[test]
fn to_overrides_the_target_version_of_the_plan() {
    let to = "v1.28.8+rke2r1";
    let s = scratch();
    let out = s.root.join("bundle");
    assert_code(&compile("plans/etcd-online.toml", &out, &["--to", to]), 0);
    let plan_json = json(&fs::read(out.join("plan.json")).expect("read plan.json"));
    assert_eq!(plan_json["to"], Value::from(to));

    let explained = run(&[
        "explain",
        "plans/etcd-online.toml",
        "--to",
        to,
        "--format",
        "json",
    ]);
    assert_code(&explained, 0);
    assert_eq!(json(&explained.stdout)["to"], Value::from(to));

    // --to is validated like the plan's own value: newer than current fails.
    let res = run(&["check", "plans/etcd-online.toml", "--to", "v1.30.0+rke2r1"]);
    assert_code(&res, 1);
}
