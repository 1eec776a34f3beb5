//! The plan as the user wrote it: a serde mirror of the TOML, format 1.
//!
//! Every value that validation can reject is `Spanned`, so a diagnostic can
//! point at it; unknown keys are refused by serde (`deny_unknown_fields`) with
//! their position. Nothing here is checked beyond TOML types: `validate` turns
//! a [`Spec`] into a `model::Model` and owns every rule. Enum-valued fields
//! stay strings here (validation reports an unknown word with the allowed
//! list); their schema lists the words of [`crate::choice`]. This module and the
//! bundle writer are the only ones that touch files (`load`).

pub mod reader;

use std::ops::Range;

use camino::Utf8Path;
use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::choice::{
    Arch, DatastoreKind, Deployment, Distribution, InstallMethod, InstallSource, Rke1Role, Role,
};
use crate::source::SourceFile;

/// A value with the byte range it came from.
pub type S<T> = Spanned<T>;

/// The whole plan file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct Spec {
    /// The plan format; 1 is the only one (optional).
    #[schemars(with = "Option<i64>", extend("enum" = [1]))]
    pub format: Option<S<i64>>,
    /// The cluster and the versions of the rollback.
    #[schemars(with = "Option<ClusterSpec>")]
    pub cluster: Option<S<ClusterSpec>>,
    /// Where the cluster keeps its state (default: embedded etcd).
    #[schemars(with = "Option<DatastoreSpec>")]
    pub datastore: Option<S<DatastoreSpec>>,
    /// The datastore backup that the rollback restores.
    #[schemars(with = "Option<SnapshotSpec>")]
    pub snapshot: Option<S<SnapshotSpec>>,
    /// The server token saved with the snapshot (strongly recommended: a wrong token after the restore is the most common failure).
    #[schemars(with = "Option<TokenSpec>")]
    pub token: Option<S<TokenSpec>>,
    /// How the target version is installed on the nodes.
    #[schemars(with = "Option<InstallSpec>")]
    pub install: Option<S<InstallSpec>>,
    /// The workstation step that drains the nodes before anything stops.
    #[schemars(with = "Option<DrainSpec>")]
    pub drain: Option<S<DrainSpec>>,
    /// RKE1 plans: the rke binary, cluster file and Rancher deployment.
    #[schemars(with = "Option<RkeSpec>")]
    pub rke: Option<S<RkeSpec>>,
    /// RKE1 disaster recovery: a dead node is replaced.
    #[schemars(with = "Option<RecoverySpec>")]
    pub recovery: Option<S<RecoverySpec>>,
    /// The hosts of the cluster.
    #[serde(default)]
    #[schemars(with = "Vec<NodeSpec>")]
    pub nodes: Vec<S<NodeSpec>>,
}

/// `[cluster]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct ClusterSpec {
    /// Cluster name, a DNS label; the operator types it to confirm destructive steps.
    #[schemars(with = "Option<String>", extend("pattern" = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    pub name: Option<S<String>>,
    /// "rke2" (default) or "rke1" (Rancher HA on RKE1).
    #[schemars(with = "Option<String>", extend("enum" = Distribution::NAMES, "default" = Distribution::default()))]
    pub distribution: Option<S<String>>,
    /// What the nodes run now, after the failed upgrade (e.g. "v1.29.4+rke2r1").
    #[schemars(with = "Option<String>")]
    pub current_version: Option<S<String>>,
    /// The version to roll back to; `--to` on the command line wins.
    #[schemars(with = "Option<String>")]
    pub target_version: Option<S<String>>,
    /// RKE2 data dir (absolute).
    #[schemars(with = "Option<String>", extend("default" = "/var/lib/rancher/rke2"))]
    pub data_dir: Option<S<String>>,
    /// "tar" (default) or "rpm": decides where rke2 and its scripts live.
    #[schemars(with = "Option<String>", extend("enum" = InstallMethod::NAMES, "default" = InstallMethod::default()))]
    pub install_method: Option<S<String>>,
    /// Tar installs only: the prefix install.sh put rke2 under (`bin/rke2`, `bin/rke2-killall.sh`, `lib/systemd/system/*.env`); install.sh uses /opt/rke2 when /usr/local is read-only or a mount point.
    #[schemars(with = "Option<String>", extend("default" = "/usr/local"))]
    pub install_prefix: Option<S<String>>,
    /// RKE2: true when Rancher provisions this cluster (rancher-system-agent on its nodes) and its Kubernetes version in Rancher is set to the target; without it, a node with Rancher's agent is refused in preflight.
    #[schemars(with = "Option<bool>", extend("default" = false))]
    pub rancher_managed: Option<S<bool>>,
}

/// `[datastore]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct DatastoreSpec {
    /// "etcd" (embedded, default), "sqlite", "postgres" or "mysql".
    #[schemars(with = "Option<String>", extend("enum" = DatastoreKind::NAMES, "default" = DatastoreKind::default()))]
    pub kind: Option<S<String>>,
    /// External database host (postgres, mysql).
    #[schemars(with = "Option<String>")]
    pub host: Option<S<String>>,
    /// External database TCP port.
    #[schemars(with = "Option<i64>", extend("minimum" = 1, "maximum" = 65535))]
    pub port: Option<S<i64>>,
    /// External database name.
    #[schemars(with = "Option<String>")]
    pub database: Option<S<String>>,
    /// External database user; the password is read at run time, never from the plan.
    #[schemars(with = "Option<String>")]
    pub user: Option<S<String>>,
    /// Where the database restore runs: "workstation" (default) or a node name.
    #[schemars(with = "Option<String>", extend("default" = "workstation"))]
    pub restore_on: Option<S<String>>,
}

/// `[snapshot]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct SnapshotSpec {
    /// Absolute path of the backup on the host that restores it (etcd snapshot, state.db copy, pg_dump -Fc archive or mysqldump file).
    #[schemars(with = "Option<String>")]
    pub path: Option<S<String>>,
    /// RKE1: the rke snapshot name, without .zip.
    #[schemars(with = "Option<String>")]
    pub name: Option<S<String>>,
    /// The version the cluster ran when the backup was taken; must have the target's MAJOR.MINOR.
    #[schemars(with = "Option<String>")]
    pub taken_on: Option<S<String>>,
    /// SHA-256 of the backup file (64 hex digits); every script that touches it checks it first.
    #[schemars(with = "Option<String>", extend("pattern" = "^[0-9a-fA-F]{64}$"))]
    pub sha256: Option<S<String>>,
    /// etcd only: the snapshot lives in S3 instead of on disk (then `path` is absent).
    #[schemars(with = "Option<S3Spec>")]
    pub s3: Option<S<S3Spec>>,
}

/// `[snapshot.s3]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct S3Spec {
    /// Object name (the snapshot file name).
    #[schemars(with = "Option<String>")]
    pub name: Option<S<String>>,
    /// Bucket.
    #[schemars(with = "Option<String>")]
    pub bucket: Option<S<String>>,
    /// Folder inside the bucket (optional).
    #[schemars(with = "Option<String>")]
    pub folder: Option<S<String>>,
    /// S3 endpoint (default s3.amazonaws.com); credentials are read from the environment at run time.
    #[schemars(with = "Option<String>")]
    pub endpoint: Option<S<String>>,
    /// S3 region (optional).
    #[schemars(with = "Option<String>")]
    pub region: Option<S<String>>,
    /// RKE2: plain http to the endpoint (`--etcd-s3-insecure`).
    #[schemars(with = "Option<bool>")]
    pub insecure: Option<S<bool>>,
    /// RKE2: do not verify the endpoint's certificate (`--etcd-s3-skip-ssl-verify`).
    #[schemars(with = "Option<bool>")]
    pub skip_ssl_verify: Option<S<bool>>,
    /// RKE2: the CA bundle, on the init server, that signed the endpoint's certificate (`--etcd-s3-endpoint-ca`).
    #[schemars(with = "Option<String>")]
    pub endpoint_ca: Option<S<String>>,
}

/// `[token]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct TokenSpec {
    /// The server token saved with the snapshot, on the restoring host (absolute path).
    #[schemars(with = "Option<String>")]
    pub file: Option<S<String>>,
    /// SHA-256 of the token; scripts compare without printing it.
    #[schemars(with = "Option<String>", extend("pattern" = "^[0-9a-fA-F]{64}$"))]
    pub sha256: Option<S<String>>,
}

/// `[install]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct InstallSpec {
    /// "online" (default: the upstream install script) or "airgap" (artifacts already on every node).
    #[schemars(with = "Option<String>", extend("enum" = InstallSource::NAMES, "default" = InstallSource::default()))]
    pub source: Option<S<String>>,
    /// Air-gap: folder with install.sh, the tarball, images and sha256sum-<arch>.txt of the target, same path on every node.
    #[schemars(with = "Option<String>")]
    pub artifacts: Option<S<String>>,
    /// "amd64" (default), "arm64" or "s390x".
    #[schemars(with = "Option<String>", extend("enum" = Arch::NAMES, "default" = Arch::default()))]
    pub arch: Option<S<String>>,
}

/// `[drain]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct DrainSpec {
    /// Drain before stopping (default true); skipped at run time with a message if the API is down.
    #[schemars(with = "Option<bool>", extend("default" = true))]
    pub enabled: Option<S<bool>>,
    /// Kubeconfig on the workstation (default: $KUBECONFIG).
    #[schemars(with = "Option<String>")]
    pub kubeconfig: Option<S<String>>,
    /// Drain timeout: a number followed by s, m or h.
    #[schemars(with = "Option<String>", extend("pattern" = "^[0-9]+[smh]$", "default" = "10m"))]
    pub timeout: Option<S<String>>,
}

/// `[rke]` (rke1 plans).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct RkeSpec {
    /// The rke binary on the workstation.
    #[schemars(with = "Option<String>")]
    pub binary: Option<S<String>>,
    /// The cluster file; its .rkestate must sit beside it.
    #[schemars(with = "Option<String>")]
    pub config: Option<S<String>>,
    /// The kubeconfig rke wrote.
    #[schemars(with = "Option<String>")]
    pub kubeconfig: Option<S<String>>,
    /// "cattle" (default) or "rancher" (helm-chart installs).
    #[schemars(with = "Option<String>", extend("enum" = Deployment::NAMES, "default" = Deployment::default()))]
    pub deployment: Option<S<String>>,
    /// The container whose image is set (default cattle-server).
    #[schemars(with = "Option<String>")]
    pub container: Option<S<String>>,
    /// The cluster file has `services.etcd.backup_config.s3backupconfig`: rke pulls the snapshot from S3 itself, and no node needs a local copy.
    #[schemars(with = "Option<bool>")]
    pub s3_backup: Option<S<bool>>,
}

/// `[recovery]` (rke1 disaster recovery).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct RecoverySpec {
    /// Address of the dead node: must not be in [[nodes]].
    #[schemars(with = "Option<String>")]
    pub failed: Option<S<String>>,
    /// Address of the new node: must be in [[nodes]].
    #[schemars(with = "Option<String>")]
    pub replacement: Option<S<String>>,
}

/// One `[[nodes]]` entry (RKE2 uses name/role/init, RKE1 address/hostname/user/roles).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct NodeSpec {
    /// RKE2: the host's name; scripts refuse to run anywhere else.
    #[schemars(with = "Option<String>")]
    pub name: Option<S<String>>,
    /// RKE2: "server" or "agent".
    #[schemars(with = "Option<String>", extend("enum" = Role::NAMES))]
    pub role: Option<S<String>>,
    /// RKE2: the server with no `server:` entry in its config.yaml (cluster-reset runs here); exactly one for etcd.
    #[schemars(with = "Option<bool>")]
    pub init: Option<S<bool>>,
    /// RKE2: the node's Kubernetes name, when `node-name:` in its config.yaml differs from the host name (drain and verify use it).
    #[schemars(with = "Option<String>")]
    pub node_name: Option<S<String>>,
    /// RKE1: the node's address.
    #[schemars(with = "Option<String>")]
    pub address: Option<S<String>>,
    /// RKE1: the host name the host guard checks (optional).
    #[schemars(with = "Option<String>")]
    pub hostname: Option<S<String>>,
    /// RKE1: the SSH user.
    #[schemars(with = "Option<String>")]
    pub user: Option<S<String>>,
    /// RKE1: "controlplane", "etcd" and/or "worker".
    #[schemars(with = "Option<Vec<String>>", extend("items" = {"enum": Rke1Role::NAMES}))]
    pub roles: Option<S<Vec<S<String>>>>,
}

/// Parses plan text. A TOML or shape error (bad syntax, unknown key, wrong
/// type) is returned as the reader gives it; `validate` turns it into the
/// diagnostic an operator sees, so that wording stays with the rules.
pub fn parse(source: &SourceFile) -> Result<Spec, toml::de::Error> {
    parse_inspecting(source, Reader::Fast, |_| {})
}

/// Which reader [`parse_inspecting`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The fast reader ([`reader`]) first, the toml crate when it declines:
    /// what rewind always uses.
    Fast,
    /// The toml crate only (tests compare both).
    Toml,
}

/// [`parse`], showing every string value of the document with its span to
/// `inspect` before it is returned: rules about every string of the plan,
/// whatever its key, run on them. Only the readers touch the text: the fast
/// one for the plain TOML plans are written in, else the toml crate, whose
/// errors are the ones reported.
pub fn parse_inspecting(
    source: &SourceFile,
    with: Reader,
    inspect: impl FnOnce(&mut dyn Iterator<Item = (&str, Range<usize>)>),
) -> Result<Spec, toml::de::Error> {
    use serde::Deserialize as _;
    if with == Reader::Fast
        && let Some(doc) = reader::Document::parse(&source.text)
        && let Some(spec) = doc.spec()
    {
        inspect(&mut doc.strings());
        return Ok(spec);
    }
    let root = toml::de::DeTable::parse(&source.text)?;
    inspect(&mut toml_strings(root.get_ref()));
    Spec::deserialize(toml::de::Deserializer::from(root))
}

/// Every string value of a document the toml crate read, with its span.
fn toml_strings<'t>(
    root: &'t toml::de::DeTable<'_>,
) -> impl Iterator<Item = (&'t str, Range<usize>)> {
    use toml::de::DeValue;
    let mut stack: Vec<(&DeValue<'_>, Range<usize>)> =
        root.iter().map(|(_, v)| (v.get_ref(), v.span())).collect();
    std::iter::from_fn(move || {
        while let Some((value, span)) = stack.pop() {
            match value {
                DeValue::String(s) => return Some((s.as_ref(), span)),
                DeValue::Array(a) => stack.extend(a.iter().map(|v| (v.get_ref(), v.span()))),
                DeValue::Table(t) => stack.extend(t.iter().map(|(_, v)| (v.get_ref(), v.span()))),
                _ => {}
            }
        }
        None
    })
}

/// The largest plan rewind reads (16 MiB; a 5,000-node plan is about
/// 200 KiB). docs/plan-format.md states it.
pub const MAX_PLAN_BYTES: u64 = 16 * 1024 * 1024;

/// Reads a plan file from disk: the only place input files are read. Only a
/// regular file is read (a FIFO, `/dev/zero` or a socket is refused before a
/// byte is read, so nothing can block or run forever), and at most
/// [`MAX_PLAN_BYTES`]. Bytes that are not UTF-8 are kept for validation to
/// point at.
pub fn load(path: &Utf8Path) -> std::io::Result<SourceFile> {
    let bytes = crate::bundle::read_capped(path, MAX_PLAN_BYTES)?;
    Ok(SourceFile::from_bytes(path.as_str(), bytes))
}
