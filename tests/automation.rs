//! Automation that re-upgrades (issue 10, item 8): the restore brings back
//! the backup's system-upgrade-controller Plans and node labels, so a
//! controller suspended before the rollback runs again once the first
//! server is up; and Rancher's system agent applies the version set in
//! Rancher.
//!
//! The golden bundles run in the sandbox harness (`tests/sandbox/`), whose
//! fake cluster here also holds a system-upgrade-controller deployment
//! (`cluster/deployments/<namespace>/<name>`: its replicas), the Plan CRD
//! (`cluster/crds/plans.upgrade.cattle.io`) and Plans
//! (`cluster/plans/<namespace>/<name>`: `version|channel`), which the
//! kubectl stand-in serves. Needs root.

mod common;
#[path = "sandbox/mod.rs"]
#[allow(dead_code)] // each test crate uses part of the harness
mod harness;

use std::fs;

use harness::checks;
use harness::shells::Shell;
use harness::world::{ScriptRun, World, plan_text};

const SUC: &str = "deployments/system-upgrade/system-upgrade-controller";

/// Puts `text` at `rel` in the fake cluster.
fn put(w: &World, rel: &str, text: &str) {
    let p = w.test.join("cluster").join(rel);
    fs::create_dir_all(p.parent().expect("parent")).expect("mkdir in the fake cluster");
    fs::write(p, text).expect("write the fake cluster");
}

fn get(w: &World, rel: &str) -> String {
    fs::read_to_string(w.test.join("cluster").join(rel)).unwrap_or_default()
}

/// The restored cluster of an installed standalone controller: one replica,
/// the Plan that upgraded the servers to the newer version, and one pinned
/// to the target.
fn with_suc(w: &World) {
    put(w, SUC, "1\n");
    put(w, "crds/plans.upgrade.cattle.io", "");
    put(w, "plans/system-upgrade/rke2-server", "v1.29.4+rke2r1|\n");
    put(w, "plans/system-upgrade/rke2-agent", "v1.28.9+rke2r1|\n");
}

fn run_of<'a>(runs: &'a [ScriptRun], step: &str) -> &'a ScriptRun {
    runs.iter()
        .find(|r| r.script.ends_with(&format!("-{step}.sh")))
        .unwrap_or_else(|| panic!("no run of step {step}"))
}

fn script_of(w: &World, step: &str) -> String {
    w.scripts()
        .into_iter()
        .find(|s| s.ends_with(&format!("-{step}.sh")))
        .unwrap_or_else(|| panic!("no script of step {step}"))
}

/// The controller is scaled to 0 after server-1 started and before server-2
/// rejoins (the stand-ins' journal), recorded on the workstation; the Plans
/// are listed with their versions; the verify step re-checks, and fails
/// once the controller runs again while a Plan targets the newer version.
#[test]
fn the_controller_is_stopped_before_the_other_servers_rejoin() {
    let w = World::golden("etcd-online", Shell::Dash);
    with_suc(&w);
    let runs = checks::walk_ok(&w);

    let calls = w.journal();
    let at = |pred: &dyn Fn(&harness::stubs::Call) -> bool| {
        calls
            .iter()
            .position(pred)
            .unwrap_or_else(|| panic!("no such call in\n{}", checks::trace(&calls)))
    };
    let start = |host: &'static str| {
        move |c: &harness::stubs::Call| {
            c.host == host && c.tool == "systemctl" && c.starts(&["start", "--no-block"])
        }
    };
    let scale = at(&|c| {
        c.host == "workstation"
            && c.tool == "kubectl"
            && c.arg_texts().ends_with(&[
                "-n".into(),
                "system-upgrade".into(),
                "scale".into(),
                "deployment".into(),
                "system-upgrade-controller".into(),
                "--replicas=0".into(),
            ])
    });
    assert!(
        at(&start("server-1")) < scale,
        "scaled before server-1 started"
    );
    for n in ["server-2", "server-3", "agent-1", "agent-2"] {
        assert!(scale < at(&start(n)), "{n} started before the scale");
    }
    assert_eq!(get(&w, SUC).trim(), "0", "the controller is at 0 replicas");

    let suspend = run_of(&runs, "suspend-upgrades");
    let out = suspend.run.all();
    for needle in [
        "system-upgrade-controller: deployment system-upgrade/system-upgrade-controller, 1 replicas",
        "Plan system-upgrade/rke2-server: version v1.29.4+rke2r1, not the rollback target v1.28.9+rke2r1",
        "delete it: kubectl --kubeconfig=/root/.kube/prod-east.yaml -n system-upgrade delete plans.upgrade.cattle.io rke2-server",
        "Plan system-upgrade/rke2-agent: version v1.28.9+rke2r1",
        "ok: system-upgrade-controller stopped: 1 deployment(s) scaled to 0",
    ] {
        assert!(
            out.contains(needle),
            "expected {needle:?}:\n{}",
            suspend.describe()
        );
    }
    let record = format!(
        "/var/lib/rewind/prod-east/{}/suc-scaled",
        w.plan.plan_sha256
    );
    assert_eq!(
        w.host("workstation").text(&record).as_deref(),
        Some("system-upgrade system-upgrade-controller 1\n"),
        "the scaled deployment and its replicas are recorded"
    );

    let verify = run_of(&runs, "verify");
    let out = verify.run.all();
    for needle in [
        "Plan system-upgrade/rke2-server targets version v1.29.4+rke2r1, not v1.28.9+rke2r1",
        "scale it back: kubectl --kubeconfig=/root/.kube/prod-east.yaml -n system-upgrade scale deployment system-upgrade-controller --replicas=1",
        "ok: no system-upgrade-controller replica runs",
    ] {
        assert!(
            out.contains(needle),
            "expected {needle:?}:\n{}",
            verify.describe()
        );
    }

    // Someone scales it back up before the Plan is fixed: verify fails.
    put(&w, SUC, "1\n");
    let again = w.run(&script_of(&w, "verify"), &[("REWIND_FORCE", "1")]);
    assert_eq!(again.run.code, 1, "{}", again.describe());
    assert!(
        again.run.stderr.contains(
            "system-upgrade-controller runs: system-upgrade/system-upgrade-controller(1 replicas, 1 running), and Plans target another version than v1.28.9+rke2r1: system-upgrade/rke2-server"
        ),
        "{}",
        again.describe()
    );
    // With the Plan fixed, a running controller is fine.
    put(&w, "plans/system-upgrade/rke2-server", "v1.28.9+rke2r1|\n");
    let fixed = w.run(&script_of(&w, "verify"), &[("REWIND_FORCE", "1")]);
    assert_eq!(fixed.run.code, 0, "{}", fixed.describe());
}

/// No system-upgrade-controller installed (the golden worlds): the step
/// says so and succeeds, scaling nothing.
#[test]
fn without_the_crd_the_step_says_so_and_succeeds() {
    let w = World::golden("etcd-online", Shell::Dash);
    let runs = checks::walk_ok(&w);
    let suspend = run_of(&runs, "suspend-upgrades");
    let out = suspend.run.all();
    assert!(
        out.contains("no system-upgrade-controller deployment in any namespace")
            && out.contains("ok: the CRD plans.upgrade.cattle.io does not exist"),
        "{}",
        suspend.describe()
    );
    assert!(
        suspend.calls.iter().all(checks::read_only),
        "{}",
        suspend.describe()
    );
}

/// A dry run of the step scales nothing, records nothing, and prints the
/// command the real run then runs.
#[test]
fn a_dry_run_of_the_step_changes_nothing() {
    let w = World::golden("etcd-online", Shell::Dash);
    with_suc(&w);
    let suspend = script_of(&w, "suspend-upgrades");
    let mut dry = None;
    let runs = w
        .walk_with(&[], |w, script| {
            if script == suspend {
                let before = w.digest();
                let r = w.run(script, &[("REWIND_DRY_RUN", "1")]);
                dry = Some((r, before, w.digest()));
            }
        })
        .unwrap_or_else(|runs| panic!("{}", runs.last().expect("a run").describe()));
    let (d, before, after) = dry.expect("the dry run ran");
    assert!(
        d.run.stdout.contains(
            "[dry-run] would run: kubectl --kubeconfig=/root/.kube/prod-east.yaml -n system-upgrade scale deployment system-upgrade-controller --replicas=0"
        ),
        "{}",
        d.describe()
    );
    let real = run_of(&runs, "suspend-upgrades");
    let p = checks::dry_run(&d, &before, &after, real);
    assert!(p.is_empty(), "{}", p.join("\n"));
}

/// External database: the step runs after every server started, before the
/// agents (checks::order); SQLite: after its one server.
#[test]
fn external_database_and_sqlite_stop_the_controller_after_the_servers() {
    for plan in ["postgres", "sqlite"] {
        let w = World::golden(plan, Shell::Dash);
        with_suc(&w);
        checks::walk_ok(&w);
        assert_eq!(get(&w, SUC).trim(), "0", "{plan}: the controller is at 0");
    }
}

/// A node that Rancher provisions (rancher-system-agent's unit) is refused
/// in the preflight, naming the file and the plan key, before anything
/// changes; with `rancher-managed = true` the walk goes through, and the
/// step that stops automatic upgrades reports Rancher's cluster agent.
#[test]
fn a_rancher_managed_node_is_refused_unless_the_plan_says_so() {
    let unit = "/etc/systemd/system/rancher-system-agent.service";
    let w = World::golden("etcd-online", Shell::Dash);
    w.host("agent-1").write(
        unit,
        "[Service]\nExecStart=/usr/local/bin/rancher-system-agent sentinel\n",
        0o644,
    );
    let before = w.digest();
    let Err(runs) = w.walk(&[]) else {
        panic!("the walk went through although agent-1 has {unit}")
    };
    let last = runs.last().expect("a run");
    assert_eq!(
        last.script,
        "nodes/agent-1/01-preflight.sh",
        "{}",
        last.describe()
    );
    assert_eq!(last.run.code, 1, "{}", last.describe());
    for needle in [
        &format!("managed by Rancher (found {unit})"),
        "rancher-managed = true",
        "changed: nothing",
    ] {
        assert!(
            last.run.all().contains(needle),
            "expected {needle:?}:\n{}",
            last.describe()
        );
    }
    for c in w.journal() {
        assert!(checks::read_only(&c), "ran before the refusal: {c}");
    }
    let changed = checks::changed_besides_journal(&before, &w.digest());
    assert!(changed.is_empty(), "{}", changed.join("\n"));

    // Acknowledged in the plan: the walk goes through.
    let text = plan_text("etcd-online").replace(
        "target-version = \"v1.28.9+rke2r1\"\n",
        "target-version = \"v1.28.9+rke2r1\"\n# Rancher's Kubernetes version for this cluster is set to v1.28.9+rke2r1.\nrancher-managed = true\n",
    );
    let w = World::compile("etcd-online-rancher", &text, Shell::Dash)
        .expect("the acknowledged plan compiles");
    w.host("agent-1").write(
        unit,
        "[Service]\nExecStart=/usr/local/bin/rancher-system-agent sentinel\n",
        0o644,
    );
    w.host("agent-1").mkdir("/etc/rancher/agent");
    put(&w, "deployments/cattle-system/cattle-cluster-agent", "1\n");
    put(
        &w,
        "deployments/cattle-system/system-upgrade-controller",
        "1\n",
    );
    let runs = checks::walk_ok(&w);
    let pre = runs
        .iter()
        .find(|r| r.script == "nodes/agent-1/01-preflight.sh")
        .expect("agent-1's preflight");
    assert!(
        pre.run.stdout.contains(&format!(
            "ok: managed by Rancher (found {unit}, /etc/rancher/agent)"
        )),
        "{}",
        pre.describe()
    );
    let suspend = run_of(&runs, "suspend-upgrades");
    assert!(
        suspend.run.stdout.contains(
            "Rancher manages this cluster (cattle-system/cattle-cluster-agent); the plan says"
        ),
        "{}",
        suspend.describe()
    );
    assert_eq!(
        get(&w, "deployments/cattle-system/system-upgrade-controller").trim(),
        "0",
        "Rancher's controller in cattle-system is scaled to 0 too"
    );

    // Not acknowledged, no agent on the nodes, but Rancher's cluster agent
    // in the cluster: a warning.
    let w = World::golden("etcd-online", Shell::Dash);
    put(&w, "deployments/cattle-system/cattle-cluster-agent", "1\n");
    let runs = checks::walk_ok(&w);
    let suspend = run_of(&runs, "suspend-upgrades");
    assert!(
        suspend.run.stderr.contains(
            "WARNING: Rancher manages this cluster (cattle-system/cattle-cluster-agent), and the plan does not say so"
        ),
        "{}",
        suspend.describe()
    );
}

/// The plan key: `rancher-managed = true` is recorded among the checked
/// preconditions and reaches the preflight of every node and the step;
/// it is not a key of RKE1 plans; a non-boolean is a type error.
#[test]
fn the_rancher_managed_key() {
    use rewind::plan::Func;
    use rewind::source::SourceFile;
    let check = |name: &str, text: &str| {
        rewind::validate::check(&SourceFile::new(format!("{name}.toml"), text), None)
    };
    let text = plan_text("etcd-online").replace(
        "target-version = \"v1.28.9+rke2r1\"\n",
        "target-version = \"v1.28.9+rke2r1\"\nrancher-managed = true\n",
    );
    let c = check("managed", &text);
    let model = c.model.unwrap_or_else(|| panic!("{:?}", c.diagnostics));
    assert!(
        model
            .checked
            .iter()
            .any(|l| l.starts_with("rancher-managed:")),
        "{:?}",
        model.checked
    );
    let plan = rewind::plan::plan(&model);
    let ops: Vec<&rewind::plan::Op> = plan
        .steps
        .iter()
        .flat_map(|s| &s.scripts)
        .flat_map(|s| s.preflight.iter().chain(&s.actions))
        .collect();
    let agent_checks: Vec<_> = ops
        .iter()
        .filter(|o| o.func == Func::CheckRancherAgent)
        .collect();
    assert_eq!(agent_checks.len(), 5, "one per node");
    assert!(agent_checks.iter().all(|o| o.args[0] == "true"));
    assert!(
        ops.iter()
            .any(|o| o.func == Func::SuspendUpgrades && o.args[2] == "true")
    );

    let text = plan_text("etcd-online").replace(
        "target-version = \"v1.28.9+rke2r1\"\n",
        "target-version = \"v1.28.9+rke2r1\"\nrancher-managed = \"yes\"\n",
    );
    let c = check("typo", &text);
    assert!(c.model.is_none());
    assert!(
        c.diagnostics.iter().any(|d| d.code == "type"),
        "{:?}",
        c.diagnostics
    );

    let text = plan_text("rancher-upgrade").replace(
        "target-version = \"v2.4.5\"\n",
        "target-version = \"v2.4.5\"\nrancher-managed = true\n",
    );
    let c = check("rke1", &text);
    assert!(c.model.is_none());
    assert!(
        c.diagnostics
            .iter()
            .any(|d| d.code == "fields" && d.message.contains("cluster.rancher-managed")),
        "{:?}",
        c.diagnostics
    );
}
