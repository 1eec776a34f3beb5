//! The validated plan: what `validate` proved about the user's TOML.
//!
//! Types here carry no spans and no `Option`s that validation already
//! resolved (defaults are applied), so the planner never re-checks input.

use crate::choice::Rke1Role;
pub use crate::choice::{InstallMethod, Role};
use crate::version::{RancherVersion, Rke2Version};

/// A validated plan, ready for the planner.
#[derive(Debug, Clone)]
pub struct Model {
    /// Cluster name (a DNS label; safe in paths).
    pub cluster: String,
    /// sha256 of the plan text, lowercase hex.
    pub plan_sha256: String,
    /// The procedure family.
    pub kind: Kind,
    /// Every precondition that was checked, for the README.
    pub checked: Vec<String>,
    /// Warnings that were accepted, for the README.
    pub warnings: Vec<String>,
}

/// RKE2 or Rancher-on-RKE1, with what each needs.
#[derive(Debug, Clone)]
pub enum Kind {
    /// An RKE2 or K3s cluster (`Rke2::flavor` tells which).
    Rke2(Rke2),
    /// A Rancher HA install on RKE1.
    Rke1(Rke1),
}

/// What tells RKE2 and K3s apart in the procedures they share: every name,
/// path and variable the planner, validation and the runtime library would
/// otherwise spell as a literal. An RKE2 plan and a K3s plan are the same
/// [`Rke2`] model with another flavor (docs/upstream-facts.md, "K3s").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Flavor {
    /// `cluster.distribution` (`rke2`, `k3s`): plan.json and the README.
    pub distribution: &'static str,
    /// The product as prose names it (`RKE2`, `K3s`).
    pub product: &'static str,
    /// The binary's name, also the prefix of its scripts (`rke2-killall.sh`).
    pub binary: &'static str,
    /// The prefix of the variables the product reads (`RKE2_URL`, `K3S_URL`).
    pub env: &'static str,
    /// The prefix of its install script's variables (`INSTALL_RKE2_`).
    pub install_env: &'static str,
    /// Where the upstream install script is fetched from by default.
    pub install_url: &'static str,
    /// The data dir when neither `data-dir:` nor `<ENV>_DATA_DIR` says otherwise.
    pub default_data_dir: &'static str,
    /// Where config.yaml and config.yaml.d are.
    pub config_dir: &'static str,
    /// The server's unit.
    pub server_unit: &'static str,
    /// The agent's unit.
    pub agent_unit: &'static str,
    /// Where a tarball / install-script install writes the units and their
    /// `.env` files.
    pub unit_dir: &'static str,
    /// What a unit's environment file adds to the unit's name in
    /// `unit_dir` (`rke2-server.env`, `k3s.service.env`).
    pub unit_env: &'static str,
    /// The build tag of its versions (`+rke2r`, `+k3s`).
    pub build_tag: &'static str,
    /// A version as `--version` prints it, for help texts.
    pub example: &'static str,
    /// An older version of the example's minor, for help texts.
    pub example_target: &'static str,
    /// The start of the image archives' names (`rke2-images`, `k3s-airgap-images`).
    pub images: &'static str,
    /// The node's password secret suffix in kube-system (`.node-password.rke2`).
    pub node_password: &'static str,
}

impl Flavor {
    /// RKE2.
    pub const RKE2: Flavor = Flavor {
        distribution: "rke2",
        product: "RKE2",
        binary: "rke2",
        env: "RKE2",
        install_env: "INSTALL_RKE2",
        install_url: "https://get.rke2.io",
        default_data_dir: "/var/lib/rancher/rke2",
        config_dir: "/etc/rancher/rke2",
        server_unit: "rke2-server",
        agent_unit: "rke2-agent",
        unit_dir: "/usr/local/lib/systemd/system",
        unit_env: ".env",
        build_tag: crate::version::RKE2_BUILD,
        example: "v1.29.4+rke2r1",
        example_target: "v1.28.9+rke2r1",
        images: "rke2-images",
        node_password: ".node-password.rke2",
    };

    /// K3s: one binary, units `k3s` and `k3s-agent` written by its install
    /// script into /etc/systemd/system (k3s-io/k3s:install.sh).
    pub const K3S: Flavor = Flavor {
        distribution: "k3s",
        product: "K3s",
        binary: "k3s",
        env: "K3S",
        install_env: "INSTALL_K3S",
        install_url: "https://get.k3s.io",
        default_data_dir: "/var/lib/rancher/k3s",
        config_dir: "/etc/rancher/k3s",
        server_unit: "k3s",
        agent_unit: "k3s-agent",
        unit_dir: "/etc/systemd/system",
        unit_env: ".service.env",
        build_tag: crate::version::K3S_BUILD,
        example: "v1.29.4+k3s1",
        example_target: "v1.28.9+k3s1",
        images: "k3s-airgap-images",
        node_password: ".node-password.k3s",
    };

    /// Every flavor, RKE2 first.
    pub const ALL: [&'static Flavor; 2] = [&Self::RKE2, &Self::K3S];

    /// The flavor whose `distribution` word is `name` (`rke2`, `k3s`); None
    /// for `rke1` or an unknown word.
    pub fn named(name: &str) -> Option<&'static Flavor> {
        Self::ALL.into_iter().find(|f| f.distribution == name)
    }

    /// True for K3s.
    pub fn is_k3s(&self) -> bool {
        *self == Self::K3S
    }

    /// Parses a version of this product.
    pub fn version(&self, s: &str) -> Option<Rke2Version> {
        Rke2Version::parse_tagged(s, self.build_tag)
    }
}

/// A validated RKE2 (or K3s) plan.
#[derive(Debug, Clone)]
pub struct Rke2 {
    /// RKE2 or K3s: the names the shared procedures use.
    pub flavor: &'static Flavor,
    /// What the nodes run now.
    pub current: Rke2Version,
    /// What they go back to.
    pub target: Rke2Version,
    /// RKE2 data dir (absolute).
    pub data_dir: String,
    /// Tarball or RPM install.
    pub install_method: InstallMethod,
    /// Tar installs: the prefix of `bin/rke2` and the units' `.env` files
    /// (`/usr/local`, or `/opt/rke2` where install.sh fell back to it).
    pub install_prefix: String,
    /// The datastore and how it is restored.
    pub datastore: Datastore,
    /// The backup that the rollback restores.
    pub snapshot: Snapshot,
    /// The saved server token, if the plan names it.
    pub token: Option<Token>,
    /// Online or air-gap install of the target.
    pub install: Install,
    /// The workstation drain step, if enabled.
    pub drain: Option<Drain>,
    /// kubeconfig on the workstation for drain and verify; `None` means `$KUBECONFIG`.
    pub kubeconfig: Option<String>,
    /// Nodes in plan order.
    pub nodes: Vec<Rke2Node>,
    /// `rancher-managed = true`: Rancher provisions the cluster and its
    /// Kubernetes version in Rancher is set to the target.
    pub rancher_managed: bool,
}

impl Rke2 {
    /// Where the product's binary and its units' `.env` files are on every
    /// node (and, but for a tar install with a prefix, the units too). With
    /// a prefix other than /usr/local, RKE2's install.sh rewrites /usr/local
    /// to the prefix in the units (their ExecStart and EnvironmentFile) and
    /// in rke2-uninstall.sh, then moves the `.service` files to
    /// /etc/systemd/system; the `.env` files stay under the prefix
    /// (docs/upstream-facts.md §4.2). rewind reads only the `.env` files
    /// there, so the second folder is theirs. A K3s plan has no prefix
    /// (validation refuses one). The rollback and the capture both read
    /// them from here.
    pub fn install_dirs(&self) -> (String, String) {
        match self.install_method {
            InstallMethod::Tar if self.install_prefix != "/usr/local" => (
                format!("{}/bin", self.install_prefix),
                format!("{}/lib/systemd/system", self.install_prefix),
            ),
            InstallMethod::Tar => ("/usr/local/bin".to_owned(), self.flavor.unit_dir.to_owned()),
            InstallMethod::Rpm => ("/usr/bin".to_owned(), "/usr/lib/systemd/system".to_owned()),
        }
    }

    /// The unit of a node of `role`.
    pub fn unit(&self, role: Role) -> &'static str {
        match role {
            Role::Server => self.flavor.server_unit,
            Role::Agent => self.flavor.agent_unit,
        }
    }
}

/// The datastore kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datastore {
    /// Embedded etcd (cluster-reset).
    Etcd,
    /// Single-server SQLite (kine).
    Sqlite,
    /// External PostgreSQL.
    Postgres(ExternalDb),
    /// External MySQL / MariaDB.
    Mysql(ExternalDb),
}

/// Connection facts for an external database (never a password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalDb {
    /// Host name or address.
    pub host: String,
    /// TCP port, if not the client's default.
    pub port: Option<u16>,
    /// Database name.
    pub database: String,
    /// User name, if not the client's default.
    pub user: Option<String>,
    /// Node name that runs the restore, or `None` for the workstation.
    pub restore_on: Option<String>,
}

/// The datastore backup.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Where the backup is.
    pub location: SnapshotLocation,
    /// The version the cluster ran when it was taken.
    pub taken_on: String,
    /// Its sha256, when the plan gives it.
    pub sha256: Option<String>,
}

/// A file on the restoring host, or an object in S3 (etcd only).
#[derive(Debug, Clone)]
pub enum SnapshotLocation {
    /// Absolute path on the host that restores it.
    Path(String),
    /// An object in S3.
    S3(S3),
}

/// `[snapshot.s3]`.
#[derive(Debug, Clone)]
pub struct S3 {
    /// Object (snapshot file) name.
    pub name: String,
    /// Bucket.
    pub bucket: String,
    /// Folder inside the bucket.
    pub folder: Option<String>,
    /// Endpoint host[:port].
    pub endpoint: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Plain http to the endpoint.
    pub insecure: bool,
    /// Do not verify the endpoint's certificate.
    pub skip_ssl_verify: bool,
    /// CA bundle (on the restoring host) for the endpoint's certificate.
    pub endpoint_ca: Option<String>,
}

/// The saved server token (only its location and hash; never its value).
#[derive(Debug, Clone)]
pub struct Token {
    /// File on the restoring host.
    pub file: String,
    /// sha256 of the file's content, if given.
    pub sha256: Option<String>,
}

/// How the target version gets onto the nodes.
#[derive(Debug, Clone)]
pub enum Install {
    /// The upstream install script over the network.
    Online,
    /// install.sh and artifacts already copied to every node.
    Airgap {
        /// Folder holding install.sh and the artifacts.
        artifacts: String,
        /// amd64, arm64 or s390x: the word of a validated
        /// [`crate::choice::Arch`], kept as text because scripts receive it
        /// and artifacts are named by it (`rke2.linux-<arch>.tar.gz`).
        arch: String,
    },
}

/// The workstation drain step.
#[derive(Debug, Clone)]
pub struct Drain {
    /// kubeconfig on the workstation; `None` means `$KUBECONFIG`.
    pub kubeconfig: Option<String>,
    /// kubectl duration, e.g. `10m`.
    pub timeout: String,
}

/// An RKE2 node.
#[derive(Debug, Clone)]
pub struct Rke2Node {
    /// Host name (validated hostname; safe in paths).
    pub name: String,
    /// Server or agent.
    pub role: Role,
    /// The server with no `server:` entry (cluster-reset runs here).
    pub init: bool,
    /// Its Kubernetes node name when `node-name:` differs from the host name.
    pub node_name: Option<String>,
}

impl Rke2Node {
    /// The node's name in Kubernetes (`kubectl get nodes`).
    pub fn k8s_name(&self) -> &str {
        self.node_name.as_deref().unwrap_or(&self.name)
    }
}

/// A validated Rancher-on-RKE1 plan.
#[derive(Debug, Clone)]
pub struct Rke1 {
    /// Rancher version now.
    pub current: RancherVersion,
    /// Rancher version to go back to.
    pub target: RancherVersion,
    /// `[rke]`.
    pub rke: RkeTool,
    /// Snapshot name (without `.zip`), taken-on and hash.
    pub snapshot: Rke1Snapshot,
    /// `[recovery]`, for the disaster-recovery procedure.
    pub recovery: Option<Recovery>,
    /// Nodes in plan order.
    pub nodes: Vec<Rke1Node>,
}

/// The rke binary and the files it works on (workstation paths).
#[derive(Debug, Clone)]
pub struct RkeTool {
    /// The rke binary.
    pub binary: String,
    /// The cluster file.
    pub config: String,
    /// The state file rke keeps beside the cluster file (`<config without
    /// its extension>.rkestate`).
    pub state: String,
    /// The kubeconfig rke wrote.
    pub kubeconfig: String,
    /// Rancher deployment name.
    pub deployment: String,
    /// Container whose image is set.
    pub container: String,
    /// The cluster file has s3backupconfig: rke pulls the snapshot from S3.
    pub s3_backup: bool,
}

/// An RKE1 etcd snapshot.
#[derive(Debug, Clone)]
pub struct Rke1Snapshot {
    /// Snapshot name without `.zip`.
    pub name: String,
    /// Rancher version when taken.
    pub taken_on: String,
    /// sha256 of the snapshot file, if given.
    pub sha256: Option<String>,
    /// Where disaster recovery pulls it from.
    pub s3: Option<S3>,
    /// Disaster recovery without S3: a copy of the snapshot file already on
    /// the replacement node (absolute path), put in place by the fetch step.
    pub path: Option<String>,
}

/// Dead node and its replacement (addresses).
#[derive(Debug, Clone)]
pub struct Recovery {
    /// Address of the dead node.
    pub failed: String,
    /// Address of the new node.
    pub replacement: String,
}

/// An RKE1 node.
#[derive(Debug, Clone)]
pub struct Rke1Node {
    /// IP address or DNS name rke connects to.
    pub address: String,
    /// Host name, if given (the guard uses it).
    pub hostname: Option<String>,
    /// SSH user, if the plan gives it (only printed in the nodes block).
    pub user: Option<String>,
    /// controlplane / etcd / worker, each once, in [`Rke1Role`] order.
    pub roles: Vec<Rke1Role>,
}

impl Rke1Node {
    /// The name used for the node's folder in the bundle.
    pub fn folder(&self) -> &str {
        self.hostname.as_deref().unwrap_or(&self.address)
    }

    /// True if the node has the role.
    pub fn has(&self, role: Rke1Role) -> bool {
        self.roles.contains(&role)
    }
}
