//! A local S3 server (s3rver, from npm) on a random 127.0.0.1 port, with one
//! bucket, for the real `s3cmd`. s3rver checks credentials: only
//! [`ACCESS_KEY`]/[`SECRET_KEY`] are accepted.
//!
//! `.ci/run` installs s3rver under `$XDG_CACHE_HOME/rewind-test/s3rver`
//! (default `~/.cache/...`); `REWIND_TEST_S3RVER` may name another
//! executable.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Server, free_port, need_path, need_tool, port_open, run_ok, wait_until};

/// The access key s3rver accepts.
pub const ACCESS_KEY: &str = "S3RVER";
/// The secret key s3rver accepts.
pub const SECRET_KEY: &str = "S3RVER";

/// A running server; stopped (SIGTERM to its PID) when dropped.
pub struct S3 {
    /// Declared first: dropped (stopped) before its folder is removed.
    _server: Server,
    /// Objects, the s3cmd configuration, the log.
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:<port>`.
    pub endpoint: String,
    /// The bucket created at start.
    pub bucket: String,
}

fn s3rver_path() -> PathBuf {
    if let Some(p) = std::env::var_os("REWIND_TEST_S3RVER") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache"),
        PathBuf::from,
    );
    cache.join("rewind-test/s3rver/node_modules/.bin/s3rver")
}

impl S3 {
    /// Starts s3rver with `bucket`; returns once it accepts connections.
    pub fn start(bucket: &str) -> S3 {
        need_tool("s3cmd", "s3cmd");
        need_tool("node", "nodejs");
        let bin = s3rver_path();
        need_path(
            &bin,
            "install s3rver as .ci/run does (npm install s3rver@3 into that folder)",
        );
        let dir = tempfile::Builder::new()
            .prefix("rewind-s3.")
            .tempdir()
            .expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("mkdir data");
        let port = free_port();
        let mut cmd = Command::new(&bin);
        cmd.arg("-d").arg(&data).args([
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--configure-bucket",
            bucket,
        ]);
        let mut server = Server::spawn("s3rver", cmd, &dir.path().join("s3rver.log"), "TERM");
        wait_until("s3rver", Duration::from_secs(30), &mut server, || {
            port_open(port)
        });
        S3 {
            _server: server,
            dir,
            endpoint: format!("127.0.0.1:{port}"),
            bucket: bucket.to_owned(),
        }
    }

    /// Writes an s3cmd configuration for this server with the given keys
    /// (path-style, plain http) and returns its path.
    pub fn config(&self, access: &str, secret: &str) -> PathBuf {
        let path = self.dir.path().join(format!("s3cfg-{access}"));
        std::fs::write(
            &path,
            format!(
                "[default]\naccess_key = {access}\nsecret_key = {secret}\nhost_base = {e}\n\
                 host_bucket = {e}\nuse_https = False\nbucket_location = us-east-1\nsignature_v2 = False\n",
                e = self.endpoint
            ),
        )
        .expect("write s3cfg");
        path
    }

    /// Uploads `file` as `key` with the real s3cmd.
    pub fn put(&self, file: &Path, key: &str) {
        let cfg = self.config(ACCESS_KEY, SECRET_KEY);
        run_ok(
            Command::new("s3cmd")
                .arg("-c")
                .arg(&cfg)
                .args(["--no-progress", "put"])
                .arg(file)
                .arg(format!("s3://{}/{key}", self.bucket)),
        );
    }
}
