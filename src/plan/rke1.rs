//! Rancher HA on RKE1 (Rancher's HA rollback guide for RKE installs): the rollback after an
//! unsuccessful upgrade, and disaster recovery onto a replaced etcd node.
//!
//! rke itself runs on the workstation and reaches the nodes over SSH; the
//! node scripts only check the snapshot before the restore (or, in disaster
//! recovery, put it on the new node) and restart the Kubernetes containers
//! after it. Workstation paths from `[rke]` may be relative: they are relative
//! to the folder the operator runs the workstation scripts from, which every
//! workstation step says (`Rke1Facts::relative_paths`; the words are in
//! `templates/runbook/rke1/macros.md.j2`).
//!
//! Beyond the guide, one step saves the current etcd with `rke etcd
//! snapshot-save` before the restore (the guide warns to "backup any important
//! data in your current cluster" first): the rollback itself can then be
//! undone.

use super::builder::{self, Builder, script};
use super::facts::{
    Aside, Facts, FetchSource, ManualCheck, RecoveryFacts, Rke1Facts, SnapshotFrom, StepFacts,
};
use super::{Func, Host, Op, Plan, Script};
use crate::choice::Rke1Role;
use crate::model::{Model, Recovery, Rke1, Rke1Node};

/// Where rke keeps local snapshots on the etcd nodes (RKE documentation,
/// "Restoring from Backup").
const SNAPSHOT_DIR: &str = "/opt/rke/etcd-snapshots";
/// The namespace of the Rancher deployment.
const NAMESPACE: &str = "cattle-system";
/// The rollback guide's `docker restart` list, in its order; the first, third and
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

    /// What the words of the runbook share.
    fn facts(&self) -> Facts {
        let r = self.r;
        let t = &r.rke;
        Facts::Rke1(Box::new(Rke1Facts {
            binary: t.binary.clone(),
            config: t.config.clone(),
            state: t.state.clone(),
            kubeconfig: t.kubeconfig.clone(),
            relative_paths: self.relative_paths(),
            namespace: NAMESPACE,
            deployment: t.deployment.clone(),
            container: t.container.clone(),
            snapshot: r.snapshot.name.clone(),
            snapshot_sha256: r.snapshot.sha256.is_some(),
            snapshot_dir: SNAPSHOT_DIR,
            save_name: self.save_name.clone(),
            source: self.source.folder().to_owned(),
            checksum_container: CHECKSUM_CONTAINER,
            recovery: r.recovery.as_ref().map(|rec| RecoveryFacts {
                failed: rec.failed.clone(),
                replacement: rec.replacement.clone(),
                snapshot_from: if r.snapshot.s3.is_some() {
                    SnapshotFrom::S3
                } else if r.snapshot.path.is_some() {
                    SnapshotFrom::File
                } else {
                    SnapshotFrom::ByHand
                },
            }),
        }))
    }

    /// The containers a node's roles run, in the rollback guide's order.
    fn k8s_containers(n: &Rke1Node) -> Vec<&'static str> {
        K8S_CONTAINERS
            .iter()
            .copied()
            .filter(|c| n.has(Rke1Role::Controlplane) || matches!(*c, "kubelet" | "kube-proxy"))
            .collect()
    }
}

/// The `nodes:` block of the cluster file, as the rollback guide shows it: every node of
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
    let cx = Ctx::new(r, &builder::suffix(model));
    let mut b = Builder::new(
        model,
        "rke1",
        scenario,
        r.current.to_string(),
        r.target.to_string(),
        cx.facts(),
    );
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
    // What the save step keeps is not moved aside but saved beside the other
    // snapshots; the cleanup table is where the operator looks for it.
    b.aside(Aside::SavedEtcd {
        to: format!("{SNAPSHOT_DIR}/{}.zip", cx.save_name),
    });
    b.finish()
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
    b.step(
        "preflight",
        "Check the workstation and every node (read-only)",
        true,
        false,
        StepFacts::Rke1Preflight,
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
    let (op, source, tools, file): (Op, FetchSource, &[&str], String) = if let Some(s3) = &snap.s3 {
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
        let source = FetchSource::S3 {
            url,
            endpoint: s3.endpoint.clone(),
            region: s3.region.clone(),
        };
        (op, source, &["s3cmd", "sha256sum"], file)
    } else if let Some(p) = &snap.path {
        let file = zipped(p);
        let op = Op::new(
            Func::Rke1SnapshotFromFile,
            [SNAPSHOT_DIR.to_owned(), file.clone(), p.clone(), cx.hash()],
        );
        (
            op,
            FetchSource::File { path: p.clone() },
            &["sha256sum"],
            file,
        )
    } else {
        let file = format!("{}.zip", snap.name);
        let op = Op::new(
            Func::Rke1SnapshotByHand,
            [SNAPSHOT_DIR.to_owned(), snap.name.clone(), cx.hash()],
        );
        (op, FetchSource::ByHand, &["sha256sum"], file)
    };
    let dest = format!("{SNAPSHOT_DIR}/{file}");
    // No need_env for S3: s3cmd also reads its configuration file, and says
    // itself which key is missing.
    let mut pre = vec![Op::new(Func::NeedTools, tools.to_vec())];
    if let Some(p) = &snap.path {
        pre.push(Op::new(Func::NeedFile, [p.as_str()]));
    }
    if snap.s3.is_some() || snap.path.is_some() {
        b.aside(Aside::FetchedSnapshot {
            host: node.folder().to_owned(),
            to: b.aside_path(&dest),
            from: dest.clone(),
        });
    }
    b.step(
        "fetch-snapshot",
        format!("Put the snapshot on the new node {}", node.folder()),
        false,
        false,
        StepFacts::Rke1FetchSnapshot {
            node: node.folder().to_owned(),
            file,
            dest,
            source,
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
        StepFacts::Rke1ClusterFile,
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
        StepFacts::Rke1SaveCurrent,
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
    if let Some(rec) = cx.recovery() {
        pre.push(cx.check_cluster_nodes(rec));
    }
    b.step(
        "restore",
        "Restore the etcd snapshot with rke (workstation)",
        false,
        true,
        StepFacts::Rke1Restore,
        vec![cx.workstation(
            pre,
            vec![Op::new(
                Func::Rke1SnapshotRestore,
                [&t.binary, &t.config, &cx.r.snapshot.name],
            )],
        )],
    );
    b.destroys("replaces the etcd data of every etcd node with the snapshot's");
}

fn up(b: &mut Builder, cx: &Ctx<'_>) {
    let t = &cx.r.rke;
    b.step(
        "up",
        "Bring the cluster up with rke (workstation)",
        false,
        true,
        StepFacts::Rke1Up,
        vec![cx.workstation(
            vec![cx.check_workstation()],
            vec![Op::new(Func::Rke1Up, [&t.binary, &t.config])],
        )],
    );
    b.destroys("replaces the cluster's state file (.rkestate), kubeconfig and Kubernetes containers with those of the cluster file");
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
    // Restarting containers moves and replaces no data: no confirmation.
    b.step(
        "restart",
        "Restart the Kubernetes and network containers on every node",
        true,
        false,
        StepFacts::Rke1Restart,
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
        StepFacts::Rke1SetImage,
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
    b.destroys(format!(
        "replaces the image of the Rancher deployment's {} container (its pods are replaced by {target} ones)",
        t.container
    ));
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
    b.step(
        "verify",
        "Verify Rancher and the nodes (workstation)",
        false,
        false,
        StepFacts::Rke1Verify {
            image_was_set: cx.r.target < cx.r.current,
        },
        vec![cx.workstation(
            vec![Op::new(Func::NeedTools, ["kubectl"])],
            vec![Op::new(Func::RancherVerify, args)],
        )],
    );
}

fn notes(b: &mut Builder, cx: &Ctx<'_>) {
    let t = &cx.r.target;
    b.manual(ManualCheck::RkeRelease);
    b.manual(ManualCheck::RancherDataLoss);
    if (t.major, t.minor) == (2, 0) && t.patch <= 10 || (t.major, t.minor) == (2, 1) && t.patch <= 5
    {
        b.manual(ManualCheck::Cve2018_20321);
    }
    if (t.major, t.minor) >= (2, 5) {
        b.manual(ManualCheck::RancherBackupOperator);
    }
    if cx.r.recovery.is_some() {
        b.manual(ManualCheck::FailedNodeOff);
        b.manual(ManualCheck::NewNodeReady);
        b.manual(ManualCheck::QuorumLeft);
    }
    b.manual(ManualCheck::NoSharedSnapshots);
}

#[cfg(test)]
mod tests {
    use super::super::{Func, Host, ManualCheck, Op, Plan, plan};
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
        assert_eq!(destructive, ["restore", "up", "set-image"]);
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
                .contains(&ManualCheck::Cve2018_20321)
        );
        assert!(
            !compile(UPGRADE)
                .manual_checks
                .contains(&ManualCheck::Cve2018_20321)
        );
        let new = UPGRADE
            .replace("\"v2.4.8\"", "\"v2.5.9\"")
            .replace("\"v2.4.5\"", "\"v2.5.8\"");
        assert!(
            compile(&new)
                .manual_checks
                .contains(&ManualCheck::RancherBackupOperator)
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
}
