//! Plan → bundle: every script, the README runbook, `plan.json`, `verify.sh`
//! and `SHA256SUMS`. Pure: no I/O, so it is unit-testable and the same plan
//! always renders the same bytes.
//!
//! [`each_file`] hands the files over one at a time, so that `compile` can
//! write each as soon as it is rendered and never holds a bundle of thousands
//! of hosts in memory; [`bundle`] collects them for tests and tools.

use minijinja::{Value, context};
use serde::Serialize;

use crate::bundle::Bundle;
use crate::manifest::{self, Manifest, ManifestStep};
use crate::plan::{Plan, Script, Step};
use crate::templates;

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

/// Where a bundle's library is, before its short hash.
const LIBRARY_PREFIX: &str = "lib/rewind-";

/// The runtime library of a bundle: the plan's constants (cluster and plan
/// sha256), then core and every fragment the bundle's scripts call.
///
/// Scripts carry only what differs between them and pin the library by its
/// sha256, so a library of another bundle (or another rewind) is refused.
/// The library is chosen per bundle, never per script: a script is only its
/// values, its operations and the loader (docs/architecture.md).
pub struct Library {
    /// Its path in the bundle: `lib/rewind-<first 12 of its sha256>.sh`.
    pub path: String,
    /// Its text.
    pub text: String,
    /// Its sha256 (hex).
    pub sha256: String,
}

impl Library {
    /// Renders the library of `plan`.
    pub fn of(env: &minijinja::Environment<'_>, plan: &Plan) -> Result<Self, minijinja::Error> {
        let text = env.get_template("lib.sh")?.render(context! {
            cluster => plan.cluster.as_str(),
            plan_sha256 => plan.plan_sha256.as_str(),
            constants => &plan.constants,
            code => templates::trusted(code(plan)),
        })?;
        let sha256 = crate::digest::sha256_hex(text.as_bytes());
        Ok(Library {
            path: format!("{LIBRARY_PREFIX}{}.sh", &sha256[..12]),
            text,
            sha256,
        })
    }

    /// True for the path of a bundle's runtime library: the one `.sh` that
    /// scripts source and nobody runs (mode 0644, compared as one file by
    /// `diff` whatever its hash).
    pub fn is_library(path: &str) -> bool {
        path.starts_with(LIBRARY_PREFIX) && path.ends_with(".sh")
    }

    /// The library's path as seen from a file at `from` in the bundle.
    fn relative_to(&self, from: &str) -> String {
        let depth = from.matches('/').count();
        format!("{}{}", "../".repeat(depth), self.path)
    }
}

/// Core, then every fragment the plan's scripts call, in the library's
/// order: the code of the plan's library.
fn code(plan: &Plan) -> String {
    let mut used = std::collections::BTreeSet::new();
    for script in plan.steps.iter().flat_map(|s| &s.scripts) {
        for op in script.preflight.iter().chain(&script.actions) {
            used.insert(op.func.fragment());
            used.extend(op.func.calls().iter().copied());
        }
    }
    let mut text = String::from(templates::library("core"));
    // `host.sh` (status, next, rehearse) runs on every bundle.
    text.push('\n');
    text.push_str(templates::library("host"));
    for (name, source) in templates::LIBRARY {
        if used.contains(name) {
            text.push('\n');
            text.push_str(source);
        }
    }
    text
}

/// Renders one script.
pub fn script(plan: &Plan, step: &Step, script: &Script) -> Result<String, minijinja::Error> {
    let env = templates::environment();
    let library = Library::of(&env, plan)?;
    script_with(&env, &library, step, script)
}

/// Renders one script with the bundle's library (`rewind prepare` renders
/// its capture scripts through it).
pub fn script_with(
    env: &minijinja::Environment<'_>,
    library: &Library,
    step: &Step,
    script: &Script,
) -> Result<String, minijinja::Error> {
    env.get_template("script.sh")?.render(context! {
        step => format!("{:02}-{}", step.number, step.id),
        title => step.title.as_str(),
        host => script.host.name(),
        addresses => script.addresses.join(" "),
        needs_root => u8::from(script.needs_root),
        destructive => u8::from(step.destructive),
        library => library.relative_to(&script.path),
        library_sha256 => library.sha256.as_str(),
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
    let library = Library::of(&env, plan)?;
    for step in &plan.steps {
        for s in &step.scripts {
            emit(s.path.clone(), script_with(&env, &library, step, s)?, 0o755)?;
        }
    }
    emit("host.sh".into(), host_runner(&env, &library, plan)?, 0o755)?;
    emit(library.path, library.text, 0o644)?;
    emit("README.md".into(), readme(&env, plan)?, 0o644)?;
    emit("plan.json".into(), plan_json(plan), 0o644)?;
    emit(
        "verify.sh".into(),
        env.get_template("verify.sh")?.render(context! {})?,
        0o755,
    )?;
    for (path, text) in crate::ansible::files(plan)? {
        emit(path, text, 0o644)?;
    }
    Ok(())
}

/// One step in `host.sh`'s list: `NN-id`, how many hosts run it, its
/// title, and its hosts in order when they run it one at a time (none
/// otherwise: a host's steps are the files of its folder, so 5,000 hosts
/// cost nothing here).
#[derive(Serialize)]
struct HostStep<'a> {
    step: String,
    hosts: usize,
    title: &'a str,
    serial: Vec<&'a str>,
}

/// `host.sh`: the steps in README order and the loader of the library,
/// whose `host` fragment does the work (status, next, rehearse).
pub fn host_runner(
    env: &minijinja::Environment<'_>,
    library: &Library,
    plan: &Plan,
) -> Result<String, minijinja::Error> {
    let steps: Vec<HostStep<'_>> = plan
        .steps
        .iter()
        .map(|s| HostStep {
            step: format!("{:02}-{}", s.number, s.id),
            hosts: s.scripts.len(),
            title: s.title.as_str(),
            serial: if s.parallel || s.scripts.len() < 2 {
                Vec::new()
            } else {
                s.scripts.iter().map(|x| x.host.name()).collect()
            },
        })
        .collect();
    env.get_template("host.sh")?.render(context! {
        steps => Value::from(minijinja::value::Serde(steps)),
        library => library.relative_to("host.sh"),
        library_sha256 => library.sha256.as_str(),
    })
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
        mermaid => templates::trusted(crate::mermaid::flowchart(&manifest(plan))),
    })
}

/// Per-step values the templates print but should not compute.
#[derive(Serialize)]
pub struct StepView<'a> {
    /// The step.
    pub step: &'a Step,
    /// Anchor of its README section.
    pub anchor: String,
    /// Host names, comma-separated (shortened past a dozen).
    pub hosts: String,
    /// Every host name, comma-separated: the runbook's step section names
    /// them all, since the operator runs the step on each.
    pub all_hosts: String,
    /// The first hosts and the last, when the runbook's table shortens the
    /// list (then it links to the step's section, which lists them all);
    /// empty when it does not.
    pub hosts_head: String,
    /// The script's path, or its pattern when the step runs on several nodes.
    pub script: String,
    /// How many hosts run it.
    pub count: usize,
    /// The template that words its runbook section (`templates/runbook/`).
    pub template: &'static str,
}

/// The hosts of a step for a table cell: every name up to a dozen, then the
/// first few, the last and the count (the README's step section names them
/// all), so a 5,000-node runbook stays readable.
fn host_list(step: &Step) -> String {
    const ALL_UP_TO: usize = 12;
    let names: Vec<&str> = step.scripts.iter().map(|x| x.host.name()).collect();
    if names.len() <= ALL_UP_TO {
        return names.join(", ");
    }
    format!(
        "{}, … {} ({} hosts, all named in the step's section of the bundle's README)",
        names[..3].join(", "),
        names[names.len() - 1],
        names.len()
    )
}

fn all_hosts(step: &Step) -> String {
    let names: Vec<&str> = step.scripts.iter().map(|x| x.host.name()).collect();
    names.join(", ")
}

/// The shortened start of [`host_list`], or empty when it lists them all.
fn hosts_head(step: &Step) -> String {
    let names: Vec<&str> = step.scripts.iter().map(|x| x.host.name()).collect();
    if names.len() <= 12 {
        return String::new();
    }
    format!("{}, … {}", names[..3].join(", "), names[names.len() - 1])
}

/// The per-step view used by README and explain templates.
pub fn steps_view(plan: &Plan) -> Vec<StepView<'_>> {
    plan.steps
        .iter()
        .map(|s| StepView {
            step: s,
            anchor: anchor(s),
            hosts: host_list(s),
            all_hosts: all_hosts(s),
            hosts_head: hosts_head(s),
            script: match s.scripts.as_slice() {
                [one] => one.path.clone(),
                _ => format!("nodes/<node>/{:02}-{}.sh", s.number, s.id),
            },
            count: s.scripts.len(),
            template: s.facts.template(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::readme;
    use crate::plan::{Host, Plan, plan};
    use crate::source::SourceFile;
    use crate::templates;
    use crate::validate::check;

    fn compile(text: &str) -> Plan {
        let c = check(&SourceFile::new("t.toml", text), None);
        let model = c
            .model
            .unwrap_or_else(|| panic!("rejected: {:?}", c.diagnostics));
        plan(&model)
    }

    /// The README section of `step`: from its anchor to the next one.
    fn section<'r>(readme: &'r str, anchor: &str) -> &'r str {
        let start = readme
            .find(&format!("<a id=\"{anchor}\">"))
            .unwrap_or_else(|| panic!("no section {anchor}"));
        let rest = &readme[start + 1..];
        &readme[start..=start + rest.find("<a id=").unwrap_or(rest.len())]
    }

    #[test]
    fn rke1_workstation_steps_say_where_to_run_from() {
        let relative = compile(include_str!("../plans/rancher-upgrade.toml"));
        let absolute = compile(include_str!("../plans/rancher-helm.toml"));
        let env = templates::environment();
        for (p, folder) in [(&relative, true), (&absolute, false)] {
            let text = readme(&env, p).unwrap();
            for s in p
                .steps
                .iter()
                .filter(|s| s.scripts.iter().any(|x| x.host == Host::Workstation))
            {
                let words = section(&text, &super::anchor(s));
                assert_eq!(
                    words.contains("from the folder that holds `rancher-cluster.yml`"),
                    folder,
                    "{}: {words}",
                    s.id
                );
                assert!(words.contains("it on the workstation"), "{}", s.id);
            }
        }
    }
}
