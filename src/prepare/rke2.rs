//! The capture steps of RKE2 and K3s: on every node, check that it runs the
//! version the plan says and record its version, configuration and token
//! source; on the servers, copy the server token; on the init server, take
//! the datastore's backup (an on-demand etcd snapshot, optionally uploaded
//! to S3, or an online copy of the SQLite database); an external database
//! is dumped from the workstation or from the node the plan restores it on.
//! Binary and unit paths are the rollback's (`Rke2::install_dirs`,
//! `Rke2::unit`); every other name that differs between RKE2 and K3s (the
//! binary, units and their env files, config dir, the server unit that
//! `etcd-snapshot save` asks) is the plan's [`crate::model::Flavor`], and
//! the library fragment reads the rest from the constants `REWIND_ENV`,
//! `REWIND_BIN` and `REWIND_PRODUCT`.

use super::{Cx, step};
use crate::model::{Datastore, Rke2, Role};
use crate::plan::{Func, Host, Op, Step, script};

pub(super) fn steps(cx: &Cx<'_>, r: &Rke2) -> Vec<Step> {
    // The same binary and unit files as the rollback's (an install-prefix
    // included).
    let (bin_dir, unit_dir) = r.install_dirs();
    let bin = format!("{bin_dir}/{}", r.flavor.binary);
    let bin = bin.as_str();
    let target = r.target.to_string();
    let dd = |rest: &str| format!("{}/{rest}", r.data_dir);
    let init = r
        .nodes
        .iter()
        .find(|n| n.init)
        .or_else(|| r.nodes.iter().find(|n| n.role == Role::Server))
        .expect("validation guarantees a server");
    let token_dest = cx
        .given
        .token_file
        .clone()
        .unwrap_or_else(|| format!("{}/token", cx.dir));
    let external = match &r.datastore {
        Datastore::Postgres(db) | Datastore::Mysql(db) => Some(db),
        _ => None,
    };
    let db_dump = |db: &crate::model::ExternalDb| {
        let ext = if matches!(r.datastore, Datastore::Postgres(_)) {
            "dump"
        } else {
            "sql"
        };
        cx.given
            .snapshot_path
            .clone()
            .unwrap_or_else(|| format!("{}/{}.{ext}", cx.dir, db.database))
    };
    let db_ops = |db: &crate::model::ExternalDb| -> (Vec<Op>, Vec<Op>) {
        let dump = db_dump(db);
        let port = db.port.map(|p| p.to_string()).unwrap_or_default();
        let user = db.user.clone().unwrap_or_default();
        let conn = [
            db.host.clone(),
            port,
            user,
            db.database.clone(),
            dump.clone(),
        ];
        let (tools, save, kind): (&[&str], Func, &str) =
            if matches!(r.datastore, Datastore::Postgres(_)) {
                (&["pg_dump", "pg_restore"], Func::SavePostgres, "postgres")
            } else {
                // save_mysql takes mysqldump or mariadb-dump, whichever is there.
                (&[], Func::SaveMysql, "mysql")
            };
        (
            if tools.is_empty() {
                Vec::new()
            } else {
                vec![Op::new(Func::NeedTools, tools)]
            },
            vec![
                Op::new(save, conn),
                Op::new(Func::CaptureBackup, [kind, dump.as_str()]),
            ],
        )
    };
    let mut steps = Vec::new();
    if let Some(db) = external.filter(|db| db.restore_on.is_none()) {
        let (pre, mut act) = db_ops(db);
        act.insert(0, cx.start("workstation", "workstation"));
        act.push(Op::new(Func::CaptureFinish, Vec::<String>::new()));
        steps.push(step(
            "capture-database",
            format!("Dump the database {} before the upgrade", db.database),
            false,
            vec![script(Host::Workstation, false, pre, act)],
        ));
    }
    let mut scripts = Vec::new();
    for n in &r.nodes {
        let unit = r.unit(n.role);
        let role = match n.role {
            Role::Server => "server",
            Role::Agent => "agent",
        };
        let world = [
            r.flavor.config_dir.to_owned(),
            unit.to_owned(),
            format!("{unit_dir}/{unit}{}", r.flavor.unit_env),
        ];
        let mut pre = vec![Op::new(Func::CheckInstalledVersion, [bin, target.as_str()])];
        let mut world_dd = world.to_vec();
        world_dd.push(r.data_dir.clone());
        pre.push(Op::new(Func::CheckDataDir, world_dd));
        let mut act = vec![
            cx.start(&n.name, role),
            Op::new(Func::CaptureVersion, [bin]),
            Op::new(Func::CaptureConfig, world.clone()),
        ];
        if n.role == Role::Server {
            pre.push(Op::new(Func::NeedFile, [dd("server/token")]));
            act.push(Op::new(
                Func::CaptureToken,
                [dd("server/token"), token_dest.clone(), cx.suffix.clone()],
            ));
        }
        if n.name == init.name {
            match &r.datastore {
                Datastore::Etcd => {
                    let mut args = vec![
                        bin.to_owned(),
                        r.data_dir.clone(),
                        cx.name.to_owned(),
                        // `etcd-snapshot save` asks the running server.
                        r.flavor.server_unit.to_owned(),
                    ];
                    if let crate::model::SnapshotLocation::S3(s3) = &r.snapshot.location {
                        pre.push(Op::new(
                            Func::NeedEnv,
                            ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
                        ));
                        args.extend(crate::plan::s3_flags("--s3", s3));
                    }
                    act.push(Op::new(Func::CaptureEtcd, args));
                }
                Datastore::Sqlite => {
                    pre.push(Op::new(Func::NeedTools, ["sqlite3"]));
                    let copy = cx
                        .given
                        .snapshot_path
                        .clone()
                        .unwrap_or_else(|| format!("{}/state.db", cx.dir));
                    act.push(Op::new(
                        Func::CaptureSqlite,
                        [dd("server/db/state.db"), copy, cx.suffix.clone()],
                    ));
                }
                Datastore::Postgres(_) | Datastore::Mysql(_) => {}
            }
        }
        if let Some(db) = external.filter(|db| db.restore_on.as_deref() == Some(n.name.as_str())) {
            let (p, a) = db_ops(db);
            pre.extend(p);
            act.extend(a);
        }
        act.push(Op::new(Func::CaptureFinish, Vec::<String>::new()));
        scripts.push(script(Host::Node(n.name.clone()), true, pre, act));
    }
    steps.push(step(
        "capture",
        format!("Capture {} before the upgrade to {}", target, r.current),
        true,
        scripts,
    ));
    steps
}
