//! Static checks of every golden file (docs/architecture.md, "Outside `src/`"): each script
//! starts with `#!/bin/sh`, uses LF, is executable, ends with `main "$@"`;
//! each bundle has one runtime library (mode 0644); scripts and library
//! have no `shellcheck -s sh` finding and parse in six POSIX shells; no file
//! holds a path of the compiling machine or a secret; every check a
//! preflight calls reports its problem and lets the next check run (the
//! `rw_check_op` hook of the library). The golden test proves
//! `golden/` is what the plans compile to, so these checks cover the output.
//!
//! The shells and shellcheck are required: a missing one fails the test with
//! the command that installs it.

mod common;

use std::process::Command;
use std::thread;

use camino::{Utf8Path, Utf8PathBuf};
use rewind::bundle::Bundle;
use rewind::render::Library;

/// `-n` (parse only) under each shell a generated script must run in.
const SHELLS: &[(&str, &[&str])] = &[
    ("dash", &[]),
    ("posh", &[]),
    ("yash", &["-o", "posixlycorrect"]),
    ("mksh", &[]),
    ("busybox", &["sh"]),
    ("bash", &["--posix"]),
];

/// The last line of every script: a truncated copy defines functions only
/// and runs nothing.
const LAST_LINE: &str = "main \"$@\"";

/// Every golden bundle, as read from disk with its exact modes, by folder.
/// Fails when a plan has no golden folder: the checks would pass on nothing.
fn golden_bundles() -> Vec<(Utf8PathBuf, Bundle)> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for (name, _) in common::plans() {
        let dir = Utf8Path::new(common::GOLDEN).join(&name);
        if !dir.is_dir() {
            missing.push(dir.to_string());
            continue;
        }
        let bundle = rewind::bundle::read(&dir).unwrap_or_else(|e| panic!("read {dir}: {e}"));
        out.push((dir, bundle));
    }
    assert!(
        missing.is_empty(),
        "golden bundles missing: {}\nwrite them with `UPDATE_GOLDEN=1 cargo test --test golden`",
        missing.join(", ")
    );
    out
}

/// Every `*.sh` of every golden bundle, as paths relative to the repository.
fn golden_scripts() -> Vec<Utf8PathBuf> {
    let scripts: Vec<_> = golden_bundles()
        .into_iter()
        .flat_map(|(dir, b)| {
            b.files
                .into_keys()
                .filter(|p| p.ends_with(".sh"))
                .map(move |p| dir.join(p))
        })
        .collect();
    assert!(!scripts.is_empty(), "no scripts under golden/");
    scripts
}

#[test]
fn scripts_start_with_sh_use_lf_are_executable_and_end_with_main() {
    let mut problems = Vec::new();
    let mut count = 0;
    for (dir, bundle) in golden_bundles() {
        let mut libraries = 0;
        for (path, file) in bundle.files.iter().filter(|(p, _)| p.ends_with(".sh")) {
            let at = dir.join(path);
            let text = &file.bytes;
            if Library::is_library(path) {
                // The runtime library: sourced by the scripts, never run.
                libraries += 1;
                if !text.starts_with(b"# rewind runtime library") {
                    problems.push(format!("{at}: does not start with the library's header"));
                }
                if rewind::golden::git_mode(file.mode) != 0o644 {
                    problems.push(format!("{at}: mode {:04o}, not 0644", file.mode));
                }
                continue;
            }
            count += 1;
            if !text.starts_with(b"#!/bin/sh\n") {
                problems.push(format!("{at}: does not start with the line `#!/bin/sh`"));
            }
            if let Some(i) = text.iter().position(|&b| b == b'\r') {
                let line = bytecount_lines(&text[..i]) + 1;
                problems.push(format!("{at}:{line}: carriage return (CRLF); LF only"));
            }
            if rewind::golden::git_mode(file.mode) != 0o755 {
                problems.push(format!("{at}: mode {:04o}, not executable", file.mode));
            }
            let ends_with_main = text
                .strip_suffix(b"\n")
                .and_then(|t| t.strip_suffix(LAST_LINE.as_bytes()))
                .is_some_and(|t| t.is_empty() || t.ends_with(b"\n"));
            if !ends_with_main {
                problems.push(format!(
                    "{at}: the last line is not `{LAST_LINE}` (followed by a newline)"
                ));
            }
        }
        if libraries != 1 {
            problems.push(format!("{dir}: {libraries} libraries under lib/, not 1"));
        }
    }
    // Git keeps only the execute bit; the exact mode is the compiler's.
    for (name, plan) in common::plans() {
        let text = std::fs::read_to_string(&plan).expect("read plan");
        let source = rewind::source::SourceFile::new(plan.as_str(), text);
        let bundle = rewind::compiler::build(&source, None).expect("reference plan compiles");
        for (path, file) in &bundle.files {
            let want = if path.ends_with(".sh") && !Library::is_library(path) {
                0o755
            } else {
                0o644
            };
            if file.mode != want {
                problems.push(format!(
                    "{name}: {path} is compiled with mode {:04o}, not {want:04o}",
                    file.mode
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems in {count} scripts:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Runs `shellcheck -s sh` over `files` in batches (one per core) and
/// returns every finding, `path:line:col: level: message [SCnnnn]`.
///
/// A file found clean is remembered by the hash of its contents and of the
/// shellcheck version (in cargo's test scratch folder), so an unchanged
/// golden tree is not checked again; findings are never remembered.
fn shellcheck(files: &[Utf8PathBuf], cwd: &Utf8Path) -> Vec<String> {
    let shellcheck = common::require_tool("shellcheck");
    let version = Command::new(&shellcheck)
        .arg("--version")
        .output()
        .expect("run shellcheck --version")
        .stdout;
    let cache = Utf8Path::new(env!("CARGO_TARGET_TMPDIR")).join("shellcheck-clean");
    std::fs::create_dir_all(&cache).expect("create the shellcheck cache");
    let key = |file: &Utf8PathBuf| {
        let mut text = version.clone();
        text.extend_from_slice(b"\0-s sh\0");
        text.extend(std::fs::read(cwd.join(file)).expect("read script"));
        cache.join(rewind::digest::sha256_hex(&text))
    };
    let todo: Vec<_> = files.iter().filter(|f| !key(f).exists()).cloned().collect();
    let cores = thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let batch = todo.len().div_ceil(cores).max(1);
    let findings: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = todo
            .chunks(batch)
            .map(|chunk| {
                let shellcheck = &shellcheck;
                s.spawn(move || {
                    let out = Command::new(shellcheck)
                        .current_dir(cwd)
                        .args(["-s", "sh", "-f", "gcc", "--"])
                        .args(chunk)
                        .output()
                        .expect("run shellcheck");
                    let text = String::from_utf8_lossy(&out.stdout).into_owned();
                    match out.status.code() {
                        Some(0) => Vec::new(),
                        Some(1) => text.lines().map(str::to_owned).collect(),
                        _ => panic!(
                            "shellcheck could not check the scripts:\n{}",
                            common::describe(&out)
                        ),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("shellcheck thread"))
            .collect()
    });
    for file in &todo {
        let prefix = format!("{file}:");
        if !findings.iter().any(|f| f.starts_with(&prefix)) {
            std::fs::write(key(file), "").expect("remember a clean script");
        }
    }
    findings
}

/// A stand-in for a node's name; no script contains it.
const NODE_TOKEN: &str = "rewind-node-name-stand-in";

/// The node a script belongs to: `<golden>/<plan>/nodes/<node>/<file>`.
fn node_of(script: &Utf8Path) -> Option<&str> {
    let parts: Vec<&str> = script.components().map(|c| c.as_str()).collect();
    match parts.as_slice() {
        [.., "nodes", node, _file] => Some(node),
        _ => None,
    }
}

/// Groups scripts that are the same text but for their node's name (the
/// per-node copies of a step), each group led by its first script. A node
/// name is a DNS label or an address, so one such word in place of another
/// cannot change what shellcheck finds; checking one script per group keeps
/// a 50-node plan from multiplying the cost of the check by 50.
fn same_but_node_name(scripts: &[Utf8PathBuf]) -> Vec<Vec<Utf8PathBuf>> {
    let mut groups: Vec<(String, Vec<Utf8PathBuf>)> = Vec::new();
    for script in scripts {
        let text = std::fs::read_to_string(common::repo().join(script)).expect("read script");
        let plan = script
            .parent()
            .and_then(|p| p.parent())
            .and_then(|p| p.parent());
        let key = match node_of(script) {
            Some(node) if !text.contains(NODE_TOKEN) => format!(
                "{}\0{}",
                plan.map_or("", |p| p.as_str()),
                text.replace(node, NODE_TOKEN)
            ),
            _ => script.to_string(),
        };
        let hash = rewind::digest::sha256_hex(key.as_bytes());
        match groups.iter_mut().find(|(h, _)| *h == hash) {
            Some((_, members)) => members.push(script.clone()),
            None => groups.push((hash, vec![script.clone()])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

#[test]
fn shellcheck_finds_nothing() {
    let scripts = golden_scripts();
    let groups = same_but_node_name(&scripts);
    let leaders: Vec<Utf8PathBuf> = groups.iter().map(|g| g[0].clone()).collect();
    let findings = shellcheck(&leaders, common::repo());
    let mut report = findings.clone();
    for group in groups.iter().filter(|g| g.len() > 1) {
        let prefix = format!("{}:", group[0]);
        if findings.iter().any(|f| f.starts_with(&prefix)) {
            report.push(format!(
                "(the findings of {} apply to {} more scripts that differ from it only in the \
                 node name: {})",
                group[0],
                group.len() - 1,
                group[1..]
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    assert!(
        findings.is_empty(),
        "shellcheck -s sh: {} findings in {} scripts ({} checked; the others differ from one \
         of those only in the node name):\n{}",
        findings.len(),
        scripts.len(),
        leaders.len(),
        report.join("\n")
    );
}

/// Parses every file with `-n` under every shell of [`SHELLS`] (one thread
/// per shell) and returns each rejection with the shell's message.
fn parse_errors(files: &[Utf8PathBuf], cwd: &Utf8Path) -> Vec<String> {
    let shells: Vec<_> = SHELLS
        .iter()
        .map(|(name, args)| (common::require_tool(name), *name, *args))
        .collect();
    thread::scope(|s| {
        let handles: Vec<_> = shells
            .iter()
            .map(|(program, name, args)| {
                s.spawn(move || {
                    let label = std::iter::once(*name)
                        .chain(args.iter().copied())
                        .collect::<Vec<_>>()
                        .join(" ");
                    let mut errors = Vec::new();
                    for file in files {
                        let out = Command::new(program)
                            .current_dir(cwd)
                            .args(*args)
                            .arg("-n")
                            .arg(file)
                            .output()
                            .expect("run a shell");
                        if !out.status.success() {
                            errors.push(format!(
                                "{file}: `{label} -n` exits {:?}: {}",
                                out.status.code(),
                                String::from_utf8_lossy(&out.stderr).trim()
                            ));
                        }
                    }
                    errors
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("shell thread"))
            .collect()
    })
}

#[test]
fn scripts_parse_in_six_posix_shells() {
    let scripts = golden_scripts();
    let errors = parse_errors(&scripts, common::repo());
    assert!(
        errors.is_empty(),
        "{} parse errors in {} scripts:\n{}",
        errors.len(),
        scripts.len(),
        errors.join("\n")
    );
}

#[test]
fn golden_files_hold_no_machine_path_and_no_secret() {
    let plan_texts: Vec<String> = common::plans()
        .iter()
        .map(|(_, p)| std::fs::read_to_string(p).expect("read plan"))
        .collect();
    let forbidden = common::machine_paths(&plan_texts);
    let mut problems = Vec::new();
    for (dir, bundle) in golden_bundles() {
        for (path, file) in &bundle.files {
            let text = String::from_utf8_lossy(&file.bytes);
            for p in &forbidden {
                if let Some(i) = text.find(p.as_str()) {
                    let line = text[..i].matches('\n').count() + 1;
                    problems.push(format!(
                        "{dir}/{path}:{line}: `{p}`, a path of the compiling machine"
                    ));
                }
            }
            for s in common::secrets_in(&text) {
                problems.push(format!("{dir}/{path}: holds {s}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "checked for {forbidden:?} and secrets:\n{}",
        problems.join("\n")
    );
}

/// The checks above must be able to fail: a bashism and a syntax error are
/// caught by shellcheck and by every shell.
#[test]
fn the_checkers_reject_a_broken_script() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Utf8Path::from_path(dir.path()).expect("utf-8");
    std::fs::write(
        root.join("bashism.sh"),
        "#!/bin/sh\nmain() {\n\tlocal x=1\n\t[[ $x == 1 ]] && echo $1\n}\nmain \"$@\"\n",
    )
    .expect("write");
    std::fs::write(root.join("unclosed.sh"), "#!/bin/sh\ncase x in\n").expect("write");
    let bashism = [Utf8PathBuf::from("bashism.sh")];
    let unclosed = [Utf8PathBuf::from("unclosed.sh")];

    let findings = shellcheck(&bashism, root).join("\n");
    for code in ["SC3043", "SC3010", "SC2086"] {
        assert!(findings.contains(code), "{code} not reported:\n{findings}");
    }
    let errors = parse_errors(&unclosed, root);
    assert_eq!(errors.len(), SHELLS.len(), "{errors:#?}");
}

/// Every function a golden script calls in its `preflight()` starts with
/// the library's hook `rw_check_op NAME …`, which runs it apart so that the
/// preflight reports every problem at once (issue 16, item 1): a check
/// without it would stop the preflight at its first problem again.
#[test]
fn every_preflight_check_reports_and_lets_the_next_one_run() {
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (dir, bundle) in golden_bundles() {
        let library = bundle
            .files
            .iter()
            .find(|(p, _)| Library::is_library(p))
            .map_or_else(
                || panic!("{dir}: no library"),
                |(_, f)| String::from_utf8_lossy(&f.bytes).into_owned(),
            );
        for (path, file) in &bundle.files {
            if !path.ends_with(".sh") || Library::is_library(path) {
                continue;
            }
            let text = String::from_utf8_lossy(&file.bytes);
            let Some(body) = text
                .split_once("\npreflight() {\n")
                .and_then(|(_, rest)| rest.split_once("\n}\n"))
                .map(|(body, _)| body)
            else {
                continue;
            };
            for line in body.lines() {
                // A call is a tab-indented line (a quoted argument may go on
                // over lines of its own).
                let Some(call) = line.strip_prefix('\t') else {
                    continue;
                };
                let func = call.split(' ').next().unwrap_or_default();
                if func == ":" || !seen.insert((dir.clone(), func.to_owned())) {
                    continue;
                }
                let hook = format!(
                    "\n{func}() {{\n\trw_check_op {func} ${{1+\"$@\"}}; if [ \"$_rw_ran\" = 1 ]; then return 0; fi\n"
                );
                if !library.contains(&hook) {
                    problems.push(format!(
                        "{dir}/{path}: {func} is called in preflight() but does not start with `rw_check_op {func} ${{1+\"$@\"}}; …` in the library"
                    ));
                }
            }
        }
    }
    assert!(seen.len() > 20, "only {} checks seen", seen.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Line ends in `bytes`.
fn bytecount_lines(bytes: &[u8]) -> usize {
    bytes.split(|&b| b == b'\n').count() - 1
}
