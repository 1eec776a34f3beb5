//! Seeding hosts as real RKE2 hosts are before a rollback.
//!
//! From the validated plan ([`Facts`]): the rke2 binary of the current
//! version and its scripts and units where the install method puts them,
//! `config.yaml` (with `server:` and `token:` on joining nodes, the
//! datastore endpoint with its password for external databases), the data
//! dir (`server/db/etcd`, local snapshots in `db/snapshots/`,
//! `server/token`, the newer version's `server/manifests/rke2-*.yaml` and
//! `agent/images/` archives, a user manifest that must stay), and the fake
//! cluster (every node Ready at the current version).
//!
//! From the scripts' operations ([`seed_backups`]): the files the operator
//! copied for the rollback, on the host whose scripts use them: the
//! snapshot or dump (`tests/fixtures/`, whose hashes the plans name), the
//! saved token, the air-gap artifacts of the target version (install.sh
//! stand-in, a real tarball and images archive, a real
//! `sha256sum-<arch>.txt`), the workstation's kubeconfig.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use rewind::model::{
    Datastore, Flavor, Install, InstallMethod, Kind, Model, Role, SnapshotLocation,
};
use rewind::plan::{Func, Plan, Script};

use super::host::Host;
use super::stubs;

/// The password part of the saved token (`tests/fixtures/token`): it must
/// never appear in any output.
pub const TOKEN_CANARY: &str = "rewind-canary-server-token-3b8e61d4";

/// A manifest the operator added to `server/manifests`: not RKE2's, so it
/// must stay where it is.
pub const USER_MANIFEST: &str = "site-ingress-class.yaml";

/// The operator's settings for a packaged chart, named like RKE2's own
/// (rke2-<chart>-config.yaml, as RKE2's docs say): must stay.
pub const USER_CHART_CONFIG: &str = "rke2-canal-config.yaml";

/// RKE2's packaged charts of the newer version, in `server/manifests`.
pub const PACKAGED_MANIFESTS: &[&str] = &[
    "rke2-canal.yaml",
    "rke2-coredns.yaml",
    "rke2-ingress-nginx.yaml",
    "rke2-metrics-server.yaml",
    "rke2-snapshot-controller.yaml",
];

/// What the sandbox needs to know about an RKE2 plan.
#[derive(Debug, Clone)]
pub struct Facts {
    /// RKE2 or K3s: the names of the binary, units, config dir, data dir.
    pub flavor: &'static Flavor,
    /// Cluster name.
    pub cluster: String,
    /// `rewind-<first 8 of the plan sha256>`.
    pub suffix: String,
    /// The version the nodes run.
    pub current: String,
    /// The version they go back to.
    pub target: String,
    /// RKE2 data dir.
    pub data_dir: String,
    /// Where rke2 is installed.
    pub method: InstallMethod,
    /// A tar install's prefix other than /usr/local (`install-prefix`).
    pub prefix: Option<String>,
    /// `etcd`, `sqlite`, `postgres` or `mysql`.
    pub datastore: &'static str,
    /// The nodes: name, role, init.
    pub nodes: Vec<(String, Role, bool)>,
    /// The air-gap artifacts folder and arch, if air-gapped.
    pub airgap: Option<(String, String)>,
    /// The snapshot file's path, if on disk.
    pub snapshot_path: Option<String>,
    /// The saved token's path, if the plan names one.
    pub token_file: Option<String>,
}

impl Facts {
    /// Reads what matters from a validated plan; panics for RKE1, which
    /// the sandbox does not seed (yet).
    pub fn of(model: &Model, plan: &Plan) -> Facts {
        let Kind::Rke2(r) = &model.kind else {
            panic!(
                "the sandbox seeds RKE2 hosts only; {} is an RKE1 plan",
                model.cluster
            )
        };
        Facts {
            flavor: r.flavor,
            cluster: model.cluster.clone(),
            suffix: plan.suffix.clone(),
            current: r.current.to_string(),
            target: r.target.to_string(),
            data_dir: r.data_dir.clone(),
            method: r.install_method,
            prefix: (r.install_method == InstallMethod::Tar && r.install_prefix != "/usr/local")
                .then(|| r.install_prefix.clone()),
            datastore: match r.datastore {
                Datastore::Etcd => "etcd",
                Datastore::Sqlite => "sqlite",
                Datastore::Postgres(_) => "postgres",
                Datastore::Mysql(_) => "mysql",
            },
            nodes: r
                .nodes
                .iter()
                .map(|n| (n.name.clone(), n.role, n.init))
                .collect(),
            airgap: match &r.install {
                Install::Online => None,
                Install::Airgap { artifacts, arch } => Some((artifacts.clone(), arch.clone())),
            },
            snapshot_path: match &r.snapshot.location {
                SnapshotLocation::Path(p) => Some(p.clone()),
                SnapshotLocation::S3(_) => None,
            },
            token_file: r.token.as_ref().map(|t| t.file.clone()),
        }
    }

    /// Folder of rke2, rke2-killall.sh and rke2-uninstall.sh.
    pub fn bin_dir(&self) -> String {
        match (&self.prefix, self.method) {
            (Some(p), _) => format!("{p}/bin"),
            (None, InstallMethod::Tar) => "/usr/local/bin".to_owned(),
            (None, InstallMethod::Rpm) => "/usr/bin".to_owned(),
        }
    }

    /// Folder of the systemd units: with a prefix, install.sh moves them
    /// to /etc/systemd/system (docs/upstream-facts.md §4.2).
    pub fn unit_dir(&self) -> String {
        match (&self.prefix, self.method) {
            (Some(_), _) => "/etc/systemd/system".to_owned(),
            (None, InstallMethod::Tar) => self.flavor.unit_dir.to_owned(),
            (None, InstallMethod::Rpm) => "/usr/lib/systemd/system".to_owned(),
        }
    }

    /// Folder of the tarball's `share/rke2`.
    pub fn share_dir(&self) -> String {
        match (&self.prefix, self.method) {
            (Some(p), _) => format!("{p}/share/rke2"),
            (None, InstallMethod::Tar) => "/usr/local/share/rke2".to_owned(),
            (None, InstallMethod::Rpm) => "/usr/share/rke2".to_owned(),
        }
    }

    /// True for a K3s plan.
    pub fn k3s(&self) -> bool {
        self.flavor.is_k3s()
    }

    /// The binary (`/usr/local/bin/rke2`, `/usr/local/bin/k3s`).
    pub fn binary(&self) -> String {
        format!("{}/{}", self.bin_dir(), self.flavor.binary)
    }

    /// The unit of a node of `role`.
    pub fn unit(&self, role: Role) -> &'static str {
        match role {
            Role::Server => self.flavor.server_unit,
            Role::Agent => self.flavor.agent_unit,
        }
    }

    /// `config.yaml` of the nodes.
    pub fn config_file(&self) -> String {
        format!("{}/config.yaml", self.flavor.config_dir)
    }

    /// The newer version's main image archive in `agent/images`.
    pub fn images_name(&self, arch: &str) -> String {
        if self.k3s() {
            format!("k3s-airgap-images-{arch}.tar.zst")
        } else {
            format!("rke2-images.linux-{arch}.tar.zst")
        }
    }

    /// The init server (etcd), else the first server.
    pub fn first_server(&self) -> &str {
        self.nodes
            .iter()
            .find(|n| n.2)
            .or_else(|| self.nodes.iter().find(|n| n.1 == Role::Server))
            .map(|n| n.0.as_str())
            .expect("a plan has a server")
    }

    /// The role of a node.
    pub fn role(&self, node: &str) -> Role {
        self.nodes
            .iter()
            .find(|n| n.0 == node)
            .map(|n| n.1)
            .expect("a node of the plan")
    }

    /// Servers, in plan order.
    pub fn servers(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.1 == Role::Server)
            .map(|n| n.0.as_str())
            .collect()
    }

    /// Agents, in plan order.
    pub fn agents(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.1 == Role::Agent)
            .map(|n| n.0.as_str())
            .collect()
    }
}

/// A file of `tests/fixtures/`.
pub fn fixture(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// sha256 of bytes, lowercase hex.
pub fn sha256(bytes: &[u8]) -> String {
    rewind::digest::sha256_hex(bytes)
}

/// The content of an image archive of one version (not a real archive:
/// only install.sh and the scripts' moves handle it).
/// The Cilium images archive of `version`: installed by rewind, not by the
/// install.sh of the target.
pub fn cilium_archive(version: &str, arch: &str) -> Vec<u8> {
    let line = format!("rke2 cilium images {version} linux-{arch}\n");
    line.repeat(32).into_bytes()
}

pub fn images_archive(version: &str, arch: &str) -> Vec<u8> {
    let line = format!("rke2 images {version} linux-{arch}\n");
    line.repeat(64).into_bytes()
}

fn unit(bin: &str, what: &str, version: &str) -> String {
    format!(
        "[Unit]\nDescription=Rancher Kubernetes Engine v2 ({what}) {version}\n\
         [Service]\nType=notify\nTimeoutStartSec=0\nRestart=always\nExecStart={bin}/rke2 {what}\n"
    )
}

/// The k3s binary, scripts, the unit of `role` and its env file, as K3s's
/// install script writes them (the unit with flags of its own, which the
/// install step must keep).
pub fn install_k3s(host: &Host, facts: &Facts, role: Role, version: &str) {
    let bin = facts.bin_dir();
    host.write(&format!("{bin}/k3s"), stubs::k3s_binary(version), 0o755);
    host.write(
        &format!("{bin}/k3s-killall.sh"),
        stubs::text("rke2-killall.sh").replace("rke2-killall.sh", "k3s-killall.sh"),
        0o755,
    );
    let unit = facts.unit(role);
    let what = if role == Role::Server {
        "server \\\n    --disable=traefik"
    } else {
        "agent"
    };
    host.write(
        &format!("{}/{unit}.service", facts.unit_dir()),
        format!(
            "[Unit]\nDescription=Lightweight Kubernetes {version}\n[Service]\nType=notify\n\
             EnvironmentFile=-{0}/{unit}.service.env\nExecStart={bin}/k3s \\\n    {what}\n",
            facts.unit_dir()
        ),
        0o644,
    );
    host.write(
        &format!("{}/{unit}.service.env", facts.unit_dir()),
        "K3S_KUBECONFIG_MODE=644\n",
        0o600,
    );
}

/// The rke2 binary, scripts and units of `version` on a host.
pub fn install_rke2(host: &Host, facts: &Facts, version: &str) {
    let bin = facts.bin_dir();
    host.write(&format!("{bin}/rke2"), stubs::rke2_binary(version), 0o755);
    host.write(
        &format!("{bin}/rke2-killall.sh"),
        stubs::text("rke2-killall.sh").replace(
            "RKE2_STUB_VERSION=@VERSION@",
            &format!("RKE2_STUB_VERSION={version}"),
        ),
        0o755,
    );
    host.write(
        &format!("{bin}/rke2-uninstall.sh"),
        stubs::text("rke2-uninstall.sh"),
        0o755,
    );
    for what in ["server", "agent"] {
        host.write(
            &format!("{}/rke2-{what}.service", facts.unit_dir()),
            unit(&bin, what, version),
            0o644,
        );
    }
    host.write(
        &format!("{}/rke2-cis-sysctl.conf", facts.share_dir()),
        "vm.panic_on_oom=0\nkernel.panic=10\n",
        0o644,
    );
}

/// The package manager of an RPM host (the stand-ins of `tests/stubs/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    /// EL 8 and later: dnf, with yum as another name of it.
    Dnf,
    /// EL 7: yum 3, which has no dnf.
    Yum,
    /// SUSE: zypper.
    Zypper,
}

impl PackageManager {
    /// The release part of the rke2 packages' version-release.
    pub fn release(self) -> &'static str {
        match self {
            PackageManager::Dnf => "0.el8",
            PackageManager::Yum => "0.el7",
            PackageManager::Zypper => "0.sle",
        }
    }

    /// Where its repository files are.
    pub fn repo_dir(self) -> &'static str {
        match self {
            PackageManager::Zypper => "/etc/zypp/repos.d",
            _ => "/etc/yum.repos.d",
        }
    }
}

/// The RPM form of an RKE2 version: no leading `v`, `+` and `-` as `~`.
pub fn rpm_version(version: &str) -> String {
    version
        .strip_prefix('v')
        .unwrap_or(version)
        .replace(['+', '-'], "~")
}

/// The `major.minor` of an RKE2 version (`v1.29.3+rke2r1`: `1.29`).
pub fn minor(version: &str) -> String {
    let v = version.strip_prefix('v').unwrap_or(version);
    v.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// Where the RPM stand-ins keep what is installed: `NAME VR ARCH` lines.
pub const RPM_DB: &str = "/var/lib/rpm/stand-in.db";

/// The rancher-rke2 repository file as install.sh writes it, for `minor`
/// (the host name is not a real one).
pub fn rke2_repo_file(pm: PackageManager, minor: &str) -> String {
    let infix = match pm {
        PackageManager::Dnf => "centos/8",
        PackageManager::Yum => "centos/7",
        PackageManager::Zypper => "slemicro",
    };
    format!(
        "[rancher-rke2-common-stable]\nname=Rancher RKE2 Common (stable)\n\
         baseurl=https://rpm.example.invalid/rke2/stable/common/{infix}/noarch\nenabled=1\ngpgcheck=1\n\
         [rancher-rke2-{minor}-stable]\nname=Rancher RKE2 {minor} (stable)\n\
         baseurl=https://rpm.example.invalid/rke2/stable/{minor}/{infix}/x86_64\nenabled=1\ngpgcheck=1\n"
    )
}

/// Makes `host` an RPM host with package manager `pm`: the stand-ins of
/// rpm and `pm` in /usr/bin (those of another package manager removed),
/// rke2-TYPE and rke2-common installed at the current version (with
/// rke2-selinux), the rancher-rke2 repository of the current minor
/// configured, and the repositories holding the current and the target
/// versions (and two rke2-selinux versions). A re-seed replaces all that.
pub fn seed_rpm(host: &Host, facts: &Facts, node: &str, pm: PackageManager) {
    for tool in ["/usr/bin/dnf", "/usr/bin/yum", "/usr/bin/zypper"] {
        let p = host.disk(tool);
        if fs::symlink_metadata(&p).is_ok() {
            fs::remove_file(&p).expect("remove a package manager stand-in");
        }
    }
    for pmx in [PackageManager::Dnf, PackageManager::Zypper] {
        let p = host.disk(&format!("{}/rancher-rke2.repo", pmx.repo_dir()));
        if fs::symlink_metadata(&p).is_ok() {
            fs::remove_file(&p).expect("remove a repository file");
        }
    }
    host.write(
        "/usr/lib/rpm-stand-in/rpmdb.sh",
        stubs::text("rpmdb.sh"),
        0o644,
    );
    host.write("/usr/bin/rpm", stubs::text("rpm"), 0o755);
    match pm {
        PackageManager::Dnf => {
            host.write("/usr/bin/dnf", stubs::text("dnf"), 0o755);
            host.write("/usr/bin/yum", stubs::text("dnf"), 0o755);
        }
        PackageManager::Yum => host.write("/usr/bin/yum", stubs::text("dnf"), 0o755),
        PackageManager::Zypper => host.write("/usr/bin/zypper", stubs::text("zypper"), 0o755),
    }
    let rel = pm.release();
    let ty = if facts.role(node) == Role::Server {
        "rke2-server"
    } else {
        "rke2-agent"
    };
    let cur = format!("{}-{rel}", rpm_version(&facts.current));
    host.write(
        RPM_DB,
        format!(
            "rke2-common {cur} x86_64\n{ty} {cur} x86_64\nrke2-selinux 0.18-1.{} noarch\n",
            &rel[2..]
        ),
        0o644,
    );
    host.write(
        &format!("{}/rancher-rke2.repo", pm.repo_dir()),
        rke2_repo_file(pm, &minor(&facts.current)),
        0o644,
    );
    let mut repo = format!(
        "common rke2-selinux 0.17-1.{r} noarch\ncommon rke2-selinux 0.18-1.{r} noarch\n",
        r = &rel[2..]
    );
    // Oldest first: the target, then the current version.
    for v in [&facts.target, &facts.current] {
        for p in ["rke2-common", "rke2-server", "rke2-agent"] {
            repo.push_str(&format!(
                "{} {p} {}-{rel} x86_64\n",
                minor(v),
                rpm_version(v)
            ));
        }
    }
    host.write("/var/lib/rpm-stand-in/repository", repo, 0o644);
}

/// The config.yaml of a node.
fn config(facts: &Facts, node: &str, role: Role, init: bool) -> String {
    let mut c = format!(
        "# {}\nwrite-kubeconfig-mode: \"0640\"\n",
        facts.config_file()
    );
    if facts.data_dir != facts.flavor.default_data_dir {
        // A YAML double-quoted scalar: hostile data dirs hold quotes and `#`.
        let q = facts.data_dir.replace('\\', "\\\\").replace('"', "\\\"");
        c.push_str(&format!("data-dir: \"{q}\"\n"));
    }
    let token = String::from_utf8(fixture("token")).expect("token fixture is text");
    let joins = match (facts.datastore, role) {
        ("etcd", Role::Server) => !init,
        (_, Role::Agent) => true,
        _ => false,
    };
    if joins {
        c.push_str(&format!("server: https://{}:9345\n", facts.first_server()));
        c.push_str(&format!("token: {token}"));
    }
    if role == Role::Server {
        c.push_str(&format!("tls-san:\n  - {node}.{}.example\n", facts.cluster));
        match facts.datastore {
            "postgres" => c.push_str(&format!(
                "datastore-endpoint: postgres://rke2:{}@pg.db.internal:5432/rke2\n",
                secret("PGPASSWORD")
            )),
            "mysql" => c.push_str(&format!(
                "datastore-endpoint: mysql://kine:{}@tcp(127.0.0.1:3306)/kine\n",
                secret("MYSQL_PWD")
            )),
            "etcd" => c.push_str(
                "etcd-snapshot-schedule-cron: \"0 */12 * * *\"\netcd-snapshot-retention: 5\n",
            ),
            _ => {}
        }
    }
    c
}

/// The canary value of a secret environment variable (tests/common).
pub fn secret(name: &str) -> &'static str {
    crate::common::SECRET_CANARIES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or_else(|| panic!("no canary for {name}"), |(_, v)| *v)
}

/// Seeds a node as it is after the failed upgrade: everything at the
/// current version, running.
pub fn seed_node(host: &Host, facts: &Facts, node: &str) {
    let role = facts.role(node);
    let init = facts.nodes.iter().any(|n| n.0 == node && n.2);
    let d = &facts.data_dir;
    let arch = facts
        .airgap
        .as_ref()
        .map_or("amd64", |a| a.1.as_str())
        .to_owned();
    if facts.k3s() {
        install_k3s(host, facts, role, &facts.current);
    } else {
        install_rke2(host, facts, &facts.current);
    }
    if facts.method == InstallMethod::Rpm {
        seed_rpm(host, facts, node, PackageManager::Dnf);
    }
    host.write(&facts.config_file(), config(facts, node, role, init), 0o600);
    host.write("/etc/rancher/node/password", "5f0c2e8a71b94d6e\n", 0o600);
    let ver_dir = format!("{d}/data/{}-0a1b2c3d", facts.current.replace('+', "-"));
    for tool in [
        "containerd",
        "containerd-shim-runc-v2",
        "kubelet",
        "crictl",
        "kubectl",
    ] {
        host.write(
            &format!("{ver_dir}/bin/{tool}"),
            format!("#!/bin/sh\n# {tool} of {}\n", facts.current),
            0o755,
        );
    }
    host.symlink(&format!("{d}/bin"), &format!("{ver_dir}/bin"));
    // The charts RKE2 copies into server/manifests at every start.
    for m in PACKAGED_MANIFESTS {
        host.write(
            &format!("{ver_dir}/charts/{m}"),
            format!("# {m} of {}\nkind: HelmChart\n", facts.current),
            0o644,
        );
    }
    host.write(
        &format!("{d}/agent/images/{}", facts.images_name(&arch)),
        images_archive(&facts.current, &arch),
        0o644,
    );
    host.write(
        &format!("{d}/agent/images/.cache.json"),
        format!("{{\"{}\":\"imported\"}}\n", facts.images_name("amd64")),
        0o644,
    );
    host.write(
        &format!("{d}/agent/etc/containerd/config.toml"),
        "version = 2\n",
        0o600,
    );
    host.write(
        &format!("{d}/agent/pod-manifests/kube-proxy.yaml"),
        "kind: Pod\n",
        0o600,
    );
    if role == Role::Server {
        host.write(
            &format!("{}/{}.yaml", facts.flavor.config_dir, facts.flavor.binary),
            "apiVersion: v1\nkind: Config\nclusters:\n- name: default\n  cluster:\n    server: https://127.0.0.1:6443\n\
             users:\n- name: default\n  user:\n    client-key-data: ZmFrZSBrZXkgb2YgdGhlIHNhbmRib3gK\n",
            0o600,
        );
        let token = fixture("token");
        host.write(&format!("{d}/server/token"), &token, 0o600);
        host.symlink(&format!("{d}/server/node-token"), "token");
        for m in PACKAGED_MANIFESTS {
            host.write(
                &format!("{d}/server/manifests/{m}"),
                format!("# {m} of {}\nkind: HelmChart\n", facts.current),
                0o600,
            );
        }
        host.write(
            &format!("{d}/server/manifests/{USER_MANIFEST}"),
            "kind: IngressClass\nmetadata:\n  name: site\n",
            0o600,
        );
        host.write(
            &format!("{d}/server/manifests/{USER_CHART_CONFIG}"),
            "apiVersion: helm.cattle.io/v1\nkind: HelmChartConfig\nmetadata:\n  name: rke2-canal\n  namespace: kube-system\nspec:\n  valuesContent: |-\n    flannel:\n      iface: eth1\n",
            0o600,
        );
        for f in [
            "server-ca.crt",
            "server-ca.key",
            "client-ca.crt",
            "client-ca.key",
            "etcd/server-ca.crt",
        ] {
            host.write(
                &format!("{d}/server/tls/{f}"),
                format!("fake {f} of the sandbox\n"),
                0o600,
            );
        }
        host.write(
            &format!("{d}/server/cred/passwd"),
            "fake,node,node\n",
            0o600,
        );
        for p in [
            "kube-apiserver.yaml",
            "kube-controller-manager.yaml",
            "kube-scheduler.yaml",
        ] {
            host.write(
                &format!("{d}/agent/pod-manifests/{p}"),
                "kind: Pod\n",
                0o600,
            );
        }
        match facts.datastore {
            "etcd" => {
                host.write(
                    &format!("{d}/agent/pod-manifests/etcd.yaml"),
                    "kind: Pod\n",
                    0o600,
                );
                host.write(
                    &format!("{d}/server/db/etcd/name"),
                    format!("{node}-8c1f0a2b\n"),
                    0o600,
                );
                host.write(
                    &format!("{d}/server/db/etcd/member/snap/db"),
                    format!("etcd data of {node} at {}\n", facts.current),
                    0o600,
                );
                host.write(
                    &format!("{d}/server/db/etcd/member/wal/0000000000000000-0000000000000000.wal"),
                    "wal\n",
                    0o600,
                );
                // A scheduled snapshot taken after the upgrade: local
                // snapshots must survive the rollback.
                host.write(
                    &format!("{d}/server/db/snapshots/etcd-snapshot-{node}-1716300000"),
                    format!("scheduled snapshot of {node}\n").repeat(16),
                    0o600,
                );
            }
            "sqlite" => {
                host.write(
                    &format!("{d}/server/db/state.db"),
                    newer_sqlite(host),
                    0o600,
                );
                host.write(&format!("{d}/server/db/state.db-wal"), "newer wal\n", 0o600);
                host.write(&format!("{d}/server/db/state.db-shm"), "newer shm\n", 0o600);
            }
            _ => {}
        }
    }
}

/// A kine database with rows written after the backup (real SQLite).
fn newer_sqlite(host: &Host) -> Vec<u8> {
    let tmp = host.dir.join("seed-state.db");
    fs::write(&tmp, fixture("sqlite/state.db")).expect("write a scratch database");
    let st = Command::new(crate::common::require_tool("sqlite3"))
        .arg(&tmp)
        .arg("INSERT INTO kine(name,created,deleted,create_revision,prev_revision,lease,value) VALUES('/registry/after-upgrade',1,0,51,0,0,'new');")
        .status()
        .expect("run sqlite3");
    assert!(st.success(), "sqlite3 could not write the seed database");
    let bytes = fs::read(&tmp).expect("read the scratch database");
    fs::remove_file(&tmp).expect("remove the scratch database");
    bytes
}

/// Puts the air-gap artifacts of `version` into `dir` on a host: the
/// install.sh stand-in, a real tarball of the rke2 stand-in, an images
/// archive, and a sha256sum file listing them (and, as real ones do, more
/// archives than were copied).
pub fn seed_artifacts(host: &Host, facts: &Facts, dir: &str, arch: &str, version: &str) {
    let stage = host.dir.join("seed-tarball");
    let _ = fs::remove_dir_all(&stage);
    let files: [(&str, String, u32); 6] = [
        ("bin/rke2", stubs::rke2_binary(version), 0o755),
        (
            "bin/rke2-killall.sh",
            stubs::text("rke2-killall.sh").replace(
                "RKE2_STUB_VERSION=@VERSION@",
                &format!("RKE2_STUB_VERSION={version}"),
            ),
            0o755,
        ),
        (
            "bin/rke2-uninstall.sh",
            stubs::text("rke2-uninstall.sh"),
            0o755,
        ),
        (
            "lib/systemd/system/rke2-server.service",
            unit("/usr/local/bin", "server", version),
            0o644,
        ),
        (
            "lib/systemd/system/rke2-agent.service",
            unit("/usr/local/bin", "agent", version),
            0o644,
        ),
        (
            "share/rke2/rke2-cis-sysctl.conf",
            "vm.panic_on_oom=0\nkernel.panic=10\n".to_owned(),
            0o644,
        ),
    ];
    for (rel, text, mode) in &files {
        let p = stage.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("stage the tarball");
        fs::write(&p, text).expect("stage the tarball");
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).expect("chmod in the tarball");
    }
    let tarball = host.dir.join("seed.tar.gz");
    let st = Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mtime=@1716239400",
            "-czf",
        ])
        .arg(&tarball)
        .arg("-C")
        .arg(&stage)
        .args(["bin", "lib", "share"])
        .status()
        .expect("run tar");
    assert!(st.success(), "tar could not build the artifacts tarball");
    let tar_bytes = fs::read(&tarball).expect("read the tarball");
    fs::remove_file(&tarball).expect("remove the scratch tarball");
    fs::remove_dir_all(&stage).expect("remove the tarball stage");
    let images = images_archive(version, arch);
    let tar_name = format!("rke2.linux-{arch}.tar.gz");
    let img_name = format!("rke2-images.linux-{arch}.tar.zst");
    host.write(
        &format!("{dir}/install.sh"),
        stubs::text("install-airgap.sh"),
        0o755,
    );
    host.write(&format!("{dir}/{tar_name}"), &tar_bytes, 0o644);
    host.write(&format!("{dir}/{img_name}"), &images, 0o644);
    let cilium = cilium_archive(version, arch);
    let cilium_name = format!("rke2-images-cilium.linux-{arch}.tar.zst");
    host.write(&format!("{dir}/{cilium_name}"), &cilium, 0o644);
    let mut sums = [
        (sha256(&tar_bytes), tar_name),
        (sha256(&images), img_name),
        (sha256(&cilium), cilium_name),
        (
            sha256(b"not copied"),
            format!("rke2-images-calico.linux-{arch}.tar.zst"),
        ),
        (
            sha256(b"not copied either"),
            format!("rke2-images.linux-{arch}.tar.gz"),
        ),
        (sha256(b"a list"), format!("rke2-images.linux-{arch}.txt")),
    ];
    sums.sort_by(|a, b| a.1.cmp(&b.1));
    let text: String = sums.iter().map(|(h, n)| format!("{h}  {n}\n")).collect();
    host.write(&format!("{dir}/sha256sum-{arch}.txt"), text, 0o644);
    let _ = facts;
}

/// Puts the air-gap artifacts of K3s `version` into `dir` on a host: the
/// K3s install script stand-in, the k3s stand-in of `version` named as the
/// release names the binary of `arch`, the air-gap images, and a
/// sha256sum file listing them (and, as real ones do, more than was copied).
pub fn seed_k3s_artifacts(host: &Host, dir: &str, arch: &str, version: &str) {
    let bin_name = if arch == "amd64" {
        "k3s".to_owned()
    } else {
        format!("k3s-{arch}")
    };
    let binary = stubs::k3s_binary(version);
    let images = images_archive(version, arch);
    let img_name = format!("k3s-airgap-images-{arch}.tar.zst");
    host.write(
        &format!("{dir}/install.sh"),
        stubs::text("k3s-install.sh"),
        0o755,
    );
    host.write(&format!("{dir}/{bin_name}"), &binary, 0o644);
    host.write(&format!("{dir}/{img_name}"), &images, 0o644);
    let mut sums = [
        (sha256(binary.as_bytes()), bin_name),
        (sha256(&images), img_name),
        (
            sha256(b"not copied"),
            format!("k3s-airgap-images-{arch}.tar.gz"),
        ),
    ];
    sums.sort_by(|a, b| a.1.cmp(&b.1));
    let text: String = sums.iter().map(|(h, n)| format!("{h}  {n}\n")).collect();
    host.write(&format!("{dir}/sha256sum-{arch}.txt"), text, 0o644);
}

/// Puts on `host` the files its scripts read that an operator copies there
/// for the rollback (the snapshot or dump, the saved token, the air-gap
/// artifacts, the kubeconfig).
pub fn seed_backups(host: &Host, facts: &Facts, script: &Script) {
    for op in script.preflight.iter().chain(&script.actions) {
        let a = &op.args;
        match op.func {
            Func::CheckToken | Func::PutToken => seed_once(host, &a[0], &fixture("token"), 0o600),
            Func::CheckEtcdSnapshot => seed_snapshot(host, &a[0]),
            Func::ClusterReset if a[1].starts_with('/') => seed_snapshot(host, &a[1]),
            Func::CheckSqliteDb | Func::RestoreSqlite => {
                seed_once(host, &a[0], &fixture("sqlite/state.db"), 0o600);
            }
            Func::CheckPgArchive | Func::RestorePostgres => {
                let dump = if facts.k3s() {
                    "postgres/k3s.dump"
                } else {
                    "postgres/rke2.dump"
                };
                seed_once(host, &a[0], &fixture(dump), 0o600);
            }
            Func::CheckMysqlDump | Func::RestoreMysql => {
                seed_once(host, &a[0], &fixture("mysql/kine.sql"), 0o600);
            }
            Func::DrainNodes
            | Func::VerifyCluster
            | Func::SuspendUpgrades
            | Func::CheckUpgrades
                if !a[0].is_empty() =>
            {
                seed_once(
                host,
                &a[0],
                format!(
                    "apiVersion: v1\nkind: Config\nclusters:\n- name: {0}\n  cluster:\n    server: https://{1}:6443\n",
                    facts.cluster,
                    facts.first_server()
                )
                .as_bytes(),
                0o600,
            );
            }
            Func::CheckArtifacts | Func::InstallAirgap
                if !host.has(&format!("{}/install.sh", a[0])) =>
            {
                seed_artifacts(host, facts, &a[0], &a[1], &facts.target);
            }
            Func::CheckK3sArtifacts if !host.has(&format!("{}/install.sh", a[0])) => {
                seed_k3s_artifacts(host, &a[0], &a[1], &facts.target);
            }
            _ => {}
        }
    }
}

fn seed_snapshot(host: &Host, path: &str) {
    let bytes = if path.ends_with(".zip") {
        fixture("etcd/snapshot.zip")
    } else {
        fixture("etcd/snapshot.db")
    };
    seed_once(host, path, &bytes, 0o600);
}

fn seed_once(host: &Host, path: &str, bytes: &[u8], mode: u32) {
    if !host.has(path) {
        host.write(path, bytes, mode);
    }
}

/// The fake cluster before the rollback: every node Ready at the current
/// version, its unit enabled and active.
pub fn seed_cluster(test: &Path, facts: &Facts) {
    let c = test.join("cluster");
    fs::create_dir_all(c.join("nodes")).expect("create the fake cluster");
    fs::write(
        c.join("facts"),
        format!(
            "datastore={}\ninit={}\ndistribution={}\n",
            facts.datastore,
            facts.first_server(),
            facts.flavor.distribution
        ),
    )
    .expect("write the cluster facts");
    for (name, role, _) in &facts.nodes {
        let units = c.join("units").join(name);
        fs::create_dir_all(&units).expect("create a node's units");
        let unit = facts.unit(*role);
        fs::write(units.join(unit), "active\n").expect("write a unit state");
        fs::write(units.join(format!("{unit}.enabled")), "enabled\n")
            .expect("write a unit's enablement");
        fs::write(
            c.join("nodes").join(name),
            format!("True|{}\n", facts.current),
        )
        .expect("write a node state");
    }
}
