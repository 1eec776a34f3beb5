//! RKE2 procedures (PRODUCT.md §4.1–4.3): embedded etcd, SQLite, and an
//! external PostgreSQL or MySQL database.
//!
//! The order of steps is the contract; each step's runbook text says which
//! seed step it implements and which known failure (rke2-facts.md §9,
//! peers-and-pain.md §3) it prevents.

use super::builder::{Builder, script};
use super::{Func, Host, Op, Plan, Script, StepDoc};
use crate::model::{
    Datastore, ExternalDb, Install, InstallMethod, Model, Rke2, Rke2Node, Role, SnapshotLocation,
};

/// RKE2's data dir when neither `data-dir:` nor RKE2_DATA_DIR says otherwise.
const DEFAULT_DATA_DIR: &str = "/var/lib/rancher/rke2";

/// Paths and names derived from the plan, shared by every step.
struct Ctx<'a> {
    r: &'a Rke2,
    suffix: String,
    rke2: String,
    config_dir: &'static str,
    unit_dir: &'static str,
}

impl<'a> Ctx<'a> {
    fn new(r: &'a Rke2, suffix: &str) -> Self {
        let (bin, unit_dir) = match r.install_method {
            InstallMethod::Tar => ("/usr/local/bin", "/usr/local/lib/systemd/system"),
            InstallMethod::Rpm => ("/usr/bin", "/usr/lib/systemd/system"),
        };
        Self {
            r,
            suffix: suffix.to_owned(),
            rke2: format!("{bin}/rke2"),
            config_dir: "/etc/rancher/rke2",
            unit_dir,
        }
    }

    /// `CONFIG_DIR UNIT UNIT_ENV`: where the unit of node `n` takes its
    /// settings from (the first arguments of the config checks).
    fn unit_world(&self, n: &Rke2Node) -> Vec<String> {
        let unit = Self::unit(n);
        vec![
            self.config_dir.to_owned(),
            unit.to_owned(),
            format!("{}/{unit}.env", self.unit_dir),
        ]
    }

    /// Op `f` with the unit world of `n` and then `rest`.
    fn in_unit_world(&self, f: Func, n: &Rke2Node, rest: &[&str]) -> Op {
        let mut args = self.unit_world(n);
        args.extend(rest.iter().map(|s| (*s).to_owned()));
        Op::new(f, args)
    }

    /// The token checks of server `n`: the saved token is there (with its
    /// hash) and is the token its unit really uses.
    fn server_token_checks(&self, n: &Rke2Node) -> Vec<Op> {
        let mut ops = self.token_checks();
        if let Some(t) = &self.r.token {
            ops.push(self.in_unit_world(Func::CheckTokenSource, n, &[t.file.as_str()]));
        }
        ops
    }

    /// Makes `server/token` hold the saved token (used when no token is
    /// configured; equal to the configured one otherwise, as checked).
    fn put_token(&self) -> Vec<Op> {
        self.r
            .token
            .iter()
            .map(|t| {
                Op::new(
                    Func::PutToken,
                    [t.file.clone(), self.dd("server/token"), self.suffix.clone()],
                )
            })
            .collect()
    }

    fn dd(&self, rest: &str) -> String {
        format!("{}/{rest}", self.r.data_dir)
    }

    fn servers(&self) -> impl Iterator<Item = &'a Rke2Node> + 'a {
        self.r.nodes.iter().filter(|n| n.role == Role::Server)
    }

    fn agents(&self) -> impl Iterator<Item = &'a Rke2Node> + 'a {
        self.r.nodes.iter().filter(|n| n.role == Role::Agent)
    }

    fn init(&self) -> &'a Rke2Node {
        // Validation proved exactly one init server for etcd; SQLite has one
        // server; for external databases the first server stands in.
        self.r
            .nodes
            .iter()
            .find(|n| n.init)
            .or_else(|| self.servers().next())
            .expect("validation guarantees a server")
    }

    fn target(&self) -> String {
        self.r.target.to_string()
    }

    fn node_type(n: &Rke2Node) -> &'static str {
        match n.role {
            Role::Server => "server",
            Role::Agent => "agent",
        }
    }

    fn unit(n: &Rke2Node) -> &'static str {
        match n.role {
            Role::Server => "rke2-server",
            Role::Agent => "rke2-agent",
        }
    }

    /// Where the datastore backup is restored: the init server, or the
    /// external database's `restore-on` host.
    fn restore_host(&self) -> Host {
        match &self.r.datastore {
            Datastore::Postgres(db) | Datastore::Mysql(db) => match &db.restore_on {
                Some(n) => Host::Node(n.clone()),
                None => Host::Workstation,
            },
            Datastore::Etcd | Datastore::Sqlite => Host::Node(self.init().name.clone()),
        }
    }

    fn snapshot_path(&self) -> Option<&'a str> {
        match &self.r.snapshot.location {
            SnapshotLocation::Path(p) => Some(p),
            SnapshotLocation::S3(_) => None,
        }
    }

    /// Checks of the backup file on the host that restores it.
    fn snapshot_checks(&self) -> Vec<Op> {
        let mut ops = Vec::new();
        if let Some(p) = self.snapshot_path() {
            ops.push(Op::new(Func::NeedFile, [p]));
            if let Some(h) = &self.r.snapshot.sha256 {
                ops.push(Op::new(Func::CheckSha256, [p, h.as_str()]));
            }
            match &self.r.datastore {
                Datastore::Etcd => ops.push(Op::new(Func::CheckEtcdSnapshot, [p])),
                Datastore::Sqlite => ops.push(Op::new(Func::CheckSqliteDb, [p])),
                Datastore::Postgres(_) => ops.push(Op::new(Func::CheckPgArchive, [p])),
                Datastore::Mysql(_) => ops.push(Op::new(Func::CheckMysqlDump, [p])),
            }
        } else {
            ops.push(Op::new(
                Func::NeedEnv,
                ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
            ));
            if let SnapshotLocation::S3(s3) = &self.r.snapshot.location
                && let Some(ca) = &s3.endpoint_ca
            {
                ops.push(Op::new(Func::NeedFile, [ca.as_str()]));
            }
        }
        ops
    }

    fn token_checks(&self) -> Vec<Op> {
        match &self.r.token {
            Some(t) => {
                let mut args = vec![t.file.clone()];
                args.extend(t.sha256.clone());
                vec![Op::new(Func::CheckToken, args)]
            }
            None => Vec::new(),
        }
    }

    fn install_checks(&self, n: &Rke2Node) -> Vec<Op> {
        match &self.r.install {
            Install::Airgap { artifacts, arch } => {
                vec![Op::new(
                    Func::CheckArtifacts,
                    [artifacts.clone(), arch.clone(), self.target()],
                )]
            }
            Install::Online if self.r.install_method == InstallMethod::Rpm => vec![Op::new(
                Func::CheckRpmTarget,
                [Self::node_type(n).to_owned(), self.rpm_version()],
            )],
            Install::Online => Vec::new(),
        }
    }

    /// The target in RPM form (rke2-facts.md §5.1): no leading `v`, `+` and
    /// `-` turned into `~` (`1.29.3~rke2r1`).
    fn rpm_version(&self) -> String {
        let t = self.target();
        t.strip_prefix('v').unwrap_or(&t).replace(['+', '-'], "~")
    }

    /// True for a node that must hold the saved token: every server (each
    /// compares its configured token with it; the restoring one puts it in
    /// place).
    fn holds_token(&self, n: &Rke2Node) -> bool {
        n.role == Role::Server
    }

    /// External database: the rights the restore needs (and the archive's
    /// database name), checked on the restoring host. Step 1 runs it too, so
    /// that a missing right is found before anything is stopped.
    fn external_rights_check(&self) -> Option<Op> {
        let (db, postgres) = match &self.r.datastore {
            Datastore::Postgres(db) => (db, true),
            Datastore::Mysql(db) => (db, false),
            Datastore::Etcd | Datastore::Sqlite => return None,
        };
        let dump = self.snapshot_path()?.to_owned();
        let copy = external_copy_path(&dump, &db.database, &self.suffix, postgres);
        let args = vec![
            dump,
            db.host.clone(),
            db.port.map(|p| p.to_string()).unwrap_or_default(),
            db.user.clone().unwrap_or_default(),
            db.database.clone(),
            copy,
        ];
        let f = if postgres {
            Func::CheckPgRestore
        } else {
            Func::CheckMysqlRestore
        };
        Some(Op::new(f, args))
    }

    /// Air-gap: the target's image archives are in the data dir's images
    /// folder (the restore and the first start pull nothing).
    fn image_checks(&self) -> Vec<Op> {
        match &self.r.install {
            Install::Airgap { artifacts, arch } => vec![Op::new(
                Func::CheckImages,
                [artifacts.clone(), arch.clone(), self.dd("agent/images")],
            )],
            Install::Online => Vec::new(),
        }
    }

    fn tools(&self, extra: &[&str]) -> Op {
        let mut t: Vec<&str> = vec!["sha256sum"];
        t.extend_from_slice(extra);
        Op::new(Func::NeedTools, t)
    }

    fn node(&self, n: &Rke2Node, preflight: Vec<Op>, actions: Vec<Op>) -> Script {
        script(Host::Node(n.name.clone()), true, preflight, actions)
    }
}

/// Plans an RKE2 rollback.
pub(super) fn plan(model: &Model, r: &Rke2) -> Plan {
    let scenario = match &r.datastore {
        Datastore::Etcd => match &r.snapshot.location {
            SnapshotLocation::Path(_) => "embedded etcd, snapshot on disk".to_owned(),
            SnapshotLocation::S3(_) => "embedded etcd, snapshot in S3".to_owned(),
        },
        Datastore::Sqlite => "SQLite, single server".to_owned(),
        Datastore::Postgres(_) => "external PostgreSQL".to_owned(),
        Datastore::Mysql(_) => "external MySQL".to_owned(),
    };
    let scenario = format!(
        "{scenario}; {} install{}",
        match r.install {
            Install::Online => "online",
            Install::Airgap { .. } => "air-gap",
        },
        match r.install_method {
            InstallMethod::Tar => " (tarball)",
            InstallMethod::Rpm => " (RPM)",
        }
    );
    let mut b = Builder::new(
        model,
        "rke2",
        scenario,
        r.current.to_string(),
        r.target.to_string(),
    );
    let cx = Ctx::new(r, b.suffix());
    preflight(&mut b, &cx);
    match &r.datastore {
        Datastore::Etcd => {
            drain(&mut b, &cx);
            stop(&mut b, &cx);
            install(&mut b, &cx);
            restore_etcd(&mut b, &cx);
            start_init(&mut b, &cx);
            suspend_upgrades(&mut b, &cx);
            rejoin(&mut b, &cx);
            start_agents(&mut b, &cx);
        }
        Datastore::Sqlite => {
            stop(&mut b, &cx);
            install(&mut b, &cx);
            restore_sqlite(&mut b, &cx);
            start_init(&mut b, &cx);
            suspend_upgrades(&mut b, &cx);
        }
        Datastore::Postgres(db) | Datastore::Mysql(db) => {
            drain(&mut b, &cx);
            stop(&mut b, &cx);
            restore_external(&mut b, &cx, db);
            install(&mut b, &cx);
            start_servers(&mut b, &cx);
            suspend_upgrades(&mut b, &cx);
            start_agents(&mut b, &cx);
        }
    }
    verify(&mut b, &cx);
    cleanup_notes(&mut b, &cx);
    b.finish()
}

fn preflight(b: &mut Builder, cx: &Ctx<'_>) {
    let restore_host = cx.restore_host();
    let mut scripts = Vec::new();
    if restore_host == Host::Workstation {
        let tools: &[&str] = match &cx.r.datastore {
            Datastore::Postgres(_) => &["pg_restore", "psql", "pg_dump"],
            Datastore::Mysql(_) => &["mysql"],
            // Only an external database is restored from the workstation.
            Datastore::Etcd | Datastore::Sqlite => &[],
        };
        let mut pre = vec![cx.tools(tools)];
        pre.extend(cx.snapshot_checks());
        pre.extend(cx.token_checks());
        pre.extend(cx.external_rights_check());
        scripts.push(script(Host::Workstation, false, pre, Vec::new()));
    }
    for n in &cx.r.nodes {
        let host = Host::Node(n.name.clone());
        let restores_here = host == restore_host;
        // cluster-reset runs under `timeout`; no other node needs it.
        // The stop step reads /proc/PID/exe; cluster-reset runs under
        // `timeout`, on the restoring node only.
        let mut extra = vec!["systemctl", "readlink"];
        if restores_here && cx.r.datastore == Datastore::Etcd {
            extra.push("timeout");
        }
        if restores_here {
            match &cx.r.datastore {
                Datastore::Etcd => {
                    if cx.snapshot_path().is_some_and(|p| p.ends_with(".zip")) {
                        extra.push("unzip");
                    }
                }
                Datastore::Postgres(_) => extra.extend(["pg_restore", "psql", "pg_dump"]),
                Datastore::Mysql(_) => extra.push("mysql"),
                Datastore::Sqlite => {}
            }
        }
        let mut pre = vec![
            cx.tools(&extra),
            cx.in_unit_world(Func::CheckDataDir, n, &[cx.r.data_dir.as_str()]),
            cx.in_unit_world(Func::CheckNodeName, n, &[n.k8s_name()]),
            Op::new(Func::CheckDataMounts, [cx.r.data_dir.as_str()]),
        ];
        pre.push(Op::new(
            Func::CheckRke2Version,
            [cx.rke2.clone(), cx.r.current.to_string(), cx.target()],
        ));
        pre.extend(cx.install_checks(n));
        if restores_here {
            pre.extend(cx.snapshot_checks());
            pre.extend(cx.external_rights_check());
            if matches!(cx.r.datastore, Datastore::Postgres(_) | Datastore::Mysql(_))
                && !cx.holds_token(n)
            {
                // The token saved with the dump sits beside it on the restoring host.
                pre.extend(cx.token_checks());
            }
        }
        if n.role == Role::Server && (n.init || cx.r.datastore == Datastore::Sqlite) {
            if cx.r.datastore == Datastore::Etcd {
                pre.push(cx.in_unit_world(Func::CheckNoServerEntry, n, &[]));
                if let Some(p) = cx.snapshot_path() {
                    pre.push(Op::new(Func::CheckRoom, [p.to_owned(), cx.dd("server/db")]));
                }
            }
            if cx.r.datastore == Datastore::Sqlite
                && let Some(p) = cx.snapshot_path()
            {
                pre.push(Op::new(Func::CheckRoom, [p.to_owned(), cx.dd("server/db")]));
            }
        }
        if n.role == Role::Server && !n.init && cx.r.datastore == Datastore::Etcd {
            pre.push(cx.in_unit_world(Func::CheckServerEntry, n, &[]));
        }
        if cx.holds_token(n) {
            pre.extend(cx.server_token_checks(n));
        }
        pre.push(rancher_agent_check(cx));
        scripts.push(cx.node(n, pre, Vec::new()));
    }
    let mut what = vec![
        "Checks every host before anything is stopped. It changes nothing and may be run as often as you like.".to_owned(),
        format!("On every node: the host is the right one, you are root, the tools are there, and `rke2 --version` prints {} (or already {}: the script says so).", cx.r.current, cx.r.target),
    ];
    if let Install::Airgap { artifacts, arch } = &cx.r.install {
        what.push(format!("On every node: `{artifacts}` holds install.sh, rke2.linux-{arch}.tar.gz and sha256sum-{arch}.txt of {}, and every archive listed there matches its hash; the rke2 inside the tarball must say it is {} (artifacts of another release pass their own sums file, and install.sh installs whatever it is given).", cx.r.target, cx.r.target));
    }
    if cx.r.install_method == InstallMethod::Rpm {
        what.push(format!("On every node (RPM install): `rpm -q` shows rke2-server (servers) or rke2-agent (agents) and rke2-common installed (their versions and rke2-selinux's are printed), and each is available at {rv} from the repositories configured on the node now: `dnf list --showduplicates --available`, `yum list --showduplicates available` (EL7) or `zypper search -s --match-exact`. This is a check of the repositories as they are: rewind does not run install.sh for RPM installs (see step install), so nothing points the rancher-rke2 repository at the target's minor later. If the packages are missing, the check refuses and says which repository file to point at which minor.", rv = cx.rpm_version()));
    }
    match (&cx.r.datastore, cx.snapshot_path()) {
        (Datastore::Etcd, Some(p)) => what.push(format!("On {}: the snapshot `{p}` is there{}, its embedded sha256 trailer matches its content, there is room beside the etcd data, and config.yaml has no `server:` entry.", cx.init().name, if cx.r.snapshot.sha256.is_some() { ", its sha256 is the one in the plan" } else { "" })),
        (Datastore::Etcd, None) => what.push(format!("On {}: the S3 credentials are set (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; never written anywhere), and config.yaml has no `server:` entry.", cx.init().name)),
        (Datastore::Sqlite, Some(p)) => what.push(format!("On {}: the backup `{p}` is there, passes `PRAGMA integrity_check`, and there is room to copy it in.", cx.init().name)),
        (Datastore::Postgres(_) | Datastore::Mysql(_), Some(p)) => what.push(format!("On {}: the dump `{p}` is there, is complete, and the database client tools are installed.", restore_host.name())),
        // Only an etcd backup may be in S3: validation refuses the others.
        (Datastore::Sqlite | Datastore::Postgres(_) | Datastore::Mysql(_), None) => {}
    }
    what.push(format!("On every node: the unit runs with the data dir `{}` (`data-dir:` in config.yaml or config.yaml.d, else RKE2_DATA_DIR in its environment files, else the default), and the data volumes (mounts at or under it, `/var/lib/rancher/rke2` and `/var/lib/kubelet`) are listed.", cx.r.data_dir));
    if cx.r.datastore == Datastore::Etcd && cx.servers().count() > 1 {
        what.push("On every other server: config.yaml (or config.yaml.d, or RKE2_URL in its environment files) names the server to join (`server:`); it is printed.".to_owned());
    }
    if let Some(t) = &cx.r.token {
        what.push(format!(
            "On every server: the saved server token `{}` is there (copy it to that path on each server; keep it root-only){}, and is the token the unit really uses: a `token:` or `token-file:` in config.yaml or config.yaml.d, or RKE2_TOKEN / RKE2_TOKEN_FILE in its environment files, wins over `server/token` and must hold the same secret. Tokens are compared by hash and never printed.",
            t.file,
            if t.sha256.is_some() { ", matches its hash" } else { " (the plan gives no sha256 to compare it with)" }
        ));
    }
    what.push(format!("On every node: no Rancher system agent (`{RANCHER_AGENT_UNIT}`, `{RANCHER_AGENT_DIR}`), or the plan says Rancher's Kubernetes version for the cluster is {} (`rancher-managed = true`).", cx.r.target));
    b.step(
        "preflight",
        "Check every host (read-only)",
        true,
        false,
        StepDoc {
            what,
            why: vec![
                "A rollback that stops half-way is worse than none: every fact the later steps depend on is proved here, on every host, before the first process is killed.".into(),
                "The snapshot's integrity is checked now because a corrupt snapshot is only discovered by cluster-reset, after every node has been stopped (RKE2 backup and restore guide: check the snapshot before restoring).".into(),
                "A wrong or rotated server token makes the restored datastore unreadable (`bootstrap data already found and encrypted with different token`, rancher/rke2#1898). RKE2 reads `server/token` only when no token is configured, so putting the saved token there does not help when config.yaml sets another one.".into(),
                "A joining server without `server:` starts a cluster of its own once its etcd data is moved aside (split brain); a data dir that differs between the plan and the unit makes the restore fill one folder while the unit starts on another.".into(),
            ],
            done: vec!["Every host prints `ok: preflight` and exits 0. Run it on all hosts before going on.".into()],
            if_fails: vec![
                "Nothing has changed. Read the message: it names the check and the file. Fix that host (copy the missing file, correct the plan and compile again) and re-run this step everywhere.".into(),
                format!("\"installed version is …\": the node does not run {} or {}; the plan's current-version is wrong, or the node was never upgraded.", cx.r.current, cx.r.target),
            ],
        },
        scripts,
    );
}

fn drain(b: &mut Builder, cx: &Ctx<'_>) {
    let Some(d) = &cx.r.drain else { return };
    let mut args = vec![d.kubeconfig.clone().unwrap_or_default(), d.timeout.clone()];
    args.extend(cx.agents().map(|n| n.k8s_name().to_owned()));
    args.extend(cx.servers().map(|n| n.k8s_name().to_owned()));
    let s = script(
        Host::Workstation,
        false,
        vec![Op::new(Func::NeedTools, ["kubectl"])],
        vec![Op::new(Func::DrainNodes, args)],
    );
    b.step(
        "drain",
        "Drain the nodes (workstation)",
        false,
        false,
        StepDoc {
            what: vec![
                format!("If the Kubernetes API answers, cordons and drains every node (agents first, then servers) with `kubectl drain --ignore-daemonsets --delete-emptydir-data --timeout={}`. If it does not answer, it says so and succeeds: the next step stops the workloads anyway.", d.timeout),
                "It records which nodes it drained, so that the verify step uncordons exactly those.".into(),
            ],
            why: vec![
                "RKE2 rollback guide, step 1: stop workloads gracefully before the stop step kills them, which can lose data.".into(),
                "The upstream runbook never uncordons; rewind remembers what it drained.".into(),
            ],
            done: vec!["`node/<name> drained` for every node, or the message that the API is down.".into()],
            if_fails: vec![
                "A pod that cannot be evicted (PodDisruptionBudget) stops the drain at the timeout. Decide whether to delete that pod by hand, then re-run; or accept the hard stop and go on to the next step (REWIND_FORCE is not needed: the stop step does not depend on this one).".into(),
            ],
        },
        vec![s],
    );
    b.way_back("On the workstation, `kubectl uncordon` each node this step drained (they are listed in the `drained` file of the state folder, `/var/lib/rewind/<cluster>/<plan sha256>/`, or under `~/.local/state/rewind/` when run as another user).");
}

fn stop(b: &mut Builder, cx: &Ctx<'_>) {
    let init = cx.init().name.clone();
    let scripts =
        cx.r.nodes
            .iter()
            .map(|n| {
                let mut act = vec![
                    Op::new(
                        Func::StopRke2,
                        [
                            cx.r.data_dir.clone(),
                            Ctx::unit(n).to_owned(),
                            cx.rke2.clone(),
                        ],
                    ),
                    Op::new(
                        Func::MovePodManifestsAside,
                        [cx.dd("agent/pod-manifests"), cx.suffix.clone()],
                    ),
                ];
                // What the restore needs must have survived the stop.
                if n.name == init
                    && matches!(cx.r.datastore, Datastore::Etcd | Datastore::Sqlite)
                    && let Some(p) = cx.snapshot_path()
                {
                    act.push(Op::new(Func::NeedFile, [p]));
                }
                if let Some(t) = &cx.r.token
                    && cx.holds_token(n)
                {
                    act.push(Op::new(Func::NeedFile, [t.file.as_str()]));
                }
                cx.node(
                    n,
                    vec![
                        Op::new(Func::NeedTools, ["systemctl", "readlink"]),
                        Op::new(Func::CheckDataMounts, [cx.r.data_dir.as_str()]),
                    ],
                    act,
                )
            })
            .collect();
    b.aside("every node", cx.dd("agent/pod-manifests"), format!("the newer version's static pod manifests, moved into `{}/agent/pod-manifests.{}/`; RKE2 writes the target's own at start", cx.r.data_dir, cx.suffix));
    b.step(
        "stop",
        "Stop RKE2 on every node",
        true,
        true,
        StepDoc {
            what: vec![
                format!("Records the data volumes (mounts at or under `{}`, `/var/lib/rancher/rke2` and `/var/lib/kubelet`) and whether the unit is enabled, then stops and disables `rke2-server` (servers) or `rke2-agent` (agents), so that a reboot during the rollback does not start RKE2 on half-restored data; the start steps enable it again.", cx.r.data_dir),
                format!("Kills every process whose executable lies under `{}` or `/run/k3s`, or is `{}`, with all its descendants (the pods), waits until none is left, and unmounts only `/run/k3s`, kubelet's pod volumes and `/run/netns/cni-*`.", cx.r.data_dir, cx.rke2),
                format!("Moves the static pod manifests out of `{}`, then checks that every data volume is still mounted and that the snapshot and the saved token are still there.", cx.dd("agent/pod-manifests")),
            ],
            why: vec![
                "RKE2 rollback guide, step 2. Every node must be stopped before the restore: a server left running keeps the old membership and rejoins the wrong cluster (rancher/rke2#2857).".into(),
                "rewind does not run rke2-killall.sh: every killall up to RKE2 v1.28.12, v1.29.7 and v1.30.3 unmounts every mount under the data dir, and since v1.24.12 then deletes each mount point with `rm -rf --one-file-system`, even when the unmount failed (rancher/rke2#6557, #6571). A dedicated volume for `server/db` or the data dir is then either out of sight (the restore finds no snapshot, rejoining servers write etcd to the root disk) or, when busy, emptied.".into(),
                "Processes are matched by their executable, not their name: Docker's own containerd-shim or an etcd that is not RKE2's is left alone, and a surviving RKE2 etcd makes the restore fail (rancher/rke2#2301).".into(),
                "Old killall scripts left `kube-proxy.yaml` in pod-manifests, which the older kubelet then runs (rancher/rancher#42895).".into(),
            ],
            done: vec!["`ok: no process of RKE2 left` and `ok: data volumes mounted…` (or `no separate volume…`) on every node.".into()],
            if_fails: vec![
                "If processes are left, the message lists their PIDs. Find out what keeps them (`ps -o pid,ppid,stat,args -p PID`); do not start the restore while etcd runs. Re-running the step is safe.".into(),
                "\"not mounted any more\": a data volume recorded by this step is gone. Mount it again (`mount -a`), check its content, and re-run; never start RKE2 on the empty folder below it.".into(),
            ],
        },
        scripts,
    );
    b.way_back(format!("On each node: move the static pod manifests back (`mv {pm}.{sfx}/* {pm}/`), then `systemctl enable --now rke2-server` on the servers ({init} first, then the others one at a time) and `systemctl enable --now rke2-agent` on the agents. Nothing else was changed.", pm = cx.dd("agent/pod-manifests"), sfx = cx.suffix, init = init));
}

fn install(b: &mut Builder, cx: &Ctx<'_>) {
    let target = cx.target();
    let rpm = cx.r.install_method == InstallMethod::Rpm;
    let rv = cx.rpm_version();
    let scripts =
        cx.r.nodes
            .iter()
            .map(|n| {
                let mut pre = cx.install_checks(n);
                let mut act = Vec::new();
                match &cx.r.install {
                    Install::Airgap { artifacts, arch } => {
                        act.push(Op::new(
                            Func::MoveImagesAside,
                            [cx.dd("agent/images"), cx.suffix.clone()],
                        ));
                        act.push(Op::new(
                            Func::InstallAirgap,
                            [
                                artifacts.clone(),
                                arch.clone(),
                                Ctx::node_type(n).to_owned(),
                                cx.dd("agent/images"),
                            ],
                        ));
                        act.push(Op::new(
                            Func::InstallImages,
                            [artifacts.clone(), arch.clone(), cx.dd("agent/images")],
                        ));
                    }
                    Install::Online if rpm => {
                        // Not install.sh: its rpm method does not downgrade
                        // (upstream-facts.md §4.3); see the runbook text.
                        act.push(Op::new(
                            Func::MoveImagesAside,
                            [cx.dd("agent/images"), cx.suffix.clone()],
                        ));
                        act.push(Op::new(
                            Func::InstallRpm,
                            [Ctx::node_type(n).to_owned(), rv.clone()],
                        ));
                        act.push(Op::new(
                            Func::CheckRpmVersions,
                            [Ctx::node_type(n).to_owned(), rv.clone()],
                        ));
                    }
                    Install::Online => {
                        pre.insert(0, Op::new(Func::NeedTools, ["sh"]));
                        act.push(Op::new(
                            Func::MoveImagesAside,
                            [cx.dd("agent/images"), cx.suffix.clone()],
                        ));
                        act.push(Op::new(
                            Func::InstallOnline,
                            [
                                target.clone(),
                                Ctx::node_type(n).to_owned(),
                                "tar".to_owned(),
                            ],
                        ));
                    }
                }
                act.push(Op::new(
                    Func::CheckInstalledVersion,
                    [cx.rke2.clone(), target.clone()],
                ));
                if n.role == Role::Server {
                    act.push(Op::new(
                        Func::MoveManifestsAside,
                        [
                            cx.dd("server/manifests"),
                            cx.r.data_dir.clone(),
                            cx.suffix.clone(),
                        ],
                    ));
                }
                pre.insert(0, Op::new(Func::NeedTools, ["sha256sum"]));
                cx.node(n, pre, act)
            })
            .collect();
    b.aside("every node", cx.dd("agent/images"), format!("the newer version's rke2-images* archives and .cache.json, moved into `{}/agent/images.{}/`; delete once the rollback is verified", cx.r.data_dir, cx.suffix));
    if cx.servers().next().is_some() {
        b.aside("servers", cx.dd("server/manifests"), format!("the chart manifests that RKE2 wrote (named like a chart in `data/*/charts/`; never a HelmChartConfig), moved into `{}/server/manifests.{}/`; RKE2 writes the target's own at start", cx.r.data_dir, cx.suffix));
    }
    let mut what = Vec::new();
    match &cx.r.install {
        Install::Airgap { artifacts, arch } => {
            what.push(format!("Checks `{artifacts}` against sha256sum-{arch}.txt again, moves the newer version's `rke2-images*` archives and `.cache.json` out of `{img}` (into `{img}.{sfx}/`), then runs `{artifacts}/install.sh` with INSTALL_RKE2_ARTIFACT_PATH and INSTALL_RKE2_AGENT_IMAGES_DIR={img} (and INSTALL_RKE2_TYPE=agent on agents).", img = cx.dd("agent/images"), sfx = cx.suffix));
            what.push(format!("Then copies every other image archive of the target that `{artifacts}` holds and sha256sum-{arch}.txt lists (Canal, Calico, Cilium, the split core archives) into `{}`, each copy checked against its hash: install.sh installs only the main archive (before v1.31.0), and only into `/var/lib/rancher/rke2/agent/images` unless told otherwise, whatever the data dir.", cx.dd("agent/images")));
        }
        Install::Online if rpm => {
            what.push(format!("Checks again that the target packages are available, moves any `rke2-images*` archives out of `{}`, then downgrades the rke2 packages with the package manager the node has, all of them in one transaction, each at its exact version-release as the configured repositories list it (the release, such as `-0.el8`, is looked up): `dnf downgrade -y rke2-server-{rv}-<release> rke2-common-{rv}-<release>` (EL 8 and later), `yum downgrade -y …` with the same packages (EL 7), `zypper --non-interactive install --oldpackage rke2-server={rv}-<release> rke2-common={rv}-<release>` (SUSE). Agents name rke2-agent instead of rke2-server; a node that has both packages gets both. A node already at {rv} is left as it is.", cx.dd("agent/images")));
            what.push("It does not run install.sh. Its rpm method runs `yum install -y` or `zypper install -y` of the one package rke2-server or rke2-agent, with no downgrade flag: zypper (without `--oldpackage`) and EL 7 yum do not downgrade that way, and rke2-common, which rke2-server and rke2-agent require at exactly their own version-release, is not named. The other thing install.sh does for RPMs, pointing the rancher-rke2 repository at the target's minor, is what step 1 checked already.".into());
            what.push("rke2-selinux has its own version numbers and is kept: the target's rke2-common accepts the newer one unless the package manager says otherwise (see below).".into());
            what.push("Transactional systems (SLE Micro, openSUSE MicroOS: `/usr/sbin/transactional-update` exists) change packages only in a new snapshot: the step stops and prints the command to run, `transactional-update --no-selfupdate -d run zypper --non-interactive install --oldpackage …`; reboot the node (rke2 stays stopped: the stop step disabled its unit), then run the step again: it finds the packages at the target and goes on.".into());
            what.push(format!("Then `rpm -q` must show {rv} for every rke2 package it downgraded (rke2-selinux is printed too)."));
        }
        Install::Online => {
            what.push(format!("Moves any `rke2-images*` archives out of `{}`, then downloads the upstream install script and runs it with INSTALL_RKE2_VERSION={target} (and INSTALL_RKE2_TYPE=agent on agents). Set REWIND_INSTALL_SCRIPT_URL to use a mirror.", cx.dd("agent/images")));
        }
    }
    what.push(format!(
        "Then `{} --version` must print {target}: {}.",
        cx.rke2,
        if rpm {
            "the binary the packages installed"
        } else {
            "install.sh does not check the version itself"
        }
    ));
    what.push(format!("On servers, moves aside (into `{}.{}/`) the chart manifests that RKE2 wrote into `{}`: the files named like a chart of an installed version in `{}/data/*/charts/`. A HelmChartConfig (your `rke2-canal-config.yaml`, `rke2-cilium-config.yaml`…) is never moved. RKE2 writes the target version's charts when it starts, and never removes a chart it does not ship itself.", cx.dd("server/manifests"), cx.suffix, cx.dd("server/manifests"), cx.r.data_dir));
    let mut why = vec![
        "RKE2 rollback guide, step 3: every node goes back to the old binary. The restore must run with the target binary, whose etcd version wrote the snapshot: an etcd cannot open data written by a newer one (rancher/rke2#9318).".into(),
        "Leftover charts of the newer version crash-loop after the restore (rancher/rancher#41174); newer image archives would be imported again at every start.".into(),
    ];
    let mut done = Vec::new();
    let mut if_fails = Vec::new();
    if rpm {
        why.push("RPM installs: rke2-server and rke2-agent require rke2-common of exactly the same version-release, so they can only move together, in one transaction; a plain install of an older version is refused or ignored by zypper (it needs `--oldpackage`) and by EL 7 yum. The packages' scripts try to restart the service after a change, which is why every node was stopped first. `rpm -q` afterwards is what proves the downgrade.".into());
        b.manual("RPM install: before step 1, check that no lock holds the rke2 packages at the newer version (`dnf versionlock list`, `yum versionlock list`, `zypper locks`): a lock makes the install step's downgrade fail; delete it (`dnf versionlock delete …`, `zypper removelock …`). Once the rollback is verified, pin the packages on every node so that `dnf update` / `zypper update` does not upgrade them again (rancher/rke2#405, rke2-ansible#166): `dnf versionlock add rke2-server rke2-agent rke2-common` (the versionlock plugin: python3-dnf-plugin-versionlock; EL 7: yum-plugin-versionlock and `yum versionlock add …`), or `zypper addlock rke2-server rke2-agent rke2-common`; name only the packages the node has. Remove that lock before the next upgrade. rewind does not pin: a lock outlives the rollback and blocks the fix you will upgrade to.");
        b.manual("RPM install: check that `semodule -l | grep rke2` still lists the rke2 SELinux module after the downgrade (rancher/rke2-selinux#58).");
        done.push(format!("`ok: rpm -q: rke2-server {rv}-…` (or rke2-agent) with `rke2-common {rv}-…` on every node."));
        if_fails.push(format!("\"not available from the repositories configured here\": the rancher-rke2 repository on the node does not list {rv}; the hint names the repository file and, when it is for another minor, the `sed` that points it at the target's minor. Refresh the metadata (`dnf makecache`, `zypper refresh`) and re-run."));
        if_fails.push("The package manager refuses the transaction: read its error. If it names rke2-selinux (the target's rke2-common needs another version of it), run the printed command by hand with `rke2-selinux-<version>` added (`dnf list --showduplicates rke2-selinux` lists them), then re-run the step: it finds the packages at the target and goes on.".into());
        if_fails.push("\"rpm -q: not every rke2 package is at …\": the package manager said it succeeded but did not downgrade; re-run the step, or downgrade by hand with every package named in one command.".into());
    } else {
        if_fails.push("\"sha256 mismatch\": an artifact was damaged in transfer or is of another version; copy it again from the release and re-run.".into());
    }
    done.push(format!(
        "`ok: {} --version is {target}` on every node.",
        cx.rke2
    ));
    if rpm {
        if_fails.push(format!("\"installed version is …\" after the install: `{}` is not the binary the packages hold: `rpm -qf {}` says which package owns it, `rpm -V rke2-common` whether it was replaced. Fix that, then re-run.", cx.rke2, cx.rke2));
    } else {
        if_fails.push(format!("\"installed version is …\" after the install: the artifacts are not those of {target} (install.sh installs whatever it is given). Replace them and re-run."));
    }
    if_fails.push("Re-running is safe: archives already moved aside are not moved twice.".into());
    b.step(
        "install",
        format!("Install {target} on every node"),
        true,
        true,
        StepDoc {
            what,
            why,
            done,
            if_fails,
        },
        scripts,
    );
    b.way_back(format!("On each node: install {cur} again ({how}), move the newer version's archives back (`mv {img}.{sfx}/* {img}.{sfx}/.cache.json {img}/`), on servers move the chart manifests back (`mv {man}.{sfx}/* {man}/`), then go on as after the stop step.", cur = cx.r.current, img = cx.dd("agent/images"), man = cx.dd("server/manifests"), sfx = cx.suffix, how = match &cx.r.install {
        Install::Online if rpm => {
            let crv = cx.r.current.to_string();
            let crv = crv.strip_prefix('v').unwrap_or(&crv).replace(['+', '-'], "~");
            format!("`dnf install -y rke2-server-{crv} rke2-common-{crv}`, or `zypper --non-interactive install rke2-server={crv} rke2-common={crv}`, with rke2-agent on agents; point the rancher-rke2 repository back at {cur}'s minor first if you changed it", cur = cx.r.current)
        }
        Install::Online => format!("`curl -sfL https://get.rke2.io | INSTALL_RKE2_VERSION={} sh -`, with INSTALL_RKE2_TYPE=agent on agents", cx.r.current),
        Install::Airgap { .. } => format!("run the install.sh of {}'s artifacts with INSTALL_RKE2_ARTIFACT_PATH; keep those artifacts at hand until the rollback is verified", cx.r.current),
    }));
}

fn restore_etcd(b: &mut Builder, cx: &Ctx<'_>) {
    let init = cx.init();
    let mut pre = vec![
        cx.tools(&["timeout", "readlink"]),
        cx.in_unit_world(Func::CheckNoServerEntry, init, &[]),
        cx.in_unit_world(Func::CheckDataDir, init, &[cx.r.data_dir.as_str()]),
        Op::new(Func::CheckInstalledVersion, [cx.rke2.clone(), cx.target()]),
        Op::new(Func::CheckDataMounts, [cx.r.data_dir.as_str()]),
    ];
    pre.extend(cx.snapshot_checks());
    pre.extend(cx.server_token_checks(init));
    pre.extend(cx.image_checks());
    let mut act = Vec::new();
    if let Some(t) = &cx.r.token {
        act.push(Op::new(
            Func::PutToken,
            [t.file.clone(), cx.dd("server/token"), cx.suffix.clone()],
        ));
    }
    act.push(Op::new(
        Func::StopLeftovers,
        [cx.r.data_dir.clone(), cx.rke2.clone()],
    ));
    let mut args = vec![cx.rke2.clone()];
    let restore_path = match &cx.r.snapshot.location {
        SnapshotLocation::Path(p) => p.clone(),
        SnapshotLocation::S3(s3) => s3.name.clone(),
    };
    args.push(restore_path);
    args.push(
        cx.r.token
            .as_ref()
            .map(|t| t.file.clone())
            .unwrap_or_default(),
    );
    args.extend(cx.unit_world(init).into_iter().skip(1));
    if cx.r.data_dir != DEFAULT_DATA_DIR {
        args.push(format!("--data-dir={}", cx.r.data_dir));
    }
    match &cx.r.snapshot.location {
        SnapshotLocation::Path(_) => {
            args.push("--etcd-s3=false".into());
        }
        SnapshotLocation::S3(s3) => {
            args.push("--etcd-s3".into());
            args.push(format!("--etcd-s3-bucket={}", s3.bucket));
            if let Some(f) = &s3.folder {
                args.push(format!("--etcd-s3-folder={f}"));
            }
            if let Some(e) = &s3.endpoint {
                args.push(format!("--etcd-s3-endpoint={e}"));
            }
            if let Some(r) = &s3.region {
                args.push(format!("--etcd-s3-region={r}"));
            }
            if s3.insecure {
                args.push("--etcd-s3-insecure".into());
            }
            if s3.skip_ssl_verify {
                args.push("--etcd-s3-skip-ssl-verify".into());
            }
            if let Some(ca) = &s3.endpoint_ca {
                args.push(format!("--etcd-s3-endpoint-ca={ca}"));
            }
        }
    }
    act.push(Op::new(Func::ClusterReset, args));
    let snapshot_desc = match &cx.r.snapshot.location {
        SnapshotLocation::Path(p) => format!("`{p}`"),
        SnapshotLocation::S3(s3) => format!(
            "`{}` from S3 bucket `{}`{} (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment; rke2 reads them itself, so they never appear on a command line)",
            s3.name,
            s3.bucket,
            s3.folder
                .as_ref()
                .map(|f| format!(", folder `{f}`"))
                .unwrap_or_default()
        ),
    };
    b.aside_to(init.name.clone(), cx.dd("server/db/etcd"), cx.dd("server/db/etcd-old-<unix time>"), "the etcd data of the newer version, renamed by cluster-reset itself (rke2 also copies `server/tls` to `server/tls-<unix time>`); keep both until the rollback is verified");
    if cx.r.token.is_some() {
        b.aside("servers", cx.dd("server/token"), "the server token that was there, when it differed from the saved one (moved only then)");
    }
    b.step(
        "restore",
        format!("Restore the snapshot on {}", init.name),
        false,
        true,
        StepDoc {
            what: vec![
                format!("On {} only. Refuses to run if `/etc/rancher/rke2/config.yaml` (or config.yaml.d) has a `server:` entry; checks the snapshot, the token and the installed version again.", init.name),
                if cx.r.token.is_some() { format!("Puts the saved token in place as `{}` (the current one is moved aside if it differs).", cx.dd("server/token")) } else { "No token is named in the plan: the token already in `server/token` is used.".into() },
                format!("Runs `{} server --cluster-reset --cluster-reset-restore-path=…` with the snapshot {snapshot_desc}, bounded by REWIND_RESET_TIMEOUT (default 1800 s).", cx.rke2),
            ],
            why: vec![
                "RKE2 rollback guide, step 4: the datastore goes back to the snapshot taken on the target minor; without it there is no minor rollback.".into(),
                "cluster-reset refuses to run on a node with `server:` in its config (rancher/rke2#3178); the check says so before anything happens.".into(),
                "A local snapshot is restored with `--etcd-s3=false`, because a config that enables S3 would otherwise try to download it (rancher/rke2#6281).".into(),
            ],
            done: vec!["rke2 exits 0 and prints `restart without --cluster-reset flag now`; the script prints `ok: snapshot restored`.".into()],
            if_fails: vec![
                "The script names the log file holding rke2's output. `bootstrap data already found and encrypted with different token`: the saved token is not the one the snapshot was taken with (step 1 proved that the token this server's unit uses is the saved one, and the reset got it as RKE2_TOKEN). Find the token of the snapshot's time (a copy from before a `rke2 token rotate`), put it at the plan's token path, compile again with its sha256, and re-run from step 1: nothing else has changed since the stop.".into(),
                "`server URL is set`: remove `server:` from config.yaml on this node (it is the init server) and re-run.".into(),
                "A timeout: large snapshots take long; raise REWIND_RESET_TIMEOUT and re-run. Re-running the restore is safe: it always restores the snapshot again.".into(),
            ],
        },
        vec![cx.node(init, pre, act)],
    );
    b.no_return();
    b.way_back(format!("On {init}: `systemctl stop rke2-server` if it runs; move `{db}/etcd` aside and rename the newest `{db}/etcd-old-<unix time>` (the etcd data of {cur}, renamed by the cluster-reset) back to `{db}/etcd`; remove `{db}/reset-flag`; if `{tok}.{sfx}` exists, move it back to `{tok}`. Then go on as after the install step.", init = init.name, db = cx.dd("server/db"), cur = cx.r.current, tok = cx.dd("server/token"), sfx = cx.suffix));
}

fn restore_sqlite(b: &mut Builder, cx: &Ctx<'_>) {
    let init = cx.init();
    let backup = cx
        .snapshot_path()
        .expect("sqlite snapshots are files")
        .to_owned();
    let mut pre = vec![cx.tools(&[]), Op::new(Func::NeedFile, [backup.as_str()])];
    if let Some(h) = &cx.r.snapshot.sha256 {
        pre.push(Op::new(Func::CheckSha256, [backup.clone(), h.clone()]));
    }
    pre.push(Op::new(Func::CheckSqliteDb, [backup.as_str()]));
    pre.push(Op::new(Func::CheckDataMounts, [cx.r.data_dir.as_str()]));
    pre.extend(cx.image_checks());
    pre.push(Op::new(
        Func::CheckRoom,
        [backup.clone(), cx.dd("server/db")],
    ));
    pre.extend(cx.server_token_checks(init));
    let mut act = vec![Op::new(
        Func::RestoreSqlite,
        [
            backup.clone(),
            cx.dd("server/db/state.db"),
            cx.suffix.clone(),
        ],
    )];
    if let Some(t) = &cx.r.token {
        act.push(Op::new(
            Func::PutToken,
            [t.file.clone(), cx.dd("server/token"), cx.suffix.clone()],
        ));
    }
    b.aside(
        init.name.clone(),
        cx.dd("server/db/state.db"),
        "the newer version's database and its -wal/-shm files; keep until the rollback is verified",
    );
    b.step(
        "restore",
        format!("Restore the SQLite database on {}", init.name),
        false,
        true,
        StepDoc {
            what: vec![
                format!("Moves `{}` and its `-wal`/`-shm` files aside, copies the backup `{backup}` in (through a temporary name, so the live name never holds half a file), and checks the copy with `PRAGMA integrity_check` when sqlite3 is installed.", cx.dd("server/db/state.db")),
                if cx.r.token.is_some() { "Puts the saved server token back in `server/token`.".into() } else { "No token is named in the plan: the token in `server/token` is kept.".into() },
            ],
            why: vec![
                "RKE2 rollback guide, SQLite: replace the .db file with the copy made while backing up. Stale -wal/-shm files of the newer database would be replayed into the old one.".into(),
                "The token encrypts the bootstrap data stored in the database.".into(),
            ],
            done: vec!["`ok: state.db restored` and `integrity_check: ok`.".into()],
            if_fails: vec!["The previous database is kept aside (see Cleanup); to undo, move it back under its name.".into()],
        },
        vec![cx.node(init, pre, act)],
    );
    b.no_return();
    b.way_back(format!("On {init}: `systemctl stop rke2-server` if it runs; move `{db}` aside and move `{db}.{sfx}` (and its `-wal`/`-shm` files) back; if `{tok}.{sfx}` exists, move it back to `{tok}`. Then go on as after the install step.", init = init.name, db = cx.dd("server/db/state.db"), tok = cx.dd("server/token"), sfx = cx.suffix));
}

fn restore_external(b: &mut Builder, cx: &Ctx<'_>, db: &ExternalDb) {
    let host = cx.restore_host();
    let dump = cx
        .snapshot_path()
        .expect("external database dumps are files")
        .to_owned();
    let postgres = matches!(cx.r.datastore, Datastore::Postgres(_));
    let port = db.port.map(|p| p.to_string()).unwrap_or_default();
    let user = db.user.clone().unwrap_or_default();
    // The current database is dumped beside the backup before it is dropped:
    // the same host, a folder the operator already manages, a name that
    // says what it is and which plan made it.
    let copy = external_copy_path(&dump, &db.database, &cx.suffix, postgres);
    let (tools, check, rights, save, restore, client): (&[&str], Func, Func, Func, Func, &str) =
        if postgres {
            (
                &["pg_restore", "psql", "pg_dump"],
                Func::CheckPgArchive,
                Func::CheckPgRestore,
                Func::SavePostgres,
                Func::RestorePostgres,
                "PostgreSQL",
            )
        } else {
            (
                &["mysql"],
                Func::CheckMysqlDump,
                Func::CheckMysqlRestore,
                Func::SaveMysql,
                Func::RestoreMysql,
                "MySQL",
            )
        };
    let conn = [
        db.host.clone(),
        port.clone(),
        user.clone(),
        db.database.clone(),
    ];
    let mut pre = vec![cx.tools(tools), Op::new(Func::NeedFile, [dump.as_str()])];
    if let Some(h) = &cx.r.snapshot.sha256 {
        pre.push(Op::new(Func::CheckSha256, [dump.clone(), h.clone()]));
    }
    pre.push(Op::new(check, [dump.as_str()]));
    // The dump is useless without the token it was taken with (its bootstrap
    // data is encrypted with it): check the saved copy before dropping anything.
    pre.extend(cx.token_checks());
    // Last: the archive's database name is checked before the server is
    // asked anything, then the user's rights.
    let mut args = vec![dump.clone()];
    args.extend(conn.iter().cloned());
    args.push(copy.clone());
    pre.push(Op::new(rights, args.clone()));
    let mut save_args = conn.to_vec();
    save_args.push(copy.clone());
    let act = vec![Op::new(save, save_args), Op::new(restore, args)];
    let s = match &host {
        Host::Workstation => script(Host::Workstation, false, pre, act),
        Host::Node(n) => script(Host::Node(n.clone()), true, pre, act),
    };
    let q = crate::shell::quote;
    let opt = |flag: &str, v: &str| {
        if v.is_empty() {
            String::new()
        } else {
            format!(" {}", q(&format!("{flag}={v}")))
        }
    };
    let (how, back) = if postgres {
        let c = format!(
            "{}{}{}",
            opt("--host", &db.host),
            opt("--port", &port),
            opt("--username", &user)
        );
        (
            format!(
                "`pg_restore --clean --if-exists --create --exit-on-error -d postgres` of `{dump}`: the database `{}` is dropped and created again from the archive, so tables created after the dump do not survive. A superuser restores owners and privileges as dumped; a user that is not one (it must have CREATEDB and own the database) restores with `--no-owner`, so every object then belongs to it, and also with `--no-acl` when the dump holds GRANTs made by other roles, which only a superuser can replay (the script warns about both)",
                db.database
            ),
            format!(
                "`pg_restore --clean --if-exists --create --exit-on-error --no-password{c} -d postgres {}` (as a user that is not a superuser, add `--no-owner`)",
                q(&copy)
            ),
        )
    } else {
        let c = format!(
            "{}{}{}",
            opt("--host", &db.host),
            opt("--port", &port),
            opt("--user", &user)
        );
        let name = db.database.replace('\'', "'\"'\"'");
        (
            format!(
                "`DROP DATABASE {0}`, `CREATE DATABASE {0}`, then the dump `{dump}` replayed into it",
                db.database
            ),
            format!(
                "`` mysql{c} -e 'DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}`' `` then `mysql{c} {} < {}`",
                q(&format!("--database={}", db.database)),
                q(&copy)
            ),
        )
    };
    let (dump_tool, pw) = if postgres {
        ("`pg_dump -Fc`", "PGPASSWORD or ~/.pgpass")
    } else {
        (
            "`mysqldump --single-transaction --routines --triggers` (or `mariadb-dump`)",
            "MYSQL_PWD or an option file",
        )
    };
    b.saved(
        host.name(),
        format!("{client} database {} on {}", db.database, db.host),
        copy.clone(),
        format!(
            "the database as it was before the rollback, saved by the restore-db step; to go back to it: {back}; delete it once the rollback is verified (it holds the cluster's data, secrets included)"
        ),
    );
    b.step(
        "restore-db",
        format!("Restore the {client} database on {}", host.name()),
        false,
        true,
        StepDoc {
            what: vec![
                format!(
                    "On {}: checks that the dump is complete and is of `{}`, and that the {client} user may drop and recreate it (before anything is changed; a missing right is named with the statement that grants it).",
                    host.name(),
                    db.database
                ),
                format!(
                    "Keeps a copy of the current database in `{copy}`: {dump_tool}, file mode 0600, written under a temporary name, checked like the backup, then renamed. A copy left by an earlier run is kept, never overwritten (the script says so); if the database does not exist there is nothing to copy."
                ),
                format!("Then {how}."),
                format!(
                    "Then checks that the `kine` table exists and is not empty. The password is read from {pw} (never from the plan or the bundle)."
                ),
            ],
            why: vec![
                "RKE2 rollback guide, External Database, step 3: the datastore goes back to the dump taken on the target minor. There is no cluster-reset with an external database.".into(),
                if postgres { "A plain `pg_restore --clean` leaves tables created after the dump in place; dropping the database makes the restore exact." } else { "Replaying a dump leaves tables created after it in place; dropping the database first makes the restore exact." }.into(),
                "What the cluster wrote since the backup lives only in the current database: the copy is what makes the drop reversible.".into(),
            ],
            done: vec![
                format!("`ok: database {} as it was before the rollback is kept in {copy}` (or `keeping the copy ... made by an earlier run`), then `ok: database restored; kine has N rows`.", db.database),
            ],
            if_fails: vec![
                "A missing right is reported in preflight, before anything is dropped: grant it as the hint says (or name a more privileged user in the plan) and re-run.".into(),
                "Connection errors: check the host, port, user and the password variable; re-run.".into(),
                "Every node is stopped at this point, so a failed restore can be repeated safely: the copy of the database from before the first attempt is kept.".into(),
                format!("To go back to the database as it was before the rollback: {back}."),
            ],
        },
        vec![s],
    );
    b.no_return();
    b.way_back(format!("The database `{}` now holds the dump. To go back, restore the copy of the database as it was before this step (see What it does), then go on as after the stop step.", db.database));
}

/// `<folder of the dump>/<database>-before-rollback.<SUFFIX>.dump` (`.sql`
/// for MySQL): where the current database is kept before the restore drops
/// it. Characters of the database name other than letters, digits, `.`,
/// `_` and `-` become `_` in the file name.
fn external_copy_path(dump: &str, database: &str, suffix: &str, postgres: bool) -> String {
    let dir = match dump.rsplit_once('/') {
        Some(("", _)) => "",
        Some((d, _)) => d,
        None => ".",
    };
    let name: String = database
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ext = if postgres { "dump" } else { "sql" };
    format!("{dir}/{name}-before-rollback.{suffix}.{ext}")
}

fn start_init(b: &mut Builder, cx: &Ctx<'_>) {
    let init = cx.init();
    b.step(
        "start",
        format!("Start rke2-server on {}", init.name),
        false,
        false,
        StepDoc {
            what: vec![format!("`systemctl start --no-block rke2-server`, then waits until the unit is active (REWIND_START_TIMEOUT, default 900 s).")],
            why: vec![
                "RKE2 rollback guide, step 5. `systemctl start` of the Type=notify unit would block forever if rke2 never becomes ready; the script polls with a bound instead.".into(),
                "At this first normal start RKE2 removes the reset flag and the node's old node-password secret.".into(),
            ],
            done: vec!["`ok: rke2-server is active`.".into()],
            if_fails: vec!["Read `journalctl -u rke2-server`. Re-run the step once the cause is fixed; do not start other servers before this one is active.".into()],
        },
        vec![cx.node(init, vec![Op::new(Func::NeedTools, ["systemctl"]), Op::new(Func::CheckInstalledVersion, [cx.rke2.clone(), cx.target()]), Op::new(Func::CheckDataMounts, [cx.r.data_dir.as_str()])], vec![Op::new(Func::EnableUnit, ["rke2-server"]), Op::new(Func::StartUnit, ["rke2-server"])])],
    );
    b.way_back("As after the restore step. Everything the restored cluster has written since this start is lost on the way back.");
}

fn rejoin(b: &mut Builder, cx: &Ctx<'_>) {
    let others: Vec<&Rke2Node> = cx.servers().filter(|n| !n.init).collect();
    if others.is_empty() {
        return;
    }
    let scripts = others
        .iter()
        .map(|n| {
            let mut pre = vec![
                Op::new(Func::NeedTools, ["systemctl"]),
                Op::new(Func::CheckInstalledVersion, [cx.rke2.clone(), cx.target()]),
                Op::new(Func::CheckDataMounts, [cx.r.data_dir.as_str()]),
                cx.in_unit_world(Func::CheckServerEntry, n, &[]),
            ];
            pre.extend(cx.server_token_checks(n));
            let mut act = vec![Op::new(
                Func::MoveAside,
                [cx.dd("server/db/etcd"), cx.suffix.clone()],
            )];
            act.extend(cx.put_token());
            act.push(Op::new(Func::EnableUnit, ["rke2-server"]));
            act.push(Op::new(Func::StartUnit, ["rke2-server"]));
            cx.node(n, pre, act)
        })
        .collect();
    b.aside(
        "other servers",
        cx.dd("server/db/etcd"),
        "the old etcd member data of each joining server; `server/db/snapshots` is kept in place",
    );
    b.step(
        "rejoin",
        "Rejoin the other servers, one at a time",
        false,
        true,
        StepDoc {
            what: vec![
                format!("On each other server, ONE AT A TIME (wait for one to finish before starting the next): moves `{}` aside to `{}.{}` and starts rke2-server, waiting until it is active.", cx.dd("server/db/etcd"), cx.dd("server/db/etcd"), cx.suffix),
                "The local snapshots in `server/db/snapshots` stay where they are.".into(),
            ],
            why: vec![
                "RKE2 rollback guide, steps 6–7. The guide says `rm -rf server/db`, which also deletes every local snapshot (rke2-docs PR #321); only the etcd member data has to go, and it is moved, not deleted.".into(),
                "A server that starts with its old etcd data keeps the old membership: split brain (rancher/rke2#2857). With an empty etcd dir it joins the restored cluster through the `server:` entry in its config.".into(),
                "One at a time, so that etcd adds one member at a time and keeps quorum.".into(),
            ],
            done: vec!["`ok: rke2-server is active` on each server, in turn.".into()],
            if_fails: vec![
                "`newer than datastore and could cause a cluster outage`: certificates on this server are newer than the snapshot; move the files it names aside and re-run.".into(),
                "`critical configuration value mismatch`: this server's config.yaml differs from the init server's in a cluster-wide setting; make them equal.".into(),
            ],
        },
        scripts,
    );
    b.way_back(format!("On each server that rejoined: `systemctl stop rke2-server`, move `{db}` aside and `{db}.{sfx}` back; then go on as after the start step.", db = cx.dd("server/db/etcd"), sfx = cx.suffix));
}

fn start_servers(b: &mut Builder, cx: &Ctx<'_>) {
    let scripts = cx
        .servers()
        .map(|n| {
            let mut pre = vec![
                Op::new(Func::NeedTools, ["systemctl"]),
                Op::new(Func::CheckInstalledVersion, [cx.rke2.clone(), cx.target()]),
                Op::new(Func::CheckDataMounts, [cx.r.data_dir.as_str()]),
            ];
            pre.extend(cx.server_token_checks(n));
            let mut act = cx.put_token();
            act.push(Op::new(Func::EnableUnit, ["rke2-server"]));
            act.push(Op::new(Func::StartUnit, ["rke2-server"]));
            cx.node(n, pre, act)
        })
        .collect();
    b.step(
        "start-servers",
        "Start rke2-server on every server",
        true,
        false,
        StepDoc {
            what: vec!["`systemctl start --no-block rke2-server` on every server, then wait until active (REWIND_START_TIMEOUT, default 900 s).".into()],
            why: vec![
                "RKE2 rollback guide, External Database, step 5. The servers read the restored database; its bootstrap data is encrypted with the server token, which is checked first when the plan gives its hash.".into(),
            ],
            done: vec!["`ok: rke2-server is active` on every server.".into()],
            if_fails: vec!["`bootstrap data already found and encrypted with different token`: the saved token is not the one the dump was taken with (rancher/rke2#1898); step 1 proved this server uses the saved token, so find the token of the dump's time, put it at the plan's token path and compile again.".into()],
        },
        scripts,
    );
    b.way_back("`systemctl stop rke2-server` on every server, then go on as after the database restore. Everything the cluster has written since this start is lost on the way back.");
}

fn start_agents(b: &mut Builder, cx: &Ctx<'_>) {
    let scripts: Vec<Script> = cx
        .agents()
        .map(|n| {
            cx.node(
                n,
                vec![
                    Op::new(Func::NeedTools, ["systemctl"]),
                    Op::new(Func::CheckInstalledVersion, [cx.rke2.clone(), cx.target()]),
                    Op::new(Func::CheckDataMounts, [cx.r.data_dir.as_str()]),
                ],
                vec![
                    Op::new(Func::EnableUnit, [Ctx::unit(n)]),
                    Op::new(Func::StartUnit, [Ctx::unit(n)]),
                ],
            )
        })
        .collect();
    if scripts.is_empty() {
        return;
    }
    b.step(
        "start-agents",
        "Start rke2-agent on every agent",
        true,
        false,
        StepDoc {
            what: vec!["`systemctl start --no-block rke2-agent` on every agent, then wait until active.".into()],
            why: vec![
                "RKE2 rollback guide, step 8. Agents start last, after the servers, so their kubelets see the restored state from the start (rancher/rancher#41547).".into(),
            ],
            done: vec!["`ok: rke2-agent is active` on every agent.".into()],
            if_fails: vec![
                "`Node password rejected`: delete the node's password secret (`kubectl -n kube-system delete secret <node>.node-password.rke2`) and re-run (rancher/rke2#1916).".into(),
            ],
        },
        scripts,
    );
    b.way_back(
        "`systemctl stop rke2-agent` on every agent, then go on as after the step before this one.",
    );
}

fn verify(b: &mut Builder, cx: &Ctx<'_>) {
    let kubeconfig =
        cx.r.drain
            .as_ref()
            .and_then(|d| d.kubeconfig.clone())
            .unwrap_or_default();
    let mut args = vec![kubeconfig, cx.target()];
    args.extend(cx.r.nodes.iter().map(|n| n.k8s_name().to_owned()));
    b.step(
        "verify",
        "Verify the cluster (workstation)",
        false,
        false,
        StepDoc {
            what: vec![
                format!("Waits until every node of the plan is Ready and reports kubelet version {} (REWIND_VERIFY_TIMEOUT, default 900 s).", cx.r.target),
                "Uncordons the nodes that the drain step cordoned.".into(),
                "Lists node objects and node-password secrets that do not belong to the plan (restored from the snapshot): it does not delete them.".into(),
                format!("Checks again that no system-upgrade-controller replica runs while a Plan targets another RKE2 version than {} (that fails the step), and lists those Plans with the commands that delete or pin them, and the command that scales the controller back up.", cx.r.target),
            ],
            why: vec![
                "RKE2 rollback guide, step 9 and Verification. A rollback that left workers on the newer version looks fine from the servers (rancher/rancher#26289).".into(),
                "Drained nodes stay unschedulable until uncordoned; the upstream runbook forgets this.".into(),
            ],
            done: vec![format!("`ok: N nodes Ready at {}`, then `ok: no system-upgrade-controller replica runs…` (or that it runs and no Plan targets another version).", cx.r.target)],
            if_fails: vec!["The message lists each node that is not Ready or runs another version. Check that node's service log, re-run the node's start step if needed, then re-run this step.".into(), "`system-upgrade-controller runs … it will upgrade the cluster again`: scale it to 0 with the command printed, delete or pin the Plans listed, then re-run this step.".into()],
        },
        vec![script(Host::Workstation, false, vec![Op::new(Func::NeedTools, ["kubectl"])], vec![Op::new(Func::VerifyCluster, args), Op::new(Func::CheckUpgrades, [cx.r.kubeconfig.clone().unwrap_or_default(), cx.target()])])],
    );
}

fn cleanup_notes(b: &mut Builder, cx: &Ctx<'_>) {
    b.verification(format!(
        "run `{} --version` on a few nodes and compare with {};",
        cx.rke2, cx.r.target
    ));
    b.verification("run `kubectl get nodes -o wide` and check every node is Ready at the target, with no stray node left from the snapshot;");
    b.verification("read the service logs (`journalctl -u rke2-server`, `journalctl -u rke2-agent`) for errors;");
    b.verification("check that your applications answer;");
    if let Install::Airgap { .. } = cx.r.install {
        b.manual("Air-gap: the archives in the artifacts folder are the ones installed; keep them until the cluster has run on the target version for a while.");
    }
    if cx.r.install_method == InstallMethod::Tar {
        b.manual("Tarball install: if `/usr/local` is read-only on a node, install.sh installs into `/opt/rke2` instead and the scripts will not find rke2 in /usr/local/bin; such nodes need the plan's paths adapted.");
    }
    b.manual(format!("Automation that upgraded the cluster will upgrade it again. Suspending system-upgrade-controller before you start is not enough: the restore brings back the backup's Plans and node labels. The step \"Stop automatic upgrades\" scales the controller to 0 once the first server is up, and the verify step lists the Plans that still target another version than {}: delete them or set their version before you scale the controller back up. A Rancher-provisioned cluster: set its Kubernetes version in Rancher to {} before you start (`rancher-managed = true`). Your own pipelines that install RKE2 must be paused too.", cx.r.target, cx.r.target));
}

/// What rancher-system-agent's installer puts on a node that Rancher
/// provisions (docs/upstream-facts.md §9, `rancher/system-agent:install.sh`).
const RANCHER_AGENT_UNIT: &str = "/etc/systemd/system/rancher-system-agent.service";
const RANCHER_AGENT_DIR: &str = "/etc/rancher/agent";

/// The preflight check of a node for Rancher's system agent.
fn rancher_agent_check(cx: &Ctx<'_>) -> Op {
    let managed = if cx.r.rancher_managed {
        "true"
    } else {
        "false"
    };
    Op::new(
        Func::CheckRancherAgent,
        [managed, &cx.target(), RANCHER_AGENT_UNIT, RANCHER_AGENT_DIR],
    )
}

/// Stops system-upgrade-controller before the rest of the cluster starts:
/// the restore brought back the backup's Plans (and node labels without the
/// newer plan's hash), so a controller suspended before the rollback is
/// active again and would upgrade every node it selects.
fn suspend_upgrades(b: &mut Builder, cx: &Ctx<'_>) {
    let kubeconfig = cx.r.kubeconfig.clone().unwrap_or_default();
    let managed = if cx.r.rancher_managed {
        "true"
    } else {
        "false"
    };
    let s = script(
        Host::Workstation,
        false,
        vec![Op::new(Func::NeedTools, ["kubectl"])],
        vec![Op::new(
            Func::SuspendUpgrades,
            [kubeconfig.as_str(), &cx.target(), managed],
        )],
    );
    let (before, after) = match cx.r.datastore {
        Datastore::Etcd => (
            format!("as soon as {} is up", cx.init().name),
            "before the other servers rejoin and the agents start",
        ),
        Datastore::Sqlite => (
            format!("as soon as {} is up", cx.init().name),
            "before workloads and the verify step",
        ),
        Datastore::Postgres(_) | Datastore::Mysql(_) => (
            "as soon as the servers are up".to_owned(),
            "before the agents start",
        ),
    };
    b.step(
        "suspend-upgrades",
        "Stop automatic upgrades (workstation)",
        false,
        false,
        StepDoc {
            what: vec![
                format!("Runs {before}, {after}. Finds every Deployment named `system-upgrade-controller` in any namespace (`system-upgrade` when installed from its manifest, `cattle-system` when Rancher installed it) and scales it to 0, recording each with its replicas in the `suc-scaled` file of the state folder."),
                format!("Lists every system-upgrade-controller Plan (`plans.upgrade.cattle.io`, all namespaces) with its version or channel, warning about those that target another RKE2 version than {} and printing the commands that delete or pin each. When the CRD does not exist, no controller is installed: it says so and succeeds.", cx.r.target),
                "Reports Rancher's cluster agent (`cattle-system/cattle-cluster-agent`) when the cluster has one, with a warning unless the plan says `rancher-managed = true`.".into(),
            ],
            why: vec![
                "The restore brings back the backup's Plans and the node labels of that time: a controller suspended before the rollback is active again, and since the nodes lost the label that marks them as upgraded (`plan.upgrade.cattle.io/<plan>=<hash>`), it upgrades every node it selects to the Plan's version again (an inference from the controller's node selection, docs/upstream-facts.md §9).".into(),
                "A Plan has no pause field in rancher/system-upgrade-controller (`PlanSpec`, v0.20.1); scaling the controller to 0 stops every Plan at once and is undone by scaling it back (rancher/system-upgrade-controller `manifests/system-upgrade-controller.yaml`).".into(),
                "Rancher installs the controller into `cattle-system` for the clusters it provisions (rancher/rancher, managesystemagent handler) and applies its own desired Kubernetes version through rancher-system-agent (rancher/system-agent `install.sh`): the version set in Rancher must be the target (docs/upstream-facts.md §9).".into(),
            ],
            done: vec![
                "`ok: system-upgrade-controller stopped: N deployment(s) scaled to 0`, or `no system-upgrade-controller deployment in any namespace`; and `ok: the CRD plans.upgrade.cattle.io does not exist…` or the list of Plans.".into(),
            ],
            if_fails: vec![
                "The API does not answer: wait until the first server's API is up (`kubectl get --raw=/readyz`) and run the step again. Do not start the other nodes before this step has succeeded.".into(),
                "The API refuses the scale (permissions, an admission webhook): the message prints the `kubectl -n <namespace> scale deployment system-upgrade-controller --replicas=0` commands; run them with a cluster-admin kubeconfig, or label the nodes `plan.upgrade.cattle.io/<plan>=disabled`, before you go on.".into(),
                "A Job the controller created before it was stopped may still upgrade its node: list them with `kubectl get jobs -A -l upgrade.cattle.io/plan` (the label the controller puts on its Jobs, rancher/system-upgrade-controller `pkg/apis/upgrade.cattle.io/constants.go`) and delete them.".into(),
            ],
        },
        vec![s],
    );
    b.way_back("On the workstation, scale each system-upgrade-controller this step stopped back to its replicas: they are listed in the `suc-scaled` file of the state folder (`/var/lib/rewind/<cluster>/<plan sha256>/`, or under `~/.local/state/rewind/` when run as another user) as `NAMESPACE NAME REPLICAS` lines; run `kubectl -n NAMESPACE scale deployment NAME --replicas=REPLICAS` for each, after the Plans target the version you go back to.");
}
