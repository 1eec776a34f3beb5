//! Rancher HA on RKE1 (PRODUCT.md §4.4–4.5, seed 003): the rollback after an
//! unsuccessful upgrade, and disaster recovery onto a replaced etcd node.
//!
//! rke itself runs on the workstation and reaches the nodes over SSH; the
//! node scripts only check the snapshot before the restore (or, in disaster
//! recovery, put it on the new node) and restart the Kubernetes containers
//! after it. Workstation paths from `[rke]` may be relative: they are relative
//! to the folder the operator runs the workstation scripts from, which every
//! workstation step says.
//!
//! Beyond the seed, one step saves the current etcd with `rke etcd
//! snapshot-save` before the restore (the seed warns to "backup any important
//! data in your current cluster" first): the rollback itself can then be
//! undone.

use super::builder::{Builder, script};
use super::{Aside, Func, Host, Op, Plan, Script, StepDoc};
use crate::choice::Rke1Role;
use crate::model::{Model, Recovery, Rke1, Rke1Node};

/// Where rke keeps local snapshots on the etcd nodes (RKE documentation,
/// "Restoring from Backup").
const SNAPSHOT_DIR: &str = "/opt/rke/etcd-snapshots";
/// The namespace of the Rancher deployment.
const NAMESPACE: &str = "cattle-system";
/// The seed's `docker restart` list, in its order; the first, third and
/// fourth run on controlplane nodes only, kubelet and kube-proxy on every
/// RKE1 node (rke runs the worker plane everywhere).
const K8S_CONTAINERS: [&str; 5] = [
    "kube-apiserver",
    "kubelet",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
];
/// A leftover of an earlier restore: rke would read its stale checksum
/// (rancher-archives/rke#2968).
const CHECKSUM_CONTAINER: &str = "etcd-checksum-checker";

/// Facts derived from the plan, shared by every step.
struct Ctx<'a> {
    r: &'a Rke1,
    /// The node whose snapshot copy is the one the plan's hash names: the
    /// first etcd node, or the replacement in disaster recovery.
    source: &'a Rke1Node,
    /// The name `rke etcd snapshot-save` gives the state before the restore.
    save_name: String,
}

impl<'a> Ctx<'a> {
    fn new(r: &'a Rke1, suffix: &str) -> Self {
        let source = match &r.recovery {
            Some(rec) => r.nodes.iter().find(|n| n.address == rec.replacement),
            None => r.nodes.iter().find(|n| n.has(Rke1Role::Etcd)),
        }
        .expect("validation guarantees an etcd node and the replacement");
        Self {
            r,
            source,
            save_name: format!("{suffix}-before-restore"),
        }
    }

    fn recovery(&self) -> Option<&'a Recovery> {
        self.r.recovery.as_ref()
    }

    fn target(&self) -> String {
        self.r.target.to_string()
    }

    fn hash(&self) -> String {
        self.r.snapshot.sha256.clone().unwrap_or_default()
    }

    /// The script of a node: named by its folder; the guard matches its host
    /// name when the plan gives one, else an address configured on the host.
    fn node(&self, n: &Rke1Node, preflight: Vec<Op>, actions: Vec<Op>) -> Script {
        let mut s = script(Host::Node(n.folder().to_owned()), true, preflight, actions);
        if n.hostname.is_none() {
            s.addresses = vec![n.address.clone()];
        }
        s
    }

    fn workstation(&self, preflight: Vec<Op>, actions: Vec<Op>) -> Script {
        script(Host::Workstation, false, preflight, actions)
    }

    fn check_workstation(&self) -> Op {
        let t = &self.r.rke;
        // rke restores from the first etcd node of the cluster file: outside
        // disaster recovery (whose cluster file still names the dead node at
        // step 1) that must be the plan's source node.
        let source = match &self.r.recovery {
            None if !t.s3_backup => self.source.address.clone(),
            _ => String::new(),
        };
        Op::new(
            Func::Rke1CheckWorkstation,
            [
                t.binary.clone(),
                t.config.clone(),
                t.state.clone(),
                t.kubeconfig.clone(),
                source,
                if t.s3_backup { "1" } else { "0" }.to_owned(),
            ],
        )
    }

    fn check_cluster_nodes(&self, rec: &Recovery) -> Op {
        Op::new(
            Func::Rke1CheckClusterNodes,
            [
                self.r.rke.config.clone(),
                rec.failed.clone(),
                rec.replacement.clone(),
                nodes_block(self.r, rec),
            ],
        )
    }

    fn check_deployment(&self) -> Op {
        let t = &self.r.rke;
        Op::new(
            Func::RancherCheckDeployment,
            [
                t.kubeconfig.as_str(),
                NAMESPACE,
                t.deployment.as_str(),
                t.container.as_str(),
            ],
        )
    }

    fn snapshot_check(&self, n: &Rke1Node) -> Op {
        // With s3backupconfig, rke downloads the snapshot on every etcd
        // node: no local copy is needed anywhere.
        let mode = if n.address == self.source.address && !self.r.rke.s3_backup {
            "source"
        } else {
            "peer"
        };
        Op::new(
            Func::Rke1CheckSnapshot,
            [
                SNAPSHOT_DIR.to_owned(),
                self.r.snapshot.name.clone(),
                self.hash(),
                mode.to_owned(),
            ],
        )
    }

    /// True when a workstation path is relative (a bare binary name is
    /// looked up on PATH instead).
    fn relative_paths(&self) -> bool {
        let t = &self.r.rke;
        !t.config.starts_with('/')
            || !t.kubeconfig.starts_with('/')
            || (t.binary.contains('/') && !t.binary.starts_with('/'))
    }

    /// Where to run the workstation scripts from, for the runbook.
    fn run_from(&self) -> String {
        if self.relative_paths() {
            format!(
                "Run it on the workstation, from the folder that holds `{}` (the plan's relative paths are relative to it), as the rollback guide does: `cd` there, then give sh the script's path in the bundle (`sh /path/to/bundle/workstation/…`).",
                self.r.rke.config
            )
        } else {
            "Run it on the workstation (the machine with rke, the cluster file and kubectl), from any folder: the plan's paths are absolute.".to_owned()
        }
    }

    /// The containers a node's roles run, in the seed's order.
    fn k8s_containers(n: &Rke1Node) -> Vec<&'static str> {
        K8S_CONTAINERS
            .iter()
            .copied()
            .filter(|c| n.has(Rke1Role::Controlplane) || matches!(*c, "kubelet" | "kube-proxy"))
            .collect()
    }
}

/// The `nodes:` block of the cluster file, as the seed shows it: every node of
/// the plan, the replacement marked, the failed node commented out.
fn nodes_block(r: &Rke1, rec: &Recovery) -> String {
    let mut out = String::from(
        "nodes:\n# Keep every other key of each entry (ssh_key_path, port, internal_address,\n# hostname_override, labels, ...) as it is in your file.\n",
    );
    for n in &r.nodes {
        let mark = if n.address == rec.replacement {
            "  # NEW NODE, replaces the failed one"
        } else {
            ""
        };
        // Values are YAML scalars (crate::escape): a user name cannot add
        // a key or a node to the block.
        out.push_str(&format!(
            "  - address: {}{mark}\n",
            crate::escape::yaml_scalar(&n.address)
        ));
        if let Some(u) = &n.user {
            out.push_str(&format!("    user: {}\n", crate::escape::yaml_scalar(u)));
        }
        let roles: Vec<&str> = n.roles.iter().map(|r| r.as_str()).collect();
        out.push_str(&format!("    role: [{}]\n", roles.join(", ")));
    }
    out.push_str(&format!(
        "#  - address: {}  # FAILED NODE: remove its entry (or comment it out like this)",
        crate::escape::yaml_scalar(&rec.failed)
    ));
    out
}

/// Plans a Rancher-on-RKE1 rollback.
pub(super) fn plan(model: &Model, r: &Rke1) -> Plan {
    let scenario = match &r.recovery {
        None => format!(
            "Rancher HA on RKE1, unsuccessful upgrade; deployment {NAMESPACE}/{}",
            r.rke.deployment
        ),
        Some(rec) => format!(
            "Rancher HA on RKE1, disaster recovery: {} replaces {}; deployment {NAMESPACE}/{}",
            rec.replacement, rec.failed, r.rke.deployment
        ),
    };
    let mut b = Builder::new(
        model,
        "rke1",
        scenario,
        r.current.to_string(),
        r.target.to_string(),
    );
    let cx = Ctx::new(r, b.suffix());
    preflight(&mut b, &cx);
    if let Some(rec) = cx.recovery() {
        fetch_snapshot(&mut b, &cx);
        cluster_file(&mut b, &cx, rec);
    }
    save_current(&mut b, &cx);
    restore(&mut b, &cx);
    up(&mut b, &cx);
    restart(&mut b, &cx);
    if r.target < r.current {
        set_image(&mut b, &cx);
    }
    verify(&mut b, &cx);
    notes(&mut b, &cx);
    let mut plan = b.finish();
    // What the save step keeps is not moved aside but saved beside the other
    // snapshots; the cleanup table is where the operator looks for it.
    plan.moved_aside.push(Aside {
        hosts: "etcd nodes".into(),
        from: "etcd, as it was before the restore".into(),
        to: format!("{SNAPSHOT_DIR}/{}.zip", cx.save_name),
        note: format!(
            "saved by the save-current step (if etcd answered); to undo the rollback, restore it like the plan's snapshot (`rke etcd snapshot-restore --name {}`); delete it once the rollback is verified",
            cx.save_name
        ),
    });
    plan
}

fn preflight(b: &mut Builder, cx: &Ctx<'_>) {
    let mut scripts = vec![cx.workstation(
        vec![
            Op::new(Func::NeedTools, ["kubectl"]),
            cx.check_workstation(),
        ],
        Vec::new(),
    )];
    let rec = cx.recovery();
    for n in &cx.r.nodes {
        let is_replacement = rec.is_some_and(|rec| rec.replacement == n.address);
        let mut tools = vec!["docker"];
        if is_replacement {
            if cx.r.snapshot.s3.is_some() {
                tools.push("s3cmd");
            }
            tools.push("sha256sum");
        }
        let mut pre = vec![
            Op::new(Func::NeedTools, tools),
            Op::new(Func::NeedDocker, Vec::<String>::new()),
        ];
        if n.has(Rke1Role::Etcd) {
            pre.push(Op::new(Func::NeedNoContainers, [CHECKSUM_CONTAINER]));
        }
        if is_replacement {
            // The snapshot arrives in the next step; here only its source.
            if let Some(p) = &cx.r.snapshot.path {
                pre.push(Op::new(Func::NeedFile, [p.as_str()]));
            }
        } else if n.has(Rke1Role::Etcd) {
            pre.push(cx.snapshot_check(n));
        }
        scripts.push(cx.node(n, pre, Vec::new()));
    }
    let t = &cx.r.rke;
    let name = &cx.r.snapshot.name;
    let mut what = vec![
        "Checks the workstation and every node before anything changes. It changes nothing and may be run as often as you like.".to_owned(),
        format!("The workstation's script: {}", cx.run_from().replacen("Run it", "run it", 1)),
        format!("Workstation: kubectl is installed, `{} --version` runs, the cluster file `{}` and its state file `{}` are there (rke needs the .rkestate beside the cluster file, under that name), and so is the kubeconfig `{}` (if it is missing, `rke up` writes it again).", t.binary, t.config, t.state, t.kubeconfig),
        "Every node: it is the right host, you are root, and docker answers.".to_owned(),
    ];
    let mut why = vec![
        "Rancher HA rollback guide, prerequisites of both scenarios: the rke binary, the cluster file with its .rkestate, the kubeconfig, and the snapshot in /opt/rke/etcd-snapshots/ of the etcd nodes.".to_owned(),
    ];
    match rec {
        None => {
            what.push(format!(
                "Etcd nodes: no `{CHECKSUM_CONTAINER}` container is left from an earlier restore, and the snapshot `{name}` is in `{SNAPSHOT_DIR}/` (as `{name}.zip`, or `{name}` if it is not compressed). On {} (the first etcd node of the plan) it must be there{}; on the other etcd nodes a missing or different copy is only reported.",
                cx.source.folder(),
                if cx.r.snapshot.sha256.is_some() { " and match the plan's sha256" } else { "" },
            ));
            why.push(format!("rke restores from the first etcd node of the cluster file that holds the snapshot and copies it to the others, whose own copies (each etcd node saves its own) are replaced. The plan lists the nodes in the cluster file's order, so {} is that node and its copy is the one checked.", cx.source.folder()));
        }
        Some(rec) => {
            what.push(format!(
                "Etcd nodes: no `{CHECKSUM_CONTAINER}` container is left from an earlier restore; the surviving etcd nodes report whether they hold a copy of `{name}`. The new node {} gets the snapshot in the next step{}.",
                rec.replacement,
                if cx.r.snapshot.s3.is_some() {
                    "; s3cmd must be installed there"
                } else if cx.r.snapshot.path.is_some() {
                    "; the copy named in the plan must be there"
                } else {
                    ""
                },
            ));
            why.push("rke restores from the first etcd node of the cluster file that holds the snapshot and copies it to the others. A surviving node usually has its own copy of the same snapshot (each etcd node saves one); the new node gets the plan's, checked against its hash.".to_owned());
        }
    }
    why.push("A stale `etcd-checksum-checker` container makes the restore fail with \"etcd snapshots are not consistent\" (rancher-archives/rke#2968). The hash is checked here with sha256sum on the host, not with tools inside an image (rancher/rancher#44219).".to_owned());
    b.step(
        "preflight",
        "Check the workstation and every node (read-only)",
        true,
        false,
        StepDoc {
            what,
            why,
            done: vec!["Every host prints `ok: preflight` and exits 0.".into()],
            if_fails: vec![
                "Nothing has changed. The message names the check and the file, and for a relative path the folder it looked in. Fix that host or the plan (compile again after a change) and run this step again everywhere.".into(),
                format!("\"stale container on this node: {CHECKSUM_CONTAINER}\": remove it there with `docker rm -f {CHECKSUM_CONTAINER}` (a leftover of an earlier restore, not a running component) and run the step again."),
                "\"WRONG HOST\" on a node without `hostname` in the plan: its address is not configured on the host (NAT, a load balancer in front); add the host's `hostname` to the plan and compile again, or run the node's scripts with REWIND_HOST=<the node's folder name>.".into(),
            ],
        },
        scripts,
    );
}

fn fetch_snapshot(b: &mut Builder, cx: &Ctx<'_>) {
    let snap = &cx.r.snapshot;
    let node = cx.source;
    // The file keeps the snapshot's name, with `.zip` when the source is
    // compressed: that is where rke looks for it.
    let zipped = |source: &str| {
        if source.ends_with(".zip") {
            format!("{}.zip", snap.name)
        } else {
            snap.name.clone()
        }
    };
    let (op, from, tools, file): (Op, String, &[&str], String) = if let Some(s3) = &snap.s3 {
        let key = match s3.folder.as_deref().map(|f| f.trim_matches('/')) {
            Some(f) if !f.is_empty() => format!("{f}/{}", s3.name),
            _ => s3.name.clone(),
        };
        let url = format!("s3://{}/{key}", s3.bucket);
        let file = zipped(&s3.name);
        let op = Op::new(
            Func::Rke1SnapshotFromS3,
            [
                SNAPSHOT_DIR.to_owned(),
                file.clone(),
                url.clone(),
                s3.endpoint.clone().unwrap_or_default(),
                s3.region.clone().unwrap_or_default(),
                cx.hash(),
            ],
        );
        let at = match (&s3.endpoint, &s3.region) {
            (Some(e), Some(r)) => format!(" from {e} (region {r})"),
            (Some(e), None) => format!(" from {e}"),
            (None, Some(r)) => format!(" (region {r})"),
            (None, None) => String::new(),
        };
        let from = format!(
            "`s3cmd get {url}`{at}. s3cmd takes the keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or from its configuration file; set REWIND_S3CFG to name another configuration file (for example one with `use_https = False`)"
        );
        (op, from, &["s3cmd", "sha256sum"], file)
    } else if let Some(p) = &snap.path {
        let file = zipped(p);
        let op = Op::new(
            Func::Rke1SnapshotFromFile,
            [SNAPSHOT_DIR.to_owned(), file.clone(), p.clone(), cx.hash()],
        );
        (op, format!("a copy of `{p}`"), &["sha256sum"], file)
    } else {
        let file = format!("{}.zip", snap.name);
        let op = Op::new(
            Func::Rke1SnapshotByHand,
            [SNAPSHOT_DIR.to_owned(), snap.name.clone(), cx.hash()],
        );
        let from = format!(
            "the file you copy there yourself: the plan names no S3 bucket and no local copy, so the step stops and says so until it is there, e.g. after `scp <a surviving etcd node>:{SNAPSHOT_DIR}/{file} {SNAPSHOT_DIR}/`"
        );
        (op, from, &["sha256sum"], file)
    };
    let dest = format!("{SNAPSHOT_DIR}/{file}");
    // No need_env for S3: s3cmd also reads its configuration file, and says
    // itself which key is missing.
    let mut pre = vec![Op::new(Func::NeedTools, tools.to_vec())];
    if let Some(p) = &snap.path {
        pre.push(Op::new(Func::NeedFile, [p.as_str()]));
    }
    if snap.s3.is_some() || snap.path.is_some() {
        b.aside(
            node.folder(),
            dest.clone(),
            "only if another file already had the snapshot's name there",
        );
    }
    b.step(
        "fetch-snapshot",
        format!("Put the snapshot on the new node {}", node.folder()),
        false,
        false,
        StepDoc {
            what: vec![
                format!("On the new node {} only: creates `{SNAPSHOT_DIR}` (the folder the other etcd nodes have) and puts the snapshot there as `{file}`: {from}.", node.folder()),
                format!("The file arrives under a temporary name and is renamed into place only once it is not empty{}; a different file already there under that name is moved aside (suffix `.{}`), never overwritten.", if snap.sha256.is_some() { " and its sha256 is the plan's" } else { "" }, b.suffix()),
            ],
            why: vec![
                "Rancher HA rollback guide, disaster recovery, \"Create New Node and Pull Snapshot\" steps 3–4: `mkdir -p /opt/rke/etcd-snapshots`, then `s3cmd get s3://rke-etcd-snapshots/<SNAPSHOT> /opt/rke/etcd-snapshots/<SNAPSHOT>`.".into(),
                "A damaged or empty snapshot would only be discovered by the restore, after rke has removed the cluster (empty downloads happen: rancher/rke2#6281).".into(),
            ],
            done: vec![format!("`ok: snapshot in place: {dest}` (or `already in place`) on {}.", node.folder())],
            if_fails: vec![
                "s3cmd exit 77 (403 Forbidden): wrong or missing keys; export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or set REWIND_S3CFG, and run again. Exit 64 with \"does not exist\": the bucket, folder or object name in the plan is wrong.".into(),
                "\"sha256 mismatch\": the file is not the snapshot whose hash the plan holds; the temporary copy is removed and nothing is in place. Find the right snapshot before going on.".into(),
                "Re-running is safe: a copy already in place with the right hash is kept as it is.".into(),
            ],
        },
        vec![cx.node(node, pre, vec![op])],
    );
}

fn cluster_file(b: &mut Builder, cx: &Ctx<'_>, rec: &Recovery) {
    b.step(
        "cluster-file",
        "Check that the cluster file lists the new node (workstation)",
        false,
        false,
        StepDoc {
            what: vec![
                cx.run_from(),
                format!("Reads the `address:` entries of `{}`: {} must be there and {} must not (a commented-out entry does not count).", cx.r.rke.config, rec.replacement, rec.failed),
                "If not, it prints the `nodes:` block to paste (every node of the plan, the new one marked, the failed one commented out) and stops. Edit the file, keep every other key of each entry (ssh_key_path, port, internal_address, …) as it is, save, and run this step again.".into(),
            ],
            why: vec![
                "Rancher HA rollback guide, disaster recovery, \"Restore etcd Database\" steps 1–3: replace the unresponsive node with the new one in the cluster file. rke reaches every node of the file over SSH: a dead node in it stops the restore, and a node missing from it gets no etcd member.".into(),
            ],
            done: vec![format!("`ok: {} lists {} and not {}`.", cx.r.rke.config, rec.replacement, rec.failed)],
            if_fails: vec![
                "The script reads block-style YAML (`- address: …` on a line of its own). A file written in flow style (`- {address: …, user: …}`) is not understood: rewrite its node entries in block style, as in the printed block.".into(),
            ],
        },
        vec![cx.workstation(vec![cx.check_cluster_nodes(rec)], Vec::new())],
    );
}

fn save_current(b: &mut Builder, cx: &Ctx<'_>) {
    let t = &cx.r.rke;
    b.step(
        "save-current",
        "Save the current etcd before the restore (workstation)",
        false,
        false,
        StepDoc {
            what: vec![
                cx.run_from(),
                format!("Runs `{} etcd snapshot-save --name {} --config {}`: every etcd node keeps the cluster as it is now in `{SNAPSHOT_DIR}/{}.zip` (and in S3 if the cluster file configures it).", t.binary, cx.save_name, t.config, cx.save_name),
                "If etcd does not answer (the upgrade broke it), rke fails; the script then warns and succeeds: there is nothing left to save, and the restore must go on.".into(),
            ],
            why: vec![
                "The Rancher HA rollback guide warns: \"Restoring an etcd snapshot deletes your current etcd cluster … backup any important data in your current cluster\" first. This snapshot is that backup: restoring it undoes the rollback (see Cleanup).".into(),
            ],
            done: vec![format!("`ok: current etcd saved as {}`, or the warning that it could not be saved.", cx.save_name)],
            if_fails: vec![
                "The step only fails when rke cannot run at all (see the preflight step). A refused save is a warning, not a failure.".into(),
            ],
        },
        vec![cx.workstation(
            vec![cx.check_workstation()],
            vec![Op::new(
                Func::Rke1SnapshotSave,
                [&t.binary, &t.config, &cx.save_name],
            )],
        )],
    );
}

fn restore(b: &mut Builder, cx: &Ctx<'_>) {
    let t = &cx.r.rke;
    let mut pre = vec![cx.check_workstation()];
    let seed_step = match cx.recovery() {
        Some(rec) => {
            pre.push(cx.check_cluster_nodes(rec));
            "Rancher HA rollback guide, disaster recovery, \"Restore etcd Database\" step 5"
        }
        None => "Rancher HA rollback guide, \"Recovering from an Unsuccessful Upgrade\" step 2",
    };
    b.step(
        "restore",
        "Restore the etcd snapshot with rke (workstation)",
        false,
        true,
        StepDoc {
            what: vec![
                cx.run_from(),
                format!("Runs `{} etcd snapshot-restore --name {} --config {}` (the name without `.zip`: rke adds it).", t.binary, cx.r.snapshot.name, t.config),
                "rke copies the snapshot to every etcd node and compares the copies, removes the cluster's components, rebuilds etcd from the snapshot and starts the cluster again (RKE documentation, \"Restoring from Backup\").".into(),
            ],
            why: vec![
                format!("{seed_step}: the local cluster, and Rancher's data in it, go back to the snapshot."),
                "This destroys every change made to Rancher since the snapshot was taken (users, settings, clusters added): the rollback guide warns that unrecoverable data loss may occur. Clusters that Rancher manages are not reverted: they keep their own state (Rancher v2.0–v2.4 documentation, \"Rollbacks\").".into(),
            ],
            done: vec![format!("rke ends with `Finished restoring snapshot [{}] on all etcd hosts` and exits 0.", cx.r.snapshot.name)],
            if_fails: vec![
                "\"etcd snapshots are not consistent\": look for a leftover `etcd-checksum-checker` container on each etcd node (`docker ps -a`), remove it, and run the step again (rancher-archives/rke#2968).".into(),
                "\"Unable to find statefile in snapshot\" or certificate errors: the `.rkestate` beside the cluster file is not this cluster's; put the right one back and run again.".into(),
                "`exec: \"sh\": executable file not found` in a restore container: this rke release cannot restore with the etcd image of the cluster file (rancher/rancher#44219, rancher/rke#3485); use the rke release that manages the cluster.".into(),
                "An SSH or docker error names a node: it must be reachable as the cluster file says. Running the restore again is safe: it always restores the snapshot again.".into(),
            ],
        },
        vec![cx.workstation(
            pre,
            vec![Op::new(
                Func::Rke1SnapshotRestore,
                [&t.binary, &t.config, &cx.r.snapshot.name],
            )],
        )],
    );
}

fn up(b: &mut Builder, cx: &Ctx<'_>) {
    let t = &cx.r.rke;
    let seed_step = if cx.recovery().is_some() {
        "Rancher HA rollback guide, disaster recovery, \"Restore etcd Database\" step 6"
    } else {
        "Rancher HA rollback guide, \"Recovering from an Unsuccessful Upgrade\" step 3"
    };
    b.step(
        "up",
        "Bring the cluster up with rke (workstation)",
        false,
        true,
        StepDoc {
            what: vec![
                cx.run_from(),
                format!("Runs `{} up --config {}`: every component of the cluster file is started again, and the state file and the kubeconfig `{}` are written again.", t.binary, t.config, t.kubeconfig),
            ],
            why: vec![
                format!("{seed_step}: bring the cluster back up after the restore."),
                "rke uses the cluster file as it is now: its `kubernetes_version` (or `system_images`, which overrides it) is what the nodes run afterwards. Before Rancher 2.4 a restore did not take the Kubernetes version back by itself (rancher/rancher#22368).".into(),
            ],
            done: vec!["rke ends with `Finished building Kubernetes cluster successfully` and exits 0.".into()],
            if_fails: vec![
                "Read rke's last error: it names the node and the component. Fix it (SSH, docker, disk space) and run the step again: `rke up` is safe to repeat.".into(),
            ],
        },
        vec![cx.workstation(
            vec![cx.check_workstation()],
            vec![Op::new(Func::Rke1Up, [&t.binary, &t.config])],
        )],
    );
}

fn restart(b: &mut Builder, cx: &Ctx<'_>) {
    let scripts =
        cx.r.nodes
            .iter()
            .map(|n| {
                let k8s = Ctx::k8s_containers(n);
                let mut need = k8s.clone();
                if n.has(Rke1Role::Etcd) {
                    need.push("etcd");
                }
                cx.node(
                    n,
                    vec![
                        Op::new(Func::NeedTools, ["docker"]),
                        Op::new(Func::NeedContainers, need),
                    ],
                    vec![
                        Op::new(Func::RestartContainers, k8s),
                        Op::new(Func::RestartMatchingContainers, ["flannel"]),
                        Op::new(Func::RestartMatchingContainers, ["calico"]),
                    ],
                )
            })
            .collect();
    b.step(
        "restart",
        "Restart the Kubernetes and network containers on every node",
        true,
        true,
        StepDoc {
            what: vec![
                "On each node: `docker restart` of the Kubernetes containers its roles run (kube-apiserver, kube-controller-manager and kube-scheduler on controlplane nodes; kubelet and kube-proxy on every node), then of the running flannel containers, then of the running calico containers. Pod sandboxes (`k8s_POD_…`) are left alone.".into(),
                "First it checks that those Kubernetes containers, and etcd on etcd nodes, are running: a missing one stops the step before anything restarts. No flannel or calico container (another network plugin) is not an error.".into(),
            ],
            why: vec![
                "Rancher HA rollback guide, last step of both scenarios: restart the Kubernetes components on all nodes, otherwise they conflict with the resource versions of the objects restored in etcd.".into(),
                "The rollback guide's `docker restart kube-apiserver kubelet …` fails on nodes without the controlplane role, and its `docker ps | grep flannel | cut -f 1 -d \" \" | xargs docker restart` runs `docker restart` with no container (an error) when nothing matches; this step restarts exactly the containers that exist, by name.".into(),
            ],
            done: vec!["`ok: restarted …` for the Kubernetes containers, then for flannel and calico (or `nothing to restart`), on every node.".into()],
            if_fails: vec![
                "\"not running on this node: …\": `rke up` did not start that component here; read `docker ps -a` and `docker logs <name>`, run the up step again, then this one.".into(),
                "Running the step again restarts the containers again, which is harmless.".into(),
            ],
        },
        scripts,
    );
}

fn set_image(b: &mut Builder, cx: &Ctx<'_>) {
    let t = &cx.r.rke;
    let target = cx.target();
    b.step(
        "set-image",
        format!("Set the Rancher image to {target} (workstation)"),
        false,
        true,
        StepDoc {
            what: vec![
                cx.run_from(),
                format!("Checks that deployment `{}` in `{NAMESPACE}` has the container `{}`, then runs `kubectl --kubeconfig {} -n {NAMESPACE} set image deployment/{} {}=<repository>:{target}` and waits for `kubectl rollout status` (REWIND_ROLLOUT_TIMEOUT seconds, default 600).", t.deployment, t.container, t.kubeconfig, t.deployment, t.container),
                "<repository> is the container's current image without its tag: `rancher/rancher` as in the rollback guide, or your registry's copy of it at an air-gapped site, which is kept.".into(),
            ],
            why: vec![
                "Rancher HA rollback guide, \"Recovering from an Unsuccessful Upgrade\" step 5: `kubectl set image deployment/cattle cattle-server=rancher/rancher:<PRIOR_VERSION> -n cattle-system`. Installs made with the helm chart name the deployment and the container `rancher`.".into(),
                "The restored deployment usually has the target image already; setting it makes sure, and the rollout wait proves that the pods run it. Rancher is unavailable for a few minutes meanwhile.".into(),
            ],
            done: vec![format!("`deployment \"{}\" successfully rolled out`, then `ok: deployment {NAMESPACE}/{} runs …:{target}`.", t.deployment, t.deployment)],
            if_fails: vec![
                "ImagePullBackOff: the nodes cannot pull the image; check the registry and that the tag exists there, then run again.".into(),
                format!("A rollout timeout: read `kubectl -n {NAMESPACE} get pods` and the pods' events; if they are only slow, raise REWIND_ROLLOUT_TIMEOUT and run again."),
            ],
        },
        vec![cx.workstation(
            vec![Op::new(Func::NeedTools, ["kubectl"]), cx.check_deployment()],
            vec![Op::new(
                Func::RancherSetImage,
                [
                    t.kubeconfig.as_str(),
                    NAMESPACE,
                    t.deployment.as_str(),
                    t.container.as_str(),
                    target.as_str(),
                ],
            )],
        )],
    );
}

fn verify(b: &mut Builder, cx: &Ctx<'_>) {
    let t = &cx.r.rke;
    let target = cx.target();
    let mut args = vec![
        t.kubeconfig.clone(),
        NAMESPACE.to_owned(),
        t.deployment.clone(),
        t.container.clone(),
        target.clone(),
    ];
    args.extend(cx.r.nodes.iter().map(|n| match &n.hostname {
        Some(h) => format!("{},{h}", n.address),
        None => n.address.clone(),
    }));
    let wrong_tag = if cx.r.target < cx.r.current {
        "An image tag other than the target: run the set-image step again.".to_owned()
    } else {
        format!(
            "An image tag other than {target}: the snapshot was not taken on {target}; check the plan's target-version and taken-on against it."
        )
    };
    b.step(
        "verify",
        "Verify Rancher and the nodes (workstation)",
        false,
        false,
        StepDoc {
            what: vec![
                cx.run_from(),
                format!("Waits (REWIND_VERIFY_TIMEOUT seconds, default 900) until the `{}` container of deployment `{}` runs an image tagged {target} with its rollout complete, and every node of the plan is Ready (found by its name or one of its addresses).", t.container, t.deployment),
                "Fails if the nodes run different kubelet versions. Lists node objects that are not in the plan (such as a failed node) without deleting them.".into(),
            ],
            why: vec![
                "Rancher HA rollback guide, last step of \"Recovering from an Unsuccessful Upgrade\": confirm the version Rancher runs. The guide reads it in the UI; the image tag is the version the UI shows.".into(),
                "A restore once left workers on the newer Kubernetes (rancher/rancher#22232, #26289): every node must run the same kubelet.".into(),
            ],
            done: vec![format!("`ok: Rancher runs {target} (…); N node(s) Ready, kubelet …`. Then log in to Rancher and check the version in the bottom-left corner.")],
            if_fails: vec![
                "A node that stays NotReady: read `docker logs kubelet` on it, and run the restart step there again.".into(),
                wrong_tag,
            ],
        },
        vec![cx.workstation(
            vec![Op::new(Func::NeedTools, ["kubectl"])],
            vec![Op::new(Func::RancherVerify, args)],
        )],
    );
}

fn notes(b: &mut Builder, cx: &Ctx<'_>) {
    let r = cx.r;
    b.verification(format!(
        "log in to Rancher and check that the version in the bottom-left corner is {};",
        r.target
    ));
    b.verification(format!(
        "run `kubectl --kubeconfig {} get nodes` and check that every node is Ready;",
        r.rke.kubeconfig
    ));
    b.verification("on each node, `docker ps` shows kube-apiserver, kubelet, kube-proxy (and etcd, kube-controller-manager, kube-scheduler where their roles run them) up since the restart step;");
    b.verification("check that your downstream clusters reconnect to Rancher: they are not rolled back with it, and changes made to them through Rancher since the upgrade are gone from Rancher's view;");
    let t = &r.target;
    let binary = if r.recovery.is_some() {
        "the rke release that manages this cluster"
    } else {
        "the rke binary that performed the upgrade (the Rancher HA rollback guide)"
    };
    b.manual(format!("Use {binary}, and check that the cluster file's `kubernetes_version` (and `system_images`, which overrides it) is the one the cluster ran when the snapshot was taken: `rke up` installs what the file says."));
    b.manual("The rollback destroys every change made to Rancher since the snapshot (the rollback guide: \"unrecoverable data loss may occur\"). Clusters managed by Rancher are authoritative for their own state and are not reverted: workloads and changes made in them stay.");
    if (t.major, t.minor) == (2, 0) && t.patch <= 10 || (t.major, t.minor) == (2, 1) && t.patch <= 5
    {
        b.manual(format!("{t} is affected by CVE-2018-20321, so rolling back to v2.0.0–v2.0.10 or v2.1.0–v2.1.5 needs extra steps (Rancher v2.0–v2.4 documentation, \"Rollbacks\"): before the restore, record each cluster's `serviceAccountToken` from the running Rancher (`kubectl get clusters -o json | jq … > tokens.json`); after the rollback, patch them back with the documented script."));
    }
    if (t.major, t.minor) >= (2, 5) {
        b.manual(format!("Rancher {t}: from v2.5 on, Rancher documents rollbacks with the rancher-backup operator and `helm rollback`. This bundle restores the whole local cluster's etcd instead, which also takes the rancher-backup app and the helm release records back to the snapshot: check `helm history rancher -n {NAMESPACE}` afterwards, before any `helm upgrade`."));
    }
    if let Some(rec) = &r.recovery {
        b.manual(format!("The failed node {} must stay off for good (or at least have docker stopped) before the restore: a node that comes back with its old etcd data tries to rejoin the old cluster. The RKE documentation says to stop all Kubernetes services on the old nodes before restoring.", rec.failed));
        b.manual(format!("Provision the new node {} like the others before step 1: docker installed, and SSH access for the cluster file's user and key (the rollback guide, \"Create New Node\").", rec.replacement));
        b.manual(format!("Restoring a snapshot is for a lost quorum. If the other etcd nodes still run and form a majority (two of three), you do not need it and lose nothing: replace {} with {} in the cluster file and run `rke up` (rke removes the failed member and adds the new one, which copies the data from the others; RKE documentation, \"Adding and removing nodes\"). This bundle restores the snapshot instead and loses every write since it was taken.", rec.failed, rec.replacement));
    }
    b.manual(format!("Do not share `{SNAPSHOT_DIR}` between the etcd nodes over NFS during the restore (RKE documentation)."));
}

#[cfg(test)]
mod tests {
    use super::super::{Func, Host, Op, Plan, plan};
    use crate::source::SourceFile;
    use crate::templates;
    use crate::validate::check;

    const UPGRADE: &str = include_str!("../../plans/rancher-upgrade.toml");
    const RECOVERY: &str = include_str!("../../plans/rancher-recovery.toml");
    const HELM: &str = include_str!("../../plans/rancher-helm.toml");
    const HELM_RECOVERY: &str = include_str!("../../plans/rancher-helm-recovery.toml");

    fn compile(text: &str) -> Plan {
        let c = check(&SourceFile::new("t.toml", text), None);
        let model = c
            .model
            .unwrap_or_else(|| panic!("rejected: {:?}", c.diagnostics));
        plan(&model)
    }

    fn ids(p: &Plan) -> Vec<&str> {
        p.steps.iter().map(|s| s.id).collect()
    }

    /// The ops of `step` on `host`: (preflight, actions).
    fn ops<'p>(p: &'p Plan, step: &str, host: &str) -> (&'p [Op], &'p [Op]) {
        let s = p
            .steps
            .iter()
            .find(|s| s.id == step)
            .unwrap_or_else(|| panic!("no step {step}"))
            .scripts
            .iter()
            .find(|s| s.host.name() == host)
            .unwrap_or_else(|| panic!("no script for {host} in {step}"));
        (&s.preflight, &s.actions)
    }

    fn find(ops: &[Op], f: Func) -> Vec<&[crate::plan::ops::Word]> {
        ops.iter()
            .filter(|o| o.func == f)
            .map(|o| o.args.as_slice())
            .collect()
    }

    #[test]
    fn upgrade_follows_the_seed_order() {
        let p = compile(UPGRADE);
        assert_eq!(
            ids(&p),
            [
                "preflight",
                "save-current",
                "restore",
                "up",
                "restart",
                "set-image",
                "verify"
            ]
        );
        assert_eq!(p.distribution, "rke1");
        let destructive: Vec<&str> = p
            .steps
            .iter()
            .filter(|s| s.destructive)
            .map(|s| s.id)
            .collect();
        assert_eq!(destructive, ["restore", "up", "restart", "set-image"]);
        let (_, act) = ops(&p, "restore", "workstation");
        assert_eq!(
            find(act, Func::Rke1SnapshotRestore),
            [[
                "./rke_linux-amd64",
                "rancher-cluster.yml",
                "pre-upgrade-2020-09-01"
            ]]
        );
        let (_, act) = ops(&p, "set-image", "workstation");
        assert_eq!(
            find(act, Func::RancherSetImage),
            [[
                "kube_config_rancher-cluster.yml",
                "cattle-system",
                "cattle",
                "cattle-server",
                "v2.4.5"
            ]]
        );
    }

    #[test]
    fn recovery_fetches_checks_the_cluster_file_and_skips_set_image_at_the_same_version() {
        let p = compile(RECOVERY);
        assert_eq!(
            ids(&p),
            [
                "preflight",
                "fetch-snapshot",
                "cluster-file",
                "save-current",
                "restore",
                "up",
                "restart",
                "verify"
            ]
        );
        let (_, act) = ops(&p, "fetch-snapshot", "4.4.4.4");
        let fetch = find(act, Func::Rke1SnapshotFromS3);
        assert_eq!(
            fetch[0][..3],
            [
                "/opt/rke/etcd-snapshots",
                "pre-upgrade-2020-09-01.zip",
                "s3://rke-etcd-snapshots/pre-upgrade-2020-09-01.zip"
            ]
        );
        assert_eq!(
            fetch[0][3..5],
            ["", ""],
            "no endpoint or region: s3cmd's defaults"
        );
        let (pre, _) = ops(&p, "restore", "workstation");
        let nodes = find(pre, Func::Rke1CheckClusterNodes);
        assert_eq!(nodes[0][..3], ["rancher-cluster.yml", "3.3.3.3", "4.4.4.4"]);
        assert!(nodes[0][3].contains("  - address: 4.4.4.4  # NEW NODE"));
        assert!(nodes[0][3].contains("#  - address: 3.3.3.3  # FAILED NODE"));
        // An older target in a recovery plan sets the image too.
        let older = RECOVERY.replace(
            "current-version = \"v2.4.5\"",
            "current-version = \"v2.4.8\"",
        );
        assert!(ids(&compile(&older)).contains(&"set-image"));
    }

    #[test]
    fn the_source_copy_is_checked_strictly_and_the_others_only_reported() {
        let p = compile(UPGRADE);
        for (host, mode) in [
            ("1.1.1.1", "source"),
            ("2.2.2.2", "peer"),
            ("3.3.3.3", "peer"),
        ] {
            let (pre, _) = ops(&p, "preflight", host);
            let check = find(pre, Func::Rke1CheckSnapshot);
            assert_eq!(check[0][3], mode, "{host}");
        }
        // In disaster recovery the new node gets the snapshot later; the
        // survivors only report theirs.
        let p = compile(RECOVERY);
        let (pre, _) = ops(&p, "preflight", "4.4.4.4");
        assert!(find(pre, Func::Rke1CheckSnapshot).is_empty());
        assert_eq!(
            find(pre, Func::NeedTools),
            [["docker", "s3cmd", "sha256sum"]]
        );
        let (pre, _) = ops(&p, "preflight", "1.1.1.1");
        assert_eq!(find(pre, Func::Rke1CheckSnapshot)[0][3], "peer");
    }

    #[test]
    fn restarts_follow_the_roles() {
        let p = compile(HELM);
        let (pre, act) = ops(&p, "restart", "rancher-cp-1");
        assert_eq!(
            find(pre, Func::NeedContainers),
            [[
                "kube-apiserver",
                "kubelet",
                "kube-controller-manager",
                "kube-scheduler",
                "kube-proxy",
                "etcd"
            ]]
        );
        assert_eq!(
            find(act, Func::RestartContainers),
            [[
                "kube-apiserver",
                "kubelet",
                "kube-controller-manager",
                "kube-scheduler",
                "kube-proxy"
            ]]
        );
        assert_eq!(
            find(act, Func::RestartMatchingContainers),
            [["flannel"], ["calico"]]
        );
        let (pre, act) = ops(&p, "restart", "rancher-worker-1");
        assert_eq!(find(pre, Func::NeedContainers), [["kubelet", "kube-proxy"]]);
        assert_eq!(
            find(act, Func::RestartContainers),
            [["kubelet", "kube-proxy"]]
        );
    }

    #[test]
    fn the_guard_uses_the_host_name_else_the_address() {
        let p = compile(UPGRADE);
        let s = &p.steps[0].scripts[1];
        assert_eq!(s.host, Host::Node("1.1.1.1".into()));
        assert_eq!(s.path, "nodes/1.1.1.1/01-preflight.sh");
        assert_eq!(s.addresses, ["1.1.1.1"]);
        assert!(s.needs_root);
        assert!(
            !p.steps[0].scripts[0].needs_root,
            "workstation scripts need no root"
        );
        let p = compile(HELM);
        let s = &p.steps[0].scripts[1];
        assert_eq!(s.host, Host::Node("rancher-cp-1".into()));
        assert!(s.addresses.is_empty());
        let (_, act) = ops(&p, "verify", "workstation");
        assert_eq!(
            find(act, Func::RancherVerify)[0][5],
            "10.0.1.11,rancher-cp-1"
        );
    }

    #[test]
    fn a_local_copy_or_a_copy_by_hand_replaces_s3() {
        let p = compile(HELM_RECOVERY);
        let (pre, act) = ops(&p, "fetch-snapshot", "rancher-cp-4");
        assert_eq!(find(pre, Func::NeedFile), [["/root/rancher-snapshot.zip"]]);
        assert_eq!(
            find(act, Func::Rke1SnapshotFromFile)[0][..3],
            [
                "/opt/rke/etcd-snapshots",
                "rke_etcd_snapshot_2021-11-04T22:10:05Z.zip",
                "/root/rancher-snapshot.zip"
            ]
        );
        let by_hand = HELM_RECOVERY.replace("path = \"/root/rancher-snapshot.zip\"\n", "");
        let p = compile(&by_hand);
        let (_, act) = ops(&p, "fetch-snapshot", "rancher-cp-4");
        assert_eq!(
            find(act, Func::Rke1SnapshotByHand)[0][..2],
            [
                "/opt/rke/etcd-snapshots",
                "rke_etcd_snapshot_2021-11-04T22:10:05Z"
            ]
        );
    }

    #[test]
    fn old_and_new_rancher_targets_get_manual_checks() {
        let cve = UPGRADE
            .replace("\"v2.4.8\"", "\"v2.1.6\"")
            .replace("\"v2.4.5\"", "\"v2.1.5\"");
        assert!(
            compile(&cve)
                .manual_checks
                .iter()
                .any(|m| m.contains("CVE-2018-20321"))
        );
        assert!(
            !compile(UPGRADE)
                .manual_checks
                .iter()
                .any(|m| m.contains("CVE-2018-20321"))
        );
        let new = UPGRADE
            .replace("\"v2.4.8\"", "\"v2.5.9\"")
            .replace("\"v2.4.5\"", "\"v2.5.8\"");
        assert!(
            compile(&new)
                .manual_checks
                .iter()
                .any(|m| m.contains("rancher-backup"))
        );
    }

    #[test]
    fn every_rke1_function_is_in_its_fragment_under_its_serde_name() {
        let funcs = [
            Func::NeedDocker,
            Func::NeedContainers,
            Func::NeedNoContainers,
            Func::RestartContainers,
            Func::RestartMatchingContainers,
            Func::Rke1CheckWorkstation,
            Func::Rke1CheckSnapshot,
            Func::Rke1CheckClusterNodes,
            Func::Rke1SnapshotFromS3,
            Func::Rke1SnapshotFromFile,
            Func::Rke1SnapshotByHand,
            Func::Rke1SnapshotSave,
            Func::Rke1SnapshotRestore,
            Func::Rke1Up,
            Func::RancherCheckDeployment,
            Func::RancherSetImage,
            Func::RancherVerify,
        ];
        for f in funcs {
            let serde = serde_json::to_string(&f).unwrap();
            assert_eq!(
                serde,
                format!("\"{}\"", f.name()),
                "templates print the serde name"
            );
            let src = templates::library(f.fragment());
            assert!(
                src.contains(&format!("\n{}() {{\n", f.name())),
                "{} is not defined in {}.sh",
                f.name(),
                f.fragment()
            );
        }
    }

    #[test]
    fn workstation_steps_say_where_to_run_from() {
        let relative = compile(UPGRADE);
        let absolute = compile(HELM);
        for (p, folder) in [(&relative, true), (&absolute, false)] {
            for s in p
                .steps
                .iter()
                .filter(|s| s.scripts.iter().any(|x| x.host == Host::Workstation))
            {
                let text = s.doc.what.join(" ");
                assert_eq!(
                    text.contains("from the folder that holds `rancher-cluster.yml`"),
                    folder,
                    "{}: {text}",
                    s.id
                );
            }
        }
    }
}
