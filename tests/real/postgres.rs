//! A throwaway PostgreSQL 15 server: `initdb` in a temporary folder, the
//! postmaster run directly (as the `postgres` user, since initdb refuses
//! root) on a random 127.0.0.1 port with its socket in the same folder, trust
//! authentication, and a `kine`-like table to dump and restore.
//!

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Server, chown, free_port, need_path, need_tool, run_ok, user_ids, wait_until};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running server; stopped (fast shutdown, SIGINT to the postmaster's PID)
/// when dropped.
pub struct Postgres {
    /// Declared first: dropped (stopped) before its folder is removed.
    _server: Server,
    /// The folder holding the data directory, the socket and the log.
    _dir: tempfile::TempDir,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
}

impl Postgres {
    /// Initialises and starts a server; returns once it accepts connections.
    pub fn start() -> Postgres {
        need_path(
            &Path::new(BIN).join("postgres"),
            "install postgresql-15 (as .ci/run does)",
        );
        need_tool("pg_dump", "postgresql-client-15");
        need_tool("pg_restore", "postgresql-client-15");
        need_tool("psql", "postgresql-client-15");
        let dir = super::shared_tempdir("rewind-pg.");
        chown("postgres", dir.path());
        let (uid, gid) = user_ids("postgres");
        let data = dir.path().join("data");
        run_ok(
            Command::new(Path::new(BIN).join("initdb"))
                .args([
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "-D",
                ])
                .arg(&data)
                .uid(uid)
                .gid(gid),
        );
        let port = free_port();
        let mut cmd = Command::new(Path::new(BIN).join("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=20"])
            .uid(uid)
            .gid(gid);
        let mut server = Server::spawn("postgres", cmd, &dir.path().join("server.log"), "INT");
        let p = port.to_string();
        wait_until("postgres", Duration::from_secs(30), &mut server, || {
            Command::new("pg_isready")
                .args(["-q", "-h", "127.0.0.1", "-p", &p])
                .status()
                .is_ok_and(|s| s.success())
        });
        Postgres {
            _server: server,
            _dir: dir,
            port,
        }
    }

    fn conn(&self, c: &mut Command) {
        self.conn_as(c, "postgres");
    }

    fn conn_as(&self, c: &mut Command, user: &str) {
        c.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", user]);
    }

    /// Runs SQL in `db` (psql, stop at the first error); returns the
    /// unaligned, tuples-only output.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        self.sql_as("postgres", db, sql)
    }

    /// [`Postgres::sql`] as another role (trust authentication: no password).
    pub fn sql_as(&self, user: &str, db: &str, sql: &str) -> String {
        let mut c = Command::new("psql");
        self.conn_as(&mut c, user);
        c.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            db,
            "-c",
            sql,
        ]);
        run_ok(&mut c).trim().to_owned()
    }

    /// `CREATE DATABASE db` with a `kine` table of `rows` rows, the shape
    /// kine gives it (id, name, value).
    pub fn create_kine_db(&self, db: &str, rows: u32) {
        self.sql("postgres", &format!("CREATE DATABASE {db}"));
        self.sql(
            db,
            &format!(
                "CREATE TABLE kine(id bigserial PRIMARY KEY, name text NOT NULL, created int, \
                 deleted int, prev_revision bigint, value bytea, old_value bytea); \
                 CREATE INDEX kine_name_index ON kine(name); \
                 INSERT INTO kine(name, created, deleted, prev_revision, value) \
                 SELECT '/registry/configmaps/default/cm-' || g, 1, 0, g - 1, \
                 convert_to(md5(g::text), 'UTF8') FROM generate_series(1, {rows}) g;"
            ),
        );
    }

    /// A fingerprint of everything in `db` that a restore must bring back:
    /// the list of tables and the md5 of every row of `kine`.
    pub fn fingerprint(&self, db: &str) -> String {
        let tables = self.sql(
            db,
            "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'",
        );
        let rows = self.sql(
            db,
            "SELECT count(*) || ':' || md5(string_agg(k::text, '|' ORDER BY id)) FROM kine k",
        );
        format!("tables={tables} kine={rows}")
    }

    /// `pg_dump -Fc db` into `file`.
    pub fn dump(&self, db: &str, file: &Path) -> PathBuf {
        let mut c = Command::new("pg_dump");
        self.conn(&mut c);
        c.args(["-Fc", "-d", db, "-f"]).arg(file);
        run_ok(&mut c);
        file.to_owned()
    }

    /// Drops and recreates the database of a `pg_dump -Fc` archive from it,
    /// as the superuser (`pg_restore --clean --if-exists --create`).
    pub fn restore(&self, archive: &Path) {
        let mut c = Command::new("pg_restore");
        self.conn(&mut c);
        c.args([
            "--clean",
            "--if-exists",
            "--create",
            "--exit-on-error",
            "-d",
            "postgres",
        ])
        .arg(archive);
        run_ok(&mut c);
    }
}
