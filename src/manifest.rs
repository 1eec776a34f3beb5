//! `plan.json`: the machine-readable procedure of a bundle — cluster,
//! versions and the ordered steps with their hosts, scripts and flags.
//!
//! [`Manifest`] is the one type of that file: [`crate::render::manifest`]
//! builds it from a plan and [`Manifest::to_json`] prints it, and everything
//! that reads a bundle back reads it ([`Manifest::from_json`]): `verify`
//! (every script it names is there), `--force` (is this folder rewind's),
//! and the review tools. It depends on nothing else in the crate, so every
//! module may use it. A bundle compiled in memory and one read from a folder are
//! summarised by the same code, because both go through the `plan.json`
//! text.

use serde::{Deserialize, Serialize};

/// The name of the file in a bundle.
pub const FILE: &str = "plan.json";

/// The rewind version written into `plan.json` (and only there, so that a
/// newer rewind emitting the same procedure emits the same scripts).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The plan format this build reads.
pub const FORMAT: u32 = 1;

/// A bundle's `plan.json`. The fields are written in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The rewind that wrote the bundle.
    pub rewind_version: String,
    /// The plan format ([`FORMAT`]).
    pub format: u32,
    /// sha256 of the plan text.
    pub plan_sha256: String,
    /// Cluster name.
    pub cluster: String,
    /// `rke2` or `rke1`.
    pub distribution: String,
    /// Datastore and install description.
    pub scenario: String,
    /// Version now.
    pub from: String,
    /// Version after the rollback.
    pub to: String,
    /// Ordered steps.
    pub steps: Vec<ManifestStep>,
}

/// One step of `plan.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestStep {
    /// 1-based position.
    pub number: usize,
    /// Short id (`restore`, `start-agents`, …).
    pub id: String,
    /// Runbook title.
    pub title: String,
    /// Hosts, in run order (`workstation` or node names).
    #[serde(rename = "where")]
    pub hosts: Vec<String>,
    /// Script paths, one per host, same order.
    pub scripts: Vec<String>,
    /// The hosts may run it at the same time.
    pub parallel: bool,
    /// It destroys or replaces data.
    pub destructive: bool,
}

impl Manifest {
    /// The text of `plan.json`: pretty-printed, with a final newline.
    pub fn to_json(&self) -> String {
        let mut s =
            serde_json::to_string_pretty(self).expect("bug in rewind: plan.json serialises");
        s.push('\n');
        s
    }

    /// Reads the text of a `plan.json`: every field there, and one script
    /// per host in every step.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("{FILE}: not UTF-8: {e}"))?;
        let manifest: Manifest = serde_json::from_str(text).map_err(|e| format!("{FILE}: {e}"))?;
        for s in &manifest.steps {
            if s.hosts.len() != s.scripts.len() {
                return Err(format!(
                    "{FILE}: step {} lists {} hosts and {} scripts",
                    s.number,
                    s.hosts.len(),
                    s.scripts.len()
                ));
            }
        }
        Ok(manifest)
    }
}

impl ManifestStep {
    /// `(host, script path)` pairs in run order.
    pub fn runs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.hosts
            .iter()
            .map(String::as_str)
            .zip(self.scripts.iter().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            rewind_version: "0.1.0".into(),
            format: FORMAT,
            plan_sha256: "0".repeat(64),
            cluster: "c".into(),
            distribution: "rke2".into(),
            scenario: "s".into(),
            from: "v2".into(),
            to: "v1".into(),
            steps: vec![ManifestStep {
                number: 1,
                id: "stop".into(),
                title: "Stop".into(),
                hosts: vec!["a".into(), "b".into()],
                scripts: vec!["nodes/a/01-stop.sh".into(), "nodes/b/01-stop.sh".into()],
                parallel: true,
                destructive: false,
            }],
        }
    }

    #[test]
    fn reads_back_what_it_writes_with_hosts_under_where() {
        let m = manifest();
        let text = m.to_json();
        assert!(text.starts_with("{\n  \"rewind_version\": \"0.1.0\",\n  \"format\": 1,\n"));
        assert!(text.contains("\"where\": [\n"), "{text}");
        assert!(text.ends_with("}\n"));
        assert_eq!(Manifest::from_json(text.as_bytes()), Ok(m));
    }

    #[test]
    fn a_step_needs_one_script_per_host() {
        let mut m = manifest();
        m.steps[0].scripts.pop();
        let err = Manifest::from_json(m.to_json().as_bytes()).unwrap_err();
        assert!(err.contains("step 1 lists 2 hosts and 1 scripts"), "{err}");
        assert!(Manifest::from_json(b"{}").is_err());
    }
}
