//! Numbers steps and names their scripts, so every procedure lays out its
//! bundle the same way: `NN` is the global step number, so `ls` order is run
//! order on every host.

use super::{Aside, Facts, Host, ManualCheck, Plan, Script, Step, StepFacts};
use crate::model::Model;

/// Accumulates steps for one plan.
pub struct Builder {
    plan: Plan,
}

impl Builder {
    /// Starts an empty plan; `facts` are what the words of its steps share.
    pub fn new(
        model: &Model,
        distribution: &'static str,
        scenario: String,
        from: String,
        to: String,
        facts: Facts,
    ) -> Self {
        Self {
            plan: Plan {
                cluster: model.cluster.clone(),
                plan_sha256: model.plan_sha256.clone(),
                suffix: suffix(model),
                distribution,
                scenario,
                from,
                to,
                checked: model.checked.clone(),
                warnings: model.warnings.clone(),
                steps: Vec::new(),
                moved_aside: Vec::new(),
                manual_checks: Vec::new(),
                facts,
                env: Vec::new(),
                constants: Vec::new(),
            },
        }
    }

    /// Adds a step. `scripts` are (host, preflight, actions); paths are
    /// derived. `facts` name the template that words its runbook section
    /// and hold what only those words need.
    pub fn step(
        &mut self,
        id: &'static str,
        title: impl Into<String>,
        parallel: bool,
        destructive: bool,
        facts: StepFacts,
        scripts: Vec<Script>,
    ) {
        let number = self.plan.steps.len() + 1;
        let scripts = scripts
            .into_iter()
            .map(|mut s| {
                s.path = match &s.host {
                    Host::Workstation => format!("workstation/{number:02}-{id}.sh"),
                    Host::Node(n) => format!("nodes/{n}/{number:02}-{id}.sh"),
                };
                s
            })
            .collect();
        self.plan.steps.push(Step {
            number,
            id,
            title: title.into(),
            parallel,
            destructive,
            destroys: String::new(),
            facts,
            scripts,
            no_return: false,
        });
    }

    /// Says what the step just added moves or replaces (the runbook's
    /// "destroys data" column); only destructive steps destroy anything.
    pub fn destroys(&mut self, what: impl Into<String>) {
        if let Some(s) = self.plan.steps.last_mut() {
            debug_assert!(s.destructive, "step {} is not destructive", s.id);
            s.destroys = what.into();
        }
    }

    /// Marks the step just added as the point of no return: after it, going
    /// back loses what the cluster wrote since.
    pub fn no_return(&mut self) {
        if let Some(s) = self.plan.steps.last_mut() {
            s.no_return = true;
        }
    }

    /// Records something moved aside or saved, for the cleanup section.
    pub fn aside(&mut self, aside: Aside) {
        self.plan.moved_aside.push(aside);
    }

    /// Where `from` is moved aside to: `from.SUFFIX`.
    pub fn aside_path(&self, from: &str) -> String {
        format!("{from}.{}", self.plan.suffix)
    }

    /// Records a check the operator must make by hand.
    pub fn manual(&mut self, check: ManualCheck) {
        self.plan.manual_checks.push(check);
    }

    /// Adds a constant of the runtime library (`NAME=value`, quoted).
    pub fn constant(&mut self, name: &'static str, value: impl Into<String>) {
        self.plan.constants.push((name, value.into()));
    }

    /// The finished plan.
    pub fn finish(mut self) -> Plan {
        self.plan.env = super::env::variables(&self.plan.steps);
        self.plan
    }
}

/// `rewind-<first 8 of plan sha256>`: the suffix of everything a plan's
/// scripts move aside.
pub fn suffix(model: &Model) -> String {
    suffix_of(&model.plan_sha256)
}

/// The suffix of a plan, from its sha256 (hex); what the runtime library's
/// `rw_main` computes from `REWIND_PLAN`, and `diff` from plan.json.
pub fn suffix_of(plan_sha256: &str) -> String {
    format!("rewind-{}", plan_sha256.get(..8).unwrap_or(plan_sha256))
}

/// A script for a host, path filled in by [`Builder::step`].
pub fn script(
    host: Host,
    needs_root: bool,
    preflight: Vec<super::Op>,
    actions: Vec<super::Op>,
) -> Script {
    Script {
        host,
        path: String::new(),
        addresses: Vec::new(),
        needs_root,
        preflight,
        actions,
    }
}
