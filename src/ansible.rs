//! The bundle's `ansible/` folder: a playbook that runs the bundle's own
//! scripts over SSH, in the README's order, and an example inventory
//! (docs/ansible.md).
//!
//! The playbook re-implements no step: each step is one play whose task is
//! `sh <script>` on the step's hosts. What it knows of the plan is what
//! every play needs (number, id, title, one at a time or in parallel, the
//! secrets its scripts read, its time limit); the hosts of each step are read
//! from `plan.json` at run time and the hashes from `SHA256SUMS`, so nothing
//! per host is written into it and a 5,000-node playbook is the size of a
//! 5-node one. The example inventory lists each node once. Nothing of the
//! plan's text is in these files either (not its sha256: the playbook reads
//! it from `plan.json`), so, like the scripts once `rewind diff` masks the
//! plan hash, they change only when the procedure does.
//!
//! Every value goes through the `.yml` auto-escape of
//! [`crate::templates::ansible_environment`]; the few words printed inside
//! Ansible's own expressions (step tags, group names, variable names) are
//! rewind's and are checked here to be plain words before they are marked
//! safe.

use std::collections::BTreeMap;

use minijinja::{Value, context};

use crate::plan::{Func, Host, Plan, Step};
use crate::templates;

/// Default of each `REWIND_*_TIMEOUT` the library reads (`rw_seconds NAME
/// DEFAULT` in `templates/lib/*.sh`; a unit test keeps them equal).
pub const TIMEOUT_DEFAULTS: &[(&str, u64)] = &[
    ("REWIND_RESET_TIMEOUT", 1800),
    ("REWIND_START_TIMEOUT", 900),
    ("REWIND_STOP_TIMEOUT", 30),
    ("REWIND_VERIFY_TIMEOUT", 900),
    ("REWIND_ROLLOUT_TIMEOUT", 600),
];

/// Seconds every task gets besides the waits of its step (checks, copies,
/// installs); `rewind_timeout_base` changes it at run time.
pub const TIMEOUT_BASE: u64 = 600;

/// Where the playbook copies the scripts on a host, unless
/// `rewind_remote_dir` says otherwise: `<this>/<cluster>-<first 12 of the
/// plan sha256>`.
pub const REMOTE_DIR: &str = "/var/lib/rewind-bundles";

/// The files of the `ansible/` folder: `(path, text)`, mode 0644.
pub fn files(plan: &Plan) -> Result<Vec<(String, String)>, minijinja::Error> {
    let env = templates::ansible_environment();
    let ids: Vec<Value> = plan.steps.iter().map(|s| word(s.id)).collect();
    let mut nodes: Vec<&str> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for s in plan.steps.iter().flat_map(|s| &s.scripts) {
        if let Host::Node(n) = &s.host
            && seen.insert(n.as_str())
        {
            nodes.push(n);
        }
    }
    let plays: Vec<Value> = plan.steps.iter().map(|s| play(plan, s, &nodes)).collect();
    let workstation = plan
        .steps
        .iter()
        .flat_map(|s| &s.scripts)
        .any(|s| s.host == Host::Workstation);
    let ctx = context! {
        cluster => plan.cluster.as_str(),
        cluster_word => word(&plan.cluster),
        from => plan.from.as_str(),
        to => plan.to.as_str(),
        scenario => plan.scenario.as_str(),
        rke1 => plan.distribution == "rke1",
        plays => plays,
        ids => ids,
        count => plan.steps.len(),
        nodes => nodes.iter().map(|n| (*n).to_owned()).collect::<Vec<String>>(),
        workstation => workstation,
        remote_dir => word(REMOTE_DIR),
        timeout_base => TIMEOUT_BASE,
    };
    let mut out = Vec::new();
    for (name, _) in templates::ANSIBLE_TEMPLATES {
        out.push(((*name).to_owned(), env.get_template(name)?.render(&ctx)?));
    }
    Ok(out)
}

/// What the template needs of one step. A step that runs on every node of
/// the plan, in the plan's order, uses the group of all nodes
/// (`rewind_nodes`) rather than a group of its own, so the inventory check
/// adds each host to as few groups as it can (at 5,000 nodes, each
/// `add_host` item counts).
fn play(plan: &Plan, step: &Step, nodes: &[&str]) -> Value {
    let every_node = step.scripts.len() == nodes.len()
        && step
            .scripts
            .iter()
            .zip(nodes)
            .all(|(s, n)| s.host == Host::Node((*n).to_owned()));
    let tag = format!("{:02}-{}", step.number, step.id);
    let mut name = format!(
        "Step {} of {}: {}",
        step.number,
        plan.steps.len(),
        step.title
    );
    if step.destructive {
        name.push_str(" [destroys data]");
    }
    if !step.parallel && step.scripts.len() > 1 {
        name.push_str(" [one host at a time]");
    }
    context! {
        number => step.number,
        index => step.number - 1,
        tag => word(&tag),
        group => word(&if every_node {
            "rewind_nodes".to_owned()
        } else {
            format!("rewind_step_{:02}", step.number)
        }),
        own_group => !every_node,
        name => name,
        serial => !step.parallel,
        secrets => secrets(step).into_iter().map(word).collect::<Vec<_>>(),
        timeout => timeout(step).into_iter().map(Value::from_safe_string).collect::<Vec<_>>(),
    }
}

/// A word of rewind's own printed inside an Ansible expression or a path:
/// letters, digits, `_`, `.`, `/` and `-` only (anything else is a bug).
fn word(s: &str) -> Value {
    assert!(
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/')),
        "bug in rewind: {s:?} is not a plain word for the playbook"
    );
    Value::from_safe_string(s.to_owned())
}

/// The environment variables holding secrets that a step's scripts read:
/// what they check with `need_env`, and the passwords of the database
/// clients and of s3cmd. The playbook passes each one that is set in the
/// controller's environment, and only to the steps that read it.
pub fn secrets(step: &Step) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let mut add = |v: &'static str| {
        if !out.contains(&v) {
            out.push(v);
        }
    };
    for op in step
        .scripts
        .iter()
        .flat_map(|s| s.preflight.iter().chain(&s.actions))
    {
        match op.func {
            Func::NeedEnv => {
                for a in &op.args {
                    let known = KNOWN_SECRETS.iter().find(|k| **k == &**a);
                    add(known.unwrap_or_else(|| {
                        panic!("bug in rewind: need_env {a} is not in ansible::KNOWN_SECRETS")
                    }));
                }
            }
            Func::CheckPgRestore | Func::SavePostgres | Func::RestorePostgres => add("PGPASSWORD"),
            Func::CheckMysqlRestore | Func::SaveMysql | Func::RestoreMysql => add("MYSQL_PWD"),
            Func::Rke1SnapshotFromS3 => {
                add("AWS_ACCESS_KEY_ID");
                add("AWS_SECRET_ACCESS_KEY");
            }
            _ => {}
        }
    }
    // Temporary S3 credentials come with a session token.
    if out.contains(&"AWS_ACCESS_KEY_ID") && !out.contains(&"AWS_SESSION_TOKEN") {
        out.push("AWS_SESSION_TOKEN");
    }
    out
}

/// Every secret a script may read from its environment.
const KNOWN_SECRETS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "PGPASSWORD",
    "MYSQL_PWD",
];

/// The time limit of a step's task, as the terms of an Ansible sum: the base
/// (`rewind_timeout_base`, default [`TIMEOUT_BASE`]) plus every bounded wait
/// of the step's longest script, each read from the scripts' environment
/// (`rewind_env`) as the scripts read it, so that raising a
/// `REWIND_*_TIMEOUT` raises the task's limit too; the drain adds its
/// per-node timeout for every node it drains.
pub fn timeout(step: &Step) -> Vec<String> {
    let mut waits: BTreeMap<&str, u64> = BTreeMap::new();
    let mut fixed = 0;
    for script in &step.scripts {
        let mut mine: BTreeMap<&str, u64> = BTreeMap::new();
        let mut secs = 0;
        for op in script.preflight.iter().chain(&script.actions) {
            for v in op.func.env().iter().filter(|v| v.ends_with("_TIMEOUT")) {
                *mine.entry(v).or_default() += 1;
            }
            if op.func == Func::DrainNodes && op.args.len() >= 2 {
                let nodes = op.args.len() as u64 - 2;
                secs += duration(&op.args[1]).unwrap_or(3600) * nodes;
            }
        }
        for (v, n) in mine {
            let e = waits.entry(v).or_default();
            *e = (*e).max(n);
        }
        fixed = fixed.max(secs);
    }
    let mut terms = vec![format!(
        "(rewind_timeout_base | default({TIMEOUT_BASE}) | int)"
    )];
    for (v, n) in waits {
        let default = TIMEOUT_DEFAULTS
            .iter()
            .find(|(name, _)| *name == v)
            .map_or_else(
                || panic!("bug in rewind: no default for {v} in ansible::TIMEOUT_DEFAULTS"),
                |(_, d)| *d,
            );
        let times = if n == 1 {
            String::new()
        } else {
            format!("{n} * ")
        };
        terms.push(format!(
            "{times}(rewind_script_env.{v} | default({default}) | int)"
        ));
    }
    if fixed > 0 {
        terms.push(fixed.to_string());
    }
    terms
}

/// Seconds of a drain timeout (`90s`, `10m`, `1h`, as validation accepts).
fn duration(s: &str) -> Option<u64> {
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    match unit {
        "s" => Some(n),
        "m" => Some(n * 60),
        "h" => Some(n * 3600),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_defaults_are_the_librarys() {
        for (v, d) in TIMEOUT_DEFAULTS {
            let line = format!("rw_seconds {v} {d}\n");
            assert!(
                templates::LIBRARY
                    .iter()
                    .any(|(_, src)| src.contains(&line)),
                "no `{}` in templates/lib/",
                line.trim()
            );
        }
        // Every timeout an operation reads has a default here.
        for f in [
            Func::ClusterReset,
            Func::StartUnit,
            Func::StopRke2,
            Func::StopLeftovers,
            Func::VerifyCluster,
            Func::RancherVerify,
            Func::RancherSetImage,
        ] {
            for v in f.env().iter().filter(|v| v.ends_with("_TIMEOUT")) {
                assert!(TIMEOUT_DEFAULTS.iter().any(|(n, _)| n == v), "{v}");
            }
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration("90s"), Some(90));
        assert_eq!(duration("10m"), Some(600));
        assert_eq!(duration("2h"), Some(7200));
        assert_eq!(duration("m"), None);
        assert_eq!(duration(""), None);
    }
}
