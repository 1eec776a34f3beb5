//! The procedure as a Mermaid flowchart, for the README, `explain` and the
//! markdown of `diff`: one box per step, top to bottom in run order; inside
//! it the hosts that run it, side by side when they may run at the same time,
//! chained when they must run one after the other. Destructive steps get a
//! red border and a ⚠ in their title, so a reviewer sees the order and the
//! dangerous part at a glance.
//!
//! A step with many hosts shows groups instead (`agent-1 … agent-4997 (4997
//! hosts)`), so that the diagram of a 5,000-node cluster has as many boxes as
//! a small one. Ids are derived from step numbers and positions: the same
//! procedure always gives the same text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::manifest::{Manifest, ManifestStep};

/// At most this many host boxes in one step; beyond it hosts are grouped.
const MAX_BOXES: usize = 6;

/// Steps to highlight, by their number in the procedure drawn (for `diff`).
#[derive(Debug, Clone, Default)]
pub struct Marks {
    /// Steps the change adds.
    pub added: BTreeSet<usize>,
    /// Steps the change modifies.
    pub changed: BTreeSet<usize>,
    /// Hosts that newly run a step, by step number.
    pub new_hosts: BTreeMap<usize, BTreeSet<String>>,
}

/// The flowchart of a procedure (without the markdown fence).
pub fn flowchart(procedure: &Manifest) -> String {
    flowchart_marked(procedure, &Marks::default())
}

/// The flowchart with some steps highlighted as added or changed.
pub fn flowchart_marked(procedure: &Manifest, marks: &Marks) -> String {
    let mut out = String::from("flowchart TD\n");
    out.push_str("    classDef destructive stroke:#c62828,stroke-width:3px,color:#b71c1c\n");
    out.push_str("    classDef workstation fill:#e8eaf6,stroke:#3949ab\n");
    if !marks.new_hosts.is_empty() {
        out.push_str("    classDef added stroke:#2e7d32,stroke-width:3px,stroke-dasharray:6 3\n");
    }
    for step in &procedure.steps {
        step_box(&mut out, step, marks);
    }
    for pair in procedure.steps.windows(2) {
        let _ = writeln!(out, "    {} --> {}", id(&pair[0]), id(&pair[1]));
    }
    out
}

fn id(step: &ManifestStep) -> String {
    format!("s{:02}", step.number)
}

fn step_box(out: &mut String, step: &ManifestStep, marks: &Marks) {
    let sid = id(step);
    let mut title = format!("{}. {}", step.number, step.title);
    if step.destructive {
        title = format!("⚠ {title} · destroys data");
    }
    let new_hosts = marks.new_hosts.get(&step.number);
    let boxes = boxes(step, new_hosts);
    // Say how the hosts run, unless the title already does.
    if step.hosts.len() > 1 && !step.title.contains("one at a time") {
        title.push_str(if step.parallel {
            " · parallel"
        } else {
            " · one at a time"
        });
    }
    let added = marks.added.contains(&step.number);
    let changed = marks.changed.contains(&step.number);
    if added {
        title.push_str(" · NEW");
    } else if changed {
        title.push_str(" · CHANGED");
    }
    let _ = writeln!(out, "    subgraph {sid}[\"{}\"]", label(&title));
    // Inside a box Mermaid lays hosts out on their own: top-to-bottom puts
    // unlinked (parallel) hosts side by side on one rank, left-to-right keeps
    // a one-at-a-time chain on one row. (Without a direction, hosts stack.)
    out.push_str(if step.parallel || boxes.len() < 2 {
        "        direction TB\n"
    } else {
        "        direction LR\n"
    });
    for (i, b) in boxes.iter().enumerate() {
        let nid = format!("{sid}n{}", i + 1);
        let text = label(&b.text);
        let shape = if b.workstation {
            format!("([\"{text}\"])")
        } else {
            format!("[\"{text}\"]")
        };
        let class = if step.destructive {
            ":::destructive"
        } else if b.added {
            ":::added"
        } else if b.workstation {
            ":::workstation"
        } else {
            ""
        };
        let _ = writeln!(out, "        {nid}{shape}{class}");
    }
    if !step.parallel {
        for i in 1..boxes.len() {
            let _ = writeln!(out, "        {sid}n{i} --> {sid}n{}", i + 1);
        }
    }
    out.push_str("    end\n");
    let stroke = if step.destructive {
        Some("#c62828")
    } else if added {
        Some("#2e7d32")
    } else if changed {
        Some("#f9a825")
    } else {
        None
    };
    if let Some(color) = stroke {
        let dash = if added { ",stroke-dasharray:6 3" } else { "" };
        let _ = writeln!(out, "    style {sid} stroke:{color},stroke-width:3px{dash}");
    }
}

/// One box inside a step: a host, or a group of hosts.
struct HostBox {
    text: String,
    workstation: bool,
    /// A host the change adds to this step (`diff`).
    added: bool,
}

fn boxes(step: &ManifestStep, new_hosts: Option<&BTreeSet<String>>) -> Vec<HostBox> {
    let single = |h: &String| {
        let added = new_hosts.is_some_and(|n| n.contains(h));
        HostBox {
            text: if added { format!("+ {h}") } else { h.clone() },
            workstation: h == "workstation",
            added,
        }
    };
    if step.hosts.len() <= MAX_BOXES {
        return step.hosts.iter().map(single).collect();
    }
    // Group consecutive runs by name stem (`agent-12` → `agent-`), in order.
    let mut groups: Vec<(&str, Vec<&String>)> = Vec::new();
    for h in &step.hosts {
        let stem = h.trim_end_matches(|c: char| c.is_ascii_digit());
        match groups.last_mut() {
            Some((s, members)) if *s == stem && !stem.is_empty() => members.push(h),
            _ => groups.push((stem, vec![h])),
        }
    }
    if groups.len() > MAX_BOXES {
        let all: Vec<&String> = step.hosts.iter().collect();
        return vec![group(&all)];
    }
    groups
        .iter()
        .map(|(_, members)| match members.as_slice() {
            [one] => single(one),
            many => group(many),
        })
        .collect()
}

fn group(members: &[&String]) -> HostBox {
    HostBox {
        added: false,
        text: format!(
            "{} … {} ({} hosts)",
            members[0],
            members[members.len() - 1],
            members.len()
        ),
        workstation: false,
    }
}

/// Text inside `["…"]` ([`crate::escape::mermaid_label`]).
fn label(text: &str) -> String {
    crate::escape::mermaid_label(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(number: usize, hosts: &[&str], parallel: bool, destructive: bool) -> ManifestStep {
        ManifestStep {
            number,
            id: format!("step{number}"),
            title: format!("Step \"{number}\""),
            hosts: hosts.iter().map(std::string::ToString::to_string).collect(),
            scripts: hosts.iter().map(|h| format!("nodes/{h}/x.sh")).collect(),
            parallel,
            destructive,
        }
    }

    fn procedure(steps: Vec<ManifestStep>) -> Manifest {
        Manifest {
            rewind_version: "0".into(),
            format: 1,
            plan_sha256: "0".repeat(64),
            cluster: "c".into(),
            distribution: "rke2".into(),
            scenario: "s".into(),
            from: "a".into(),
            to: "b".into(),
            steps,
        }
    }

    #[test]
    fn parallel_hosts_side_by_side_sequential_hosts_chained_destructive_marked() {
        let p = procedure(vec![
            step(1, &["server-1", "server-2"], true, false),
            step(2, &["workstation"], false, false),
            step(3, &["server-2", "server-3"], false, true),
        ]);
        let text = flowchart(&p);
        assert!(text.starts_with("flowchart TD\n"));
        assert!(text.contains("subgraph s01[\"1. Step #quot;1#quot; · parallel\"]"));
        assert!(!text.contains("s01n1 --> s01n2"), "{text}");
        assert!(text.contains("s02n1([\"workstation\"]):::workstation"));
        assert!(text.contains("⚠ 3. Step #quot;3#quot; · destroys data · one at a time"));
        assert!(text.contains("s03n1[\"server-2\"]:::destructive"));
        assert!(text.contains("        s03n1 --> s03n2\n"));
        assert!(text.contains("    style s03 stroke:#c62828"));
        assert!(text.ends_with("    s01 --> s02\n    s02 --> s03\n"));
        assert_eq!(text, flowchart(&p), "deterministic");
    }

    #[test]
    fn many_hosts_are_grouped_by_name_stem() {
        let mut hosts: Vec<String> = (1..=3).map(|i| format!("server-{i}")).collect();
        hosts.extend((1..=4997).map(|i| format!("agent-{i}")));
        let refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let text = flowchart(&procedure(vec![step(1, &refs, true, false)]));
        assert!(
            text.contains("s01n1[\"server-1 … server-3 (3 hosts)\"]"),
            "{text}"
        );
        assert!(
            text.contains("s01n2[\"agent-1 … agent-4997 (4997 hosts)\"]"),
            "{text}"
        );
        assert!(!text.contains("s01n3"));
        assert!(text.len() < 1000);
    }

    #[test]
    fn too_many_groups_become_one_box() {
        let hosts: Vec<String> = (0..10)
            .map(|i| format!("{}x", (b'a' + i) as char))
            .collect();
        let refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let text = flowchart(&procedure(vec![step(1, &refs, false, false)]));
        assert!(text.contains("s01n1[\"ax … jx (10 hosts)\"]"), "{text}");
        assert!(!text.contains("s01n2"));
    }

    #[test]
    fn marks_add_a_word_and_a_border() {
        let p = procedure(vec![
            step(1, &["a"], true, false),
            step(2, &["a"], true, false),
        ]);
        let marks = Marks {
            added: BTreeSet::from([1]),
            changed: BTreeSet::from([2]),
            new_hosts: BTreeMap::from([(2, BTreeSet::from(["a".to_owned()]))]),
        };
        let text = flowchart_marked(&p, &marks);
        assert!(text.contains("1. Step #quot;1#quot; · NEW"));
        assert!(text.contains("style s01 stroke:#2e7d32,stroke-width:3px,stroke-dasharray:6 3"));
        assert!(text.contains("2. Step #quot;2#quot; · CHANGED"));
        assert!(text.contains("style s02 stroke:#f9a825,stroke-width:3px\n"));
        assert!(text.contains("s02n1[\"+ a\"]:::added"), "{text}");
        assert!(text.contains("classDef added"));
    }
}
