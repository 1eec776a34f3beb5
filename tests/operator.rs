//! The operator's night (issue 16, items 1, 3 and 4), run in the sandbox:
//! the preflight reports every problem at once; `sh host.sh rehearse`
//! dry-runs a host's pending steps in order, takes what an earlier step of
//! the host establishes as given and lists every real problem; `sh host.sh
//! status` says where a host stands and `sh host.sh next` runs its next step,
//! refusing when the README order asks for a step of another host first and
//! nobody confirmed it.
//!
//! Every script runs in its own private namespace on a fake host
//! (`tests/sandbox/`); nothing runs on this machine. Needs root.

mod common;
#[path = "sandbox/mod.rs"]
#[allow(dead_code)] // each test crate uses part of the harness
mod harness;

use harness::checks;
use harness::host::{Host, Launch};
use harness::shells::Shell;
use harness::stubs::Fault;
use harness::world::{ScriptRun, World};

const SNAPSHOT: &str = "/var/lib/rancher/rke2/server/db/snapshots/pre-upgrade-server-1-1716239400";
const TOKEN: &str = "/root/rke2-backup/token";
const CONFIG: &str = "/etc/rancher/rke2/config.yaml";

/// Removes the lines starting with `prefix` from a file of a host.
fn drop_lines(h: &Host, path: &str, prefix: &str) {
    let t = h.text(path).unwrap_or_default();
    let kept: String = t
        .lines()
        .filter(|l| !l.starts_with(prefix))
        .map(|l| format!("{l}\n"))
        .collect();
    h.write(path, kept, 0o600);
}

/// Appends `text` to a file of a host.
fn append(h: &Host, path: &str, text: &str) {
    let mut t = h.text(path).unwrap_or_default();
    t.push_str(text);
    h.write(path, t, 0o600);
}

/// The lines of `text` from the first that starts with `from` on.
fn from_line<'a>(text: &'a str, from: &str) -> &'a str {
    let at = text
        .find(&format!("\n{from}"))
        .map(|i| i + 1)
        .or_else(|| text.starts_with(from).then_some(0))
        .unwrap_or_else(|| panic!("no line starting with {from:?} in:\n{text}"));
    &text[at..]
}

/// Replaces every ISO time (`2026-11-21T13:15:01Z`) with `<time>`.
fn mask_times(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let is_time = b.len() >= i + 20
            && b[i + 4] == b'-'
            && b[i + 10] == b'T'
            && b[i + 19] == b'Z'
            && b[i..i + 4].iter().all(u8::is_ascii_digit);
        if is_time {
            out.push_str("<time>");
            i += 20;
        } else {
            let c = text[i..].chars().next().expect("a char");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Runs every script of the steps numbered `..=last` in README order, as an
/// operator would, each succeeding.
fn run_steps_up_to(w: &World, last: u64) {
    for step in w.steps.iter().filter(|s| s.number <= last) {
        for script in &step.scripts {
            let r = w.run(script, &[("REWIND_YES", "1")]);
            assert_eq!(r.run.code, 0, "{}", r.describe());
        }
    }
}

fn expect_nothing_changed(w: &World, r: &ScriptRun, before: &checks::Digest) {
    let changed = checks::changed_besides_journal(before, &w.digest());
    assert!(
        changed.is_empty(),
        "{} changed hosts:\n{}\n{}",
        r.script,
        changed.join("\n"),
        r.describe()
    );
}

/// Three things wrong on the init server (a damaged snapshot fails two
/// checks): the preflight names each problem
/// with its hint, in one run, then fails once, changing nothing.
#[test]
fn preflight_reports_every_problem_at_once() {
    let w = World::golden("etcd-online", Shell::Dash);
    let s1 = w.host("server-1");
    // The saved token is missing, the snapshot is not the one of the plan,
    // and the init server's config joins another server.
    std::fs::remove_file(s1.disk(TOKEN)).expect("remove the saved token");
    append(s1, SNAPSHOT, "damaged");
    append(s1, CONFIG, "server: https://server-2:9345\n");
    let before = w.digest();
    let r = w.run("nodes/server-1/01-preflight.sh", &[]);
    assert_eq!(r.run.code, 1, "{}", r.describe());
    let err = &r.run.stderr;
    for needle in [
        "rewind: PROBLEM 1: ",
        "rewind: PROBLEM 2: ",
        "rewind: PROBLEM 3: ",
        "rewind: PROBLEM 4: ",
        "rewind: FAILED: preflight: 4 problems; nothing was changed",
        "changed: nothing (the step stopped before its actions)",
    ] {
        assert!(err.contains(needle), "no {needle:?}:\n{}", r.describe());
    }
    assert!(!err.contains("PROBLEM 5"), "{}", r.describe());
    // Every problem has its hint.
    assert_eq!(
        err.matches("rewind: PROBLEM ").count(),
        err.matches("\n  hint:    ").count(),
        "a problem without a hint:\n{}",
        r.describe()
    );
    // The checks that found nothing wrong still ran and said so.
    assert!(
        r.run
            .stdout
            .contains("ok: this node is server-1 in Kubernetes"),
        "{}",
        r.describe()
    );
    assert!(
        r.calls
            .iter()
            .all(|c| c.tool != "systemctl" || c.starts(&["is-"])),
        "{}",
        r.describe()
    );
    expect_nothing_changed(&w, &r, &before);
    insta::assert_snapshot!("preflight_every_problem", err.as_str());
}

/// A rehearsal on server-2 after steps 01-03 ran, before step 04: it
/// rehearses 04 and 08 only, takes the version that 04 installs as given in
/// 08 ("established by step 04-install"), and lists the one real problem
/// (server: was removed from config.yaml, so the rejoin would start a second
/// cluster); nothing changes on any host.
#[test]
fn rehearsal_before_step_04_takes_what_it_establishes_and_lists_a_real_problem() {
    let w = World::golden("etcd-online", Shell::Dash);
    run_steps_up_to(&w, 3);
    drop_lines(w.host("server-2"), CONFIG, "server:");
    let before = w.digest();
    let r = w.host_sh("server-2", &["rehearse"], &[]);
    assert_eq!(r.run.code, 1, "{}", r.describe());
    let out = r.run.all();
    for needle in [
        "step 01-preflight is done on server-2",
        "step 03-stop is done on server-2",
        "==== rehearsal of step 04-install on server-2",
        "rewind: rehearsal: after step 04-install: /usr/local/bin/rke2 --version is v1.28.9+rke2r1",
        "ok: /usr/local/bin/rke2 --version is v1.28.9+rke2r1: established by step 04-install (rehearsal)",
        "==== rehearsal of step 08-rejoin on server-2",
        "[dry-run] would run: systemctl start --no-block rke2-server",
    ] {
        assert!(out.contains(needle), "no {needle:?}:\n{}", r.describe());
    }
    // Read-only: no stand-in asked to change anything, no file changed.
    for c in &r.calls {
        let read_only = match c.tool.as_str() {
            "rke2" => c.starts(&["--version"]),
            "systemctl" => c.starts(&["is-enabled"]) || c.starts(&["is-active"]),
            _ => false,
        };
        assert!(read_only, "the rehearsal called {c}:\n{}", r.describe());
    }
    expect_nothing_changed(&w, &r, &before);
    assert!(w.host("server-2").tmp_leftovers().is_empty());
    let summary = from_line(&r.run.stdout, "rewind: established along the way");
    insta::assert_snapshot!(
        "rehearsal_before_step_04",
        format!(
            "{summary}--- stderr (end)\n{}",
            from_line(&r.run.stderr, "rewind: REHEARSAL")
        )
    );
    // Fixed, the rehearsal finds nothing and exits 0.
    append(
        w.host("server-2"),
        CONFIG,
        "server: https://server-1:9345\n",
    );
    let r = w.host_sh("server-2", &["rehearse"], &[]);
    assert_eq!(r.run.code, 0, "{}", r.describe());
    assert!(
        r.run
            .stdout
            .contains("REHEARSAL of server-2: 2 step(s) rehearsed, no problem found"),
        "{}",
        r.describe()
    );
}

/// The workstation's rehearsal and the air-gapped init server's: every fact
/// an earlier step of the host establishes, and no problem on a healthy
/// cluster.
#[test]
fn rehearsal_of_a_healthy_cluster_finds_nothing() {
    let w = World::golden("etcd-airgap", Shell::Dash);
    let before = w.digest();
    let r = w.host_sh("server-1", &["rehearse"], &[]);
    assert_eq!(r.run.code, 0, "{}", r.describe());
    for needle in [
        "after step 03-stop: rke2-server is stopped",
        "after step 04-install: /usr/local/bin/rke2 --version is v1.28.9+rke2r1",
        "after step 04-install: the image archives of the target in /root/rke2-artifacts are in /var/lib/rancher/rke2/agent/images",
        "ok: rke2-server is stopped: established by step 03-stop (rehearsal)",
        "REHEARSAL of server-1: 5 step(s) rehearsed, no problem found; nothing was changed",
    ] {
        assert!(
            r.run.stdout.contains(needle),
            "no {needle:?}:\n{}",
            r.describe()
        );
    }
    let r = w.host_sh("workstation", &["rehearse", "--node", "workstation"], &[]);
    assert_eq!(r.run.code, 0, "{}", r.describe());
    expect_nothing_changed(&w, &r, &before);
}

/// `next` runs a host's first pending step; before a step whose README
/// predecessor runs on other hosts it asks for confirmation, refuses with
/// no terminal (exit 4, nothing run), goes on with --confirmed or a typed
/// "yes"; on a step run one host at a time it names the hosts before this
/// one.
#[test]
fn next_refuses_out_of_order_unless_confirmed() {
    let w = World::golden("etcd-online", Shell::Dash);
    // Step 01 has no step before it: it runs.
    let r = w.host_sh("server-2", &["next"], &[]);
    assert_eq!(r.run.code, 0, "{}", r.describe());
    assert!(
        r.run.stdout.contains("next on server-2: step 01-preflight"),
        "{}",
        r.describe()
    );
    assert!(w.host("server-2").has(&format!(
        "/var/lib/rewind/prod-east/{}/01-preflight.done",
        w.plan.plan_sha256
    )));
    // Step 03 follows the workstation's step 02: refused without a terminal.
    let before = w.digest();
    let r = w.host_sh("server-2", &["next"], &[]);
    assert_eq!(r.run.code, 4, "{}", r.describe());
    assert!(r.calls.is_empty(), "{}", r.describe());
    expect_nothing_changed(&w, &r, &before);
    let refusal = format!("{}{}", r.run.stdout, r.run.stderr);
    assert!(
        refusal.contains(
            "Before step 03-stop on server-2: step 02-drain must have finished on workstation first"
        ),
        "{}",
        r.describe()
    );
    insta::assert_snapshot!("next_refused", refusal);
    // Typed on a terminal: anything but yes refuses, yes goes on (and the
    // destructive step then asks for the cluster name).
    let typed = |answer: &str| Launch {
        terminal: true,
        stdin: Some(answer.as_bytes().to_vec()),
        ..Launch::default()
    };
    let r = w.run_args_on("server-2", "host.sh", &["next"], &[], typed("no\n"));
    assert_eq!(r.run.code, 4, "{}", r.describe());
    assert!(r.calls.is_empty(), "{}", r.describe());
    let r = w.run_args_on(
        "server-2",
        "host.sh",
        &["next"],
        &[],
        typed("yes\nprod-east\n"),
    );
    assert_eq!(r.run.code, 0, "{}", r.describe());
    assert!(
        r.calls
            .iter()
            .any(|c| c.tool == "systemctl" && c.starts(&["stop"])),
        "{}",
        r.describe()
    );
    // --confirmed (REWIND_YES=1 for the destructive step itself).
    let r = w.host_sh("server-2", &["next", "--confirmed"], &[("REWIND_YES", "1")]);
    assert_eq!(r.run.code, 0, "{}", r.describe());
    assert!(
        r.run.stdout.contains("next on server-2: step 04-install"),
        "{}",
        r.describe()
    );
    // server-3 at the rejoin, one server at a time: server-2 first.
    for step in ["01-preflight", "03-stop", "04-install"] {
        let r = w.run(&format!("nodes/server-3/{step}.sh"), &[("REWIND_YES", "1")]);
        assert_eq!(r.run.code, 0, "{}", r.describe());
    }
    let r = w.host_sh("server-3", &["next"], &[]);
    assert_eq!(r.run.code, 4, "{}", r.describe());
    assert!(
        r.run.stdout.contains(
            "step 07-suspend-upgrades must have finished on workstation, and step 08-rejoin must have finished on server-2 (one host at a time, in this order)"
        ),
        "{}",
        r.describe()
    );
    // The workstation, by --node.
    let r = w.host_sh("workstation", &["next", "--node", "workstation"], &[]);
    assert_eq!(r.run.code, 4, "{}", r.describe());
    assert!(
        r.run.stdout.contains(
            "Before step 02-drain on workstation: step 01-preflight must have finished on agent-1, agent-2, server-1, server-2, server-3 first"
        ),
        "{}",
        r.describe()
    );
}

/// `status` after some steps: done with the time, failed with the exit code
/// and the README section, pending, and the next step.
#[test]
fn status_after_some_steps() {
    let w = World::golden("etcd-online", Shell::Dash);
    let r = w.run("nodes/server-2/01-preflight.sh", &[]);
    assert_eq!(r.run.code, 0, "{}", r.describe());
    w.set_faults(&[Fault {
        host: Some("server-2".into()),
        tool: "systemctl".into(),
        args: Some(vec!["stop".into(), "rke2-server".into()]),
        rc: 5,
    }]);
    let r = w.run("nodes/server-2/03-stop.sh", &[("REWIND_YES", "1")]);
    w.set_faults(&[]);
    assert_eq!(r.run.code, 5, "{}", r.describe());
    let before = w.digest();
    let r = w.host_sh("server-2", &["status"], &[]);
    assert_eq!(r.run.code, 0, "{}", r.describe());
    assert!(r.calls.is_empty(), "{}", r.describe());
    expect_nothing_changed(&w, &r, &before);
    insta::assert_snapshot!("status_after_some_steps", mask_times(&r.run.stdout));
    // A host that is none of the nodes is told how to name one.
    let r = w.host_sh("workstation", &["status"], &[]);
    assert_eq!(r.run.code, 3, "{}", r.describe());
    assert!(
        r.run.stderr.contains("--node workstation"),
        "{}",
        r.describe()
    );
}
