//! Numbers steps and names their scripts, so every procedure lays out its
//! bundle the same way: `NN` is the global step number, so `ls` order is run
//! order on every host.

use super::{Aside, Host, Plan, Script, Step, StepDoc};
use crate::model::Model;

/// Accumulates steps for one plan.
pub struct Builder {
    plan: Plan,
}

impl Builder {
    /// Starts an empty plan.
    pub fn new(
        model: &Model,
        distribution: &'static str,
        scenario: String,
        from: String,
        to: String,
    ) -> Self {
        Self {
            plan: Plan {
                cluster: model.cluster.clone(),
                plan_sha256: model.plan_sha256.clone(),
                suffix: format!("rewind-{}", &model.plan_sha256[..8]),
                distribution,
                scenario,
                from,
                to,
                checked: model.checked.clone(),
                warnings: model.warnings.clone(),
                steps: Vec::new(),
                moved_aside: Vec::new(),
                manual_checks: Vec::new(),
                verification: Vec::new(),
                env: Vec::new(),
            },
        }
    }

    /// The suffix for moved-aside paths.
    pub fn suffix(&self) -> &str {
        &self.plan.suffix
    }

    /// Adds a step. `scripts` are (host, preflight, actions); paths are derived.
    pub fn step(
        &mut self,
        id: &'static str,
        title: impl Into<String>,
        parallel: bool,
        destructive: bool,
        doc: StepDoc,
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
            doc,
            scripts,
            way_back: Vec::new(),
            no_return: false,
        });
    }

    /// How to go back to the version the cluster ran before, once the step
    /// just added has run (the runbook's abort advice).
    pub fn way_back(&mut self, text: impl Into<String>) {
        if let Some(s) = self.plan.steps.last_mut() {
            s.way_back.push(text.into());
        }
    }

    /// Marks the step just added as the point of no return: after it, going
    /// back loses what the cluster wrote since.
    pub fn no_return(&mut self) {
        if let Some(s) = self.plan.steps.last_mut() {
            s.no_return = true;
        }
    }

    /// Records something moved aside, for the cleanup section.
    pub fn aside(
        &mut self,
        hosts: impl Into<String>,
        from: impl Into<String>,
        note: impl Into<String>,
    ) {
        let from = from.into();
        let to = format!("{from}.{}", self.plan.suffix);
        self.plan.moved_aside.push(Aside {
            hosts: hosts.into(),
            from,
            to,
            note: note.into(),
        });
    }

    /// Records something kept under a name of its own (not `from.SUFFIX`),
    /// for the cleanup section: a copy saved before a step replaces it.
    pub fn saved(
        &mut self,
        hosts: impl Into<String>,
        from: impl Into<String>,
        to: impl Into<String>,
        note: impl Into<String>,
    ) {
        self.plan.moved_aside.push(Aside {
            hosts: hosts.into(),
            from: from.into(),
            to: to.into(),
            note: note.into(),
        });
    }

    /// Records a check the operator must make by hand.
    pub fn manual(&mut self, text: impl Into<String>) {
        self.plan.manual_checks.push(text.into());
    }

    /// Records something moved aside to a place of another name (by a
    /// command that is not rewind's, such as cluster-reset).
    pub fn aside_to(
        &mut self,
        hosts: impl Into<String>,
        from: impl Into<String>,
        to: impl Into<String>,
        note: impl Into<String>,
    ) {
        self.plan.moved_aside.push(Aside {
            hosts: hosts.into(),
            from: from.into(),
            to: to.into(),
            note: note.into(),
        });
    }

    /// Adds a line to the runbook's Verification section.
    pub fn verification(&mut self, text: impl Into<String>) {
        self.plan.verification.push(text.into());
    }

    /// The finished plan.
    pub fn finish(mut self) -> Plan {
        self.plan.env = super::env::variables(&self.plan.steps);
        self.plan
    }
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
