//! Runs generated scripts as they would run on a host, without touching this
//! machine: each run is a new private mount namespace (`unshare -m -u`) in
//! which `/var`, `/etc` and `/usr/local` are overlays whose upper layers live
//! in the test's temporary folder, and the host name is the node's name.
//!
//! A [`Host`] keeps its upper layers between runs, so that consecutive steps
//! on one node see what the earlier ones left (a done-marker under
//! `/var/lib/rewind`, a database moved aside under `/var/lib/rancher`), and a
//! test can put files on the host and read them back from outside
//! ([`Host::inside`]). Nothing written by a script reaches the real `/var`,
//! `/etc`, `/opt` or `/usr/local`.
//!
//! This is a deliberately small runner for the datastore tests (the generic
//! sandbox harness of the other suites is separate). Stand-ins for tools that
//! cannot exist here (`rke2`, `rke2-killall.sh`, `systemctl`) are put in
//! `/usr/local/bin` of the host with [`Host::stub`]; they append their argv to
//! [`Host::journal`].

use std::path::{Path, PathBuf};
use std::process::Command;

/// The folders that are overlays in every run: `(path, name of its layer)`.
const OVERLAYS: [(&str, &str); 4] = [
    ("/var", "var"),
    ("/etc", "etc"),
    ("/opt", "opt"),
    ("/usr/local", "usr-local"),
];

/// Seconds after which a run is killed (a hung script fails the test).
const RUN_LIMIT_SECS: u32 = 180;

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`-1` if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Both streams, for assertions and failure messages.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Fails the test (showing the output) unless the run exited 0.
    pub fn assert_ok(&self, what: &str) {
        assert_eq!(self.code, 0, "{what} failed:\n{}", self.all());
    }
}

/// One simulated host (a node or the workstation).
pub struct Host {
    /// The node name (`workstation` for workstation scripts).
    pub name: String,
    dir: PathBuf,
}

impl Host {
    /// A fresh host whose layers live under `base/<name>`.
    pub fn new(base: &Path, name: &str) -> Host {
        let dir = base.join(name);
        for (_, layer) in OVERLAYS {
            std::fs::create_dir_all(dir.join(layer).join("upper")).expect("create upper layer");
            std::fs::create_dir_all(dir.join(layer).join("work")).expect("create work dir");
        }
        std::fs::create_dir_all(dir.join("tmp")).expect("create tmp");
        std::fs::create_dir_all(dir.join("home")).expect("create home");
        std::fs::write(dir.join("journal"), "").expect("create journal");
        Host {
            name: name.to_owned(),
            dir,
        }
    }

    /// Where `path` (under /var, /etc, /opt or /usr/local) of this host is, seen
    /// from outside: its file in the upper layer. Files a script created or
    /// changed are there; untouched files of the real machine are not.
    pub fn inside(&self, path: &str) -> PathBuf {
        for (mount, layer) in OVERLAYS {
            if let Some(rest) = path.strip_prefix(mount) {
                if rest.is_empty() {
                    return self.dir.join(layer).join("upper");
                }
                if let Some(rest) = rest.strip_prefix('/') {
                    return self.dir.join(layer).join("upper").join(rest);
                }
            }
        }
        panic!("{path} is not under one of the sandbox overlays {OVERLAYS:?}");
    }

    /// Puts a file on the host (creating its folders).
    pub fn put(&self, path: &str, bytes: impl AsRef<[u8]>) {
        let p = self.inside(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir -p");
        std::fs::write(&p, bytes).expect("write file into the sandbox");
    }

    /// Copies a file onto the host.
    pub fn copy(&self, from: &Path, path: &str) {
        let p = self.inside(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir -p");
        std::fs::copy(from, &p)
            .unwrap_or_else(|e| panic!("copy {} to {path}: {e}", from.display()));
    }

    /// Installs an executable stand-in at `/usr/local/bin/<name>` that appends
    /// `name <arg> <arg>…` to the journal, then runs `body` (sh).
    pub fn stub(&self, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let text = format!(
            "#!/bin/sh\n{{ printf '%s' '{name}'; for a in \"$@\"; do printf ' <%s>' \"$a\"; done; printf '\\n'; }} >>\"$STUB_JOURNAL\"\n{body}\n"
        );
        let path = format!("/usr/local/bin/{name}");
        self.put(&path, text);
        std::fs::set_permissions(self.inside(&path), std::fs::Permissions::from_mode(0o755))
            .expect("chmod stub");
    }

    /// What the stand-ins were called with, one line per call.
    pub fn journal(&self) -> String {
        std::fs::read_to_string(self.dir.join("journal")).unwrap_or_default()
    }

    /// A scratch folder of this host outside the overlays (its TMPDIR).
    pub fn tmp(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// Runs a generated script with `sh` (dash), as root, with
    /// `REWIND_HOST=<this host>` and `REWIND_YES=1`, plus `env`.
    pub fn script(&self, script: &Path, env: &[(&str, &str)]) -> Run {
        let mut all = vec![("REWIND_HOST", self.name.as_str()), ("REWIND_YES", "1")];
        all.extend_from_slice(env);
        self.exec(&["sh", &script.to_string_lossy()], &all)
    }

    /// Runs `argv` inside a new namespace of this host. The environment is
    /// cleared except PATH, plus HOME and TMPDIR of this host, `STUB_JOURNAL`,
    /// and `env`: nothing of the test process (no AWS_*, no PG*) leaks in.
    pub fn exec(&self, argv: &[&str], env: &[(&str, &str)]) -> Run {
        let mut prologue = String::from("set -eu\nmount --make-rprivate /\n");
        for (mount, layer) in OVERLAYS {
            let l = self.dir.join(layer);
            prologue.push_str(&format!(
                "mount -t overlay overlay -o lowerdir={mount},upperdir={},workdir={} {mount}\n",
                l.join("upper").display(),
                l.join("work").display()
            ));
        }
        prologue.push_str("hostname \"$SANDBOX_NODE\"\nexec \"$@\"\n");
        let mut cmd = Command::new("timeout");
        cmd.args([
            "-k",
            "5",
            &RUN_LIMIT_SECS.to_string(),
            "unshare",
            "-m",
            "-u",
            "sh",
            "-c",
        ])
        .arg(&prologue)
        .arg("sandbox")
        .args(argv)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", self.dir.join("home"))
        .env("TMPDIR", self.tmp())
        .env("STUB_JOURNAL", self.dir.join("journal"))
        .env("SANDBOX_NODE", &self.name)
        .stdin(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot start unshare: {e}"));
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
