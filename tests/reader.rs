//! The fast plan reader (`src/spec/reader.rs`) against the toml crate.
//!
//! - It is really taken: every reference plan, every `tests/valid/` plan and
//!   generated plans of 50 and 5,000 nodes are read by it (a reader that
//!   always declined would pass every other test here, and be useless).
//! - It changes nothing: on those plans, on every TOML file of
//!   `tests/invalid/` and `tests/fixtures/`, and on mutated plans (a
//!   property test: bytes and lines inserted, deleted, replaced and
//!   duplicated, quotes swapped, unknown keys, non-ASCII, escapes, CR, tabs,
//!   table and array headers mixed), whenever it reads a text its `Spec`
//!   prints exactly as the toml crate's, the strings that text rules see are
//!   the same with the same spans, and `validate::check` gives the same
//!   diagnostics and model with the fast reader as with toml alone.

mod common;
#[path = "../benches/scale/generate.rs"]
#[allow(dead_code)] // the benchmark's generator; the tests use `plan` and `shape`
mod generate;

use std::ops::Range;
use std::sync::OnceLock;

use camino::{Utf8Path, Utf8PathBuf};
use proptest::prelude::*;
use rewind::source::SourceFile;
use rewind::spec::{self, Reader};
use rewind::validate;

/// Every `*.toml` under `dir` (recursively), sorted; none when it is absent.
fn tomls(dir: &Utf8Path) -> Vec<Utf8PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = common::repo().join(dir).read_dir_utf8() else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("read dir").into_path();
        if path.is_dir() {
            out.extend(tomls(&path));
        } else if path.extension() == Some("toml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn generated(nodes: usize) -> String {
    let (servers, agents) = generate::shape(nodes);
    generate::plan(servers, agents)
}

/// The plans the fast reader must read: name and text.
fn valid_plans() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = common::plans()
        .into_iter()
        .map(|(_, path)| path)
        .chain(tomls(Utf8Path::new("tests/valid")))
        .map(|path| {
            let text = std::fs::read_to_string(common::repo().join(&path)).expect("read plan");
            (path.to_string(), text)
        })
        .collect();
    for nodes in [50, 5000] {
        out.push((format!("generated {nodes} nodes"), generated(nodes)));
    }
    out
}

/// Every string value the text rules see, with its span, as each reader
/// gives them (`None` when that reader refuses the text).
fn strings(text: &str, with: Reader) -> Option<Vec<(String, Range<usize>)>> {
    let source = SourceFile::new("plan.toml", text);
    let mut seen = Vec::new();
    spec::parse_inspecting(&source, with, |strings| {
        seen.extend(strings.map(|(s, span)| (s.to_owned(), span)));
    })
    .ok()
    .map(|_| seen)
}

/// Asserts that the fast reader, when it reads `text`, agrees with toml.
/// Returns whether it read it.
fn same_as_toml(name: &str, text: &str) -> Result<bool, TestCaseError> {
    let source = SourceFile::new("plan.toml", text);
    let fast = spec::reader::read(text);
    if let Some(fast) = &fast {
        let toml = spec::parse_inspecting(&source, Reader::Toml, |_| {});
        prop_assert!(
            toml.is_ok(),
            "{name}: the fast reader read a text toml refuses: {toml:?}\n{text}"
        );
        prop_assert_eq!(
            format!("{fast:?}"),
            format!("{:?}", toml.unwrap()),
            "{}: the fast reader's Spec differs\n{}",
            name,
            text
        );
        prop_assert_eq!(
            strings(text, Reader::Fast),
            strings(text, Reader::Toml),
            "{}: the strings differ\n{}",
            name,
            text
        );
    }
    let checked = |with| {
        let c = validate::check_reading(&source, None, with);
        format!("{:?}\n{:?}", c.diagnostics, c.model)
    };
    prop_assert_eq!(
        checked(Reader::Fast),
        checked(Reader::Toml),
        "{}: check differs with the fast reader\n{}",
        name,
        text
    );
    Ok(fast.is_some())
}

#[test]
fn the_fast_reader_reads_every_plan() {
    let plans = valid_plans();
    assert!(
        plans.len() > 16,
        "plans and generated plans: {}",
        plans.len()
    );
    let declined: Vec<&str> = plans
        .iter()
        .filter(|(_, text)| spec::reader::read(text).is_none())
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(declined.is_empty(), "the fast reader declined {declined:?}");
}

#[test]
fn the_fast_reader_agrees_with_toml_on_every_file() {
    let mut files = valid_plans();
    for dir in ["tests/invalid", "tests/fixtures"] {
        for path in tomls(Utf8Path::new(dir)) {
            let bytes = std::fs::read(&path).expect("read file");
            // validate::check sees what rewind loads: U+FFFD for bad bytes.
            let text = SourceFile::from_bytes(path.as_str(), bytes).text;
            files.push((path.to_string(), text));
        }
    }
    let mut read = 0;
    for (name, text) in &files {
        match same_as_toml(name, text) {
            Ok(true) => read += 1,
            Ok(false) => {}
            Err(e) => panic!("{e}"),
        }
    }
    // Most invalid plans are valid TOML with a bad value: read fast too.
    assert!(read > files.len() / 2, "read {read} of {}", files.len());
}

/// A change to a plan's text.
#[derive(Debug, Clone)]
enum Edit {
    /// Inserts a piece at a byte offset (moved back to a char boundary).
    Insert(usize, &'static str),
    /// Deletes up to `n` bytes from an offset.
    Delete(usize, usize),
    /// Replaces the byte at an offset with a piece.
    Replace(usize, &'static str),
    /// Duplicates a line.
    DuplicateLine(usize),
    /// Deletes a line.
    DeleteLine(usize),
    /// Inserts a line before a line.
    InsertLine(usize, &'static str),
    /// Swaps `"` and `'` on a line.
    SwapQuotes(usize),
}

const PIECES: &[&str] = &[
    "\r",
    "\t",
    "\n",
    " ",
    "é",
    "\u{a0}",
    "\u{200b}",
    "\u{feff}",
    "\u{1}",
    "\u{7f}",
    "\\",
    "\\n",
    "\\t",
    "\\u00e9",
    "\\u200b",
    "\\U0001F600",
    "\\ud800",
    "\\x41",
    "\\e",
    "\"",
    "'",
    "\"\"\"",
    "'''",
    "#",
    "=",
    ",",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    ".",
    "-",
    "_",
    "0",
    "1",
    "+1",
    "-0",
    "01",
    "1.5",
    "1e3",
    "0x1f",
    "1_000",
    "99999999999999999999",
    "true",
    "false",
    "inf",
    "nan",
    "1979-05-27",
    "`",
    "user:pass@host",
    "<FILL: a name>",
    "password=x",
];

const LINES: &[&str] = &[
    "[[nodes]]",
    "[nodes]",
    "[cluster]",
    "[snapshot]",
    "[snapshot.s3]",
    "[snapshot.s3.x]",
    "[[snapshot]]",
    "[cluster.name]",
    "[ cluster ]",
    "[\"cluster\"]",
    "unknown = 1",
    "unknown-key = \"x\"",
    "name = \"n\"",
    "name = 'n'",
    "role = \"server\"",
    "init = true",
    "format = 1",
    "format = 2",
    "roles = [\"etcd\", \"worker\"]",
    "roles = [ 'etcd' , ]",
    "roles = []",
    "roles = [\"etcd\",\n\"worker\"]",
    "roles = [1, \"etcd\"]",
    "nodes = []",
    "cluster.name = \"x\"",
    "name = { a = 1 }",
    "name = \"a\" # comment",
    "# comment é \u{200b}",
    "  name = \"indented\"",
    "port = 5432",
    "port = -1",
    "s3 = 1",
    "name = \"\"\"\nmulti\"\"\"",
    "format = 01",
    "format = -0",
    "format = +1",
    "format = 1_0",
    "format = 1.0",
    "format = 0x1",
    "format = 9223372036854775808",
    "format = -9223372036854775808",
    "init = truex",
    "init = True",
    "name = \"a\\x41\"",
    "name = \"a\\e\"",
    "name = \"a\\u00E9\\U0001F600\\\"\\\\\"",
    "name = \"\\ud800\"",
    "name = 'a\\'",
    "name = \"a\tb\"",
    "name = \"\"",
    "name = ''",
    "name=\"tight\"",
    "[cluster]#c",
    "[[nodes]] # c",
];

fn edit() -> impl Strategy<Value = Edit> {
    let piece = proptest::sample::select(PIECES);
    let line = proptest::sample::select(LINES);
    prop_oneof![
        (any::<usize>(), piece.clone()).prop_map(|(i, p)| Edit::Insert(i, p)),
        (any::<usize>(), 1..8usize).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), piece).prop_map(|(i, p)| Edit::Replace(i, p)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        any::<usize>().prop_map(Edit::DeleteLine),
        (any::<usize>(), line).prop_map(|(i, l)| Edit::InsertLine(i, l)),
        any::<usize>().prop_map(Edit::SwapQuotes),
    ]
}

fn boundary(text: &str, i: usize) -> usize {
    let mut i = i % (text.len() + 1);
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &mut String, edit: &Edit) {
    let line_range = |text: &str, n: usize| {
        let n = n % text.split_inclusive('\n').count().max(1);
        let start: usize = text.split_inclusive('\n').take(n).map(str::len).sum();
        let len = text.split_inclusive('\n').nth(n).map_or(0, str::len);
        start..start + len
    };
    match *edit {
        Edit::Insert(i, piece) => {
            let i = boundary(text, i);
            text.insert_str(i, piece);
        }
        Edit::Delete(i, n) => {
            let start = boundary(text, i);
            let end = boundary(text, start + n.min(text.len() - start));
            text.replace_range(start..end.max(start), "");
        }
        Edit::Replace(i, piece) => {
            let start = boundary(text, i);
            let end = text[start..]
                .chars()
                .next()
                .map_or(start, |c| start + c.len_utf8());
            text.replace_range(start..end, piece);
        }
        Edit::DuplicateLine(n) => {
            let r = line_range(text, n);
            let mut line = text[r.clone()].to_owned();
            if !line.ends_with('\n') {
                line.push('\n');
            }
            text.insert_str(r.start, &line);
        }
        Edit::DeleteLine(n) => {
            let r = line_range(text, n);
            text.replace_range(r, "");
        }
        Edit::InsertLine(n, line) => {
            let r = line_range(text, n);
            text.insert_str(r.start, &format!("{line}\n"));
        }
        Edit::SwapQuotes(n) => {
            let r = line_range(text, n);
            let swapped: String = text[r.clone()]
                .chars()
                .map(|c| match c {
                    '"' => '\'',
                    '\'' => '"',
                    c => c,
                })
                .collect();
            text.replace_range(r, &swapped);
        }
    }
}

/// The seed texts of the property test: the reference and valid plans
/// (not the generated ones: a 5,000-node plan makes each case slow).
fn seeds() -> &'static [(String, String)] {
    static SEEDS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        valid_plans()
            .into_iter()
            .filter(|(name, _)| !name.starts_with("generated 5000"))
            .collect()
    })
}

/// A small plan with every kind of value the subset reads.
const SNIPPET: &str = "format = 1\n[cluster]\nname = \"a-b\" # c\nrancher-managed = true\n\
    [datastore]\nport = 5432\n[snapshot]\n[snapshot.s3]\nbucket = 'b'\n\
    [[nodes]]\nroles = ['etcd', \"worker\"]\n";

/// Every piece inserted at, and put in place of, every character of a
/// small plan; every line inserted before every line of it.
#[test]
fn the_fast_reader_agrees_with_toml_on_every_small_edit() {
    let mut read = 0;
    let mut total = 0;
    let mut check = |edit: Edit| {
        let mut text = SNIPPET.to_owned();
        apply(&mut text, &edit);
        total += 1;
        match same_as_toml(&format!("{edit:?}"), &text) {
            Ok(fast) => read += usize::from(fast),
            Err(e) => panic!("{e}"),
        }
    };
    for i in 0..=SNIPPET.len() {
        for piece in PIECES {
            check(Edit::Insert(i, piece));
            check(Edit::Replace(i, piece));
        }
    }
    for n in 0..SNIPPET.lines().count() {
        for line in LINES {
            check(Edit::InsertLine(n, line));
        }
        check(Edit::DuplicateLine(n));
        check(Edit::DeleteLine(n));
        check(Edit::SwapQuotes(n));
    }
    assert!(read > total / 10, "read {read} of {total}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn the_fast_reader_agrees_with_toml_on_mutated_plans(
        seed in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let seeds = seeds();
        let (name, text) = &seeds[seed.index(seeds.len())];
        let mut text = text.clone();
        for e in &edits {
            apply(&mut text, e);
        }
        same_as_toml(&format!("{name} after {edits:?}"), &text)?;
    }
}
