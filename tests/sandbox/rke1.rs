//! Rancher HA on RKE1 in the sandbox: the facts of an RKE1 plan, seeding its
//! nodes and workstation, and what a finished walk must look like.
//!
//! The workstation holds the rke binary (stand-in), the cluster file, its
//! `.rkestate` and the kubeconfig; relative paths of the plan are relative
//! to [`WORK_DIR`], the folder the workstation scripts are run from (the
//! plan's rule). Nodes have docker (stand-in) with the containers of their
//! roles, and the snapshot in `/opt/rke/etcd-snapshots/` on etcd nodes. A
//! node without a host name in the plan is known by its address only: its
//! runs get a network namespace with that address, so the host guard finds
//! it the way it would on the real host. In a disaster-recovery plan the
//! failed node has no host at all (rke cannot reach it), the replacement
//! starts empty, and the cluster file still lists the failed node until
//! the operator pastes the block the cluster-file step prints.

use std::fs;
use std::path::Path;

use rewind::model::{Kind, Model};
use rewind::plan::{Func, Plan, Script};

use super::host::Host;
use super::seed;
use super::stubs::{self, Call};
use super::world::{ScriptRun, World};

/// The folder the workstation scripts of an RKE1 plan are run from.
pub const WORK_DIR: &str = "/root/rancher-work";

/// Kubelet version the fake RKE1 cluster reports.
const KUBELET: &str = "v1.17.17";

/// An RKE1 node of the plan.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its folder in the bundle (host name, else address).
    pub folder: String,
    /// The address rke reaches it at.
    pub address: String,
    /// Its host name, if the plan gives one.
    pub hostname: Option<String>,
    /// controlplane / etcd / worker.
    pub roles: Vec<String>,
}

impl Node {
    /// The host name its runs see: the plan's, else a name that is not the
    /// address (the guard must then find the address).
    pub fn host_name(&self) -> String {
        self.hostname
            .clone()
            .unwrap_or_else(|| format!("node-{}", self.address.replace(['.', ':'], "-")))
    }
}

/// What the sandbox needs to know about an RKE1 plan.
#[derive(Debug, Clone)]
pub struct Rke1Facts {
    /// Cluster name.
    pub cluster: String,
    /// Rancher version now.
    pub current: String,
    /// Rancher version to go back to.
    pub target: String,
    /// Rancher version the snapshot was taken on.
    pub taken_on: String,
    /// rke binary, cluster file, state file, kubeconfig (as in the plan).
    pub binary: String,
    /// The cluster file.
    pub config: String,
    /// Its state file.
    pub state: String,
    /// The kubeconfig.
    pub kubeconfig: String,
    /// Rancher deployment and container.
    pub deployment: String,
    /// The container whose image is set.
    pub container: String,
    /// Snapshot name (without .zip).
    pub snapshot: String,
    /// Dead node and replacement addresses, for disaster recovery.
    pub recovery: Option<(String, String)>,
    /// The nodes of the plan.
    pub nodes: Vec<Node>,
}

impl Rke1Facts {
    /// Reads what matters from a validated RKE1 plan.
    pub fn of(model: &Model) -> Rke1Facts {
        let Kind::Rke1(r) = &model.kind else {
            panic!("not an RKE1 plan")
        };
        Rke1Facts {
            cluster: model.cluster.clone(),
            current: r.current.to_string(),
            target: r.target.to_string(),
            taken_on: r.snapshot.taken_on.clone(),
            binary: r.rke.binary.clone(),
            config: r.rke.config.clone(),
            state: r.rke.state.clone(),
            kubeconfig: r.rke.kubeconfig.clone(),
            deployment: r.rke.deployment.clone(),
            container: r.rke.container.clone(),
            snapshot: r.snapshot.name.clone(),
            recovery: r
                .recovery
                .as_ref()
                .map(|x| (x.failed.clone(), x.replacement.clone())),
            nodes: r
                .nodes
                .iter()
                .map(|n| Node {
                    folder: n.folder().to_owned(),
                    address: n.address.clone(),
                    hostname: n.hostname.clone(),
                    roles: n.roles.iter().map(ToString::to_string).collect(),
                })
                .collect(),
        }
    }

    /// A workstation path of the plan, made absolute.
    pub fn on_workstation(&self, path: &str) -> String {
        if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("{WORK_DIR}/{}", path.trim_start_matches("./"))
        }
    }

    /// The replacement node of a disaster recovery.
    pub fn replacement(&self) -> Option<&str> {
        self.recovery.as_ref().map(|r| r.1.as_str())
    }
}

fn cluster_file(f: &Rke1Facts, before_the_disaster: bool) -> String {
    let mut c = String::from("# RKE cluster file of the Rancher HA install\nnodes:\n");
    for n in &f.nodes {
        let address = match (&f.recovery, before_the_disaster) {
            (Some((failed, repl)), true) if &n.address == repl => failed.clone(),
            _ => n.address.clone(),
        };
        c.push_str(&format!(
            "  - address: {address}\n    user: rancher\n    role: [{}]\n",
            n.roles.join(", ")
        ));
        if let Some(h) = &n.hostname {
            c.push_str(&format!("    hostname_override: {h}\n"));
        }
        c.push_str("    ssh_key_path: ~/.ssh/id_rsa\n");
    }
    c.push_str("services:\n  etcd:\n    snapshot: true\n    creation: 6h\n    retention: 24h\nkubernetes_version: v1.17.17-rancher1-2\n");
    c
}

/// The containers a node with `roles` runs.
fn containers(roles: &[String]) -> String {
    let mut c = String::new();
    if roles.iter().any(|r| r == "etcd") {
        c.push_str("etcd\n");
    }
    if roles.iter().any(|r| r == "controlplane") {
        c.push_str("kube-apiserver\nkube-controller-manager\nkube-scheduler\n");
    }
    c.push_str("kubelet\nkube-proxy\nservice-sidekick\n");
    c.push_str("k8s_kube-flannel_canal-x1_kube-system_0\nk8s_calico-node_canal-x1_kube-system_0\nk8s_POD_canal-x1_kube-system_0\n");
    c
}

/// Seeds the workstation and the nodes of an RKE1 world, and its fake
/// cluster (the test's shared folder `test`).
pub fn seed(
    f: &Rke1Facts,
    plan: &Plan,
    hosts: &std::collections::BTreeMap<String, Host>,
    test: &Path,
) {
    let ws = &hosts[super::world::WORKSTATION];
    ws.mkdir(WORK_DIR);
    ws.write(&f.on_workstation(&f.binary), stubs::text("rke"), 0o755);
    ws.write(&f.on_workstation(&f.config), cluster_file(f, true), 0o600);
    ws.write(
        &f.on_workstation(&f.state),
        "{\"desiredState\":{},\"currentState\":{}}\n",
        0o600,
    );
    ws.write(
        &f.on_workstation(&f.kubeconfig),
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: https://{}:6443\n", f.nodes[0].address),
        0o600,
    );
    let c = test.join("cluster");
    let rke1 = c.join("rke1");
    fs::create_dir_all(rke1.join("nodes")).expect("create the fake RKE1 cluster");
    fs::create_dir_all(c.join("containers")).expect("create the fake RKE1 cluster");
    fs::write(
        c.join("facts"),
        format!(
            "distribution=rke1\ndeployment={}\ncontainer={}\nsnapshot-image=rancher/rancher:{}\n",
            f.deployment, f.container, f.taken_on
        ),
    )
    .expect("write the cluster facts");
    fs::write(
        rke1.join("image"),
        format!("rancher/rancher:{}\n", f.current),
    )
    .expect("write the image");
    fs::write(rke1.join("api"), "up\n").expect("write the API state");
    let mut reachable = String::new();
    for n in &f.nodes {
        reachable.push_str(&format!("{} {}\n", n.address, n.folder));
        let fresh = f.replacement() == Some(n.address.as_str());
        let list = if fresh {
            String::new()
        } else {
            containers(&n.roles)
        };
        fs::write(c.join("containers").join(&n.folder), list).expect("write a node's containers");
        if !fresh {
            fs::write(
                rke1.join("nodes").join(&n.address),
                format!("{} {}|True|{KUBELET}\n", n.folder, n.address),
            )
            .expect("write a node state");
        }
    }
    if let Some((failed, _)) = &f.recovery {
        fs::write(
            rke1.join("nodes").join(failed),
            format!("{failed} {failed}|Unknown|{KUBELET}\n"),
        )
        .expect("write the failed node");
    }
    fs::write(rke1.join("hosts"), reachable).expect("write the reachable hosts");
    let names: String = f
        .nodes
        .iter()
        .map(|n| format!("{} {}\n", n.host_name(), n.folder))
        .collect();
    fs::write(test.join("hostnames"), names).expect("write the host names");
    for step in &plan.steps {
        for script in &step.scripts {
            seed_backups(&hosts[script.host.name()], script);
        }
    }
}

fn seed_backups(host: &Host, script: &Script) {
    for op in script.preflight.iter().chain(&script.actions) {
        let a = &op.args;
        // A snapshot of another name (a plan of the hostile-value test):
        // the same bytes.
        let zip = |name: &str| {
            let known = [
                "pre-upgrade-2020-09-01",
                "rke_etcd_snapshot_2021-11-04T22:10:05Z",
            ];
            seed::fixture(&format!(
                "rke1/{}.zip",
                if known.contains(&name) {
                    name
                } else {
                    known[0]
                }
            ))
        };
        match op.func {
            Func::Rke1CheckSnapshot => {
                let path = format!("{}/{}.zip", a[0], a[1]);
                if !host.has(&path) {
                    host.write(&path, zip(&a[1]), 0o600);
                }
            }
            Func::Rke1SnapshotFromFile => {
                let name = a[1].trim_end_matches(".zip");
                if !host.has(&a[2]) {
                    host.write(&a[2], zip(name), 0o600);
                }
            }
            _ => {}
        }
    }
}

/// The fixtures the s3cmd stand-in serves.
pub fn install_fixtures(test: &Path) {
    let dir = test.join("fixtures/rke1");
    fs::create_dir_all(&dir).expect("create the RKE1 fixtures folder");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rke1");
    for e in fs::read_dir(&src)
        .expect("read tests/fixtures/rke1")
        .filter_map(Result::ok)
    {
        fs::copy(e.path(), dir.join(e.file_name())).expect("copy an RKE1 fixture");
    }
}

/// If `run` is the cluster-file check of a disaster recovery that stopped
/// because the cluster file still lists the failed node, does what the
/// operator does: replaces the file's `nodes:` list with the block the step
/// printed. Returns true if it did.
pub fn paste_nodes_block(w: &World, run: &ScriptRun) -> bool {
    let f = w.rke1();
    if f.recovery.is_none()
        || run.run.code == 0
        || !run
            .run
            .stderr
            .contains("replace its nodes: list with this block")
    {
        return false;
    }
    let Some(start) = run.run.stderr.find("\nnodes:\n") else {
        return false;
    };
    let block: String = run.run.stderr[start + 1..]
        .lines()
        .take_while(|l| l.starts_with("nodes:") || l.starts_with(' ') || l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let ws = w.host(super::world::WORKSTATION);
    let path = f.on_workstation(&f.config);
    let old = ws.text(&path).expect("the cluster file");
    let rest = &old[old
        .find("services:")
        .expect("services: in the cluster file")..];
    ws.write(
        &path,
        format!("# RKE cluster file of the Rancher HA install\n{block}{rest}"),
        0o600,
    );
    true
}

/// The commands across hosts of an RKE1 walk: restore, then up, then the
/// restarts on every node, then the image; every node's containers
/// restarted; no failing call.
pub fn order(w: &World, calls: &[Call]) -> Vec<String> {
    let f = w.rke1();
    let mut p = Vec::new();
    let pos = |pred: &dyn Fn(&Call) -> bool| calls.iter().position(pred);
    let restore = pos(&|c| c.tool == "rke" && c.starts(&["etcd", "snapshot-restore"]));
    let up = pos(&|c| c.tool == "rke" && c.starts(&["up"]));
    let set_image = pos(&|c| c.tool == "kubectl" && c.arg_texts().iter().any(|a| a == "set"));
    match (restore, up) {
        (Some(r), Some(u)) if r < u => {}
        (r, u) => p.push(format!(
            "rke etcd snapshot-restore ({r:?}) must run before rke up ({u:?})"
        )),
    }
    let want_restore = vec![
        "etcd".to_owned(),
        "snapshot-restore".into(),
        "--name".into(),
        f.snapshot.clone(),
        "--config".into(),
        f.config.clone(),
    ];
    if let Some(r) = restore
        && calls[r].arg_texts() != want_restore
    {
        p.push(format!(
            "the restore was not `rke {}`: {}",
            want_restore.join(" "),
            calls[r]
        ));
    }
    for n in &f.nodes {
        let restarts: Vec<usize> = calls
            .iter()
            .enumerate()
            .filter(|(_, c)| c.host == n.folder && c.tool == "docker" && c.starts(&["restart"]))
            .map(|(i, _)| i)
            .collect();
        if restarts.is_empty() {
            p.push(format!("{}: no container was restarted", n.folder));
        }
        for i in &restarts {
            if up.is_none_or(|u| *i < u) {
                p.push(format!("{}: containers restarted before rke up", n.folder));
            }
            if set_image.is_some_and(|s| *i > s) {
                p.push(format!(
                    "{}: containers restarted after the image was set",
                    n.folder
                ));
            }
            if calls[*i]
                .arg_texts()
                .iter()
                .any(|a| a.starts_with("k8s_POD_"))
            {
                p.push(format!(
                    "{}: a pod sandbox was restarted: {}",
                    n.folder, calls[*i]
                ));
            }
        }
    }
    if f.current != f.target {
        match set_image {
            Some(s) => {
                let want = format!("{}=rancher/rancher:{}", f.container, f.target);
                if !calls[s].arg_texts().contains(&want) {
                    p.push(format!("the image was not set to {want}: {}", calls[s]));
                }
            }
            None => p.push("the Rancher image was never set back".into()),
        }
    }
    for c in calls {
        if c.rc != 0 {
            p.push(format!("a stand-in failed during the walk: {c}"));
        }
    }
    p
}

/// The state afterwards: the deployment runs the target image, every node
/// of the plan is Ready, the snapshot is on every etcd node that had it (and
/// on the replacement), the journal lines and done-markers are there.
pub fn state(w: &World, runs: &[ScriptRun]) -> Vec<String> {
    let f = w.rke1();
    let mut p = Vec::new();
    let rke1 = w.test.join("cluster/rke1");
    let image = fs::read_to_string(rke1.join("image")).unwrap_or_default();
    if image.trim() != format!("rancher/rancher:{}", f.target) {
        p.push(format!(
            "the deployment runs {:?}, not rancher/rancher:{}",
            image.trim(),
            f.target
        ));
    }
    for n in &f.nodes {
        let st = fs::read_to_string(rke1.join("nodes").join(&n.address)).unwrap_or_default();
        if !st.contains("|True|") {
            p.push(format!(
                "{}: not Ready afterwards ({:?})",
                n.folder,
                st.trim()
            ));
        }
        if n.roles.iter().any(|r| r == "etcd") {
            let path = format!("/opt/rke/etcd-snapshots/{}.zip", f.snapshot);
            if w.host(&n.folder).read(&path)
                != Some(seed::fixture(&format!("rke1/{}.zip", f.snapshot)))
            {
                p.push(format!("{}: {path} is not the snapshot", n.folder));
            }
        }
    }
    for (name, h) in &w.hosts {
        p.extend(
            super::checks::journal_lines(w, name, runs)
                .into_iter()
                .map(|e| format!("{name}: {e}")),
        );
        let left = h.tmp_leftovers();
        if !left.is_empty() {
            p.push(format!("{name}: files left in /tmp: {left:?}"));
        }
    }
    p
}
