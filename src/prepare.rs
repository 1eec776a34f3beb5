//! `rewind prepare`: the capture bundle, run BEFORE an upgrade (issue 14).
//!
//! Its input is the rollback plan of the upgrade about to happen (its
//! `current-version` is the version the upgrade goes to, `target-version`
//! the one the nodes run now), whose `[snapshot]` and `[token]` may be
//! absent: the capture takes them. The plan is checked as a rollback plan
//! with a stand-in `[snapshot]` when it has none (the warnings that the
//! capture answers, `integrity` and `token`, are dropped), then planned into
//! capture steps of typed operations (the `capture` library fragment) and
//! rendered through the same script skeleton, library and bundle writer as a
//! rollback: guard, root, dry run, journal, confirmation, `SHA256SUMS`.
//!
//! Every host writes `facts/<host>.json` (docs/prepare.md): what the plan
//! said about it (including the plan's own settings, for
//! [`crate::from_facts`]) and what the host really is. Output is
//! deterministic: the capture's name derives from the plan's sha256 unless
//! `--name` gives one.

use minijinja::{Value, context};
use serde::Serialize;

use crate::diagnostic::{Code, Diagnostic};
use crate::model::{Datastore, Kind, Model, Rke1, Rke2, Role};
use crate::plan::{Facts, Func, Host, Op, Plan, Script, Step, StepFacts, script};
use crate::render;
use crate::source::SourceFile;
use crate::templates;

/// The version of the facts files' format (`"rewind-facts"`).
pub const FACTS_FORMAT: u32 = 1;

/// Where every host keeps its capture: `<CAPTURE_ROOT>/<cluster>/capture/<name>`.
pub const CAPTURE_ROOT: &str = "/var/lib/rewind";

/// RKE1's snapshot folder on the etcd nodes.
const RKE1_SNAPSHOT_DIR: &str = "/opt/rke/etcd-snapshots";

/// A capture bundle, planned.
#[derive(Debug)]
pub struct Prepared {
    /// The steps, ready for [`render`].
    pub plan: Plan,
    /// The capture's name (snapshot name, facts `capture`).
    pub name: String,
    /// The capture folder on every host.
    pub dir: String,
    /// Warnings of the plan's check that still apply.
    pub warnings: Vec<Diagnostic>,
}

/// Why a plan cannot be prepared.
#[derive(Debug)]
pub enum Refused {
    /// The plan's own findings (against the text that was checked).
    Plan(SourceFile, Vec<Diagnostic>),
    /// Something else, in one sentence, with what to do.
    Other(String),
}

/// Is `name` usable as a capture name (a file name on every host)?
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Checks `source` as a plan to prepare and plans its capture bundle.
pub fn prepare(
    source: &SourceFile,
    to: Option<&str>,
    name: Option<&str>,
) -> Result<Prepared, Refused> {
    let text = source.text.as_str();
    let plan_sha256 = crate::digest::sha256_hex(text.as_bytes());
    let Ok(table) = text.parse::<toml::Table>() else {
        // Let the checker word the syntax error.
        let checked = crate::validate::check(source, to);
        return Err(Refused::Plan(source.clone(), checked.diagnostics));
    };
    let s3 = table
        .get("snapshot")
        .and_then(|s| s.get("s3"))
        .and_then(toml::Value::as_table)
        .cloned();
    // An etcd snapshot to S3: the plan's [snapshot.s3] says where; the
    // object's name is the file rke2 writes, known only after the capture.
    let had_snapshot = table.contains_key("snapshot") && s3.is_none();
    let had_token = table.contains_key("token");
    let checked_source = if had_snapshot {
        source.clone()
    } else {
        let rke1 = table
            .get("cluster")
            .and_then(|c| c.get("distribution"))
            .and_then(toml::Value::as_str)
            == Some("rke1");
        let target = to.map(str::to_owned).or_else(|| {
            table
                .get("cluster")
                .and_then(|c| c.get("target-version"))
                .and_then(toml::Value::as_str)
                .map(str::to_owned)
        });
        let mut t = if s3.is_some() {
            without_snapshot(text)
        } else {
            text.to_owned()
        };
        t.push_str(
            "\n# Stand-in added by rewind prepare: the capture takes the backup.\n[snapshot]\n",
        );
        if rke1 {
            t.push_str("name = \"rewind-capture\"\n");
        } else if s3.is_none() {
            t.push_str("path = \"/rewind-capture\"\n");
        }
        if let Some(v) = target {
            t.push_str(&format!("taken-on = {}\n", toml::Value::String(v)));
        }
        if let Some(s3) = &s3 {
            let mut s3 = s3.clone();
            s3.insert("name".into(), toml::Value::String("rewind-capture".into()));
            t.push_str("\n[snapshot.s3]\n");
            for (k, v) in &s3 {
                t.push_str(&format!("{k} = {v}\n"));
            }
        }
        SourceFile::new(source.name.clone(), t)
    };
    let checked = crate::validate::check(&checked_source, to);
    let Some(model) = checked.model else {
        return Err(Refused::Plan(checked_source, checked.diagnostics));
    };
    let warnings: Vec<Diagnostic> = checked
        .diagnostics
        .into_iter()
        .filter(|d| !matches!(d.code, Code::Integrity | Code::Token))
        .collect();
    let name = match name {
        Some(n) => n.to_owned(),
        None => format!("pre-upgrade-{}-{}", model.cluster, &plan_sha256[..8]),
    };
    if !valid_name(&name) {
        return Err(Refused::Other(format!(
            "the capture name {name:?} is not a file name: use letters, digits, '-', '_' and '.' (at most 100, not starting with '-' or '.')"
        )));
    }
    let dir = format!("{CAPTURE_ROOT}/{}/capture/{name}", model.cluster);
    let mut settings = table.clone();
    settings.remove("snapshot");
    settings.remove("token");
    if let Some(mut s3) = s3 {
        // Kept for the rollback plan, which names the object rke2 wrote.
        s3.remove("name");
        let mut snapshot = toml::Table::new();
        snapshot.insert("s3".into(), toml::Value::Table(s3));
        settings.insert("snapshot".into(), toml::Value::Table(snapshot));
    }
    let given = Given {
        snapshot_path: if had_snapshot {
            snapshot_path(&model)
        } else {
            None
        },
        token_file: if had_token { token_file(&model) } else { None },
    };
    let cx = Cx {
        model: &model,
        plan_sha256: &plan_sha256,
        name: &name,
        dir: &dir,
        settings: serde_json::to_value(&settings).expect("a TOML table is JSON"),
        given,
        suffix: crate::plan::suffix_of(&plan_sha256),
    };
    let mut plan = crate::plan::plan(&model);
    plan.plan_sha256.clone_from(&plan_sha256);
    plan.suffix = crate::plan::suffix_of(&plan_sha256);
    plan.steps = match &model.kind {
        Kind::Rke2(r) if r.flavor.is_k3s() => {
            // The capture's commands and unit names are RKE2's; a K3s
            // capture is not written yet (docs/prepare.md says so).
            return Err(Refused::Other(
                "rewind prepare captures RKE2 and RKE1 clusters; K3s is not supported yet: take the snapshot (k3s etcd-snapshot save, or sqlite3 .backup of state.db) and copy the token by hand, as docs/prepare.md says".into(),
            ));
        }
        Kind::Rke2(r) => rke2_steps(&cx, r),
        Kind::Rke1(r) => {
            if r.recovery.is_some() {
                return Err(Refused::Other(
                    "a [recovery] plan replaces a dead node: there is nothing to capture before an upgrade; prepare the plan without [recovery]".into(),
                ));
            }
            rke1_steps(&cx, r)
        }
    };
    for (i, s) in plan.steps.iter_mut().enumerate() {
        s.number = i + 1;
        for x in &mut s.scripts {
            x.path = match &x.host {
                Host::Workstation => format!("workstation/{:02}-{}.sh", s.number, s.id),
                Host::Node(n) => format!("nodes/{n}/{:02}-{}.sh", s.number, s.id),
            };
        }
    }
    plan.scenario = format!("capture {name} before the upgrade to {}", plan.from);
    plan.moved_aside.clear();
    plan.manual_checks.clear();
    plan.warnings = warnings
        .iter()
        .map(|d| format!("{}: {}", d.code, d.message))
        .collect();
    plan.env = crate::plan::env::variables(&plan.steps);
    Ok(Prepared {
        plan,
        name,
        dir,
        warnings,
    })
}

/// `text` without its `[snapshot]` and `[snapshot.*]` tables (each from its
/// header to the next header), so that a stand-in can take their place.
fn without_snapshot(text: &str) -> String {
    let mut out = String::new();
    let mut skip = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            let header = t.trim_start_matches('[').trim_start();
            skip = header.starts_with("snapshot]")
                || header.starts_with("snapshot.")
                || header.starts_with("snapshot ");
        }
        if !skip {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Paths the prepare plan itself gave.
struct Given {
    snapshot_path: Option<String>,
    token_file: Option<String>,
}

fn snapshot_path(model: &Model) -> Option<String> {
    match &model.kind {
        Kind::Rke2(r) => match &r.snapshot.location {
            crate::model::SnapshotLocation::Path(p) => Some(p.clone()),
            crate::model::SnapshotLocation::S3(_) => None,
        },
        Kind::Rke1(_) => None,
    }
}

fn token_file(model: &Model) -> Option<String> {
    match &model.kind {
        Kind::Rke2(r) => r.token.as_ref().map(|t| t.file.clone()),
        Kind::Rke1(_) => None,
    }
}

struct Cx<'a> {
    model: &'a Model,
    plan_sha256: &'a str,
    name: &'a str,
    dir: &'a str,
    settings: serde_json::Value,
    given: Given,
    /// `rewind-<first 8 of the plan's sha256>`: what a capture replaces is
    /// moved aside with it.
    suffix: String,
}

/// What the plan says about a host: the start of its facts file.
#[derive(Serialize)]
struct Head<'a> {
    #[serde(rename = "rewind-facts")]
    format: u32,
    cluster: &'a str,
    capture: &'a str,
    #[serde(rename = "plan-sha256")]
    plan_sha256: &'a str,
    distribution: &'a str,
    host: &'a str,
    role: &'a str,
    #[serde(rename = "expected-version")]
    expected_version: String,
    #[serde(rename = "upgrade-to")]
    upgrade_to: String,
    #[serde(rename = "data-dir", skip_serializing_if = "Option::is_none")]
    data_dir: Option<&'a str>,
    datastore: &'a str,
    plan: &'a serde_json::Value,
}

impl Cx<'_> {
    fn head(&self, host: &str, role: &str) -> String {
        let (distribution, expected, upgrade, data_dir, datastore) = match &self.model.kind {
            Kind::Rke2(r) => (
                "rke2",
                r.target.to_string(),
                r.current.to_string(),
                Some(r.data_dir.as_str()),
                datastore_word(&r.datastore),
            ),
            Kind::Rke1(r) => (
                "rke1",
                r.target.to_string(),
                r.current.to_string(),
                None,
                "etcd",
            ),
        };
        let head = Head {
            format: FACTS_FORMAT,
            cluster: &self.model.cluster,
            capture: self.name,
            plan_sha256: self.plan_sha256,
            distribution,
            host,
            role,
            expected_version: expected,
            upgrade_to: upgrade,
            data_dir,
            datastore,
            plan: &self.settings,
        };
        let mut json = serde_json::to_string(&head).expect("facts are JSON");
        json.pop(); // the closing brace: capture_finish writes it
        json
    }

    fn start(&self, host: &str, role: &str) -> Op {
        Op::new(
            Func::CaptureStart,
            [
                self.dir.to_owned(),
                format!("{}/facts/{host}.json", self.dir),
                self.head(host, role),
            ],
        )
    }
}

fn datastore_word(d: &Datastore) -> &'static str {
    match d {
        Datastore::Etcd => "etcd",
        Datastore::Sqlite => "sqlite",
        Datastore::Postgres(_) => "postgres",
        Datastore::Mysql(_) => "mysql",
    }
}

fn step(id: &'static str, title: String, parallel: bool, scripts: Vec<Script>) -> Step {
    Step {
        number: 0,
        id,
        title,
        parallel,
        // Every capture step writes files: it asks for the cluster name.
        destructive: true,
        // It moves nothing of the cluster's: an earlier file of the same
        // name is moved aside, never overwritten.
        destroys: "nothing of the cluster: it writes the backup, the token copy and the facts"
            .into(),
        facts: StepFacts::Capture,
        scripts,
        no_return: false,
    }
}

fn rke2_steps(cx: &Cx<'_>, r: &Rke2) -> Vec<Step> {
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
                    let mut args = vec![bin.to_owned(), r.data_dir.clone(), cx.name.to_owned()];
                    if let crate::model::SnapshotLocation::S3(s3) = &r.snapshot.location {
                        pre.push(Op::new(
                            Func::NeedEnv,
                            ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
                        ));
                        args.extend(s3_flags(s3));
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

/// `rke2 etcd-snapshot save`'s flags that also upload the snapshot to S3
/// (the keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
fn s3_flags(s3: &crate::model::S3) -> Vec<String> {
    let mut f = vec!["--s3".to_owned(), format!("--s3-bucket={}", s3.bucket)];
    if let Some(x) = &s3.folder {
        f.push(format!("--s3-folder={x}"));
    }
    if let Some(x) = &s3.endpoint {
        f.push(format!("--s3-endpoint={x}"));
    }
    if let Some(x) = &s3.region {
        f.push(format!("--s3-region={x}"));
    }
    if s3.insecure {
        f.push("--s3-insecure".into());
    }
    if s3.skip_ssl_verify {
        f.push("--s3-skip-ssl-verify".into());
    }
    if let Some(x) = &s3.endpoint_ca {
        f.push(format!("--s3-endpoint-ca={x}"));
    }
    f
}

fn rke1_steps(cx: &Cx<'_>, r: &Rke1) -> Vec<Step> {
    let rke = &r.rke;
    let mut ws_act = vec![
        cx.start("workstation", "workstation"),
        Op::new(
            Func::CaptureRke1Snapshot,
            [rke.binary.as_str(), rke.config.as_str(), cx.name],
        ),
        Op::new(Func::CaptureFinish, Vec::<String>::new()),
    ];
    ws_act.shrink_to_fit();
    let mut steps = vec![step(
        "capture-snapshot",
        format!("Take the etcd snapshot {} before the upgrade", cx.name),
        false,
        vec![script(
            Host::Workstation,
            false,
            vec![
                Op::new(Func::NeedTools, [rke.binary.as_str()]),
                Op::new(Func::NeedFile, [rke.config.as_str()]),
            ],
            ws_act,
        )],
    )];
    let mut scripts = Vec::new();
    for n in r
        .nodes
        .iter()
        .filter(|n| n.has(crate::choice::Rke1Role::Etcd))
    {
        let folder = n.folder();
        let mut s = script(
            Host::Node(folder.to_owned()),
            true,
            vec![Op::new(Func::NeedDir, [RKE1_SNAPSHOT_DIR])],
            vec![
                cx.start(folder, "etcd"),
                Op::new(Func::CaptureRke1File, [RKE1_SNAPSHOT_DIR, cx.name]),
                Op::new(Func::CaptureFinish, Vec::<String>::new()),
            ],
        );
        s.addresses = vec![n.address.clone()];
        scripts.push(s);
    }
    steps.push(step(
        "capture-nodes",
        format!("Record the snapshot {} on every etcd node", cx.name),
        true,
        scripts,
    ));
    steps
}

/// Every file of the capture bundle but `SHA256SUMS`, as [`render::each_file`].
pub fn each_file<E: From<minijinja::Error>>(
    p: &Prepared,
    mut emit: impl FnMut(String, String, u32) -> Result<(), E>,
) -> Result<(), E> {
    let plan = &p.plan;
    let env = templates::environment();
    let library = render::Library::of(&env, plan)?;
    for step in &plan.steps {
        for s in &step.scripts {
            emit(
                s.path.clone(),
                render::script_with(&env, &library, step, s)?,
                0o755,
            )?;
        }
    }
    emit(
        "host.sh".into(),
        render::host_runner(&env, &library, plan)?,
        0o755,
    )?;
    emit(library.path, library.text, 0o644)?;
    emit("README.md".into(), readme(&env, p)?, 0o644)?;
    emit("plan.json".into(), render::plan_json(plan), 0o644)?;
    emit(
        "verify.sh".into(),
        env.get_template("verify.sh")?.render(context! {})?,
        0o755,
    )?;
    Ok(())
}

/// The capture bundle in memory, sealed.
pub fn bundle(p: &Prepared) -> Result<crate::bundle::Bundle, minijinja::Error> {
    let mut b = crate::bundle::Bundle::default();
    each_file(p, |path, text, mode| {
        b.add(path, text, mode);
        Ok::<(), minijinja::Error>(())
    })?;
    b.seal();
    Ok(b)
}

/// Writes the capture bundle into `out`, atomically (as `compile`).
pub fn write(
    p: &Prepared,
    out: &camino::Utf8Path,
    force: bool,
) -> Result<String, crate::compiler::WriteError> {
    let mut writer = crate::bundle::Writer::create(out, force)?;
    each_file(p, |path, text, mode| {
        writer
            .add(path, text, mode)
            .map_err(crate::compiler::WriteError::from)
    })?;
    let digest = writer.seal()?;
    writer.finish()?;
    Ok(digest)
}

/// One host of the capture, for the README.
#[derive(Serialize)]
struct HostView {
    host: String,
    facts: String,
    backup: bool,
    token: bool,
}

fn readme(env: &minijinja::Environment<'_>, p: &Prepared) -> Result<String, minijinja::Error> {
    let plan = &p.plan;
    let mut hosts = Vec::new();
    let mut backup_kind = "";
    for s in plan.steps.iter().flat_map(|s| &s.scripts) {
        let ops = || s.actions.iter().map(|o| o.func);
        let backup = ops().any(|f| {
            matches!(
                f,
                Func::CaptureEtcd
                    | Func::CaptureSqlite
                    | Func::CaptureBackup
                    | Func::CaptureRke1File
            )
        });
        if backup {
            backup_kind = match ops().find(|f| {
                matches!(
                    f,
                    Func::CaptureEtcd
                        | Func::CaptureSqlite
                        | Func::CaptureBackup
                        | Func::CaptureRke1File
                )
            }) {
                Some(Func::CaptureEtcd) => "etcd",
                Some(Func::CaptureSqlite) => "sqlite",
                Some(Func::CaptureRke1File) => "rke1",
                _ => "database",
            };
        }
        hosts.push(HostView {
            host: s.host.name().to_owned(),
            facts: format!("{}/facts/{}.json", p.dir, s.host.name()),
            backup,
            token: ops().any(|f| f == Func::CaptureToken),
        });
    }
    let facts = match &plan.facts {
        Facts::Rke2(_) => "rke2",
        Facts::Rke1(_) => "rke1",
    };
    env.get_template("capture/README.md")?.render(context! {
        plan => Value::from(minijinja::value::Serde(plan)),
        steps => Value::from(minijinja::value::Serde(render::steps_view(plan))),
        hosts => Value::from(minijinja::value::Serde(hosts)),
        name => p.name.as_str(),
        dir => p.dir.as_str(),
        kind => backup_kind,
        s3 => plan.steps.iter().flat_map(|s| &s.scripts).flat_map(|s| &s.actions).any(|o| o.func == Func::CaptureEtcd && o.args.len() > 3),
        distribution => facts,
    })
}
