//! Real SQLite databases shaped like RKE2's `server/db/state.db` (kine's
//! table, WAL mode), with the `-wal`/`-shm` side files a running server
//! leaves, and a backup taken with `.backup`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{need_tool, run_ok, sha256_file};

/// Runs SQL on `db` with the real sqlite3; returns its output.
pub fn sql(db: &Path, sql: &str) -> String {
    need_tool("sqlite3", "sqlite3");
    run_ok(Command::new("sqlite3").arg(db).arg(sql))
        .trim()
        .to_owned()
}

/// The files of a live database after a crash-like stop: `state.db` with
/// uncheckpointed changes in `state.db-wal` (and its `-shm`).
pub struct Live {
    /// The database file.
    pub db: PathBuf,
    /// Its write-ahead log.
    pub wal: PathBuf,
    /// Its shared-memory index.
    pub shm: PathBuf,
}

/// Creates `dir/state.db` in WAL mode with a kine table of `rows` rows, takes
/// `dir/backup.db` with `.backup`, then changes the live database (rows
/// deleted and updated, a new table) with checkpoint-on-close off, so that
/// the changes stay in `state.db-wal` as a running server leaves them.
pub fn live_with_backup(dir: &Path, rows: u32) -> (Live, PathBuf) {
    let db = dir.join("state.db");
    sql(
        &db,
        &format!(
            "PRAGMA journal_mode=WAL; \
             CREATE TABLE kine(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, created INTEGER, \
             deleted INTEGER, create_revision INTEGER, prev_revision INTEGER, lease INTEGER, \
             value BLOB, old_value BLOB); \
             CREATE INDEX kine_name_index ON kine(name); \
             WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {rows}) \
             INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value) \
             SELECT '/registry/configmaps/default/cm-' || x, 1, 0, x, x - 1, 0, randomblob(64) FROM g;"
        ),
    );
    let backup = dir.join("backup.db");
    run_ok(
        Command::new("sqlite3")
            .arg(&db)
            .arg(format!(".backup '{}'", backup.display())),
    );
    run_ok(
        Command::new("sqlite3")
            .arg(&db)
            .arg(".dbconfig no_ckpt_on_close on")
            .arg(
                "DELETE FROM kine WHERE id > 10; UPDATE kine SET value = x'00' WHERE id <= 5; \
                 CREATE TABLE junk(a);",
            ),
    );
    let live = Live {
        wal: dir.join("state.db-wal"),
        shm: dir.join("state.db-shm"),
        db,
    };
    assert!(
        live.wal.exists() && live.shm.exists(),
        "sqlite3 did not leave -wal/-shm beside the live database"
    );
    (live, backup)
}

/// Table names and every row of kine, hashed: equal fingerprints mean the
/// same data. Works on a copy in a scratch folder, so that opening the
/// database creates no side files where it lies; the side files in `with`
/// (e.g. a `-wal`) are copied along under the names SQLite looks for.
pub fn fingerprint(db: &Path, with: &[(&Path, &str)], scratch: &Path) -> String {
    let dir = tempfile::Builder::new()
        .prefix("fp.")
        .tempdir_in(scratch)
        .expect("scratch dir");
    let copy = dir.path().join("x.db");
    std::fs::copy(db, &copy).expect("copy database");
    for (file, side) in with {
        std::fs::copy(file, dir.path().join(format!("x.db{side}"))).expect("copy side file");
    }
    let tables = sql(
        &copy,
        "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name)",
    );
    let rows = sql(
        &copy,
        "SELECT count(*) || ':' || group_concat(id || name || hex(value), '|') FROM (SELECT * FROM kine ORDER BY id)",
    );
    let rows_file = dir.path().join("rows");
    std::fs::write(&rows_file, rows.as_bytes()).expect("write rows");
    let count = rows.split(':').next().unwrap_or_default().to_owned();
    format!(
        "tables={tables} rows={count} sha={}",
        sha256_file(&rows_file)
    )
}

/// `PRAGMA integrity_check` of a copy of `db`.
pub fn integrity(db: &Path, scratch: &Path) -> String {
    let dir = tempfile::Builder::new()
        .prefix("ic.")
        .tempdir_in(scratch)
        .expect("scratch dir");
    let copy = dir.path().join("x.db");
    std::fs::copy(db, &copy).expect("copy database");
    sql(&copy, "PRAGMA integrity_check;")
}
