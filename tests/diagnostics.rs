//! What `rewind check` prints for plans with one defect each.
//!
//! `tests/invalid/*.toml` holds one plan per defect; its first line says
//! which. Each renders, exactly as `rewind check` prints it
//! (`diagnostic::render_all`), into one insta snapshot under
//! `tests/snapshots/`, together with the exit code `check` returns. Files
//! named `warning-*.toml` hold a defect that is only a warning: those plans
//! compile, every other one is rejected and nothing would be written.
//!
//! To accept changed output: `INSTA_UPDATE=always cargo test --test
//! diagnostics`, then read the diff before committing. Under `CI=true`
//! insta never writes and a mismatch fails the test.

use std::path::Path;

use rewind::app::exit;
use rewind::compiler;
use rewind::diagnostic::{Severity, render_all};
use rewind::source::SourceFile;
use rewind::validate;

/// The plan under the name diagnostics show: relative to the crate root,
/// the way an operator would type it, never an absolute path.
fn source(path: &Path) -> SourceFile {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let name = path
        .strip_prefix(root)
        .expect("test plans live inside the crate")
        .to_str()
        .expect("test plan names are UTF-8")
        .replace('\\', "/");
    let text = std::fs::read_to_string(path).expect("read test plan");
    SourceFile::new(name, text)
}

/// What `rewind check PLAN [--to VERSION]` prints on stderr, and its exit code.
fn check_output(source: &SourceFile, to: Option<&str>) -> String {
    let checked = validate::check(source, to);
    let code = if checked.model.is_some() {
        exit::OK
    } else {
        exit::REJECTED
    };
    format!(
        "{}exit: {code} ({})\n",
        render_all(&checked.diagnostics, source),
        if code == exit::OK {
            "accepted"
        } else {
            "rejected"
        }
    )
}

fn is_warning_case(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("warning-"))
}

#[test]
fn invalid_plans_render_their_diagnostics() {
    insta::glob!("invalid/*.toml", |path| {
        let source = source(path);
        assert!(
            source.text.starts_with("# "),
            "{}: the first line must be a `#` comment stating the intent",
            source.name
        );
        insta::assert_snapshot!(check_output(&source, None));
    });
}

#[test]
fn each_invalid_plan_has_exactly_one_defect() {
    insta::glob!("invalid/*.toml", |path| {
        let source = source(path);
        let diags = validate::check(&source, None).diagnostics;
        assert_eq!(
            diags.len(),
            1,
            "{}: expected one diagnostic, got {diags:#?}",
            source.name
        );
        let d = &diags[0];
        let expected = if is_warning_case(path) {
            Severity::Warning
        } else {
            Severity::Error
        };
        assert_eq!(d.severity, expected, "{}: {d:?}", source.name);
        assert!(d.span.is_some(), "{}: no span: {d:?}", source.name);
        assert!(
            d.help.as_deref().is_some_and(|h| !h.is_empty()),
            "{}: no help: {d:?}",
            source.name
        );
        let rendered = render_all(&diags, &source);
        assert!(
            rendered.contains(&format!("--> {}:", source.name)),
            "{}: no `-->` line:\n{rendered}",
            source.name
        );
    });
}

#[test]
fn invalid_plans_write_nothing() {
    insta::glob!("invalid/*.toml", |path| {
        let source = source(path);
        let built = compiler::build(&source, None);
        if is_warning_case(path) {
            assert!(
                built.is_ok(),
                "{}: a warning must not reject the plan",
                source.name
            );
        } else {
            let diags = built
                .err()
                .unwrap_or_else(|| panic!("{}: rejected plan produced a bundle", source.name));
            assert!(
                diags.iter().any(rewind::diagnostic::Diagnostic::is_error),
                "{}",
                source.name
            );
        }
    });
}

#[test]
fn reference_plans_have_no_errors() {
    let plans = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let mut seen = 0;
    for entry in std::fs::read_dir(&plans).expect("plans/ exists") {
        let path = entry.expect("read plans/").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        seen += 1;
        let source = source(&path);
        let checked = validate::check(&source, None);
        let errors: Vec<_> = checked
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .collect();
        assert!(
            errors.is_empty() && checked.model.is_some(),
            "{}:\n{}",
            source.name,
            render_all(&checked.diagnostics, &source)
        );
    }
    assert!(
        seen >= 7,
        "expected the reference plans in plans/, found {seen}"
    );
}

/// `--to` replaces the plan's target-version: valid and invalid values.
#[test]
fn to_overrides_the_target() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/valid/etcd.toml");
    let source = source(&path);
    let plain = check_output(&source, None);
    assert_eq!(plain, "exit: 0 (accepted)\n", "the base plan is clean");

    // A valid override: another patch of the snapshot's minor.
    let checked = validate::check(&source, Some("v1.28.8+rke2r1"));
    let model = checked.model.expect("--to v1.28.8+rke2r1 is accepted");
    let rewind::model::Kind::Rke2(rke2) = &model.kind else {
        panic!("tests/valid/etcd.toml is an rke2 plan");
    };
    assert_eq!(rke2.target.to_string(), "v1.28.8+rke2r1");
    insta::assert_snapshot!(
        "to-older-patch",
        check_output(&source, Some("v1.28.8+rke2r1"))
    );

    // An override wins over a plan target that would be rejected.
    let text = source.text.replace(
        "target-version = \"v1.28.9+rke2r1\"",
        "target-version = \"v1.29.4+rke2r1\"",
    );
    let same = SourceFile::new(source.name.clone(), text);
    assert!(validate::check(&same, None).model.is_none());
    assert!(
        validate::check(&same, Some("v1.28.9+rke2r1"))
            .model
            .is_some()
    );

    for (name, to) in [
        ("to-unparsable", "v1.28"),
        ("to-newer-than-current", "v1.30.1+rke2r1"),
        ("to-equal-to-current", "v1.29.4+rke2r1"),
        ("to-other-minor", "v1.27.13+rke2r1"),
    ] {
        let out = check_output(&source, Some(to));
        assert!(out.contains("--to"), "{name}: does not name --to:\n{out}");
        assert!(out.ends_with("exit: 1 (rejected)\n"), "{name}:\n{out}");
        assert!(compiler::build(&source, Some(to)).is_err(), "{name}");
        insta::assert_snapshot!(name, out);
    }

    // skipped-minors from --to names it too (a warning; the plan compiles).
    let text = source.text.replace("v1.29.4+rke2r1", "v1.30.2+rke2r1");
    let newer = SourceFile::new(source.name.clone(), text);
    let out = check_output(&newer, Some("v1.28.8+rke2r1"));
    assert!(out.ends_with("exit: 0 (accepted)\n"), "{out}");
    insta::assert_snapshot!("to-skipped-minors", out);
}
