//! Field fidelity (issue 10): the golden bundles run on hosts set up the way
//! real ones are, where the seeds' procedure alone loses data or stops
//! half-way: a dedicated volume for `server/db` or the data dir, a Docker
//! containerd-shim beside RKE2's, a `token:` in config.yaml that is not the
//! saved token, a custom data dir, a joining server without `server:`.
//!
//! Every test here failed on the bundles of the first round (which ran
//! rke2-killall.sh, matched processes by name, and checked neither the
//! configured token nor `server:` on joining servers). The sandbox harness
//! (`tests/sandbox/`) runs each script in a private namespace; a data volume
//! is a folder bind-mounted in every run (`Host::add_volume`), a running
//! process is started in the run's PID namespace (`Host::add_process`).
//! Needs root and the six shells.

mod common;
#[path = "sandbox/mod.rs"]
#[allow(dead_code)] // each test crate uses part of the harness
mod harness;

use harness::host::{Host, Launch};
use harness::seed;
use harness::shells::Shell;
use harness::world::{World, enter_script};
use harness::{checks, stubs::Call};

const DATA: &str = "/var/lib/rancher/rke2";
const SNAPSHOT: &str = "/var/lib/rancher/rke2/server/db/snapshots/pre-upgrade-server-1-1716239400";

/// Appends `text` to a file of a host.
fn append(h: &Host, path: &str, text: &str) {
    let mut t = h.text(path).unwrap_or_default();
    t.push_str(text);
    h.write(path, t, 0o600);
}

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

/// The 1-based line of `needle` in a host's file.
fn line_of(h: &Host, path: &str, needle: &str) -> usize {
    h.text(path)
        .unwrap_or_default()
        .lines()
        .position(|l| l.starts_with(needle))
        .map_or_else(
            || panic!("{needle:?} not in {path} on {}", h.name),
            |i| i + 1,
        )
}

// ---- item 1: data volumes ---------------------------------------------------

/// Every server has a dedicated volume for `server/db` (snapshots and etcd
/// on it), one agent the whole data dir: under each shell, the whole
/// rollback runs, every volume is still mounted at the end and holds what
/// it held (the local snapshots, the restored etcd on the init server, the
/// moved-aside member data on the others), and the stop step recorded them.
#[test]
fn data_volumes_stay_mounted_and_full_through_the_rollback() {
    for shell in Shell::ALL {
        let w = World::golden("etcd-airgap", shell);
        for s in ["server-1", "server-2", "server-3"] {
            w.host(s).add_volume(&format!("{DATA}/server/db"));
        }
        w.host("agent-1").add_volume(DATA);
        let runs = checks::walk_ok(&w);
        for (name, mount) in [
            ("server-1", format!("{DATA}/server/db")),
            ("server-2", format!("{DATA}/server/db")),
            ("agent-1", DATA.to_owned()),
        ] {
            let h = w.host(name);
            assert!(!h.unmounted(&mount), "{name}: {mount} was unmounted");
            let stop = runs
                .iter()
                .find(|r| r.host == name && r.script.ends_with("03-stop.sh"))
                .expect("a stop run");
            assert!(
                stop.run.stdout.contains(&format!(
                    "ok: data volumes mounted (the stop step leaves them mounted): {mount}"
                )),
                "{}",
                stop.describe()
            );
            let record = format!(
                "/var/lib/rewind/{}/{}/data-mounts",
                w.plan.cluster, w.plan.plan_sha256
            );
            assert_eq!(
                h.text(&record).as_deref(),
                Some(format!("{mount}\n").as_str()),
                "{name}: {record}"
            );
        }
        // On the volume: the snapshot the restore used, and the restored etcd.
        let s1 = w.host("server-1");
        assert!(s1.has(SNAPSHOT), "the snapshot is gone from the volume");
        assert!(
            s1.disk(&format!("{DATA}/server/db/etcd/name"))
                .starts_with(s1.dir.join("vols")),
            "the restored etcd is not on the volume"
        );
        eprintln!("data volumes under {}: ok", shell.name());
    }
}

/// The hazard the stop step avoids, shown with the stand-in of RKE2
/// v1.29.4's rke2-killall.sh (which the first round's stop step ran): with
/// the operator's shell inside the volume, the unmount fails and
/// `rm -rf --one-file-system` empties it; otherwise the volume is unmounted
/// and stays so, and the snapshot is out of sight.
#[test]
fn the_killall_of_v1_29_4_empties_or_unmounts_a_data_volume() {
    // The installed killall on `node`, run from `cwd`, with `server/db` on a
    // volume of its own.
    let killall = |node: &str, cwd: &str| {
        let w = World::golden("etcd-airgap", Shell::Dash);
        let h = w.host(node);
        h.add_volume(&format!("{DATA}/server/db"));
        let r = h.run(
            &enter_script(),
            &w.test,
            &Launch {
                argv: vec!["/bin/sh".into(), "/usr/local/bin/rke2-killall.sh".into()],
                env: w.base_env(),
                cwd: Some(cwd.into()),
                ..Launch::default()
            },
        );
        assert_eq!(r.code, 0, "{}", r.all());
        (w, r)
    };
    let (w, r) = killall("server-1", &format!("{DATA}/server/db/snapshots"));
    assert!(r.stderr.contains("target is busy"), "{}", r.all());
    assert!(
        !w.host("server-1").has(SNAPSHOT),
        "busy: the snapshot should be deleted"
    );

    let (w, _) = killall("server-2", "/");
    let h = w.host("server-2");
    assert!(h.unmounted(&format!("{DATA}/server/db")), "not unmounted");
    assert!(
        !h.has(&format!("{DATA}/server/db/etcd/name")),
        "the etcd data should be out of sight"
    );
}

/// A data volume that is no longer mounted when the restore comes (a reboot
/// without it, an unmount by hand) stops the restore in its preflight.
#[test]
fn a_data_volume_gone_after_the_stop_is_refused_before_the_restore() {
    let w = World::golden("etcd-online", Shell::Dash);
    let h = w.host("server-1");
    let db = format!("{DATA}/server/db");
    h.add_volume(&db);
    let mut stopped = false;
    let walked = w.walk_with(&[], |w, script| {
        if script.ends_with("05-restore.sh") && !stopped {
            stopped = true;
            let dir = w.test.join("unmounted");
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(dir.join("server-1"), format!("{db}\n")).expect("write");
        }
    });
    let runs = walked.expect_err("the restore must refuse");
    let last = runs.last().expect("a run");
    assert_eq!(
        last.script,
        "nodes/server-1/05-restore.sh",
        "{}",
        last.describe()
    );
    assert_eq!(last.run.code, 1, "{}", last.describe());
    assert!(
        last.run.stderr.contains("not mounted any more"),
        "{}",
        last.describe()
    );
    assert!(last.run.stderr.contains(&db), "{}", last.describe());
    assert!(
        !last
            .calls
            .iter()
            .any(|c| c.tool == "rke2" && c.starts(&["server"])),
        "{}",
        last.describe()
    );
}

// ---- item 2: processes ----------------------------------------------------

/// Docker's containerd-shim (outside the data dir) is left running and does
/// not make the stop fail; RKE2's containerd-shim (under the data dir) and
/// its pod are killed.
#[test]
fn the_stop_kills_rke2_processes_only() {
    for shell in Shell::ALL {
        let w = World::golden("etcd-online", shell);
        let h = w.host("server-1");
        let sleep = std::fs::read("/usr/bin/sleep").expect("read sleep");
        let dash = std::fs::read("/bin/dash").expect("read dash");
        h.write("/usr/bin/containerd-shim-runc-v2", &sleep, 0o755);
        h.add_process("/usr/bin/containerd-shim-runc-v2 600");
        let shim = format!(
            "{DATA}/data/{}-0a1b2c3d/bin/containerd-shim-runc-v2",
            "v1.29.4+rke2r1".replace('+', "-")
        );
        h.write(&shim, &dash, 0o755);
        h.write("/root/pod.sh", "sleep 601 &\nwait\n", 0o644);
        h.add_process(&format!("{shim} /root/pod.sh"));
        h.write(
            "/root/stop-then-ps.sh",
            "sh /rewind-test/bundle/nodes/server-1/03-stop.sh\nrc=$?\necho '--- ps'\nps -eo stat=,args=\nexit $rc\n",
            0o755,
        );
        let r = w.run_on(
            "server-1",
            "/root/stop-then-ps.sh",
            &[("REWIND_YES", "1"), ("REWIND_STOP_TIMEOUT", "5")],
            Launch::default(),
        );
        assert_eq!(r.run.code, 0, "under {}:\n{}", shell.name(), r.describe());
        assert!(r.run.stdout.contains("+ kill -KILL "), "{}", r.describe());
        let ps = r.run.stdout.split("--- ps").nth(1).expect("ps output");
        let alive: Vec<&str> = ps
            .lines()
            .filter(|l| !l.trim_start().starts_with('Z'))
            .collect();
        assert!(
            alive
                .iter()
                .any(|l| l.contains("/usr/bin/containerd-shim-runc-v2 600")),
            "Docker's shim was killed:\n{ps}"
        );
        assert!(
            !alive
                .iter()
                .any(|l| l.contains("sleep 601") || l.contains("pod.sh")),
            "RKE2's shim or its pod survived:\n{ps}"
        );
    }
}

// ---- item 3: the token RKE2 really uses -----------------------------------

/// A `token:` in config.yaml (or config.yaml.d, or RKE2_TOKEN in the unit's
/// environment file, or a token-file) that is not the saved token: the
/// preflight of that server refuses, naming the file and line, before
/// anything stops; the token is never shown.
#[test]
fn a_configured_token_other_than_the_saved_one_is_refused_in_preflight() {
    let cfg = "/etc/rancher/rke2/config.yaml";
    // On the init server, in config.yaml.
    let w = World::golden("etcd-online", Shell::Dash);
    let h = w.host("server-1");
    append(h, cfg, "token: K10abc::server:rotated-after-the-snapshot\n");
    let line = line_of(h, cfg, "token:");
    checks::expect_refused_at(
        &w,
        "nodes/server-1/01-preflight.sh",
        &[&format!("{cfg}:{line} (token:)"), "is not the saved token"],
    );
    // On a joining server, in a config.yaml.d drop-in (the last one wins).
    let w = World::golden("etcd-online", Shell::Dash);
    w.host("server-3").write(
        "/etc/rancher/rke2/config.yaml.d/90-token.yaml",
        "token: \"another-bare-secret\"\n",
        0o600,
    );
    checks::expect_refused_at(
        &w,
        "nodes/server-3/01-preflight.sh",
        &["/etc/rancher/rke2/config.yaml.d/90-token.yaml:1 (token:)"],
    );
    // In the unit's environment file.
    let w = World::golden("etcd-online", Shell::Dash);
    let h = w.host("server-1");
    h.write(
        "/etc/default/rke2-server",
        "HOME=/root\nRKE2_TOKEN='not-the-saved-one'\n",
        0o600,
    );
    checks::expect_refused_at(
        &w,
        "nodes/server-1/01-preflight.sh",
        &["/etc/default/rke2-server:2 (RKE2_TOKEN=)"],
    );
    // A token-file wins over a matching token.
    let w = World::golden("etcd-online", Shell::Dash);
    let h = w.host("server-2");
    h.write(
        "/etc/rancher/rke2/token-file",
        "K10x::server:other\n",
        0o600,
    );
    append(h, cfg, "token-file: /etc/rancher/rke2/token-file\n");
    checks::expect_refused_at(
        &w,
        "nodes/server-2/01-preflight.sh",
        &["the token file /etc/rancher/rke2/token-file named in"],
    );
}

/// The same secret without its `K10<ca-hash>::server:` prefix is the same
/// token to RKE2: accepted; and the cluster-reset gets the saved token in
/// its environment (RKE2_TOKEN), not on its command line, so it decrypts
/// the snapshot whatever server/token held. A token exported in the
/// operator's shell is not passed on (the unit does not see it).
#[test]
fn the_bare_saved_secret_in_config_is_accepted_and_the_reset_gets_the_saved_token() {
    let w = World::golden("etcd-online", Shell::Dash);
    let token = String::from_utf8(seed::fixture("token")).expect("text");
    let bare = token
        .trim()
        .rsplit("::server:")
        .next()
        .expect("a secret")
        .to_owned();
    append(
        w.host("server-1"),
        "/etc/rancher/rke2/config.yaml",
        &format!("token: {bare}\n"),
    );
    w.host("server-1").write(
        &format!("{DATA}/server/token"),
        "K10rotated::server:the-token-after-a-rotation\n",
        0o600,
    );
    let runs = checks::walk_ok(&w);
    let reset: Vec<Call> = w
        .journal()
        .into_iter()
        .filter(|c| c.tool == "rke2" && c.starts(&["server", "--cluster-reset"]))
        .collect();
    assert_eq!(reset.len(), 1, "{reset:?}");
    assert_eq!(reset[0].env_var("RKE2_TOKEN").as_deref(), Some("<set>"));
    let pre = runs
        .iter()
        .find(|r| r.script == "nodes/server-1/01-preflight.sh")
        .expect("preflight");
    assert!(
        pre.run
            .stdout
            .contains("matches the saved token /root/rke2-backup/token"),
        "{}",
        pre.describe()
    );
    let restore = runs
        .iter()
        .find(|r| r.script == "nodes/server-1/05-restore.sh")
        .expect("restore");
    assert!(
        restore.run.stdout.contains(
            "not passed to rke2 (the unit does not see this shell's variables): RKE2_TOKEN"
        ),
        "{}",
        restore.describe()
    );
}

// ---- item 4: the unit's world ---------------------------------------------

/// The reset sees what the unit sees: the variables of its environment
/// files, and `--data-dir` when the plan's data dir is not the default; a
/// config.yaml whose data-dir differs from the plan's is refused before
/// anything stops.
#[test]
fn the_reset_runs_with_the_units_data_dir_and_environment() {
    let custom = harness::world::plan_text("etcd-online")
        .replace(
            "distribution = \"rke2\"",
            "distribution = \"rke2\"\ndata-dir = \"/data/rke2\"",
        )
        .replace(
            "/var/lib/rancher/rke2/server/db/snapshots/",
            "/data/rke2/server/db/snapshots/",
        );
    let w = World::compile("custom-data-dir", &custom, Shell::Dash)
        .unwrap_or_else(|d| panic!("the plan compiles: {d:?}"));
    w.host("server-1").write(
        "/etc/default/rke2-server",
        "HTTPS_PROXY=http://proxy.example:3128\n",
        0o600,
    );
    checks::walk_ok(&w);
    let reset = w
        .journal()
        .into_iter()
        .find(|c| c.tool == "rke2" && c.starts(&["server", "--cluster-reset"]))
        .expect("a reset");
    assert!(
        reset
            .arg_texts()
            .iter()
            .any(|a| a == "--data-dir=/data/rke2"),
        "{reset}"
    );
    assert_eq!(
        reset.env_var("HTTPS_PROXY").as_deref(),
        Some("http://proxy.example:3128"),
        "{reset}"
    );

    // config.yaml names another data dir: refused on that node, first step.
    let w = World::compile("custom-data-dir", &custom, Shell::Dash).expect("compiles");
    let h = w.host("agent-1");
    drop_lines(h, "/etc/rancher/rke2/config.yaml", "data-dir:");
    append(
        h,
        "/etc/rancher/rke2/config.yaml",
        "data-dir: /var/lib/other\n",
    );
    checks::expect_refused_at(
        &w,
        "nodes/agent-1/01-preflight.sh",
        &[
            "runs with data dir /var/lib/other",
            "but the plan says /data/rke2",
        ],
    );
    // No data-dir at all while the plan names a custom one: refused too.
    let w = World::compile("custom-data-dir", &custom, Shell::Dash).expect("compiles");
    drop_lines(
        w.host("server-2"),
        "/etc/rancher/rke2/config.yaml",
        "data-dir:",
    );
    checks::expect_refused_at(
        &w,
        "nodes/server-2/01-preflight.sh",
        &["runs with the default data dir /var/lib/rancher/rke2"],
    );
}

// ---- item 5: joining servers ------------------------------------------------

/// A joining server without `server:` (and no RKE2_URL) is refused in the
/// first step; RKE2_URL in the unit's environment file is accepted, and
/// the preflight says which address it joins through.
#[test]
fn a_joining_server_needs_a_server_entry() {
    let w = World::golden("etcd-online", Shell::Dash);
    drop_lines(
        w.host("server-3"),
        "/etc/rancher/rke2/config.yaml",
        "server:",
    );
    checks::expect_refused_at(
        &w,
        "nodes/server-3/01-preflight.sh",
        &["no server: entry", "split brain"],
    );

    let w = World::golden("etcd-online", Shell::Dash);
    let h = w.host("server-2");
    drop_lines(h, "/etc/rancher/rke2/config.yaml", "server:");
    h.write(
        "/etc/default/rke2-server",
        "RKE2_URL=\"https://server-1:9345\"\n",
        0o600,
    );
    let runs = checks::walk_ok(&w);
    let pre = runs
        .iter()
        .find(|r| r.script == "nodes/server-2/01-preflight.sh")
        .expect("preflight");
    assert!(
        pre.run.stdout.contains(
            "this server joins through https://server-1:9345 (set in /etc/default/rke2-server:1 (RKE2_URL=))"
        ),
        "{}",
        pre.describe()
    );
}

// ---- item 11: units disabled until their start step -------------------------

/// The stop step disables each node's unit (a reboot mid-rollback starts
/// nothing); the start steps enable it again.
#[test]
fn units_are_disabled_from_the_stop_until_their_start_step() {
    let w = World::golden("etcd-online", Shell::Dash);
    let state = |node: &str, unit: &str| {
        std::fs::read_to_string(w.test.join(format!("cluster/units/{node}/{unit}.enabled")))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let mut seen = Vec::new();
    let walked = w.walk_with(&[], |w, script| {
        if script.contains("04-install") && seen.is_empty() {
            for (n, role, _) in &w.facts().nodes {
                let unit = if *role == rewind::model::Role::Agent {
                    "rke2-agent"
                } else {
                    "rke2-server"
                };
                seen.push((n.clone(), unit, state(n, unit)));
            }
        }
    });
    walked.unwrap_or_else(|runs| panic!("{}", runs.last().expect("a run").describe()));
    assert!(!seen.is_empty());
    for (n, unit, st) in &seen {
        assert_eq!(st, "disabled", "{n}: {unit} after the stop step");
        assert_eq!(state(n, unit), "enabled", "{n}: {unit} at the end");
    }
}

/// K3s (issue 15): the data volumes stay mounted through a K3s rollback,
/// and the units stay disabled from the stop step through the install (K3s's
/// install script enables a unit unless told not to) until their start step.
#[test]
fn k3s_data_volumes_stay_mounted_and_units_stay_disabled_until_start() {
    const K3S_DATA: &str = "/var/lib/rancher/k3s";
    let w = World::golden("k3s-etcd-airgap", Shell::Dash);
    w.host("server-1")
        .add_volume(&format!("{K3S_DATA}/server/db"));
    w.host("agent-1").add_volume(K3S_DATA);
    let state = |node: &str, unit: &str| {
        std::fs::read_to_string(w.test.join(format!("cluster/units/{node}/{unit}.enabled")))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let mut seen = Vec::new();
    let walked = w.walk_with(&[], |w, script| {
        // Before the restore: every node stopped and installed.
        if script.contains("05-restore") && seen.is_empty() {
            for (n, role, _) in &w.facts().nodes {
                let unit = w.facts().unit(*role);
                seen.push((n.clone(), unit, state(n, unit)));
            }
        }
    });
    let runs = walked.unwrap_or_else(|runs| panic!("{}", runs.last().expect("a run").describe()));
    assert_eq!(seen.len(), 5);
    for (n, unit, st) in &seen {
        assert!(unit.starts_with("k3s"), "{n}: {unit}");
        assert_eq!(
            st, "disabled",
            "{n}: {unit} after the stop and install steps"
        );
        assert_eq!(state(n, unit), "enabled", "{n}: {unit} at the end");
    }
    for (name, mount) in [
        ("server-1", format!("{K3S_DATA}/server/db")),
        ("agent-1", K3S_DATA.to_owned()),
    ] {
        assert!(
            !w.host(name).unmounted(&mount),
            "{name}: {mount} was unmounted"
        );
        let stop = runs
            .iter()
            .find(|r| r.host == name && r.script.ends_with("03-stop.sh"))
            .expect("a stop run");
        assert!(
            stop.run.stdout.contains(&format!(
                "ok: data volumes mounted (the stop step leaves them mounted): {mount}"
            )),
            "{}",
            stop.describe()
        );
    }
    assert!(
        w.host("server-1").has(&format!(
            "{K3S_DATA}/server/db/snapshots/pre-upgrade-server-1-1716239400"
        )),
        "the snapshot is gone from the volume"
    );
}

// ---- item 6: air-gap images --------------------------------------------------

/// Air-gapped, with a custom data dir and a Cilium archive beside the main
/// one: install.sh of the target puts only the main archive, and only into
/// /var/lib/rancher/rke2/agent/images; the install step puts every archive
/// into the data dir's images folder, each checked against its hash, and
/// the restore refuses to start while one is missing.
#[test]
fn airgap_images_land_in_the_data_dir_all_of_them() {
    let custom = harness::world::plan_text("etcd-airgap")
        .replace(
            "distribution = \"rke2\"",
            "distribution = \"rke2\"\ndata-dir = \"/data/rke2\"",
        )
        .replace(
            "/var/lib/rancher/rke2/server/db/snapshots/",
            "/data/rke2/server/db/snapshots/",
        );
    for shell in Shell::ALL {
        let w = World::compile("airgap-custom", &custom, shell)
            .unwrap_or_else(|d| panic!("the plan compiles: {d:?}"));
        checks::walk_ok(&w);
        for (n, _, _) in &w.facts().nodes {
            let h = w.host(n);
            assert!(
                h.list("/var/lib/rancher/rke2/agent/images").is_empty(),
                "{n}: images went to install.sh's default folder"
            );
        }
    }
    // An archive gone from the images folder before the restore: refused.
    let w = World::compile("airgap-custom", &custom, Shell::Dash).expect("compiles");
    let mut removed = false;
    let walked = w.walk_with(&[], |w, script| {
        if script.ends_with("05-restore.sh") && !removed {
            removed = true;
            let p = w
                .host("server-1")
                .disk("/data/rke2/agent/images/rke2-images-cilium.linux-amd64.tar.zst");
            std::fs::remove_file(p).expect("remove the archive");
        }
    });
    let runs = walked.expect_err("the restore must refuse");
    let last = runs.last().expect("a run");
    assert_eq!(
        last.script,
        "nodes/server-1/05-restore.sh",
        "{}",
        last.describe()
    );
    assert!(
        last.run
            .stderr
            .contains("rke2-images-cilium.linux-amd64.tar.zst"),
        "{}",
        last.describe()
    );
}

// ---- item 12: RKE1 cluster files ----------------------------------------------

/// rke restores from the first etcd node of the cluster file, and from S3
/// when the file has s3backupconfig: step 1 refuses a cluster file whose
/// first etcd node is not the plan's (the copy it checked is not the one
/// used), and one with s3backupconfig unless the plan says so; with
/// `s3-backup = true`, no node is asked for a local copy.
#[test]
fn rke1_the_cluster_file_decides_where_the_snapshot_comes_from() {
    let w = World::golden("rancher-upgrade", Shell::Dash);
    let cfg = w.rke1().on_workstation(&w.rke1().config);
    let ws = w.host("workstation");
    let text = ws.text(&cfg).expect("the cluster file");
    // The second node first: rke would restore from it.
    let mut blocks: Vec<String> = text.split("  - address: ").map(str::to_owned).collect();
    let head = blocks.remove(0);
    blocks.swap(0, 1);
    let reordered = format!("{head}  - address: {}", blocks.join("  - address: "));
    ws.write(&cfg, &reordered, 0o600);
    let runs = w.walk(&[]).expect_err("refused");
    let last = runs.last().expect("a run");
    assert_eq!(last.host, "workstation", "{}", last.describe());
    assert!(
        last.run
            .stderr
            .contains("rke restores from the first etcd node of")
            && last
                .run
                .stderr
                .contains("but the plan's first etcd node is 1.1.1.1"),
        "{}",
        last.describe()
    );

    let w = World::golden("rancher-upgrade", Shell::Dash);
    let ws = w.host("workstation");
    append(
        ws,
        &cfg,
        "services:\n  etcd:\n    backup_config:\n      s3backupconfig:\n        bucket_name: rancher-backups\n",
    );
    let runs = w.walk(&[]).expect_err("refused");
    let last = runs.last().expect("a run");
    assert!(
        last.run.stderr.contains(
            "has s3backupconfig: rke etcd snapshot-restore pulls the snapshot from S3 itself"
        ),
        "{}",
        last.describe()
    );

    // The plan says so: no node needs a local copy.
    let text = harness::world::plan_text("rancher-upgrade").replacen(
        "[rke]\n",
        "[rke]\ns3-backup = true\n",
        1,
    );
    let w = World::compile("rancher-s3", &text, Shell::Dash)
        .unwrap_or_else(|d| panic!("compiles: {d:?}"));
    let ws = w.host("workstation");
    append(
        ws,
        &cfg,
        "services:\n  etcd:\n    backup_config:\n      s3backupconfig:\n        bucket_name: rancher-backups\n",
    );
    for n in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
        let h = w.host(n);
        for f in h.list("/opt/rke/etcd-snapshots") {
            std::fs::remove_file(h.disk(&format!("/opt/rke/etcd-snapshots/{f}"))).expect("rm");
        }
    }
    for script in w.scripts().iter().filter(|s| s.contains("01-preflight")) {
        let r = w.run(script, &[]);
        assert_eq!(r.run.code, 0, "{}", r.describe());
    }
}

// ---- issue 16, item 2: the artifacts' version ------------------------------

/// Air-gap artifacts of another release pass their own sha256sum file; the
/// rke2 inside the tarball says which release it is. Step 1 asks it and
/// refuses before anything stops.
#[test]
fn airgap_artifacts_of_another_release_are_refused_in_step_1() {
    for shell in [Shell::Dash, Shell::Posh] {
        let w = World::golden("etcd-airgap", shell);
        let h = w.host("agent-2");
        let facts = w.facts().clone();
        for f in h.list("/root/rke2-artifacts") {
            std::fs::remove_file(h.disk(&format!("/root/rke2-artifacts/{f}"))).expect("rm");
        }
        seed::seed_artifacts(h, &facts, "/root/rke2-artifacts", "amd64", "v1.30.4+rke2r1");
        checks::expect_refused_at(
            &w,
            "nodes/agent-2/01-preflight.sh",
            &["are of v1.30.4+rke2r1, not of the target v1.28.9+rke2r1"],
        );
    }
}
