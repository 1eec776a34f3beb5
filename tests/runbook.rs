//! The runbook tells one story (issue 16, item 6), checked on every golden
//! bundle: its steps table and sections agree with `plan.json` (every host a
//! step runs on is named in the step's section; the table links there when
//! it shortens the list), a step "destroys data" exactly when it is
//! destructive and then says what, and the cleanup table has one row per
//! thing moved (never two rows for the same folder on the same host).

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use rewind::plan::plan;
use rewind::source::SourceFile;
use rewind::validate::check;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bundles() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root().join("golden"))
        .expect("golden/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 10, "golden/ holds {} bundles", names.len());
    names
}

/// The lines of README.md's section `### N. …` up to the next heading.
fn section(readme: &str, number: u64) -> Vec<&str> {
    let head = format!("### {number}. ");
    readme
        .lines()
        .skip_while(|l| !l.starts_with(&head))
        .skip(1)
        .take_while(|l| !l.starts_with("## ") && !l.starts_with("### "))
        .collect()
}

#[test]
fn every_step_section_names_every_host_and_what_it_destroys() {
    for name in bundles() {
        let dir = root().join("golden").join(&name);
        let readme = fs::read_to_string(dir.join("README.md")).expect("README.md");
        let manifest: Value =
            serde_json::from_slice(&fs::read(dir.join("plan.json")).expect("plan.json"))
                .expect("json");
        for step in manifest["steps"].as_array().expect("steps") {
            let number = step["number"].as_u64().expect("number");
            let hosts: Vec<&str> = step["where"]
                .as_array()
                .expect("where")
                .iter()
                .map(|h| h.as_str().expect("host"))
                .collect();
            let lines = section(&readme, number);
            let place = format!("golden/{name}/README.md step {number}");
            let where_line = lines
                .iter()
                .find_map(|l| l.strip_prefix("- Where: "))
                .unwrap_or_else(|| panic!("{place}: no Where: line"));
            assert_eq!(where_line, hosts.join(", "), "{place}");
            let destroys = lines
                .iter()
                .find_map(|l| l.strip_prefix("- Destroys data: "))
                .unwrap_or_else(|| panic!("{place}: no Destroys data: line"));
            if step["destructive"].as_bool().expect("destructive") {
                let what = destroys
                    .strip_prefix("yes: ")
                    .unwrap_or_else(|| panic!("{place}: {destroys}"));
                assert!(
                    what.len() > "; asks you to type the cluster name".len() + 10,
                    "{place}: says not what it destroys: {destroys}"
                );
            } else {
                assert_eq!(destroys, "no", "{place}");
            }
            // The table row: all hosts, or a link to the section.
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| {number} | [")))
                .unwrap_or_else(|| panic!("{place}: no table row"));
            let anchor = format!("(#step-{number:02}-{})", step["id"].as_str().expect("id"));
            assert!(
                row.contains(&format!("| {} |", hosts.join(", ")))
                    || row.contains(&format!("hosts, [all listed in its section]{anchor}")),
                "{place}: {row}"
            );
            assert_eq!(
                row.ends_with("| no |"),
                !step["destructive"].as_bool().expect("destructive"),
                "{place}: {row}"
            );
        }
    }
}

#[test]
fn the_cleanup_table_has_one_row_per_thing_moved() {
    for name in bundles() {
        let readme = fs::read_to_string(root().join("golden").join(&name).join("README.md"))
            .expect("README");
        let rows: Vec<&str> = readme
            .lines()
            .skip_while(|l| *l != "## Cleanup")
            .filter(|l| l.starts_with("| ") && !l.starts_with("| host |"))
            .collect();
        let text =
            fs::read_to_string(root().join("plans").join(format!("{name}.toml"))).expect("plan");
        let source = SourceFile::new(format!("plans/{name}.toml"), text);
        let model = check(&source, None).model.expect("a valid plan");
        let plan = plan(&model);
        assert_eq!(
            rows.len(),
            plan.moved_aside.len(),
            "golden/{name}: {rows:#?}"
        );
        let mut seen = BTreeSet::new();
        for row in &rows {
            let cells: Vec<&str> = row.split(" | ").collect();
            assert!(
                seen.insert((cells[0].to_owned(), cells[1].to_owned())),
                "golden/{name}: two cleanup rows for {} on {}",
                cells[1],
                cells[0]
            );
        }
    }
}

/// What cluster-reset does to the restoring server's etcd folder is the one
/// row for it (docs/upstream-facts.md §7: renamed to `etcd-old-<unix
/// seconds>`), and the scripts move server/token aside wherever they put
/// the saved token, so it has its row.
#[test]
fn the_cleanup_rows_are_the_real_ones() {
    let readme = fs::read_to_string(root().join("golden/etcd-airgap/README.md")).expect("README");
    let init_rows: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("| server-1 |") && l.contains("server/db/etcd"))
        .collect();
    assert_eq!(init_rows.len(), 1, "{init_rows:#?}");
    assert!(
        init_rows[0].contains("server/db/etcd-old-<unix time>`"),
        "{}",
        init_rows[0]
    );
    for name in ["sqlite", "etcd-airgap"] {
        let readme =
            fs::read_to_string(root().join("golden").join(name).join("README.md")).expect("README");
        assert!(
            readme
                .lines()
                .any(|l| l.starts_with("| ") && l.contains("server/token.rewind-")),
            "golden/{name}: put_token moves server/token aside, the cleanup table must say so"
        );
    }
}

/// Without a `sha256` in the plan, the runbook claims no hash check (the
/// scripts then only check that the file is there).
#[test]
fn no_hash_check_is_claimed_without_a_sha256() {
    for (name, key) in [
        (
            "rancher-recovery",
            "sha256 = \"5ec05f8455ef8e41ca7b548ee126488aa8ae1ae44322319652494883b48a365d\"\n",
        ),
        (
            "sqlite",
            "sha256 = \"719b9b102f02bc8c29a1ec5f2683f9b926ff69d188270027d1c86a4f648509fd\"\n",
        ),
    ] {
        let text =
            fs::read_to_string(root().join("plans").join(format!("{name}.toml"))).expect("plan");
        assert!(text.contains(key), "plans/{name}.toml: {key}");
        let source = SourceFile::new(format!("{name}.toml"), text.replacen(key, "", 1));
        let bundle = rewind::compiler::build(&source, None).expect("compiles");
        let readme = String::from_utf8(bundle.files["README.md"].bytes.clone()).expect("utf-8");
        for claim in [
            "The hash is checked here",
            "not the snapshot whose hash",
            "with the right hash",
            "its sha256 is the one in the plan",
        ] {
            assert!(!readme.contains(claim), "{name} without sha256: {claim:?}");
        }
    }
}
