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
//!
//! This file holds the entry, the context every capture step reads ([`Cx`]:
//! the facts' head, the capture folder), and the bundle writer and README;
//! the capture steps live in one file per family (`rke2.rs` for RKE2 and
//! K3s, `rke1.rs`), as the rollback planner's do (`src/plan/`).

use minijinja::{Value, context};
use serde::Serialize;

use crate::diagnostic::{Code, Diagnostic};
use crate::model::{Datastore, Flavor, Kind, Model};
use crate::plan::{Facts, Func, Host, Op, Plan, Script, Step, StepFacts};
use crate::render;
use crate::source::SourceFile;
use crate::templates;

mod rke1;
mod rke2;

/// The version of the facts files' format (`"rewind-facts"`).
pub const FACTS_FORMAT: u32 = 1;

/// Where every host keeps its capture: `<CAPTURE_ROOT>/<cluster>/capture/<name>`.
pub const CAPTURE_ROOT: &str = "/var/lib/rewind";

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
    // object's name is the file rke2 (or k3s) writes, known only after the
    // capture.
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
        // Kept for the rollback plan, which names the object rke2 (or k3s)
        // wrote.
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
        // RKE2 and K3s: every name the capture uses is the plan's flavor's.
        Kind::Rke2(r) => rke2::steps(&cx, r),
        Kind::Rke1(r) => {
            if r.recovery.is_some() {
                return Err(Refused::Other(
                    "a [recovery] plan replaces a dead node: there is nothing to capture before an upgrade; prepare the plan without [recovery]".into(),
                ));
            }
            rke1::steps(&cx, r)
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
                r.flavor.distribution,
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
    // The product's names (binary, server unit) of RKE2 or K3s. An RKE1
    // capture takes no snapshot with them; its README keeps RKE2's words
    // where it names a server token.
    let (distribution, flavor) = match &plan.facts {
        Facts::Rke2(f) => (f.flavor.distribution, f.flavor),
        Facts::Rke1(_) => ("rke1", &Flavor::RKE2),
    };
    env.get_template("capture/README.md")?.render(context! {
        plan => Value::from(minijinja::value::Serde(plan)),
        steps => Value::from(minijinja::value::Serde(render::steps_view(plan))),
        hosts => Value::from(minijinja::value::Serde(hosts)),
        name => p.name.as_str(),
        dir => p.dir.as_str(),
        kind => backup_kind,
        s3 => plan.steps.iter().flat_map(|s| &s.scripts).flat_map(|s| &s.actions).any(|o| o.func == Func::CaptureEtcd && o.args.len() > 4),
        distribution => distribution,
        flavor => Value::from(minijinja::value::Serde(flavor)),
    })
}
