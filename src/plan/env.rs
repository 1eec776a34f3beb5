//! The `REWIND_*` environment variables a bundle's scripts honour, with the
//! runbook's wording. Every script reads the common ones; the others are
//! listed only when an operation of the plan reads them (`Func::env`), so a
//! runbook never documents a knob its scripts do not have.

use std::collections::BTreeSet;

use serde::Serialize;

use super::Step;

/// One variable and what it does.
#[derive(Debug, Clone, Serialize)]
pub struct EnvVar {
    /// The variable (with its form, e.g. `REWIND_HOST=<node>`).
    pub name: &'static str,
    /// What it does, for the runbook table.
    pub effect: &'static str,
}

/// Read by every script (templates/lib/core.sh).
const COMMON: &[(&str, &str)] = &[
    (
        "REWIND_DRY_RUN=1",
        "run every check, print each command that would change the host, change nothing",
    ),
    (
        "REWIND_YES=1",
        "answer the \"type the cluster name\" question (needed when there is no terminal)",
    ),
    (
        "REWIND_FORCE=1",
        "run a step again although its done-marker says it finished",
    ),
    (
        "REWIND_HOST=<node>",
        "override the host-name check; must equal the script's node exactly",
    ),
    (
        "REWIND_LOG_DIR, REWIND_STATE_DIR",
        "journal and done-marker folders (default `/var/log/rewind`, `/var/lib/rewind`)",
    ),
    (
        "REWIND_POLL_INTERVAL",
        "seconds between two polls of a bounded wait (default 5)",
    ),
];

/// Read by some operations; keyed by the name `Func::env` returns.
const SPECIFIC: &[(&str, &str, &str)] = &[
    (
        "REWIND_RESET_TIMEOUT",
        "REWIND_RESET_TIMEOUT",
        "seconds cluster-reset may take (default 1800)",
    ),
    (
        "REWIND_START_TIMEOUT",
        "REWIND_START_TIMEOUT",
        "seconds to wait for a service to become active (default 900)",
    ),
    (
        "REWIND_STOP_TIMEOUT",
        "REWIND_STOP_TIMEOUT",
        "seconds to wait for the cluster's processes (executables under the data dir or /run/k3s, and their pods) to exit after the stop step kills them (default 30)",
    ),
    (
        "REWIND_VERIFY_TIMEOUT",
        "REWIND_VERIFY_TIMEOUT",
        "seconds to wait for every node to be Ready at the target (default 900)",
    ),
    (
        "REWIND_ROLLOUT_TIMEOUT",
        "REWIND_ROLLOUT_TIMEOUT",
        "seconds to wait for the Rancher deployment's rollout (default 600)",
    ),
    (
        "REWIND_INSTALL_SCRIPT_URL",
        "REWIND_INSTALL_SCRIPT_URL",
        "where the online install step fetches the install script from (a mirror)",
    ),
    (
        "REWIND_S3CFG",
        "REWIND_S3CFG=<file>",
        "an s3cmd configuration file for the snapshot download (e.g. `use_https = False` for a plain-http on-premises S3)",
    ),
];

/// The variables a plan's scripts read, common ones first, then in table order.
pub fn variables(steps: &[Step]) -> Vec<EnvVar> {
    let used: BTreeSet<&str> = steps
        .iter()
        .flat_map(|s| &s.scripts)
        .flat_map(|s| s.preflight.iter().chain(&s.actions))
        .flat_map(|op| op.func.env().iter().copied())
        .collect();
    let mut out: Vec<EnvVar> = COMMON
        .iter()
        .map(|(name, effect)| EnvVar { name, effect })
        .collect();
    for (key, name, effect) in SPECIFIC {
        if used.contains(key) {
            out.push(EnvVar { name, effect });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Func;

    #[test]
    fn every_operation_variable_is_documented() {
        // A variable an operation reads but the table does not describe would
        // silently vanish from the runbook.
        let all = [
            Func::ClusterReset,
            Func::StartUnit,
            Func::StopRke2,
            Func::VerifyCluster,
            Func::RancherVerify,
            Func::InstallOnline,
            Func::RancherSetImage,
            Func::Rke1SnapshotFromS3,
        ];
        for f in all {
            for v in f.env() {
                assert!(
                    SPECIFIC.iter().any(|(k, _, _)| k == v),
                    "{v} of {f:?} is not in SPECIFIC"
                );
            }
        }
    }
}
