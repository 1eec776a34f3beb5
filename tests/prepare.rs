//! `rewind prepare` and `rewind plan --from-facts` (issue 14).
//!
//! - every capture bundle (SQLite, PostgreSQL, MySQL, etcd online and
//!   air-gap, RKE1; K3s on SQLite, etcd and PostgreSQL) compiles
//!   deterministically, passes shellcheck, parses under the six shells, and
//!   holds no secret; the SQLite capture README is a reviewed snapshot;
//! - a K3s capture names nothing of rke2 in its operations, README and
//!   library constants, and its facts give a K3s plan;
//! - the capture scripts run in the sandbox (tests/sandbox/: fake hosts in
//!   private namespaces, stand-ins for rke2 and systemctl): the SQLite copy
//!   is made by the real sqlite3, the etcd snapshot is the stand-in's real
//!   etcd snapshot file (sha256 trailer checked);
//! - the round trip, for SQLite and etcd, RKE2 and K3s: capture on the
//!   hosts at the version they run, facts → plan (`check`: zero warnings) →
//!   "upgrade" the stand-ins → compile → the sandboxed rollback ends on the
//!   captured version with the captured data;
//! - PostgreSQL and MariaDB: the capture's dump step against real servers
//!   (tests/real/), and its facts;
//! - `plan --from-facts` refuses facts of different clusters or captures and
//!   names missing hosts.

mod common;
#[path = "sandbox/mod.rs"]
#[allow(dead_code)] // each test crate uses part of the harness
mod harness;
#[allow(dead_code)]
mod real;

use std::path::Path;

use harness::host::Launch;
use harness::seed;
use harness::shells::Shell;
use harness::world::{ScriptRun, World};
use rewind::bundle::Bundle;
use rewind::from_facts::{self, HostFacts, Options};
use rewind::prepare::{self, Prepared, Refused};
use rewind::source::SourceFile;

const PLANS: &[&str] = &[
    "sqlite",
    "etcd",
    "etcd-airgap",
    "etcd-s3",
    "postgres",
    "mysql",
    "rke1",
    "k3s-sqlite",
    "k3s-etcd",
    "k3s-postgres",
];

/// The K3s plans of [`PLANS`].
const K3S_PLANS: &[&str] = &["k3s-sqlite", "k3s-etcd", "k3s-postgres"];

fn plan_text(name: &str) -> String {
    std::fs::read_to_string(
        common::repo()
            .join("tests/prepare")
            .join(format!("{name}.toml")),
    )
    .unwrap_or_else(|e| panic!("tests/prepare/{name}.toml: {e}"))
}

fn prepared(name: &str, text: &str) -> (Prepared, Bundle) {
    let source = SourceFile::new(format!("{name}.toml"), text);
    let p = match prepare::prepare(&source, None, None) {
        Ok(p) => p,
        Err(Refused::Plan(_, d)) => panic!("{name}: refused: {d:?}"),
        Err(Refused::Other(why)) => panic!("{name}: refused: {why}"),
    };
    let b = prepare::bundle(&p).expect("render the capture bundle");
    (p, b)
}

// ---- compiling ----------------------------------------------------------------

#[test]
fn every_capture_bundle_is_deterministic_clean_and_secret_free() {
    let shellcheck = common::require_tool("shellcheck");
    let tmp = tempfile::tempdir().expect("tempdir");
    for name in PLANS {
        let text = plan_text(name);
        let (p, b) = prepared(name, &text);
        let (_, again) = prepared(name, &text);
        assert_eq!(b.files, again.files, "{name}: not deterministic");
        let paths: Vec<&String> = b.files.keys().collect();
        for want in [
            "README.md",
            "plan.json",
            "SHA256SUMS",
            "verify.sh",
            "host.sh",
        ] {
            assert!(b.files.contains_key(want), "{name}: no {want} in {paths:?}");
        }
        assert!(
            paths.iter().any(|p| rewind::render::Library::is_library(p)),
            "{name}: no library"
        );
        assert!(!p.plan.steps.is_empty(), "{name}: no step");
        for step in &p.plan.steps {
            assert!(
                step.destructive,
                "{name}: {} writes files without asking",
                step.id
            );
            for s in &step.scripts {
                let ops: Vec<_> = s.actions.iter().map(|o| o.func).collect();
                assert_eq!(
                    ops.first(),
                    Some(&rewind::plan::Func::CaptureStart),
                    "{name}: {}",
                    s.path
                );
                assert_eq!(ops.last(), Some(&rewind::plan::Func::CaptureFinish));
            }
        }
        for (path, f) in &b.files {
            let text = String::from_utf8_lossy(&f.bytes);
            let found = common::secrets_in(&text);
            assert!(found.is_empty(), "{name}: {path} holds {found:?}");
        }
        let dir = tmp.path().join(name);
        for (path, f) in &b.files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, &f.bytes).expect("write");
        }
        let scripts: Vec<String> = b
            .files
            .keys()
            .filter(|p| Path::new(p.as_str()).extension().is_some_and(|e| e == "sh"))
            .cloned()
            .collect();
        let out = std::process::Command::new(&shellcheck)
            .current_dir(&dir)
            .args(["-s", "sh"])
            .args(&scripts)
            .output()
            .expect("run shellcheck");
        assert!(
            out.status.success(),
            "{name}: shellcheck:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        for shell in Shell::ALL {
            shell.require();
            for s in &scripts {
                let mut argv: Vec<String> = shell.argv().iter().map(|a| (*a).to_owned()).collect();
                argv.push("-n".into());
                argv.push(s.clone());
                let out = std::process::Command::new(&argv[0])
                    .args(&argv[1..])
                    .current_dir(&dir)
                    .output()
                    .expect("run the shell");
                assert!(
                    out.status.success(),
                    "{name}: {s} does not parse under {}: {}",
                    shell.name(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

#[test]
fn the_sqlite_capture_readme_is_reviewed() {
    let (_, b) = prepared("sqlite", &plan_text("sqlite"));
    let readme = String::from_utf8(b.files["README.md"].bytes.clone()).expect("utf-8");
    insta::assert_snapshot!("capture_readme_sqlite", readme);
}

#[test]
fn golden_rollback_libraries_hold_no_capture_code() {
    for (name, path) in common::plans() {
        let text = std::fs::read_to_string(&path).expect("read plan");
        let b = rewind::compiler::build(&SourceFile::new(name.clone(), text), None)
            .unwrap_or_else(|d| panic!("{name}: {d:?}"));
        for (p, f) in &b.files {
            if rewind::render::Library::is_library(p) {
                let text = String::from_utf8_lossy(&f.bytes);
                assert!(!text.contains("capture_start"), "{name}: {p}");
            }
        }
    }
}

#[test]
fn prepare_refuses_a_bad_name_and_a_recovery_plan() {
    let source = SourceFile::new("sqlite.toml", plan_text("sqlite"));
    assert!(matches!(
        prepare::prepare(&source, None, Some("../x")),
        Err(Refused::Other(_))
    ));
    let named = prepare::prepare(&source, None, Some("before-1.30")).expect("a good name");
    assert_eq!(named.name, "before-1.30");
    assert!(
        named.dir.ends_with("/edge-17/capture/before-1.30"),
        "{}",
        named.dir
    );
    let recovery =
        std::fs::read_to_string(common::repo().join("plans/rancher-recovery.toml")).expect("plan");
    let source = SourceFile::new("recovery.toml", recovery);
    match prepare::prepare(&source, None, None) {
        Err(Refused::Other(why)) => assert!(why.contains("[recovery]"), "{why}"),
        other => panic!("a recovery plan was prepared: {:?}", other.map(|p| p.name)),
    }
    // A K3s plan (with its own [snapshot] and [token]) is prepared as K3s.
    let k3s = std::fs::read_to_string(common::repo().join("plans/k3s-sqlite.toml")).expect("plan");
    let source = SourceFile::new("k3s.toml", k3s);
    match prepare::prepare(&source, None, None) {
        Ok(p) => assert_eq!(p.plan.distribution, "k3s"),
        Err(e) => panic!("a K3s plan was refused: {e:?}"),
    }
    // A plan that is wrong for other reasons is refused with its diagnostics.
    let bad = plan_text("sqlite").replace(
        "target-version = \"v1.29.6+rke2r1\"",
        "target-version = \"v1.31.0+rke2r1\"",
    );
    let source = SourceFile::new("bad.toml", bad);
    match prepare::prepare(&source, None, None) {
        Err(Refused::Plan(_, d)) => {
            assert!(
                d.iter()
                    .any(|d| d.code == rewind::diagnostic::Code::Direction),
                "{d:?}"
            );
        }
        _ => panic!("a plan with a newer target was prepared"),
    }
}

// ---- the sandbox ----------------------------------------------------------------

/// The world of a prepare plan: its hosts seeded by the harness from the
/// plan with a stand-in `[snapshot]` (the harness seeds hosts from a
/// rollback plan), then put back BEFORE the upgrade: the target installed.
fn world_before_upgrade(name: &str, text: &str, target: &str, shell: Shell) -> World {
    let standin = if text.contains("[snapshot.s3]\n") {
        text.replace(
            "[snapshot]\n",
            &format!("[snapshot]\ntaken-on = \"{target}\"\n"),
        )
        .replace("[snapshot.s3]\n", "[snapshot.s3]\nname = \"stand-in\"\n")
    } else {
        format!(
            "{text}\n[snapshot]\npath = \"/root/rke2-backup/stand-in\"\ntaken-on = \"{target}\"\n"
        )
    };
    let w = World::compile(name, &standin, shell)
        .unwrap_or_else(|d| panic!("{name}: stand-in plan refused: {d:?}"));
    install_everywhere(&w, target);
    w
}

/// Installs `version` of the plan's product (rke2, or k3s with its units)
/// on every node: "before the upgrade" and "the upgrade".
fn install_everywhere(w: &World, version: &str) {
    for (node, role, _) in w.facts().nodes.clone() {
        if w.facts().k3s() {
            seed::install_k3s(w.host(&node), w.facts(), role, version);
        } else {
            seed::install_rke2(w.host(&node), w.facts(), version);
        }
    }
}

/// Puts the capture bundle at /rewind-test/capture/ of every host and runs
/// its scripts in README order (REWIND_YES=1); every run must succeed.
fn run_capture(w: &World, b: &Bundle, p: &Prepared) -> Vec<ScriptRun> {
    let dir = w.test.join("capture");
    for (path, f) in &b.files {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, &f.bytes).expect("write");
        std::fs::set_permissions(
            &file,
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(f.mode),
        )
        .expect("chmod");
    }
    // Every host rehearses its capture first (host.sh of the bundle).
    for s in p.plan.steps.iter().flat_map(|s| &s.scripts) {
        let host = s.host.name().to_owned();
        let mut args = vec!["rehearse"];
        if host == "workstation" {
            args.extend(["--node", "workstation"]);
        }
        let r = w.run_args_on(&host, "../capture/host.sh", &args, &[], Launch::default());
        assert_eq!(r.run.code, 0, "rehearsal of the capture:\n{}", r.describe());
    }
    let mut runs = Vec::new();
    for step in &p.plan.steps {
        for s in &step.scripts {
            let host = s.host.name().to_owned();
            // A dry run first: it says so and changes no file of any host.
            let before = w.digest();
            let dry = w.run_args_on(
                &host,
                &format!("../capture/{}", s.path),
                &[],
                &[("REWIND_DRY_RUN", "1")],
                Launch::default(),
            );
            assert!(
                dry.run.code == 0 && dry.run.stdout.contains("DRY RUN"),
                "dry run of the capture:\n{}",
                dry.describe()
            );
            assert!(
                w.digest() == before,
                "the dry run of {} changed files:\n{}",
                s.path,
                dry.describe()
            );
            let r = w.run_args_on(
                &host,
                &format!("../capture/{}", s.path),
                &[],
                &[("REWIND_YES", "1")],
                Launch::default(),
            );
            assert_eq!(r.run.code, 0, "capture failed:\n{}", r.describe());
            let again = w.run_args_on(
                &host,
                &format!("../capture/{}", s.path),
                &[],
                &[("REWIND_YES", "1")],
                Launch::default(),
            );
            assert!(
                again.run.code == 0 && again.run.stdout.contains("already done"),
                "a finished capture step run again:\n{}",
                again.describe()
            );
            runs.push(r);
        }
    }
    runs
}

/// The facts every host wrote.
fn read_facts(w: &World, p: &Prepared) -> Vec<HostFacts> {
    let mut out = Vec::new();
    for s in p.plan.steps.iter().flat_map(|s| &s.scripts) {
        let host = s.host.name();
        let path = format!("{}/facts/{host}.json", p.dir);
        let bytes = w
            .host(host)
            .read(&path)
            .unwrap_or_else(|| panic!("{host} wrote no {path}"));
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{host}: {path} is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        out.push(HostFacts {
            source: format!("{host}.json"),
            json,
        });
    }
    out
}

/// The plan written from `facts` passes `check` with zero findings, through
/// the command line too (`rewind plan --from-facts DIR --out FILE`, then
/// `rewind check FILE`).
fn plan_from(facts: &[HostFacts]) -> String {
    let text = from_facts::plan(facts, &Options::default())
        .unwrap_or_else(|e| panic!("plan --from-facts refused: {e:?}"));
    let checked = rewind::validate::check(&SourceFile::new("rollback.toml", text.clone()), None);
    assert!(checked.model.is_some(), "{:?}\n{text}", checked.diagnostics);
    assert!(
        checked.diagnostics.is_empty(),
        "the plan from facts has findings: {:?}\n{text}",
        checked.diagnostics
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("facts");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for f in facts {
        std::fs::write(
            dir.join(&f.source),
            serde_json::to_vec(&f.json).expect("json"),
        )
        .expect("write facts");
    }
    let out = tmp.path().join("rollback.toml");
    let run = common::rewind(tmp.path())
        .args(["plan", "--from-facts"])
        .arg(&dir)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run rewind plan");
    common::assert_code(&run, 0);
    assert_eq!(
        std::fs::read_to_string(&out).expect("read the plan"),
        text,
        "the command line wrote another plan"
    );
    let run = common::rewind(tmp.path())
        .arg("check")
        .arg(&out)
        .output()
        .expect("run rewind check");
    common::assert_code(&run, 0);
    assert!(
        run.stderr.is_empty(),
        "rewind check printed findings:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    text
}

/// Field `key` of a host's facts.
fn fact<'a>(facts: &'a [HostFacts], host: &str, key: &str) -> &'a serde_json::Value {
    let f = facts
        .iter()
        .find(|f| f.json["host"] == host)
        .unwrap_or_else(|| panic!("no facts of {host}"));
    &f.json[key]
}

#[test]
fn sqlite_round_trip_under_dash() {
    sqlite_round_trip("sqlite", Shell::Dash);
}

#[test]
fn sqlite_round_trip_under_posh() {
    sqlite_round_trip("sqlite", Shell::Posh);
}

#[test]
fn sqlite_round_trip_under_yash() {
    sqlite_round_trip("sqlite", Shell::Yash);
}

#[test]
fn sqlite_round_trip_under_mksh() {
    sqlite_round_trip("sqlite", Shell::Mksh);
}

#[test]
fn sqlite_round_trip_under_busybox() {
    sqlite_round_trip("sqlite", Shell::Busybox);
}

#[test]
fn sqlite_round_trip_under_bash() {
    sqlite_round_trip("sqlite", Shell::Bash);
}

/// K3s on SQLite: the same round trip with K3s's names (k3s, its unit and
/// .service.env, /var/lib/rancher/k3s, K3S_*).
#[test]
fn k3s_sqlite_round_trip_under_dash() {
    sqlite_round_trip("k3s-sqlite", Shell::Dash);
}

/// The plan's `current-version` and `target-version`.
fn versions(text: &str) -> (String, String) {
    let t: toml::Table = text.parse().expect("the plan is TOML");
    let v = |k: &str| {
        t["cluster"][k]
            .as_str()
            .unwrap_or_else(|| panic!("no {k}"))
            .to_owned()
    };
    (v("current-version"), v("target-version"))
}

/// Prepare, capture, plan from the facts, upgrade, roll back: the
/// single-server SQLite plan `name` (RKE2 or K3s), under `shell` (the
/// capture and the rollback scripts alike).
fn sqlite_round_trip(name: &str, shell: Shell) {
    let text = plan_text(name);
    let (current, target) = versions(&text);
    let (current, target) = (current.as_str(), target.as_str());
    let mut w = world_before_upgrade(name, &text, target, shell);
    let node = w.facts().nodes[0].0.clone();
    let node = node.as_str();
    let db = format!("{}/server/db/state.db", w.facts().data_dir);
    let db = db.as_str();
    let h = w.host(node);
    // Before the upgrade: the kine database of the fixture, no side files.
    h.write(db, seed::fixture("sqlite/state.db"), 0o600);
    for side in ["-wal", "-shm"] {
        let p = h.disk(&format!("{db}{side}"));
        if p.exists() {
            std::fs::remove_file(p).expect("remove a side file");
        }
    }
    let (p, b) = prepared(name, &text);
    let runs = run_capture(&w, &b, &p);
    assert!(
        runs.iter()
            .any(|r| r.run.stdout.contains("integrity_check: ok")),
        "{}",
        runs[0].describe()
    );
    let facts = read_facts(&w, &p);
    assert_eq!(
        fact(&facts, node, "distribution"),
        w.facts().flavor.distribution
    );
    assert_eq!(fact(&facts, node, "version"), target);
    assert_eq!(fact(&facts, node, "server-entry"), false);
    assert_eq!(fact(&facts, node, "token-source"), "server/token");
    let copy = fact(&facts, node, "backup")["path"]
        .as_str()
        .expect("backup path")
        .to_owned();
    let captured = h.read(&copy).expect("the copy");
    assert_eq!(
        fact(&facts, node, "backup")["sha256"],
        seed::sha256(&captured).as_str()
    );
    let token = fact(&facts, node, "token")["file"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(h.read(&token), Some(seed::fixture("token")));
    let all = String::from_utf8_lossy(
        &h.read(&format!("{}/facts/{node}.json", p.dir))
            .expect("facts"),
    )
    .into_owned();
    assert!(common::secrets_in(&all).is_empty(), "{all}");
    assert!(
        !all.contains(String::from_utf8_lossy(&seed::fixture("token")).trim()),
        "the token leaked into the facts"
    );

    let plan = plan_from(&facts);
    assert!(plan.contains(&format!("taken-on = \"{target}\"")), "{plan}");
    assert!(
        plan.contains(&format!(
            "distribution = \"{}\"",
            w.facts().flavor.distribution
        )) || !w.facts().k3s(),
        "{plan}"
    );

    // The upgrade: the new version, and rows written after the capture.
    install_everywhere(&w, current);
    let live = w.host(node).disk(db);
    let st = std::process::Command::new(common::require_tool("sqlite3"))
        .arg(&live)
        .arg("INSERT INTO kine(name,created,deleted,create_revision,prev_revision,lease,value) VALUES('/registry/after-upgrade',1,0,99,0,0,'new');")
        .status()
        .expect("sqlite3");
    assert!(st.success());
    assert_ne!(std::fs::read(&live).expect("db"), captured);

    w.rebundle(&plan).unwrap_or_else(|d| panic!("{d:?}"));
    if let Err(runs) = w.walk(&[]) {
        panic!(
            "the rollback stopped:\n{}",
            runs.last().expect("a run").describe()
        );
    }
    let h = w.host(node);
    assert_eq!(
        h.read(db),
        Some(captured),
        "the database is not the captured copy"
    );
    let path = w.facts().binary();
    let bin = String::from_utf8(h.read(&path).expect("the binary")).expect("text");
    assert!(
        bin.contains(&format!("RKE2_STUB_VERSION={target}")),
        "{path} is not {target}"
    );
}

#[test]
fn etcd_round_trip_prepare_upgrade_rollback() {
    etcd_round_trip(
        "etcd",
        "v1.29.4+rke2r1",
        "v1.28.9+rke2r1",
        &["server-2", "server-3"],
        &["agent-1", "agent-2"],
    );
}

/// The snapshot is uploaded to S3 as it is taken; the rollback plan names
/// the object, and cluster-reset restores it from there.
#[test]
fn etcd_s3_round_trip_prepare_upgrade_rollback() {
    etcd_round_trip(
        "etcd-s3",
        "v1.30.2+rke2r1",
        "v1.29.6+rke2r1",
        &["cp-2", "cp-3"],
        &["worker-1"],
    );
}

/// K3s on embedded etcd: `k3s etcd-snapshot save` on the init server,
/// `server:` entries on the others, and the rollback of K3s.
#[test]
fn k3s_etcd_round_trip_prepare_upgrade_rollback() {
    etcd_round_trip(
        "k3s-etcd",
        "v1.29.4+k3s1",
        "v1.28.9+k3s1",
        &["server-2", "server-3"],
        &["agent-1", "agent-2"],
    );
}

/// K3s nodes joined as K3s's install script joins them: `server` moves
/// from config.yaml to K3S_URL in the unit's .service.env (on a joining
/// server), and `token` to K3S_TOKEN (on an agent). Returns the env files
/// written (node, path, text), which the "upgrade" writes again.
fn k3s_settings_in_env(w: &World, server: &str, agent: &str) -> Vec<(String, String, String)> {
    let f = w.facts();
    let mut written = Vec::new();
    for (node, key, var) in [(server, "server", "K3S_URL"), (agent, "token", "K3S_TOKEN")] {
        let h = w.host(node);
        let config = f.config_file();
        let text = String::from_utf8(h.read(&config).expect("config.yaml")).expect("text");
        let (set, rest): (Vec<&str>, Vec<&str>) = text
            .lines()
            .partition(|l| l.starts_with(&format!("{key}:")));
        let value = set
            .first()
            .unwrap_or_else(|| panic!("{node}: no {key}: in {config}"))
            .split_once(':')
            .expect("key: value")
            .1
            .trim();
        h.write(&config, format!("{}\n", rest.join("\n")), 0o600);
        let env = format!("{}/{}.service.env", f.unit_dir(), f.unit(f.role(node)));
        let text = format!("K3S_KUBECONFIG_MODE=644\n{var}={value}\n");
        h.write(&env, &text, 0o600);
        written.push((node.to_owned(), env, text));
    }
    written
}

/// Prepare, capture, plan from the facts, upgrade, roll back: embedded
/// etcd, init server `server-1` or `cp-1`, then `servers`, `agents`.
fn etcd_round_trip(name: &str, current: &str, target: &str, servers: &[&str], agents: &[&str]) {
    let text = plan_text(name);
    let init = if name == "etcd-s3" {
        "cp-1"
    } else {
        "server-1"
    };
    let mut w = world_before_upgrade(name, &text, target, Shell::Dash);
    let env_files = if w.facts().k3s() {
        k3s_settings_in_env(&w, servers[0], agents[0])
    } else {
        Vec::new()
    };
    let (p, b) = prepared(name, &text);
    let runs = run_capture(&w, &b, &p);
    let snap = runs
        .iter()
        .find(|r| r.host == init)
        .expect("the init server captured");
    assert!(
        snap.run.stdout.contains("sha256 trailer matches"),
        "{}",
        snap.describe()
    );
    assert!(
        snap.calls
            .iter()
            .any(|c| c.to_string().contains("<etcd-snapshot> <save>")),
        "{}",
        snap.describe()
    );
    let facts = read_facts(&w, &p);
    let backup = fact(&facts, init, "backup");
    let path = backup["path"].as_str().expect("path");
    assert!(
        path.starts_with(&format!(
            "{}/server/db/snapshots/{}-{init}-",
            w.facts().data_dir,
            p.name
        )),
        "{path}"
    );
    assert_eq!(backup["kind"], "etcd");
    assert_eq!(
        fact(&facts, init, "distribution"),
        w.facts().flavor.distribution
    );
    for n in servers {
        assert_eq!(fact(&facts, n, "server-entry"), true, "{n}");
        assert!(fact(&facts, n, "backup").is_null(), "{n}");
    }
    for n in agents {
        assert!(fact(&facts, n, "token").is_null(), "{n}");
        assert_eq!(fact(&facts, n, "version"), target);
    }
    if w.facts().k3s() {
        // Read from the units' .service.env, as K3s's install script
        // writes them: K3S_URL is a server: entry, K3S_TOKEN the token.
        assert_eq!(fact(&facts, agents[0], "token-source"), "env:K3S_TOKEN");
        assert_eq!(fact(&facts, agents[1], "token-source"), "config:token");
    }
    let plan = plan_from(&facts);
    assert!(plan.contains("init = true"), "{plan}");

    // The upgrade (K3s's install script keeps the units' variables).
    install_everywhere(&w, current);
    for (node, path, text) in &env_files {
        w.host(node).write(path, text, 0o600);
    }
    w.rebundle(&plan).unwrap_or_else(|d| panic!("{d:?}"));
    let runs = match w.walk(&[]) {
        Ok(runs) => runs,
        Err(runs) => panic!(
            "the rollback stopped:\n{}",
            runs.last().expect("a run").describe()
        ),
    };
    let reset = runs
        .iter()
        .flat_map(|r| &r.calls)
        .map(ToString::to_string)
        .find(|c| c.contains("--cluster-reset"))
        .expect("a cluster-reset");
    let object = path.rsplit('/').next().expect("a file name");
    assert!(
        reset.contains(if name == "etcd-s3" { object } else { path }),
        "{reset}"
    );
    let binary = w.facts().binary();
    for node in w.facts().nodes.iter().map(|n| n.0.clone()) {
        let bin =
            String::from_utf8(w.host(&node).read(&binary).expect("the binary")).expect("text");
        assert!(
            bin.contains(&format!("RKE2_STUB_VERSION={target}")),
            "{node}: {binary}"
        );
    }
}

// ---- facts → plan refusals -------------------------------------------------------

fn synthetic(host: &str, role: &str, cluster: &str, capture: &str) -> HostFacts {
    let mut json = serde_json::json!({
        "rewind-facts": 1,
        "cluster": cluster,
        "capture": capture,
        "plan-sha256": "0".repeat(64),
        "distribution": "rke2",
        "host": host,
        "role": role,
        "expected-version": "v1.28.9+rke2r1",
        "upgrade-to": "v1.29.4+rke2r1",
        "data-dir": "/var/lib/rancher/rke2",
        "datastore": "etcd",
        "version": "v1.28.9+rke2r1",
        "server-entry": host != "s1",
        "token-source": "server/token",
        "plan": {
            "cluster": {"name": cluster, "current-version": "v1.29.4+rke2r1", "target-version": "v1.28.9+rke2r1"},
            "drain": {"enabled": false},
            "nodes": [
                {"name": "s1", "role": "server", "init": true},
                {"name": "s2", "role": "server"},
                {"name": "a1", "role": "agent"}
            ]
        }
    });
    if role == "server" {
        json["token"] = serde_json::json!({"file": "/t", "sha256": "a".repeat(64)});
    }
    if host == "s1" {
        json["backup"] =
            serde_json::json!({"kind": "etcd", "path": "/s", "size": 10, "sha256": "b".repeat(64)});
    }
    HostFacts {
        source: format!("{host}.json"),
        json,
    }
}

#[test]
fn plan_from_facts_refuses_mixed_and_missing_facts() {
    let good = vec![
        synthetic("s1", "server", "c", "cap"),
        synthetic("s2", "server", "c", "cap"),
        synthetic("a1", "agent", "c", "cap"),
    ];
    let text = from_facts::plan(&good, &Options::default()).expect("accepted");
    let checked = rewind::validate::check(&SourceFile::new("p.toml", text.clone()), None);
    assert!(
        checked.diagnostics.is_empty(),
        "{:?}\n{text}",
        checked.diagnostics
    );

    let mut other = good.clone();
    other[2] = synthetic("a1", "agent", "other", "cap");
    let e = from_facts::plan(&other, &Options::default()).expect_err("mixed clusters");
    assert!(e.join(" ").contains("different clusters"), "{e:?}");

    let mut other = good.clone();
    other[1] = synthetic("s2", "server", "c", "cap2");
    let e = from_facts::plan(&other, &Options::default()).expect_err("mixed captures");
    assert!(e.join(" ").contains("different captures"), "{e:?}");

    let e = from_facts::plan(&good[..2], &Options::default()).expect_err("a1 missing");
    assert!(e.join(" ").contains("no facts from a1"), "{e:?}");

    let mut other = good.clone();
    other[1].json["version"] = "v1.29.4+rke2r1".into();
    let e = from_facts::plan(&other, &Options::default()).expect_err("versions differ");
    assert!(e.join(" ").contains("different versions"), "{e:?}");

    let mut other = good.clone();
    other[1].json["token"]["sha256"] = "c".repeat(64).into();
    let e = from_facts::plan(&other, &Options::default()).expect_err("tokens differ");
    assert!(e.join(" ").contains("different server tokens"), "{e:?}");

    let mut other = good;
    other[1].json["server-entry"] = false.into();
    let e = from_facts::plan(&other, &Options::default()).expect_err("two init servers");
    assert!(e.join(" ").contains("no server: entry"), "{e:?}");
}

// ---- real PostgreSQL and MariaDB -----------------------------------------------

/// Runs the workstation step of a capture bundle for an external database
/// and returns its facts.
fn capture_database(text: &str, base: &Path) -> (Prepared, serde_json::Value, real::sandbox::Host) {
    let (p, b) = prepared("db", text);
    let dir = base.join("capture");
    let utf8 = camino::Utf8PathBuf::from_path_buf(dir.clone()).expect("utf-8");
    rewind::bundle::write(&b, &utf8, false).expect("write the capture bundle");
    let ws = real::sandbox::Host::new(&base.join("hosts"), "workstation");
    let script = p.plan.steps[0].scripts[0].path.clone();
    assert!(script.starts_with("workstation/"), "{script}");
    let run = ws.script(&dir.join(&script), &[]);
    run.assert_ok("capture-database");
    let facts = std::fs::read(ws.inside(&format!("{}/facts/workstation.json", p.dir)))
        .expect("the workstation's facts");
    let json: serde_json::Value = serde_json::from_slice(&facts).expect("JSON facts");
    (p, json, ws)
}

#[test]
fn postgres_capture_dumps_the_real_database() {
    let t = tempfile::tempdir().expect("tempdir");
    let pg = real::postgres::Postgres::start();
    pg.create_kine_db("rke2", 200);
    let text = format!(
        "[cluster]\nname = \"pg-test\"\ncurrent-version = \"v1.29.4+rke2r1\"\ntarget-version = \"v1.28.9+rke2r1\"\n\n\
         [datastore]\nkind = \"postgres\"\nhost = \"127.0.0.1\"\nport = {}\ndatabase = \"rke2\"\nuser = \"postgres\"\n\n\
         [drain]\nenabled = false\n\n[[nodes]]\nname = \"server-1\"\nrole = \"server\"\n",
        pg.port
    );
    let (p, facts, ws) = capture_database(&text, t.path());
    let backup = &facts["backup"];
    assert_eq!(backup["kind"], "postgres");
    let path = backup["path"].as_str().expect("path");
    assert_eq!(path, format!("{}/rke2.dump", p.dir));
    let file = ws.inside(path);
    assert_eq!(backup["sha256"], real::sha256_file(&file).as_str());
    // The dump restores: a fresh database from it has the same rows.
    let before = pg.fingerprint("rke2");
    pg.sql("rke2", "DELETE FROM kine WHERE id > 10;");
    pg.restore(&file);
    assert_eq!(pg.fingerprint("rke2"), before);
}

#[test]
fn mysql_capture_dumps_the_real_database() {
    let t = tempfile::tempdir().expect("tempdir");
    let my = real::mariadb::Mariadb::start();
    my.create_kine_db("kine", 200);
    let text = format!(
        "[cluster]\nname = \"my-test\"\ncurrent-version = \"v1.29.4+rke2r1\"\ntarget-version = \"v1.28.9+rke2r1\"\n\n\
         [datastore]\nkind = \"mysql\"\nhost = \"127.0.0.1\"\nport = {}\ndatabase = \"kine\"\nuser = \"root\"\n\n\
         [drain]\nenabled = false\n\n[[nodes]]\nname = \"server-1\"\nrole = \"server\"\n",
        my.port
    );
    let (p, facts, ws) = capture_database(&text, t.path());
    let backup = &facts["backup"];
    assert_eq!(backup["kind"], "mysql");
    let path = backup["path"].as_str().expect("path");
    assert_eq!(path, format!("{}/kine.sql", p.dir));
    let file = ws.inside(path);
    assert_eq!(backup["sha256"], real::sha256_file(&file).as_str());
    let dump = std::fs::read_to_string(&file).expect("dump");
    assert!(dump.contains("-- Dump completed"), "incomplete dump");
    let before = my.fingerprint("kine");
    my.sql("DELETE FROM kine.kine WHERE id > 10;");
    my.replay("kine", &file);
    assert_eq!(my.fingerprint("kine"), before);
}

/// The init server's capture with a stand-in rke2 whose `etcd-snapshot save`
/// is a real `etcdctl snapshot save` of a real etcd (`damage`: then one byte
/// of the body is flipped, as a torn copy would be).
fn etcd_capture(
    damage: bool,
) -> (
    real::sandbox::Run,
    Prepared,
    real::sandbox::Host,
    tempfile::TempDir,
) {
    let t = tempfile::tempdir().expect("tempdir");
    let etcd = real::etcd::Etcd::start();
    etcd.put_keys(50);
    let text = "[cluster]\nname = \"etcd-test\"\ncurrent-version = \"v1.29.4+rke2r1\"\ntarget-version = \"v1.28.9+rke2r1\"\n\n\
                [drain]\nenabled = false\n\n[[nodes]]\nname = \"server-1\"\nrole = \"server\"\ninit = true\n";
    let (p, b) = prepared("etcd-test", text);
    let dir = t.path().join("capture");
    let utf8 = camino::Utf8PathBuf::from_path_buf(dir.clone()).expect("utf-8");
    rewind::bundle::write(&b, &utf8, false).expect("write the capture bundle");
    let h = real::sandbox::Host::new(&t.path().join("hosts"), "server-1");
    let flip = if damage {
        "printf 'X' | dd of=\"$f\" bs=1 seek=4096 conv=notrunc 2>/dev/null"
    } else {
        ":"
    };
    h.stub(
        "rke2",
        &format!(
            r#"case "${{1:-}}" in
--version) printf 'rke2 version v1.28.9+rke2r1 (0a1b2c3d)\ngo version go1.22.2 X:boringcrypto\n' ;;
etcd-snapshot)
	d=/var/lib/rancher/rke2/server/db/snapshots
	mkdir -p "$d"
	f=$d/$6-server-1-1716239400
	ETCDCTL_API=3 etcdctl --endpoints={} snapshot save "$f" >/dev/null
	{flip} ;;
*) exit 1 ;;
esac"#,
            etcd.endpoint()
        ),
    );
    h.put(
        "/etc/rancher/rke2/config.yaml",
        "write-kubeconfig-mode: \"0600\"\n",
    );
    h.put("/var/lib/rancher/rke2/server/token", seed::fixture("token"));
    let script = &p.plan.steps[0].scripts[0].path;
    let run = h.script(&dir.join(script), &[]);
    drop(etcd);
    (run, p, h, t)
}

#[test]
fn etcd_capture_records_a_real_snapshot_and_refuses_a_damaged_one() {
    let (run, p, h, _t) = etcd_capture(false);
    run.assert_ok("capture");
    let facts: serde_json::Value = serde_json::from_slice(
        &std::fs::read(h.inside(&format!("{}/facts/server-1.json", p.dir))).expect("facts"),
    )
    .expect("JSON");
    let path = facts["backup"]["path"].as_str().expect("path");
    let file = h.inside(path);
    assert_eq!(facts["backup"]["sha256"], real::sha256_file(&file).as_str());
    assert_eq!(
        facts["backup"]["size"].as_u64(),
        Some(real::size(&file) as u64)
    );
    let status = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "status"])
        .arg(&file)
        .output()
        .expect("etcdctl");
    assert!(
        status.status.success(),
        "etcdctl cannot read the captured snapshot"
    );
    assert!(
        run.stdout.contains("sha256 trailer matches"),
        "{}",
        run.all()
    );

    let (run, p, h, _t) = etcd_capture(true);
    assert_ne!(
        run.code,
        0,
        "a damaged snapshot was accepted:\n{}",
        run.all()
    );
    assert!(
        run.all().contains("does not match its content"),
        "{}",
        run.all()
    );
    assert!(
        !h.inside(&format!("{}/facts/server-1.json", p.dir)).exists(),
        "facts were written for a damaged snapshot"
    );
}

/// The facts a capture bundle's scripts would write: their heads as the
/// bundle carries them, and what the hosts would add (the version they
/// were to run, `server:` on every server but the init one, a token on
/// servers, a backup where the script takes one).
fn facts_from_heads(p: &Prepared) -> Vec<HostFacts> {
    use rewind::plan::Func;
    let mut facts = Vec::new();
    for s in p.plan.steps.iter().flat_map(|s| &s.scripts) {
        let start = s
            .actions
            .iter()
            .find(|o| o.func == Func::CaptureStart)
            .expect("capture_start");
        let mut json: serde_json::Value =
            serde_json::from_str(&format!("{}}}", &*start.args[2])).expect("the head is JSON");
        let host = s.host.name().to_owned();
        let init = json["plan"]["nodes"].as_array().is_some_and(|n| {
            n.iter()
                .any(|n| n["name"] == host.as_str() && n["init"] == true)
        });
        if json["distribution"] != "rke1" && json["role"] != "workstation" {
            json["version"] = json["expected-version"].clone();
            json["server-entry"] = (json["role"] == "server" && !init).into();
            json["token-source"] = "server/token".into();
        }
        for o in &s.actions {
            match o.func {
                Func::CaptureToken => {
                    json["token"] =
                        serde_json::json!({"file": &*o.args[1], "sha256": "cd".repeat(32)});
                }
                Func::CaptureEtcd
                | Func::CaptureSqlite
                | Func::CaptureBackup
                | Func::CaptureRke1File => {
                    json["backup"] = serde_json::json!({
                        "kind": "x",
                        "path": format!("/backup/{}", p.name),
                        "size": 100,
                        "sha256": "ab".repeat(32),
                    });
                }
                _ => {}
            }
        }
        facts.push(HostFacts {
            source: format!("{host}.json"),
            json,
        });
    }
    facts
}

/// Every datastore and RKE1: the facts of its capture give a plan that
/// `check` accepts with zero findings.
#[test]
fn facts_of_every_capture_give_a_plan_check_accepts() {
    for name in PLANS {
        let (p, _) = prepared(name, &plan_text(name));
        let text = from_facts::plan(&facts_from_heads(&p), &Options::default())
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let checked =
            rewind::validate::check(&SourceFile::new(format!("{name}.toml"), text.clone()), None);
        assert!(
            checked.model.is_some() && checked.diagnostics.is_empty(),
            "{name}: {:?}\n{text}",
            checked.diagnostics
        );
        if *name == "rke1" {
            assert!(text.contains(&format!("name = \"{}\"", p.name)), "{text}");
        }
        if K3S_PLANS.contains(name) {
            // A K3s plan, with K3s's versions and data dir, naming no rke2.
            assert!(text.contains("distribution = \"k3s\""), "{text}");
            assert!(text.contains("+k3s1\""), "{text}");
            assert!(
                !text.contains("data-dir") || text.contains("/var/lib/rancher/k3s"),
                "{text}"
            );
            assert!(!text.to_ascii_lowercase().contains("rke2"), "{text}");
            let Some(rewind::model::Model {
                kind: rewind::model::Kind::Rke2(r),
                ..
            }) = checked.model
            else {
                panic!("{name}: not an RKE2-kind model")
            };
            assert!(r.flavor.is_k3s(), "{name}");
        }
    }
}

/// A K3s capture bundle is K3s's through and through: no operation names
/// rke2 (binary, units, env files, config and data dirs), the library's
/// constants are K3s's (REWIND_BIN, REWIND_ENV, REWIND_PRODUCT: what the
/// capture fragment reads for K3S_URL, K3S_TOKEN…), its README names k3s,
/// and every facts head says `"distribution":"k3s"`.
#[test]
fn k3s_capture_scripts_name_nothing_of_rke2() {
    use rewind::plan::Func;
    for name in K3S_PLANS {
        let (p, b) = prepared(name, &plan_text(name));
        assert_eq!(p.plan.distribution, "k3s", "{name}");
        for step in &p.plan.steps {
            assert!(
                !step.title.to_ascii_lowercase().contains("rke2"),
                "{name}: {}",
                step.title
            );
            for s in &step.scripts {
                for op in s.preflight.iter().chain(&s.actions) {
                    for a in &op.args {
                        assert!(
                            !a.to_ascii_lowercase().contains("rke2"),
                            "{name}: {} on {}: `{}` {a}",
                            step.id,
                            s.host.name(),
                            op.func.name()
                        );
                    }
                    if op.func == Func::CaptureStart {
                        assert!(
                            op.args[2].contains("\"distribution\":\"k3s\""),
                            "{name}: {}",
                            &*op.args[2]
                        );
                    }
                    if op.func == Func::CaptureEtcd {
                        assert_eq!(&*op.args[0], "/usr/local/bin/k3s");
                        assert_eq!(&*op.args[3], "k3s", "the server unit");
                    }
                    if op.func == Func::CaptureConfig {
                        let unit = &*op.args[1];
                        assert!(matches!(unit, "k3s" | "k3s-agent"), "{unit}");
                        assert_eq!(
                            &*op.args[2],
                            format!("/etc/systemd/system/{unit}.service.env")
                        );
                    }
                }
            }
        }
        let constants: Vec<String> = p
            .plan
            .constants
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        for want in ["REWIND_BIN=k3s", "REWIND_ENV=K3S", "REWIND_PRODUCT=K3s"] {
            assert!(constants.iter().any(|c| c == want), "{name}: {constants:?}");
        }
        let readme = String::from_utf8_lossy(&b.files["README.md"].bytes).into_owned();
        assert!(
            !readme.to_ascii_lowercase().contains("rke2"),
            "{name}: the README names rke2:\n{readme}"
        );
    }
}

/// The command line: `prepare` writes a bundle `verify` accepts, refuses an
/// existing folder without `--force` (2), a bad name (2) and a rejected plan
/// (1, nothing written); `plan --from-facts` names a missing host (1).
#[test]
fn the_command_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plan = common::repo().join("tests/prepare/etcd.toml");
    let out = tmp.path().join("capture");
    let run = common::rewind(tmp.path())
        .arg("prepare")
        .arg(&plan)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("rewind prepare");
    common::assert_code(&run, 0);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("pre-upgrade-prod-east-"), "{stdout}");
    assert!(out.join("nodes/server-1/01-capture.sh").is_file());
    let run = common::rewind(tmp.path())
        .arg("verify")
        .arg(&out)
        .output()
        .expect("rewind verify");
    common::assert_code(&run, 0);
    let again = |extra: &[&str]| {
        common::rewind(tmp.path())
            .arg("prepare")
            .arg(&plan)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .expect("rewind prepare")
    };
    common::assert_code(&again(&[]), 2);
    common::assert_code(&again(&["--force"]), 0);
    common::assert_code(&again(&["--force", "--name", "../up"]), 2);
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        plan_text("sqlite").replace("name = \"edge-17\"\nrole", "name = \"Edge 17\"\nrole"),
    )
    .expect("write");
    let run = common::rewind(tmp.path())
        .arg("prepare")
        .arg(&bad)
        .arg("--out")
        .arg(tmp.path().join("never"))
        .output()
        .expect("rewind prepare");
    common::assert_code(&run, 1);
    assert!(!tmp.path().join("never").exists());

    let facts = tmp.path().join("facts");
    std::fs::create_dir_all(&facts).expect("mkdir");
    let mut f = synthetic("s1", "server", "c", "cap");
    std::fs::write(
        facts.join("s1.json"),
        serde_json::to_vec(&f.json).expect("json"),
    )
    .expect("write");
    f = synthetic("a1", "agent", "c", "cap");
    std::fs::write(
        facts.join("a1.json"),
        serde_json::to_vec(&f.json).expect("json"),
    )
    .expect("write");
    let run = common::rewind(tmp.path())
        .args(["plan", "--from-facts"])
        .arg(&facts)
        .output()
        .expect("rewind plan");
    common::assert_code(&run, 1);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("no facts from s2"), "{stderr}");
    assert!(run.stdout.is_empty(), "a plan was printed");
}

/// A token file the plan names that already exists (an older token) is
/// moved aside, not overwritten; the facts name the new copy.
#[test]
fn an_existing_token_file_is_kept_aside() {
    let text = format!(
        "{}\n[token]\nfile = \"/root/rke2-backup/token\"\n",
        plan_text("sqlite")
    );
    let target = "v1.29.6+rke2r1";
    let w = world_before_upgrade("sqlite", &text, target, Shell::Dash);
    let h = w.host("edge-17");
    h.write("/root/rke2-backup/token", "an older token\n", 0o600);
    let (p, b) = prepared("sqlite", &text);
    run_capture(&w, &b, &p);
    let facts = read_facts(&w, &p);
    assert_eq!(
        fact(&facts, "edge-17", "token")["file"],
        "/root/rke2-backup/token"
    );
    assert_eq!(
        h.read("/root/rke2-backup/token"),
        Some(seed::fixture("token"))
    );
    assert_eq!(
        h.read(&format!("/root/rke2-backup/token.{}", p.plan.suffix)),
        Some(b"an older token\n".to_vec())
    );
}
