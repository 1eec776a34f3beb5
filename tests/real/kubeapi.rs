//! The fake Kubernetes API of `tests/fixtures/fakeapi.py` (python3 stdlib,
//! plain HTTP on a random 127.0.0.1 port) for the real kubectl, with a
//! kubeconfig that points at it.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{Server, free_port, need_tool, port_open, run_ok, wait_until};

/// A running fake API server; stopped (SIGTERM to its PID) when dropped.
pub struct KubeApi {
    /// Declared first: dropped (stopped) before its folder is removed.
    _server: Server,
    /// State, request log, kubeconfig.
    pub dir: tempfile::TempDir,
    /// A kubeconfig for this server.
    pub kubeconfig: PathBuf,
}

impl KubeApi {
    /// Starts the server with `state` (see fakeapi.py for its shape).
    pub fn start(state: &serde_json::Value) -> KubeApi {
        need_tool("kubectl", "kubectl (the Kubernetes command-line tool)");
        need_tool("python3", "python3");
        let dir = tempfile::Builder::new()
            .prefix("rewind-kubeapi.")
            .tempdir()
            .expect("temp dir");
        let state_file = dir.path().join("state.json");
        std::fs::write(&state_file, serde_json::to_vec(state).expect("state json"))
            .expect("write state");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fakeapi.py");
        let port = free_port();
        let mut cmd = Command::new("python3");
        cmd.arg(&script)
            .arg(port.to_string())
            .arg(dir.path().join("requests.log"))
            .arg(&state_file);
        let mut server = Server::spawn("fakeapi", cmd, &dir.path().join("server.log"), "TERM");
        wait_until("fake API", Duration::from_secs(20), &mut server, || {
            port_open(port)
        });
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: http://127.0.0.1:{port}\n\
                 contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n\
                 current-context: test\nusers:\n- name: test\n  user: {{}}\n"
            ),
        )
        .expect("write kubeconfig");
        KubeApi {
            _server: server,
            dir,
            kubeconfig,
        }
    }

    /// The requests the server received, one `METHOD path body` per line.
    pub fn requests(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("requests.log")).unwrap_or_default()
    }

    /// Runs the real kubectl against this server; returns its stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        run_ok(
            Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .arg("--cache-dir")
                .arg(self.dir.path().join("cache"))
                .args(args),
        )
    }
}
