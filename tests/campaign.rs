//! The hostile-input campaign of issue 11, kept as a test: a bounded,
//! deterministic mutation campaign over the reference plans in `plans/`.
//!
//! Each case takes a reference plan and applies one to three mutations (a
//! string value replaced by or extended with a hostile piece, a line deleted,
//! duplicated or swapped, bytes inserted, including invalid UTF-8, the file
//! truncated, nesting added). Every case is checked in process:
//!
//! - no panic, anywhere from reading to rendering;
//! - no hang: a watchdog aborts the run if one case takes more than 20 s;
//! - a rejected plan has at least one error, and every error has a location
//!   (text and JSON), and no diagnostic prints a credential-shaped piece;
//! - an accepted plan renders, and no plan value escapes its context: the
//!   README's Markdown stays intact (no raw HTML, no extra table cells),
//!   `plan.json` is JSON, and the marker payload `$(… PWNED)` never appears
//!   in a script outside single quotes.
//!
//! Every `BINARY_EVERY`-th case also runs the real binary, `rewind compile`
//! into a scratch folder (killed after 20 s): exit 0 or 1; on exit 1 nothing
//! was written; on exit 0 only the `--out` folder appeared, and it verifies.
//!
//! `CAMPAIGN_CASES` sets the number of cases (default 3000, about a minute
//! in a debug build on two cores); the test prints the counts.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use rewind::diagnostic::render_all;
use rewind::source::SourceFile;

/// Hostile pieces put into string values.
const PIECES: &[&str] = &[
    "$(touch /tmp/PWNED)",
    "`touch /tmp/PWNED`",
    "'; touch /tmp/PWNED; '",
    "\" | **run** | \"",
    "<img src=x onerror=alert(1)>",
    "</a><script>x</script>",
    "|",
    "[link](javascript:x)",
    "_x_ *y* ~~z~~",
    "#",
    "\\\\",
    "\\n- address: 6.6.6.6",
    "\\u2028- address: 6.6.6.6",
    "\\u202e",
    "\\u200b",
    "\\ufeff",
    "\u{202e}",
    "\u{2029}",
    "//",
    "/./",
    "/../",
    "/.",
    "a=b",
    "-x",
    "--force",
    "admin:Hunter2Secret@db",
    "password=Hunter2Secret",
    "K100123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef::server:Hunter2Secret",
    "é日本🙂",
    " ",
    "*?[a-z]",
    "${IFS}",
    "%s%n",
    ":99999",
    "..",
    ".",
];

/// Pieces that must never be printed by a diagnostic.
const SECRETS: &[&str] = &["Hunter2Secret"];

/// Raw insertions (bytes), for the file as text.
const INSERTS: &[&[u8]] = &[
    b"\xff\xfe",
    b"\xc3",
    b"\x00",
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    b"a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a = 1\n",
    b"{",
    b"\"",
    b"'''",
    b"\n[cluster]\n",
    b"\n[[nodes]]\nname = \"server-1\"\nrole = \"server\"\ninit = true\n",
    b"\npassword = \"Hunter2Secret\"\n",
    b"\n\xe2\x80\xae\n",
    b"=",
    b"\r\n",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the value of the n-th string with a piece.
    Replace(usize, usize),
    /// Append a piece to the n-th string.
    Append(usize, usize),
    /// Prepend a piece to the n-th string.
    Prepend(usize, usize),
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Insert(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let piece = 0..PIECES.len();
    prop_oneof![
        4 => (any::<usize>(), piece.clone()).prop_map(|(a, b)| Mutation::Replace(a, b)),
        3 => (any::<usize>(), piece.clone()).prop_map(|(a, b)| Mutation::Append(a, b)),
        1 => (any::<usize>(), piece).prop_map(|(a, b)| Mutation::Prepend(a, b)),
        1 => any::<usize>().prop_map(Mutation::DeleteLine),
        1 => any::<usize>().prop_map(Mutation::DuplicateLine),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        2 => (any::<usize>(), 0..INSERTS.len()).prop_map(|(a, b)| Mutation::Insert(a, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// The byte ranges of the insides of `"…"` strings on `key = "…"` lines.
fn strings(text: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for line in text.split_inclusive(|&b| b == b'\n') {
        if let Some(eq) = line.iter().position(|&b| b == b'=')
            && !line.starts_with(b"#")
        {
            let rest = &line[eq..];
            if let Some(q1) = rest.iter().position(|&b| b == b'"')
                && let Some(q2) = rest.iter().rposition(|&b| b == b'"')
                && q2 > q1
            {
                out.push(start + eq + q1 + 1..start + eq + q2);
            }
        }
        start += line.len();
    }
    out
}

fn lines(text: &[u8]) -> Vec<Vec<u8>> {
    text.split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn apply(text: &mut Vec<u8>, m: &Mutation) {
    let s = strings(text);
    let pick = |n: usize| s.get(n % s.len().max(1)).cloned();
    match *m {
        Mutation::Replace(n, p) | Mutation::Append(n, p) | Mutation::Prepend(n, p) => {
            let Some(r) = pick(n) else { return };
            let piece = PIECES[p].as_bytes();
            match m {
                Mutation::Replace(..) => {
                    text.splice(r, piece.iter().copied());
                }
                Mutation::Append(..) => {
                    text.splice(r.end..r.end, piece.iter().copied());
                }
                _ => {
                    text.splice(r.start..r.start, piece.iter().copied());
                }
            }
        }
        Mutation::DeleteLine(n) | Mutation::DuplicateLine(n) | Mutation::SwapLines(n, _) => {
            let mut ls = lines(text);
            if ls.is_empty() {
                return;
            }
            let i = n % ls.len();
            match *m {
                Mutation::DeleteLine(_) => {
                    ls.remove(i);
                }
                Mutation::DuplicateLine(_) => {
                    let l = ls[i].clone();
                    ls.insert(i, l);
                }
                Mutation::SwapLines(_, j) => {
                    let j = j % ls.len();
                    ls.swap(i, j);
                }
                _ => {}
            }
            *text = ls.concat();
        }
        Mutation::Insert(at, what) => {
            let at = at % (text.len() + 1);
            text.splice(at..at, INSERTS[what].iter().copied());
        }
        Mutation::Truncate(at) => {
            let at = at % (text.len() + 1);
            text.truncate(at);
        }
    }
}

/// The text of a script outside single quotes and comments (a small POSIX
/// shell lexer: quotes span lines, `#` starts a comment at a word start).
fn outside_single_quotes(script: &str) -> String {
    let mut out = String::new();
    // Single quotes make everything literal; double quotes do not (their
    // content is kept, since `$(…)` runs there), and hold `'` literally.
    let (mut single, mut double, mut escaped, mut comment) = (false, false, false, false);
    let mut prev = '\n';
    for c in script.chars() {
        if comment {
            if c == '\n' {
                comment = false;
                out.push(c);
            }
            prev = c;
            continue;
        }
        if single {
            if c == '\'' {
                single = false;
            }
            prev = c;
            continue;
        }
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            double = !double;
        } else if c == '\'' && !double {
            single = true;
            prev = c;
            continue;
        } else if c == '#' && !double && (prev.is_whitespace() || prev == ';') {
            comment = true;
            prev = c;
            continue;
        }
        out.push(c);
        prev = c;
    }
    out
}

/// README lines that break their Markdown (see tests/hardening.rs).
fn markdown_breaks(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut header: Option<usize> = None;
    let mut fence = false;
    for (i, line) in readme.lines().enumerate() {
        if line.starts_with("```") {
            fence = !fence;
            continue;
        }
        if fence || line.starts_with("<a id=\"") {
            continue;
        }
        let outside = outside_code(line);
        if outside.contains('<') || outside.contains('>') {
            out.push(format!("line {}: raw HTML: {line}", i + 1));
        }
        if line.starts_with('|') {
            let b = outside.as_bytes();
            let cells = (0..b.len())
                .filter(|&i| b[i] == b'|' && (i == 0 || b[i - 1] != b'\\'))
                .count();
            match header {
                None => header = Some(cells),
                Some(h) if h != cells => {
                    out.push(format!("line {}: {cells} cells, not {h}: {line}", i + 1));
                }
                Some(_) => {}
            }
        } else {
            header = None;
        }
    }
    out
}

fn outside_code(line: &str) -> String {
    let b: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '\\' && i + 1 < b.len() {
            out.push(b[i]);
            out.push(b[i + 1]);
            i += 2;
            continue;
        }
        if b[i] == '`' {
            let n = b[i..].iter().take_while(|&&c| c == '`').count();
            let mut j = i + n;
            let mut close = None;
            while j < b.len() {
                if b[j] == '`' {
                    let m = b[j..].iter().take_while(|&&c| c == '`').count();
                    if m == n {
                        close = Some(j);
                        break;
                    }
                    j += m;
                } else {
                    j += 1;
                }
            }
            if let Some(j) = close {
                out.push_str("CODE");
                i = j + n;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[derive(Default, Debug)]
struct Tally {
    cases: usize,
    rejected: usize,
    accepted: usize,
    diagnostics: usize,
    binary: usize,
}

/// Checks one mutated plan in process.
fn check(name: &str, bytes: &[u8], tally: &mut Tally) -> Result<(), TestCaseError> {
    let source = SourceFile::from_bytes(format!("plans/{name}.toml"), bytes.to_vec());
    let checked = std::panic::catch_unwind(|| rewind::validate::check(&source, None))
        .map_err(|_| TestCaseError::fail("validation panicked"))?;
    let errors: Vec<_> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .collect();
    tally.diagnostics += checked.diagnostics.len();
    let rendered = std::panic::catch_unwind(|| render_all(&checked.diagnostics, &source))
        .map_err(|_| TestCaseError::fail("rendering diagnostics panicked"))?;
    for secret in SECRETS {
        prop_assert!(
            !rendered.contains(secret),
            "a diagnostic printed {secret}:\n{rendered}"
        );
    }
    let Some(model) = checked.model else {
        tally.rejected += 1;
        prop_assert!(!errors.is_empty(), "rejected without an error");
        for d in &errors {
            prop_assert!(d.span.is_some(), "unlocated: {d:?}");
            let json = d.to_json(&source);
            prop_assert!(json["line"].is_u64() && json["column"].is_u64(), "{json}");
        }
        prop_assert!(rendered.contains("-->"), "no location in:\n{rendered}");
        return Ok(());
    };
    tally.accepted += 1;
    prop_assert!(errors.is_empty());
    let bundle = std::panic::catch_unwind(|| {
        let plan = rewind::plan::plan(&model);
        rewind::render::bundle(&plan)
    })
    .map_err(|_| TestCaseError::fail("planning or rendering panicked"))?
    .map_err(|e| TestCaseError::fail(format!("rendering failed: {e:#}")))?;
    for (path, f) in &bundle.files {
        let text = String::from_utf8_lossy(&f.bytes);
        if path.ends_with(".md") {
            let breaks = markdown_breaks(&text);
            prop_assert!(breaks.is_empty(), "{path}: {breaks:#?}");
        } else if path.ends_with(".json") {
            prop_assert!(
                serde_json::from_slice::<serde_json::Value>(&f.bytes).is_ok(),
                "{path} is not JSON"
            );
        } else if path.ends_with(".sh") {
            prop_assert!(
                // The command itself; a value rewind turned into a plain
                // file name (`__touch__tmp_PWNED_kine`) is inert.
                !outside_single_quotes(&text).contains("touch /tmp/PWNED"),
                "{path}: a payload outside single quotes"
            );
        }
    }
    Ok(())
}

/// Every name in a folder, recursively.
fn tree(dir: &Utf8Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in d.read_dir_utf8().expect("list").flatten() {
            out.insert(e.path().strip_prefix(dir).unwrap().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path().to_owned());
            }
        }
    }
    out
}

/// Runs `rewind compile` on the mutated plan in a scratch folder.
fn check_binary(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
    fs::write(root.join("p.toml"), bytes).unwrap();
    fs::write(root.join("keep"), "x").unwrap();
    let before = tree(&root);
    let mut child = common::rewind(&root)
        .args(["compile", "p.toml", "--out", "build/out"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            return Err(TestCaseError::fail(
                "rewind compile hung (killed after 20 s)",
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let after = tree(&root);
    match status.code() {
        Some(1) => prop_assert_eq!(&after, &before, "a rejected compile wrote something"),
        Some(0) => {
            let added: BTreeSet<_> = after.difference(&before).cloned().collect();
            prop_assert!(
                added
                    .iter()
                    .all(|p| p == "build" || p.starts_with("build/out")),
                "outside the --out target: {added:?}"
            );
            prop_assert!(before.is_subset(&after), "something was removed");
            let res = common::rewind(&root)
                .args(["verify", "build/out"])
                .output()
                .unwrap();
            prop_assert_eq!(res.status.code(), Some(0), "the bundle does not verify");
        }
        other => {
            return Err(TestCaseError::fail(format!(
                "rewind compile exited {other:?}"
            )));
        }
    }
    Ok(())
}

/// Every `BINARY_EVERY`-th case also runs the binary.
const BINARY_EVERY: u64 = 40;

#[test]
fn mutation_campaign_over_the_reference_plans() {
    let cases: u32 = std::env::var("CAMPAIGN_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let plans: Vec<(String, Vec<u8>)> = common::plans()
        .into_iter()
        .map(|(name, path)| {
            let bytes = fs::read(common::repo().join(&path)).unwrap();
            (name, bytes)
        })
        .collect();
    // A watchdog: a case that takes more than 20 s is a hang.
    let current = Arc::new(Mutex::new(String::new()));
    let beat = Arc::new(AtomicU64::new(0));
    {
        let (current, beat) = (Arc::clone(&current), Arc::clone(&beat));
        std::thread::spawn(move || {
            let mut last = (u64::MAX, Instant::now());
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let now = beat.load(Ordering::SeqCst);
                if now != last.0 {
                    last = (now, Instant::now());
                } else if last.1.elapsed() > Duration::from_secs(20) {
                    eprintln!(
                        "campaign: case {now} hung for 20 s: {}",
                        current.lock().unwrap()
                    );
                    std::process::abort();
                }
            }
        });
    }
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[11; 32]));
    let tally = Mutex::new(Tally::default());
    let start = Instant::now();
    let strategy = (0..plans.len(), prop::collection::vec(mutation(), 1..=3));
    let result = runner.run(&strategy, |(p, mutations)| {
        let (name, base) = &plans[p];
        let mut bytes = base.clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let n = beat.fetch_add(1, Ordering::SeqCst) + 1;
        *current.lock().unwrap() = format!("{name} {mutations:?}");
        let mut t = tally.lock().unwrap();
        t.cases += 1;
        check(name, &bytes, &mut t)?;
        if n.is_multiple_of(BINARY_EVERY) {
            t.binary += 1;
            drop(t);
            check_binary(&bytes)?;
        }
        Ok(())
    });
    let t = tally.lock().unwrap();
    println!(
        "campaign: {} cases in {:.1} s over {} plans: {} rejected (all located), {} accepted and rendered, {} diagnostics, {} run through the binary; 0 panics, 0 hangs",
        t.cases,
        start.elapsed().as_secs_f64(),
        plans.len(),
        t.rejected,
        t.accepted,
        t.diagnostics,
        t.binary
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(t.rejected > 0 && t.accepted > 0, "{t:?}");
}
