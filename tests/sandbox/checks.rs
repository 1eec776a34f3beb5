//! What a finished rollback must look like: the assertions of the walk
//! tests, each returning the problems it found (all are reported at once).

use std::collections::{BTreeMap, BTreeSet};

use rewind::model::Role;

use super::seed::{self, TOKEN_CANARY};
use super::stubs::Call;
use super::world::{ScriptRun, WORKSTATION, World};

/// A digest of every host, as [`World::digest`] returns it.
pub type Digest = BTreeMap<String, BTreeMap<String, String>>;

fn first(calls: &[Call], pred: impl Fn(&Call) -> bool) -> Option<usize> {
    calls.iter().position(pred)
}

fn is_start(c: &Call, unit: &str) -> bool {
    c.tool == "systemctl" && c.starts(&["start"]) && c.arg_texts().iter().any(|a| a == unit)
}

fn is_stop(c: &Call, unit: &str) -> bool {
    c.tool == "systemctl" && c.starts(&["stop"]) && c.arg_texts().iter().any(|a| a == unit)
}

fn is_installer(c: &Call) -> bool {
    c.tool == "install.sh"
        || c.tool == "rke2-install.sh"
        || c.tool == "k3s-install.sh"
        || is_package_change(c)
}

/// A package manager's call that changes packages (RPM installs).
fn is_package_change(c: &Call) -> bool {
    match c.tool.as_str() {
        "dnf" | "yum" | "zypper" => {
            let a = c.arg_texts();
            a.iter()
                .any(|w| matches!(w.as_str(), "install" | "in" | "downgrade"))
        }
        _ => false,
    }
}

fn is_reset(c: &Call) -> bool {
    (c.tool == "rke2" || c.tool == "k3s") && c.starts(&["server", "--cluster-reset"])
}

fn is_db_restore(c: &Call) -> bool {
    (c.tool == "pg_restore"
        && c.arg_texts()
            .iter()
            .any(|a| a == "-d" || a.starts_with("--dbname=")))
        || (c.tool == "mysql" && c.env.iter().any(|e| e.starts_with(b"stdin-sha256=")))
}

/// What K3s's install script was given: the command (the unit's name),
/// nothing enabled or started, the binary's folder, and the version online
/// or the pre-placed binary air-gapped.
fn k3s_install_env(f: &seed::Facts, n: &str, want_type: &str, c: &Call) -> Vec<String> {
    let mut p = Vec::new();
    let mut want = vec![
        ("INSTALL_K3S_EXEC", want_type.to_owned()),
        ("INSTALL_K3S_SKIP_ENABLE", "true".to_owned()),
        ("INSTALL_K3S_SKIP_START", "true".to_owned()),
        ("INSTALL_K3S_BIN_DIR", f.bin_dir()),
    ];
    if f.airgap.is_some() {
        want.push(("INSTALL_K3S_SKIP_DOWNLOAD", "true".to_owned()));
    } else {
        want.push(("INSTALL_K3S_VERSION", f.target.clone()));
    }
    for (k, v) in want {
        if c.env_var(k).as_deref() != Some(v.as_str()) {
            p.push(format!("{n}: K3s installed without {k}={v}: {c}"));
        }
    }
    p
}

/// The order of commands across hosts (docs/architecture.md): drain (agents
/// first) before anything stops; every node stopped before its install and
/// before the restore; the restore (cluster-reset, or the database) before
/// any server starts; the init server before the other servers, one at a
/// time; servers before agents; uncordon last. Also what each command was
/// given: the installer's version, type and method.
// One list of every ordering rule, read top to bottom like the procedure.
#[allow(clippy::too_many_lines)]
pub fn order(w: &World, calls: &[Call]) -> Vec<String> {
    let f = w.facts();
    let mut p = Vec::new();
    let servers = f.servers();
    let agents = f.agents();
    let on = |c: &Call, h: &str| c.host == h;
    let mut kill = BTreeMap::new();
    let mut install = BTreeMap::new();
    let mut start = BTreeMap::new();
    for (node, role, _) in &f.nodes {
        let n = node.as_str();
        let unit = f.unit(*role);
        match first(calls, |c| on(c, n) && is_stop(c, unit)) {
            Some(i) => {
                kill.insert(n, i);
            }
            None => p.push(format!("{n}: {unit} was never stopped")),
        }
        // rke2-killall.sh of the affected releases unmounts and empties data
        // volumes: the stop never runs it.
        if let Some(c) = calls
            .iter()
            .find(|c| on(c, n) && (c.tool == "rke2-killall.sh" || c.tool == "k3s-killall.sh"))
        {
            p.push(format!("{n}: {} ran: {c}", c.tool));
        }
        match first(calls, |c| on(c, n) && is_installer(c)) {
            Some(i) => {
                install.insert(n, i);
                let c = &calls[i];
                let want_type = if *role == Role::Agent {
                    "agent"
                } else {
                    "server"
                };
                if f.k3s() {
                    p.extend(k3s_install_env(f, n, want_type, c));
                } else if !is_package_change(c)
                    && c.env_var("INSTALL_RKE2_TYPE")
                        .as_deref()
                        .unwrap_or("server")
                        != want_type
                {
                    p.push(format!(
                        "{n}: installed without INSTALL_RKE2_TYPE={want_type}: {c}"
                    ));
                }
                match &f.airgap {
                    _ if f.k3s() => {}
                    _ if is_package_change(c) => {
                        // One transaction with rke2-TYPE and rke2-common at
                        // the target (the release found in the repository).
                        let rv = seed::rpm_version(&f.target);
                        let a = c.arg_texts();
                        for pkg in [format!("rke2-{want_type}"), "rke2-common".to_owned()] {
                            if !a.iter().any(|w| {
                                w.starts_with(&format!("{pkg}-{rv}-"))
                                    || w.starts_with(&format!("{pkg}={rv}-"))
                            }) {
                                p.push(format!("{n}: {pkg} {rv} not in the transaction: {c}"));
                            }
                        }
                    }
                    Some((dir, _)) => {
                        if c.env_var("INSTALL_RKE2_ARTIFACT_PATH").as_deref() != Some(dir.as_str())
                        {
                            p.push(format!(
                                "{n}: air-gap install without INSTALL_RKE2_ARTIFACT_PATH={dir}: {c}"
                            ));
                        }
                    }
                    None => {
                        if c.env_var("INSTALL_RKE2_VERSION").as_deref() != Some(f.target.as_str()) {
                            p.push(format!(
                                "{n}: online install without INSTALL_RKE2_VERSION={}: {c}",
                                f.target
                            ));
                        }
                        let method = match f.method {
                            rewind::model::InstallMethod::Tar => "tar",
                            rewind::model::InstallMethod::Rpm => "rpm",
                        };
                        if c.env_var("INSTALL_RKE2_METHOD").as_deref().unwrap_or("tar") != method {
                            p.push(format!(
                                "{n}: online install without INSTALL_RKE2_METHOD={method}: {c}"
                            ));
                        }
                    }
                }
            }
            None => p.push(format!("{n}: the target version was never installed")),
        }
        match first(calls, |c| on(c, n) && is_start(c, unit)) {
            Some(i) => {
                start.insert(n, i);
            }
            None => p.push(format!("{n}: {unit} was never started")),
        }
        if let (Some(k), Some(i)) = (kill.get(n), install.get(n))
            && k > i
        {
            p.push(format!("{n}: installed before it was stopped"));
        }
    }
    for c in calls {
        if c.tool == "rke2-uninstall.sh" || c.tool == "k3s-uninstall.sh" {
            p.push(format!(
                "rke2-uninstall.sh ran (it deletes the data dir): {c}"
            ));
        }
        if c.rc != 0 {
            p.push(format!("a stand-in failed during the walk: {c}"));
        }
    }
    let last_kill = kill.values().max().copied();
    // The drain: every node, agents first, before anything stops.
    let drains: Vec<(usize, String)> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.tool == "kubectl" && c.arg_texts().iter().any(|a| a == "drain"))
        .map(|(i, c)| (i, c.arg_texts().last().cloned().unwrap_or_default()))
        .collect();
    if !drains.is_empty() {
        let first_kill = kill.values().min().copied().unwrap_or(usize::MAX);
        for (i, n) in &drains {
            if *i > first_kill {
                p.push(format!("{n} was drained after a node was stopped"));
            }
        }
        let pos = |n: &str| drains.iter().find(|(_, d)| d == n).map(|(i, _)| *i);
        for a in &agents {
            for s in &servers {
                if let (Some(x), Some(y)) = (pos(a), pos(s))
                    && x > y
                {
                    p.push(format!("agent {a} was drained after server {s}"));
                }
            }
        }
        for (n, _, _) in &f.nodes {
            if pos(n).is_none() {
                p.push(format!("{n} was not drained although the API answered"));
            }
        }
    }
    let first_start = start.values().min().copied().unwrap_or(usize::MAX);
    let resets: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| is_reset(c))
        .map(|(i, _)| i)
        .collect();
    if f.datastore == "etcd" {
        let init = f.first_server();
        match resets.as_slice() {
            [r] => {
                let c = &calls[*r];
                if c.host != init {
                    p.push(format!(
                        "the cluster-reset ran on {}, not on the init server {init}",
                        c.host
                    ));
                }
                if last_kill.is_some_and(|k| k > *r) {
                    p.push("the cluster-reset ran before every node was stopped".into());
                }
                if install.get(init).is_some_and(|i| i > r) {
                    p.push("the cluster-reset ran before the target version was installed on the init server".into());
                }
                if first_start < *r {
                    p.push(
                        "an RKE2 service started before the cluster-reset (restore first)".into(),
                    );
                }
                let path_arg = c
                    .arg_texts()
                    .into_iter()
                    .find(|a| a.starts_with("--cluster-reset-restore-path="));
                match (&f.snapshot_path, path_arg) {
                    (Some(path), Some(a))
                        if a == format!("--cluster-reset-restore-path={path}") => {}
                    (None, Some(_)) => {
                        if !c.starts(&["server", "--cluster-reset"])
                            || !c.arg_texts().iter().any(|a| a == "--etcd-s3")
                        {
                            p.push(format!("an S3 restore without --etcd-s3: {c}"));
                        }
                        for k in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
                            if c.env_var(k).as_deref() != Some("<set>") {
                                p.push(format!(
                                    "the S3 restore did not get {k} from the environment: {c}"
                                ));
                            }
                        }
                    }
                    (_, a) => p.push(format!(
                        "cluster-reset restore path is {a:?}, the plan says {:?}",
                        f.snapshot_path
                    )),
                }
            }
            [] => p.push("no cluster-reset ran (embedded etcd)".into()),
            _ => p.push(format!("{} cluster-resets ran", resets.len())),
        }
        if let Some(s_init) = start.get(init) {
            for s in &servers {
                if *s != init && start.get(s).is_some_and(|x| x < s_init) {
                    p.push(format!("server {s} started before the init server {init}"));
                }
            }
        }
    } else if !resets.is_empty() {
        p.push(format!(
            "a cluster-reset ran on a {} datastore",
            f.datastore
        ));
    }
    if matches!(f.datastore, "postgres" | "mysql") {
        match first(calls, is_db_restore) {
            Some(r) => {
                if last_kill.is_some_and(|k| k > r) {
                    p.push("the database was restored before every node was stopped".into());
                }
                if first_start < r {
                    p.push("an RKE2 service started before the database was restored".into());
                }
                let c = &calls[r];
                if c.tool == "mysql" {
                    let want = format!(
                        "stdin-sha256={}",
                        seed::sha256(&seed::fixture("mysql/kine.sql"))
                    );
                    if !c.env.iter().any(|e| e.as_slice() == want.as_bytes()) {
                        p.push(format!("mysql was not fed the dump: {c}"));
                    }
                }
            }
            None => p.push("the database was never restored".into()),
        }
    }
    let last_server_start = servers.iter().filter_map(|s| start.get(s)).max();
    for a in &agents {
        if let (Some(x), Some(y)) = (start.get(a), last_server_start)
            && x < y
        {
            p.push(format!("agent {a} started before every server"));
        }
    }
    // The step that stops automatic upgrades: system-upgrade-controller is
    // scaled to 0 once the first server (etcd, SQLite) or every server
    // (external database) has started, before any other node starts.
    let (first, later): (Vec<&str>, Vec<&str>) = if matches!(f.datastore, "postgres" | "mysql") {
        (servers.clone(), agents.clone())
    } else {
        let init = f.first_server();
        (
            vec![init],
            f.nodes
                .iter()
                .map(|(n, _, _)| n.as_str())
                .filter(|n| *n != init)
                .collect(),
        )
    };
    for (i, c) in calls.iter().enumerate() {
        if c.tool != "kubectl" || !c.arg_texts().iter().any(|a| a == "scale") {
            continue;
        }
        for n in &first {
            if start.get(n).is_none_or(|s| *s > i) {
                p.push(format!(
                    "system-upgrade-controller scaled before {n} started: {c}"
                ));
            }
        }
        for n in &later {
            if start.get(n).is_some_and(|s| *s < i) {
                p.push(format!(
                    "{n} started before system-upgrade-controller was scaled to 0: {c}"
                ));
            }
        }
    }
    let last_start = start.values().max().copied().unwrap_or(0);
    for (i, c) in calls.iter().enumerate() {
        if c.tool == "kubectl" && c.arg_texts().iter().any(|a| a == "uncordon") && i < last_start {
            p.push(format!("uncordon before every node started: {c}"));
        }
    }
    p
}

/// The regular files of a digest with their content hash.
fn files(d: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    d.iter()
        .filter_map(|(path, v)| {
            let mut w = v.split(' ');
            (w.next() == Some("file")).then(|| {
                w.next();
                (path.as_str(), w.next().unwrap_or_default())
            })
        })
        .collect()
}

/// The state of every host afterwards: the target installed; the newer
/// image archives and packaged manifests moved aside (the operator's own
/// manifest left); on the other etcd servers `server/db/etcd` moved aside
/// and the local snapshots kept; the saved token in place; the journal
/// lines and done-markers of every step; nothing lost (every seeded file is
/// where it was or under a `.rewind-` name, unless an install replaces it);
/// /tmp clean; the fake cluster Ready at the target.
pub fn state(w: &World, runs: &[ScriptRun], before: &Digest) -> Vec<String> {
    let f = w.facts();
    let s = &f.suffix;
    let d = &f.data_dir;
    let mut p = Vec::new();
    let arch = f.airgap.as_ref().map_or("amd64", |a| a.1.as_str());
    let img = f.images_name(arch);
    for (node, role, init) in &f.nodes {
        let h = w.host(node);
        let mut want = |ok: bool, what: String| {
            if !ok {
                p.push(format!("{node}: {what}"));
            }
        };
        if f.method == rewind::model::InstallMethod::Rpm {
            // What `rpm -q` shows: every rke2 package at the target.
            let rv = seed::rpm_version(&f.target);
            let db = h.text(seed::RPM_DB).unwrap_or_default();
            let ty = if *role == Role::Server {
                "rke2-server"
            } else {
                "rke2-agent"
            };
            for pkg in [ty, "rke2-common"] {
                want(
                    db.lines().any(|l| l.starts_with(&format!("{pkg} {rv}-"))),
                    format!("rpm -q {pkg} is not at {rv}: {}", db.replace('\n', "; ")),
                );
            }
        }
        let bin = h.text(&f.binary()).unwrap_or_default();
        want(
            bin.contains(&format!("RKE2_STUB_VERSION={}\n", f.target)),
            format!("{} is not the target {}", f.binary(), f.target),
        );
        if f.k3s() {
            // The unit and its env file as they were before the install
            // (the install script rewrote both).
            let unit = f.unit(*role);
            for file in [
                format!("{}/{unit}.service", f.unit_dir()),
                format!("{}/{unit}.service.env", f.unit_dir()),
            ] {
                let then = files(&before[node.as_str()]).get(file.as_str()).copied();
                let now = h.read(&file).map(|x| seed::sha256(&x));
                want(
                    then.is_some() && now.as_deref() == then,
                    format!("{file} is not as it was before the install"),
                );
            }
        }
        want(
            h.read(&format!("{d}/agent/images.{s}/{img}"))
                == Some(seed::images_archive(&f.current, arch)),
            format!("the newer image archive is not in {d}/agent/images.{s}/"),
        );
        want(
            h.has(&format!("{d}/agent/pod-manifests.{s}/kube-proxy.yaml"))
                && !h.has(&format!("{d}/agent/pod-manifests/kube-proxy.yaml")),
            format!("the newer kube-proxy.yaml not moved into {d}/agent/pod-manifests.{s}/"),
        );
        let now = h.read(&format!("{d}/agent/images/{img}"));
        if f.airgap.is_some() {
            want(
                now == Some(seed::images_archive(&f.target, arch)),
                format!("{d}/agent/images/ does not hold the target's archive"),
            );
            want(
                f.k3s()
                    || h.read(&format!(
                        "{d}/agent/images/rke2-images-cilium.linux-{arch}.tar.zst"
                    )) == Some(seed::cilium_archive(&f.target, arch)),
                format!("{d}/agent/images/ does not hold the target's Cilium archive"),
            );
        } else {
            want(
                now.is_none(),
                format!("{d}/agent/images/ still holds an image archive"),
            );
        }
        if *role == Role::Server {
            // K3s writes its packaged manifests again at every start: its
            // install step leaves server/manifests alone.
            for m in seed::PACKAGED_MANIFESTS.iter().filter(|_| !f.k3s()) {
                want(
                    h.has(&format!("{d}/server/manifests.{s}/{m}")),
                    format!("{m} not moved into {d}/server/manifests.{s}/"),
                );
                want(
                    !h.has(&format!("{d}/server/manifests/{m}")),
                    format!("{m} still in {d}/server/manifests/"),
                );
            }
            for m in [seed::USER_MANIFEST, seed::USER_CHART_CONFIG] {
                want(
                    h.has(&format!("{d}/server/manifests/{m}")),
                    format!("the operator's {m} was moved"),
                );
            }
            let snaps = format!("{d}/server/db/snapshots");
            let b = files(&before[node.as_str()]);
            for (path, sha) in &b {
                if path.starts_with(&format!("{snaps}/")) {
                    let now = h.read(path).map(|x| seed::sha256(&x));
                    want(
                        now.as_deref() == Some(*sha),
                        format!("local snapshot {path} not kept in place"),
                    );
                }
            }
            if f.datastore == "etcd" {
                if *init && let Some(snap) = &f.snapshot_path {
                    // The preflight says which file has room where.
                    let room = format!("ok: room for {snap} in {d}/server/db (");
                    want(
                        runs.iter()
                            .any(|r| r.host == *node && r.run.stdout.contains(&room)),
                        format!("no preflight line {room:?}"),
                    );
                }
                if *init {
                    want(
                        h.list(&format!("{d}/server/db"))
                            .iter()
                            .any(|n| n.starts_with("etcd-old-")),
                        "the cluster-reset did not run here (no db/etcd-old-*)".into(),
                    );
                    want(
                        h.read(&format!("{d}/server/token")) == Some(seed::fixture("token")),
                        "server/token is not the saved token".into(),
                    );
                } else {
                    want(
                        h.read(&format!("{d}/server/db/etcd.{s}/member/snap/db"))
                            == Some(format!("etcd data of {node} at {}\n", f.current).into_bytes()),
                        format!("{d}/server/db/etcd not moved to {d}/server/db/etcd.{s}"),
                    );
                    want(
                        !h.has(&format!("{d}/server/db/etcd")),
                        format!("{d}/server/db/etcd is still there"),
                    );
                }
            }
            if f.datastore == "sqlite" {
                want(
                    h.read(&format!("{d}/server/db/state.db"))
                        == Some(seed::fixture("sqlite/state.db")),
                    "state.db is not the backup".into(),
                );
                for side in ["", "-wal", "-shm"] {
                    want(
                        h.has(&format!("{d}/server/db/state.db{side}.{s}")),
                        format!("state.db{side} not moved aside"),
                    );
                    want(
                        !h.has(&format!("{d}/server/db/state.db{side}")) || side.is_empty(),
                        format!("state.db{side} still there"),
                    );
                }
                want(
                    h.read(&format!("{d}/server/token")) == Some(seed::fixture("token")),
                    "server/token is not the saved token".into(),
                );
            }
        }
    }
    for (name, h) in &w.hosts {
        p.extend(
            journal_lines(w, name, runs)
                .into_iter()
                .map(|e| format!("{name}: {e}")),
        );
        let left = h.tmp_leftovers();
        if !left.is_empty() {
            p.push(format!("{name}: files left in /tmp: {left:?}"));
        }
        p.extend(
            nothing_lost(w, name, before)
                .into_iter()
                .map(|e| format!("{name}: {e}")),
        );
    }
    let cluster = w.test.join("cluster");
    for (node, _, _) in &f.nodes {
        let st = std::fs::read_to_string(cluster.join("nodes").join(node)).unwrap_or_default();
        if st.trim() != format!("True|{}", f.target) {
            p.push(format!(
                "{node}: the fake cluster sees it as {:?}, not Ready at {}",
                st.trim(),
                f.target
            ));
        }
        if cluster.join("cordoned").join(node).exists() {
            p.push(format!("{node}: still cordoned after the verify step"));
        }
    }
    p
}

/// The journal of a host: a start line and an ok (or failed) line per
/// script it ran, in order, in the documented format; and the done-marker of
/// each step that succeeded.
pub fn journal_lines(w: &World, host: &str, runs: &[ScriptRun]) -> Vec<String> {
    let mut p = Vec::new();
    let h = w.host(host);
    let cluster = &w.plan.cluster;
    let mine: Vec<&ScriptRun> = runs.iter().filter(|r| r.host == host).collect();
    let log = h
        .text(&format!("/var/log/rewind/{cluster}.log"))
        .unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    if lines.len() != 2 * mine.len() {
        p.push(format!(
            "/var/log/rewind/{cluster}.log has {} lines for {} scripts:\n{log}",
            lines.len(),
            mine.len()
        ));
        return p;
    }
    let node = if host == WORKSTATION {
        "workstation"
    } else {
        host
    };
    for (i, r) in mine.iter().enumerate() {
        let step = r
            .script
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".sh");
        let code = r.run.code.to_string();
        let end = if r.run.code == 0 {
            ("ok", "0")
        } else {
            ("failed", code.as_str())
        };
        for (line, result, exit) in [
            (lines[2 * i], "start", "-"),
            (lines[2 * i + 1], end.0, end.1),
        ] {
            let words: Vec<&str> = line.split(' ').collect();
            let time_ok = words.first().is_some_and(|t| {
                t.len() == 20
                    && t.ends_with('Z')
                    && t.as_bytes()[10] == b'T'
                    && t[..4].bytes().all(|b| b.is_ascii_digit())
            });
            let want = [
                format!("cluster={cluster}"),
                format!("step={step}"),
                format!("host={node}"),
                format!("result={result}"),
                format!("exit={exit}"),
            ];
            if !time_ok || words.len() != 6 || words[1..] != want {
                p.push(format!(
                    "journal line {line:?} is not `<UTC time> {}`",
                    want.join(" ")
                ));
            }
        }
        let marker = format!(
            "/var/lib/rewind/{cluster}/{}/{step}.done",
            w.plan.plan_sha256
        );
        if !h.has(&marker) {
            p.push(format!("no done-marker {marker}"));
        }
    }
    p
}

/// Every regular file the host had before the walk is still there with the
/// same content, or is kept under a `.rewind-<sha8>` (or rke2's
/// `etcd-old-<time>`) name; only what an install replaces may go.
fn nothing_lost(w: &World, host: &str, before: &Digest) -> Vec<String> {
    let f = w.facts();
    let now_d = w.host(host).digest();
    let now = files(&now_d);
    let kept: BTreeSet<&str> = now
        .iter()
        .filter(|(path, _)| path.contains(&format!(".{}", f.suffix)) || path.contains("/etcd-old-"))
        .map(|(_, sha)| *sha)
        .collect();
    let replaceable = |path: &str| {
        let under = |dir: &str| path.starts_with(&format!("{dir}/"));
        under(&f.bin_dir())
            || under(&f.unit_dir())
            || under(&f.share_dir())
            || (f.method == rewind::model::InstallMethod::Rpm && path == seed::RPM_DB)
            || f.airgap
                .as_ref()
                .is_some_and(|(dir, _)| under(dir) && path.contains("/rke2-images"))
    };
    let mut p = Vec::new();
    for (path, sha) in files(&before[host]) {
        if now.get(path) == Some(&sha) || kept.contains(sha) || replaceable(path) {
            continue;
        }
        p.push(format!(
            "{path} was changed or deleted and no copy was kept"
        ));
    }
    p
}

/// Every canary secret (environment, token, database passwords) that
/// appears in `text`, as `what` lines.
pub fn secrets(what: &str, text: &str) -> Vec<String> {
    let mut found: Vec<String> = crate::common::secrets_in(text)
        .into_iter()
        .map(|s| format!("{what}: {s}"))
        .collect();
    if text.contains(TOKEN_CANARY) {
        found.push(format!("{what}: the saved token's password"));
    }
    found
}

/// No secret in the bundle, the stand-ins' journal, any output, any file
/// the scripts wrote under /var/log/rewind or /var/lib/rewind.
pub fn no_secrets(w: &World, runs: &[ScriptRun]) -> Vec<String> {
    let mut p = Vec::new();
    for r in runs {
        p.extend(secrets(
            &format!("output of {} on {}", r.script, r.host),
            &r.run.all(),
        ));
    }
    let journal = std::fs::read_to_string(w.test.join("journal")).expect("read the journal");
    let decoded: Vec<String> = w.journal().iter().map(ToString::to_string).collect();
    p.extend(secrets(
        "the stand-ins' journal",
        &format!("{journal}\n{}", decoded.join("\n")),
    ));
    for entry in walkdir(&w.bundle) {
        let text = String::from_utf8_lossy(&std::fs::read(&entry).expect("read a bundle file"))
            .into_owned();
        p.extend(secrets(&format!("bundle file {}", entry.display()), &text));
    }
    for (name, h) in &w.hosts {
        for dir in ["/var/log/rewind", "/var/lib/rewind"] {
            for entry in walkdir(&h.disk(dir)) {
                let text = String::from_utf8_lossy(&std::fs::read(&entry).unwrap_or_default())
                    .into_owned();
                p.extend(secrets(&format!("{name}:{}", entry.display()), &text));
            }
        }
    }
    p
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else if p.is_file() {
            out.push(p);
        }
    }
    out
}

/// The bundle was not changed by running it.
pub fn bundle_intact(w: &World) -> Vec<String> {
    let dir = camino::Utf8Path::from_path(&w.bundle).expect("utf-8 path");
    match rewind::bundle::read(dir) {
        Ok(b) => rewind::verify::problems(&b)
            .into_iter()
            .map(|e| format!("bundle changed: {e}"))
            .collect(),
        Err(e) => vec![format!("bundle unreadable after the walk: {e}")],
    }
}

/// The journal as text, one call per line (the reviewed trace of a plan).
pub fn trace(calls: &[Call]) -> String {
    let mut out = String::new();
    for c in calls {
        out.push_str(&c.to_string());
        out.push('\n');
    }
    out
}

/// True for a stand-in call that only reads (what a dry run may do).
pub fn read_only(c: &Call) -> bool {
    let a = c.arg_texts();
    let has = |w: &str| a.iter().any(|x| x == w);
    match c.tool.as_str() {
        "rke2" | "k3s" => c.starts(&["--version"]),
        "rke" => c.starts(&["--version"]),
        "systemctl" => has("is-active") || has("is-enabled"),
        "kubectl" => has("get") && !has("drain") && !has("uncordon"),
        "pg_restore" => !a.iter().any(|x| x == "-d" || x.starts_with("--dbname=")),
        // The library's psql calls are SELECTs (rights, existence, rows).
        "psql" => true,
        "mysql" => a
            .windows(2)
            .any(|w| w[0] == "-e" && w[1].starts_with("SELECT")),
        "docker" => c.starts(&["ps"]),
        "rpm" => a.iter().any(|x| x == "-q" || x == "-qa"),
        "dnf" | "yum" => has("list"),
        "zypper" => has("search") || has("se"),
        _ => false,
    }
}

/// Replaces the random part of the library's temporary folders.
pub fn normalize_tmp(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("/rewind.") {
        out.push_str(&rest[..i + 8]);
        rest = &rest[i + 8..];
        let n = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
        if n == 6 {
            out.push_str("XXXXXX");
            rest = &rest[6..];
        }
    }
    out.push_str(rest);
    out
}

/// A dry run of a script compared with its real run just after: it changed
/// nothing on any host (`before`/`after` digests), called stand-ins only to
/// read, and printed exactly the commands the real run then ran.
pub fn dry_run(dry: &ScriptRun, before: &Digest, after: &Digest, real: &ScriptRun) -> Vec<String> {
    let mut p = Vec::new();
    let what = format!("dry run of {} on {}", dry.script, dry.host);
    for (host, files) in after {
        let was = &before[host];
        for (path, v) in files {
            if was.get(path) != Some(v) {
                p.push(format!("{what}: changed {host}:{path} ({v})"));
            }
        }
        for path in was.keys() {
            if !files.contains_key(path) {
                p.push(format!("{what}: removed {host}:{path}"));
            }
        }
    }
    for c in &dry.calls {
        if !read_only(c) {
            p.push(format!("{what}: ran a command that changes things: {c}"));
        }
    }
    if dry.run.code != real.run.code {
        p.push(format!(
            "{what}: exit {} but the real run exited {}:\n{}",
            dry.run.code,
            real.run.code,
            dry.describe()
        ));
    }
    let norm = |v: Vec<super::words::Printed>| -> Vec<String> {
        v.into_iter()
            .map(|c| {
                let mut s = c.argv.join(" ");
                if let Some(i) = c.stdin {
                    s.push_str(&format!(" < {i}"));
                }
                normalize_tmp(&s)
            })
            .collect()
    };
    let would = norm(super::words::would_run(&dry.run.stdout));
    let did = norm(super::words::executed(&real.run.stdout));
    if would != did {
        p.push(format!(
            "{what}: it would run\n    {}\nbut the real run ran\n    {}",
            would.join("\n    "),
            did.join("\n    ")
        ));
    }
    p
}

/// What changed between two digests, leaving out the journal and the
/// done-markers (`/var/log/rewind`, `/var/lib/rewind`): a refused or failed
/// step records that it ran, and must change nothing else.
pub fn changed_besides_journal(before: &Digest, after: &Digest) -> Vec<String> {
    // Creating /var/log/rewind or /var/lib/rewind on a host that has never
    // run a step (a fresh machine, as on CI) also touches their ancestors
    // (/var, /var/log, /var/lib): part of writing the journal, not a change.
    let journal = |p: &str| {
        p.starts_with("/var/log/rewind")
            || p.starts_with("/var/lib/rewind")
            || matches!(p, "/var" | "/var/log" | "/var/lib")
    };
    let mut p = Vec::new();
    for (host, files) in after {
        let was = &before[host];
        for (path, v) in files {
            if !journal(path) && was.get(path) != Some(v) {
                p.push(format!("{host}:{path} changed ({v})"));
            }
        }
        for path in was.keys() {
            if !journal(path) && !files.contains_key(path) {
                p.push(format!("{host}:{path} removed"));
            }
        }
    }
    p
}

/// Walks `w` to the end; panics with the failed run, or with the problems
/// of the generic checks (order across hosts, final state, secrets).
pub fn walk_ok(w: &World) -> Vec<ScriptRun> {
    let before = w.digest();
    let runs = match w.walk(&[]) {
        Ok(runs) => runs,
        Err(runs) => panic!(
            "{} under {}: the walk stopped:\n{}",
            w.name,
            w.shell.name(),
            runs.last().expect("a run").describe()
        ),
    };
    let mut p = order(w, &w.journal());
    p.extend(state(w, &runs, &before));
    p.extend(no_secrets(w, &runs));
    assert!(
        p.is_empty(),
        "{} under {}:\n  {}",
        w.name,
        w.shell.name(),
        p.join("\n  ")
    );
    runs
}

/// Walks `w` and expects it to stop at `script` (a read-only preflight)
/// with exit 1 and `needles` in its output, before any command that changes
/// anything ran and without a change on any host (the journal aside), and
/// without a secret in its output. Returns that run.
pub fn expect_refused_at(w: &World, script: &str, needles: &[&str]) -> ScriptRun {
    let before = w.digest();
    let Err(runs) = w.walk(&[]) else {
        panic!(
            "the walk of {} went through; expected a refusal at {script}",
            w.name
        )
    };
    let last = runs.last().expect("a run").clone();
    assert_eq!(
        last.script,
        script,
        "stopped elsewhere:\n{}",
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
    for c in w.journal() {
        assert!(
            read_only(&c),
            "a command that changes things ran before the refusal: {c}"
        );
    }
    let changed = changed_besides_journal(&before, &w.digest());
    assert!(changed.is_empty(), "refused, but changed: {changed:?}");
    let leaked = secrets("the refusal", &last.run.all());
    assert!(leaked.is_empty(), "{leaked:?}");
    last
}
