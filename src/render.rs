//! Plan → bundle: every script, the README runbook, `plan.json`, `verify.sh`
//! and `SHA256SUMS`. Pure: no I/O, so it is unit-testable and the same plan
//! always renders the same bytes.
//!
//! [`each_file`] hands the files over one at a time, so that `compile` can
//! write each as soon as it is rendered and never holds a bundle of thousands
//! of hosts in memory; [`bundle`] collects them for tests and tools.

use std::collections::HashMap;

use minijinja::{Value, context};
use serde::Serialize;

use crate::bundle::Bundle;
use crate::manifest::{self, Manifest, ManifestStep};
use crate::plan::{Plan, Script, Step};
use crate::templates::{self, trusted};

/// The anchor of a step's README section.
pub fn anchor(step: &Step) -> String {
    format!("step-{:02}-{}", step.number, step.id)
}

/// The `plan.json` of a plan, as this rewind writes it.
pub fn manifest(plan: &Plan) -> Manifest {
    Manifest {
        rewind_version: manifest::VERSION.to_owned(),
        format: manifest::FORMAT,
        plan_sha256: plan.plan_sha256.clone(),
        cluster: plan.cluster.clone(),
        distribution: plan.distribution.to_owned(),
        scenario: plan.scenario.clone(),
        from: plan.from.clone(),
        to: plan.to.clone(),
        steps: plan
            .steps
            .iter()
            .map(|s| ManifestStep {
                number: s.number,
                id: s.id.to_owned(),
                title: s.title.clone(),
                hosts: s.scripts.iter().map(|x| x.host.name().to_owned()).collect(),
                scripts: s.scripts.iter().map(|x| x.path.clone()).collect(),
                parallel: s.parallel,
                destructive: s.destructive,
            })
            .collect(),
    }
}

/// The text of `plan.json`.
pub fn plan_json(plan: &Plan) -> String {
    manifest(plan).to_json()
}

/// Renders one script.
pub fn script(plan: &Plan, step: &Step, script: &Script) -> Result<String, minijinja::Error> {
    let env = templates::environment();
    script_with(&env, plan, step, script, library(&script.fragments()))
}

/// The library text of a script: core, then its fragments, marked trusted.
fn library(fragments: &[&str]) -> Value {
    let mut library = String::new();
    library.push_str(templates::library("core"));
    for f in fragments {
        library.push('\n');
        library.push_str(templates::library(f));
    }
    trusted(library)
}

fn script_with(
    env: &minijinja::Environment<'_>,
    plan: &Plan,
    step: &Step,
    script: &Script,
    library: Value,
) -> Result<String, minijinja::Error> {
    env.get_template("script.sh")?.render(context! {
        plan_sha256 => plan.plan_sha256.as_str(),
        cluster => plan.cluster.as_str(),
        suffix => plan.suffix.as_str(),
        step => format!("{:02}-{}", step.number, step.id),
        number => step.number,
        total => plan.steps.len(),
        title => step.title.as_str(),
        host => script.host.name(),
        addresses => script.addresses.join(" "),
        needs_root => u8::from(script.needs_root),
        destructive => u8::from(step.destructive),
        readme => format!("README.md#{}", anchor(step)),
        library => library,
        preflight => Value::from(minijinja::value::Serde(&script.preflight)),
        actions => Value::from(minijinja::value::Serde(&script.actions)),
    })
}

/// Renders every file of the bundle but `SHA256SUMS` (which is over the
/// others: [`Bundle::seal`], [`crate::bundle::Writer::seal`]) and hands each
/// to `emit` as `(path, text, mode)` as soon as it is rendered.
pub fn each_file<E: From<minijinja::Error>>(
    plan: &Plan,
    mut emit: impl FnMut(String, String, u32) -> Result<(), E>,
) -> Result<(), E> {
    let env = templates::environment();
    // Thousands of scripts share a handful of fragment sets: build each
    // library text once and share it (a `Value` string is reference-counted).
    let mut libraries: HashMap<Vec<&'static str>, Value> = HashMap::new();
    for step in &plan.steps {
        for s in &step.scripts {
            let lib = libraries
                .entry(s.fragments())
                .or_insert_with_key(|f| library(f))
                .clone();
            emit(
                s.path.clone(),
                script_with(&env, plan, step, s, lib)?,
                0o755,
            )?;
        }
    }
    emit("README.md".into(), readme(&env, plan)?, 0o644)?;
    emit("plan.json".into(), plan_json(plan), 0o644)?;
    emit(
        "verify.sh".into(),
        env.get_template("verify.sh")?.render(context! {})?,
        0o755,
    )?;
    Ok(())
}

/// Renders the whole bundle in memory.
pub fn bundle(plan: &Plan) -> Result<Bundle, minijinja::Error> {
    let mut b = Bundle::default();
    each_file(plan, |path, text, mode| {
        b.add(path, text, mode);
        Ok::<(), minijinja::Error>(())
    })?;
    b.seal();
    Ok(b)
}

/// The README runbook.
fn readme(env: &minijinja::Environment<'_>, plan: &Plan) -> Result<String, minijinja::Error> {
    env.get_template("README.md")?.render(context! {
        plan => Value::from(minijinja::value::Serde(plan)),
        steps => Value::from(minijinja::value::Serde(steps_view(plan))),
        version_note => "",
        mermaid => crate::mermaid::flowchart(&manifest(plan)),
    })
}

/// Per-step values the templates print but should not compute.
#[derive(Serialize)]
pub struct StepView<'a> {
    /// The step.
    pub step: &'a Step,
    /// Anchor of its README section.
    pub anchor: String,
    /// Host names, comma-separated.
    pub hosts: String,
    /// The script's path, or its pattern when the step runs on several nodes.
    pub script: String,
}

/// The hosts of a step for a table cell: every name up to a dozen, then the
/// first few, the last and the count (plan.json keeps the full list), so a
/// 5,000-node runbook stays readable.
fn host_list(step: &Step) -> String {
    const ALL_UP_TO: usize = 12;
    let names: Vec<&str> = step.scripts.iter().map(|x| x.host.name()).collect();
    if names.len() <= ALL_UP_TO {
        return names.join(", ");
    }
    format!(
        "{}, … {} ({} hosts; plan.json lists them all)",
        names[..3].join(", "),
        names[names.len() - 1],
        names.len()
    )
}

/// The per-step view used by README and explain templates.
pub fn steps_view(plan: &Plan) -> Vec<StepView<'_>> {
    plan.steps
        .iter()
        .map(|s| StepView {
            step: s,
            anchor: anchor(s),
            hosts: host_list(s),
            script: match s.scripts.as_slice() {
                [one] => one.path.clone(),
                _ => format!("nodes/<node>/{:02}-{}.sh", s.number, s.id),
            },
        })
        .collect()
}
