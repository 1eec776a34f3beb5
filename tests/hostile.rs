//! Hostile plan values (issue 3, item 7; docs/security-model.md): a property test
//! over every string field of the plan. Each case puts a value made of
//! quotes, `$(…)`, backquotes, `;`, `&`, `|`, newlines, spaces, globs and
//! non-ASCII text into one field of a small reference plan. Either the plan
//! is refused with a diagnostic, or the compiled scripts, run in the sandbox
//! (`tests/sandbox/`) up to the step that uses the field, hand the value to
//! the stand-in command as exactly one argument, byte for byte, and nothing
//! of it is executed (the `$(…)` and backquote payloads would create
//! `/rewind-test/PWNED`).
//!
//! The number of cases is `HOSTILE_CASES` (default 48); the test prints how
//! many it ran, how many plans were refused and how many were run.

mod common;
#[path = "sandbox/mod.rs"]
#[allow(dead_code)] // each test crate uses part of the harness
mod harness;

use std::cell::RefCell;

use harness::shells::Shell;
use harness::stubs::{Call, Fault};
use harness::world::World;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// A file that the payloads `$(touch …)` and `` `touch …` `` would create.
const PWNED: &str = "/rewind-test/PWNED";

/// The pieces hostile values are made of.
const PIECES: &[&str] = &[
    "'",
    "\"",
    "$(touch /rewind-test/PWNED)",
    "`touch /rewind-test/PWNED`",
    ";",
    "&",
    "|",
    "\n",
    " ",
    "*",
    "?",
    "[a-z]",
    "é",
    "日本",
    "🙂",
    "\\",
    "$HOME",
    "${IFS}",
    "~",
    "#",
    "--",
    "-x",
    "a",
    "b.c",
];

/// An etcd air-gap cluster: one init server, one agent.
const ETCD: &str = r#"
[cluster]
name = @cluster.name@
current-version = @cluster.current-version@
target-version = "v1.28.9+rke2r1"
data-dir = @cluster.data-dir@

[snapshot]
path = @snapshot.path@
taken-on = "v1.28.9+rke2r1"
sha256 = "124549039c040618e33217a80f5f4c86134fbd24bba3c21fdb8557a363fd7958"

[token]
file = @token.file@
sha256 = "4492bf12ccef106f5bd9f15dc968b678d5d09b21c5b574ff49593a59a8108387"

[install]
source = "airgap"
artifacts = @install.artifacts@
arch = @install.arch@

[drain]
kubeconfig = @drain.kubeconfig@
timeout = @drain.timeout@

[[nodes]]
name = @nodes.name@
role = "server"
init = true

[[nodes]]
name = "agent-1"
role = "agent"
"#;

/// The same etcd air-gap cluster on K3s (issue 15): the fields whose
/// values K3s's own operations carry (its binary's `--data-dir`, the
/// restore path, the token copied in place, the binary copied from the
/// artifacts).
const K3S: &str = r#"
[cluster]
name = "hostile-k3s"
distribution = "k3s"
current-version = "v1.29.4+k3s1"
target-version = "v1.28.9+k3s1"
data-dir = @cluster.data-dir@

[snapshot]
path = @snapshot.path@
taken-on = "v1.28.9+k3s1"
sha256 = "124549039c040618e33217a80f5f4c86134fbd24bba3c21fdb8557a363fd7958"

[token]
file = @token.file@
sha256 = "4492bf12ccef106f5bd9f15dc968b678d5d09b21c5b574ff49593a59a8108387"

[install]
source = "airgap"
artifacts = @install.artifacts@

[drain]
enabled = false

[[nodes]]
name = "server-1"
role = "server"
init = true

[[nodes]]
name = "agent-1"
role = "agent"
"#;

/// An etcd cluster whose snapshot is in S3.
const S3: &str = r#"
[cluster]
name = "hostile-s3"
current-version = "v1.30.2+rke2r1"
target-version = "v1.29.6+rke2r1"

[snapshot]
taken-on = "v1.29.6+rke2r1"

[snapshot.s3]
name = @snapshot.s3.name@
bucket = @snapshot.s3.bucket@
folder = @snapshot.s3.folder@
endpoint = @snapshot.s3.endpoint@
region = @snapshot.s3.region@

[token]
file = "/root/rke2-backup/token"

[[nodes]]
name = "server-1"
role = "server"
init = true
"#;

/// PostgreSQL, restored from the workstation.
const POSTGRES: &str = r#"
[cluster]
name = "hostile-pg"
current-version = "v1.29.4+rke2r1"
target-version = "v1.28.9+rke2r1"

[datastore]
kind = "postgres"
host = @datastore.host@
port = 5432
database = @datastore.database@
user = @datastore.user@
restore-on = @datastore.restore-on@

[snapshot]
path = "/srv/backups/rke2.dump"
taken-on = "v1.28.9+rke2r1"

[drain]
enabled = false

[[nodes]]
name = "server-1"
role = "server"
"#;

/// Rancher HA on RKE1.
const RKE1: &str = r#"
[cluster]
name = "hostile-rancher"
distribution = "rke1"
current-version = "v2.4.8"
target-version = "v2.4.5"

[rke]
binary = @rke.binary@
config = @rke.config@
kubeconfig = @rke.kubeconfig@
deployment = @rke.deployment@
container = @rke.container@

[snapshot]
name = @rke1.snapshot.name@
taken-on = "v2.4.5"

[[nodes]]
address = "10.0.1.11"
hostname = "rancher-1"
user = @nodes.user@
roles = ["controlplane", "etcd", "worker"]
"#;

/// Where a field's value must arrive: `(tool, how the argument looks)`.
type Reach = fn(&str) -> (&'static str, String);

/// One string field of a plan.
struct Field {
    /// `template.key` for messages.
    key: &'static str,
    /// The plan it is in.
    template: &'static str,
    /// The placeholder's default value.
    default: &'static str,
    /// Prefix for hostile values (`/srv/` for paths: a path stays a path).
    prefix: &'static str,
    /// The scripts to run, in order, once the plan compiles: (host, step id).
    scripts: &'static [(&'static str, &'static str)],
    /// The stand-in call that must carry the value, if one does.
    reach: Option<Reach>,
    /// What to change on the hosts first, if anything.
    prepare: Option<fn(&World)>,
}

const FIELDS: &[Field] = &[
    Field {
        key: "cluster.name",
        template: ETCD,
        default: "hostile",
        prefix: "",
        scripts: &[],
        reach: None,
        prepare: None,
    },
    Field {
        key: "cluster.current-version",
        template: ETCD,
        default: "v1.29.4+rke2r1",
        prefix: "",
        scripts: &[],
        reach: None,
        prepare: None,
    },
    Field {
        key: "cluster.data-dir",
        template: ETCD,
        default: "/var/lib/rancher/rke2",
        prefix: "/srv/",
        scripts: &[
            ("server-1", "stop"),
            ("server-1", "install"),
            ("server-1", "restore"),
        ],
        reach: Some(|v| ("rke2", format!("--data-dir={v}"))),
        prepare: None,
    },
    Field {
        key: "snapshot.path",
        template: ETCD,
        default: "/var/lib/rancher/rke2/server/db/snapshots/pre-upgrade",
        prefix: "/srv/",
        scripts: &[
            ("server-1", "stop"),
            ("server-1", "install"),
            ("server-1", "restore"),
        ],
        reach: Some(|v| ("rke2", format!("--cluster-reset-restore-path={v}"))),
        prepare: None,
    },
    Field {
        key: "token.file",
        template: ETCD,
        default: "/root/rke2-backup/token",
        prefix: "/srv/",
        scripts: &[
            ("server-1", "stop"),
            ("server-1", "install"),
            ("server-1", "restore"),
        ],
        reach: Some(|v| ("cp", v.to_owned())),
        prepare: Some(|w| {
            // A server token that differs from the saved one, so that the
            // restore copies the saved one in place.
            w.host("server-1").write(
                "/var/lib/rancher/rke2/server/token",
                "K10rotated::server:other\n",
                0o600,
            );
        }),
    },
    Field {
        key: "install.artifacts",
        template: ETCD,
        default: "/root/rke2-artifacts",
        prefix: "/srv/",
        scripts: &[("agent-1", "install")],
        reach: Some(|v| ("install.sh", format!("env:INSTALL_RKE2_ARTIFACT_PATH={v}"))),
        prepare: None,
    },
    Field {
        key: "install.arch",
        template: ETCD,
        default: "amd64",
        prefix: "",
        scripts: &[],
        reach: None,
        prepare: None,
    },
    Field {
        key: "drain.kubeconfig",
        template: ETCD,
        default: "/root/.kube/hostile.yaml",
        prefix: "/srv/",
        scripts: &[("workstation", "drain")],
        reach: Some(|v| ("kubectl", format!("--kubeconfig={v}"))),
        prepare: None,
    },
    Field {
        key: "drain.timeout",
        template: ETCD,
        default: "10m",
        prefix: "",
        scripts: &[],
        reach: None,
        prepare: None,
    },
    Field {
        key: "nodes.name",
        template: ETCD,
        default: "server-1",
        prefix: "",
        scripts: &[],
        reach: None,
        prepare: None,
    },
    Field {
        key: "cluster.data-dir",
        template: K3S,
        default: "/var/lib/rancher/k3s",
        prefix: "/srv/",
        scripts: &[
            ("server-1", "stop"),
            ("server-1", "install"),
            ("server-1", "restore"),
        ],
        reach: Some(|v| ("k3s", format!("--data-dir={v}"))),
        prepare: None,
    },
    Field {
        key: "snapshot.path",
        template: K3S,
        default: "/var/lib/rancher/k3s/server/db/snapshots/pre-upgrade",
        prefix: "/srv/",
        scripts: &[
            ("server-1", "stop"),
            ("server-1", "install"),
            ("server-1", "restore"),
        ],
        reach: Some(|v| ("k3s", format!("--cluster-reset-restore-path={v}"))),
        prepare: None,
    },
    Field {
        key: "token.file",
        template: K3S,
        default: "/root/k3s-backup/token",
        prefix: "/srv/",
        scripts: &[
            ("server-1", "stop"),
            ("server-1", "install"),
            ("server-1", "restore"),
        ],
        reach: Some(|v| ("cp", v.to_owned())),
        prepare: Some(|w| {
            w.host("server-1").write(
                "/var/lib/rancher/k3s/server/token",
                "K10rotated::server:other\n",
                0o600,
            );
        }),
    },
    Field {
        key: "install.artifacts",
        template: K3S,
        default: "/root/k3s-artifacts",
        prefix: "/srv/",
        scripts: &[("agent-1", "install")],
        reach: Some(|v| ("cp", format!("{v}/k3s"))),
        prepare: None,
    },
    Field {
        key: "snapshot.s3.name",
        template: S3,
        default: "pre-upgrade-1",
        prefix: "",
        scripts: &[
            ("server-1", "stop"),
            ("server-1", "install"),
            ("server-1", "restore"),
        ],
        reach: Some(|v| ("rke2", format!("--cluster-reset-restore-path={v}"))),
        prepare: None,
    },
    Field {
        key: "snapshot.s3.bucket",
        template: S3,
        default: "rke2-snapshots",
        prefix: "",
        scripts: &[
            ("server-1", "stop"),
            ("server-1", "install"),
            ("server-1", "restore"),
        ],
        reach: Some(|v| ("rke2", format!("--etcd-s3-bucket={v}"))),
        prepare: None,
    },
    Field {
        key: "snapshot.s3.folder",
        template: S3,
        default: "staging",
        prefix: "",
        scripts: &[
            ("server-1", "stop"),
            ("server-1", "install"),
            ("server-1", "restore"),
        ],
        reach: Some(|v| ("rke2", format!("--etcd-s3-folder={v}"))),
        prepare: None,
    },
    Field {
        key: "snapshot.s3.endpoint",
        template: S3,
        default: "s3.storage.internal:9000",
        prefix: "",
        scripts: &[
            ("server-1", "stop"),
            ("server-1", "install"),
            ("server-1", "restore"),
        ],
        reach: Some(|v| ("rke2", format!("--etcd-s3-endpoint={v}"))),
        prepare: None,
    },
    Field {
        key: "snapshot.s3.region",
        template: S3,
        default: "us-east-1",
        prefix: "",
        scripts: &[
            ("server-1", "stop"),
            ("server-1", "install"),
            ("server-1", "restore"),
        ],
        reach: Some(|v| ("rke2", format!("--etcd-s3-region={v}"))),
        prepare: None,
    },
    Field {
        key: "datastore.host",
        template: POSTGRES,
        default: "pg.db.internal",
        prefix: "",
        scripts: &[("workstation", "restore-db")],
        reach: Some(|v| ("pg_restore", format!("--host={v}"))),
        prepare: None,
    },
    Field {
        key: "datastore.user",
        template: POSTGRES,
        default: "rke2",
        prefix: "",
        scripts: &[("workstation", "restore-db")],
        reach: Some(|v| ("pg_restore", format!("--username={v}"))),
        prepare: None,
    },
    // The dump is of database rke2: any other name is refused by the script
    // before it changes anything (checked below), or by validation.
    Field {
        key: "datastore.database",
        template: POSTGRES,
        default: "rke2",
        prefix: "",
        scripts: &[("workstation", "restore-db")],
        reach: None,
        prepare: None,
    },
    Field {
        key: "datastore.restore-on",
        template: POSTGRES,
        default: "workstation",
        prefix: "",
        scripts: &[],
        reach: None,
        prepare: None,
    },
    Field {
        key: "rke.binary",
        template: RKE1,
        default: "/usr/local/bin/rke",
        prefix: "/srv/",
        scripts: &[("workstation", "restore")],
        reach: Some(|v| ("rke", format!("note:argv0={v}"))),
        prepare: None,
    },
    Field {
        key: "rke.config",
        template: RKE1,
        default: "/root/rancher/cluster.yml",
        prefix: "/srv/",
        scripts: &[("workstation", "restore")],
        reach: Some(|v| ("rke", v.to_owned())),
        prepare: None,
    },
    Field {
        key: "rke.kubeconfig",
        template: RKE1,
        default: "/root/rancher/kube_config_cluster.yml",
        prefix: "/srv/",
        scripts: &[("workstation", "set-image")],
        reach: Some(|v| ("kubectl", v.to_owned())),
        prepare: None,
    },
    Field {
        key: "rke.deployment",
        template: RKE1,
        default: "rancher",
        prefix: "",
        scripts: &[("workstation", "set-image")],
        reach: Some(|v| ("kubectl", format!("deployment/{v}"))),
        prepare: None,
    },
    Field {
        key: "rke.container",
        template: RKE1,
        default: "rancher",
        prefix: "",
        scripts: &[("workstation", "set-image")],
        reach: Some(|v| ("kubectl", format!("{v}=rancher/rancher:v2.4.5"))),
        prepare: None,
    },
    Field {
        key: "rke1.snapshot.name",
        template: RKE1,
        default: "pre-upgrade-2020-09-01",
        prefix: "",
        scripts: &[("workstation", "restore")],
        reach: Some(|v| ("rke", v.to_owned())),
        prepare: None,
    },
    Field {
        key: "nodes.user",
        template: RKE1,
        default: "rancher",
        prefix: "",
        scripts: &[],
        reach: None,
        prepare: None,
    },
];

/// The plan text with `field` set to `value` and every other field at its
/// default (TOML-quoted, so any text is a valid TOML string).
fn plan_with(field: &Field, value: &str) -> String {
    let mut text = field.template.to_owned();
    for f in FIELDS.iter().filter(|f| f.template == field.template) {
        let v = if f.key == field.key { value } else { f.default };
        text = text.replace(
            &format!("@{}@", f.key),
            &toml::Value::String(v.to_owned()).to_string(),
        );
    }
    assert!(
        !text.contains('@'),
        "a placeholder was not filled in:\n{text}"
    );
    text
}

/// True if a call carries `want` as one argument (`env:NAME=V` an
/// environment variable the stand-in recorded, `note:X` a fact it noted).
fn carries(c: &Call, want: &str) -> bool {
    if let Some(e) = want
        .strip_prefix("env:")
        .or_else(|| want.strip_prefix("note:"))
    {
        return c.env.iter().any(|x| x.as_slice() == e.as_bytes());
    }
    c.args.iter().any(|a| a.as_slice() == want.as_bytes())
}

/// How the cases went.
#[derive(Default)]
struct Tally {
    cases: usize,
    refused: usize,
    run: usize,
}

fn check_case(field: &Field, hostile: &str, tally: &RefCell<Tally>) -> Result<(), TestCaseError> {
    tally.borrow_mut().cases += 1;
    let value = format!("{}{hostile}", field.prefix);
    let text = plan_with(field, &value);
    let world = match World::compile("hostile", &text, Shell::Dash) {
        Err(diags) => {
            tally.borrow_mut().refused += 1;
            prop_assert!(
                diags
                    .iter()
                    .any(|d| matches!(d.severity, rewind::diagnostic::Severity::Error)),
                "{} = {value:?}: refused without an error diagnostic: {diags:?}",
                field.key
            );
            return Ok(());
        }
        Ok(w) => w,
    };
    tally.borrow_mut().run += 1;
    if let Some(prepare) = field.prepare {
        prepare(&world);
    }
    // Record what the real `cp` is given (the saved token is copied by it).
    world.set_faults(&[Fault {
        host: None,
        tool: "cp".into(),
        args: None,
        rc: 0,
    }]);
    let mut calls = Vec::new();
    let mut outputs = String::new();
    for (host, step) in field.scripts {
        let script = world
            .steps
            .iter()
            .filter(|s| s.id == *step)
            .flat_map(|s| s.scripts.iter())
            .find(|p| World::host_of(p) == *host)
            .unwrap_or_else(|| panic!("no step {step} on {host} in the plan of {}", field.key))
            .clone();
        let r = world.run(&script, &[("REWIND_YES", "1")]);
        outputs.push_str(&r.describe());
        calls.extend(r.calls);
    }
    prop_assert!(
        !world.test.join("PWNED").exists(),
        "{} = {value:?}: the value was executed as shell code:\n{outputs}",
        field.key
    );
    let _ = PWNED;
    if let Some(reach) = field.reach {
        let (tool, want) = reach(&value);
        prop_assert!(
            calls.iter().any(|c| c.tool == tool && carries(c, &want)),
            "{} = {value:?}: no call of {tool} carried {want:?} as one argument:\n{outputs}",
            field.key
        );
    } else if field.key == "datastore.database" {
        // The archive is of database rke2: refused before any change.
        prop_assert!(
            calls.iter().all(harness::checks::read_only) || value == "rke2",
            "{} = {value:?}: the restore of a dump of another database went on:\n{outputs}",
            field.key
        );
    }
    Ok(())
}

fn hostile_value() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 1..5).prop_map(|p| p.concat())
}

#[test]
fn hostile_values_are_refused_or_arrive_as_one_argument() {
    let cases = std::env::var("HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let tally = RefCell::new(Tally::default());
    let strategy = (0..FIELDS.len(), hostile_value());
    let result = runner.run(&strategy, |(i, v)| check_case(&FIELDS[i], &v, &tally));
    let t = tally.borrow();
    eprintln!(
        "hostile values: {} cases ({} plans refused by validation, {} compiled and run in the sandbox)",
        t.cases, t.refused, t.run
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        t.cases >= cases as usize,
        "ran {} cases, expected {cases}",
        t.cases
    );
}

/// Every field, with every piece alone: a deterministic sweep next to the
/// random cases (one compile per pair; the sandbox runs only for the pieces
/// that validation accepts and that are shell syntax).
#[test]
fn every_field_refuses_or_carries_each_piece() {
    let tally = RefCell::new(Tally::default());
    let mut failures = Vec::new();
    for field in FIELDS {
        for piece in [
            "$(touch /rewind-test/PWNED)",
            "it's a \"b\" `c` ;&| *?",
            "é日本🙂",
        ] {
            if let Err(e) = check_case(field, piece, &tally) {
                failures.push(e.to_string());
            }
        }
    }
    let t = tally.borrow();
    eprintln!(
        "hostile sweep: {} cases ({} refused, {} run)",
        t.cases, t.refused, t.run
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
