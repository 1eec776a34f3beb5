//! The plan as the user wrote it: a serde mirror of the TOML, format 1.
//!
//! Every value that validation can reject is `Spanned`, so a diagnostic can
//! point at it; unknown keys are refused by serde (`deny_unknown_fields`) with
//! their position. Nothing here is checked beyond TOML types: `validate` turns
//! a [`Spec`] into a `model::Model` and owns every rule. This module and the
//! bundle writer are the only ones that touch files (`load`).

use camino::Utf8Path;
use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::source::SourceFile;

/// A value with the byte range it came from.
pub type S<T> = Spanned<T>;

/// The whole plan file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct Spec {
    pub format: Option<S<i64>>,
    pub cluster: Option<S<ClusterSpec>>,
    pub datastore: Option<S<DatastoreSpec>>,
    pub snapshot: Option<S<SnapshotSpec>>,
    pub token: Option<S<TokenSpec>>,
    pub install: Option<S<InstallSpec>>,
    pub drain: Option<S<DrainSpec>>,
    pub rke: Option<S<RkeSpec>>,
    pub recovery: Option<S<RecoverySpec>>,
    #[serde(default)]
    pub nodes: Vec<S<NodeSpec>>,
}

/// `[cluster]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct ClusterSpec {
    pub name: Option<S<String>>,
    pub distribution: Option<S<String>>,
    pub current_version: Option<S<String>>,
    pub target_version: Option<S<String>>,
    pub data_dir: Option<S<String>>,
    pub install_method: Option<S<String>>,
}

/// `[datastore]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct DatastoreSpec {
    pub kind: Option<S<String>>,
    pub host: Option<S<String>>,
    pub port: Option<S<i64>>,
    pub database: Option<S<String>>,
    pub user: Option<S<String>>,
    pub restore_on: Option<S<String>>,
}

/// `[snapshot]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct SnapshotSpec {
    pub path: Option<S<String>>,
    pub name: Option<S<String>>,
    pub taken_on: Option<S<String>>,
    pub sha256: Option<S<String>>,
    pub s3: Option<S<S3Spec>>,
}

/// `[snapshot.s3]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct S3Spec {
    pub name: Option<S<String>>,
    pub bucket: Option<S<String>>,
    pub folder: Option<S<String>>,
    pub endpoint: Option<S<String>>,
    pub region: Option<S<String>>,
}

/// `[token]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct TokenSpec {
    pub file: Option<S<String>>,
    pub sha256: Option<S<String>>,
}

/// `[install]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct InstallSpec {
    pub source: Option<S<String>>,
    pub artifacts: Option<S<String>>,
    pub arch: Option<S<String>>,
}

/// `[drain]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct DrainSpec {
    pub enabled: Option<S<bool>>,
    pub kubeconfig: Option<S<String>>,
    pub timeout: Option<S<String>>,
}

/// `[rke]` (rke1 plans).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct RkeSpec {
    pub binary: Option<S<String>>,
    pub config: Option<S<String>>,
    pub kubeconfig: Option<S<String>>,
    pub deployment: Option<S<String>>,
    pub container: Option<S<String>>,
}

/// `[recovery]` (rke1 disaster recovery).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct RecoverySpec {
    pub failed: Option<S<String>>,
    pub replacement: Option<S<String>>,
}

/// One `[[nodes]]` entry (RKE2 uses name/role/init, RKE1 address/hostname/user/roles).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(missing_docs)]
pub struct NodeSpec {
    pub name: Option<S<String>>,
    pub role: Option<S<String>>,
    pub init: Option<S<bool>>,
    pub address: Option<S<String>>,
    pub hostname: Option<S<String>>,
    pub user: Option<S<String>>,
    pub roles: Option<S<Vec<S<String>>>>,
}

/// Parses plan text. A TOML or shape error (bad syntax, unknown key, wrong
/// type) becomes one `syntax` diagnostic pointing at its span.
pub fn parse(source: &SourceFile) -> Result<Spec, Diagnostic> {
    toml::from_str::<Spec>(&source.text).map_err(|e| {
        let message = e.message().trim_end().to_owned();
        let help = if message.starts_with("unknown field") {
            "remove the key or fix its spelling; docs/plan-format.md lists every key"
        } else {
            "fix the TOML at this position; docs/plan-format.md lists every key and its type"
        };
        Diagnostic::error("syntax", e.span(), message).help(help)
    })
}

/// Reads a plan file from disk: the only place input files are read.
pub fn load(path: &Utf8Path) -> std::io::Result<SourceFile> {
    let text = std::fs::read_to_string(path)?;
    Ok(SourceFile::new(path.as_str(), text))
}
