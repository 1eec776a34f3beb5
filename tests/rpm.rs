//! RPM downgrades really downgrade (issue 10, item 10).
//!
//! With `install-method = "rpm"`, install.sh's rpm method runs `yum install
//! -y rke2-TYPE-VER` or `zypper install -y ...` of that one package, with no
//! downgrade flag: zypper (without `--oldpackage`) and EL 7 yum leave the
//! newer packages in place, and rke2-common, which rke2-server and
//! rke2-agent require at exactly their own version-release, is not named.
//! The bundles run the host's package manager instead, with every rke2
//! package at its exact version-release in one transaction, check in step 1
//! that the configured repositories hold the target, and check `rpm -q`
//! afterwards.
//!
//! The hosts are RPM hosts of the sandbox (`seed::seed_rpm`): the stand-ins
//! of rpm and of dnf (and yum), EL 7 yum or zypper (`tests/stubs/`), the
//! rke2 packages installed at the current version, the rancher-rke2
//! repository of the current minor, whose repositories hold the current and
//! the target versions. Needs root and the six shells.

mod common;
#[path = "sandbox/mod.rs"]
#[allow(dead_code)] // each test crate uses part of the harness
mod harness;

use harness::checks;
use harness::host::Launch;
use harness::seed::{self, PackageManager};
use harness::shells::Shell;
use harness::stubs::Call;
use harness::world::{World, enter_script};

const PLAN: &str = "rpm-custom-datadir";
const TARGET_RPM: &str = "1.29.3~rke2r1";
const CURRENT_RPM: &str = "1.29.4~rke2r1";

/// Runs a command on a node of `w` (not a script of the bundle), as root.
fn on(w: &World, node: &str, argv: &[&str]) -> harness::host::Run {
    w.host(node).run(
        &enter_script(),
        &w.test,
        &Launch {
            argv: argv.iter().map(|s| (*s).to_owned()).collect(),
            env: w.base_env(),
            cwd: Some("/".into()),
            ..Launch::default()
        },
    )
}

/// What `rpm -q` says of the rke2 packages of `node`.
fn rpm_q(w: &World, node: &str) -> String {
    let ty = if w.facts().servers().contains(&node) {
        "rke2-server"
    } else {
        "rke2-agent"
    };
    on(w, node, &["rpm", "-q", ty, "rke2-common", "rke2-selinux"]).stdout
}

/// The package manager calls of `node` that change packages.
fn package_changes(w: &World, node: &str) -> Vec<Call> {
    w.journal()
        .into_iter()
        .filter(|c| {
            c.host == node
                && matches!(c.tool.as_str(), "dnf" | "yum" | "zypper")
                && !checks::read_only(c)
        })
        .collect()
}

/// The golden RPM bundle, under each of the six shells: the whole rollback
/// runs, each node downgrades rke2-server or rke2-agent together with
/// rke2-common in one `dnf downgrade`, and `rpm -q` ends showing the target
/// for every rke2 package (rke2-selinux kept).
#[test]
fn the_rpm_bundle_downgrades_every_package_under_six_shells() {
    for shell in Shell::ALL {
        let w = World::golden(PLAN, shell);
        let runs = checks::walk_ok(&w);
        for (node, role, _) in &w.facts().nodes {
            let ty = if *role == rewind::model::Role::Server {
                "rke2-server"
            } else {
                "rke2-agent"
            };
            let q = rpm_q(&w, node);
            assert_eq!(
                q,
                format!(
                    "{ty}-{TARGET_RPM}-0.el8.x86_64\nrke2-common-{TARGET_RPM}-0.el8.x86_64\nrke2-selinux-0.18-1.el8.noarch\n"
                ),
                "{node} under {}",
                shell.name()
            );
            let changes = package_changes(&w, node);
            assert_eq!(changes.len(), 1, "{node}: {changes:?}");
            assert_eq!(
                changes[0].arg_texts(),
                [
                    "downgrade".to_owned(),
                    "-y".into(),
                    format!("{ty}-{TARGET_RPM}-0.el8"),
                    format!("rke2-common-{TARGET_RPM}-0.el8"),
                ],
                "{node}"
            );
            // install.sh is not run for RPM installs.
            assert!(
                !w.journal()
                    .iter()
                    .any(|c| c.host == *node && c.tool == "rke2-install.sh"),
                "{node}: install.sh ran"
            );
            let install = runs
                .iter()
                .find(|r| r.host == *node && r.script.ends_with("04-install.sh"))
                .expect("an install run");
            assert!(
                install.run.stdout.contains(&format!(
                    "ok: rpm -q: {ty} {TARGET_RPM}-0.el8, rke2-common {TARGET_RPM}-0.el8, rke2-selinux 0.18-1.el8"
                )),
                "{}",
                install.describe()
            );
            let pre = runs
                .iter()
                .find(|r| r.host == *node && r.script.ends_with("01-preflight.sh"))
                .expect("a preflight run");
            assert!(
                pre.run.stdout.contains(&format!(
                    "ok: available from the configured repositories (dnf): {ty}-{TARGET_RPM}-0.el8 (rancher-rke2-1.29-stable), rke2-common-{TARGET_RPM}-0.el8 (rancher-rke2-1.29-stable)"
                )),
                "{}",
                pre.describe()
            );
        }
        eprintln!("{PLAN} under {}: ok", shell.name());
    }
}

/// What install.sh's rpm method runs does not downgrade: on a SUSE host,
/// `zypper install -y rke2-agent-VER` leaves every package where it was
/// (zypper wants `--oldpackage`); on EL 7, `yum install -y` says "Nothing to
/// do"; dnf refuses to install an older package. (The stand-ins, as the
/// tools document it; the reason the bundles do not rely on install.sh.)
#[test]
fn what_install_sh_runs_does_not_downgrade() {
    let w = World::golden(PLAN, Shell::Dash);
    let f = w.facts().clone();
    for (pm, argv) in [
        (
            PackageManager::Zypper,
            vec![
                "zypper",
                "--gpg-auto-import-keys",
                "install",
                "-y",
                "rke2-agent-1.29.3~rke2r1",
            ],
        ),
        (
            PackageManager::Yum,
            vec!["yum", "install", "-y", "rke2-agent-1.29.3~rke2r1"],
        ),
        (
            PackageManager::Dnf,
            vec!["yum", "install", "-y", "rke2-agent-1.29.3~rke2r1"],
        ),
    ] {
        seed::seed_rpm(w.host("lab-a1"), &f, "lab-a1", pm);
        let r = on(&w, "lab-a1", &argv);
        let q = rpm_q(&w, "lab-a1");
        assert!(
            q.contains(&format!("rke2-agent-{CURRENT_RPM}-"))
                && q.contains(&format!("rke2-common-{CURRENT_RPM}-")),
            "{pm:?}: {argv:?} changed the packages:\n{q}\n{}",
            r.all()
        );
        if pm == PackageManager::Dnf {
            assert_ne!(r.code, 0, "{}", r.all());
        } else {
            assert_eq!(r.code, 0, "{pm:?}: {}", r.all());
        }
    }
    // Naming rke2-agent alone with a downgrade flag breaks the requirement
    // on rke2-common: the transaction is refused.
    seed::seed_rpm(w.host("lab-a1"), &f, "lab-a1", PackageManager::Zypper);
    let r = on(
        &w,
        "lab-a1",
        &[
            "zypper",
            "--non-interactive",
            "install",
            "--oldpackage",
            "rke2-agent=1.29.3~rke2r1-0.sle",
        ],
    );
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("requires rke2-common"), "{}", r.all());
}

/// A SUSE agent (zypper) and an EL 7 server (yum 3) in the cluster: each is
/// downgraded by the package manager it has, zypper with `--oldpackage` and
/// `NAME=VERSION-RELEASE`, yum with `downgrade`, and ends at the target.
#[test]
fn each_host_downgrades_with_the_package_manager_it_has() {
    let w = World::golden(PLAN, Shell::Dash);
    let f = w.facts().clone();
    seed::seed_rpm(w.host("lab-a1"), &f, "lab-a1", PackageManager::Zypper);
    seed::seed_rpm(w.host("lab-s2"), &f, "lab-s2", PackageManager::Yum);
    checks::walk_ok(&w);
    let a1 = package_changes(&w, "lab-a1");
    assert_eq!(a1.len(), 1, "{a1:?}");
    assert_eq!(
        a1[0].arg_texts(),
        [
            "--non-interactive".to_owned(),
            "install".into(),
            "--oldpackage".into(),
            format!("rke2-agent={TARGET_RPM}-0.sle"),
            format!("rke2-common={TARGET_RPM}-0.sle"),
        ]
    );
    let s2 = package_changes(&w, "lab-s2");
    assert_eq!(s2.len(), 1, "{s2:?}");
    assert_eq!(s2[0].tool, "yum");
    assert_eq!(
        s2[0].arg_texts(),
        [
            "downgrade".to_owned(),
            "-y".into(),
            format!("rke2-server-{TARGET_RPM}-0.el7"),
            format!("rke2-common-{TARGET_RPM}-0.el7"),
        ]
    );
    assert_eq!(
        rpm_q(&w, "lab-a1"),
        format!(
            "rke2-agent-{TARGET_RPM}-0.sle.x86_64\nrke2-common-{TARGET_RPM}-0.sle.x86_64\nrke2-selinux-0.18-1.sle.noarch\n"
        )
    );
    assert_eq!(
        rpm_q(&w, "lab-s2"),
        format!(
            "rke2-server-{TARGET_RPM}-0.el7.x86_64\nrke2-common-{TARGET_RPM}-0.el7.x86_64\nrke2-selinux-0.18-1.el7.noarch\n"
        )
    );
}

/// The target's packages missing from the repositories configured on one
/// node: its step 1 refuses, naming the packages and the repository file,
/// before anything stopped on any node.
#[test]
fn a_target_missing_from_the_repositories_is_refused_in_step_1() {
    let w = World::golden(PLAN, Shell::Dash);
    let h = w.host("lab-s2");
    let repo = "/var/lib/rpm-stand-in/repository";
    let kept: String = h
        .text(repo)
        .expect("the repository listing")
        .lines()
        .filter(|l| !l.contains(TARGET_RPM))
        .map(|l| format!("{l}\n"))
        .collect();
    h.write(repo, kept, 0o644);
    checks::expect_refused_at(
        &w,
        "nodes/lab-s2/01-preflight.sh",
        &[
            &format!(
                "not available from the repositories configured here (dnf): rke2-server-{TARGET_RPM} rke2-common-{TARGET_RPM}"
            ),
            "the repository in /etc/yum.repos.d/rancher-rke2.repo does not list this version",
            "dnf makecache",
            "changed: nothing",
        ],
    );
}

/// A rollback to another minor: the rancher-rke2 repository configured on
/// the nodes is the current minor's, which holds no package of the target
/// (install.sh points it at the target's minor only while it installs, and
/// the bundles do not run it). Step 1 refuses with the `sed` that points it
/// at the target's minor; done on every node, the rollback goes through.
#[test]
fn a_repository_of_another_minor_is_refused_with_the_fix_that_works() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("plans/{PLAN}.toml")),
    )
    .expect("read the plan")
    .replace("v1.29.4+rke2r1", "v1.30.2+rke2r1");
    let w = World::compile("rpm-other-minor", &text, Shell::Dash).expect("the plan compiles");
    let file = "/etc/yum.repos.d/rancher-rke2.repo";
    let fix = format!("sed -i 's#/1.30/#/1.29/#' {file}");
    let r = checks::expect_refused_at(
        &w,
        "nodes/lab-s1/01-preflight.sh",
        &[
            &format!("{file} is the RKE2 1.30 repository, which holds no 1.29 packages"),
            &fix,
        ],
    );
    assert!(!r.run.all().contains("1.29.4"), "{}", r.describe());
    // The same rollback with the fix done on every node first.
    let w2 = World::compile("rpm-other-minor", &text, Shell::Dash).expect("the plan compiles");
    for node in ["lab-s1", "lab-s2", "lab-a1"] {
        let out = on(&w2, node, &["sh", "-c", &fix]);
        assert_eq!(out.code, 0, "{}", out.all());
    }
    checks::walk_ok(&w2);
    assert!(rpm_q(&w2, "lab-a1").contains(&format!("rke2-agent-{TARGET_RPM}-0.el8")));
}

/// A transactional host (SLE Micro: /usr/sbin/transactional-update) cannot
/// change packages in place: step 1 warns, the install step stops before
/// changing anything with the command to run in a new snapshot; once that
/// is done (and the node rebooted), the step runs again and goes on.
#[test]
fn a_transactional_host_gets_the_command_and_resumes_after_it() {
    let w = World::golden(PLAN, Shell::Dash);
    let f = w.facts().clone();
    let h = w.host("lab-a1");
    seed::seed_rpm(h, &f, "lab-a1", PackageManager::Zypper);
    h.write(
        "/usr/sbin/transactional-update",
        "#!/bin/sh\necho 'transactional-update: not in the sandbox' >&2\nexit 1\n",
        0o755,
    );
    let script = "nodes/lab-a1/04-install.sh";
    let runs = w
        .walk(&[])
        .expect_err("the install step on lab-a1 must stop");
    let pre = runs
        .iter()
        .find(|r| r.script == "nodes/lab-a1/01-preflight.sh")
        .expect("a preflight run");
    assert!(
        pre.run.stderr.contains("transactional-update"),
        "no warning in step 1:\n{}",
        pre.describe()
    );
    let last = runs.last().expect("a run");
    assert_eq!(last.script, script, "{}", last.describe());
    assert_eq!(last.run.code, 1, "{}", last.describe());
    let cmd = format!(
        "transactional-update --no-selfupdate -d run zypper --non-interactive install --oldpackage 'rke2-agent={TARGET_RPM}-0.sle' 'rke2-common={TARGET_RPM}-0.sle'"
    );
    assert!(last.run.stderr.contains(&cmd), "{}", last.describe());
    assert!(package_changes(&w, "lab-a1").is_empty());
    // What the snapshot does, once booted into.
    let r = on(
        &w,
        "lab-a1",
        &[
            "zypper",
            "--non-interactive",
            "install",
            "--oldpackage",
            &format!("rke2-agent={TARGET_RPM}-0.sle"),
            &format!("rke2-common={TARGET_RPM}-0.sle"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let again = w.run(script, &[("REWIND_YES", "1")]);
    assert_eq!(again.run.code, 0, "{}", again.describe());
    assert!(
        again.run.stdout.contains(&format!(
            "ok: the rke2 packages are already at {TARGET_RPM}"
        )),
        "{}",
        again.describe()
    );
}

/// Before each script of the RPM bundle runs for real (with a zypper agent
/// and an EL 7 server), its dry run changes no file of any host, asks the
/// package managers only to read, and prints exactly the commands the real
/// run then runs.
#[test]
fn dry_runs_change_nothing_and_print_the_downgrade() {
    let w = World::golden(PLAN, Shell::Dash);
    let f = w.facts().clone();
    seed::seed_rpm(w.host("lab-a1"), &f, "lab-a1", PackageManager::Zypper);
    seed::seed_rpm(w.host("lab-s2"), &f, "lab-s2", PackageManager::Yum);
    let mut dry = Vec::new();
    let runs = w
        .walk_with(&[], |w, script| {
            let before = w.digest();
            let r = w.run(script, &[("REWIND_DRY_RUN", "1")]);
            dry.push((r, before, w.digest()));
        })
        .unwrap_or_else(|runs| panic!("{}", runs.last().expect("a run").describe()));
    let mut p = Vec::new();
    for (d, before, after) in &dry {
        let real = runs
            .iter()
            .find(|r| r.script == d.script)
            .expect("the real run");
        p.extend(checks::dry_run(d, before, after, real));
    }
    assert!(p.is_empty(), "{}", p.join("\n"));
    let printed = |node: &str| {
        dry.iter()
            .find(|(d, _, _)| d.script == format!("nodes/{node}/04-install.sh"))
            .map(|(d, _, _)| d.run.stdout.clone())
            .expect("a dry run of the install step")
    };
    assert!(printed("lab-a1").contains(&format!(
        "[dry-run] would run: zypper --non-interactive install --oldpackage 'rke2-agent={TARGET_RPM}-0.sle' 'rke2-common={TARGET_RPM}-0.sle'"
    )));
    assert!(printed("lab-s2").contains(&format!(
        "[dry-run] would run: yum downgrade -y 'rke2-server-{TARGET_RPM}-0.el7' 'rke2-common-{TARGET_RPM}-0.el7'"
    )));
}
