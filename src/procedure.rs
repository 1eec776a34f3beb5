//! The procedure as `plan.json` states it: cluster, versions and the ordered
//! steps with their hosts and flags. This is what the review tools read
//! (`diff`, the Mermaid diagram), whether the bundle was compiled in memory
//! or read back from a folder: both go through the `plan.json` text, so a
//! bundle on disk and a fresh compile are summarised by the same code.

use serde::Deserialize;

use crate::bundle::{Bundle, MARKER};
use crate::plan::Plan;
use crate::render;

/// A bundle's `plan.json`, the fields the review tools use.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Procedure {
    /// The rewind that wrote the bundle.
    pub rewind_version: String,
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
    pub steps: Vec<StepSummary>,
}

/// One step of `plan.json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StepSummary {
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

impl Procedure {
    /// The procedure of a freshly planned bundle.
    pub fn of_plan(plan: &Plan) -> Self {
        serde_json::from_str(&render::plan_json(plan))
            .expect("bug in rewind: plan.json reads back as a procedure")
    }

    /// The procedure a bundle's `plan.json` describes.
    pub fn of_bundle(bundle: &Bundle) -> Result<Self, String> {
        let file = bundle
            .files
            .get(MARKER)
            .ok_or_else(|| format!("no {MARKER}: not a rewind bundle"))?;
        let proc: Procedure =
            serde_json::from_slice(&file.bytes).map_err(|e| format!("{MARKER}: {e}"))?;
        for s in &proc.steps {
            if s.hosts.len() != s.scripts.len() {
                return Err(format!(
                    "{MARKER}: step {} lists {} hosts and {} scripts",
                    s.number,
                    s.hosts.len(),
                    s.scripts.len()
                ));
            }
        }
        Ok(proc)
    }
}

impl StepSummary {
    /// `(host, script path)` pairs in run order.
    pub fn runs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.hosts
            .iter()
            .map(String::as_str)
            .zip(self.scripts.iter().map(String::as_str))
    }
}

/// Hosts for a table cell or a label: all of them when few, else the first
/// three, an ellipsis, the last and the count (a 5,000-node cluster must
/// stay readable).
pub fn hosts_brief(hosts: &[String]) -> String {
    const FEW: usize = 6;
    if hosts.len() <= FEW {
        return hosts.join(", ");
    }
    format!(
        "{}, … {} ({} hosts)",
        hosts[..3].join(", "),
        hosts[hosts.len() - 1],
        hosts.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_brief_shortens_long_lists() {
        let few: Vec<String> = ["a", "b"].map(String::from).to_vec();
        assert_eq!(hosts_brief(&few), "a, b");
        let many: Vec<String> = (1..=5000).map(|i| format!("agent-{i}")).collect();
        assert_eq!(
            hosts_brief(&many),
            "agent-1, agent-2, agent-3, … agent-5000 (5000 hosts)"
        );
    }

    #[test]
    fn a_bundle_without_plan_json_is_not_a_bundle() {
        let b = Bundle::default();
        assert!(
            Procedure::of_bundle(&b)
                .unwrap_err()
                .contains("not a rewind bundle")
        );
    }
}
