//! Runs the shell library's own test suite (`tests/shell/run.sh`) under all
//! six shells, strictly: a missing shell or tool fails the test instead of
//! being skipped, because CI installs every one of them (`.ci/run`).

use std::process::Command;

#[test]
fn shell_library_passes_under_all_six_shells() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("sh")
        .arg(format!("{root}/tests/shell/run.sh"))
        .args(["dash", "posh", "yash", "mksh", "busybox", "bash"])
        .env("REWIND_TEST_STRICT", "1")
        .current_dir(root)
        .output()
        .expect("sh runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("shell library tests:"))
        .unwrap_or_else(|| panic!("no summary line\nstdout:\n{stdout}\nstderr:\n{stderr}"));
    println!("{summary}");
    assert!(
        out.status.success() && summary.contains(" 0 failures") && summary.contains(" 0 skipped"),
        "shell library tests failed or skipped some (install the tools with `bash .ci/run`)\n{summary}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}
