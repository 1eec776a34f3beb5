//! One fake host: its disk, and running a command on it.
//!
//! The disk is the upper layer of an overlay over this machine's `/`
//! (`enter.sh`): `upper/` holds exactly what the host has that this machine
//! does not (seeded files, and everything the scripts wrote), so reading,
//! seeding and digesting the host is reading `upper/`. A deleted file shows
//! up there as a whiteout (a 0:0 character device).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Top-level folders that are not part of a host's state: the mount point
/// of the test's shared folder, and /tmp, which is checked separately (a
/// finished script leaves nothing there).
const NOT_STATE: &[&str] = &["rewind-test", "tmp"];

/// Seconds after which a run is killed: a hung script fails the test.
pub const RUN_LIMIT_SECS: u32 = 120;

/// A fake host.
#[derive(Debug, Clone)]
pub struct Host {
    /// The node's name (`workstation` for the workstation).
    pub name: String,
    /// The host name its runs see (`uname -n`).
    pub hostname: String,
    /// Its folder: `root/` (mount point), `upper/` (disk), `work/`.
    pub dir: PathBuf,
    /// Addresses its runs have (in their own network namespace); none: the
    /// runs share this machine's network namespace.
    pub addresses: Vec<String>,
}

/// How a run ended and what it printed.
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code (`-1` when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Both streams, for messages and searches.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// What a run needs besides the host.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// The command, run in the bundle's folder with a clean environment.
    pub argv: Vec<String>,
    /// The whole environment of the command (`NAME`, `value`).
    pub env: Vec<(String, String)>,
    /// Run as this `uid:gid` instead of root.
    pub user: Option<String>,
    /// Standard input (none: `/dev/null`).
    pub stdin: Option<Vec<u8>>,
    /// Wrap the command in `script` so that it has a terminal.
    pub terminal: bool,
    /// The folder the command runs in (default: the bundle's).
    pub cwd: Option<String>,
}

impl Host {
    /// Creates the folders of a host named `name` under `parent`.
    pub fn create(parent: &Path, name: &str, hostname: &str, addresses: &[String]) -> Host {
        let dir = parent.join(name);
        for sub in ["root", "upper/rewind-test", "work"] {
            fs::create_dir_all(dir.join(sub)).expect("create a host folder");
        }
        Host {
            name: name.to_owned(),
            hostname: hostname.to_owned(),
            dir,
            addresses: addresses.to_vec(),
        }
    }

    /// Hides what this machine has at these paths from the host (a host
    /// starts without them, whatever a developer's machine holds there):
    /// each existing one becomes an empty folder of the host's own (an
    /// opaque overlay folder, made by removing and recreating it inside a
    /// run, since only overlayfs writes that mark).
    pub fn mask(&self, enter: &Path, test: &Path, paths: &[&str]) {
        let present: Vec<String> = paths
            .iter()
            .filter(|p| fs::symlink_metadata(p).is_ok())
            .map(|p| (*p).to_owned())
            .collect();
        if present.is_empty() {
            return;
        }
        let mut argv: Vec<String> = [
            "/bin/sh",
            "-c",
            "rm -rf -- \"$@\" && mkdir -p -- \"$@\"",
            "mask",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        argv.extend(present);
        let r = self.run(
            enter,
            test,
            &Launch {
                argv,
                ..Launch::default()
            },
        );
        assert_eq!(
            r.code,
            0,
            "could not mask this machine's files on {}: {}",
            self.name,
            r.all()
        );
    }

    /// Where the absolute path `abs` of the host is on its disk: on a data
    /// volume mounted at or above it, else on the root disk.
    pub fn disk(&self, abs: &str) -> PathBuf {
        let rel = abs.strip_prefix('/').expect("an absolute path on the host");
        for (n, m) in self.volumes().iter().rev() {
            if let Some(rest) = abs.strip_prefix(m.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
                && !self.unmounted(m)
            {
                return self
                    .dir
                    .join("vols")
                    .join(n)
                    .join(rest.trim_start_matches('/'));
            }
        }
        self.dir.join("upper").join(rel)
    }

    /// The data volumes: (number, mount point), in mount order.
    pub fn volumes(&self) -> Vec<(String, String)> {
        fs::read_to_string(self.dir.join("mounts"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, m)| (n.to_owned(), m.to_owned()))
            .collect()
    }

    /// True once a stand-in unmounted the volume at `abs` (it stays so).
    pub fn unmounted(&self, abs: &str) -> bool {
        // Hosts live in the test's shared folder, under hosts/.
        let test = self.dir.parent().and_then(Path::parent);
        test.and_then(|t| fs::read_to_string(t.join("unmounted").join(&self.hostname)).ok())
            .is_some_and(|t| t.lines().any(|l| l == abs))
    }

    /// Makes the folder `abs` a separate volume, mounted there in every run
    /// (`enter.sh`), as a dedicated disk for `server/db` or the data dir is:
    /// what the host had there moves onto the volume.
    pub fn add_volume(&self, abs: &str) {
        let n = self.volumes().len().to_string();
        let vol = self.dir.join("vols").join(&n);
        let was = self.disk(abs);
        fs::create_dir_all(vol.parent().expect("vols")).expect("create the volumes folder");
        if was.is_dir() {
            fs::rename(&was, &vol).expect("move a folder onto its volume");
        } else {
            fs::create_dir(&vol).expect("create a volume");
        }
        self.mkdir(abs);
        let mut list = fs::read_to_string(self.dir.join("mounts")).unwrap_or_default();
        list.push_str(&format!("{n} {abs}\n"));
        fs::write(self.dir.join("mounts"), list).expect("write the host's mounts");
    }

    /// A process that runs on the host during every run (one command line,
    /// split on spaces), as a containerd-shim or a database server does.
    pub fn add_process(&self, command: &str) {
        let mut list = fs::read_to_string(self.dir.join("procs")).unwrap_or_default();
        list.push_str(command);
        list.push('\n');
        fs::write(self.dir.join("procs"), list).expect("write the host's processes");
    }

    /// Creates the folder `abs` and its parents on the host. A parent that
    /// exists on this machine gets its mode (an overlay takes a merged
    /// folder's mode from the upper layer: /root must stay 0700).
    pub fn mkdir(&self, abs: &str) {
        let mut real = PathBuf::from("/");
        for part in abs.trim_start_matches('/').split('/') {
            real.push(part);
            let on_disk = self.disk(real.to_str().expect("utf-8 path"));
            if on_disk.is_dir() {
                continue;
            }
            fs::create_dir(&on_disk)
                .unwrap_or_else(|e| panic!("create {} on {}: {e}", real.display(), self.name));
            let mode = fs::metadata(&real)
                .ok()
                .filter(std::fs::Metadata::is_dir)
                .map_or(0o755, |m| m.permissions().mode() & 0o7777);
            fs::set_permissions(&on_disk, fs::Permissions::from_mode(mode))
                .expect("chmod a host folder");
        }
    }

    /// Writes a file on the host (parents created) with `mode`.
    pub fn write(&self, abs: &str, bytes: impl AsRef<[u8]>, mode: u32) {
        let (parent, _) = abs.rsplit_once('/').expect("an absolute path");
        if !parent.is_empty() {
            self.mkdir(parent);
        }
        let path = self.disk(abs);
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {abs} on {}: {e}", self.name));
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod a host file");
    }

    /// Makes `abs` a symbolic link to `target` on the host.
    pub fn symlink(&self, abs: &str, target: &str) {
        let (parent, _) = abs.rsplit_once('/').expect("an absolute path");
        self.mkdir(parent);
        std::os::unix::fs::symlink(target, self.disk(abs)).expect("create a symlink on a host");
    }

    /// The content of a regular file the host has (seeded or written by a
    /// run); `None` if it has none there (or deleted it).
    pub fn read(&self, abs: &str) -> Option<Vec<u8>> {
        let p = self.disk(abs);
        let m = fs::symlink_metadata(&p).ok()?;
        if !m.is_file() {
            return None;
        }
        fs::read(p).ok()
    }

    /// [`read`](Self::read) as text.
    pub fn text(&self, abs: &str) -> Option<String> {
        self.read(abs)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// True if the host has something at `abs` (not a whiteout).
    pub fn has(&self, abs: &str) -> bool {
        fs::symlink_metadata(self.disk(abs)).is_ok_and(|m| !m.file_type().is_char_device())
    }

    /// The names in the host's folder `abs` (sorted; whiteouts left out).
    pub fn list(&self, abs: &str) -> Vec<String> {
        let Ok(rd) = fs::read_dir(self.disk(abs)) else {
            return Vec::new();
        };
        let mut names: Vec<String> = rd
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| !t.is_char_device()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Every file, folder and link of the host's state with its type, mode,
    /// owner, size, content hash (or link target) and modification time:
    /// two equal digests mean nothing on the host changed.
    pub fn digest(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let upper = self.dir.join("upper");
        walk(&upper, &upper, &mut out);
        for (n, m) in self.volumes() {
            if self.unmounted(&m) {
                continue;
            }
            let vol = self.dir.join("vols").join(&n);
            let mut on = BTreeMap::new();
            walk(&vol, &vol, &mut on);
            out.retain(|k, _| !k.starts_with(&format!("{m}/")));
            for (k, v) in on {
                out.insert(format!("{m}{k}"), v);
            }
        }
        out
    }

    /// What the runs left in the host's /tmp.
    pub fn tmp_leftovers(&self) -> Vec<String> {
        self.list("/tmp")
    }

    /// Copies the whole host (disk included) to `to`, to go back to it later.
    pub fn save(&self, to: &Path) {
        copy_tree(&self.dir, to);
    }

    /// Puts back a copy made by [`save`](Self::save).
    pub fn restore(&self, from: &Path) {
        fs::remove_dir_all(&self.dir).expect("remove a host before restoring it");
        copy_tree(from, &self.dir);
    }

    /// Runs a command on this host (see `enter.sh`), killed after
    /// [`RUN_LIMIT_SECS`].
    pub fn run(&self, enter: &Path, test: &Path, launch: &Launch) -> Run {
        let mut argv: Vec<String> = vec!["timeout".into()];
        if launch.terminal {
            // Otherwise timeout puts the command in a background process
            // group, and its read from the terminal stops it (SIGTTIN).
            argv.push("--foreground".into());
        }
        argv.extend(["-k", "5", &RUN_LIMIT_SECS.to_string()].map(String::from));
        argv.extend(
            [
                "unshare",
                "--mount",
                "--uts",
                "--pid",
                "--fork",
                "--kill-child",
            ]
            .map(String::from),
        );
        let mut cmd_env: Vec<(&str, String)> = vec![
            (
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
            ("RW_HOST", self.dir.to_string_lossy().into_owned()),
            ("RW_HOSTNAME", self.hostname.clone()),
            ("RW_TEST", test.to_string_lossy().into_owned()),
        ];
        if !self.addresses.is_empty() {
            argv.push("--net".into());
            cmd_env.push(("RW_ADDRESSES", self.addresses.join(" ")));
        }
        if let Some(user) = &launch.user {
            cmd_env.push(("RW_USER", user.clone()));
        }
        argv.extend(["sh".into(), enter.to_string_lossy().into_owned()]);
        argv.extend([
            "/usr/bin/env".into(),
            "-i".into(),
            "-C".into(),
            launch
                .cwd
                .clone()
                .unwrap_or_else(|| "/rewind-test/bundle".into()),
        ]);
        argv.extend(launch.env.iter().map(|(k, v)| format!("{k}={v}")));
        argv.extend(launch.argv.iter().cloned());
        let mut cmd = if launch.terminal {
            // `script` gives the whole run a pseudo-terminal as its stdin
            // and stdout (inherited through the namespace and chroot); what
            // the test writes to script's stdin is typed on it.
            let line = argv
                .iter()
                .map(|w| rewind::shell::quote(w))
                .collect::<Vec<_>>()
                .join(" ");
            let mut c = Command::new("script");
            c.args(["-q", "-e", "-c", &line, "/dev/null"]);
            cmd_env.push(("SHELL", "/bin/sh".into()));
            c
        } else {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        };
        cmd.env_clear();
        for (k, v) in &cmd_env {
            cmd.env(k, v);
        }
        cmd.stdin(if launch.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped());
        cmd.stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .expect("spawn unshare (util-linux) for a sandboxed run");
        if let Some(input) = &launch.stdin {
            let mut sin = child.stdin.take().expect("stdin");
            sin.write_all(input).expect("write the run's stdin");
        }
        let out = child.wait_with_output().expect("wait for a sandboxed run");
        let code = out.status.code().unwrap_or(-1);
        let run = Run {
            code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            code != 124 && code != 137,
            "a run on {} did not finish within {RUN_LIMIT_SECS} s:\n{}",
            self.name,
            run.all()
        );
        run
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("read a host folder")
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .expect("inside the host")
            .to_string_lossy()
            .into_owned();
        if dir == root && NOT_STATE.contains(&rel.as_str()) {
            continue;
        }
        let m = fs::symlink_metadata(&path).expect("stat a host file");
        let t = m.file_type();
        let what = if t.is_dir() {
            "dir".to_owned()
        } else if t.is_symlink() {
            format!("link {}", fs::read_link(&path).expect("readlink").display())
        } else if t.is_char_device() {
            "whiteout".to_owned()
        } else {
            let bytes = fs::read(&path).expect("read a host file");
            format!(
                "file {} {}",
                bytes.len(),
                rewind::digest::sha256_hex(&bytes)
            )
        };
        out.insert(
            format!("/{rel}"),
            format!(
                "{what} mode={:o} owner={}:{} mtime={}.{}",
                m.mode() & 0o7777,
                m.uid(),
                m.gid(),
                m.mtime(),
                m.mtime_nsec()
            ),
        );
        if t.is_dir() {
            walk(root, &path, out);
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("spawn cp");
    assert!(
        st.success(),
        "cp -a {} {} failed",
        from.display(),
        to.display()
    );
}
