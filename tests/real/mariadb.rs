//! A throwaway MariaDB server: `mariadb-install-db` in a temporary folder,
//! `mariadbd --user=mysql` on a random 127.0.0.1 port (and a socket in the
//! same folder), `--no-defaults` so that /etc/mysql is never read, root
//! without a password.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Server, chown, free_port, need_tool, run_ok, wait_until};

/// A running server; stopped (SIGTERM to mariadbd's PID) when dropped.
pub struct Mariadb {
    /// Declared first: dropped (stopped) before its folder is removed.
    _server: Server,
    /// Data, socket, logs.
    _dir: tempfile::TempDir,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
}

impl Mariadb {
    /// Initialises and starts a server; returns once it answers `ping`.
    pub fn start() -> Mariadb {
        for tool in [
            "mariadbd",
            "mariadb-install-db",
            "mariadb",
            "mariadb-dump",
            "mariadb-admin",
        ] {
            need_tool(tool, "mariadb-server");
        }
        let dir = super::shared_tempdir("rewind-mariadb.");
        chown("mysql", dir.path());
        let data = dir.path().join("data");
        // A private tmpdir: parallel bootstraps in /tmp collide on the names
        // of their temporary tables.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("mkdir tmp");
        chown("mysql", &tmp);
        run_ok(
            Command::new("mariadb-install-db")
                .args(["--no-defaults", "--user=mysql", "--skip-test-db"])
                .args(["--auth-root-authentication-method=normal"])
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--tmpdir={}", tmp.display())),
        );
        let port = free_port();
        let mut cmd = Command::new("mariadbd");
        cmd.args(["--no-defaults", "--user=mysql"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .args(["--bind-address=127.0.0.1", &format!("--port={port}")])
            .args([
                "--innodb-buffer-pool-size=32M",
                "--innodb-flush-log-at-trx-commit=0",
            ])
            .arg("--max-connections=20");
        let mut server = Server::spawn("mariadbd", cmd, &dir.path().join("server.log"), "TERM");
        wait_until("mariadbd", Duration::from_secs(30), &mut server, || {
            Command::new("mariadb-admin")
                .args(client_args(port))
                .arg("ping")
                .output()
                .is_ok_and(|o| o.status.success())
        });
        Mariadb {
            _server: server,
            _dir: dir,
            port,
        }
    }

    /// Runs SQL (batch mode, no column names); returns its output.
    pub fn sql(&self, sql: &str) -> String {
        run_ok(
            Command::new("mariadb")
                .args(client_args(self.port))
                .args(["-N", "-B", "-e", sql]),
        )
        .trim()
        .to_owned()
    }

    /// `CREATE DATABASE db` with a `kine` table of `rows` rows, the shape
    /// kine gives it on MySQL.
    pub fn create_kine_db(&self, db: &str, rows: u32) {
        self.sql(&format!(
            "CREATE DATABASE {db}; \
             CREATE TABLE {db}.kine(id bigint unsigned AUTO_INCREMENT PRIMARY KEY, \
             name varchar(630) NOT NULL, created int, deleted int, prev_revision bigint unsigned, \
             value mediumblob, old_value mediumblob, KEY kine_name_index (name)) ENGINE=InnoDB; \
             INSERT INTO {db}.kine(name, created, deleted, prev_revision, value) \
             SELECT CONCAT('/registry/configmaps/default/cm-', seq), 1, 0, seq - 1, MD5(seq) \
             FROM {db}.seq_1_to_{rows};"
        ));
    }

    /// The list of tables and a checksum of every row of `kine`.
    pub fn fingerprint(&self, db: &str) -> String {
        let tables = self.sql(&format!(
            "SELECT GROUP_CONCAT(table_name ORDER BY table_name) FROM information_schema.tables WHERE table_schema = '{db}'"
        ));
        let rows = self.sql(&format!(
            "SELECT CONCAT(COUNT(*), ':', MD5(GROUP_CONCAT(CONCAT_WS(',', id, name, created, deleted, prev_revision, HEX(value)) ORDER BY id SEPARATOR '|'))) FROM {db}.kine"
        ));
        format!("tables={tables} kine={rows}")
    }

    /// `mariadb-dump --single-transaction db` into `file`: with
    /// `databases`, in the `--databases` form (`CREATE DATABASE` and `USE`
    /// lines), else of the one database as RKE2's documentation takes it.
    pub fn dump(&self, db: &str, file: &Path, databases: bool) -> PathBuf {
        let mut c = Command::new("mariadb-dump");
        c.args(client_args(self.port))
            .args(["--single-transaction", "--routines", "--triggers"]);
        if databases {
            c.arg("--databases");
        }
        let out = run_ok(c.arg(db));
        std::fs::write(file, out).expect("write dump");
        file.to_owned()
    }
}

impl Mariadb {
    /// Drops and creates `db`, then replays the SQL dump `file` into it.
    pub fn replay(&self, db: &str, file: &Path) {
        self.sql(&format!(
            "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}"
        ));
        let input = std::fs::File::open(file).expect("open dump");
        let out = Command::new("mariadb")
            .args(client_args(self.port))
            .arg(format!("--database={db}"))
            .stdin(input)
            .output()
            .expect("run mariadb");
        assert!(
            out.status.success(),
            "replaying {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `--no-defaults -h127.0.0.1 -P<port> -uroot`.
fn client_args(port: u16) -> Vec<String> {
    vec![
        "--no-defaults".into(),
        "-h127.0.0.1".into(),
        format!("-P{port}"),
        "-uroot".into(),
    ]
}
