//! The review guide's CI workflow runs as written (issue 16, item 8): its
//! `run:` blocks are taken from docs/review-guide.md, not copied here, and
//! run in order in a fresh copy of the reference plans and golden bundles
//! (no `build/`, a git history with a base commit and a pull request on top),
//! with the built binary as `rewind` and a stand-in `gh` that records the
//! comments it would post. The guide's example audit summary must add up,
//! as the real one does.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const GUIDE: &str = "docs/review-guide.md";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn guide() -> String {
    fs::read_to_string(repo().join(GUIDE)).expect("read the review guide")
}

/// The fenced block of `lang` that follows `heading` in the guide.
fn block(text: &str, heading: &str, lang: &str) -> String {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("{GUIDE} has no {heading:?}"));
    let mut inside: Option<bool> = None; // Some(wanted?) while in a block
    let mut out = String::new();
    for line in text[start..].lines() {
        match (inside, line.strip_prefix("```")) {
            (None, Some(tag)) => inside = Some(tag == lang),
            (Some(true), Some("")) => return out,
            (Some(false), Some("")) => inside = None,
            (Some(true), _) => {
                out.push_str(line);
                out.push('\n');
            }
            _ => {}
        }
    }
    panic!("no closed {lang:?} block after {heading:?} in {GUIDE}")
}

/// The workflow's steps that run something: (name, shell text), in order.
fn steps(yaml: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = yaml.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out = Vec::new();
    let mut name = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let key = line.trim_start().trim_start_matches("- ");
        if let Some(n) = key.strip_prefix("name: ") {
            n.trim().clone_into(&mut name);
        } else if let Some(cmd) = key.strip_prefix("run:") {
            let cmd = cmd.trim();
            if cmd == "|" {
                let base = indent(line);
                let mut body: Vec<&str> = Vec::new();
                while i + 1 < lines.len()
                    && (lines[i + 1].trim().is_empty() || indent(lines[i + 1]) > base)
                {
                    i += 1;
                    body.push(lines[i]);
                }
                let common = body
                    .iter()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| indent(l))
                    .min()
                    .unwrap_or(0);
                let text: String = body
                    .iter()
                    .map(|l| format!("{}\n", l.get(common..).unwrap_or("")))
                    .collect();
                out.push((name.clone(), text));
            } else {
                out.push((name.clone(), format!("{cmd}\n")));
            }
        }
        i += 1;
    }
    out
}

fn sh(dir: &Path, script: &str, path: &str) -> Output {
    // GitHub Actions runs `run:` with bash -e and pipefail.
    Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .env("GH_TOKEN", "stand-in")
        .output()
        .expect("spawn bash")
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=ci", "-c", "user.email=ci@example.invalid"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("spawn git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        common::describe(&out)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

fn copy(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("spawn cp");
    assert!(st.success(), "cp -a {}", from.display());
}

/// "audit: N plans, A ok, B failed" → (N, A, B).
fn summary(line: &str) -> (usize, usize, usize) {
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(3)
        .map(|s| s.parse().expect("number"))
        .collect();
    assert_eq!(nums.len(), 3, "{line}");
    (nums[0], nums[1], nums[2])
}

#[test]
fn the_guides_example_audit_summary_adds_up() {
    let example = block(&guide(), "## Golden bundles and `rewind audit`", "");
    let count = |tag: &str| example.lines().filter(|l| l.starts_with(tag)).count();
    let ok = count("ok ");
    let failed = count("DRIFT ") + count("MISSING ") + count("REJECTED ");
    let orphans = count("ORPHAN ");
    let last = example.lines().last().expect("summary line");
    assert_eq!(summary(last), (ok + failed, ok, failed), "{last}");
    assert!(
        last.ends_with(&format!("; {orphans} golden bundle without a plan")),
        "{last}"
    );
}

#[test]
fn the_ci_workflow_runs_as_written_on_a_fresh_checkout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ws = tmp.path().join("site");
    fs::create_dir(&ws).expect("mkdir");
    for dir in ["plans", "golden", "schema"] {
        copy(&repo().join(dir), &ws.join(dir));
    }
    // The site's way of getting the binary: here, the one cargo built.
    let bin = tmp.path().join("bin");
    fs::create_dir(&bin).expect("mkdir");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rewind"), bin.join("rewind")).expect("link");
    fs::write(
        bin.join("gh"),
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >> \"$GH_LOG\"\n",
    )
    .expect("write gh");
    fs::create_dir(ws.join("ci")).expect("mkdir");
    fs::write(
        ws.join("ci/install-rewind.sh"),
        "#!/bin/sh\nrewind --version\n",
    )
    .expect("write");
    for f in [bin.join("gh"), ws.join("ci/install-rewind.sh")] {
        let st = Command::new("chmod")
            .arg("755")
            .arg(&f)
            .status()
            .expect("chmod");
        assert!(st.success());
    }
    git(&ws, &["init", "-q"]);
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-q", "-m", "base"]);
    let base = git(&ws, &["rev-parse", "HEAD"]);

    // The pull request: a comment edit of one plan and a new plan, each
    // with its golden bundle refreshed, as the guide asks.
    let rewind = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
            .args(args)
            .current_dir(&ws)
            .output()
            .expect("spawn rewind");
        assert!(
            out.status.success(),
            "rewind {args:?}: {}",
            common::describe(&out)
        );
    };
    let sqlite = fs::read_to_string(ws.join("plans/sqlite.toml")).expect("read");
    fs::write(
        ws.join("plans/sqlite.toml"),
        format!("{sqlite}# reviewed again\n"),
    )
    .expect("write");
    rewind(&[
        "compile",
        "plans/sqlite.toml",
        "--out",
        "golden/sqlite",
        "--force",
    ]);
    let postgres = fs::read_to_string(ws.join("plans/postgres.toml")).expect("read");
    fs::write(ws.join("plans/new-site.toml"), postgres).expect("write");
    rewind(&["compile", "plans/new-site.toml", "--out", "golden/new-site"]);
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-q", "-m", "pull request"]);
    assert!(!ws.join("build").exists(), "a fresh checkout has no build/");

    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let log = tmp.path().join("gh.log");
    let steps = steps(&block(&guide(), "## CI on every pull request", "yaml"));
    let names: Vec<&str> = steps.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Install rewind",
            "Check every plan",
            "Compile every plan",
            "Audit the golden bundles",
            "Diff each changed plan against the base branch",
            "Post the diffs"
        ],
        "the guide's workflow changed: update this test with it"
    );
    let plans = fs::read_dir(ws.join("plans")).expect("list").count();
    for (name, script) in &steps {
        let script = script
            .replace("${{ github.event.pull_request.base.sha }}", &base)
            .replace("${{ github.event.pull_request.number }}", "7")
            .replace("${{ github.token }}", "stand-in");
        assert!(
            !script.contains("${{"),
            "{name}: unknown expression in {script}"
        );
        let script = format!("export GH_LOG='{}'\n{script}", log.display());
        let out = sh(&ws, &script, &path);
        assert!(
            out.status.success(),
            "step {name:?}:\n{script}\n{}",
            common::describe(&out)
        );
        if name.starts_with("Audit") {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let last = text.lines().last().expect("summary");
            assert_eq!(summary(last), (plans, plans, 0), "{text}");
            assert_eq!(text.lines().filter(|l| l.starts_with("ok ")).count(), plans);
        }
    }
    for name in ["sqlite", "new-site"] {
        assert!(
            ws.join("build").join(name).join("plan.json").is_file(),
            "build/{name}"
        );
    }
    let same = fs::read_to_string(ws.join("comments/sqlite.md")).expect("comment");
    assert!(same.contains("The procedure is the same"), "{same}");
    let new = fs::read_to_string(ws.join("comments/new-site.md")).expect("comment");
    assert!(
        new.starts_with("## New plan `plans/new-site.toml`"),
        "{new}"
    );
    let posted = fs::read_to_string(&log).expect("gh log");
    assert_eq!(
        posted,
        "pr comment 7 --body-file comments/new-site.md\npr comment 7 --body-file comments/sqlite.md\n"
    );
}
