//! Self-contained words (issue 16, item 7): nothing a user reads, and no
//! comment in the code, refers to a document a user of this repository does
//! not have. Upstream documents are named by their public names (the RKE2
//! rollback guide, rancher/rke2#1898); this repository's own by their path
//! (`docs/…`).

use std::fs;
use std::path::{Path, PathBuf};

/// Words that name documents outside this repository, lowercase. "seed" is
/// checked as a whole word (the procedures' former private name); the test
/// harness's verb (`seed_node`, "seeds a host") lives under tests/ only,
/// which this scan does not read.
const FORBIDDEN: [&str; 7] = [
    "product.md",
    "shared/",
    "rke2-facts",
    "peers-and-pain",
    "test-tools.md",
    "style-anchors",
    "seed 0",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Whole-word, case-insensitive "seed" or "seeds" or "seed's".
fn names_the_seed(line: &str) -> bool {
    let lower = line.to_lowercase();
    lower.match_indices("seed").any(|(i, _)| {
        let before = lower[..i].chars().next_back();
        let after = lower[i + 4..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !word(before)
            && (!word(after)
                || lower[i + 4..].starts_with("s ")
                || lower[i + 4..].starts_with("s)"))
    })
}

fn hits(paths: &[PathBuf]) -> Vec<String> {
    let mut found = Vec::new();
    for path in paths {
        let Ok(text) = fs::read_to_string(path) else {
            continue; // binary files (none expected) carry no words
        };
        for (n, line) in text.lines().enumerate() {
            let lower = line.to_lowercase();
            let rel = path.strip_prefix(root()).unwrap_or(path).display();
            if let Some(word) = FORBIDDEN.iter().find(|w| lower.contains(*w)) {
                found.push(format!("{rel}:{}: `{word}`: {line}", n + 1));
            } else if names_the_seed(line) {
                found.push(format!("{rel}:{}: `seed`: {line}", n + 1));
            }
        }
    }
    found
}

#[test]
fn no_user_visible_text_names_a_private_document() {
    let mut paths = vec![root().join("README.md")];
    for dir in ["src", "templates", "docs", "golden", "plans", "schema"] {
        files(&root().join(dir), &mut paths);
    }
    assert!(
        paths.len() > 100,
        "the scan found only {} files: is it reading the repository?",
        paths.len()
    );
    let found = hits(&paths);
    assert!(
        found.is_empty(),
        "name the public upstream document (\"the RKE2 rollback guide\", rancher/rke2#NNNN) or a file of this repository (docs/…) instead:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_catches_each_pattern() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("x.md");
    for line in [
        "see PRODUCT.md §3.1",
        "as in Seed 003",
        "shared/reference/notes",
        "rke2-facts.md §9",
        "peers-and-pain.md item 3",
        "test-tools.md §7",
        "the seed's install",
        "as in the seed, or",
    ] {
        fs::write(&file, line).expect("write");
        assert_eq!(
            hits(std::slice::from_ref(&file)).len(),
            1,
            "{line:?} was not caught"
        );
    }
    for line in [
        "seed_node(&host)",
        "reseeded",
        "the RKE2 rollback guide, step 3",
    ] {
        fs::write(&file, line).expect("write");
        assert!(
            hits(std::slice::from_ref(&file)).is_empty(),
            "{line:?} was caught"
        );
    }
}
