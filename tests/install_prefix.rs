//! `[cluster] install-prefix` (issue 16, item 5): a tarball install under
//! /opt/rke2 (install.sh's fallback when /usr/local is read-only or a mount
//! point, docs/upstream-facts.md §4.2) is a plan key, and the scripts use it
//! for the rke2 binary, the units' `.env` files and the target's install;
//! a sandbox walk rolls a prefixed cluster back.

mod common;
#[path = "sandbox/mod.rs"]
#[allow(dead_code)] // each test crate uses part of the harness
mod harness;

use std::fs;
use std::path::PathBuf;

use harness::checks;
use harness::shells::Shell;
use harness::world::{World, plan_text};
use rewind::diagnostic::Severity;
use rewind::source::SourceFile;

fn source() -> SourceFile {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/valid/install-prefix.toml");
    SourceFile::new(
        "tests/valid/install-prefix.toml",
        fs::read_to_string(path).expect("read plan"),
    )
}

#[test]
fn the_plan_is_valid_without_a_warning() {
    let checked = rewind::validate::check(&source(), None);
    assert!(checked.model.is_some(), "{:#?}", checked.diagnostics);
    assert!(
        checked
            .diagnostics
            .iter()
            .all(|d| d.severity != Severity::Warning),
        "{:#?}",
        checked.diagnostics
    );
}

#[test]
fn the_scripts_use_the_prefix_and_tell_install_sh() {
    let bundle = rewind::compiler::build(&source(), None).expect("compiles");
    let text = |path: &str| {
        String::from_utf8(bundle.files[path].bytes.clone()).unwrap_or_else(|_| panic!("{path}"))
    };
    let preflight = text("nodes/server-1/01-preflight.sh");
    assert!(
        preflight.contains("check_rke2_version /opt/rke2/bin/rke2 "),
        "{preflight}"
    );
    assert!(
        preflight.contains("/opt/rke2/lib/systemd/system/rke2-server.env"),
        "{preflight}"
    );
    let install = text("nodes/agent-1/04-install.sh");
    assert!(
        install.contains(
            "install_airgap /root/rke2-artifacts amd64 agent /var/lib/rancher/rke2/agent/images /opt/rke2\n"
        ),
        "{install}"
    );
    assert!(install.contains("/opt/rke2/bin/rke2"), "{install}");
    for (path, file) in &bundle.files {
        let body = String::from_utf8_lossy(&file.bytes);
        if path.starts_with("nodes/") {
            assert!(
                !body.contains("/usr/local/bin/rke2"),
                "{path} uses /usr/local"
            );
        }
    }
    let readme = text("README.md");
    assert!(
        !readme.contains("adapted"),
        "the runbook still asks to adapt paths"
    );
    assert!(
        readme.contains("INSTALL_RKE2_TAR_PREFIX=/opt/rke2"),
        "the runbook says where the target is installed"
    );
}

#[test]
fn the_default_prefix_changes_nothing() {
    // Without the key, install.sh is not told a prefix (the golden bundles
    // pin the rest).
    let text = source()
        .text
        .replace("install-prefix = \"/opt/rke2\"\n", "");
    let bundle = rewind::compiler::build(&SourceFile::new("x.toml", text), None).expect("compiles");
    let install = String::from_utf8(bundle.files["nodes/agent-1/04-install.sh"].bytes.clone())
        .expect("utf-8");
    assert!(
        install.contains(
            "install_airgap /root/rke2-artifacts amd64 agent /var/lib/rancher/rke2/agent/images\n"
        ),
        "{install}"
    );
    assert!(install.contains("/usr/local/bin/rke2"), "{install}");
}

/// The etcd air-gap reference plan with `install-prefix = "/opt/rke2"`, run
/// in the sandbox under dash. The hosts are seeded as install.sh leaves a
/// prefixed install (the binary under /opt/rke2/bin, the units in
/// /etc/systemd/system, their `.env` files under /opt/rke2), and the
/// install.sh stand-in does what install.sh does with the prefix. Every step
/// runs in README order, under the same checks as the golden walks; the
/// target ends up under /opt/rke2 and nothing is installed in /usr/local.
#[test]
fn a_prefixed_install_rolls_back_in_the_sandbox() {
    let text = plan_text("etcd-airgap").replacen(
        "[cluster]\n",
        "[cluster]\ninstall-prefix = \"/opt/rke2\"\n",
        1,
    );
    assert!(text.contains("install-prefix"), "no [cluster] table");
    let w = World::compile("etcd-airgap-opt", &text, Shell::Dash)
        .unwrap_or_else(|d| panic!("the prefixed plan is refused: {d:#?}"));
    let before = w.digest();
    let runs = w.walk(&[]).unwrap_or_else(|runs| {
        panic!(
            "the walk stopped:\n{}",
            runs.last().expect("a run").describe()
        )
    });
    let mut p = checks::order(&w, &w.journal());
    p.extend(checks::state(&w, &runs, &before));
    p.extend(checks::no_secrets(&w, &runs));
    p.extend(checks::bundle_intact(&w));
    let f = w.facts();
    for (node, _, _) in &f.nodes {
        let h = w.host(node);
        let bin = h.text("/opt/rke2/bin/rke2").unwrap_or_default();
        if !bin.contains(&format!("RKE2_STUB_VERSION={}\n", f.target)) {
            p.push(format!("{node}: /opt/rke2/bin/rke2 is not the target"));
        }
        for path in [
            "/usr/local/bin/rke2",
            "/usr/local/lib/systemd/system/rke2-server.service",
        ] {
            if h.read(path).is_some() {
                p.push(format!("{node}: {path} was installed"));
            }
        }
    }
    assert!(p.is_empty(), "{}", p.join("\n"));
}
