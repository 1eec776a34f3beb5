//! The name of an external database (`datastore.database`), checked at
//! `check` time against what the server and the generated scripts accept:
//! a name the restore would refuse only after every rke2 server is stopped,
//! or that the server would quietly read as another name, is an error here.

use super::fields::Ctx;
use crate::choice::DatastoreKind;
use crate::diagnostic::{Code, Diagnostic};
use crate::spec::S;

/// PostgreSQL keeps the first 63 bytes of a name (NAMEDATALEN - 1).
const PG_MAX_BYTES: usize = 63;
/// MySQL and MariaDB: at most 64 characters.
const MYSQL_MAX_CHARS: usize = 64;

/// Checks the database name of a `postgres` or `mysql` datastore (`kind`);
/// pushes an error and returns false when the name cannot be used.
/// Emptiness and control characters (NUL included) are the `plain` rule's.
pub(super) fn check(cx: &mut Ctx, value: &S<String>, kind: DatastoreKind) -> bool {
    let name = value.get_ref();
    let problem = match kind {
        DatastoreKind::Postgres => postgres(name),
        DatastoreKind::Mysql => mysql(name),
        // Embedded datastores have no database name.
        DatastoreKind::Etcd | DatastoreKind::Sqlite => None,
    };
    match problem {
        None => true,
        Some((label, help)) => {
            cx.push(
                Diagnostic::error(
                    Code::DatastoreFields,
                    Some(value.span()),
                    format!(
                        "`datastore.database` is not a database name rewind can restore on {kind}"
                    ),
                )
                .label(label)
                .help(help),
            );
            false
        }
    }
}

fn postgres(name: &str) -> Option<(String, String)> {
    if name.len() > PG_MAX_BYTES {
        return Some((
            format!("{} bytes; PostgreSQL keeps only the first {PG_MAX_BYTES}", name.len()),
            "use the name the server shows (`\\l` in psql): a longer name is cut, so the restore would drop and recreate another name than the plan's".into(),
        ));
    }
    if name.contains('=') || name.starts_with("postgres://") || name.starts_with("postgresql://") {
        return Some((
            "read as a connection string by pg_dump and psql".into(),
            "pg_dump, pg_restore and psql take a `--dbname` value with `=` or a postgres:// prefix as connection parameters, not as a name; rename the database or restore it by hand".into(),
        ));
    }
    None
}

fn mysql(name: &str) -> Option<(String, String)> {
    let chars = name.chars().count();
    if chars > MYSQL_MAX_CHARS {
        return Some((
            format!("{chars} characters; MySQL allows at most {MYSQL_MAX_CHARS}"),
            "use the name the server shows (`SHOW DATABASES`)".into(),
        ));
    }
    if name.ends_with(' ') {
        return Some((
            "ends with a space".into(),
            "MySQL database names cannot end with a space: remove it".into(),
        ));
    }
    if name.contains('`') {
        return Some((
            "contains a backtick (`)".into(),
            "the restore names the database in backticks (DROP DATABASE `name`); rename the database, or restore it by hand".into(),
        ));
    }
    if name.contains('\\') {
        return Some((
            "contains a backslash".into(),
            "the mysql client reads a backslash in a name as an escape; rename the database, or restore it by hand".into(),
        ));
    }
    if name.chars().any(|c| u32::from(c) > 0xFFFF) {
        return Some((
            "contains a character outside the Basic Multilingual Plane".into(),
            "MySQL identifiers allow only characters up to U+FFFF".into(),
        ));
    }
    None
}
