//! Output is byte-for-byte deterministic (README.md): the real binary,
//! run from two different working directories with different locales and
//! time zones, given the plan by a relative and by an absolute path, writes
//! the same files with the same bytes and modes, equal to the in-memory
//! build; and no secret from its environment or from the files the plan
//! names reaches the bundle.

mod common;

use std::fs;

use camino::{Utf8Path, Utf8PathBuf};
use rewind::bundle::{self, Bundle};

fn utf8(dir: &tempfile::TempDir) -> Utf8PathBuf {
    Utf8Path::from_path(dir.path())
        .expect("utf-8 temp path")
        .to_owned()
}

#[test]
fn every_plan_compiles_to_the_same_bytes_from_anywhere() {
    let dir_a = tempfile::tempdir().expect("tempdir");
    let dir_b = tempfile::tempdir().expect("tempdir");
    let (first, second) = (utf8(&dir_a), utf8(&dir_b));
    // The first run sees the plans by a relative path inside its own folder.
    fs::create_dir(first.join("plans")).expect("mkdir");
    fs::create_dir(second.join("deeper")).expect("mkdir");

    let mut problems = Vec::new();
    for (name, plan) in common::plans() {
        let text = fs::read_to_string(&plan).expect("read plan");
        fs::write(first.join(&plan), &text).expect("copy plan");
        let absolute = common::repo().join(&plan);
        let out_a = format!("out-{name}");
        let out_b = second.join("deeper").join(format!("bundle-{name}"));

        let a = common::rewind(&first)
            .args(["compile", plan.as_str(), "--out", &out_a])
            .env("TZ", "UTC")
            .env("LC_ALL", "C")
            .output()
            .expect("spawn rewind");
        common::assert_code(&a, 0);
        let b = common::rewind(second.join("deeper"))
            .args(["compile", absolute.as_str(), "--out", out_b.as_str()])
            .env("TZ", "Pacific/Chatham")
            .env("LC_ALL", "C.UTF-8")
            .env("HOME", second.as_str())
            .output()
            .expect("spawn rewind");
        common::assert_code(&b, 0);

        let bundle_a = bundle::read(&first.join(&out_a)).expect("read first bundle");
        let bundle_b = bundle::read(&out_b).expect("read second bundle");
        let source = rewind::source::SourceFile::new(plan.as_str(), text);
        let in_memory = rewind::compiler::build(&source, None).expect("reference plan compiles");
        problems.extend(differences(&name, "run 1", &bundle_a, "run 2", &bundle_b));
        problems.extend(differences(
            &name,
            "run 1",
            &bundle_a,
            "in memory",
            &in_memory,
        ));
        for (path, f) in &bundle_b.files {
            let text = String::from_utf8_lossy(&f.bytes);
            for p in [first.as_str(), second.as_str()] {
                if text.contains(p) {
                    problems.push(format!("{name}: {path} contains the folder {p}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn differences(name: &str, la: &str, a: &Bundle, lb: &str, b: &Bundle) -> Vec<String> {
    rewind::golden::compare(a, b)
        .into_iter()
        .map(|d| format!("{name}: {la} vs {lb}: {d}"))
        .collect()
}

/// The compiler never reads the token or the snapshot, and never copies
/// its environment: canary values planted in both stay out of the bundle and
/// out of what it prints.
#[test]
fn secrets_never_reach_the_bundle_or_the_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = utf8(&dir);
    let token_secret = "rewind-canary-token-file-1e5d9a0c";
    let snapshot_secret = "rewind-canary-snapshot-file-77b0c2e4";
    fs::write(root.join("token"), format!("K10{token_secret}::server:x\n")).expect("write token");
    fs::write(root.join("snapshot"), snapshot_secret).expect("write snapshot");
    let plan = format!(
        r#"[cluster]
name = "canary"
current-version = "v1.29.4+rke2r1"
target-version = "v1.28.9+rke2r1"

[snapshot]
path = "{root}/snapshot"
taken-on = "v1.28.9+rke2r1"

[token]
file = "{root}/token"

[[nodes]]
name = "server-1"
role = "server"
init = true
"#
    );
    fs::write(root.join("plan.toml"), plan).expect("write plan");

    let mut outputs = Vec::new();
    let compile = common::rewind(&root)
        .args(["compile", "plan.toml", "--out", "bundle"])
        .output()
        .expect("spawn rewind");
    common::assert_code(&compile, 0);
    outputs.push(("compile".to_owned(), compile));
    for format in ["text", "markdown", "json"] {
        let explain = common::rewind(&root)
            .args(["explain", "plan.toml", "--format", format])
            .output()
            .expect("spawn rewind");
        common::assert_code(&explain, 0);
        outputs.push((format!("explain --format {format}"), explain));
    }

    let mut problems = Vec::new();
    let mut check = |what: &str, text: &str| {
        for s in common::secrets_in(text) {
            problems.push(format!("{what} holds {s}"));
        }
        for s in [token_secret, snapshot_secret] {
            if text.contains(s) {
                problems.push(format!("{what} holds the contents of a file ({s})"));
            }
        }
    };
    let written = bundle::read(&root.join("bundle")).expect("read bundle");
    for (path, f) in &written.files {
        check(path, &String::from_utf8_lossy(&f.bytes));
    }
    for (what, out) in &outputs {
        check(
            &format!("`rewind {what}` stdout"),
            &String::from_utf8_lossy(&out.stdout),
        );
        check(
            &format!("`rewind {what}` stderr"),
            &String::from_utf8_lossy(&out.stderr),
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
