//! A world: one bundle, its hosts, the fake cluster, the journal.
//!
//! [`World::golden`] takes a bundle from `golden/` (and the facts of the plan
//! it was compiled from, to seed the hosts); [`World::compile`] compiles plan
//! text in memory, for tests that vary a plan. [`World::walk`] runs every
//! script in README order (`plan.json`: steps in order, each step's scripts
//! in order), each on its own host, as root, with `REWIND_YES=1`, and stops
//! at the first failure, as an operator would.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use rewind::diagnostic::Diagnostic;
use rewind::plan::{Plan, Script};
use rewind::source::SourceFile;

use super::host::{Host, Launch, Run};
use super::rke1::{self, Rke1Facts};
use super::seed::{self, Facts};
use super::shells::Shell;
use super::stubs::{self, Call, Fault};

/// The host name of the workstation's runs.
pub const WORKSTATION: &str = "workstation";

/// What a host has of its own, whatever this machine holds there (a
/// developer's machine may have run a script by mistake, or run RKE2).
const HOST_OWNED: &[&str] = &[
    "/var/lib/rancher",
    "/etc/rancher",
    "/var/log/rewind",
    "/var/lib/rewind",
    "/opt/rke",
    "/opt/rke2",
    "/root/.kube",
    "/root/.local/state/rewind",
    "/root/rke2-backup",
    "/root/rke2-artifacts",
    "/root/rancher-work",
];

/// One step of `plan.json`.
#[derive(Debug, Clone)]
pub struct StepInfo {
    /// Its number (the `NN` of its scripts).
    pub number: u64,
    /// Its id (`restore`, `start-agents`...).
    pub id: String,
    /// Its scripts, bundle-relative, in README order.
    pub scripts: Vec<String>,
    /// It asks for confirmation.
    pub destructive: bool,
}

/// One script run: where, what it printed, which stand-ins it called.
#[derive(Debug, Clone)]
pub struct ScriptRun {
    /// Bundle-relative path of the script.
    pub script: String,
    /// The host it ran on.
    pub host: String,
    /// Exit code and output.
    pub run: Run,
    /// The journal entries this run added.
    pub calls: Vec<Call>,
}

impl ScriptRun {
    /// A summary for failure messages.
    pub fn describe(&self) -> String {
        let calls: Vec<String> = self.calls.iter().map(ToString::to_string).collect();
        format!(
            "{} on {}: exit {}\n--- stdout\n{}--- stderr\n{}--- calls\n{}\n",
            self.script,
            self.host,
            self.run.code,
            self.run.stdout,
            self.run.stderr,
            calls.join("\n")
        )
    }
}

/// A rollback in the sandbox.
pub struct World {
    _tmp: tempfile::TempDir,
    /// The world's folder.
    pub dir: PathBuf,
    /// The bundle (a copy: golden/ is never run from), in the shared folder.
    pub bundle: PathBuf,
    /// The folder mounted at /rewind-test on every host.
    pub test: PathBuf,
    /// The plan's name.
    pub name: String,
    /// What the sandbox knows of an RKE2 plan.
    pub rke2: Option<Facts>,
    /// What the sandbox knows of an RKE1 plan.
    pub rke1: Option<Rke1Facts>,
    /// The planner's output for the plan (the scripts' operations).
    pub plan: Plan,
    /// The steps, from plan.json.
    pub steps: Vec<StepInfo>,
    /// Every host, by node name (and `workstation`).
    pub hosts: BTreeMap<String, Host>,
    /// The shell every script runs with.
    pub shell: Shell,
}

/// Where worlds are made: a tmpfs (see `enter.sh`).
fn base_dir() -> PathBuf {
    let base = std::env::var_os("REWIND_SANDBOX_DIR")
        .map_or_else(|| PathBuf::from("/dev/shm"), PathBuf::from);
    use std::os::unix::fs::MetadataExt as _;
    let root = fs::metadata("/").expect("stat /").dev();
    let here = fs::metadata(&base)
        .unwrap_or_else(|e| {
            panic!(
                "the sandbox needs {} (a tmpfs): {e}; set REWIND_SANDBOX_DIR to a tmpfs folder",
                base.display()
            )
        })
        .dev();
    assert_ne!(
        root,
        here,
        "{} is on the root filesystem; the sandbox needs a folder on another filesystem (a tmpfs of 128 MB or more): set REWIND_SANDBOX_DIR",
        base.display()
    );
    base
}

/// Fails the test unless it runs as root (namespaces, overlayfs, chroot).
pub fn require_root() {
    // `id -u`, as the scripts themselves check.
    let out = std::process::Command::new("id")
        .arg("-u")
        .output()
        .expect("run id -u");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "the sandbox tests need root (mount namespaces, overlayfs, chroot): run them as root, e.g. `bash .ci/run`"
    );
    for tool in [
        "unshare",
        "mount",
        "chroot",
        "hostname",
        "ip",
        "timeout",
        "script",
        "tar",
        "sha256sum",
        "curl",
        "unzip",
    ] {
        crate::common::require_tool(tool);
    }
}

/// The reference plan's text.
pub fn plan_text(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plans")
        .join(format!("{name}.toml"));
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Every reference plan that has a golden bundle (a plan without one fails).
/// True for a plan of `distribution = "k3s"`.
pub fn is_k3s(plan: &str) -> bool {
    plan_text(plan).contains("distribution = \"k3s\"")
}

pub fn golden_plans() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = fs::read_dir(root.join("plans"))
        .expect("read plans/")
        .filter_map(Result::ok)
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".toml")
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    for n in &names {
        assert!(
            root.join("golden").join(n).join("plan.json").is_file(),
            "plans/{n}.toml has no golden bundle golden/{n}/: generate it (UPDATE_GOLDEN=1 cargo test --test golden)"
        );
    }
    names
}

fn compile_model(name: &str, text: &str) -> Result<(rewind::model::Model, Plan), Vec<Diagnostic>> {
    let source = SourceFile::new(format!("{name}.toml"), text);
    let checked = rewind::validate::check(&source, None);
    let Some(model) = checked.model else {
        return Err(checked.diagnostics);
    };
    let plan = rewind::plan::plan(&model);
    Ok((model, plan))
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create a bundle folder");
    for e in fs::read_dir(from)
        .expect("read a bundle folder")
        .filter_map(Result::ok)
    {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            fs::copy(&src, &dst).expect("copy a bundle file");
        }
    }
}

impl World {
    /// The golden bundle of the reference plan `name`, ready to run.
    pub fn golden(name: &str, shell: Shell) -> World {
        let (model, plan) = compile_model(name, &plan_text(name))
            .unwrap_or_else(|d| panic!("plans/{name}.toml does not compile: {d:?}"));
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("golden")
            .join(name);
        assert!(src.join("plan.json").is_file(), "golden/{name}/ is missing");
        World::build(name, &model, plan, shell, |bundle| copy_dir(&src, bundle))
    }

    /// Compiles plan text in memory; the diagnostics if it is refused.
    pub fn compile(name: &str, text: &str, shell: Shell) -> Result<World, Vec<Diagnostic>> {
        let (model, plan) = compile_model(name, text)?;
        let source = SourceFile::new(format!("{name}.toml"), text);
        let bundle = rewind::compiler::build(&source, None)?;
        Ok(World::build(name, &model, plan, shell, |dir| {
            for (path, f) in &bundle.files {
                let p = dir.join(path);
                fs::create_dir_all(p.parent().expect("parent")).expect("create a bundle folder");
                fs::write(&p, &f.bytes).expect("write a bundle file");
                fs::set_permissions(&p, fs::Permissions::from_mode(f.mode))
                    .expect("chmod a bundle file");
            }
        }))
    }

    /// Replaces the bundle with the one compiled from `text`, on the same
    /// hosts as they are now (nothing is seeded again): the round trip of
    /// `rewind prepare` (tests/prepare.rs) compiles the rollback plan only
    /// once the capture has run on these hosts.
    pub fn rebundle(&mut self, text: &str) -> Result<(), Vec<Diagnostic>> {
        let (model, plan) = compile_model(&self.name, text)?;
        let source = SourceFile::new(format!("{}.toml", self.name), text);
        let bundle = rewind::compiler::build(&source, None)?;
        fs::remove_dir_all(&self.bundle).expect("remove the old bundle");
        for (path, f) in &bundle.files {
            let p = self.bundle.join(path);
            fs::create_dir_all(p.parent().expect("parent")).expect("create a bundle folder");
            fs::write(&p, &f.bytes).expect("write a bundle file");
            fs::set_permissions(&p, fs::Permissions::from_mode(f.mode))
                .expect("chmod a bundle file");
        }
        self.steps = read_steps(&self.bundle);
        if self.rke2.is_some() {
            self.rke2 = Some(Facts::of(&model, &plan));
        }
        self.plan = plan;
        Ok(())
    }

    fn build(
        name: &str,
        model: &rewind::model::Model,
        plan: Plan,
        shell: Shell,
        fill: impl FnOnce(&Path),
    ) -> World {
        require_root();
        shell.require();
        let tmp = tempfile::Builder::new()
            .prefix("rewind-sandbox.")
            .tempdir_in(base_dir())
            .expect("create the world folder");
        let dir = tmp.path().to_path_buf();
        let test = dir.join("test");
        let bundle = test.join("bundle");
        stubs::install(&test);
        fill(&bundle);
        let steps = read_steps(&bundle);
        let mut hosts = BTreeMap::new();
        let hosts_dir = test.join("hosts");
        let new_host = |name: &str, hostname: &str, addresses: &[String]| {
            let h = Host::create(&hosts_dir, name, hostname, addresses);
            h.mask(&enter_script(), &test, HOST_OWNED);
            h
        };
        hosts.insert(
            WORKSTATION.to_owned(),
            new_host(WORKSTATION, WORKSTATION, &[]),
        );
        let (mut rke2, mut rke1) = (None, None);
        match &model.kind {
            rewind::model::Kind::Rke2(_) => {
                let facts = Facts::of(model, &plan);
                for (node, _, _) in &facts.nodes {
                    let h = new_host(node, node, &[]);
                    seed::seed_node(&h, &facts, node);
                    hosts.insert(node.clone(), h);
                }
                for step in &plan.steps {
                    for script in &step.scripts {
                        seed::seed_backups(&hosts[script.host.name()], &facts, script);
                    }
                }
                seed::seed_cluster(&test, &facts);
                rke2 = Some(facts);
            }
            rewind::model::Kind::Rke1(_) => {
                let facts = Rke1Facts::of(model);
                for n in &facts.nodes {
                    let h = new_host(&n.folder, &n.host_name(), std::slice::from_ref(&n.address));
                    hosts.insert(n.folder.clone(), h);
                }
                rke1::install_fixtures(&test);
                rke1::seed(&facts, &plan, &hosts, &test);
                rke1 = Some(facts);
            }
        }
        World {
            _tmp: tmp,
            dir,
            bundle,
            test,
            name: name.to_owned(),
            rke2,
            rke1,
            plan,
            steps,
            hosts,
            shell,
        }
    }

    /// The facts of an RKE2 plan (panics for RKE1).
    pub fn facts(&self) -> &Facts {
        self.rke2
            .as_ref()
            .unwrap_or_else(|| panic!("{} is not an RKE2 plan", self.name))
    }

    /// The facts of an RKE1 plan (panics for RKE2).
    pub fn rke1(&self) -> &Rke1Facts {
        self.rke1
            .as_ref()
            .unwrap_or_else(|| panic!("{} is not an RKE1 plan", self.name))
    }

    /// A host.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .get(name)
            .unwrap_or_else(|| panic!("no host {name} in {}", self.name))
    }

    /// The host a script of the bundle runs on.
    pub fn host_of(script: &str) -> String {
        let mut parts = script.split('/');
        match (parts.next(), parts.next()) {
            (Some("nodes"), Some(node)) => node.to_owned(),
            (Some("workstation"), _) => WORKSTATION.to_owned(),
            _ => panic!("not a script path: {script}"),
        }
    }

    /// The planner's script for a bundle path.
    pub fn script(&self, path: &str) -> &Script {
        self.plan
            .steps
            .iter()
            .flat_map(|s| &s.scripts)
            .find(|s| s.path == path)
            .unwrap_or_else(|| panic!("no script {path} in the plan"))
    }

    /// Every script, in README order.
    pub fn scripts(&self) -> Vec<String> {
        self.steps.iter().flat_map(|s| s.scripts.clone()).collect()
    }

    /// The environment of every run: what an operator's root shell has, the
    /// secrets a rollback reads at run time (canary values), short bounded
    /// waits, and the online installer served from the sandbox.
    pub fn base_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("PATH", stubs::PATH),
            ("HOME", "/root"),
            ("USER", "root"),
            ("LOGNAME", "root"),
            ("LANG", "C.UTF-8"),
            (
                "REWIND_INSTALL_SCRIPT_URL",
                "file:///rewind-test/stubs/install-online.sh",
            ),
            ("REWIND_POLL_INTERVAL", "1"),
            ("REWIND_START_TIMEOUT", "3"),
            ("REWIND_VERIFY_TIMEOUT", "3"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for (k, v) in crate::common::SECRET_CANARIES {
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        env
    }

    /// Runs `script` on `host` with the base environment plus `extra`
    /// (a later entry wins).
    pub fn run_on(
        &self,
        host: &str,
        script: &str,
        extra: &[(&str, &str)],
        launch: Launch,
    ) -> ScriptRun {
        self.run_args_on(host, script, &[], extra, launch)
    }

    /// `sh host.sh ARGS…` on `host` (the bundle's host runner: status,
    /// next, rehearse), with the base environment plus `extra`.
    pub fn host_sh(&self, host: &str, args: &[&str], extra: &[(&str, &str)]) -> ScriptRun {
        self.run_args_on(host, "host.sh", args, extra, Launch::default())
    }

    /// [`run_on`](Self::run_on) with arguments after the script.
    pub fn run_args_on(
        &self,
        host: &str,
        script: &str,
        args: &[&str],
        extra: &[(&str, &str)],
        launch: Launch,
    ) -> ScriptRun {
        let h = self.host(host);
        let mut env = self.base_env();
        for (k, v) in extra {
            env.retain(|(n, _)| n != k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        let mut argv: Vec<String> = self.shell.argv().iter().map(|s| (*s).to_owned()).collect();
        let mut cwd = "/rewind-test/bundle".to_owned();
        if self.rke1.is_some() && host == WORKSTATION {
            // The plan's relative paths are relative to the folder the
            // operator runs the workstation scripts from.
            rke1::WORK_DIR.clone_into(&mut cwd);
            argv.push(format!("/rewind-test/bundle/{script}"));
        } else {
            argv.push(script.to_owned());
        }
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let before = stubs::read_journal(&self.test.join("journal")).len();
        let run = h.run(
            &enter_script(),
            &self.test,
            &Launch {
                argv,
                env,
                cwd: Some(cwd),
                ..launch
            },
        );
        let calls = stubs::read_journal(&self.test.join("journal")).split_off(before);
        ScriptRun {
            script: script.to_owned(),
            host: host.to_owned(),
            run,
            calls,
        }
    }

    /// Runs a script on its own host.
    pub fn run(&self, script: &str, extra: &[(&str, &str)]) -> ScriptRun {
        self.run_on(&World::host_of(script), script, extra, Launch::default())
    }

    /// Runs every script in README order with `REWIND_YES=1` (plus
    /// `extra`), stopping at the first that fails. `Err` holds the runs up
    /// to and including the failed one.
    pub fn walk(&self, extra: &[(&str, &str)]) -> Result<Vec<ScriptRun>, Vec<ScriptRun>> {
        self.walk_with(extra, |_, _| {})
    }

    /// [`walk`](Self::walk), calling `before(world, script)` before each
    /// script runs.
    pub fn walk_with(
        &self,
        extra: &[(&str, &str)],
        mut before: impl FnMut(&World, &str),
    ) -> Result<Vec<ScriptRun>, Vec<ScriptRun>> {
        let mut env = vec![("REWIND_YES", "1")];
        env.extend_from_slice(extra);
        let mut runs = Vec::new();
        for script in self.scripts() {
            before(self, &script);
            let mut r = self.run(&script, &env);
            if self.rke1.is_some() && rke1::paste_nodes_block(self, &r) {
                // The operator edits the cluster file as told, and runs the
                // step again.
                runs.push(r);
                r = self.run(&script, &env);
            }
            let failed = r.run.code != 0;
            runs.push(r);
            if failed {
                return Err(runs);
            }
        }
        Ok(runs)
    }

    /// The whole journal.
    pub fn journal(&self) -> Vec<Call> {
        stubs::read_journal(&self.test.join("journal"))
    }

    /// Makes these calls fail in the next runs (an empty list: none).
    pub fn set_faults(&self, faults: &[Fault]) {
        stubs::set_faults(&self.test, faults);
    }

    /// A digest of every file of every host and of the fake cluster.
    pub fn digest(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut out: BTreeMap<String, BTreeMap<String, String>> = self
            .hosts
            .iter()
            .map(|(n, h)| (n.clone(), h.digest()))
            .collect();
        out.insert(
            "(fake cluster)".into(),
            cluster_digest(&self.test.join("cluster")),
        );
        out
    }

    /// Saves every host and the fake cluster under `name`.
    pub fn save(&self, name: &str) -> PathBuf {
        let to = self.dir.join("saved").join(name);
        fs::create_dir_all(&to).expect("create a save folder");
        for (n, h) in &self.hosts {
            h.save(&to.join(n));
        }
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(self.test.join("cluster"))
            .arg(to.join("(cluster)"))
            .status()
            .expect("spawn cp");
        assert!(st.success());
        to
    }

    /// Removes what [`save`](Self::save) kept (the world lives on a tmpfs).
    pub fn forget(&self, saved: &Path) {
        fs::remove_dir_all(saved).expect("remove a saved world");
    }

    /// Puts back what [`save`](Self::save) kept.
    pub fn restore(&self, from: &Path) {
        for (n, h) in &self.hosts {
            h.restore(&from.join(n));
        }
        fs::remove_dir_all(self.test.join("cluster")).expect("remove the fake cluster");
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(from.join("(cluster)"))
            .arg(self.test.join("cluster"))
            .status()
            .expect("spawn cp");
        assert!(st.success());
    }
}

fn cluster_digest(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.filter_map(Result::ok) {
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .expect("inside")
                .to_string_lossy()
                .into_owned();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(rel, fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// `tests/sandbox/enter.sh`.
pub fn enter_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sandbox/enter.sh")
}

fn read_steps(bundle: &Path) -> Vec<StepInfo> {
    let text = fs::read_to_string(bundle.join("plan.json")).expect("read plan.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("parse plan.json");
    v["steps"]
        .as_array()
        .expect("plan.json has steps")
        .iter()
        .map(|s| StepInfo {
            number: s["number"].as_u64().expect("step number"),
            id: s["id"].as_str().expect("step id").to_owned(),
            scripts: s["scripts"]
                .as_array()
                .expect("step scripts")
                .iter()
                .map(|p| p.as_str().expect("script path").to_owned())
                .collect(),
            destructive: s["destructive"].as_bool().unwrap_or(false),
        })
        .collect()
}
