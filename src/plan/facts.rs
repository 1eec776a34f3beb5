//! What the runbook says, as typed facts: the planner decides (which steps,
//! which checks by hand, what is moved aside, every path, version and host),
//! the templates under `templates/runbook/` word it.
//!
//! A step carries [`StepFacts`], one variant per step template, holding what
//! only that step's words need; the plan carries [`Facts`], what the words of
//! several steps share (paths, the datastore, the token, the install). A
//! sentence that depends on a decision gets the decision as a `bool`, an
//! `Option` or an enum, and the template chooses the words. Nothing here is
//! English: the templates are the only place the runbook's sentences live
//! (docs/architecture.md).

use serde::Serialize;

use crate::choice::DatastoreKind;

/// The facts of a whole plan, shared by the words of its steps, checks by
/// hand, verification and cleanup (`plan.facts` in the templates).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Facts {
    /// An RKE2 cluster.
    Rke2(Box<Rke2Facts>),
    /// Rancher HA on RKE1.
    Rke1(Box<Rke1Facts>),
}

/// What the words of an RKE2 plan share.
#[derive(Debug, Clone, Serialize)]
pub struct Rke2Facts {
    /// RKE2 or K3s: the names the words use (product, binary, units).
    pub flavor: &'static crate::model::Flavor,
    /// etcd, sqlite, postgres or mysql.
    pub datastore: DatastoreKind,
    /// The data dir the units run with.
    pub data_dir: String,
    /// The rke2 binary of the install method (`/usr/local/bin/rke2`,
    /// `/usr/bin/rke2`).
    pub rke2: String,
    /// A tar install's prefix when it is not `/usr/local` (passed to
    /// install.sh), else empty.
    pub install_prefix: String,
    /// Every server, comma-separated (the cleanup table's host cells).
    pub servers: String,
    /// Every server but the init server, comma-separated.
    pub other_servers: String,
    /// The server that restores and starts first (etcd, SQLite); the first
    /// server for an external database.
    pub init: String,
    /// Where the backup is restored: a node's name, or `workstation`.
    pub restore_host: String,
    /// The backup file on the restoring host (`None`: an object in S3).
    pub snapshot_path: Option<String>,
    /// The plan gives the backup's sha256.
    pub snapshot_sha256: bool,
    /// The saved server token, when the plan names one.
    pub token: Option<TokenFacts>,
    /// An air-gap install: where its artifacts are (`None`: online).
    pub airgap: Option<AirgapFacts>,
    /// An RPM install (else the tarball's install.sh).
    pub rpm: bool,
    /// The target as the RPM packages spell it (`1.29.3~rke2r1`).
    pub rpm_version: String,
    /// The external database (PostgreSQL or MySQL), if that is the datastore.
    pub database: Option<DatabaseFacts>,
    /// Paths under the data dir that the steps name.
    pub paths: Rke2Paths,
}

/// The saved server token.
#[derive(Debug, Clone, Serialize)]
pub struct TokenFacts {
    /// The file (on every server).
    pub file: String,
    /// The plan gives its sha256.
    pub sha256: bool,
}

/// The artifacts of an air-gap install.
#[derive(Debug, Clone, Serialize)]
pub struct AirgapFacts {
    /// The folder holding install.sh and the artifacts.
    pub artifacts: String,
    /// amd64, arm64 or s390x.
    pub arch: String,
}

/// An external database and how the runbook tells to go back to the copy
/// the restore keeps of it.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseFacts {
    /// Its host.
    pub host: String,
    /// Its name.
    pub database: String,
    /// Where the restore keeps the database as it was before.
    pub copy: String,
    /// The client's connection options as shell words, each after a space
    /// (`--host=… --port=… --username=…`; empty when none is set).
    pub conn: String,
    /// The name as it stands between single quotes of a shell word.
    pub database_in_quotes: String,
    /// `--database=<name>` as one shell word (MySQL).
    pub database_word: String,
    /// The copy's path as one shell word.
    pub copy_word: String,
}

/// Paths under the data dir.
#[derive(Debug, Clone, Serialize)]
pub struct Rke2Paths {
    /// `agent/pod-manifests`.
    pub pod_manifests: String,
    /// `agent/images`.
    pub images: String,
    /// `server/manifests`.
    pub server_manifests: String,
    /// `server/db`.
    pub server_db: String,
    /// `server/db/etcd`.
    pub etcd: String,
    /// `server/db/state.db`.
    pub state_db: String,
    /// `server/token`.
    pub server_token: String,
}

/// What the words of a Rancher-on-RKE1 plan share.
#[derive(Debug, Clone, Serialize)]
pub struct Rke1Facts {
    /// The rke binary (workstation).
    pub binary: String,
    /// The cluster file.
    pub config: String,
    /// Its state file.
    pub state: String,
    /// The kubeconfig rke writes.
    pub kubeconfig: String,
    /// A workstation path is relative: the workstation steps run from the
    /// cluster file's folder.
    pub relative_paths: bool,
    /// Rancher's namespace.
    pub namespace: &'static str,
    /// Rancher's deployment.
    pub deployment: String,
    /// Its container whose image is set.
    pub container: String,
    /// The snapshot's name (without `.zip`).
    pub snapshot: String,
    /// The plan gives the snapshot's sha256.
    pub snapshot_sha256: bool,
    /// Where rke keeps snapshots on the etcd nodes.
    pub snapshot_dir: &'static str,
    /// The name the save-current step gives the state before the restore.
    pub save_name: String,
    /// The node whose copy of the snapshot is checked (its folder name).
    pub source: String,
    /// The container a restore leaves behind (rancher-archives/rke#2968).
    pub checksum_container: &'static str,
    /// Disaster recovery: the failed node and its replacement.
    pub recovery: Option<RecoveryFacts>,
}

/// The nodes of a disaster recovery.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryFacts {
    /// Address of the dead node.
    pub failed: String,
    /// Address of the new node.
    pub replacement: String,
    /// Where the new node gets the snapshot from.
    pub snapshot_from: SnapshotFrom,
}

/// Where the new node of a disaster recovery gets the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotFrom {
    /// Downloaded from S3 with s3cmd.
    S3,
    /// A copy already on the node (`snapshot.path`).
    File,
    /// Copied there by the operator.
    ByHand,
}

/// The facts of one step: the variant names its template
/// ([`StepFacts::template`]); the fields are what only its words need.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum StepFacts {
    /// RKE2: check every host.
    Rke2Preflight {
        /// etcd with more than one server: the others must name the one to join.
        several_servers: bool,
        /// The unit of Rancher's system agent.
        rancher_agent_unit: &'static str,
        /// Its folder.
        rancher_agent_dir: &'static str,
    },
    /// RKE2: drain the nodes.
    Rke2Drain {
        /// kubectl's drain timeout.
        timeout: String,
    },
    /// RKE2: stop every node.
    Rke2Stop,
    /// RKE2: install the target.
    Rke2Install {
        /// The current version as the RPM packages spell it.
        current_rpm_version: String,
    },
    /// K3s: install the target with K3s's install script, its unit and env
    /// file kept and put back.
    K3sInstall {
        /// A server's unit file and env file.
        server_files: [String; 2],
        /// An agent's unit file and env file (`None`: no agent).
        agent_files: Option<[String; 2]>,
    },
    /// RKE2: restore the etcd snapshot with cluster-reset.
    Rke2RestoreEtcd {
        /// The snapshot's object in S3 (`None`: the file of `snapshot_path`).
        s3: Option<S3Facts>,
    },
    /// RKE2: restore the SQLite database.
    Rke2RestoreSqlite,
    /// RKE2: restore the external database.
    Rke2RestoreDb,
    /// RKE2: start the init server.
    Rke2Start,
    /// RKE2: rejoin the other servers.
    Rke2Rejoin,
    /// RKE2: start every server (external database).
    Rke2StartServers,
    /// RKE2: start the agents.
    Rke2StartAgents,
    /// RKE2: stop system-upgrade-controller.
    Rke2SuspendUpgrades,
    /// RKE2: verify the cluster.
    Rke2Verify,
    /// RKE1: check the workstation and every node.
    Rke1Preflight,
    /// RKE1: put the snapshot on the new node.
    Rke1FetchSnapshot {
        /// The new node (its folder name).
        node: String,
        /// The snapshot's file name in the snapshot folder.
        file: String,
        /// Its full path there.
        dest: String,
        /// Where it comes from.
        source: FetchSource,
    },
    /// RKE1: check the cluster file's nodes.
    Rke1ClusterFile,
    /// RKE1: save the current etcd.
    Rke1SaveCurrent,
    /// RKE1: restore the snapshot.
    Rke1Restore,
    /// RKE1: `rke up`.
    Rke1Up,
    /// RKE1: restart the containers.
    Rke1Restart,
    /// RKE1: set the Rancher image.
    Rke1SetImage,
    /// RKE1: verify Rancher and the nodes.
    Rke1Verify {
        /// The target is older than the current version: a set-image step ran.
        image_was_set: bool,
    },
    /// `rewind prepare`: a capture step (its words are in the capture
    /// bundle's own README template).
    Capture,
}

impl StepFacts {
    /// The template that words the step (under `templates/runbook/`).
    pub fn template(&self) -> &'static str {
        match self {
            StepFacts::Rke2Preflight { .. } => "runbook/rke2/preflight.md",
            StepFacts::Rke2Drain { .. } => "runbook/rke2/drain.md",
            StepFacts::Rke2Stop => "runbook/rke2/stop.md",
            StepFacts::Rke2Install { .. } => "runbook/rke2/install.md",
            StepFacts::K3sInstall { .. } => "runbook/k3s/install.md",
            StepFacts::Rke2RestoreEtcd { .. } => "runbook/rke2/restore-etcd.md",
            StepFacts::Rke2RestoreSqlite => "runbook/rke2/restore-sqlite.md",
            StepFacts::Rke2RestoreDb => "runbook/rke2/restore-db.md",
            StepFacts::Rke2Start => "runbook/rke2/start.md",
            StepFacts::Rke2Rejoin => "runbook/rke2/rejoin.md",
            StepFacts::Rke2StartServers => "runbook/rke2/start-servers.md",
            StepFacts::Rke2StartAgents => "runbook/rke2/start-agents.md",
            StepFacts::Rke2SuspendUpgrades => "runbook/rke2/suspend-upgrades.md",
            StepFacts::Rke2Verify => "runbook/rke2/verify.md",
            StepFacts::Rke1Preflight => "runbook/rke1/preflight.md",
            StepFacts::Rke1FetchSnapshot { .. } => "runbook/rke1/fetch-snapshot.md",
            StepFacts::Rke1ClusterFile => "runbook/rke1/cluster-file.md",
            StepFacts::Rke1SaveCurrent => "runbook/rke1/save-current.md",
            StepFacts::Rke1Restore => "runbook/rke1/restore.md",
            StepFacts::Rke1Up => "runbook/rke1/up.md",
            StepFacts::Rke1Restart => "runbook/rke1/restart.md",
            StepFacts::Rke1SetImage => "runbook/rke1/set-image.md",
            StepFacts::Rke1Verify { .. } => "runbook/rke1/verify.md",
            StepFacts::Capture => "capture/README.md",
        }
    }
}

/// An etcd snapshot in S3, as cluster-reset fetches it.
#[derive(Debug, Clone, Serialize)]
pub struct S3Facts {
    /// The object's name.
    pub name: String,
    /// The bucket.
    pub bucket: String,
    /// The folder inside it, if any.
    pub folder: Option<String>,
}

/// Where the fetch step of a disaster recovery takes the snapshot from.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "from", rename_all = "kebab-case")]
pub enum FetchSource {
    /// `s3cmd get URL`.
    S3 {
        /// `s3://bucket/key`.
        url: String,
        /// The endpoint, if not s3cmd's default.
        endpoint: Option<String>,
        /// The region, if not s3cmd's default.
        region: Option<String>,
    },
    /// A copy already on the node.
    File {
        /// Its path.
        path: String,
    },
    /// The operator copies it there.
    ByHand,
}

/// A check the operator makes by hand, before step 1: the planner decides
/// which apply, `templates/runbook/<distribution>/manual.md.j2` words them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ManualCheck {
    /// RKE2 RPM install: no version lock on the packages; pin them after.
    RpmLocks,
    /// RKE2 RPM install: the SELinux module survives the downgrade.
    RpmSelinux,
    /// RKE2 air-gap: keep the artifacts.
    AirgapArchives,
    /// RKE2 tarball: a read-only `/usr/local` moves rke2 to `/opt/rke2`.
    TarballReadOnlyUsr,
    /// RKE2: automation that upgraded the cluster upgrades it again.
    Automation,
    /// RKE1: the rke release and the cluster file's Kubernetes version.
    RkeRelease,
    /// RKE1: every change to Rancher since the snapshot is lost.
    RancherDataLoss,
    /// RKE1: a target affected by CVE-2018-20321.
    #[serde(rename = "cve-2018-20321")]
    Cve2018_20321,
    /// RKE1: Rancher v2.5 and later document rancher-backup instead.
    RancherBackupOperator,
    /// RKE1 disaster recovery: the failed node stays off.
    FailedNodeOff,
    /// RKE1 disaster recovery: the new node is provisioned.
    NewNodeReady,
    /// RKE1 disaster recovery: with quorum left, `rke up` is enough.
    QuorumLeft,
    /// RKE1: no NFS-shared snapshot folder.
    NoSharedSnapshots,
}

/// Something the scripts move aside or save instead of deleting, for the
/// runbook's cleanup table; `templates/runbook/<distribution>/cleanup.md.j2`
/// words the row of each kind.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Aside {
    /// RKE2: the newer version's static pod manifests (every node).
    PodManifests {
        /// The folder.
        from: String,
        /// Where it goes.
        to: String,
    },
    /// RKE2: the newer version's image archives (every node).
    Images {
        /// The folder.
        from: String,
        /// Where they go.
        to: String,
    },
    /// RKE2: the chart manifests RKE2 wrote (servers).
    ServerManifests {
        /// The folder.
        from: String,
        /// Where they go.
        to: String,
    },
    /// RKE2: the etcd data that cluster-reset renames.
    ResetEtcd {
        /// The restoring server.
        host: String,
        /// The etcd folder.
        from: String,
        /// Its new name.
        to: String,
    },
    /// RKE2: the server token that differed from the saved one (servers).
    ServerToken {
        /// `server/token`.
        from: String,
        /// Where it goes.
        to: String,
    },
    /// RKE2: the newer version's SQLite database.
    SqliteDb {
        /// The server.
        host: String,
        /// `state.db`.
        from: String,
        /// Where it goes.
        to: String,
    },
    /// RKE2: the etcd member data of the servers that rejoin.
    MemberData {
        /// The etcd folder.
        from: String,
        /// Where it goes.
        to: String,
    },
    /// RKE2: the external database as it was, saved by the restore.
    DatabaseCopy {
        /// The host that restores.
        host: String,
        /// The copy.
        to: String,
    },
    /// RKE1: a file that had the snapshot's name on the new node.
    FetchedSnapshot {
        /// The new node.
        host: String,
        /// The snapshot's path.
        from: String,
        /// Where the other file goes.
        to: String,
    },
    /// RKE1: etcd as it was before the restore, saved by save-current.
    SavedEtcd {
        /// The snapshot it is saved as.
        to: String,
    },
}
