//! A single-member etcd (the distribution's 3.4) on two random 127.0.0.1
//! ports, to write real snapshots with `etcdctl snapshot save`, and the
//! compressed form RKE2 writes with `--etcd-snapshot-compress` (a `.zip`
//! holding one entry named like the snapshot).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Server, free_port, need_tool, run_ok, wait_until};

/// A running member; stopped (SIGTERM to its PID) when dropped.
pub struct Etcd {
    /// Declared first: dropped (stopped) before its folder is removed.
    _server: Server,
    /// Data folder and log.
    _dir: tempfile::TempDir,
    endpoint: String,
}

impl Etcd {
    /// Starts a new member; returns once `endpoint health` succeeds.
    pub fn start() -> Etcd {
        need_tool("etcd", "etcd-server");
        need_tool("etcdctl", "etcd-client");
        let dir = tempfile::Builder::new()
            .prefix("rewind-etcd.")
            .tempdir()
            .expect("temp dir");
        let (client, peer) = (free_port(), free_port());
        let c = format!("http://127.0.0.1:{client}");
        let p = format!("http://127.0.0.1:{peer}");
        let mut cmd = Command::new("etcd");
        cmd.args(["--name", "n1", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &c, "--advertise-client-urls", &c])
            .args([
                "--listen-peer-urls",
                &p,
                "--initial-advertise-peer-urls",
                &p,
            ])
            .args(["--initial-cluster", &format!("n1={p}")])
            .args([
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "rewind-test",
            ])
            .args(["--logger", "zap", "--log-outputs", "stderr"]);
        let mut server = Server::spawn("etcd", cmd, &dir.path().join("etcd.log"), "TERM");
        let endpoint = format!("127.0.0.1:{client}");
        wait_until("etcd", Duration::from_secs(30), &mut server, || {
            etcdctl(&endpoint)
                .args(["endpoint", "health"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        Etcd {
            _server: server,
            _dir: dir,
            endpoint,
        }
    }

    /// Writes `count` keys under `/registry/configmaps/default/`.
    pub fn put_keys(&self, count: u32) {
        for i in 0..count {
            run_ok(etcdctl(&self.endpoint).args([
                "put",
                &format!("/registry/configmaps/default/cm-{i}"),
                &format!("value-{i}-{}", "x".repeat(200)),
            ]));
        }
    }

    /// `127.0.0.1:<port>` of its client URL (for a stand-in that runs
    /// `etcdctl` itself: tests/prepare.rs).
    #[allow(dead_code)] // not every test crate that loads this harness uses it
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `etcdctl snapshot save FILE`: a bbolt database followed by its
    /// 32-byte sha256.
    pub fn snapshot(&self, file: &Path) -> PathBuf {
        run_ok(etcdctl(&self.endpoint).args(["snapshot", "save"]).arg(file));
        file.to_owned()
    }
}

fn etcdctl(endpoint: &str) -> Command {
    let mut c = Command::new("etcdctl");
    c.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg("--dial-timeout=2s")
        .arg("--command-timeout=5s");
    c
}

/// Compresses `snapshot` the way RKE2 does: `<dir>/<name>.zip` holding one
/// entry `<name>` (no folder), written with `zip`.
pub fn zip_like_rke2(snapshot: &Path, dir: &Path, name: &str) -> PathBuf {
    need_tool("zip", "zip");
    let stage = dir.join(format!("{name}.stage"));
    std::fs::create_dir_all(&stage).expect("mkdir stage");
    std::fs::copy(snapshot, stage.join(name)).expect("copy snapshot to stage");
    let zip = dir.join(format!("{name}.zip"));
    run_ok(
        Command::new("zip")
            .current_dir(&stage)
            .args(["-q", "-X"])
            .arg(&zip)
            .arg(name),
    );
    std::fs::remove_dir_all(&stage).expect("remove stage");
    zip
}
