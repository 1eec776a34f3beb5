//! Issue 11, "hostile input and output safety": one test per reproducer of
//! the hostile-input campaign, each through the real binary. Nothing lost
//! (`--force` replaces only what rewind wrote), nothing left (signals, a
//! killed compile), nothing hung (devices, FIFOs, huge files), every
//! rejection located, nothing smuggled (escaping per context).
//!
//! The bounded mutation campaign over `plans/` is `tests/campaign.rs`.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};
use common::{assert_code, describe, repo, rewind};

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

/// Every path under `dir` (relative, sorted), links not followed.
fn tree(dir: &Utf8Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in d.read_dir_utf8().expect("list") {
            let e = e.expect("entry");
            let rel = e.path().strip_prefix(dir).unwrap().to_string();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path().to_owned());
            }
            out.insert(rel);
        }
    }
    out
}

fn names(dir: &Utf8Path) -> BTreeSet<String> {
    dir.read_dir_utf8()
        .expect("list")
        .map(|e| e.unwrap().file_name().to_owned())
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `rewind ARGS` run in `cwd`, killed after 20 s (a hang is a failure, not
/// a stuck test run).
fn run_in(cwd: &Utf8Path, args: &[&str]) -> Output {
    let mut child = rewind(cwd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rewind");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "rewind {args:?} hung (killed after 20 s)\n{}",
                describe(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A plan path from the repository, absolute so it works from any cwd.
fn plan(name: &str) -> String {
    repo().join("plans").join(name).to_string()
}

// ---------------------------------------------------------------------------
// 1. `compile --force` never deletes what it did not write.

#[test]
fn force_refuses_a_folder_whose_plan_json_is_not_rewinds_and_keeps_its_files() {
    let s = scratch();
    let p = s.root.join("p");
    fs::create_dir(&p).unwrap();
    fs::write(p.join("plan.json"), "{}\n").unwrap();
    fs::write(p.join("main.tf"), "precious\n").unwrap();
    let res = run_in(
        &s.root,
        &[
            "compile",
            &plan("etcd-online.toml"),
            "--out",
            "p",
            "--force",
        ],
    );
    assert_code(&res, 2);
    assert!(
        stderr(&res).contains("not a rewind bundle"),
        "{}",
        describe(&res)
    );
    assert_eq!(fs::read_to_string(p.join("main.tf")).unwrap(), "precious\n");
    assert_eq!(names(&s.root), BTreeSet::from(["p".to_owned()]));
}

#[test]
fn force_refuses_a_bundle_holding_a_file_that_sha256sums_does_not_list() {
    let s = scratch();
    assert_code(
        &run_in(&s.root, &["compile", &plan("sqlite.toml"), "--out", "b"]),
        0,
    );
    fs::write(s.root.join("b/nodes/notes.txt"), "mine\n").unwrap();
    let before = tree(&s.root.join("b"));
    let res = run_in(
        &s.root,
        &[
            "compile",
            &plan("etcd-online.toml"),
            "--out",
            "b",
            "--force",
        ],
    );
    assert_code(&res, 2);
    let err = stderr(&res);
    assert!(err.contains("nodes/notes.txt"), "says what it found: {err}");
    assert!(err.contains("does not list"), "{err}");
    assert_eq!(tree(&s.root.join("b")), before);
    assert_eq!(names(&s.root), BTreeSet::from(["b".to_owned()]));
}

#[test]
fn force_refuses_a_bundle_holding_a_link_or_an_empty_folder() {
    let s = scratch();
    assert_code(
        &run_in(&s.root, &["compile", &plan("sqlite.toml"), "--out", "b"]),
        0,
    );
    std::os::unix::fs::symlink("/etc", s.root.join("b/etc")).unwrap();
    let res = run_in(
        &s.root,
        &["compile", &plan("sqlite.toml"), "--out", "b", "--force"],
    );
    assert_code(&res, 2);
    assert!(stderr(&res).contains("a link `etc`"), "{}", describe(&res));
    fs::remove_file(s.root.join("b/etc")).unwrap();
    fs::create_dir(s.root.join("b/mine")).unwrap();
    let res = run_in(
        &s.root,
        &["compile", &plan("sqlite.toml"), "--out", "b", "--force"],
    );
    assert_code(&res, 2);
    assert!(s.root.join("b/mine").is_dir());
}

#[test]
fn force_replaces_a_bundle_and_never_deletes_a_rewind_old_it_did_not_create() {
    let s = scratch();
    assert_code(
        &run_in(&s.root, &["compile", &plan("sqlite.toml"), "--out", "b"]),
        0,
    );
    fs::create_dir(s.root.join(".b.rewind-old")).unwrap();
    fs::write(s.root.join(".b.rewind-old/keep"), "mine\n").unwrap();
    let res = run_in(
        &s.root,
        &[
            "compile",
            &plan("etcd-online.toml"),
            "--out",
            "b",
            "--force",
        ],
    );
    assert_code(&res, 0);
    assert_eq!(
        fs::read_to_string(s.root.join(".b.rewind-old/keep")).unwrap(),
        "mine\n"
    );
    assert_eq!(
        names(&s.root),
        BTreeSet::from(["b".to_owned(), ".b.rewind-old".to_owned()])
    );
    assert_code(&run_in(&s.root, &["verify", "b"]), 0);
    assert!(
        s.root.join("b/nodes/server-3").is_dir(),
        "the etcd bundle replaced the sqlite one"
    );
}

#[test]
fn force_on_a_link_to_a_bundle_replaces_the_target_and_keeps_the_link() {
    let s = scratch();
    fs::create_dir(s.root.join("real")).unwrap();
    assert_code(
        &run_in(
            &s.root,
            &["compile", &plan("sqlite.toml"), "--out", "real/b"],
        ),
        0,
    );
    std::os::unix::fs::symlink("real/b", s.root.join("link")).unwrap();
    let res = run_in(
        &s.root,
        &["compile", &plan("etcd-online.toml"), "--out", "link"],
    );
    assert_code(&res, 2);
    let res = run_in(
        &s.root,
        &[
            "compile",
            &plan("etcd-online.toml"),
            "--out",
            "link",
            "--force",
        ],
    );
    assert_code(&res, 0);
    let link = s.root.join("link");
    assert!(
        link.symlink_metadata().unwrap().file_type().is_symlink(),
        "the link is still a link"
    );
    assert_eq!(fs::read_link(&link).unwrap().to_str(), Some("real/b"));
    assert!(s.root.join("real/b/nodes/server-3").is_dir());
    assert_eq!(
        names(&s.root.join("real")),
        BTreeSet::from(["b".to_owned()])
    );
    assert_code(&run_in(&s.root, &["verify", "real/b"]), 0);

    // A link to something that is not a bundle is refused, the link kept.
    fs::create_dir(s.root.join("other")).unwrap();
    fs::write(s.root.join("other/x"), "x").unwrap();
    std::os::unix::fs::symlink("other", s.root.join("link2")).unwrap();
    let res = run_in(
        &s.root,
        &[
            "compile",
            &plan("etcd-online.toml"),
            "--out",
            "link2",
            "--force",
        ],
    );
    assert_code(&res, 2);
    assert!(
        s.root
            .join("link2")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        names(&s.root.join("other")),
        BTreeSet::from(["x".to_owned()])
    );
}

#[test]
fn force_refuses_a_plain_file() {
    let s = scratch();
    fs::write(s.root.join("b"), "precious").unwrap();
    let res = run_in(
        &s.root,
        &["compile", &plan("sqlite.toml"), "--out", "b", "--force"],
    );
    assert_code(&res, 2);
    assert_eq!(fs::read_to_string(s.root.join("b")).unwrap(), "precious");
}

// ---------------------------------------------------------------------------
// 2. No leftovers.

#[test]
fn missing_parents_of_out_are_created() {
    let s = scratch();
    let res = run_in(
        &s.root,
        &["compile", &plan("sqlite.toml"), "--out", "build/x/b"],
    );
    assert_code(&res, 0);
    assert_code(&run_in(&s.root, &["verify", "build/x/b"]), 0);
    assert_eq!(
        names(&s.root.join("build/x")),
        BTreeSet::from(["b".to_owned()])
    );
}

#[test]
fn a_rejected_plan_creates_no_parent_folder() {
    let s = scratch();
    fs::write(s.root.join("bad.toml"), "[cluster]\nname = \"x\"\n").unwrap();
    let res = run_in(&s.root, &["compile", "bad.toml", "--out", "build/x/b"]);
    assert_code(&res, 1);
    assert_eq!(names(&s.root), BTreeSet::from(["bad.toml".to_owned()]));
}

/// An air-gapped etcd plan with `agents` agents: slow enough to compile
/// (about a second in a debug build) that a signal lands mid-write.
fn slow_plan(dir: &Utf8Path, agents: usize) -> Utf8PathBuf {
    let mut text = fs::read_to_string(repo().join("plans/large.toml")).unwrap();
    for i in 0..agents {
        text.push_str(&format!(
            "\n[[nodes]]\nname = \"extra-{i}\"\nrole = \"agent\"\n"
        ));
    }
    let path = dir.join("slow.toml");
    fs::write(&path, text).unwrap();
    path
}

/// The temporary folders beside `out`.
fn temps(parent: &Utf8Path, out: &str) -> Vec<String> {
    names(parent)
        .into_iter()
        .filter(|n| n.starts_with(&format!(".{out}.rewind-")))
        .collect()
}

/// Starts `rewind compile PLAN --out OUT [--force]` and returns it once its
/// temporary folder exists.
fn compile_until_temp(s: &Scratch, plan: &Utf8Path, out: &str, force: bool) -> std::process::Child {
    let mut cmd = Command::new(common::bin());
    cmd.current_dir(&s.root)
        .args(["compile", plan.as_str(), "--out", out])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if force {
        cmd.arg("--force");
    }
    let child = cmd.spawn().expect("spawn");
    let start = Instant::now();
    while temps(&s.root, out).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no temporary folder appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child
}

fn signal(child: &std::process::Child, sig: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: sending a signal to a child this test spawned.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

#[test]
fn sigint_and_sigterm_remove_the_temporary_folder() {
    let s = scratch();
    let slow = slow_plan(&s.root, 250);
    let mut interrupted = 0;
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let mut child = compile_until_temp(&s, &slow, "b", false);
        std::thread::sleep(Duration::from_millis(50));
        signal(&child, sig);
        let status = child.wait().unwrap();
        if status.code() == Some(0) {
            // The compile won the race; nothing to prove this round.
            fs::remove_dir_all(s.root.join("b")).unwrap();
            continue;
        }
        assert_eq!(status.code(), Some(code), "signal {sig}");
        interrupted += 1;
        assert_eq!(
            names(&s.root),
            BTreeSet::from(["slow.toml".to_owned()]),
            "signal {sig} left something"
        );
    }
    assert!(interrupted > 0, "every compile finished before its signal");
}

#[test]
fn a_killed_compile_leaves_a_temporary_folder_that_the_next_compile_removes() {
    let s = scratch();
    let slow = slow_plan(&s.root, 250);
    let mut child = compile_until_temp(&s, &slow, "b", false);
    std::thread::sleep(Duration::from_millis(50));
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    let left = temps(&s.root, "b");
    assert_eq!(left.len(), 1, "{left:?}");
    // Someone else's folder of the same shape is not rewind's: kept.
    fs::create_dir(s.root.join(".b.rewind-tmp-abc123")).unwrap();
    fs::write(s.root.join(".b.rewind-tmp-abc123/mine"), "x").unwrap();
    assert_code(
        &run_in(&s.root, &["compile", &plan("sqlite.toml"), "--out", "b"]),
        0,
    );
    assert_eq!(
        names(&s.root),
        BTreeSet::from([
            "b".to_owned(),
            "slow.toml".to_owned(),
            ".b.rewind-tmp-abc123".to_owned()
        ])
    );
}

#[test]
fn a_swap_killed_at_any_instant_leaves_the_old_or_the_new_bundle() {
    let s = scratch();
    let slow = slow_plan(&s.root, 40);
    assert_code(
        &run_in(&s.root, &["compile", &plan("sqlite.toml"), "--out", "b"]),
        0,
    );
    let mut seen_new = false;
    for round in 0..12u64 {
        let mut child = compile_until_temp(&s, &slow, "b", true);
        // Spread the kills over the write and the swap.
        std::thread::sleep(Duration::from_millis(20 * round));
        signal(&child, libc::SIGKILL);
        child.wait().unwrap();
        let b = s.root.join("b");
        assert!(b.is_dir(), "round {round}: b is missing");
        let res = run_in(&s.root, &["verify", "b"]);
        assert_code(&res, 0);
        seen_new |= b.join("nodes/extra-0").is_dir();
    }
    // The next compile removes whatever the kills left.
    assert_code(
        &run_in(
            &s.root,
            &["compile", slow.as_str(), "--out", "b", "--force"],
        ),
        0,
    );
    assert_eq!(
        names(&s.root),
        BTreeSet::from(["b".to_owned(), "slow.toml".to_owned()])
    );
    let _ = seen_new;
}
