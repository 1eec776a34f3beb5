//! The datastore steps of generated bundles, run against the real things
//! (issue 5): PostgreSQL 15, MariaDB, SQLite, snapshots written by a real
//! etcd, the real s3cmd against a local S3 server, and the real kubectl
//! against a fake API server.
//!
//! Each test writes a small plan whose paths, ports and endpoints point at
//! its fixtures, compiles it with the library, and runs the relevant scripts
//! of the bundle inside a private mount namespace ([`real::sandbox`]). What is
//! proved: a restore step restores the real data exactly (changed rows come
//! back, objects created after the backup are gone, what was replaced is
//! kept aside), and every integrity check refuses real corruption before
//! anything is destroyed.

mod real;

use std::path::Path;

use real::bundle::{Compiled, compile};
use real::sandbox::{Host, Run};
use real::{flip_byte, sha256_file, size, truncate};

const CURRENT: &str = "v1.29.4+rke2r1";
const TARGET: &str = "v1.28.9+rke2r1";

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("rewind-datastores.")
        .tempdir()
        .expect("temp dir")
}

/// A TOML basic string (the test paths are plain ASCII).
fn toml_str(s: impl AsRef<str>) -> String {
    format!("{:?}", s.as_ref())
}

fn toml_path(p: &Path) -> String {
    toml_str(p.to_str().expect("utf-8 path"))
}

fn sha_line(sha: Option<&str>) -> String {
    sha.map(|s| format!("sha256 = \"{s}\"\n"))
        .unwrap_or_default()
}

/// `rewind-<first 8 of the plan sha256>`: the suffix of what is moved aside.
fn suffix(b: &Compiled) -> String {
    let sha = b.plan["plan_sha256"].as_str().expect("plan_sha256");
    format!("rewind-{}", &sha[..8])
}

/// An RKE2 node with stand-ins for what cannot exist here: `rke2` (reports
/// `version`; `server --cluster-reset` prints rke2's success line), the
/// killall script and `systemctl` (nothing active). The real config dir has
/// a config.yaml without a `server:` entry.
fn rke2_node(base: &Path, name: &str, version: &str) -> Host {
    let h = Host::new(base, name);
    h.stub(
        "rke2",
        r#"case "${1:-}" in
--version) printf 'rke2 version %s (0a1b2c3d)\ngo version go1.22.2 X:boringcrypto\n' "$(cat /usr/local/lib/rke2-stub-version)" ;;
server)
	if [ -n "${AWS_SECRET_ACCESS_KEY:-}" ]; then echo 'rke2 env: AWS_SECRET_ACCESS_KEY is set' >>"$STUB_JOURNAL"; fi
	echo 'level=info msg="Managed etcd cluster membership has been reset, restart without --cluster-reset flag now."' ;;
esac"#,
    );
    h.stub("rke2-killall.sh", "exit 0");
    h.stub("systemctl", r#"case "${1:-}" in is-active) exit 3 ;; esac"#);
    h.put(
        "/etc/rancher/rke2/config.yaml",
        "write-kubeconfig-mode: \"0600\"\n",
    );
    set_rke2_version(&h, version);
    h
}

fn set_rke2_version(h: &Host, version: &str) {
    h.put("/usr/local/lib/rke2-stub-version", format!("{version}\n"));
}

/// Checks that a run failed in its preflight (exit 1, or the exit code of
/// the check command that failed), before any action.
fn assert_refused_in_preflight(run: &Run, what: &str) {
    assert!(
        run.code != 0 && run.code != 3 && run.code != 4,
        "{what}: expected a failed check, got exit {}:\n{}",
        run.code,
        run.all()
    );
    assert!(
        run.stderr
            .contains("changed: nothing (the step stopped before its actions)"),
        "{what}: the failure must be reported before any action:\n{}",
        run.all()
    );
}

/// Where the restore-db step keeps the current external database before it
/// drops it: beside the dump, `<db>-before-rollback.<suffix>.<ext>`.
fn copy_path(b: &Compiled, dump: &Path, db: &str, ext: &str) -> std::path::PathBuf {
    dump.parent()
        .expect("dump folder")
        .join(format!("{db}-before-rollback.{}.{ext}", suffix(b)))
}

/// The permission bits of a file.
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Nothing named like the copy (nor its temporary name) in `dir`.
fn assert_no_copy(dir: &Path, what: &str) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("before-rollback"))
        .collect();
    assert!(left.is_empty(), "{what}: a copy was written: {left:?}");
}

// ---- PostgreSQL -----------------------------------------------------------

mod postgres {
    use super::*;
    use real::postgres::Postgres;

    const DB: &str = "rke2";

    fn plan(port: u16, dump: &Path, sha: Option<&str>) -> String {
        format!(
            "[cluster]\nname = \"pg-test\"\ncurrent-version = \"{CURRENT}\"\ntarget-version = \"{TARGET}\"\n\n\
             [datastore]\nkind = \"postgres\"\nhost = \"127.0.0.1\"\nport = {port}\ndatabase = \"{DB}\"\nuser = \"postgres\"\n\n\
             [snapshot]\npath = {}\ntaken-on = \"{TARGET}\"\n{}\n\
             [drain]\nenabled = false\n\n[[nodes]]\nname = \"server-1\"\nrole = \"server\"\n",
            toml_path(dump),
            sha_line(sha)
        )
    }

    /// A database with 1000 kine rows, its dump, then changes made after the
    /// dump (rows deleted and updated, a new table). Returns the dump and
    /// the fingerprints before and after the changes.
    fn dumped_then_changed(pg: &Postgres, dir: &Path) -> (std::path::PathBuf, String, String) {
        pg.create_kine_db(DB, 1000);
        let dumped = pg.fingerprint(DB);
        let dump = pg.dump(DB, &dir.join("rke2.dump"));
        pg.sql(
            DB,
            "DELETE FROM kine WHERE id > 10; UPDATE kine SET value = 'changed'::bytea WHERE id <= 5; \
             CREATE TABLE junk(a int); INSERT INTO junk VALUES (1);",
        );
        let changed = pg.fingerprint(DB);
        assert_ne!(
            dumped, changed,
            "the changes after the dump must be visible"
        );
        assert!(changed.contains("junk") && changed.contains("kine=10:"));
        (dump, dumped, changed)
    }

    #[test]
    fn restore_step_brings_back_exactly_the_dump() {
        let t = scratch();
        let pg = Postgres::start();
        let (dump, dumped, _) = dumped_then_changed(&pg, t.path());
        let b = compile(&plan(pg.port, &dump, Some(&sha256_file(&dump))), t.path());
        let ws = Host::new(&t.path().join("hosts"), "workstation");

        ws.script(&b.script("preflight", "workstation"), &[])
            .assert_ok("workstation preflight");
        let run = ws.script(&b.script("restore-db", "workstation"), &[]);
        run.assert_ok("restore-db");
        assert!(
            run.stdout.contains("database restored; kine has 1000 rows"),
            "{}",
            run.all()
        );
        assert_eq!(
            pg.fingerprint(DB),
            dumped,
            "the database must be exactly the dump again: changed rows back, table junk gone"
        );
        let journal = std::fs::read_to_string(ws.inside("/var/log/rewind/pg-test.log"))
            .expect("journal in the sandbox");
        assert!(
            journal.contains("-restore-db host=workstation result=ok exit=0"),
            "{journal}"
        );
    }

    #[test]
    fn damaged_archive_is_refused_before_the_database_is_touched() {
        let t = scratch();
        let pg = Postgres::start();
        let (dump, _, changed) = dumped_then_changed(&pg, t.path());
        let len = size(&dump);
        type Damage = Box<dyn Fn(&Path)>;
        let damages: Vec<(&str, Damage)> = vec![
            (
                "cut in half",
                Box::new(move |p| truncate(p, (len / 2) as u64)),
            ),
            (
                "last 20 bytes cut",
                Box::new(move |p| truncate(p, (len - 20) as u64)),
            ),
            (
                "one byte flipped in the table data",
                Box::new(move |p| flip_byte(p, len * 3 / 4)),
            ),
            (
                "not an archive",
                Box::new(|p| std::fs::write(p, "-- just some text\n").expect("write")),
            ),
        ];
        for (i, (what, damage)) in damages.iter().enumerate() {
            let dir = t.path().join(format!("case-{i}"));
            std::fs::create_dir_all(&dir).expect("mkdir");
            let bad = dir.join("rke2.dump");
            std::fs::copy(&dump, &bad).expect("copy dump");
            damage(&bad);
            // No sha256 in the plan: the archive check itself must see it.
            let b = compile(&plan(pg.port, &bad, None), &dir);
            let ws = Host::new(&dir.join("hosts"), "workstation");
            let pre = ws.script(&b.script("preflight", "workstation"), &[]);
            assert_refused_in_preflight(&pre, &format!("preflight, archive {what}"));
            let restore = ws.script(&b.script("restore-db", "workstation"), &[]);
            assert_refused_in_preflight(&restore, &format!("restore-db, archive {what}"));
            assert_eq!(
                pg.fingerprint(DB),
                changed,
                "archive {what}: the database must be untouched"
            );
        }
    }

    fn plan_as(port: u16, dump: &Path, user: &str) -> String {
        plan(port, dump, None).replace("user = \"postgres\"", &format!("user = \"{user}\""))
    }

    fn pg_archive_ok(file: &Path) {
        for args in [&["-l"][..], &["-f", "/dev/null"][..]] {
            real::run_ok(
                std::process::Command::new("pg_restore")
                    .args(args)
                    .arg(file),
            );
        }
    }

    /// Issue #10 item 7: before the database is dropped, a copy of it (the
    /// rows written since the backup) is kept beside the dump, complete and
    /// private; a dry run writes none; a re-run keeps the first copy.
    #[test]
    fn restore_keeps_a_copy_of_the_database_it_drops() {
        let t = scratch();
        let pg = Postgres::start();
        let (dump, dumped, changed) = dumped_then_changed(&pg, t.path());
        let b = compile(&plan(pg.port, &dump, Some(&sha256_file(&dump))), t.path());
        let copy = copy_path(&b, &dump, DB, "dump");
        let ws = Host::new(&t.path().join("hosts"), "workstation");
        let script = b.script("restore-db", "workstation");

        let dry = ws.script(&script, &[("REWIND_DRY_RUN", "1")]);
        dry.assert_ok("restore-db, dry run");
        assert!(
            dry.stdout.contains("would run: pg_dump"),
            "the dry run says it would dump the database:\n{}",
            dry.all()
        );
        assert_no_copy(t.path(), "dry run");
        assert_eq!(pg.fingerprint(DB), changed, "a dry run changes nothing");

        let run = ws.script(&script, &[]);
        run.assert_ok("restore-db");
        assert!(
            run.stdout.contains(&format!(
                "database {DB} as it was before the rollback is kept in {}",
                copy.display()
            )),
            "{}",
            run.all()
        );
        assert_eq!(pg.fingerprint(DB), dumped, "the restore itself is exact");
        assert_eq!(mode(&copy), 0o600, "the copy holds the cluster's data");
        pg_archive_ok(&copy);
        assert!(
            !copy.with_extension("dump.partial").exists(),
            "the temporary name is gone"
        );
        let first = sha256_file(&copy);

        // A second attempt (after a failure, say) must not replace the copy
        // of the database as it was before the first one by the restored one.
        pg.sql(
            DB,
            "INSERT INTO kine(name) VALUES ('/registry/written-between-runs')",
        );
        let again = ws.script(&script, &[("REWIND_FORCE", "1")]);
        again.assert_ok("restore-db again");
        assert!(
            again.stdout.contains("made by an earlier run")
                && again.stdout.contains("not overwritten"),
            "{}",
            again.all()
        );
        assert_eq!(
            sha256_file(&copy),
            first,
            "the first copy is kept as it was"
        );
        assert_eq!(pg.fingerprint(DB), dumped);

        // The copy brings back the post-upgrade database: the rows written
        // after the backup, and table junk.
        pg.restore(&copy);
        assert_eq!(
            pg.fingerprint(DB),
            changed,
            "the copy is the database as it was"
        );

        // No database (a DBA dropped it): nothing to keep, the restore goes on.
        let dir = t.path().join("no-database");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let dump2 = dir.join("rke2.dump");
        std::fs::copy(&dump, &dump2).expect("copy dump");
        pg.sql("postgres", &format!("DROP DATABASE {DB}"));
        let b = compile(&plan(pg.port, &dump2, None), &dir);
        let run = Host::new(&dir.join("hosts"), "workstation")
            .script(&b.script("restore-db", "workstation"), &[]);
        run.assert_ok("restore-db without a database");
        assert!(
            run.stdout
                .contains("there is no current database to keep a copy of"),
            "{}",
            run.all()
        );
        assert_no_copy(&dir, "no database");
        assert_eq!(pg.fingerprint(DB), dumped);
    }

    /// A role that is not a superuser but has CREATEDB and owns the database
    /// restores it end to end, even when the dump holds a GRANT made by
    /// another role (which only a superuser could replay); a role without
    /// CREATEDB or without the ownership is refused in preflight, the
    /// missing right named, before anything is dropped or copied.
    #[test]
    fn an_owner_with_createdb_restores_and_others_are_refused_in_preflight() {
        let t = scratch();
        let pg = Postgres::start();
        pg.sql(
            "postgres",
            "CREATE ROLE kineowner LOGIN CREATEDB; CREATE ROLE monitor LOGIN; CREATE ROLE auditor; \
             CREATE ROLE weak LOGIN; CREATE ROLE creator LOGIN CREATEDB",
        );
        pg.sql("postgres", &format!("CREATE DATABASE {DB} OWNER kineowner"));
        pg.sql_as(
            "kineowner",
            DB,
            "CREATE TABLE kine(id bigserial PRIMARY KEY, name text NOT NULL, value bytea); \
             INSERT INTO kine(name, value) SELECT '/registry/k' || g, 'v' FROM generate_series(1, 200) g; \
             GRANT SELECT ON kine TO monitor WITH GRANT OPTION;",
        );
        pg.sql_as("monitor", DB, "GRANT SELECT ON kine TO auditor");
        let dumped = pg.fingerprint(DB);
        let dump = pg.dump(DB, &t.path().join("rke2.dump"));
        pg.sql_as(
            "kineowner",
            DB,
            "DELETE FROM kine WHERE id > 20; CREATE TABLE junk(a int);",
        );
        let changed = pg.fingerprint(DB);

        for (user, missing, fix) in [
            (
                "weak",
                "the CREATEDB attribute",
                "ALTER ROLE \"weak\" CREATEDB;",
            ),
            (
                "creator",
                "the ownership of database rke2 (owned by kineowner)",
                "ALTER DATABASE \"rke2\" OWNER TO \"creator\";",
            ),
        ] {
            let dir = t.path().join(user);
            std::fs::create_dir_all(&dir).expect("mkdir");
            let b = compile(&plan_as(pg.port, &dump, user), &dir);
            let ws = Host::new(&dir.join("hosts"), "workstation");
            let run = ws.script(&b.script("restore-db", "workstation"), &[]);
            assert_refused_in_preflight(&run, &format!("restore-db as {user}"));
            assert!(
                run.stderr
                    .contains(&format!("PostgreSQL user {user} lacks {missing}"))
                    && run.stderr.contains(fix),
                "{user}: the missing right and its fix are named:\n{}",
                run.all()
            );
            assert_eq!(pg.fingerprint(DB), changed, "{user}: nothing was dropped");
            assert_no_copy(t.path(), user);
        }

        let b = compile(&plan_as(pg.port, &dump, "kineowner"), t.path());
        let ws = Host::new(&t.path().join("hosts"), "workstation");
        let run = ws.script(&b.script("restore-db", "workstation"), &[]);
        run.assert_ok("restore-db as the owner");
        assert!(
            run.stdout.contains("has CREATEDB and owns database rke2")
                && run.stdout.contains("--no-owner --no-acl")
                && run.stderr.contains("GRANTs made by other roles"),
            "{}",
            run.all()
        );
        assert_eq!(pg.fingerprint(DB), dumped, "restored exactly");
        assert_eq!(
            pg.sql(
                DB,
                "SELECT tableowner FROM pg_tables WHERE tablename = 'kine'"
            ),
            "kineowner"
        );
        let copy = copy_path(&b, &dump, DB, "dump");
        pg_archive_ok(&copy);
        pg.restore(&copy);
        assert_eq!(
            pg.fingerprint(DB),
            changed,
            "the copy is the database as it was"
        );
    }
}

// ---- MariaDB / MySQL ------------------------------------------------------

mod mysql {
    use super::*;
    use real::mariadb::Mariadb;

    const DB: &str = "rke2";

    fn plan(port: u16, dump: &Path, sha: Option<&str>) -> String {
        format!(
            "[cluster]\nname = \"my-test\"\ncurrent-version = \"{CURRENT}\"\ntarget-version = \"{TARGET}\"\n\n\
             [datastore]\nkind = \"mysql\"\nhost = \"127.0.0.1\"\nport = {port}\ndatabase = \"{DB}\"\nuser = \"root\"\n\n\
             [snapshot]\npath = {}\ntaken-on = \"{TARGET}\"\n{}\n\
             [drain]\nenabled = false\n\n[[nodes]]\nname = \"server-1\"\nrole = \"server\"\n",
            toml_path(dump),
            sha_line(sha)
        )
    }

    fn dumped_then_changed(my: &Mariadb, dir: &Path) -> (std::path::PathBuf, String, String) {
        my.create_kine_db(DB, 1000);
        let dumped = my.fingerprint(DB);
        let dump = my.dump(DB, &dir.join("rke2.sql"), false);
        change(my);
        let changed = my.fingerprint(DB);
        assert_ne!(
            dumped, changed,
            "the changes after the dump must be visible"
        );
        assert!(changed.contains("junk") && changed.contains("kine=10:"));
        (dump, dumped, changed)
    }

    fn change(my: &Mariadb) {
        my.sql(&format!(
            "DELETE FROM {DB}.kine WHERE id > 10; UPDATE {DB}.kine SET value = 'changed' WHERE id <= 5; \
             CREATE TABLE {DB}.junk(a int); INSERT INTO {DB}.junk VALUES (1);"
        ));
    }

    #[test]
    fn restore_step_brings_back_exactly_the_dump() {
        let t = scratch();
        let my = Mariadb::start();
        let (dump, dumped, _) = dumped_then_changed(&my, t.path());
        let b = compile(&plan(my.port, &dump, Some(&sha256_file(&dump))), t.path());
        let ws = Host::new(&t.path().join("hosts"), "workstation");

        ws.script(&b.script("preflight", "workstation"), &[])
            .assert_ok("workstation preflight");
        let run = ws.script(&b.script("restore-db", "workstation"), &[]);
        run.assert_ok("restore-db");
        assert!(
            run.stdout.contains("database restored; kine has 1000 rows"),
            "{}",
            run.all()
        );
        assert_eq!(
            my.fingerprint(DB),
            dumped,
            "the database must be exactly the dump again: changed rows back, table junk gone"
        );

        // A dump taken with --databases (CREATE DATABASE, USE) restores the same.
        let dir = t.path().join("databases-form");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let dump = my.dump(DB, &dir.join("rke2.sql"), true);
        change(&my);
        assert_ne!(my.fingerprint(DB), dumped);
        let b = compile(&plan(my.port, &dump, Some(&sha256_file(&dump))), &dir);
        let ws = Host::new(&dir.join("hosts"), "workstation");
        ws.script(&b.script("restore-db", "workstation"), &[])
            .assert_ok("restore-db of a --databases dump");
        assert_eq!(my.fingerprint(DB), dumped, "--databases dump");
    }

    #[test]
    fn damaged_dump_is_refused_before_the_database_is_touched() {
        let t = scratch();
        let my = Mariadb::start();
        let (dump, _, changed) = dumped_then_changed(&my, t.path());
        let len = size(&dump);
        let good_sha = sha256_file(&dump);
        type Damage = Box<dyn Fn(&Path)>;
        // (what, damage, plan carries the good dump's sha256)
        let damages: Vec<(&str, Damage, bool)> = vec![
            (
                "cut in half",
                Box::new(move |p| truncate(p, (len / 2) as u64)),
                false,
            ),
            (
                "last line cut",
                Box::new(move |p| truncate(p, (len - 30) as u64)),
                false,
            ),
            (
                "not a dump",
                Box::new(|p| std::fs::write(p, "SELECT 1;\n").expect("write")),
                false,
            ),
            // A flipped byte inside a text dump still looks like a dump:
            // only the plan's sha256 can tell.
            (
                "one byte flipped, sha256 in the plan",
                Box::new(move |p| flip_byte(p, len / 2)),
                true,
            ),
        ];
        for (i, (what, damage, with_sha)) in damages.iter().enumerate() {
            let dir = t.path().join(format!("case-{i}"));
            std::fs::create_dir_all(&dir).expect("mkdir");
            let bad = dir.join("rke2.sql");
            std::fs::copy(&dump, &bad).expect("copy dump");
            damage(&bad);
            let sha = with_sha.then_some(good_sha.as_str());
            let b = compile(&plan(my.port, &bad, sha), &dir);
            let ws = Host::new(&dir.join("hosts"), "workstation");
            let pre = ws.script(&b.script("preflight", "workstation"), &[]);
            assert_refused_in_preflight(&pre, &format!("preflight, dump {what}"));
            let restore = ws.script(&b.script("restore-db", "workstation"), &[]);
            assert_refused_in_preflight(&restore, &format!("restore-db, dump {what}"));
            if *with_sha {
                assert!(
                    restore.stderr.contains("sha256 mismatch"),
                    "{}",
                    restore.all()
                );
            }
            assert_eq!(
                my.fingerprint(DB),
                changed,
                "dump {what}: the database must be untouched"
            );
        }
    }

    fn dump_complete(file: &Path) {
        let text = std::fs::read_to_string(file).expect("read the copy");
        let head: Vec<&str> = text.lines().take(5).collect();
        assert!(
            head.iter()
                .any(|l| l.starts_with("-- MariaDB dump") || l.starts_with("-- MySQL dump")),
            "{}: no dump header",
            file.display()
        );
        let tail: Vec<&str> = text.lines().rev().take(3).collect();
        assert!(
            tail.iter().any(|l| l.starts_with("-- Dump completed")),
            "{}: no `-- Dump completed` trailer",
            file.display()
        );
    }

    /// Issue #10 item 7, MySQL: the copy of the database the restore drops
    /// is complete, private, brings back the rows written after the backup,
    /// is not written by a dry run, and is kept by a re-run.
    #[test]
    fn restore_keeps_a_copy_of_the_database_it_drops() {
        let t = scratch();
        let my = Mariadb::start();
        let (dump, dumped, changed) = dumped_then_changed(&my, t.path());
        let b = compile(&plan(my.port, &dump, Some(&sha256_file(&dump))), t.path());
        let copy = copy_path(&b, &dump, DB, "sql");
        let ws = Host::new(&t.path().join("hosts"), "workstation");
        let script = b.script("restore-db", "workstation");

        let dry = ws.script(&script, &[("REWIND_DRY_RUN", "1")]);
        dry.assert_ok("restore-db, dry run");
        assert!(
            dry.stdout.contains("would run: mysqldump")
                || dry.stdout.contains("would run: mariadb-dump"),
            "{}",
            dry.all()
        );
        assert_no_copy(t.path(), "dry run");
        assert_eq!(my.fingerprint(DB), changed, "a dry run changes nothing");

        let run = ws.script(&script, &[]);
        run.assert_ok("restore-db");
        assert!(
            run.stdout.contains(&format!(
                "database {DB} as it was before the rollback is kept in {}",
                copy.display()
            )),
            "{}",
            run.all()
        );
        assert_eq!(my.fingerprint(DB), dumped, "the restore itself is exact");
        assert_eq!(mode(&copy), 0o600, "the copy holds the cluster's data");
        dump_complete(&copy);
        let first = sha256_file(&copy);

        my.sql(&format!(
            "INSERT INTO {DB}.kine(name) VALUES ('/registry/written-between-runs')"
        ));
        let again = ws.script(&script, &[("REWIND_FORCE", "1")]);
        again.assert_ok("restore-db again");
        assert!(
            again.stdout.contains("made by an earlier run")
                && again.stdout.contains("not overwritten"),
            "{}",
            again.all()
        );
        assert_eq!(
            sha256_file(&copy),
            first,
            "the first copy is kept as it was"
        );
        assert_eq!(my.fingerprint(DB), dumped);

        my.replay(DB, &copy);
        assert_eq!(
            my.fingerprint(DB),
            changed,
            "the copy is the database as it was"
        );

        // No database (a DBA dropped it): nothing to keep, the restore goes on.
        let dir = t.path().join("no-database");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let dump2 = dir.join("rke2.sql");
        std::fs::copy(&dump, &dump2).expect("copy dump");
        my.sql(&format!("DROP DATABASE {DB}"));
        let b = compile(&plan(my.port, &dump2, None), &dir);
        let run = Host::new(&dir.join("hosts"), "workstation")
            .script(&b.script("restore-db", "workstation"), &[]);
        run.assert_ok("restore-db without a database");
        assert!(
            run.stdout
                .contains("there is no current database to keep a copy of"),
            "{}",
            run.all()
        );
        assert_no_copy(&dir, "no database");
        assert_eq!(my.fingerprint(DB), dumped);
    }

    /// A user whose grants lack DROP on the database is refused in
    /// preflight, the missing privilege and its GRANT named, before
    /// anything is copied or dropped; with DROP granted the same script
    /// restores.
    #[test]
    fn a_user_without_drop_is_refused_in_preflight() {
        let t = scratch();
        let my = Mariadb::start();
        let (dump, dumped, changed) = dumped_then_changed(&my, t.path());
        for host in ["localhost", "127.0.0.1"] {
            my.sql(&format!(
                "CREATE USER 'nodrop'@'{host}'; \
                 GRANT SELECT, INSERT, CREATE, ALTER, LOCK TABLES ON `{DB}`.* TO 'nodrop'@'{host}'"
            ));
        }
        let b = compile(
            &plan(my.port, &dump, None).replace("user = \"root\"", "user = \"nodrop\""),
            t.path(),
        );
        let ws = Host::new(&t.path().join("hosts"), "workstation");
        let script = b.script("restore-db", "workstation");
        let run = ws.script(&script, &[]);
        assert_refused_in_preflight(&run, "restore-db without DROP");
        assert!(
            run.stderr.contains(&format!("lacks DROP on database {DB}"))
                && run
                    .stderr
                    .contains(&format!("GRANT DROP ON `{DB}`.* TO 'nodrop'@")),
            "{}",
            run.all()
        );
        assert_eq!(my.fingerprint(DB), changed, "nothing was dropped");
        assert_no_copy(t.path(), "refused");

        for host in ["localhost", "127.0.0.1"] {
            my.sql(&format!("GRANT DROP ON `{DB}`.* TO 'nodrop'@'{host}'"));
        }
        ws.script(&script, &[])
            .assert_ok("restore-db with DROP granted");
        assert_eq!(my.fingerprint(DB), dumped);
        dump_complete(&copy_path(&b, &dump, DB, "sql"));
    }

    /// `rewind check` refuses, with the place in the plan, a database name
    /// that the restore would only refuse after every server is stopped.
    #[test]
    fn check_refuses_a_database_name_with_a_backtick() {
        use rewind::source::SourceFile;
        let text = plan(3306, Path::new("/srv/backups/rke2.sql"), None)
            .replace("database = \"rke2\"", "database = \"rke`2\"");
        let line = text
            .lines()
            .position(|l| l.starts_with("database = "))
            .expect("database line")
            + 1;
        let source = SourceFile::new("test-plan.toml", text);
        let checked = rewind::validate::check(&source, None);
        assert!(checked.model.is_none(), "the plan must be rejected");
        let shown = rewind::diagnostic::render_all(&checked.diagnostics, &source);
        assert!(
            shown.contains(&format!("test-plan.toml:{line}:12"))
                && shown.contains("backtick")
                && shown.contains("datastore.database"),
            "{shown}"
        );
    }
}

// ---- SQLite -----------------------------------------------------------------

mod sqlite {
    use super::*;
    use real::sqlite::{fingerprint, integrity, live_with_backup};

    const DB: &str = "/var/lib/rancher/rke2/server/db/state.db";
    const TOKEN: &str = "/var/lib/rancher/rke2/server/token";
    const SAVED_TOKEN: &str = "K10saved0token::server:0123456789abcdef\n";
    // RKE2 runs SQLite from v1.29.6 on (in that minor).
    const CURRENT: &str = "v1.30.4+rke2r1";
    const TARGET: &str = "v1.29.6+rke2r1";

    fn plan(backup: &Path, sha: Option<&str>, token: &Path) -> String {
        format!(
            "[cluster]\nname = \"lite-test\"\ncurrent-version = \"{CURRENT}\"\ntarget-version = \"{TARGET}\"\n\n\
             [datastore]\nkind = \"sqlite\"\n\n\
             [snapshot]\npath = {}\ntaken-on = \"{TARGET}\"\n{}\n\
             [token]\nfile = {}\nsha256 = \"{}\"\n\n\
             [drain]\nenabled = false\n\n[[nodes]]\nname = \"edge-1\"\nrole = \"server\"\n",
            toml_path(backup),
            sha_line(sha),
            toml_path(token),
            sha256_file(token)
        )
    }

    /// A node whose state.db, -wal and -shm are copies of `live`.
    fn node_with_live_db(base: &Path, live: &real::sqlite::Live) -> Host {
        let h = rke2_node(base, "edge-1", TARGET);
        h.copy(&live.db, DB);
        h.copy(&live.wal, &format!("{DB}-wal"));
        h.copy(&live.shm, &format!("{DB}-shm"));
        h.put(TOKEN, "K10newer0token::server:fedcba9876543210\n");
        h
    }

    #[test]
    fn restore_step_swaps_state_db_and_keeps_the_replaced_one_aside() {
        let t = scratch();
        let (live, backup) = live_with_backup(t.path(), 1000);
        let fp_backup = fingerprint(&backup, &[], t.path());
        let fp_live = fingerprint(&live.db, &[(&live.wal, "-wal")], t.path());
        assert_ne!(fp_backup, fp_live);
        // Why the side files must go: SQLite replays a stale -wal into the
        // restored file, silently bringing the newer state back.
        assert_eq!(
            fingerprint(&backup, &[(&live.wal, "-wal")], t.path()),
            fp_live
        );

        let token = t.path().join("token");
        std::fs::write(&token, SAVED_TOKEN).expect("write token");
        let b = compile(
            &plan(&backup, Some(&sha256_file(&backup)), &token),
            t.path(),
        );
        let sfx = suffix(&b);
        let node = node_with_live_db(&t.path().join("hosts"), &live);

        let run = node.script(&b.script("restore", "edge-1"), &[]);
        run.assert_ok("restore");
        assert!(run.stdout.contains("integrity_check: ok"), "{}", run.all());

        let db = node.inside(DB);
        for side in ["-wal", "-shm", "-journal"] {
            assert!(
                !node.inside(&format!("{DB}{side}")).exists(),
                "no {side} may be left beside the restored database"
            );
        }
        assert_eq!(integrity(&db, t.path()), "ok");
        assert_eq!(
            fingerprint(&db, &[], t.path()),
            fp_backup,
            "state.db must hold exactly the backup"
        );
        // The replaced database is kept aside, complete with its -wal.
        let aside = node.inside(&format!("{DB}.{sfx}"));
        let aside_wal = node.inside(&format!("{DB}-wal.{sfx}"));
        assert_eq!(sha256_file(&aside), sha256_file(&live.db));
        assert_eq!(sha256_file(&aside_wal), sha256_file(&live.wal));
        assert_eq!(
            sha256_file(&node.inside(&format!("{DB}-shm.{sfx}"))),
            sha256_file(&live.shm)
        );
        assert_eq!(
            fingerprint(&aside, &[(&aside_wal, "-wal")], t.path()),
            fp_live
        );
        assert_eq!(
            std::fs::read_to_string(node.inside(TOKEN)).expect("token"),
            SAVED_TOKEN,
            "the saved token is put back"
        );
    }

    #[test]
    fn damaged_backup_is_refused_before_the_live_file_is_moved() {
        let t = scratch();
        let (live, backup) = live_with_backup(t.path(), 1000);
        let token = t.path().join("token");
        std::fs::write(&token, SAVED_TOKEN).expect("write token");
        let len = size(&backup);
        type Damage = Box<dyn Fn(&Path)>;
        let damages: Vec<(&str, Damage)> = vec![
            (
                "8 KiB overwritten in the middle",
                Box::new(move |p| {
                    let mut bytes = std::fs::read(p).expect("read");
                    let mut x: u32 = 0x2545_f491;
                    for b in &mut bytes[len / 2..len / 2 + 8192] {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        *b = x.to_le_bytes()[0];
                    }
                    std::fs::write(p, bytes).expect("write");
                }),
            ),
            (
                "cut in half",
                Box::new(move |p| truncate(p, (len / 2) as u64)),
            ),
            (
                "not a database",
                Box::new(|p| std::fs::write(p, "not sqlite\n").expect("write")),
            ),
        ];
        for (i, (what, damage)) in damages.iter().enumerate() {
            let dir = t.path().join(format!("case-{i}"));
            std::fs::create_dir_all(&dir).expect("mkdir");
            let bad = dir.join("backup.db");
            std::fs::copy(&backup, &bad).expect("copy backup");
            damage(&bad);
            let b = compile(&plan(&bad, None, &token), &dir);
            let node = node_with_live_db(&dir.join("hosts"), &live);
            let run = node.script(&b.script("restore", "edge-1"), &[]);
            assert_refused_in_preflight(&run, &format!("restore, backup {what}"));
            assert!(
                run.stderr.contains("integrity_check"),
                "{what}:\n{}",
                run.all()
            );
            for (file, orig) in [("", &live.db), ("-wal", &live.wal), ("-shm", &live.shm)] {
                assert_eq!(
                    sha256_file(&node.inside(&format!("{DB}{file}"))),
                    sha256_file(orig),
                    "backup {what}: state.db{file} must be untouched"
                );
            }
            let moved: Vec<_> = std::fs::read_dir(node.inside("/var/lib/rancher/rke2/server/db"))
                .expect("db dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("rewind-"))
                .collect();
            assert!(
                moved.is_empty(),
                "backup {what}: nothing may be moved: {moved:?}"
            );
        }
    }

    /// K3s (issue 15): the same restore, on K3s's data dir, with the token
    /// checked against K3s's config dir and unit environment file. SQLite is
    /// K3s's default datastore for a single server.
    #[test]
    fn k3s_restore_step_swaps_state_db_under_k3s_data_dir() {
        const K3S_DB: &str = "/var/lib/rancher/k3s/server/db/state.db";
        const K3S_TOKEN: &str = "/var/lib/rancher/k3s/server/token";
        let t = scratch();
        let (live, backup) = live_with_backup(t.path(), 1000);
        let fp_backup = fingerprint(&backup, &[], t.path());
        let token = t.path().join("token");
        std::fs::write(&token, SAVED_TOKEN).expect("write token");
        let text = plan(&backup, Some(&sha256_file(&backup)), &token)
            .replace("[cluster]\n", "[cluster]\ndistribution = \"k3s\"\n")
            .replace("+rke2r1", "+k3s1");
        let b = compile(&text, t.path());
        let sfx = suffix(&b);
        let node = Host::new(&t.path().join("hosts"), "edge-1");
        node.stub("systemctl", r#"case "${1:-}" in is-active) exit 3 ;; esac"#);
        node.put(
            "/etc/rancher/k3s/config.yaml",
            "write-kubeconfig-mode: \"0600\"\n",
        );
        // The unit's environment names no other token.
        node.put(
            "/etc/systemd/system/k3s.service.env",
            "K3S_KUBECONFIG_MODE=644\n",
        );
        node.copy(&live.db, K3S_DB);
        node.copy(&live.wal, &format!("{K3S_DB}-wal"));
        node.put(K3S_TOKEN, "K10newer0token::server:fedcba9876543210\n");

        let run = node.script(&b.script("restore", "edge-1"), &[]);
        run.assert_ok("restore");
        assert!(run.stdout.contains("integrity_check: ok"), "{}", run.all());
        let db = node.inside(K3S_DB);
        assert_eq!(integrity(&db, t.path()), "ok");
        assert_eq!(fingerprint(&db, &[], t.path()), fp_backup);
        assert!(!node.inside(&format!("{K3S_DB}-wal")).exists());
        assert_eq!(
            sha256_file(&node.inside(&format!("{K3S_DB}.{sfx}"))),
            sha256_file(&live.db),
            "the replaced database is kept aside"
        );
        assert_eq!(
            std::fs::read_to_string(node.inside(K3S_TOKEN)).expect("token"),
            SAVED_TOKEN,
            "the saved token is put back"
        );
        assert!(
            !node.inside("/var/lib/rancher/rke2").exists(),
            "nothing under RKE2's data dir"
        );
    }
}

// ---- etcd snapshots -----------------------------------------------------------

mod etcd {
    use super::*;
    use real::etcd::{Etcd, zip_like_rke2};
    use std::path::PathBuf;
    use std::process::Command;

    const NAME: &str = "on-demand-server-1-1716239400";

    fn plan(snapshot: &Path) -> String {
        format!(
            "[cluster]\nname = \"etcd-test\"\ncurrent-version = \"{CURRENT}\"\ntarget-version = \"{TARGET}\"\n\n\
             [snapshot]\npath = {}\ntaken-on = \"{TARGET}\"\n\n\
             [drain]\nenabled = false\n\n\
             [[nodes]]\nname = \"server-1\"\nrole = \"server\"\ninit = true\n\n\
             [[nodes]]\nname = \"agent-1\"\nrole = \"agent\"\n",
            toml_path(snapshot)
        )
    }

    /// A real snapshot of a member holding 40 keys.
    fn real_snapshot(dir: &Path) -> PathBuf {
        let etcd = Etcd::start();
        etcd.put_keys(40);
        etcd.snapshot(&dir.join(NAME))
    }

    /// What the real etcdctl says of a plain snapshot: can it be restored?
    fn etcdctl_restores(snapshot: &Path, scratch: &Path) -> bool {
        let data = tempfile::Builder::new()
            .prefix("restore.")
            .tempdir_in(scratch)
            .expect("temp dir");
        real::output(
            Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .args(["snapshot", "restore"])
                .arg(snapshot)
                .arg("--data-dir")
                .arg(data.path().join("member-data")),
        )
        .status
        .success()
    }

    /// Makes one variant of the snapshot in its own folder.
    fn variant(
        base: &Path,
        i: usize,
        good: &Path,
        make: &dyn Fn(&Path, &Path) -> PathBuf,
    ) -> PathBuf {
        let dir = base.join(format!("case-{i}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        make(good, &dir)
    }

    fn copy_to(good: &Path, dir: &Path) -> PathBuf {
        let p = dir.join(NAME);
        std::fs::copy(good, &p).expect("copy snapshot");
        p
    }

    type Make = Box<dyn Fn(&Path, &Path) -> PathBuf>;

    #[test]
    fn preflight_accepts_real_snapshots_and_refuses_damaged_ones() {
        let t = scratch();
        let good = real_snapshot(t.path());
        let len = size(&good);
        // (what, how to make it, whether the check must accept it)
        let cases: Vec<(&str, Make, bool)> = vec![
            ("plain, as saved", Box::new(copy_to), true),
            (
                "zip, as --etcd-snapshot-compress writes it",
                Box::new(|g, d| zip_like_rke2(g, d, NAME)),
                true,
            ),
            (
                "plain, one byte flipped",
                Box::new(move |g, d| {
                    let p = copy_to(g, d);
                    flip_byte(&p, len / 2);
                    p
                }),
                false,
            ),
            (
                "plain, truncated",
                Box::new(move |g, d| {
                    let p = copy_to(g, d);
                    truncate(&p, (len - 100) as u64);
                    p
                }),
                false,
            ),
            (
                "plain, raw db without its sha256 trailer",
                Box::new(move |g, d| {
                    let p = copy_to(g, d);
                    truncate(&p, (len - 32) as u64);
                    p
                }),
                false,
            ),
            (
                "zip of a snapshot with one byte flipped",
                Box::new(move |g, d| {
                    let p = copy_to(g, d);
                    flip_byte(&p, len / 2);
                    let z = zip_like_rke2(&p, d, NAME);
                    std::fs::remove_file(&p).expect("rm");
                    z
                }),
                false,
            ),
            (
                "zip with one byte flipped in the compressed data",
                Box::new(|g, d| {
                    let z = zip_like_rke2(g, d, NAME);
                    flip_byte(&z, size(&z) / 2);
                    z
                }),
                false,
            ),
            (
                "zip, truncated",
                Box::new(|g, d| {
                    let z = zip_like_rke2(g, d, NAME);
                    truncate(&z, (size(&z) / 2) as u64);
                    z
                }),
                false,
            ),
        ];
        for (i, (what, make, accepted)) in cases.iter().enumerate() {
            let snapshot = variant(t.path(), i, &good, make.as_ref());
            if snapshot.extension().is_none() {
                assert_eq!(
                    etcdctl_restores(&snapshot, t.path()),
                    *accepted,
                    "{what}: the real etcdctl must agree that this snapshot is {}",
                    if *accepted { "good" } else { "damaged" }
                );
            }
            let dir = snapshot.parent().expect("parent").to_owned();
            let b = compile(&plan(&snapshot), &dir);
            let node = rke2_node(&dir.join("hosts"), "server-1", CURRENT);
            let run = node.script(&b.script("preflight", "server-1"), &[]);
            if *accepted {
                run.assert_ok(&format!("preflight of a good snapshot ({what})"));
                assert!(
                    run.stdout.contains("sha256 trailer matches its content"),
                    "{}",
                    run.all()
                );
            } else {
                assert_refused_in_preflight(&run, &format!("preflight, snapshot {what}"));
            }
        }
    }

    #[test]
    fn refused_snapshot_stops_the_run_before_any_host_is_stopped() {
        let t = scratch();
        let snapshot = real_snapshot(t.path());
        flip_byte(&snapshot, size(&snapshot) / 2);
        let b = compile(&plan(&snapshot), t.path());
        let base = t.path().join("hosts");
        let hosts = [
            rke2_node(&base, "server-1", CURRENT),
            rke2_node(&base, "agent-1", CURRENT),
            Host::new(&base, "workstation"),
        ];

        // The operator runs the steps in order and stops at the first failure.
        let mut ran: Vec<(String, String, i32)> = Vec::new();
        'steps: for id in b.step_ids() {
            for (host, script) in b.scripts(&id) {
                let h = hosts.iter().find(|h| h.name == host).expect("host");
                let run = h.script(&script, &[]);
                ran.push((id.clone(), host.clone(), run.code));
                if run.code != 0 {
                    assert!(
                        run.stderr.contains("sha256 trailer does not match"),
                        "{}",
                        run.all()
                    );
                    break 'steps;
                }
            }
        }
        assert_eq!(
            ran.last().map(|(s, h, c)| (s.as_str(), h.as_str(), *c)),
            Some(("preflight", "server-1", 1)),
            "the run must stop at the snapshot check; ran: {ran:?}"
        );
        for h in &hosts {
            assert!(
                !h.journal().contains("systemctl <stop>"),
                "{} was stopped: {}",
                h.name,
                h.journal()
            );
        }

        // Run out of order, the restore step refuses it too, before rke2 runs.
        set_rke2_version(&hosts[0], TARGET);
        let run = hosts[0].script(&b.script("restore", "server-1"), &[]);
        assert_refused_in_preflight(&run, "restore of a damaged snapshot");
        assert!(
            !hosts[0].journal().contains("rke2 <server>"),
            "cluster-reset ran: {}",
            hosts[0].journal()
        );
    }
}

// ---- S3 -------------------------------------------------------------------------

mod s3 {
    use super::*;
    use real::s3::S3;

    const ACCESS: &str = "AKIATESTACCESS7F3A";
    const SECRET: &str = "test/Secret+Key=never-printed";

    fn rke2_plan() -> String {
        format!(
            "[cluster]\nname = \"s3-test\"\ncurrent-version = \"{CURRENT}\"\ntarget-version = \"{TARGET}\"\n\n\
             [snapshot]\ntaken-on = \"{TARGET}\"\n\n\
             [snapshot.s3]\nname = \"on-demand-cp-1-1718000000\"\nbucket = \"rke2-snapshots\"\n\
             folder = \"staging\"\nendpoint = \"127.0.0.1:9000\"\nregion = \"us-east-1\"\n\n\
             [drain]\nenabled = false\n\n\
             [[nodes]]\nname = \"cp-1\"\nrole = \"server\"\ninit = true\n"
        )
    }

    /// RKE2 downloads an S3 snapshot itself (a stand-in here): the bundle
    /// must require the credentials in the environment, hand them to rke2
    /// there, and never print or write them.
    #[test]
    fn rke2_s3_restore_requires_credentials_and_never_prints_them() {
        let t = scratch();
        let b = compile(&rke2_plan(), t.path());
        let node = rke2_node(&t.path().join("hosts"), "cp-1", CURRENT);
        let creds = [
            ("AWS_ACCESS_KEY_ID", ACCESS),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ];

        let run = node.script(&b.script("preflight", "cp-1"), &[]);
        assert_refused_in_preflight(&run, "preflight without S3 credentials");
        assert!(
            run.stderr.contains("AWS_ACCESS_KEY_ID")
                && run.stderr.contains("AWS_SECRET_ACCESS_KEY"),
            "{}",
            run.all()
        );
        let run = node.script(&b.script("preflight", "cp-1"), &creds);
        run.assert_ok("preflight with S3 credentials");
        let mut seen = run.all();

        set_rke2_version(&node, TARGET);
        let run = node.script(&b.script("restore", "cp-1"), &[]);
        assert_refused_in_preflight(&run, "restore without S3 credentials");
        assert!(
            !node.journal().contains("rke2 <server>"),
            "{}",
            node.journal()
        );
        let run = node.script(&b.script("restore", "cp-1"), &creds);
        run.assert_ok("restore with S3 credentials");
        seen.push_str(&run.all());

        let journal = node.journal();
        assert!(
            journal.contains("<--cluster-reset>") && journal.contains("<--etcd-s3>"),
            "{journal}"
        );
        assert!(
            journal.contains("rke2 env: AWS_SECRET_ACCESS_KEY is set"),
            "rke2 must get the credentials from its environment: {journal}"
        );
        seen.push_str(&journal);
        // The kept output of rke2 and the journal under /var.
        for entry in walk(&node.inside("/var")) {
            seen.push_str(&String::from_utf8_lossy(
                &std::fs::read(entry).expect("read"),
            ));
        }
        for secret in [ACCESS, SECRET] {
            assert!(
                !seen.contains(secret),
                "a credential was printed or written:\n{seen}"
            );
        }
    }

    const SNAPSHOT: &str = "rke_etcd_snapshot_2020-09-01T10:00:00Z";
    const BUCKET: &str = "rke-etcd-snapshots";

    fn rke1_recovery_plan(endpoint: &str, name: &str, sha: &str) -> String {
        format!(
            "[cluster]\nname = \"rancher-dr\"\ndistribution = \"rke1\"\n\
             current-version = \"v2.4.5\"\ntarget-version = \"v2.4.5\"\n\n\
             [rke]\nbinary = \"/usr/local/bin/rke\"\nconfig = \"/root/rancher/rancher-cluster.yml\"\n\n\
             [snapshot]\nname = \"{name}\"\ntaken-on = \"v2.4.5\"\nsha256 = \"{sha}\"\n\n\
             [snapshot.s3]\nbucket = \"{BUCKET}\"\nfolder = \"rancher-dr\"\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n\n\
             [recovery]\nfailed = \"10.0.0.3\"\nreplacement = \"10.0.0.4\"\n\n\
             [[nodes]]\naddress = \"10.0.0.1\"\nhostname = \"rancher-1\"\nroles = [\"controlplane\", \"etcd\", \"worker\"]\n\n\
             [[nodes]]\naddress = \"10.0.0.4\"\nhostname = \"rancher-4\"\nroles = [\"controlplane\", \"etcd\", \"worker\"]\n"
        )
    }

    /// The disaster-recovery step pulls the snapshot onto the new node with
    /// the real s3cmd from a local S3 server, checks its hash, and renames
    /// it into place; a missing object or a wrong hash stops it with a clear
    /// message and leaves nothing in place.
    #[test]
    fn rke1_recovery_pulls_the_snapshot_with_s3cmd_and_checks_its_hash() {
        let t = scratch();
        let s3 = S3::start(BUCKET);
        let snapshot = t.path().join("snapshot");
        let other = t.path().join("other");
        // Not compressible, larger than one read buffer.
        std::fs::write(
            &snapshot,
            (0..300_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0])
                .collect::<Vec<u8>>(),
        )
        .expect("write snapshot");
        std::fs::write(&other, b"a different file under the snapshot's name\n").expect("write");
        // RKE1 keeps its snapshots zipped, in S3 too: `<name>.zip`.
        s3.put(&snapshot, &format!("rancher-dr/{SNAPSHOT}.zip"));
        s3.put(&other, "rancher-dr/tampered.zip");
        let sha = sha256_file(&snapshot);
        // An s3cmd configuration as an operator with an http-only on-premises
        // S3 writes it; the keys stay in the environment.
        let cfg = t.path().join("s3cfg");
        std::fs::write(&cfg, "[default]\nuse_https = False\nsignature_v2 = False\n")
            .expect("write s3cfg");
        let cfg = cfg.to_str().expect("utf-8").to_owned();
        let env = [
            ("AWS_ACCESS_KEY_ID", real::s3::ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", real::s3::SECRET_KEY),
            ("REWIND_S3CFG", cfg.as_str()),
        ];
        let dest = format!("/opt/rke/etcd-snapshots/{SNAPSHOT}.zip");

        let cases = [
            ("good", SNAPSHOT, sha.as_str()),
            (
                "missing object",
                "rke_etcd_snapshot_never-taken",
                sha.as_str(),
            ),
            ("wrong hash", "tampered", sha.as_str()),
        ];
        for (i, (what, name, sha)) in cases.iter().enumerate() {
            let dir = t.path().join(format!("case-{i}"));
            std::fs::create_dir_all(&dir).expect("mkdir");
            let b = compile(&rke1_recovery_plan(&s3.endpoint, name, sha), &dir);
            let node = Host::new(&dir.join("hosts"), "rancher-4");
            let run = node.script(&b.script("fetch-snapshot", "rancher-4"), &env);
            let placed = node.inside(&format!("/opt/rke/etcd-snapshots/{name}.zip"));
            match *what {
                "good" => {
                    run.assert_ok("fetch-snapshot");
                    assert!(
                        run.stdout.contains(&format!("snapshot in place: {dest}")),
                        "{}",
                        run.all()
                    );
                    assert_eq!(
                        sha256_file(&placed),
                        *sha,
                        "the pulled snapshot is the uploaded one"
                    );
                    // Run again: the copy in place is kept, nothing downloaded.
                    let again = node.script(
                        &b.script("fetch-snapshot", "rancher-4"),
                        &[env[0], env[1], env[2], ("REWIND_FORCE", "1")],
                    );
                    again.assert_ok("fetch-snapshot again");
                    assert!(
                        again.stdout.contains("snapshot already in place"),
                        "{}",
                        again.all()
                    );
                }
                "missing object" => {
                    assert_eq!(
                        run.code,
                        64,
                        "s3cmd's exit code is passed on:\n{}",
                        run.all()
                    );
                    assert!(run.stderr.contains("does not exist"), "{}", run.all());
                    assert!(
                        run.stderr
                            .contains("exit 64 a wrong bucket, folder or name"),
                        "{}",
                        run.all()
                    );
                }
                _ => {
                    assert_eq!(run.code, 1, "{}", run.all());
                    assert!(run.stderr.contains("sha256 mismatch"), "{}", run.all());
                }
            }
            if *what != "good" {
                let folder = node.inside("/opt/rke/etcd-snapshots");
                let left: Vec<_> = std::fs::read_dir(&folder)
                    .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
                    .unwrap_or_default();
                assert!(
                    left.is_empty(),
                    "{what}: nothing may be left in place: {left:?}"
                );
            }
            for secret in [real::s3::ACCESS_KEY, real::s3::SECRET_KEY] {
                assert!(
                    !run.all().contains(secret),
                    "{what}: a key was printed:\n{}",
                    run.all()
                );
            }
        }
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    out.extend(walk(&p));
                } else if p.is_file() {
                    out.push(p);
                }
            }
        }
        out
    }
}

// ---- kubectl against a fake API -------------------------------------------------

mod kube {
    use super::*;
    use real::kubeapi::KubeApi;
    use serde_json::json;

    fn plan(kubeconfig: &Path) -> String {
        format!(
            "[cluster]\nname = \"kube-test\"\ncurrent-version = \"{CURRENT}\"\ntarget-version = \"{TARGET}\"\n\n\
             [snapshot]\npath = \"/var/lib/rancher/rke2/server/db/snapshots/pre-upgrade\"\ntaken-on = \"{TARGET}\"\n\n\
             [drain]\nkubeconfig = {}\ntimeout = \"30s\"\n\n\
             [[nodes]]\nname = \"server-1\"\nrole = \"server\"\ninit = true\n\n\
             [[nodes]]\nname = \"server-2\"\nrole = \"server\"\n\n\
             [[nodes]]\nname = \"agent-1\"\nrole = \"agent\"\n",
            toml_path(kubeconfig)
        )
    }

    fn node(name: &str, version: &str, ready: bool, cordoned: bool) -> serde_json::Value {
        json!({"name": name, "version": version, "ready": ready, "unschedulable": cordoned,
               "roles": if name.starts_with("server") { json!(["control-plane", "etcd", "master"]) } else { json!([]) }})
    }

    fn state(nodes: &[serde_json::Value]) -> serde_json::Value {
        json!({
            "nodes": nodes,
            "pods": [
                {"name": "web-1", "namespace": "default", "node": "agent-1"},
                {"name": "web-2", "namespace": "default", "node": "server-1"}
            ],
            "secrets": [
                {"name": "server-1.node-password.rke2", "namespace": "kube-system"},
                {"name": "old-agent-9.node-password.rke2", "namespace": "kube-system"}
            ]
        })
    }

    fn unschedulable(api: &KubeApi, n: &str) -> String {
        api.kubectl(&["get", "node", n, "-o", "jsonpath={.spec.unschedulable}"])
    }

    #[test]
    fn drain_cordons_and_evicts_then_verify_uncordons() {
        let t = scratch();
        // server-2 was cordoned by an administrator before the rollback.
        let api = KubeApi::start(&state(&[
            node("server-1", TARGET, true, false),
            node("server-2", TARGET, true, true),
            node("agent-1", TARGET, true, false),
        ]));
        let b = compile(&plan(&api.kubeconfig), t.path());
        let ws = Host::new(&t.path().join("hosts"), "workstation");

        let run = ws.script(&b.script("drain", "workstation"), &[]);
        run.assert_ok("drain");
        let req = api.requests();
        let cordon = |n: &str| {
            req.find(&format!(
                "PATCH /api/v1/nodes/{n} {{\"spec\":{{\"unschedulable\":true}}}}"
            ))
        };
        let (agent, server) = (cordon("agent-1"), cordon("server-1"));
        assert!(
            agent.is_some() && server.is_some() && agent < server,
            "agents are cordoned first, then servers:\n{req}"
        );
        for pod in ["web-1", "web-2"] {
            assert!(
                req.contains(&format!(
                    "POST /api/v1/namespaces/default/pods/{pod}/eviction"
                )),
                "{pod} must be evicted:\n{req}"
            );
        }
        for n in ["server-1", "server-2", "agent-1"] {
            assert_eq!(
                unschedulable(&api, n),
                "true",
                "{n} is cordoned after the drain"
            );
        }

        let run = ws.script(
            &b.script("verify", "workstation"),
            &[
                ("REWIND_VERIFY_TIMEOUT", "30"),
                ("REWIND_POLL_INTERVAL", "1"),
            ],
        );
        run.assert_ok("verify");
        assert!(
            run.stdout.contains(&format!("3 nodes Ready at {TARGET}")),
            "{}",
            run.all()
        );
        assert_eq!(unschedulable(&api, "server-1"), "", "uncordoned");
        assert_eq!(unschedulable(&api, "agent-1"), "", "uncordoned");
        assert_eq!(
            unschedulable(&api, "server-2"),
            "true",
            "a node cordoned before the rollback stays cordoned"
        );
        assert!(
            run.stdout.contains("old-agent-9.node-password.rke2"),
            "{}",
            run.all()
        );
        assert!(
            !run.stdout.contains("server-1.node-password.rke2"),
            "{}",
            run.all()
        );
    }

    /// The restored cluster with system-upgrade-controller: the standalone
    /// one and Rancher's (in cattle-system), the Plan that upgraded the
    /// cluster and one pinned to the target.
    fn with_suc(mut st: serde_json::Value, crd: bool) -> serde_json::Value {
        st["deployments"] = json!([
            {"name": "system-upgrade-controller", "namespace": "system-upgrade", "replicas": 1},
            {"name": "system-upgrade-controller", "namespace": "cattle-system", "replicas": 2},
            {"name": "cattle-cluster-agent", "namespace": "cattle-system", "replicas": 2}
        ]);
        if crd {
            st["crds"] = json!(["plans.upgrade.cattle.io"]);
            st["plans"] = json!([
                {"name": "rke2-server", "namespace": "system-upgrade", "version": CURRENT},
                {"name": "rke2-agent", "namespace": "system-upgrade", "version": TARGET}
            ]);
        }
        st
    }

    fn replicas(api: &KubeApi, ns: &str) -> String {
        api.kubectl(&[
            "-n",
            ns,
            "get",
            "deployment",
            "system-upgrade-controller",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
    }

    #[test]
    fn suspend_scales_the_controllers_to_zero_and_verify_rechecks() {
        let t = scratch();
        let api = KubeApi::start(&with_suc(
            state(&[
                node("server-1", TARGET, true, false),
                node("server-2", TARGET, true, false),
                node("agent-1", TARGET, true, false),
            ]),
            true,
        ));
        let b = compile(&plan(&api.kubeconfig), t.path());
        let ws = Host::new(&t.path().join("hosts"), "workstation");

        let run = ws.script(&b.script("suspend-upgrades", "workstation"), &[]);
        run.assert_ok("suspend-upgrades");
        let req = api.requests();
        for ns in ["system-upgrade", "cattle-system"] {
            assert!(
                req.contains(&format!(
                    "PATCH /apis/apps/v1/namespaces/{ns}/deployments/system-upgrade-controller/scale {{\"spec\":{{\"replicas\":0}}}}"
                )),
                "{ns}: scaled through the scale subresource:\n{req}"
            );
            assert_eq!(replicas(&api, ns), "0", "{ns}");
        }
        let out = run.all();
        for needle in [
            &format!(
                "Plan system-upgrade/rke2-server: version {CURRENT}, not the rollback target {TARGET}"
            ) as &str,
            &format!("Plan system-upgrade/rke2-agent: version {TARGET}"),
            "ok: system-upgrade-controller stopped: 2 deployment(s) scaled to 0",
            "Rancher manages this cluster (cattle-system/cattle-cluster-agent), and the plan does not say so",
        ] {
            assert!(out.contains(needle), "expected {needle:?}:\n{out}");
        }
        let record = ws.inside(&format!(
            "/var/lib/rewind/kube-test/{}/suc-scaled",
            b.plan["plan_sha256"].as_str().expect("plan_sha256")
        ));
        assert_eq!(
            std::fs::read_to_string(&record).unwrap_or_default(),
            "system-upgrade system-upgrade-controller 1\ncattle-system system-upgrade-controller 2\n"
        );

        let verify = b.script("verify", "workstation");
        let env = [
            ("REWIND_VERIFY_TIMEOUT", "30"),
            ("REWIND_POLL_INTERVAL", "1"),
        ];
        let run = ws.script(&verify, &env);
        run.assert_ok("verify");
        let out = run.all();
        assert!(
            out.contains(
                "-n cattle-system scale deployment system-upgrade-controller --replicas=2"
            ),
            "the command that scales it back, with its replicas:\n{out}"
        );
        assert!(
            out.contains("ok: no system-upgrade-controller replica runs"),
            "{out}"
        );

        // Scaled back up before the Plan is fixed: verify fails.
        api.kubectl(&[
            "-n",
            "system-upgrade",
            "scale",
            "deployment",
            "system-upgrade-controller",
            "--replicas=1",
        ]);
        let mut env = env.to_vec();
        env.push(("REWIND_FORCE", "1"));
        let run = ws.script(&verify, &env);
        assert_eq!(run.code, 1, "{}", run.all());
        assert!(
            run.stderr.contains("system-upgrade-controller runs: system-upgrade/system-upgrade-controller(1 replicas, 1 running)"),
            "{}",
            run.all()
        );
    }

    #[test]
    fn suspend_without_the_crd_scales_and_says_so() {
        let t = scratch();
        let api = KubeApi::start(&with_suc(
            state(&[node("server-1", TARGET, true, false)]),
            false,
        ));
        let b = compile(&plan(&api.kubeconfig), t.path());
        let ws = Host::new(&t.path().join("hosts"), "workstation");
        let script = b.script("suspend-upgrades", "workstation");
        // A dry run only asks: it scales nothing and records nothing.
        let run = ws.script(&script, &[("REWIND_DRY_RUN", "1")]);
        run.assert_ok("suspend-upgrades dry run");
        assert!(
            run.stdout
                .contains("[dry-run] would run: kubectl --kubeconfig=")
                && run.stdout.contains(
                    "-n system-upgrade scale deployment system-upgrade-controller --replicas=0"
                ),
            "{}",
            run.all()
        );
        assert!(
            !api.requests().contains("PATCH"),
            "a dry run changed the cluster:\n{}",
            api.requests()
        );
        assert_eq!(replicas(&api, "system-upgrade"), "1");

        let run = ws.script(&script, &[]);
        run.assert_ok("suspend-upgrades");
        assert!(
            run.stdout
                .contains("ok: the CRD plans.upgrade.cattle.io does not exist"),
            "{}",
            run.all()
        );
        assert_eq!(replicas(&api, "system-upgrade"), "0");
    }

    #[test]
    fn verify_fails_while_a_node_reports_another_version() {
        let t = scratch();
        let api = KubeApi::start(&state(&[
            node("server-1", TARGET, true, false),
            node("server-2", TARGET, false, false),
            node("agent-1", CURRENT, true, true),
        ]));
        let b = compile(&plan(&api.kubeconfig), t.path());
        let ws = Host::new(&t.path().join("hosts"), "workstation");
        let run = ws.script(
            &b.script("verify", "workstation"),
            &[
                ("REWIND_VERIFY_TIMEOUT", "3"),
                ("REWIND_POLL_INTERVAL", "1"),
            ],
        );
        assert_eq!(run.code, 1, "{}", run.all());
        let msg = run.all();
        assert!(msg.contains(&format!("not Ready at {TARGET}")), "{msg}");
        assert!(
            msg.contains("agent-1") && msg.contains(CURRENT),
            "names the node and its version: {msg}"
        );
        assert!(
            msg.contains("server-2"),
            "names the node that is not Ready: {msg}"
        );
        assert!(
            !api.requests().contains("PATCH"),
            "nothing is uncordoned on failure"
        );
    }
}
