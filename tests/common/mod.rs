//! Helpers shared by the integration tests: where the repository, plans and
//! golden bundles are, running the real `rewind` binary, requiring external
//! tools (a missing tool fails the test, it never skips it), and the strings
//! that must never reach a bundle.
//!
//! Each test crate uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use camino::{Utf8Path, Utf8PathBuf};

/// The repository root (cargo also runs integration tests from here).
pub fn repo() -> &'static Utf8Path {
    Utf8Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `plans/`, relative to the repository root and the tests' working directory.
pub const PLANS: &str = "plans";

/// `golden/`, relative to the repository root and the tests' working directory.
pub const GOLDEN: &str = "golden";

/// Every reference plan as `(name, plans/<name>.toml)`, sorted by name.
pub fn plans() -> Vec<(String, Utf8PathBuf)> {
    let mut out = Vec::new();
    for entry in repo().join(PLANS).read_dir_utf8().expect("read plans/") {
        let entry = entry.expect("read plans/");
        if let Some(stem) = entry.file_name().strip_suffix(".toml") {
            out.push((
                stem.to_owned(),
                Utf8Path::new(PLANS).join(entry.file_name()),
            ));
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no plans/*.toml found");
    out
}

/// The `rewind` binary cargo built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rewind")
}

/// A `rewind` command with the canary secrets of [`SECRET_CANARIES`] in its
/// environment, run from `cwd`.
pub fn rewind(cwd: impl AsRef<Path>) -> Command {
    let mut cmd = Command::new(bin());
    cmd.current_dir(cwd);
    for (name, value) in SECRET_CANARIES {
        cmd.env(name, value);
    }
    cmd
}

/// Runs `rewind ARGS` from the repository root.
pub fn run(args: &[&str]) -> Output {
    rewind(repo())
        .args(args)
        .output()
        .expect("spawn the rewind binary")
}

/// The exit code, stdout and stderr of a finished command, for messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts the exit code of a finished command, printing its output if not.
#[track_caller]
pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
}

/// The Debian package that provides each external tool the tests use.
const PACKAGES: &[(&str, &str)] = &[
    ("shellcheck", "shellcheck"),
    ("dash", "dash"),
    ("posh", "posh"),
    ("yash", "yash"),
    ("mksh", "mksh"),
    ("busybox", "busybox"),
    ("bash", "bash"),
    ("sqlite3", "sqlite3"),
    ("unzip", "unzip"),
    // The sandbox (tests/sandbox/): namespaces, pseudo-terminal, addresses.
    ("unshare", "util-linux"),
    ("script", "bsdutils"),
    ("ip", "iproute2"),
    ("curl", "curl"),
];

/// The full path of `tool` on PATH; panics, saying how to install it, when
/// it is missing (tests never skip for a missing tool).
pub fn require_tool(tool: &str) -> PathBuf {
    if let Some(found) = which(tool) {
        return found;
    }
    let package = PACKAGES
        .iter()
        .find(|(t, _)| *t == tool)
        .map_or(tool, |(_, p)| *p);
    panic!(
        "`{tool}` is not installed, and this test needs it (tests never skip).\n\
         Install it: `apt-get install -y {package}` (as root), or run `bash .ci/run`, \
         which installs every tool the tests use."
    );
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// Secrets planted in the environment of every `rewind` the tests spawn
/// (the variables a rollback reads at run time). None may ever appear in a
/// bundle or in `rewind`'s output.
pub const SECRET_CANARIES: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "AKIAREWINDCANARY0001"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "rewind-canary-aws-secret-6c1f0e9b2d7a4e38",
    ),
    ("PGPASSWORD", "rewind-canary-pgpassword-83d2a1f0"),
    ("MYSQL_PWD", "rewind-canary-mysql-pwd-5be71c24"),
    ("RKE2_TOKEN", "rewind-canary-rke2-token-d94f6a13"),
    ("TOKEN", "rewind-canary-token-0a7c3e58"),
];

/// Text that looks like a secret whatever its value: a private key block.
pub const SECRET_MARKERS: &[&str] = &["-----BEGIN ", "PRIVATE KEY-----"];

/// Every secret-looking string in `text`, as `what: found` lines.
pub fn secrets_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in SECRET_CANARIES {
        if text.contains(value) {
            out.push(format!("the value of ${name} ({value})"));
        }
    }
    for marker in SECRET_MARKERS {
        if text.contains(marker) {
            out.push(format!("a key block marker `{marker}`"));
        }
    }
    out
}

/// Absolute paths of the machine running the tests that must never appear in
/// a bundle: the repository, the build folder, the temporary folder, the
/// working and home directories. A path that the plans themselves mention
/// (plan values reach the bundle on purpose, e.g. `/root/rke2-backup`) is
/// left out, since it cannot tell the machine apart.
pub fn machine_paths(plan_texts: &[String]) -> Vec<String> {
    let mut candidates = vec!["/tmp/".to_owned()];
    let mut add = |p: &Path| {
        let s = p.to_string_lossy().trim_end_matches('/').to_owned();
        if s.len() > 1 {
            candidates.push(format!("{s}/"));
            if let Ok(c) = p.canonicalize() {
                candidates.push(format!("{}/", c.to_string_lossy().trim_end_matches('/')));
            }
        }
    };
    add(repo().as_std_path());
    add(&std::env::temp_dir());
    if let Some(dir) = Path::new(bin()).parent() {
        add(dir);
    }
    if let Ok(cwd) = std::env::current_dir() {
        add(&cwd);
    }
    if let Some(home) = std::env::var_os("HOME") {
        add(Path::new(&home));
    }
    candidates.sort();
    candidates.dedup();
    candidates.retain(|c| !plan_texts.iter().any(|t| t.contains(c.as_str())));
    candidates
}
