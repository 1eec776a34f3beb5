//! The planner: turns a validated [`Model`] into the ordered steps of a
//! rollback, each with the scripts that run it and the facts its runbook
//! text is worded from.
//!
//! Everything a script will do is decided here, as a list of [`Op`]s; the
//! renderer only prints. Everything the runbook says is decided here too, as
//! typed [`facts`]; the templates under `templates/runbook/` word it.
//! Procedures live in one file per family (`rke2.rs`, `rke1.rs`), sharing
//! the [`Builder`] that numbers steps and names files.

mod builder;
pub mod env;
pub mod facts;
pub mod ops;
mod rke1;
mod rke2;

use serde::Serialize;

use crate::model::{Kind, Model};
pub use builder::{Builder, script, suffix_of};
pub use facts::{Aside, Facts, ManualCheck, StepFacts};
pub use ops::{Func, Op};
pub use rke2::s3_flags;

/// The whole procedure.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Cluster name.
    pub cluster: String,
    /// sha256 of the plan text.
    pub plan_sha256: String,
    /// `rewind-<first 8 of plan sha256>`: the suffix of everything moved aside.
    pub suffix: String,
    /// `rke2` or `rke1`.
    pub distribution: &'static str,
    /// Human description of the datastore / scenario (also in `plan.json`).
    pub scenario: String,
    /// Version now.
    pub from: String,
    /// Version after the rollback.
    pub to: String,
    /// Preconditions proved at compile time.
    pub checked: Vec<String>,
    /// Warnings the operator accepted by compiling anyway.
    pub warnings: Vec<String>,
    /// Ordered steps.
    pub steps: Vec<Step>,
    /// What the scripts move aside, for the runbook's cleanup section.
    pub moved_aside: Vec<Aside>,
    /// Things an operator must check by hand (facts rewind cannot prove).
    pub manual_checks: Vec<ManualCheck>,
    /// What the runbook's words share across steps.
    pub facts: Facts,
    /// The `REWIND_*` variables the scripts read.
    pub env: Vec<env::EnvVar>,
    /// Constants of the runtime library beyond the cluster and the plan's
    /// sha256, `(NAME, value)`: the names the shared RKE2/K3s fragments read
    /// instead of literals ([`crate::model::Flavor`]); none for RKE1.
    pub constants: Vec<(&'static str, String)>,
}

/// One step of the procedure; runs on one or more hosts.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// 1-based, global: the `NN` of every script of this step.
    pub number: usize,
    /// Short id used in file names (`restore`, `start-agents`, …).
    pub id: &'static str,
    /// Title for the runbook, the scripts' headers and `plan.json`.
    pub title: String,
    /// The hosts may run it at the same time.
    pub parallel: bool,
    /// It destroys or replaces data (asks for confirmation).
    pub destructive: bool,
    /// What it moves or replaces, for the runbook's steps table (empty
    /// when it is not destructive).
    pub destroys: String,
    /// What its runbook section is worded from (and by which template).
    pub facts: StepFacts,
    /// One script per host, in plan order.
    // Not serialized: templates get the step through serde, and at 5,000
    // nodes a copy of every script's fields as template values was a quarter
    // of compile's memory; they get `StepView`'s host list and count instead.
    #[serde(skip)]
    pub scripts: Vec<Script>,
    /// The point of no return: from here, going back loses what the
    /// restored cluster wrote.
    pub no_return: bool,
}

/// Where a script runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Host {
    /// The operator's machine with kubectl / rke / database clients.
    Workstation,
    /// A cluster node, by name.
    Node(String),
}

impl Host {
    /// The name printed in headers and the journal.
    pub fn name(&self) -> &str {
        match self {
            Host::Workstation => "workstation",
            Host::Node(n) => n,
        }
    }
}

/// One generated script.
#[derive(Debug, Clone, Serialize)]
pub struct Script {
    /// Where it runs.
    pub host: Host,
    /// Path inside the bundle (`nodes/<node>/NN-<id>.sh`, `workstation/NN-<id>.sh`).
    pub path: String,
    /// Extra addresses the host guard accepts (RKE1 nodes).
    pub addresses: Vec<String>,
    /// Node scripts require root.
    pub needs_root: bool,
    /// Read-only checks.
    // Not serialized: only the script template prints ops (render.rs hands
    // them over itself); the runbook and explain templates, which get the
    // plan through serde, would otherwise copy every op of every host
    // (about 50 MB at 5,000 nodes: docs/performance.md).
    #[serde(skip)]
    pub preflight: Vec<Op>,
    /// The changes.
    #[serde(skip)]
    pub actions: Vec<Op>,
}

/// Plans the procedure for a validated model.
pub fn plan(model: &Model) -> Plan {
    match &model.kind {
        Kind::Rke2(r) => rke2::plan(model, r),
        Kind::Rke1(r) => rke1::plan(model, r),
    }
}
