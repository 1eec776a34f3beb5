//! Compiles a test plan (whose paths, ports and S3 endpoint point at the
//! fixtures) with the library, writes the bundle, and finds its scripts by
//! step id and host through `plan.json`.

use std::path::{Path, PathBuf};

use camino::Utf8PathBuf;
use rewind::source::SourceFile;

/// A bundle written to disk.
pub struct Compiled {
    /// The bundle folder.
    pub dir: PathBuf,
    /// Its `plan.json`.
    pub plan: serde_json::Value,
}

/// Compiles `toml` into `out/bundle`; fails the test with the diagnostics if
/// the plan is rejected.
pub fn compile(toml: &str, out: &Path) -> Compiled {
    let source = SourceFile::new("test-plan.toml", toml);
    let bundle = rewind::compiler::build(&source, None).unwrap_or_else(|diags| {
        let text: Vec<String> = diags.iter().map(|d| format!("{d:?}")).collect();
        panic!("the test plan was rejected:\n{}\n{toml}", text.join("\n"))
    });
    let dir = out.join("bundle");
    let utf8 = Utf8PathBuf::from_path_buf(dir.clone()).expect("utf-8 temp path");
    rewind::bundle::write(&bundle, &utf8, false).expect("write bundle");
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("plan.json")).expect("read plan.json"))
            .expect("plan.json is JSON");
    Compiled { dir, plan }
}

impl Compiled {
    /// The steps' ids in order.
    pub fn step_ids(&self) -> Vec<String> {
        self.steps()
            .iter()
            .map(|s| s["id"].as_str().expect("step id").to_owned())
            .collect()
    }

    /// `(host, script path)` of every script of step `id`, in plan order.
    pub fn scripts(&self, id: &str) -> Vec<(String, PathBuf)> {
        let step = self
            .steps()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| {
                panic!("no step `{id}` in the bundle; steps: {:?}", self.step_ids())
            });
        let hosts = step["where"].as_array().expect("where");
        let scripts = step["scripts"].as_array().expect("scripts");
        assert_eq!(
            hosts.len(),
            scripts.len(),
            "one script per host in step {id}"
        );
        hosts
            .iter()
            .zip(scripts)
            .map(|(h, s)| {
                (
                    h.as_str().expect("host").to_owned(),
                    self.dir.join(s.as_str().expect("script path")),
                )
            })
            .collect()
    }

    /// The script of step `id` on `host`.
    pub fn script(&self, id: &str, host: &str) -> PathBuf {
        self.scripts(id)
            .into_iter()
            .find(|(h, _)| h == host)
            .unwrap_or_else(|| panic!("step `{id}` has no script for {host}"))
            .1
    }

    fn steps(&self) -> &Vec<serde_json::Value> {
        self.plan["steps"].as_array().expect("plan.json steps")
    }
}
