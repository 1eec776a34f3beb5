//! The modules of `src/` depend on each other without a cycle, so the
//! pipeline reads one way (spec → validate → plan → render → bundle) and each
//! module can be understood, tested and changed with only what is below it.
//!
//! The test reads every `src/**/*.rs`, treats `src/foo.rs` and `src/foo/` as
//! one module `foo`, and collects the references each module makes to the
//! others: `crate::x` paths anywhere in code (in `use` lines, groups such as
//! `use crate::{a, b::c}`, and expressions), and `super::` paths that climb
//! to the crate root. Comments and string literals are skipped. `lib.rs`
//! (which declares the modules) and `main.rs` (the binary, which uses the
//! library by its name) are not modules. Unit tests inside a module count
//! like the rest of its code.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use camino::{Utf8Path, Utf8PathBuf};

/// Edges that close a cycle today and whose cut needs a change inside
/// `validate/` (issue 12): left out of the check until then, each with what
/// cuts it. The test fails once an edge here is gone, so the list shrinks.
const WAIVED: &[(&str, &str, &str)] = &[];

/// Where a dependency was seen: file and 1-based line.
#[derive(Debug, Clone)]
struct Seen {
    file: Utf8PathBuf,
    line: usize,
}

/// module → module it refers to → first place it does.
type Graph = BTreeMap<String, BTreeMap<String, Seen>>;

#[test]
fn src_has_no_import_cycle() {
    let src = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = graph(&src);
    assert!(
        graph.len() > 10,
        "found only {} modules under {src}: {:?}",
        graph.len(),
        graph.keys().collect::<Vec<_>>()
    );
    for (from, to, why) in WAIVED {
        let edge = graph.get_mut(*from).and_then(|edges| edges.remove(*to));
        assert!(
            edge.is_some(),
            "{from} → {to} is gone ({why}): remove it from WAIVED in tests/architecture.rs"
        );
    }
    let cycles = cycles(&graph);
    if !cycles.is_empty() {
        let mut msg = String::from("src/ has import cycles (each edge: where it is made):\n");
        for (component, cycle) in &cycles {
            let _ = writeln!(msg, "\n  {}", cycle.join(" → "));
            let _ = writeln!(msg, "  every edge among {component:?}:");
            for (from, edges) in graph.iter().filter(|(m, _)| component.contains(*m)) {
                for (to, seen) in edges.iter().filter(|(m, _)| component.contains(*m)) {
                    let _ = writeln!(msg, "    {from} → {to}: {}:{}", seen.file, seen.line);
                }
            }
        }
        panic!("{msg}");
    }
}

#[test]
fn the_reader_finds_every_form_of_reference() {
    let code = r##"
//! crate::doc is a comment
use crate::{alpha, beta::{Thing, other}, gamma::*};
use crate::delta as d;
use super::epsilon;
fn f() -> crate::zeta::Z {
    let s = "crate::string is text";
    let r = r#"crate::raw"#;
    let c = '"';
    let l: &'static str = "x";
    /* crate::block /* nested */ crate::still_comment */
    super::super::eta::g();
    crate::theta::h()
}
"##;
    let mut found: Vec<String> = references(code, 1).into_iter().map(|(m, _)| m).collect();
    found.sort();
    found.dedup();
    assert_eq!(
        found,
        [
            "alpha", "beta", "delta", "epsilon", "gamma", "theta", "zeta"
        ],
        "depth 1 (src/foo.rs): super:: is the crate root, super::super:: is outside"
    );
    let nested: Vec<String> = references("use super::x; use super::super::y;", 2)
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert_eq!(nested, ["y"], "depth 2 (src/foo/bar.rs)");
}

#[test]
fn cycles_are_found_and_named() {
    let mut g = Graph::new();
    let seen = Seen {
        file: "x".into(),
        line: 1,
    };
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        g.entry(a.into())
            .or_default()
            .insert(b.into(), seen.clone());
        g.entry(b.into()).or_default();
    }
    let found = cycles(&g);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1, ["a", "b", "c", "a"]);
    g.get_mut("c").unwrap().remove("a");
    assert!(cycles(&g).is_empty());
}

/// The module graph of the crate under `src`.
fn graph(src: &Utf8Path) -> Graph {
    let mut graph = Graph::new();
    let mut files = Vec::new();
    walk(src, &mut files);
    files.sort();
    for file in files {
        let rel = file.strip_prefix(src).expect("under src/");
        let parts: Vec<&str> = rel.iter().collect();
        if matches!(parts.as_slice(), ["lib.rs" | "main.rs"]) {
            continue;
        }
        let top = parts[0].trim_end_matches(".rs").to_owned();
        // How deep the file's module is: src/foo.rs and src/foo/mod.rs are
        // `crate::foo` (1), src/foo/bar.rs is `crate::foo::bar` (2).
        let depth = match parts.last() {
            Some(&"mod.rs") => parts.len() - 1,
            _ => parts.len(),
        };
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {file}: {e}"));
        let edges = graph.entry(top.clone()).or_default();
        for (module, line) in references(&text, depth) {
            if module != top {
                edges.entry(module).or_insert_with(|| Seen {
                    file: Utf8Path::new("src").join(rel),
                    line,
                });
            }
        }
    }
    // Only modules that exist: `crate::foo` for a foo that is a macro or a
    // re-export at the root would be noise.
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for edges in graph.values_mut() {
        edges.retain(|m, _| modules.contains(m));
    }
    graph
}

fn walk(dir: &Utf8Path, out: &mut Vec<Utf8PathBuf>) {
    for entry in dir
        .read_dir_utf8()
        .unwrap_or_else(|e| panic!("read {dir}: {e}"))
    {
        let entry = entry.expect("read src/");
        let path = entry.path().to_owned();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension() == Some("rs") {
            out.push(path);
        }
    }
}

/// The top-level modules that code at module `depth` (1 for `src/foo.rs`)
/// refers to, with the line of each reference.
fn references(text: &str, depth: usize) -> Vec<(String, usize)> {
    let tokens = tokens(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (tok, line) = (&tokens[i].0, tokens[i].1);
        // `::` right before means this is a path's inner segment
        // (`$crate::`, `foo::crate` cannot happen, `self::super` can).
        let after_path = i > 0 && tokens[i - 1].0 == "::";
        if tok == "crate" && !after_path && next_is(&tokens, i + 1, "::") {
            collect(&tokens, i + 2, &mut out, line);
        } else if tok == "super" && !after_path {
            // Climb `super::super::…` to the crate root, if it gets there.
            let mut ups = 0;
            let mut j = i;
            while tokens.get(j).is_some_and(|t| t.0 == "super") && next_is(&tokens, j + 1, "::") {
                ups += 1;
                j += 2;
            }
            if ups == depth {
                collect(&tokens, j, &mut out, line);
            }
            i = j.max(i + 1);
            continue;
        }
        i += 1;
    }
    out
}

fn next_is(tokens: &[(String, usize)], i: usize, what: &str) -> bool {
    tokens.get(i).is_some_and(|t| t.0 == what)
}

/// After `crate::`: one module name, or a `{…}` group of paths whose first
/// segments are module names.
fn collect(tokens: &[(String, usize)], i: usize, out: &mut Vec<(String, usize)>, line: usize) {
    let Some((tok, _)) = tokens.get(i) else {
        return;
    };
    if tok != "{" {
        if is_ident(tok) {
            out.push((tok.clone(), line));
        }
        return;
    }
    let mut depth = 0usize;
    // At depth 1, a name that starts a path (after `{` or `,`).
    let mut starts = true;
    for (t, l) in &tokens[i..] {
        match t.as_str() {
            "{" => {
                depth += 1;
                starts = depth == 1;
            }
            "}" => {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
            "," if depth == 1 => starts = true,
            _ => {
                if starts && depth == 1 && is_ident(t) && t != "self" {
                    out.push((t.clone(), *l));
                }
                starts = false;
            }
        }
    }
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && t.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Rust tokens as far as paths need them: identifiers, `::`, and single
/// punctuation, with their line; comments, strings and characters dropped.
fn tokens(text: &str) -> Vec<(String, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if at(i) == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 1;
        } else if (c == 'r' || (c == 'b' && at(i + 1) == 'r'))
            && matches!(at(i + 1 + usize::from(c == 'b')), '#' | '"')
            && {
                // r"…", r#"…"#, br"…": count the hashes, then a quote.
                let mut j = i + 1 + usize::from(c == 'b');
                while at(j) == '#' {
                    j += 1;
                }
                at(j) == '"'
            }
        {
            let mut j = i + 1 + usize::from(c == 'b');
            let mut hashes = 0;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#') {
                    j += 1 + hashes;
                    break;
                }
                if chars[j] == '\n' {
                    line += 1;
                }
                j += 1;
            }
            i = j;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\'', '\u{1F600}') or a
            // lifetime ('a, 'static).
            if at(i + 1) == '\\' {
                let mut j = i + 2;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((chars[start..i].iter().collect(), line));
        } else if c == ':' && at(i + 1) == ':' {
            out.push(("::".to_owned(), line));
            i += 2;
        } else {
            out.push((c.to_string(), line));
            i += 1;
        }
    }
    out
}

/// The strongly connected components that hold a cycle, each with its
/// shortest cycle through its first module, as `[a, b, …, a]`.
fn cycles(graph: &Graph) -> Vec<(BTreeSet<String>, Vec<String>)> {
    let mut out = Vec::new();
    for component in components(graph) {
        let single = component.len() == 1;
        let start = component.iter().next().expect("non-empty").clone();
        if single && !graph[&start].contains_key(&start) {
            continue;
        }
        // Shortest way back to the start, inside the component.
        let mut prev: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        let mut found = None;
        while let Some(m) = queue.pop_front() {
            for next in graph[&m].keys().filter(|n| component.contains(*n)) {
                if *next == start {
                    found = Some(m.clone());
                    break;
                }
                if !prev.contains_key(next) {
                    prev.insert(next.clone(), m.clone());
                    queue.push_back(next.clone());
                }
            }
            if found.is_some() {
                break;
            }
        }
        let mut path = vec![start.clone()];
        let mut at = found.expect("a component has a cycle");
        while at != start {
            path.push(at.clone());
            at = prev[&at].clone();
        }
        path.push(start);
        path.reverse();
        out.push((component, path));
    }
    out
}

/// Strongly connected components (Tarjan), each sorted.
fn components(graph: &Graph) -> Vec<BTreeSet<String>> {
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph[v].keys() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.insert(w.to_owned());
                if w == v {
                    break;
                }
            }
            s.out.push(component);
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}
