//! `rewind init --from-nodes` and `--from-rke` through the real binary: the
//! plans written from the hand-made fixtures in `tests/fixtures/import/`
//! (insta snapshots), that `rewind check` accepts them once their
//! `<FILL: …>` markers are filled in, that no masked value or secret ever
//! reaches the output, and the inputs that are refused (exit 1, nothing on
//! stdout).

mod common;

use std::fs;
use std::io::Write as _;
use std::process::{Output, Stdio};

use camino::{Utf8Path, Utf8PathBuf};
use common::{assert_code, describe, run};

const FIXTURES: &str = "tests/fixtures/import";
const RKE2: &str = "tests/fixtures/import/nodes-rke2.json";
const MIXED: &str = "tests/fixtures/import/nodes-mixed.json";
const K3S: &str = "tests/fixtures/import/nodes-k3s.json";
const K3S_HA: &str = "tests/fixtures/import/nodes-k3s-ha.json";
const K3S_SQLITE: &str = "tests/fixtures/import/nodes-k3s-sqlite.json";
const RKE1: &str = "tests/fixtures/import/rancher-cluster.yml";

/// The S3 keys written in `rancher-cluster.yml`: never read, never printed.
const RKE1_KEYS: &[&str] = &[
    "AKIAREWINDFIXTURE0042",
    "rewind-fixture-s3-secret-4f1d9a7c2e",
];

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

struct Scratch {
    _dir: tempfile::TempDir,
    root: Utf8PathBuf,
}

fn scratch() -> Scratch {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Utf8Path::from_path(dir.path())
        .expect("utf-8 temp path")
        .to_owned();
    Scratch { _dir: dir, root }
}

/// Everything that must never appear in what `init` prints: the mask RKE2
/// writes for a secret, the cluster file's S3 keys and SSH key paths, and
/// the canary secrets in rewind's environment.
fn leaks(text: &str) -> Vec<String> {
    let mut out = common::secrets_in(text);
    for s in ["********", "~/.ssh", "rancher_ed25519"]
        .iter()
        .chain(RKE1_KEYS)
    {
        if text.contains(s) {
            out.push(format!("`{s}`"));
        }
    }
    out
}

/// Runs `rewind init ARGS`, checks that nothing secret was printed.
#[track_caller]
fn init(args: &[&str]) -> Output {
    let mut all = vec!["init"];
    all.extend_from_slice(args);
    let out = run(&all);
    let printed = format!("{}{}", stdout(&out), stderr(&out));
    let leaked = leaks(&printed);
    assert!(leaked.is_empty(), "leaked {leaked:?}\n{}", describe(&out));
    out
}

/// Replaces the `<FILL: …>` markers of an imported plan with plausible
/// values; `init_on` uncomments `# init = true` on that node.
fn fill(text: &str, init_on: Option<&str>) -> String {
    let mut section = String::new();
    let mut node = String::new();
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with('[') {
            line.trim().clone_into(&mut section);
        }
        if let Some(name) = line.strip_prefix("name = \"")
            && section == "[[nodes]]"
        {
            name.trim_end_matches('"').clone_into(&mut node);
        }
        let rke1 = text.contains("distribution = \"rke1\"");
        let k3s = text.contains("distribution = \"k3s\"");
        let filled = if line == "# init = true" && init_on == Some(node.as_str()) {
            "init = true".to_owned()
        } else if let Some((key, _)) = line.split_once(" = \"<FILL: ") {
            let value = match (section.as_str(), key, rke1) {
                ("[cluster]", "name", _) => "lab",
                ("[cluster]", "current-version", true) => "v2.4.8",
                ("[cluster]", "target-version", true) | ("[snapshot]", "taken-on", true) => {
                    "v2.4.5"
                }
                ("[cluster]", "target-version", false) | ("[snapshot]", "taken-on", false)
                    if k3s =>
                {
                    "v1.28.9+k3s1"
                }
                ("[cluster]", "target-version", false) | ("[snapshot]", "taken-on", false) => {
                    "v1.28.9+rke2r1"
                }
                ("[snapshot]", "path", false) if k3s => "/root/k3s-backup/pre-upgrade",
                ("[snapshot]", "path", false) => "/data/rke2/server/db/snapshots/pre-upgrade",
                ("[snapshot]", "name", true) => "pre-upgrade-2020-09-01",
                ("[token]", "file", false) if k3s => "/root/k3s-backup/token",
                ("[token]", "file", false) => "/root/rke2-backup/token",
                ("[install]", "artifacts", false) if k3s => "/root/k3s-artifacts",
                ("[install]", "artifacts", false) => "/root/rke2-artifacts",
                ("[drain]", "kubeconfig", false) => "/root/.kube/config",
                ("[rke]", "deployment", true) => "rancher",
                ("[datastore]", "kind", false) => "postgres",
                ("[datastore]", "host", false) => "db.internal",
                ("[datastore]", "database" | "user", false) if k3s => "k3s",
                ("[datastore]", "database" | "user", false) => "rke2",
                other => panic!("a marker the test cannot fill: {other:?}"),
            };
            format!("{key} = \"{value}\"")
        } else {
            line.to_owned()
        };
        out.push_str(&filled);
        out.push('\n');
    }
    out
}

/// Writes `text` as `name` and runs `rewind check` on it.
fn check(s: &Scratch, name: &str, text: &str) -> Output {
    let path = s.root.join(name);
    fs::write(&path, text).expect("write plan");
    run(&["check", path.as_str()])
}

// ------------------------------------------------------------ the plans

#[test]
fn a_three_server_two_agent_rke2_cluster() {
    let out = init(&["--from-nodes", RKE2]);
    assert_code(&out, 0);
    let plan = stdout(&out);
    insta::assert_snapshot!("from_nodes_rke2", plan);
    // What the node list says, where it says it.
    for line in [
        "current-version = \"v1.29.4+rke2r1\"",
        "data-dir = \"/data/rke2\"",
        "kind = \"etcd\"",
        "arch = \"amd64\"",
        "# from kubectl get nodes: kubeletVersion of every node (all 5 agree).",
        "# bucket = \"rke2-snapshots\"",
    ] {
        assert!(plan.lines().any(|l| l == line), "no line {line:?}\n{plan}");
    }
    let toml: toml::Table = toml::from_str(&plan).expect("the plan is TOML");
    let nodes = toml["nodes"].as_array().expect("nodes");
    let summary: Vec<(&str, &str, bool)> = nodes
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap(),
                n["role"].as_str().unwrap(),
                n.get("init")
                    .and_then(toml::Value::as_bool)
                    .unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("server-1", "server", true),
            ("server-2", "server", false),
            ("server-3", "server", false),
            ("agent-1", "agent", false),
            ("agent-2", "agent", false),
        ]
    );
    let err = stderr(&out);
    assert!(
        err.contains("note: imported 5 nodes (3 servers, 2 agents) from nodes-rke2.json"),
        "{err}"
    );
    assert!(err.contains("agent-2 (host ip-10-0-1-22)"), "{err}");
    assert!(plan.contains("REWIND_HOST=agent-2"), "{plan}");
}

#[test]
fn mixed_versions_write_the_highest_and_say_so() {
    let out = init(&["--from-nodes", MIXED]);
    assert_code(&out, 0);
    let plan = stdout(&out);
    insta::assert_snapshot!("from_nodes_mixed", plan);
    assert!(
        plan.contains("current-version = \"v1.29.4+rke2r1\""),
        "{plan}"
    );
    assert!(plan.contains("#   v1.29.4+rke2r1: server-1, server-2\n#   v1.28.9+rke2r1: server-3, agent-1, agent-2\n"), "{plan}");
    assert!(
        plan.contains("the nodes not upgraded yet run v1.28.9+rke2r1"),
        "{plan}"
    );
    // Every server joined through --server: no init server is guessed.
    assert!(!plan.lines().any(|l| l == "init = true"), "{plan}");
    assert_eq!(plan.matches("\n# init = true\n").count(), 3, "{plan}");
    let err = stderr(&out);
    assert!(err.contains("the nodes run different versions"), "{err}");
    assert!(err.contains("upgrade was in progress"), "{err}");
    assert!(err.contains("the init server is not known"), "{err}");
}

/// The `[[nodes]]` of a plan as `(name, role, init)`.
fn node_summary(plan: &str) -> Vec<(String, String, bool)> {
    let toml: toml::Table = toml::from_str(plan).expect("the plan is TOML");
    toml["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_owned(),
                n["role"].as_str().unwrap().to_owned(),
                n.get("init")
                    .and_then(toml::Value::as_bool)
                    .unwrap_or(false),
            )
        })
        .collect()
}

#[track_caller]
fn has_lines(plan: &str, lines: &[&str]) {
    for line in lines {
        assert!(plan.lines().any(|l| l == *line), "no line {line:?}\n{plan}");
    }
}

#[test]
fn a_k3s_cluster_on_embedded_etcd() {
    let out = init(&["--from-nodes", K3S_HA]);
    assert_code(&out, 0);
    let plan = stdout(&out);
    insta::assert_snapshot!("from_nodes_k3s_ha", plan);
    has_lines(
        &plan,
        &[
            "distribution = \"k3s\"",
            "current-version = \"v1.29.4+k3s1\"",
            "target-version = \"<FILL: target version, e.g. v1.28.9+k3s1>\"",
            "data-dir = \"/srv/k3s\"",
            "kind = \"etcd\"",
            "# etcd-snapshot list`).",
            "# bucket = \"k3s-snapshots\"",
            "# The server token saved with the backup (a copy of /srv/k3s/server/token).",
            // server-2 joined through K3S_URL (node-env), not --server.
            "# k3s.io/node-env: K3S_URL 10.1.0.11:6443 (k3s-server-1)",
        ],
    );
    assert!(!plan.contains("install-method"), "{plan}");
    assert!(
        plan.contains("and k3s-server-1\n# has --cluster-init: embedded etcd."),
        "{plan}"
    );
    let n = |name: &str, role: &str, init: bool| (name.to_owned(), role.to_owned(), init);
    assert_eq!(
        node_summary(&plan),
        [
            n("k3s-server-1", "server", true),
            n("k3s-server-2", "server", false),
            n("k3s-server-3", "server", false),
            n("k3s-agent-1", "agent", false),
        ]
    );
    // One server with --cluster-init and an agent: etcd, and its init server.
    let plan = stdout(&init(&["--from-nodes", K3S]));
    has_lines(
        &plan,
        &[
            "kind = \"etcd\"",
            "init = true",
            "data-dir = \"/var/lib/rancher/k3s\"",
        ],
    );
}

#[test]
fn a_single_k3s_server_is_on_sqlite() {
    let out = init(&["--from-nodes", K3S_SQLITE]);
    assert_code(&out, 0);
    let plan = stdout(&out);
    insta::assert_snapshot!("from_nodes_k3s_sqlite", plan);
    has_lines(
        &plan,
        &[
            "distribution = \"k3s\"",
            "current-version = \"v1.29.6+k3s1\"",
            "data-dir = \"/var/lib/rancher/k3s\"",
            "kind = \"sqlite\"",
            "path = \"<FILL: copy of state.db, e.g. /root/k3s-backup/state.db>\"",
            "arch = \"arm64\"",
        ],
    );
    // One server on SQLite, and its agents: every node is in the plan.
    assert_eq!(
        node_summary(&plan),
        [
            ("edge-1".to_owned(), "server".to_owned(), false),
            ("edge-2".to_owned(), "agent".to_owned(), false),
            ("edge-3".to_owned(), "agent".to_owned(), false),
        ]
    );
    let err = stderr(&out);
    assert!(err.contains("REWIND_HOST"), "{err}");
    assert!(!err.contains("as comments"), "{err}");
    // --datastore against what the nodes show: a note, and the flag wins.
    let out = init(&["--from-nodes", K3S_SQLITE, "--datastore", "etcd"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("kind = \"etcd\""));
    assert!(
        stderr(&out).contains(
            "--datastore etcd was given, but the nodes show sqlite: edge-1 is the only server"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_k3s_plan_says_k3s_everywhere() {
    // Every name of a K3s plan is K3s's: no RKE2 path, command or example.
    for input in [K3S, K3S_HA, K3S_SQLITE] {
        for extra in [&[][..], &["--airgap"], &["--datastore", "postgres"]] {
            let mut args = vec!["--from-nodes", input];
            args.extend_from_slice(extra);
            let out = init(&args);
            assert_code(&out, 0);
            let printed = format!("{}{}", stdout(&out), stderr(&out));
            assert!(
                !printed.to_ascii_lowercase().contains("rke2"),
                "{input} {extra:?}\n{printed}"
            );
        }
    }
}

#[test]
fn a_rancher_cluster_file() {
    let out = init(&["--from-rke", RKE1]);
    assert_code(&out, 0);
    let plan = stdout(&out);
    insta::assert_snapshot!("from_rke_rancher", plan);
    let toml: toml::Table = toml::from_str(&plan).expect("the plan is TOML");
    assert_eq!(toml["cluster"]["distribution"].as_str(), Some("rke1"));
    assert_eq!(toml["cluster"]["name"].as_str(), Some("rancher"));
    assert_eq!(toml["rke"]["config"].as_str(), Some("rancher-cluster.yml"));
    let nodes = toml["nodes"].as_array().expect("nodes");
    let third = &nodes[2];
    assert_eq!(third["address"].as_str(), Some("203.0.113.13"));
    assert_eq!(third["hostname"].as_str(), Some("rancher-3"));
    assert_eq!(third["user"].as_str(), Some("rancher"));
    assert_eq!(nodes.len(), 3);
    assert!(
        plan.contains("# bucket = \"rancher-etcd-backups\""),
        "{plan}"
    );
    assert!(plan.contains("v1.18.6-rancher1-1"), "{plan}");
}

// ----------------------------------------------- filled in, check passes

#[test]
fn imported_plans_pass_check_once_filled_in() {
    let s = scratch();
    let cases: &[(&str, &[&str], Option<&str>)] = &[
        ("rke2", &["--from-nodes", RKE2], None),
        ("rke2-airgap", &["--from-nodes", RKE2, "--airgap"], None),
        ("mixed", &["--from-nodes", MIXED], Some("server-1")),
        ("k3s", &["--from-nodes", K3S], None),
        ("k3s-ha", &["--from-nodes", K3S_HA], None),
        ("k3s-ha-airgap", &["--from-nodes", K3S_HA, "--airgap"], None),
        ("k3s-sqlite", &["--from-nodes", K3S_SQLITE], None),
        (
            "k3s-sqlite-airgap",
            &["--from-nodes", K3S_SQLITE, "--airgap"],
            None,
        ),
        ("rke1", &["--from-rke", RKE1], None),
    ];
    for (name, args, init_on) in cases {
        let out = init(args);
        assert_code(&out, 0);
        let raw = stdout(&out);
        // As printed, the plan is rejected: the markers are not values.
        assert_code(&check(&s, &format!("{name}-raw.toml"), &raw), 1);
        let filled = fill(&raw, *init_on);
        assert!(!filled.contains("\"<FILL"), "{name}\n{filled}");
        let res = check(&s, &format!("{name}.toml"), &filled);
        assert_code(&res, 0);
        // With the recommended hashes too, check has nothing at all to say.
        let hashed = filled.replace(
            "# sha256 = \"<64 hex digits>\"",
            &format!("sha256 = \"{}\"", "0".repeat(64)),
        );
        let res = check(&s, &format!("{name}-hashed.toml"), &hashed);
        assert_code(&res, 0);
        let said = stderr(&res);
        assert!(
            !said.contains("warning") && !said.contains("error"),
            "{name}: findings\n{said}"
        );
        let path = s.root.join(format!("{name}.toml"));
        let bundle = s.root.join(name);
        assert_code(
            &run(&["compile", path.as_str(), "--out", bundle.as_str()]),
            0,
        );
    }
}

#[test]
fn the_commented_s3_and_recovery_blocks_of_an_rke1_plan_are_valid() {
    let s = scratch();
    let out = init(&["--from-rke", RKE1]);
    let plan = fill(&stdout(&out), None)
        .replace(
            "current-version = \"v2.4.8\"",
            "current-version = \"v2.4.5\"",
        )
        .replace("# [snapshot.s3]", "[snapshot.s3]")
        .replace("# bucket = ", "bucket = ")
        .replace("# folder = ", "folder = ")
        .replace("# endpoint = ", "endpoint = ")
        .replace("# region = ", "region = ")
        .replace("# [recovery]", "[recovery]")
        .replace(
            "# failed = \"<address of the dead node, removed from [[nodes]]>\"",
            "failed = \"203.0.113.99\"",
        )
        .replace(
            "# replacement = \"<address of the new node, in [[nodes]]>\"",
            "replacement = \"203.0.113.13\"",
        );
    let res = check(&s, "recovery.toml", &plan);
    assert_code(&res, 0);
}

#[test]
fn an_external_datastore_is_seen_but_its_kind_is_filled_in() {
    // The servers' --datastore-endpoint is masked: rewind sees an external
    // datastore, and asks for its kind unless --datastore names it.
    let s = scratch();
    let text = fs::read_to_string(common::repo().join(RKE2))
        .unwrap()
        .replace(
            r#"\"--tls-san\""#,
            r#"\"--datastore-endpoint\",\"********\",\"--tls-san\""#,
        );
    let path = write(&s, "external.json", &text);
    let out = init(&["--from-nodes", &path]);
    assert_code(&out, 0);
    let plan = stdout(&out);
    assert!(plan.contains("kind = \"<FILL: postgres or mysql"), "{plan}");
    assert!(!plan.contains("init = true"), "{plan}");
    assert!(stderr(&out).contains("--datastore-endpoint: an external datastore"));
    assert_code(&check(&s, "external.toml", &fill(&plan, None)), 0);
    let out = init(&["--from-nodes", &path, "--datastore", "mysql"]);
    assert_code(&out, 0);
    let plan = stdout(&out);
    assert!(plan.contains("kind = \"mysql\"\nhost = \"<FILL"), "{plan}");
    assert!(plan.contains("port = 3306"), "{plan}");
    assert_code(&check(&s, "mysql.toml", &fill(&plan, None)), 0);
    // --datastore against what the nodes show: a note, and the flag wins.
    let out = init(&["--from-nodes", RKE2, "--datastore", "postgres"]);
    assert_code(&out, 0);
    assert!(
        stderr(&out)
            .contains("--datastore postgres was given, but no node has --datastore-endpoint")
    );
}

#[test]
fn a_k3s_cluster_on_an_external_datastore() {
    // K3s's install script passes K3S_DATASTORE_ENDPOINT in the unit's
    // environment: node-env shows it (masked), node-args does not.
    let s = scratch();
    let text = fs::read_to_string(common::repo().join(K3S_HA))
        .unwrap()
        .replace(r#"\"--cluster-init\","#, "")
        .replace(
            r#""{\"K3S_TOKEN\":\"********\"}""#,
            r#""{\"K3S_DATASTORE_ENDPOINT\":\"********\",\"K3S_TOKEN\":\"********\"}""#,
        );
    assert!(
        text.contains("K3S_DATASTORE_ENDPOINT"),
        "the fixture changed"
    );
    let path = write(&s, "k3s-external.json", &text);
    let out = init(&["--from-nodes", &path]);
    assert_code(&out, 0);
    let plan = stdout(&out);
    assert!(plan.contains("kind = \"<FILL: postgres or mysql"), "{plan}");
    assert!(!plan.contains("init = true"), "{plan}");
    assert!(
        stderr(&out).contains("k3s-server-1 has --datastore-endpoint: an external datastore"),
        "{}",
        stderr(&out)
    );
    assert_code(&check(&s, "k3s-external.toml", &fill(&plan, None)), 0);
}

#[test]
fn the_node_list_may_come_from_standard_input() {
    let mut child = common::rewind(common::repo())
        .args(["init", "--from-nodes", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rewind");
    let json = fs::read(common::repo().join(RKE2)).unwrap();
    child.stdin.take().unwrap().write_all(&json).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    let from_file = stdout(&init(&["--from-nodes", RKE2]));
    let from_stdin = stdout(&out);
    assert!(from_stdin.contains("from <stdin>"), "{from_stdin}");
    let body = |t: &str| t.split_once("\nformat = 1\n").map(|(_, b)| b.to_owned());
    assert_eq!(body(&from_stdin), body(&from_file));
}

#[test]
fn the_plan_does_not_depend_on_where_rewind_runs_or_how_the_file_is_named() {
    // Same bytes from the repository with a relative path and from a
    // temporary folder with an absolute one: no path of this machine leaks
    // into the plan, only the file's name.
    let s = scratch();
    for input in [RKE2, RKE1] {
        let flag = if input == RKE1 {
            "--from-rke"
        } else {
            "--from-nodes"
        };
        let here = stdout(&init(&[flag, input]));
        let absolute = common::repo().join(input);
        let there = common::rewind(&s.root)
            .args(["init", flag, absolute.as_str()])
            .output()
            .expect("spawn rewind");
        assert_code(&there, 0);
        assert_eq!(stdout(&there), here, "{input}");
        for path in [common::repo().as_str(), s.root.as_str(), "tests/fixtures"] {
            assert!(!here.contains(path), "{path} in the plan of {input}");
        }
    }
}

// ----------------------------------------------------------- no secrets

#[test]
fn no_secret_of_the_node_arguments_reaches_the_plan() {
    // An older RKE2 (or a hand-made annotation) may carry unmasked secrets,
    // and masked values may sit where rewind reads: neither is written.
    let s = scratch();
    let text = fs::read_to_string(common::repo().join(RKE2))
        .unwrap()
        .replace(
            r#"\"--token\",\"********\""#,
            r#"\"--token\",\"rewind-canary-token-0a7c3e58\",\"--etcd-s3-secret-key=rewind-canary-aws-secret-6c1f0e9b2d7a4e38\""#,
        )
        .replace(
            r#"\"--data-dir\",\"/data/rke2\""#,
            r#"\"--data-dir\",\"********\""#,
        )
        .replace(
            r#"\"--etcd-s3-bucket\",\"rke2-snapshots\""#,
            r#"\"--etcd-s3-bucket\",\"********\""#,
        );
    assert!(text.contains("rewind-canary-token"), "the fixture changed");
    let path = s.root.join("nodes.json");
    fs::write(&path, text).unwrap();
    let out = init(&["--from-nodes", path.as_str()]);
    assert_code(&out, 0);
    let plan = stdout(&out);
    // A masked data dir is unknown, so the default is written.
    assert!(
        plan.contains("data-dir = \"/var/lib/rancher/rke2\""),
        "{plan}"
    );
    assert!(!plan.contains("bucket"), "{plan}");
}

// ------------------------------------------------------ refused inputs

/// Runs an import that must be refused: exit `code`, nothing on stdout, an
/// error that names the file (and `line`, when given).
#[track_caller]
fn refused(args: &[&str], code: i32, expect: &[&str]) -> String {
    let out = init(args);
    assert_code(&out, code);
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    let err = stderr(&out);
    for e in expect {
        assert!(err.contains(e), "no {e:?} in:\n{err}");
    }
    err
}

fn write(s: &Scratch, name: &str, text: &str) -> String {
    let path = s.root.join(name);
    fs::write(&path, text).unwrap();
    path.into_string()
}

#[test]
fn rke2_and_k3s_nodes_in_one_list_are_refused() {
    let s = scratch();
    let p = write(
        &s,
        "both.json",
        &fs::read_to_string(common::repo().join(RKE2))
            .unwrap()
            .replacen(
                "\"kubeletVersion\": \"v1.29.4+rke2r1\"",
                "\"kubeletVersion\": \"v1.29.4+k3s1\"",
                1,
            ),
    );
    refused(
        &["--from-nodes", &p],
        1,
        &[
            "the nodes run both K3s and RKE2",
            "runs v1.29.4+k3s1",
            "runs v1.29.4+rke2r1",
            "one cluster of one distribution",
            "nothing was written",
        ],
    );
}

#[test]
fn node_lists_that_cannot_be_imported() {
    let s = scratch();
    let p = write(
        &s,
        "broken.json",
        "{\n  \"kind\": \"List\",\n  \"items\": [\n    {\"kind\": \"Node\",}\n",
    );
    refused(&["--from-nodes", &p], 1, &[&format!("{p}:4:"), "not JSON"]);
    let p = write(&s, "nodes.yaml", "apiVersion: v1\nkind: List\nitems: []\n");
    refused(&["--from-nodes", &p], 1, &["not JSON", "-o json"]);
    let p = write(
        &s,
        "empty.json",
        r#"{"apiVersion": "v1", "kind": "List", "items": []}"#,
    );
    refused(
        &["--from-nodes", &p],
        1,
        &[&format!("{p}: the list has no nodes")],
    );
    let p = write(
        &s,
        "node.json",
        r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "a"}}"#,
    );
    refused(
        &["--from-nodes", &p],
        1,
        &["one Node, not the list of nodes"],
    );
    let p = write(
        &s,
        "pods.json",
        r#"{"apiVersion": "v1", "kind": "List", "items": [{"kind": "Pod", "metadata": {"name": "a"}}]}"#,
    );
    refused(
        &["--from-nodes", &p],
        1,
        &["items[0] is a \"Pod\", not a Node"],
    );
    let p = write(
        &s,
        "other.json",
        r#"{"apiVersion": "v1", "kind": "SecretList", "items": []}"#,
    );
    refused(&["--from-nodes", &p], 1, &["not a list of nodes"]);
    let p = write(
        &s,
        "kubeadm.json",
        &fs::read_to_string(common::repo().join(RKE2))
            .unwrap()
            .replace("v1.29.4+rke2r1", "v1.29.4"),
    );
    refused(
        &["--from-nodes", &p],
        1,
        &["neither an RKE2 version", "nor a K3s one", "--from-rke"],
    );
    let p = write(
        &s,
        "noversion.json",
        r#"{"kind": "List", "items": [{"kind": "Node", "metadata": {"name": "a"}, "status": {}}]}"#,
    );
    refused(
        &["--from-nodes", &p],
        1,
        &["node a", "has no kubeletVersion"],
    );
    let p = s.root.join("latin1.json");
    fs::write(&p, b"{\"kind\": \"List\xe9\"}").unwrap();
    refused(&["--from-nodes", p.as_str()], 1, &["not UTF-8"]);
    refused(
        &["--from-nodes", "no/such/file.json"],
        3,
        &["cannot read no/such/file.json"],
    );
}

#[test]
fn cluster_files_that_cannot_be_imported() {
    let s = scratch();
    // A syntax error right after a secret: the error names the line, never the secret.
    let p = write(
        &s,
        "broken.yml",
        "nodes:\n  - address: 1.1.1.1\n    role: [etcd\n    secret_key: \"AKIAREWINDFIXTURE0042\"\n",
    );
    refused(
        &["--from-rke", &p],
        1,
        &[&format!("{p}:4:"), "not a valid RKE cluster file"],
    );
    let p = write(
        &s,
        "nonodes.yml",
        "kubernetes_version: v1.18.6-rancher1-1\n",
    );
    refused(&["--from-rke", &p], 1, &["no `nodes:` list"]);
    let p = write(&s, "empty.yml", "nodes: []\n");
    refused(
        &["--from-rke", &p],
        1,
        &[&format!("{p}:1: the `nodes:` list is empty")],
    );
    let p = write(
        &s,
        "role.yml",
        "nodes:\n  - address: 1.1.1.1\n    role: [etcd]\n  - address: 2.2.2.2\n    role: [controlplane, master]\n",
    );
    refused(
        &["--from-rke", &p],
        1,
        &[&format!("{p}:4: node 2.2.2.2 has the role \"master\"")],
    );
    let p = write(
        &s,
        "noaddress.yml",
        "nodes:\n  - user: root\n    role: [etcd]\n",
    );
    refused(
        &["--from-rke", &p],
        1,
        &[&format!("{p}:2: node 1 has no `address`")],
    );
    let p = write(&s, "norole.yml", "nodes:\n  - address: 1.1.1.1\n");
    refused(&["--from-rke", &p], 1, &["node 1.1.1.1 has no `role` list"]);
    let p = write(
        &s,
        "twice.yml",
        "nodes:\n  - address: 1.1.1.1\n    address: 2.2.2.2\n    role: [etcd]\n",
    );
    let err = refused(
        &["--from-rke", &p],
        1,
        &[&format!(
            "{p}:3:5: not a valid RKE cluster file (duplicate mapping key: address)"
        )],
    );
    assert!(!err.contains("Policy"), "{err}");
    let p = write(&s, "scalar.yml", "just a string\n");
    refused(&["--from-rke", &p], 1, &["not a valid RKE cluster file"]);
}

#[test]
fn import_flags_that_do_not_go_together_are_usage_errors() {
    for args in [
        &["--from-nodes", RKE2, "--from-rke", RKE1][..],
        &["--from-rke", RKE1, "--airgap"],
        &["--from-rke", RKE1, "--datastore", "sqlite"],
    ] {
        let out = init(args);
        assert_code(&out, 2);
        assert!(out.stdout.is_empty(), "{}", describe(&out));
    }
}

#[test]
fn every_fixture_is_listed_in_the_readme() {
    let readme = fs::read_to_string(common::repo().join(FIXTURES).join("README.md")).unwrap();
    for entry in common::repo().join(FIXTURES).read_dir_utf8().unwrap() {
        let name = entry.unwrap().file_name().to_owned();
        if name != "README.md" {
            assert!(
                readme.contains(&format!("`{name}`")),
                "{name} is not in README.md"
            );
        }
    }
}

// ------------------------------------------------------- hostile values

mod hostile {
    use proptest::prelude::*;
    use rewind::init::{ImportError, Imported};

    /// What an import may return for any input: a refusal, or a plan that
    /// is TOML, names no masked value, and whose every line is a comment,
    /// a table header, a key or blank (no value broke out of its quotes).
    fn sound(result: Result<Imported, ImportError>) -> Result<(), TestCaseError> {
        let Ok(imported) = result else {
            return Ok(());
        };
        let plan = imported.plan;
        prop_assert!(
            toml::from_str::<toml::Table>(&plan).is_ok(),
            "not TOML:\n{}",
            plan
        );
        prop_assert!(!plan.contains("********"));
        for line in plan.lines() {
            prop_assert!(
                line.is_empty()
                    || line.starts_with('#')
                    || line.starts_with('[')
                    || line.split_once(" = ").is_some_and(|(k, _)| {
                        k.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                    }),
                "unexpected line {:?} in\n{}",
                line,
                plan
            );
        }
        Ok(())
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-z0-9\"'\\\\\n\t#=\\[\\]* .:/-]{0,30}",
            Just("********".to_owned()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn any_node_list_values(
            name in text(),
            hostname in text(),
            os in text(),
            ip in text(),
            data_dir in text(),
            server in text(),
            bucket in text(),
            k3s in any::<bool>(),
        ) {
            let (version, key) = if k3s {
                ("v1.29.4+k3s1", "k3s.io/node-args")
            } else {
                ("v1.29.4+rke2r1", "rke2.io/node-args")
            };
            let args = serde_json::to_string(&[
                "server", "--data-dir", &data_dir, "--server", &server,
                "--etcd-s3", "--etcd-s3-bucket", &bucket,
            ]).unwrap();
            let doc = serde_json::json!({
                "apiVersion": "v1", "kind": "List",
                "items": [{
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "labels": {"node-role.kubernetes.io/etcd": "true"},
                        "annotations": {key: args},
                    },
                    "status": {
                        "addresses": [
                            {"type": "InternalIP", "address": ip},
                            {"type": "Hostname", "address": hostname},
                        ],
                        "nodeInfo": {"kubeletVersion": version, "osImage": os},
                    },
                }],
            });
            sound(rewind::init_nodes::import(
                "n.json",
                &doc.to_string(),
                rewind::init_nodes::Options::default(),
            ))?;
        }

        #[test]
        fn any_cluster_file_values(
            address in text(),
            hostname in text(),
            user in text(),
            cluster in text(),
            version in text(),
            bucket in text(),
            endpoint in text(),
        ) {
            // JSON is YAML: the values arrive exactly as generated.
            let doc = serde_json::json!({
                "cluster_name": cluster,
                "kubernetes_version": version,
                "nodes": [{
                    "address": address,
                    "hostname_override": hostname,
                    "user": user,
                    "role": ["etcd", "controlplane"],
                }],
                "services": {"etcd": {"backup_config": {"s3backupconfig": {
                    "bucket_name": bucket, "endpoint": endpoint,
                }}}},
            });
            sound(rewind::init_rke::import("c.yml", &doc.to_string()))?;
        }
    }
}
