//! The golden bundles, run the way an operator runs them (issue 3).
//!
//! Every test builds worlds with the sandbox harness (`tests/sandbox/`): one
//! fake host per node plus the workstation, seeded like real RKE2 hosts, each
//! script run in its own mount, UTS and PID namespace with the stand-ins of
//! `tests/stubs/` first on PATH. Needs root and the six shells.
//!
//! - `walk_*`: every golden bundle, all steps in README order, under each of
//!   the six shells: the order of commands across hosts, the files
//!   afterwards, the journal lines, no secret anywhere, the bundle
//!   unchanged; the trace of commands is the same under every shell (insta
//!   snapshot per plan); under dash, every step run again says "already
//!   done".
//! - `dry_run_*`: before each step runs for real, its dry run changes no file
//!   of any host and prints exactly the commands the real run then runs.
//! - `faults_*`: each command a step runs, made to fail: the step stops at
//!   once and says so; fixed, it resumes; finished, it says "already done".
//! - `guard_*`: wrong host, not root, no terminal, bad hashes, `server:` on
//!   the init server.

mod common;
#[path = "sandbox/mod.rs"]
#[allow(dead_code)] // each test crate uses part of the harness
mod harness;

use harness::checks;
use harness::host::Launch;
use harness::shells::Shell;
use harness::world::{ScriptRun, World, golden_plans, is_k3s, plan_text};

/// Walks every golden bundle but the K3s ones under `shell` (those have
/// their own tests, `walk_k3s_under_*`, so that each can be run alone).
///
/// `large` is walked under dash only: it runs the scripts of `etcd-airgap`
/// (walked under every shell) on 50 hosts instead of 6, so under the other
/// shells it would prove nothing new about the shell and cost most of the
/// walk's time.
fn walk_every_bundle(shell: Shell) {
    walk_plans(
        golden_plans()
            .into_iter()
            .filter(|p| !is_k3s(p) && (p != "large" || shell == Shell::Dash))
            .collect(),
        shell,
    );
}

/// The K3s plans (issue 15): k3s-sqlite, k3s-etcd-airgap, k3s-postgres.
fn k3s_plans() -> Vec<String> {
    let k3s: Vec<String> = golden_plans().into_iter().filter(|p| is_k3s(p)).collect();
    assert_eq!(k3s.len(), 3, "{k3s:?}");
    k3s
}

#[test]
fn walk_k3s_under_dash() {
    walk_plans(k3s_plans(), Shell::Dash);
}

#[test]
fn walk_k3s_under_posh() {
    walk_plans(k3s_plans(), Shell::Posh);
}

#[test]
fn walk_k3s_under_yash() {
    walk_plans(k3s_plans(), Shell::Yash);
}

#[test]
fn walk_k3s_under_mksh() {
    walk_plans(k3s_plans(), Shell::Mksh);
}

#[test]
fn walk_k3s_under_busybox() {
    walk_plans(k3s_plans(), Shell::Busybox);
}

#[test]
fn walk_k3s_under_bash() {
    walk_plans(k3s_plans(), Shell::Bash);
}

/// Walks `plans` under `shell`; panics with every problem found.
fn walk_plans(plans: Vec<String>, shell: Shell) {
    let mut failures = Vec::new();
    for plan in plans {
        let t = std::time::Instant::now();
        let w = World::golden(&plan, shell);
        let before = w.digest();
        let runs = match w.walk(&[]) {
            Ok(runs) => runs,
            Err(runs) => {
                failures.push(format!(
                    "{plan}: the walk stopped:\n{}",
                    runs.last().expect("a run").describe()
                ));
                continue;
            }
        };
        let mut p = if w.rke1.is_some() {
            let mut p = harness::rke1::order(&w, &w.journal());
            p.extend(harness::rke1::state(&w, &runs));
            p
        } else {
            let mut p = checks::order(&w, &w.journal());
            p.extend(checks::state(&w, &runs, &before));
            p
        };
        p.extend(checks::no_secrets(&w, &runs));
        for r in &runs {
            if r.run.stdout.contains("could not be listed in advance") {
                p.push(format!(
                    "{} on {}: the confirmation could not list the commands",
                    r.script, r.host
                ));
            }
        }
        p.extend(checks::bundle_intact(&w));
        if !p.is_empty() {
            failures.push(format!("{plan} ({}):\n  {}", shell.name(), p.join("\n  ")));
            continue;
        }
        eprintln!(
            "{plan} under {}: {} runs in {:.1?}",
            shell.name(),
            runs.len(),
            t.elapsed()
        );
        if shell == Shell::Dash {
            // Every step again: each says it is already done.
            let again = rerun_problems(&w);
            if !again.is_empty() {
                failures.push(format!("{plan}:\n  {}", again.join("\n  ")));
                continue;
            }
        }
        let trace = checks::trace(&w.journal());
        insta::with_settings!({ snapshot_suffix => plan.clone(), prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!("sandbox_trace", trace);
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn walk_under_dash() {
    walk_every_bundle(Shell::Dash);
}

#[test]
fn walk_under_posh() {
    walk_every_bundle(Shell::Posh);
}

#[test]
fn walk_under_yash() {
    walk_every_bundle(Shell::Yash);
}

#[test]
fn walk_under_mksh() {
    walk_every_bundle(Shell::Mksh);
}

#[test]
fn walk_under_busybox() {
    walk_every_bundle(Shell::Busybox);
}

#[test]
fn walk_under_bash() {
    walk_every_bundle(Shell::Bash);
}

/// Runs every script again after a walk: each says it is already done,
/// exits 0 and runs nothing (checked after the walks under dash).
fn rerun_problems(w: &World) -> Vec<String> {
    let mut p = Vec::new();
    for script in w.scripts() {
        let r: ScriptRun = w.run(&script, &[("REWIND_YES", "1")]);
        if r.run.code != 0 || !r.run.stdout.contains("already done") || !r.calls.is_empty() {
            p.push(format!("re-running a finished step:\n{}", r.describe()));
        }
    }
    p
}

/// Before each script of every golden bundle runs for real, its dry run
/// (`REWIND_DRY_RUN=1`) changes no file of any host (a digest of every file
/// of every host and of the fake cluster, before and after), calls
/// stand-ins only to read, and prints exactly the commands the real run
/// then runs. Each distinct script behaviour once, in the first bundle that
/// has it (as the fault matrix), under dash: the walks run every script
/// under every shell.
#[test]
fn dry_run_changes_nothing_and_prints_every_command() {
    dry_runs(
        golden_plans().into_iter().filter(|p| !is_k3s(p)).collect(),
        30,
    );
}

/// The same for the K3s bundles.
#[test]
fn dry_run_k3s_changes_nothing_and_prints_every_command() {
    dry_runs(k3s_plans(), 15);
}

fn dry_runs(plans: Vec<String>, at_least: usize) {
    let mut seen = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    let mut count = 0;
    for plan in plans {
        let w = World::golden(&plan, Shell::Dash);
        if w.scripts().iter().all(|s| seen.contains(&behaviour(&w, s))) {
            continue;
        }
        let mut dry = Vec::new();
        let walked = w.walk_with(&[], |w, script| {
            if !seen.insert(behaviour(w, script)) {
                return;
            }
            let before = w.digest();
            let r = w.run(script, &[("REWIND_DRY_RUN", "1")]);
            dry.push((r, before, w.digest()));
        });
        let runs = match walked {
            Ok(runs) => runs,
            Err(runs) => {
                failures.push(format!(
                    "{plan}: the walk stopped:\n{}",
                    runs.last().expect("a run").describe()
                ));
                continue;
            }
        };
        let mut p = Vec::new();
        for (d, before, after) in &dry {
            count += 1;
            let real = runs
                .iter()
                .find(|r| r.script == d.script)
                .expect("the real run");
            if !d.run.stdout.contains("DRY RUN") {
                p.push(format!(
                    "dry run of {} does not say it is one:\n{}",
                    d.script,
                    d.describe()
                ));
            }
            p.extend(checks::dry_run(d, before, after, real));
        }
        if !p.is_empty() {
            failures.push(format!("{plan}:\n  {}", p.join("\n  ")));
        }
    }
    eprintln!("dry runs checked: {count}");
    assert!(
        count >= at_least,
        "only {count} dry runs: the test lost its scripts"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Runs `script` on `host` and expects it refused: exit `code`, `needles`
/// in its output, no stand-in called, nothing changed on any host (the
/// journal aside when `journal_ok`).
fn expect_refused(
    w: &World,
    host: &str,
    script: &str,
    env: &[(&str, &str)],
    launch: Launch,
    code: i32,
    needles: &[&str],
) {
    let before = w.digest();
    let r = w.run_on(host, script, env, launch);
    let out = r.run.all();
    assert_eq!(
        r.run.code,
        code,
        "{script} on {host} with {env:?}: expected exit {code}:\n{}",
        r.describe()
    );
    for n in needles {
        assert!(
            out.contains(n),
            "{script} on {host}: expected {n:?} in the output:\n{}",
            r.describe()
        );
    }
    assert!(
        r.calls.is_empty(),
        "{script} on {host} called stand-ins although refused:\n{}",
        r.describe()
    );
    let changed = checks::changed_besides_journal(&before, &w.digest());
    assert!(
        changed.is_empty(),
        "{script} on {host} was refused but changed:\n{}",
        changed.join("\n")
    );
}

/// A node script exits 3 on any other host, whatever it is (a destructive
/// step included), and changes nothing; `REWIND_HOST` overrides the check
/// only when it names the script's node exactly. RKE1 nodes known by
/// address are recognised by it.
#[test]
fn guard_wrong_host_exits_3_and_changes_nothing() {
    let w = World::golden("etcd-online", Shell::Dash);
    let yes = ("REWIND_YES", "1");
    let before = w.digest();
    for (host, script, env) in [
        ("server-1", "nodes/server-2/03-stop.sh", vec![yes]),
        ("agent-1", "nodes/server-1/05-restore.sh", vec![yes]),
        ("workstation", "nodes/server-1/03-stop.sh", vec![yes]),
        (
            "server-1",
            "nodes/server-2/03-stop.sh",
            vec![yes, ("REWIND_HOST", "server-1")],
        ),
        (
            "server-2",
            "nodes/server-2/03-stop.sh",
            vec![yes, ("REWIND_HOST", "server-2 ")],
        ),
        (
            "server-2",
            "nodes/server-2/03-stop.sh",
            vec![yes, ("REWIND_HOST", "SERVER-2")],
        ),
    ] {
        let r = w.run_on(host, script, &env, Launch::default());
        assert_eq!(
            r.run.code,
            3,
            "{script} on {host} {env:?}:\n{}",
            r.describe()
        );
        assert!(r.run.stderr.contains("WRONG HOST"), "{}", r.describe());
        assert!(r.calls.is_empty(), "{}", r.describe());
    }
    assert_eq!(w.digest(), before, "a refused run changed a host");
    // REWIND_HOST naming the script's node exactly: accepted (this host
    // then registers in Kubernetes under that name too, as node-name: says).
    w.host("server-1").write(
        "/etc/rancher/rke2/config.yaml.d/50-node-name.yaml",
        "node-name: agent-1\n",
        0o600,
    );
    let r = w.run_on(
        "server-1",
        "nodes/agent-1/01-preflight.sh",
        &[("REWIND_HOST", "agent-1")],
        Launch::default(),
    );
    assert_eq!(r.run.code, 0, "{}", r.describe());

    let w = World::golden("rancher-upgrade", Shell::Dash);
    let r = w.run_on(
        "1.1.1.1",
        "nodes/2.2.2.2/01-preflight.sh",
        &[],
        Launch::default(),
    );
    assert_eq!(r.run.code, 3, "{}", r.describe());
    let r = w.run_on(
        "2.2.2.2",
        "nodes/2.2.2.2/01-preflight.sh",
        &[],
        Launch::default(),
    );
    assert_eq!(r.run.code, 0, "found by its address:\n{}", r.describe());
}

/// Which host names the guard accepts (docs/running.md): the whole name
/// (any case), or its first label for a node name without a dot, never the
/// first label of a dotted node name. The wrong-host message names the right
/// script when this host is one of the plan's nodes, and lists the plan's
/// nodes when it is none.
#[test]
fn guard_host_names_as_documented() {
    let mut w = World::golden("etcd-online", Shell::Dash);
    let set = |w: &mut World, node: &str, hostname: &str| {
        w.hosts.get_mut(node).expect("host").hostname = hostname.to_owned();
    };
    // An FQDN host name runs the scripts of the node named by its first label.
    set(&mut w, "server-1", "SERVER-1.plant3.internal");
    // (RKE2 would register it as its host name: it is configured as server-1.)
    w.host("server-1").write(
        "/etc/rancher/rke2/config.yaml.d/50-node-name.yaml",
        "node-name: server-1\n",
        0o600,
    );
    let r = w.run_on(
        "server-1",
        "nodes/server-1/01-preflight.sh",
        &[],
        Launch::default(),
    );
    assert_eq!(r.run.code, 0, "{}", r.describe());
    let before = w.digest();
    // ...and is told which script is its own.
    let r = w.run_on(
        "server-1",
        "nodes/server-2/03-stop.sh",
        &[("REWIND_YES", "1")],
        Launch::default(),
    );
    assert_eq!(r.run.code, 3, "{}", r.describe());
    assert!(
        r.run
            .stderr
            .contains("this is host server-1: run nodes/server-1/03-stop.sh instead."),
        "{}",
        r.describe()
    );
    // A node of the plan without a script in this step: its folder.
    let r = w.run_on(
        "server-1",
        "nodes/agent-1/09-start-agents.sh",
        &[],
        Launch::default(),
    );
    assert_eq!(r.run.code, 3, "{}", r.describe());
    assert!(
        r.run.stderr.contains("this is host server-1: this step has no script for it (its scripts are in nodes/server-1/)."),
        "{}",
        r.describe()
    );
    // A host that is none of the plan's nodes: the list of them.
    set(&mut w, "server-1", "k8s-spare");
    let r = w.run_on(
        "server-1",
        "nodes/server-1/03-stop.sh",
        &[("REWIND_YES", "1")],
        Launch::default(),
    );
    assert_eq!(r.run.code, 3, "{}", r.describe());
    for node in ["server-1", "server-2", "server-3", "agent-1", "agent-2"] {
        assert!(
            r.run.stderr.contains(&format!("\n    nodes/{node}/\n")),
            "{node}: {}",
            r.describe()
        );
    }
    assert!(r.calls.is_empty(), "{}", r.describe());
    assert_eq!(w.digest(), before, "a refused run changed a host");

    // A dotted node name is matched whole, never by its first label.
    let text = plan_text("etcd-online").replace("\"server-2\"", "\"server-2.plant3.internal\"");
    let mut w = World::compile("etcd-online", &text, Shell::Dash).expect("a valid plan");
    let script = "nodes/server-2.plant3.internal/01-preflight.sh";
    let r = w.run_on("server-2.plant3.internal", script, &[], Launch::default());
    assert_eq!(r.run.code, 0, "{}", r.describe());
    set(&mut w, "server-2.plant3.internal", "server-2");
    let r = w.run_on("server-2.plant3.internal", script, &[], Launch::default());
    assert_eq!(r.run.code, 3, "{}", r.describe());
    assert!(r.run.stderr.contains("its nodes are:"), "{}", r.describe());
    let r = w.run_on(
        "server-2.plant3.internal",
        script,
        &[("REWIND_HOST", "server-2.plant3.internal")],
        Launch::default(),
    );
    assert_eq!(r.run.code, 0, "{}", r.describe());
}

/// Node scripts refuse to run as another user than root, before anything.
#[test]
fn guard_not_root_is_refused() {
    let w = World::golden("etcd-online", Shell::Dash);
    let nobody = Launch {
        user: Some("65534:65534".into()),
        ..Launch::default()
    };
    expect_refused(
        &w,
        "server-1",
        "nodes/server-1/03-stop.sh",
        &[("REWIND_YES", "1")],
        nobody,
        4,
        &["root"],
    );
}

/// A destructive step asks for the cluster name on a terminal; with no
/// terminal and no REWIND_YES it refuses (after its read-only preflight).
#[test]
fn guard_destructive_step_needs_a_terminal_or_rewind_yes() {
    let w = World::golden("etcd-online", Shell::Dash);
    let stop = "nodes/server-1/03-stop.sh";
    expect_refused(
        &w,
        "server-1",
        stop,
        &[],
        Launch::default(),
        4,
        &["REFUSED", "REWIND_YES=1"],
    );
    let typed = |answer: &str| Launch {
        terminal: true,
        stdin: Some(format!("{answer}\n").into_bytes()),
        ..Launch::default()
    };
    expect_refused(
        &w,
        "server-1",
        stop,
        &[],
        typed("prod-west"),
        4,
        &["not confirmed"],
    );
    let r = w.run_on("server-1", stop, &[], typed("prod-east"));
    assert_eq!(
        r.run.code,
        0,
        "typing the cluster name confirms:\n{}",
        r.describe()
    );
    assert!(
        r.run.stdout.contains("Type the cluster name"),
        "{}",
        r.describe()
    );
    assert!(
        r.calls
            .iter()
            .any(|c| c.tool == "systemctl" && c.starts(&["stop"])),
        "{}",
        r.describe()
    );
}

/// Walks a world whose hosts were spoiled by `spoil`, and expects the walk
/// to stop at `script` (a read-only preflight) with `needles` in its
/// output, before anything on any host is stopped or moved.
fn expect_stopped_at_preflight(w: &World, script: &str, needles: &[&str]) {
    let before = w.digest();
    let Err(runs) = w.walk(&[]) else {
        panic!(
            "the walk of {} went through; expected it to stop at {script}",
            w.name
        )
    };
    let last = runs.last().expect("a run");
    assert_eq!(
        last.script,
        script,
        "the walk stopped elsewhere:\n{}",
        last.describe()
    );
    assert_eq!(last.run.code, 1, "{}", last.describe());
    for n in needles {
        assert!(
            last.run.all().contains(n),
            "expected {n:?}:\n{}",
            last.describe()
        );
    }
    assert!(
        last.run.stderr.contains("changed: nothing"),
        "{}",
        last.describe()
    );
    for c in w.journal() {
        assert!(
            checks::read_only(&c),
            "a command that changes things ran before the refusal: {c}"
        );
    }
    let changed = checks::changed_besides_journal(&before, &w.digest());
    assert!(
        changed.is_empty(),
        "refused, but changed:\n{}",
        changed.join("\n")
    );
    let secrets = checks::secrets("the refusal", &last.run.all());
    assert!(secrets.is_empty(), "{secrets:?}");
}

fn flip_a_byte(host: &harness::host::Host, path: &str, at: usize) {
    let mut bytes = host
        .read(path)
        .unwrap_or_else(|| panic!("{path} on {}", host.name));
    bytes[at] ^= 0x01;
    host.write(path, bytes, 0o600);
}

/// A damaged snapshot, artifact or saved token is refused by the preflight
/// on its host, before anything on any host is stopped or moved.
#[test]
fn guard_hash_mismatch_is_refused_before_anything_stops() {
    let snap = "/var/lib/rancher/rke2/server/db/snapshots/pre-upgrade-server-1-1716239400";
    let w = World::golden("etcd-online", Shell::Dash);
    flip_a_byte(w.host("server-1"), snap, 100);
    expect_stopped_at_preflight(
        &w,
        "nodes/server-1/01-preflight.sh",
        &["sha256 mismatch", snap],
    );

    let w = World::golden("etcd-airgap", Shell::Dash);
    flip_a_byte(
        w.host("agent-2"),
        "/root/rke2-artifacts/rke2.linux-amd64.tar.gz",
        20,
    );
    expect_stopped_at_preflight(
        &w,
        "nodes/agent-2/01-preflight.sh",
        &["sha256 mismatch", "rke2.linux-amd64.tar.gz"],
    );

    let w = World::golden("etcd-airgap", Shell::Dash);
    w.host("server-3").write(
        "/root/rke2-artifacts/rke2-images.linux-amd64.tar.zst",
        b"images of another release\n",
        0o644,
    );
    expect_stopped_at_preflight(
        &w,
        "nodes/server-3/01-preflight.sh",
        &["sha256 mismatch", "rke2-images.linux-amd64.tar.zst"],
    );

    let w = World::golden("etcd-online", Shell::Dash);
    w.host("server-1").write(
        "/root/rke2-backup/token",
        b"K10another::server:rotated-token-value\n",
        0o600,
    );
    expect_stopped_at_preflight(
        &w,
        "nodes/server-1/01-preflight.sh",
        &["does not match", "/root/rke2-backup/token"],
    );

    let w = World::golden("sqlite", Shell::Dash);
    flip_a_byte(w.host("edge-17"), "/root/rke2-backup/state.db", 5000);
    expect_stopped_at_preflight(&w, "nodes/edge-17/01-preflight.sh", &["sha256 mismatch"]);

    let w = World::golden("rancher-upgrade", Shell::Dash);
    flip_a_byte(
        w.host("1.1.1.1"),
        "/opt/rke/etcd-snapshots/pre-upgrade-2020-09-01.zip",
        300,
    );
    expect_stopped_at_preflight(&w, "nodes/1.1.1.1/01-preflight.sh", &["sha256 mismatch"]);

    // Without a hash in the plan, the snapshot's own sha256 trailer is
    // still checked.
    let text = harness::world::plan_text("etcd-online").replace(
        "sha256 = \"124549039c040618e33217a80f5f4c86134fbd24bba3c21fdb8557a363fd7958\"\n",
        "",
    );
    let w = World::compile("etcd-online-nohash", &text, Shell::Dash)
        .expect("the plan without the snapshot hash compiles");
    flip_a_byte(w.host("server-1"), snap, 100);
    expect_stopped_at_preflight(
        &w,
        "nodes/server-1/01-preflight.sh",
        &["trailer does not match"],
    );
}

/// K3s (issue 15): `K3S_URL` in the init server's unit environment file
/// names a server to join as `server:` does, and is refused; a k3s binary
/// that is not where the install script writes the target (moved to
/// /opt/bin, as the script does when /usr/local/bin is read-only) is
/// refused; both before anything stops.
#[test]
fn guard_k3s_url_and_binary_elsewhere_are_refused_in_preflight() {
    let w = World::golden("k3s-etcd-airgap", Shell::Dash);
    w.host("server-1").write(
        "/etc/systemd/system/k3s.service.env",
        "K3S_URL=https://server-2:6443\n",
        0o600,
    );
    expect_stopped_at_preflight(
        &w,
        "nodes/server-1/01-preflight.sh",
        &["K3S_URL is set in", "remove K3S_URL from"],
    );
    let w = World::golden("k3s-etcd-airgap", Shell::Dash);
    let h = w.host("agent-1");
    let bin = h.read("/usr/local/bin/k3s").expect("the k3s binary");
    h.write("/opt/bin/k3s", bin, 0o755);
    std::fs::remove_file(h.disk("/usr/local/bin/k3s")).expect("move k3s away");
    expect_stopped_at_preflight(
        &w,
        "nodes/agent-1/01-preflight.sh",
        &["/usr/local/bin/k3s not found or not executable", "/opt/bin"],
    );
}

/// cluster-reset refuses to run with a `server:` entry: the init server's
/// preflight (and its restore step) refuses one, saying how to fix it.
#[test]
fn guard_server_entry_on_the_init_server_is_refused_with_the_fix() {
    for (file, entry) in [
        (
            "/etc/rancher/rke2/config.yaml",
            "server: https://server-2:9345\n",
        ),
        (
            "/etc/rancher/rke2/config.yaml.d/50-join.yaml",
            "server: \"https://server-2:9345\"\n",
        ),
    ] {
        let w = World::golden("etcd-online", Shell::Dash);
        let h = w.host("server-1");
        let old = h.text(file).unwrap_or_default();
        h.write(file, format!("{old}{entry}"), 0o600);
        expect_stopped_at_preflight(
            &w,
            "nodes/server-1/01-preflight.sh",
            &["server:", file, "comment out the server: line"],
        );
        // The restore step, run before the install step, finds this and the
        // installed version at once (its preflight runs every check; a check
        // may ask rke2 its version), and changes nothing.
        let before = w.digest();
        let r = w.run("nodes/server-1/05-restore.sh", &[("REWIND_YES", "1")]);
        assert_eq!(r.run.code, 1, "{}", r.describe());
        for needle in [
            "server:",
            "comment out the server: line",
            "installed version is v1.29.4+rke2r1, not the target",
            "FAILED: preflight: 2 problems",
        ] {
            assert!(
                r.run.stderr.contains(needle),
                "no {needle:?}:\n{}",
                r.describe()
            );
        }
        assert!(
            r.calls
                .iter()
                .all(|c| c.tool == "rke2" && c.starts(&["--version"])),
            "{}",
            r.describe()
        );
        let changed = checks::changed_besides_journal(&before, &w.digest());
        assert!(changed.is_empty(), "{}", changed.join("\n"));
    }
}

/// What a script does, as the list of its operations: two scripts with the
/// same list run the same library code (only paths and names differ), so
/// the fault matrix runs once per list.
fn behaviour(w: &World, script: &str) -> String {
    let s = w.script(script);
    let step = script.rsplit('/').next().unwrap_or_default();
    let funcs: Vec<&str> = s
        .preflight
        .iter()
        .chain(&s.actions)
        .map(|op| op.func.name())
        .collect();
    format!("{} {}", &step[3..], funcs.join(" "))
}

/// The fault matrix of one bundle: for each step (one host per distinct
/// behaviour not seen in an earlier bundle), each command it runs or asks is
/// made to fail in turn, on the host as it was before the step; then the
/// fault is removed and the step run again, then once more. Returns the
/// number of faults and the problems.
fn fault_matrix(
    plan: &str,
    shell: Shell,
    seen: &mut std::collections::BTreeSet<String>,
) -> (usize, Vec<String>) {
    let w = World::golden(plan, shell);
    if w.scripts().iter().all(|s| seen.contains(&behaviour(&w, s))) {
        return (0, Vec::new());
    }
    let yes = [("REWIND_YES", "1")];
    let nodes: Vec<String> = w.hosts.keys().cloned().collect();
    let mut problems = Vec::new();
    let mut count = 0;
    for (i, script) in w.scripts().iter().enumerate() {
        let host = World::host_of(script);
        let step = script
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".sh")
            .to_owned();
        let before = w.save(&format!("{i}-before"));
        let mut clean = w.run(script, &yes);
        if w.rke1.is_some() && harness::rke1::paste_nodes_block(&w, &clean) {
            clean = w.run(script, &yes);
        }
        if clean.run.code != 0 {
            problems.push(format!("the clean run failed:\n{}", clean.describe()));
            return (count, problems);
        }
        if !seen.insert(behaviour(&w, script)) {
            w.forget(&before);
            continue;
        }
        let after = w.save(&format!("{i}-after"));
        for point in harness::faults::points(&clean, &step, &nodes) {
            count += 1;
            let what = format!("{script} on {host}, failing {}", point.what);
            w.restore(&before);
            w.set_faults(std::slice::from_ref(&point.fault));
            let r = w.run(script, &yes);
            w.set_faults(&[]);
            let out = r.run.all();
            use harness::faults::Expect;
            match point.expect {
                Expect::Continues => {
                    if r.run.code != 0 {
                        problems.push(format!("{what}: the procedure treats this failure as an answer, but the step failed:\n{}", r.describe()));
                    }
                }
                Expect::Stops | Expect::WaitsThenStops => {
                    let mut bad = Vec::new();
                    if r.run.code == 0 {
                        bad.push("exited 0".to_owned());
                    }
                    for needle in [
                        "rewind: FAILED",
                        &format!("step:    {step}"),
                        "read:    README.md#",
                    ] {
                        if !r.run.stderr.contains(needle) {
                            bad.push(format!("does not say {needle:?}"));
                        }
                    }
                    if point.expect == Expect::Stops {
                        if r.run.code != harness::faults::RC {
                            bad.push(format!(
                                "exit {} instead of the command's {}",
                                r.run.code,
                                harness::faults::RC
                            ));
                        }
                        if !r
                            .run
                            .stderr
                            .contains(&format!("exit:    {}", harness::faults::RC))
                        {
                            bad.push("does not name the exit code".into());
                        }
                        if !r.run.stderr.contains("command: ")
                            || !r.run.stderr.contains(&point.fault.tool)
                        {
                            bad.push("does not name the command".into());
                        }
                        // Nothing after the failing command: no stand-in
                        // that changes things, no other printed command.
                        if let Some(at) = r.calls.iter().rposition(|c| c.rc == harness::faults::RC)
                        {
                            for c in &r.calls[at + 1..] {
                                if !checks::read_only(c) {
                                    bad.push(format!("ran after the failure: {c}"));
                                }
                            }
                        } else {
                            bad.push("the failing call is not in the journal".into());
                        }
                        let printed = harness::words::executed(&r.run.stdout);
                        if let Some(at) = point.printed
                            && printed.len() > at + 1
                        {
                            let more: Vec<String> =
                                printed[at + 1..].iter().map(|p| p.argv.join(" ")).collect();
                            bad.push(format!("ran after the failure: {more:?}"));
                        }
                    }
                    if !bad.is_empty() {
                        problems.push(format!("{what}: {}:\n{}", bad.join("; "), r.describe()));
                        continue;
                    }
                    let again = w.run(script, &yes);
                    if again.run.code != 0 {
                        problems.push(format!(
                            "{what}: with the fault removed, running the step again failed:\n{}",
                            again.describe()
                        ));
                        continue;
                    }
                }
            }
            let done = w.run(script, &yes);
            if done.run.code != 0 || !done.run.stdout.contains("already done") {
                problems.push(format!(
                    "{what}: running the finished step again:\n{}",
                    done.describe()
                ));
            }
            let leaked = checks::secrets(&what, &out);
            problems.extend(leaked);
        }
        w.restore(&after);
        w.forget(&before);
        w.forget(&after);
    }
    (count, problems)
}

/// Every command of every step of the golden bundles of one distribution,
/// made to fail (each distinct behaviour once, in the first bundle that has
/// it: `large` runs the same scripts as `etcd-airgap` on more nodes). Under
/// dash: the library's failure path is the same code in every shell, and
/// posh, the strictest (no printf builtin), runs the matrix of the richest
/// bundle in `faults_under_posh`.
fn faults_of(distribution: &str) {
    let mut seen = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    let mut total = 0;
    for plan in golden_plans() {
        let text = harness::world::plan_text(&plan);
        let of = if text.contains("distribution = \"rke1\"") {
            "rke1"
        } else if is_k3s(&plan) {
            "k3s"
        } else {
            "rke2"
        };
        if of != distribution {
            continue;
        }
        let (n, p) = fault_matrix(&plan, Shell::Dash, &mut seen);
        eprintln!("{plan}: {n} commands made to fail");
        total += n;
        if !p.is_empty() {
            failures.push(format!("{plan}:\n{}", p.join("\n\n")));
        }
    }
    eprintln!("fault matrix ({distribution}): {total} commands made to fail");
    assert!(
        total > 20,
        "only {total} faults: the matrix lost its points"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn faults_stop_the_step_and_resume_rke2() {
    faults_of("rke2");
}

#[test]
fn faults_stop_the_step_and_resume_rke1() {
    faults_of("rke1");
}

#[test]
fn faults_stop_the_step_and_resume_k3s() {
    faults_of("k3s");
}

/// The fault matrix of etcd-airgap (air-gap install, cluster-reset,
/// rejoin, drain, verify) under posh.
#[test]
fn faults_under_posh() {
    let (n, p) = fault_matrix(
        "etcd-airgap",
        Shell::Posh,
        &mut std::collections::BTreeSet::new(),
    );
    eprintln!("etcd-airgap under posh: {n} commands made to fail");
    assert!(p.is_empty(), "{}", p.join("\n\n"));
}

/// The stand-ins and the namespace runner are POSIX sh too, and lint clean.
#[test]
fn stand_ins_pass_shellcheck() {
    let shellcheck = common::require_tool("shellcheck");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("tests/stubs"))
        .expect("read tests/stubs")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    files.sort();
    files.push(root.join("tests/sandbox/enter.sh"));
    files.push(root.join("tests/fixtures/make-fixtures.sh"));
    let out = std::process::Command::new(shellcheck)
        .args(["-s", "sh", "-x", "-P", "SCRIPTDIR"])
        .args(&files)
        .output()
        .expect("run shellcheck");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A single server on SQLite with agents joined to it (K3s's most common
/// cluster, RKE2's too): the SQLite reference plans with two agents added,
/// RKE2 and K3s, walked under dash with the checks of the golden walks. The
/// agents start after the server, as on etcd.
#[test]
fn walk_sqlite_with_agents_under_dash() {
    let mut failures = Vec::new();
    for plan in ["sqlite", "k3s-sqlite"] {
        let mut text = plan_text(plan);
        for a in ["agent-1", "agent-2"] {
            text.push_str(&format!("\n[[nodes]]\nname = \"{a}\"\nrole = \"agent\"\n"));
        }
        let w = World::compile(&format!("{plan}-agents"), &text, Shell::Dash)
            .unwrap_or_else(|d| panic!("{plan} with agents is refused: {d:#?}"));
        assert!(
            w.steps.iter().any(|s| s.id == "start-agents"),
            "{plan}: no start-agents step"
        );
        let before = w.digest();
        let runs = match w.walk(&[]) {
            Ok(runs) => runs,
            Err(runs) => {
                failures.push(format!(
                    "{plan} with agents: the walk stopped:\n{}",
                    runs.last().expect("a run").describe()
                ));
                continue;
            }
        };
        let mut p = checks::order(&w, &w.journal());
        p.extend(checks::state(&w, &runs, &before));
        p.extend(checks::no_secrets(&w, &runs));
        p.extend(checks::bundle_intact(&w));
        p.extend(rerun_problems(&w));
        if !p.is_empty() {
            failures.push(format!("{plan} with agents:\n  {}", p.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
