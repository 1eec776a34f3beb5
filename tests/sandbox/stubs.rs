//! The stand-ins (`tests/stubs/`), their journal, and fault injection.
//!
//! Inside a host the test's shared folder is `/rewind-test`: `stubs/` holds
//! the stand-ins, `bin/` is first on PATH (`systemctl`, `kubectl`, the
//! database clients, and the fault shims of a run), `journal` records every
//! call, `faults` says which calls fail, `cluster/` is the fake cluster and
//! `fixtures/` the test data the stand-ins need (an S3 download).

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// PATH inside a host: the stand-ins first, then the usual folders (posh
/// and mksh need /usr/bin/printf, so PATH is never replaced).
pub const PATH: &str =
    "/rewind-test/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Stand-ins reached through PATH.
const ON_PATH: &[&str] = &[
    "systemctl",
    "kubectl",
    "pg_restore",
    "psql",
    "pg_dump",
    "mysqldump",
    "mysql",
    "docker",
    "s3cmd",
];

/// Every stand-in file, with the shared library.
const FILES: &[&str] = &[
    "lib.sh",
    "rke2",
    "rke2-killall.sh",
    "rke2-uninstall.sh",
    "systemctl",
    "kubectl",
    "install-airgap.sh",
    "install-online.sh",
    "k3s-install.sh",
    "pg_restore",
    "psql",
    "pg_dump",
    "mysqldump",
    "mysql",
    "docker",
    "rke",
    "s3cmd",
    "fault-shim",
];

/// Tools whose stand-in records calls itself (a fault in any other tool
/// goes through the fault shim).
pub const STAND_INS: &[&str] = &[
    "rke2",
    "rke2-killall.sh",
    "rke2-uninstall.sh",
    "systemctl",
    "kubectl",
    "install.sh",
    "rke2-install.sh",
    "k3s",
    "k3s-killall.sh",
    "k3s-uninstall.sh",
    "k3s-install.sh",
    "pg_restore",
    "psql",
    "pg_dump",
    "mysqldump",
    "mysql",
    "docker",
    "rke",
    "s3cmd",
];

/// `tests/stubs/`.
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stubs")
}

/// The text of a stand-in.
pub fn text(name: &str) -> String {
    fs::read_to_string(source_dir().join(name))
        .unwrap_or_else(|e| panic!("read tests/stubs/{name}: {e}"))
}

/// The rke2 stand-in of one version: a host "has" the version its binary
/// reports.
pub fn rke2_binary(version: &str) -> String {
    let t = text("rke2");
    assert!(
        t.contains("RKE2_STUB_VERSION=@VERSION@"),
        "tests/stubs/rke2 lost its version line"
    );
    t.replace(
        "RKE2_STUB_VERSION=@VERSION@",
        &format!("RKE2_STUB_VERSION={version}"),
    )
}

/// The k3s stand-in of one version: the rke2 stand-in under K3s's names
/// (its config dir, `K3S_TOKEN`, `k3s version …`); `k3s-install.sh` writes
/// the same.
pub fn k3s_binary(version: &str) -> String {
    rke2_binary(version)
        .replace("stub_begin rke2 ", "stub_begin k3s ")
        .replace("/etc/rancher/rke2", "/etc/rancher/k3s")
        .replace("RKE2_TOKEN", "K3S_TOKEN")
        .replace("'rke2 version ", "'k3s version ")
}

/// Fills the test's shared folder `test` (the stand-ins, PATH folder, an
/// empty journal, the fake cluster folder).
pub fn install(test: &Path) {
    let stubs = test.join("stubs");
    let bin = test.join("bin");
    for d in [
        &stubs,
        &bin,
        &test.join("cluster"),
        &test.join("fixtures/etcd"),
        &test.join("fixtures/postgres"),
    ] {
        fs::create_dir_all(d).expect("create the test's shared folder");
    }
    for f in FILES {
        let to = stubs.join(f);
        fs::write(&to, text(f)).expect("copy a stand-in");
        fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).expect("chmod a stand-in");
    }
    for f in ON_PATH {
        std::os::unix::fs::symlink(format!("../stubs/{f}"), bin.join(f)).expect("link a stand-in");
    }
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/etcd/snapshot.db"),
        test.join("fixtures/etcd/snapshot.db"),
    )
    .expect("copy the snapshot fixture");
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/token"),
        test.join("fixtures/token"),
    )
    .expect("copy the token fixture");
    // What the pg_dump stand-in writes: the copy must be a real archive.
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/postgres/rke2.dump"),
        test.join("fixtures/postgres/rke2.dump"),
    )
    .expect("copy the PostgreSQL archive fixture");
    let journal = test.join("journal");
    fs::write(&journal, "").expect("create the journal");
    // Runs as another user (the root guard) may still call a stand-in.
    fs::set_permissions(&journal, fs::Permissions::from_mode(0o666)).expect("chmod the journal");
    fs::set_permissions(test, fs::Permissions::from_mode(0o755)).expect("chmod the test folder");
}

/// One call of a stand-in (or of a tool failed by the fault shim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The host it ran on.
    pub host: String,
    /// The tool (`rke2`, `systemctl`, `install.sh`, `mv`...).
    pub tool: String,
    /// Its arguments, byte for byte.
    pub args: Vec<Vec<u8>>,
    /// What the stand-in recorded of its environment (`NAME=value`, or
    /// `NAME=<set>` for a secret) and other facts (`stdin-sha256=...`).
    pub env: Vec<Vec<u8>>,
    /// The exit code the stand-in was told to return (0 unless a fault).
    pub rc: i32,
}

impl Call {
    /// The arguments as text (lossy).
    pub fn arg_texts(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    /// True if the arguments start with `prefix`.
    pub fn starts(&self, prefix: &[&str]) -> bool {
        self.args.len() >= prefix.len()
            && self
                .args
                .iter()
                .zip(prefix)
                .all(|(a, p)| a.as_slice() == p.as_bytes())
    }

    /// The recorded value of an environment variable.
    pub fn env_var(&self, name: &str) -> Option<String> {
        let key = format!("{name}=");
        self.env.iter().find_map(|e| {
            let s = String::from_utf8_lossy(e);
            s.strip_prefix(&key).map(str::to_owned)
        })
    }
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
}

impl fmt::Display for Call {
    /// `host tool <arg>... [NAME=value ...]` (a newline in a word shows as
    /// `\n`), and ` => exit N` for a failing call.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.host, self.tool)?;
        for a in &self.args {
            write!(f, " <{}>", show(a))?;
        }
        if !self.env.is_empty() {
            let env: Vec<String> = self.env.iter().map(|e| show(e)).collect();
            write!(f, " [{}]", env.join(" "))?;
        }
        if self.rc != 0 {
            write!(f, " => exit {}", self.rc)?;
        }
        Ok(())
    }
}

/// Splits a journal field (hex of words, each followed by a NUL) into words.
fn unhex(field: &str) -> Vec<Vec<u8>> {
    let bytes: Vec<u8> = (0..field.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&field[i..i + 2], 16).expect("hex in the journal"))
        .collect();
    let mut words: Vec<Vec<u8>> = bytes.split(|b| *b == 0).map(<[u8]>::to_vec).collect();
    // Every word ends with a NUL: the last piece is the empty rest.
    assert_eq!(
        words.pop(),
        Some(Vec::new()),
        "journal field not NUL-terminated: {field}"
    );
    words
}

/// Hex of words, each followed by a NUL (the journal's and fault file's form).
pub fn hex_words(words: &[String]) -> String {
    let mut s = String::new();
    for w in words {
        for b in w.as_bytes().iter().chain(&[0]) {
            s.push_str(&format!("{b:02x}"));
        }
    }
    s
}

/// Parses the journal file.
pub fn read_journal(path: &Path) -> Vec<Call> {
    let text = fs::read_to_string(path).expect("read the journal");
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 5, "malformed journal line {line:?}");
            let words = |s: &str| if s.is_empty() { Vec::new() } else { unhex(s) };
            Call {
                host: f[0].to_owned(),
                tool: f[1].to_owned(),
                args: words(f[2]),
                env: words(f[3]),
                rc: f[4].parse().expect("exit code in the journal"),
            }
        })
        .collect()
}

/// A call made to fail: on `host` (or every host), the first and every
/// later call of `tool` whose arguments are `args` (or any) exits `rc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Host name, or `None` for any.
    pub host: Option<String>,
    /// The tool's name (a stand-in's, or a real tool's file name).
    pub tool: String,
    /// The exact arguments, or `None` for any.
    pub args: Option<Vec<String>>,
    /// The exit code.
    pub rc: i32,
}

impl Fault {
    /// The fault file line.
    fn line(&self) -> String {
        let args = match &self.args {
            None => "*".to_owned(),
            Some(a) if a.is_empty() => "-".to_owned(),
            Some(a) => hex_words(
                &a.iter()
                    .map(|w| super::checks::normalize_tmp(w))
                    .collect::<Vec<_>>(),
            ),
        };
        format!(
            "{} {} {} {}\n",
            self.host.as_deref().unwrap_or("*"),
            self.tool,
            args,
            self.rc
        )
    }
}

/// Makes `faults` the faults of the next runs (none: an empty list): writes
/// the fault file and puts the shim first on PATH for real tools.
pub fn set_faults(test: &Path, faults: &[Fault]) {
    let bin = test.join("bin");
    for e in fs::read_dir(&bin)
        .expect("read the PATH folder")
        .filter_map(Result::ok)
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if !ON_PATH.contains(&name.as_str()) {
            fs::remove_file(e.path()).expect("remove a fault shim");
        }
    }
    let mut text = String::new();
    for f in faults {
        text.push_str(&f.line());
        let on_path = ON_PATH.contains(&f.tool.as_str()) || STAND_INS.contains(&f.tool.as_str());
        if !on_path && !bin.join(&f.tool).exists() {
            std::os::unix::fs::symlink("../stubs/fault-shim", bin.join(&f.tool))
                .expect("link a fault shim");
        }
    }
    fs::write(test.join("faults"), text).expect("write the fault file");
}
