//! Fixtures that run the real datastores and tools next to the generated
//! scripts: PostgreSQL, MariaDB, etcd, an S3 server, and a fake Kubernetes
//! API for the real kubectl.
//!
//! Every server listens on 127.0.0.1 (a random port) or a unix socket in its
//! own temporary folder, is waited for with a bounded loop, and is stopped by
//! its PID when its fixture is dropped (also when a test panics). A tool that
//! is missing fails the test with the command that installs it: these tests
//! never skip.
//!
//! The generated scripts themselves only run inside [`sandbox`], a private
//! mount namespace.

pub mod bundle;
pub mod etcd;
pub mod kubeapi;
pub mod mariadb;
pub mod postgres;
pub mod s3;
pub mod sandbox;
pub mod sqlite;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// Fails the test unless `tool` is on PATH, naming the package to install.
pub fn need_tool(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| is_executable(&d.join(tool))));
    assert!(
        found,
        "`{tool}` is not installed: these tests need it (install `{package}`, as .ci/run does)"
    );
}

/// Fails the test unless `path` is an executable file.
pub fn need_path(path: &Path, how: &str) {
    assert!(is_executable(path), "{} is missing: {how}", path.display());
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A free TCP port on 127.0.0.1 (the kernel picks it; a small race with other
/// programs is possible and would show as a server that fails to start).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// True once something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// Polls `ready` every 100 ms until it is true; fails after `limit`.
/// `server` is checked too, so a server that died is reported at once.
pub fn wait_until(
    what: &str,
    limit: Duration,
    server: &mut Server,
    mut ready: impl FnMut() -> bool,
) {
    let start = Instant::now();
    loop {
        if ready() {
            return;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!(
                "{what}: the server exited ({status}) before it was ready; its log:\n{}",
                server.log_tail()
            );
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not ready after {limit:?}; its log:\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A server process started by a fixture. Dropping it stops the process by
/// its PID: `stop_signal` first, then SIGKILL if it has not exited after
/// ten seconds.
pub struct Server {
    /// Shown in messages.
    pub name: String,
    /// The process.
    pub child: Child,
    /// Where its output goes.
    pub log: PathBuf,
    /// The signal that asks it to stop cleanly (`INT` for PostgreSQL's fast
    /// shutdown, `TERM` for the others).
    pub stop_signal: &'static str,
}

impl Server {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path, stop_signal: &'static str) -> Server {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open server log");
        let err = out.try_clone().expect("clone log handle");
        cmd.stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Server {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
            stop_signal,
        }
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = self.pid().to_string();
        let _ = Command::new("kill")
            .args([&format!("-{}", self.stop_signal), &pid])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "{} (pid {pid}) ignored SIG{}: killing it",
            self.name, self.stop_signal
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command to completion; fails the test (with its output) unless it
/// exits 0. Returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "command failed ({}): {cmd:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command to completion with no stdin (client commands of the
/// fixtures: each is short).
pub fn output(cmd: &mut Command) -> Output {
    cmd.stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// The sha256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    rewind::digest::sha256_hex(&bytes)
}

/// Overwrites one byte at `offset` with its complement.
pub fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).expect("read file to corrupt");
    assert!(
        offset < bytes.len(),
        "offset past the end of {}",
        path.display()
    );
    bytes[offset] = !bytes[offset];
    std::fs::write(path, bytes).expect("write corrupted file");
}

/// Cuts a file to its first `len` bytes.
pub fn truncate(path: &Path, len: u64) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open file to truncate");
    f.set_len(len).expect("truncate");
}

/// The size of a file in bytes.
pub fn size(path: &Path) -> usize {
    usize::try_from(std::fs::metadata(path).expect("stat").len())
        .expect("a file smaller than memory")
}

/// A temporary folder that other users (postgres, mysql) may enter: the
/// servers drop root and must reach their data and sockets.
pub fn shared_tempdir(prefix: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let d = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create temp dir");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    d
}

/// The uid and gid of a system user (`postgres`, `mysql`).
pub fn user_ids(user: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        run_ok(Command::new("id").args([flag, user]))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("id {flag} {user}: {e}"))
    };
    (id("-u"), id("-g"))
}

/// `chown -R user: path`.
pub fn chown(user: &str, path: &Path) {
    run_ok(
        Command::new("chown")
            .args(["-R", &format!("{user}:")])
            .arg(path),
    );
}
