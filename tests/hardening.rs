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
    let mut cmd = rewind(cwd);
    cmd.args(args);
    run_bounded(cmd, &format!("rewind {args:?}"))
}

/// Runs `cmd` with no stdin, killed after 20 s (a hang is a failure).
fn run_bounded(mut cmd: Command, what: &str) -> Output {
    use std::io::Read as _;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Read both pipes while waiting: a full pipe would block the child.
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let mut hung = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            hung = true;
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let res = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    assert!(!hung, "{what} hung (killed after 20 s)\n{}", describe(&res));
    res
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
    let before: Vec<_> = temps(&s.root, "b")
        .into_iter()
        .map(|t| {
            (
                tree(&s.root.join(&t))
                    .into_iter()
                    .take(4)
                    .collect::<Vec<_>>(),
                t,
            )
        })
        .collect();
    assert_code(
        &run_in(
            &s.root,
            &["compile", slow.as_str(), "--out", "b", "--force"],
        ),
        0,
    );
    assert_eq!(
        names(&s.root),
        BTreeSet::from(["b".to_owned(), "slow.toml".to_owned()]),
        "{before:#?}"
    );
    let _ = seen_new;
}

// ---------------------------------------------------------------------------
// 3. Bounded input: only regular files, at most 16 MiB, never read forever.

#[test]
fn devices_fifos_and_huge_files_are_refused_at_once_with_exit_3() {
    let s = scratch();
    let fifo = s.root.join("fifo.toml");
    let c = std::ffi::CString::new(fifo.as_str()).unwrap();
    // SAFETY: mkfifo on a path in this test's scratch folder.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let huge = s.root.join("huge.toml");
    let f = fs::File::create(&huge).unwrap();
    f.set_len(17 * 1024 * 1024).unwrap();
    fs::create_dir(s.root.join("b")).unwrap();
    for input in ["/dev/zero", "/dev/urandom", fifo.as_str(), huge.as_str()] {
        for cmd in [
            vec!["check", input],
            vec!["compile", input, "--out", "out"],
            vec!["explain", input],
            vec!["diff", input, input],
        ] {
            let start = Instant::now();
            let res = run_in(&s.root, &cmd);
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{cmd:?} took {:?}",
                start.elapsed()
            );
            assert_code(&res, 3);
            let err = stderr(&res);
            assert!(
                err.contains("not a regular file") || err.contains("larger than 16 MiB"),
                "{cmd:?}: {err}"
            );
        }
    }
    assert!(!s.root.join("out").exists());
}

#[test]
fn verify_and_diff_refuse_special_files_inside_a_bundle_without_hanging() {
    let s = scratch();
    assert_code(
        &run_in(&s.root, &["compile", &plan("sqlite.toml"), "--out", "b"]),
        0,
    );
    let fifo = s.root.join("b/nodes/fifo");
    let c = std::ffi::CString::new(fifo.as_str()).unwrap();
    // SAFETY: mkfifo on a path in this test's scratch folder.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let res = run_in(&s.root, &["verify", "b"]);
    assert_code(&res, 1);
    assert!(stderr(&res).contains("nodes/fifo"), "{}", describe(&res));
    let res = run_in(&s.root, &["diff", "b", &plan("sqlite.toml")]);
    assert_ne!(res.status.code(), Some(0), "{}", describe(&res));
}

// ---------------------------------------------------------------------------
// 4. No quadratic paths.

/// The reference etcd plan followed by `extra`.
fn etcd_plus(extra: &str) -> String {
    fs::read_to_string(repo().join("plans/etcd-online.toml")).unwrap() + extra
}

/// CPU time of the calling thread (other tests and processes sharing the
/// machine do not count).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into a timespec this function owns.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

#[test]
fn thousands_of_diagnostics_stay_linear() {
    let mut bad = String::new();
    for i in 0..5000 {
        bad.push_str(&format!(
            "\n[[nodes]]\nname = \"Bad_{i}\"\nrole = \"server\"\n"
        ));
    }
    let mut dup = String::new();
    for _ in 0..20_000 {
        dup.push_str("\n[[nodes]]\nname = \"agent-1\"\nrole = \"agent\"\n");
    }
    // Checking and rendering every diagnostic, in CPU time: under a second
    // in a release build for 5,000 invalid nodes; a debug build is several
    // times slower. The quadratic version took 30 s and 52 s.
    let debug = cfg!(debug_assertions);
    for (name, extra, errors, limit) in [
        ("bad.toml", bad, 5000, if debug { 6 } else { 1 }),
        ("dup.toml", dup, 20_000, if debug { 15 } else { 3 }),
    ] {
        let source = rewind::source::SourceFile::new(name, etcd_plus(&extra));
        let start = thread_cpu();
        let checked = rewind::validate::check(&source, None);
        let text = rewind::diagnostic::render_all(&checked.diagnostics, &source);
        let json: Vec<_> = checked
            .diagnostics
            .iter()
            .map(|d| d.to_json(&source))
            .collect();
        let took = thread_cpu().checked_sub(start).unwrap();
        assert_eq!(
            checked.diagnostics.iter().filter(|d| d.is_error()).count(),
            errors,
            "{name}"
        );
        assert_eq!(json.len(), checked.diagnostics.len());
        assert!(text.contains(&format!("{errors} errors")), "{name}");
        println!("{name}: {errors} errors checked and rendered in {took:?} of CPU");
        assert!(took < Duration::from_secs(limit), "{name}: {took:?} of CPU");
    }
}

#[test]
fn a_plan_of_blank_lines_is_cheap() {
    let s = scratch();
    // 50 MB: refused by size before it is read.
    let f = fs::File::create(s.root.join("blank50.toml")).unwrap();
    f.set_len(50 * 1024 * 1024).unwrap();
    assert_code(&run_in(&s.root, &["check", "blank50.toml"]), 3);
    // Two million blank lines: refused at the line limit, located.
    fs::write(s.root.join("blank.toml"), "\n".repeat(2_000_000)).unwrap();
    let start = Instant::now();
    let res = run_in(&s.root, &["check", "blank.toml"]);
    assert_code(&res, 1);
    assert!(
        stderr(&res).contains("blank.toml:1000001:1"),
        "{}",
        describe(&res)
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

// ---------------------------------------------------------------------------
// 5. Every rejection has a location; 6. values validation.

/// Checks a rejected plan: exit 1, the code, a `-->` location, and the JSON
/// form with a line and column; `hidden` never appears in either output.
fn assert_located(dir: &Utf8Path, text: &[u8], code: &str, hidden: Option<&str>) {
    let file = dir.join("p.toml");
    fs::write(&file, text).unwrap();
    let res = run_in(dir, &["check", "p.toml"]);
    let what = String::from_utf8_lossy(text);
    let what: String = what.chars().take(300).collect();
    assert_code(&res, 1);
    let err = stderr(&res);
    assert!(
        err.contains(&format!("error[{code}]")),
        "want {code} for\n{what}\n{err}"
    );
    assert!(err.contains("--> p.toml:"), "no location:\n{err}");
    let res = run_in(dir, &["check", "p.toml", "--format", "json"]);
    assert_code(&res, 1);
    let doc: serde_json::Value = serde_json::from_slice(&res.stdout).expect("valid JSON");
    let diags = doc["diagnostics"].as_array().unwrap();
    assert!(!diags.is_empty());
    for d in diags {
        assert!(d["line"].is_u64() && d["column"].is_u64(), "unlocated: {d}");
    }
    assert!(diags.iter().any(|d| d["code"] == code), "{doc}");
    if let Some(secret) = hidden {
        assert!(!err.contains(secret), "echoed {secret}:\n{err}");
        assert!(!String::from_utf8_lossy(&res.stdout).contains(secret));
    }
}

#[test]
fn invalid_utf8_and_deep_nesting_are_located_with_exit_1() {
    let s = scratch();
    let mut bytes = etcd_plus("").into_bytes();
    let at = bytes.windows(9).position(|w| w == b"prod-east").unwrap();
    bytes[at + 2] = 0xff;
    assert_located(&s.root, &bytes, "encoding", None);
    assert_located(
        &s.root,
        b"\xef\xbb\xbf[cluster]\nname = \"a\xc3\"\n",
        "encoding",
        None,
    );
    let deep = format!("a = {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
    assert_located(&s.root, deep.as_bytes(), "limits", None);
    let dotted = format!("a{} = 1\n", ".a".repeat(100_000));
    assert_located(&s.root, dotted.as_bytes(), "limits", None);
    let header = format!("[a{}]\n", ".a".repeat(100_000));
    assert_located(&s.root, header.as_bytes(), "limits", None);
    let inline = format!("a = {}1{}\n", "{b=".repeat(3000), "}".repeat(3000));
    assert_located(&s.root, inline.as_bytes(), "limits", None);
}

/// `(base plan, text to replace, replacement, code, secret never echoed)`.
const VALUES: &[(&str, &str, &str, &str, Option<&str>)] = &[
    // Paths that are not normal.
    (
        "etcd-online.toml",
        "/server/db/snapshots/",
        "/server/db//etcd/snap/",
        "paths",
        None,
    ),
    (
        "etcd-online.toml",
        "/server/db/snapshots/",
        "/server/db/./snapshots/",
        "paths",
        None,
    ),
    (
        "etcd-online.toml",
        "/server/db/snapshots/",
        "/server/db/../snapshots/",
        "paths",
        None,
    ),
    (
        "etcd-online.toml",
        "file = \"/root/rke2-backup/token\"",
        "file = \"/root/rke2-backup/.\"",
        "paths",
        None,
    ),
    (
        "etcd-airgap.toml",
        "artifacts = \"/root/rke2-artifacts\"",
        "artifacts = \"/root//rke2-artifacts\"",
        "paths",
        None,
    ),
    // Invisible and layout characters, raw and escaped, in values and comments.
    (
        "etcd-online.toml",
        "name = \"server-1\"",
        "name = \"server\u{200b}-1\"",
        "characters",
        None,
    ),
    (
        "etcd-online.toml",
        "name = \"server-1\"",
        "name = \"server-1\\u202e\"",
        "characters",
        None,
    ),
    (
        "etcd-online.toml",
        "/root/rke2-backup/token",
        "/root/rke2-backup/tok\\u2028en",
        "characters",
        None,
    ),
    (
        "etcd-online.toml",
        "/root/rke2-backup/token",
        "/root/rke2-backup/tok\u{2029}en",
        "characters",
        None,
    ),
    (
        "etcd-online.toml",
        "/root/rke2-backup/token",
        "/root/rke2-backup/\u{feff}token",
        "characters",
        None,
    ),
    (
        "etcd-online.toml",
        "[cluster]",
        "# \u{202e} reversed\n[cluster]",
        "characters",
        None,
    ),
    (
        "etcd-online.toml",
        "/root/rke2-backup/token",
        "/root/rke2-backup/to\u{ad}ken",
        "characters",
        None,
    ),
    (
        "rancher-upgrade.toml",
        "user = \"root\"",
        "user = \"ro\\u2028- address: 6.6.6.6\"",
        "characters",
        None,
    ),
    // Too long.
    (
        "etcd-online.toml",
        "/root/rke2-backup/token",
        "/root/@LONG@",
        "paths",
        None,
    ),
    // host[:port].
    (
        "etcd-s3.toml",
        "endpoint = \"s3.storage.internal:9000\"",
        "endpoint = \"s3 storage\"",
        "fields",
        None,
    ),
    (
        "etcd-s3.toml",
        "endpoint = \"s3.storage.internal:9000\"",
        "endpoint = \"s3.storage.internal:99999\"",
        "fields",
        None,
    ),
    (
        "etcd-s3.toml",
        "endpoint = \"s3.storage.internal:9000\"",
        "endpoint = \"s3.storage.internal/bucket\"",
        "fields",
        None,
    ),
    (
        "postgres.toml",
        "host = \"pg.db.internal\"",
        "host = \"pg.db.internal;drop\"",
        "datastore-fields",
        None,
    ),
    // Object names.
    (
        "etcd-s3.toml",
        "name = \"pre-upgrade-cp-1-1718000000\"",
        "name = \".\"",
        "fields",
        None,
    ),
    (
        "etcd-s3.toml",
        "name = \"pre-upgrade-cp-1-1718000000\"",
        "name = \"..\"",
        "fields",
        None,
    ),
    // Versions that were never released.
    (
        "etcd-online.toml",
        "current-version = \"v1.29.4+rke2r1\"",
        "current-version = \"v1.29.4+rke2r0\"",
        "versions",
        None,
    ),
    (
        "etcd-online.toml",
        "current-version = \"v1.29.4+rke2r1\"",
        "current-version = \"v1.29.4-rc0+rke2r1\"",
        "versions",
        None,
    ),
    // Credentials where none belongs.
    (
        "postgres.toml",
        "host = \"pg.db.internal\"",
        "host = \"rke2:Hunter2Secret@pg.db.internal\"",
        "secrets",
        Some("Hunter2Secret"),
    ),
    (
        "postgres.toml",
        "database = \"rke2\"",
        "database = \"rke2;password=Hunter2Secret\"",
        "secrets",
        Some("Hunter2Secret"),
    ),
    (
        "etcd-online.toml",
        "/root/rke2-backup/token",
        "/root/K10@HEX@::server:Hunter2Secret",
        "secrets",
        Some("Hunter2Secret"),
    ),
    (
        "etcd-online.toml",
        "[token]",
        "[token]\npassword = \"Hunter2Secret\"",
        "unknown-key",
        Some("Hunter2Secret"),
    ),
    (
        "etcd-online.toml",
        "[cluster]",
        "[cluster]\napi-token = \"Hunter2Secret\"",
        "unknown-key",
        Some("Hunter2Secret"),
    ),
];

#[test]
fn values_validation_refuses_hostile_values_with_a_location() {
    let s = scratch();
    for (base, from, to, code, hidden) in VALUES {
        let text = fs::read_to_string(repo().join("plans").join(base)).unwrap();
        assert!(text.contains(from), "{base} has no {from:?}");
        let to = to
            .replace("@LONG@", &"a/".repeat(2100))
            .replace("@HEX@", &"0123456789abcdef".repeat(4));
        assert_located(
            &s.root,
            text.replacen(from, &to, 1).as_bytes(),
            code,
            *hidden,
        );
    }
}

// ---------------------------------------------------------------------------
// 10. Exit codes that mean one thing; 9. verify is strict.

#[test]
fn diff_exits_1_when_different_4_when_an_input_is_rejected_and_warns_on_a_damaged_bundle() {
    let s = scratch();
    let (a, b) = (plan("etcd-online.toml"), plan("etcd-airgap.toml"));
    assert_code(&run_in(&s.root, &["diff", &a, &a]), 0);
    assert_code(&run_in(&s.root, &["diff", &a, &b]), 1);
    fs::write(s.root.join("bad.toml"), "[cluster]\nname = \"x\"\n").unwrap();
    assert_code(&run_in(&s.root, &["diff", &a, "bad.toml"]), 4);
    fs::create_dir(s.root.join("empty")).unwrap();
    assert_code(&run_in(&s.root, &["diff", &a, "empty"]), 4);
    assert_code(&run_in(&s.root, &["compile", &a, "--out", "bundle"]), 0);
    fs::write(s.root.join("bundle/extra.txt"), "x").unwrap();
    let res = run_in(&s.root, &["diff", &a, "bundle"]);
    assert_ne!(res.status.code(), Some(4), "{}", describe(&res));
    let err = stderr(&res);
    assert!(err.contains("warning: bundle does not verify"), "{err}");
    assert!(err.contains("extra.txt"), "{err}");
}

/// A fresh bundle of the sqlite plan in `dir/b`.
fn fresh(dir: &Utf8Path) -> Utf8PathBuf {
    let b = dir.join("b");
    if b.exists() {
        fs::remove_dir_all(&b).unwrap();
    }
    assert_code(
        &run_in(dir, &["compile", &plan("sqlite.toml"), "--out", "b"]),
        0,
    );
    b
}

/// `(what, damage done to a fresh bundle, text the report must contain)`.
type Damage = (&'static str, fn(&Utf8Path), &'static str);

fn first_script(b: &Utf8Path) -> Utf8PathBuf {
    let sums = fs::read_to_string(b.join("SHA256SUMS")).unwrap();
    let path = sums
        .lines()
        .map(|l| &l[66..])
        .find(|p| p.starts_with("nodes/") && p.ends_with(".sh"))
        .unwrap();
    b.join(path)
}

fn sums_line(b: &Utf8Path, line: &str) {
    let mut sums = fs::read_to_string(b.join("SHA256SUMS")).unwrap();
    sums.push_str(line);
    fs::write(b.join("SHA256SUMS"), sums).unwrap();
}

const DAMAGES: &[Damage] = &[
    (
        "an unlisted file",
        |b| fs::write(b.join("nodes/extra.sh"), "x").unwrap(),
        "not listed",
    ),
    (
        "a listed file missing",
        |b| fs::remove_file(b.join("README.md")).unwrap(),
        "missing",
    ),
    (
        "a changed file",
        |b| fs::write(b.join("README.md"), "x").unwrap(),
        "does not match",
    ),
    (
        "a symlink",
        |b| std::os::unix::fs::symlink("/etc/passwd", b.join("nodes/link")).unwrap(),
        "link",
    ),
    (
        "a script replaced by a symlink",
        |b| {
            let s = first_script(b);
            let keep = b.join("kept");
            fs::rename(&s, &keep).unwrap();
            std::os::unix::fs::symlink(&keep, &s).unwrap();
            fs::rename(&keep, b.parent().unwrap().join("kept")).unwrap();
        },
        "link",
    ),
    (
        "a FIFO",
        |b| {
            let c = std::ffi::CString::new(b.join("nodes/fifo").as_str()).unwrap();
            // SAFETY: mkfifo in the test's scratch folder.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        },
        "FIFO",
    ),
    (
        "a `..` line",
        |b| sums_line(b, &format!("{}  ../outside\n", "0".repeat(64))),
        "`..`",
    ),
    (
        "an absolute line",
        |b| sums_line(b, &format!("{}  /etc/passwd\n", "0".repeat(64))),
        "absolute",
    ),
    (
        "a malformed line",
        |b| sums_line(b, "garbage\n"),
        "not `<sha256>  <path>`",
    ),
    (
        "a script not 0755",
        |b| {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(first_script(b), fs::Permissions::from_mode(0o775)).unwrap();
        },
        "not 755",
    ),
];

#[test]
fn rewind_verify_rejects_every_damage() {
    let s = scratch();
    fresh(&s.root);
    let res = run_in(&s.root, &["verify", "b"]);
    assert_code(&res, 0);
    assert!(
        String::from_utf8_lossy(&res.stdout).contains("bundle digest (sha256 of SHA256SUMS): ")
    );
    for (what, damage, says) in DAMAGES {
        let b = fresh(&s.root);
        damage(&b);
        let res = run_in(&s.root, &["verify", "b"]);
        assert_code(&res, 1);
        assert!(stderr(&res).contains(says), "{what}: {}", describe(&res));
    }
}

#[test]
fn verify_streams_a_large_file() {
    // A 192 MiB sparse file listed in SHA256SUMS: hashed in pieces, so the
    // process stays well under its size (a whole-file read would take 192
    // MiB; a debug build reading a bundle takes about 50 MiB by itself).
    let s = scratch();
    let b = fresh(&s.root);
    let big = b.join("big.bin");
    fs::File::create(&big)
        .unwrap()
        .set_len(192 * 1024 * 1024)
        .unwrap();
    sums_line(&b, &format!("{}  big.bin\n", "0".repeat(64)));
    // The child's peak memory, from wait4's rusage. Not of a child of this
    // test process: a spawned child is charged the resident memory of its
    // parent at the time (the kernel keeps the high-water mark across exec),
    // and this process holds whatever the tests running beside it hold. So
    // a small python3 forks, execs rewind and reports the rusage of that
    // grandchild, whose mark starts at python's few MiB.
    let probe = r#"
import os, sys
pid = os.fork()
if pid == 0:
    err = os.open("err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(err, 2)
    os.execv(sys.argv[1], [sys.argv[1], "verify", "b"])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"#;
    let out = Command::new("python3")
        .args(["-c", probe, common::bin()])
        .current_dir(&s.root)
        .output()
        .expect("python3 (tests need it: .ci/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    let (code, rss) = report.trim().split_once(' ').expect("exit code and rss");
    assert_eq!(
        code,
        "1",
        "exit code; stderr: {}",
        fs::read_to_string(s.root.join("err")).unwrap_or_default()
    );
    let rss: u64 = rss.parse().expect("ru_maxrss"); // KiB on Linux
    let err = fs::read_to_string(s.root.join("err")).unwrap();
    assert!(err.contains("big.bin: sha256 does not match"), "{err}");
    assert!(rss > 0 && rss < 96 * 1024, "max RSS {rss} KiB");
}

/// The six shells a bundle's scripts run under (docs/running.md).
const SHELLS: &[&[&str]] = &[
    &["dash"],
    &["posh"],
    &["yash", "-o", "posixlycorrect"],
    &["mksh"],
    &["busybox", "sh"],
    &["bash", "--posix"],
];

/// `sh verify.sh` in `b` under `shell`; under busybox, with busybox's own
/// find, awk, grep and sha256sum first on PATH (as on a busybox host).
fn verify_sh(b: &Utf8Path, shell: &[&str], tools: &Utf8Path) -> Output {
    let mut cmd = Command::new(common::require_tool(shell[0]));
    cmd.args(&shell[1..]).arg("verify.sh").current_dir(b);
    if shell[0] == "busybox" {
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{tools}:{path}"));
    }
    run_bounded(cmd, &format!("{shell:?} verify.sh"))
}

#[test]
fn verify_sh_is_as_strict_as_rewind_verify_in_every_shell() {
    let s = scratch();
    let tools = s.root.join("busybox-tools");
    fs::create_dir(&tools).unwrap();
    let busybox = common::require_tool("busybox");
    for t in ["find", "awk", "grep", "sha256sum", "dirname"] {
        std::os::unix::fs::symlink(&busybox, tools.join(t)).unwrap();
    }
    let work = s.root.join("w");
    fs::create_dir(&work).unwrap();
    let b = fresh(&work);
    for shell in SHELLS {
        let res = verify_sh(&b, shell, &tools);
        assert_code(&res, 0);
        assert!(
            String::from_utf8_lossy(&res.stdout).contains("bundle digest (sha256 of SHA256SUMS): "),
            "{shell:?}: {}",
            describe(&res)
        );
    }
    for (what, damage, _) in DAMAGES {
        let b = fresh(&work);
        damage(&b);
        for shell in SHELLS {
            let res = verify_sh(&b, shell, &tools);
            assert_ne!(
                res.status.code(),
                Some(0),
                "{what} under {shell:?}: {}",
                describe(&res)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 7. Injection outside the scripts.

/// Where a README breaks its Markdown: raw HTML outside code spans (other
/// than rewind's own anchors), or a table row with more cells than its
/// header. Shared with the campaign (tests/campaign.rs keeps a copy).
fn markdown_breaks(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut header_cells: Option<usize> = None;
    let mut in_fence = false;
    for (i, line) in readme.lines().enumerate() {
        if line.starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || line.starts_with("<a id=\"") {
            continue;
        }
        let outside = outside_code(line);
        if outside.contains('<') || outside.contains('>') {
            out.push(format!("line {}: raw HTML: {line}", i + 1));
        }
        if line.starts_with('|') {
            let cells = unescaped_pipes(&outside);
            match header_cells {
                None => header_cells = Some(cells),
                Some(h) if h != cells => {
                    out.push(format!("line {}: {cells} cells, header {h}: {line}", i + 1));
                }
                Some(_) => {}
            }
        } else {
            header_cells = None;
        }
    }
    out
}

/// The text of a line outside its code spans (fences of any length), with
/// `|` kept where it was escaped inside a span as `\|`.
fn outside_code(line: &str) -> String {
    let b: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '\\' && i + 1 < b.len() {
            out.push(b[i]);
            out.push(b[i + 1]);
            i += 2;
            continue;
        }
        if b[i] == '`' {
            let mut n = 0;
            while i + n < b.len() && b[i + n] == '`' {
                n += 1;
            }
            // Find the closing run of exactly n backquotes.
            let mut j = i + n;
            let mut close = None;
            while j < b.len() {
                if b[j] == '`' {
                    let mut m = 0;
                    while j + m < b.len() && b[j + m] == '`' {
                        m += 1;
                    }
                    if m == n {
                        close = Some(j);
                        break;
                    }
                    j += m;
                } else {
                    j += 1;
                }
            }
            if let Some(j) = close {
                out.push_str("CODE");
                i = j + n;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn unescaped_pipes(s: &str) -> usize {
    let b = s.as_bytes();
    (0..b.len())
        .filter(|&i| b[i] == b'|' && (i == 0 || b[i - 1] != b'\\'))
        .count()
}

#[test]
fn readme_values_cannot_break_out_of_their_markdown_context() {
    let s = scratch();
    let base = fs::read_to_string(repo().join("plans/etcd-airgap.toml")).unwrap();
    // The campaign's reproducer: a backquote cannot be escaped inside the
    // planner's code spans, so it is refused.
    let breakout = base.replacen(
        "[cluster]",
        "[cluster]\ndata-dir = \"/data/x` | **run evil** | `y\"",
        1,
    );
    assert_located(&s.root, breakout.as_bytes(), "characters", None);
    // Pipes, HTML, emphasis and link syntax in paths are printed literally.
    let hostile = "/data/<img src=x onerror=alert(1)>|**run** [a](b) _c_ ~~d~~ #e &amp; \\\\f";
    let plan = base.replacen(
        "[cluster]",
        &format!("[cluster]\ndata-dir = \"{hostile}\""),
        1,
    );
    assert!(
        !base.contains("data-dir"),
        "etcd-airgap.toml sets no data-dir"
    );
    fs::write(s.root.join("p.toml"), &plan).unwrap();
    assert_code(&run_in(&s.root, &["compile", "p.toml", "--out", "b"]), 0);
    let readme = fs::read_to_string(s.root.join("b/README.md")).unwrap();
    let breaks = markdown_breaks(&readme);
    assert!(breaks.is_empty(), "{breaks:#?}");
    let res = run_in(&s.root, &["explain", "p.toml", "--format", "markdown"]);
    assert_code(&res, 0);
    let breaks = markdown_breaks(&String::from_utf8_lossy(&res.stdout));
    assert!(breaks.is_empty(), "{breaks:#?}");
}

#[test]
fn the_rke1_nodes_block_is_yaml_whatever_the_user_name() {
    let s = scratch();
    let base = fs::read_to_string(repo().join("plans/rancher-recovery.toml")).unwrap();
    assert!(base.contains("user = \"root\""));
    let plan = base.replacen("user = \"root\"", "user = \"x # y: z\"", 1);
    fs::write(s.root.join("p.toml"), plan).unwrap();
    assert_code(&run_in(&s.root, &["compile", "p.toml", "--out", "b"]), 0);
    let scripts: String = tree(&s.root.join("b/workstation"))
        .into_iter()
        .filter(|p| p.ends_with(".sh"))
        .map(|p| fs::read_to_string(s.root.join("b/workstation").join(p)).unwrap())
        .collect();
    assert!(
        scripts.contains("user: \"x # y: z\""),
        "the user is a quoted YAML scalar"
    );
    assert!(!scripts.contains("user: x # y: z"));
}

#[test]
fn audit_prints_a_refresh_command_with_quoted_paths() {
    let s = scratch();
    let plans = s.root.join("my plans");
    let golden = s.root.join("gold en");
    fs::create_dir_all(&plans).unwrap();
    fs::copy(repo().join("plans/sqlite.toml"), plans.join("sqlite.toml")).unwrap();
    assert_code(
        &run_in(
            &s.root,
            &["compile", "my plans/sqlite.toml", "--out", "gold en/sqlite"],
        ),
        0,
    );
    fs::write(golden.join("sqlite/README.md"), "changed\n").unwrap();
    let res = run_in(&s.root, &["audit", "my plans", "gold en"]);
    assert_code(&res, 1);
    let out = String::from_utf8_lossy(&res.stdout);
    assert!(
        out.contains("rewind compile 'my plans/sqlite.toml' --out 'gold en/sqlite' --force"),
        "{out}"
    );
}

#[test]
fn audit_refuses_a_fifo_plan_without_hanging() {
    let s = scratch();
    let plans = s.root.join("plans");
    fs::create_dir_all(&plans).unwrap();
    fs::create_dir_all(s.root.join("golden")).unwrap();
    let c = std::ffi::CString::new(plans.join("fifo.toml").as_str()).unwrap();
    // SAFETY: mkfifo in the test's scratch folder.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let res = run_in(&s.root, &["audit", "plans", "golden"]);
    assert_ne!(res.status.code(), Some(0), "{}", describe(&res));
    assert!(
        String::from_utf8_lossy(&res.stdout).contains("not a regular file")
            || stderr(&res).contains("not a regular file"),
        "{}",
        describe(&res)
    );
}

#[test]
fn an_out_that_cannot_be_created_is_one_clear_line() {
    let s = scratch();
    fs::write(s.root.join("afile"), "x").unwrap();
    let res = run_in(
        &s.root,
        &["compile", &plan("sqlite.toml"), "--out", "afile/sub/b"],
    );
    assert_code(&res, 3);
    let err = stderr(&res);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: cannot write the bundle to afile/sub/b: "),
        "{err}"
    );
    assert_eq!(
        err.matches("afile: is a file, not a folder").count(),
        1,
        "said once, and plainly: {err}"
    );
}

#[test]
fn a_diagnostic_never_prints_a_bidi_or_invisible_character() {
    let s = scratch();
    for text in [
        "[cluster]\nname = \"a\u{202e}b\"\n",
        "[cluster]\n\"x\\u202ey\" = 1\n",
        "# \u{2066}\u{200b}\n[cluster]\n",
    ] {
        fs::write(s.root.join("p.toml"), text).unwrap();
        for format in ["text", "json"] {
            let res = run_in(&s.root, &["check", "p.toml", "--format", format]);
            assert_code(&res, 1);
            let all = format!("{}{}", stderr(&res), String::from_utf8_lossy(&res.stdout));
            let bad: Vec<char> = all
                .chars()
                .filter(|&c| rewind::sensitive::forbidden(c))
                .collect();
            assert!(
                bad.is_empty(),
                "{text:?} ({format}) printed {bad:?}:\n{all}"
            );
        }
    }
}
