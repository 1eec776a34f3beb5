//! The bundle's Ansible playbook (issue 13), run by a real `ansible-playbook`
//! over real SSH against the sandbox's fake hosts (`tests/sandbox/`).
//!
//! Each fake host of a world gets its own network namespace, joined to a
//! controller namespace by a veth pair (a /30 of 10.77.0.0/16, inside these
//! namespaces only), and a real `sshd` that listens on the host's end only.
//! The sshd runs inside the host's sandbox (`enter.sh`: the host's own disk
//! over this machine's `/`, its own host name, mount, UTS and PID
//! namespaces), so everything a session runs there — Ansible's modules, the
//! copies, the scripts — runs on that host exactly as a script of the
//! sandbox does, with the stand-ins of `tests/stubs/` first on PATH (given
//! through the playbook's `rewind_env`, as an operator gives variables).
//! `ansible-playbook` runs in the controller namespace; the inventory's
//! `localhost` points at an address nobody answers, so nothing the playbook
//! runs can run on this machine. Host keys and the client key are generated
//! per test; every sshd is bounded in time, stopped by its PID, and every
//! namespace removed.
//!
//! Needs root, `ip`, `unshare`, Debian's `openssh-server`, and ansible-core
//! with ansible-lint in a virtual environment (`.ci/run` installs them;
//! `REWIND_TEST_ANSIBLE` names another folder holding `ansible-playbook`).

mod common;
#[path = "sandbox/mod.rs"]
#[allow(dead_code)] // each test crate uses part of the harness
mod harness;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use harness::checks;
use harness::host::Run;
use harness::shells::Shell;
use harness::stubs::{self, Fault};
use harness::world::{ScriptRun, WORKSTATION, World};

/// One world at a time: each is six hosts with an sshd, and the machine has
/// two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Seconds after which an sshd kills itself (a test that dies leaves none).
const SSHD_LIMIT_SECS: u32 = 1800;
/// Seconds one `ansible-playbook` may take.
const PLAYBOOK_LIMIT_SECS: u32 = 900;

/// The folder of `ansible-playbook` and `ansible-lint`.
fn ansible_bin() -> PathBuf {
    let dir = std::env::var_os("REWIND_TEST_ANSIBLE").map_or_else(
        || {
            let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
                || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"),
                PathBuf::from,
            );
            cache.join("rewind-test/ansible/bin")
        },
        PathBuf::from,
    );
    for tool in ["ansible-playbook", "ansible-lint"] {
        assert!(
            dir.join(tool).is_file(),
            "{} is missing, and this test needs it (tests never skip). Install ansible-core and \
             ansible-lint into a virtual environment there, as .ci/run does:\n    \
             python3 -m venv {v} && {v}/bin/pip install 'ansible-core>=2.17,<2.20' 'ansible-lint>=25,<27'\n\
             (Debian: apt-get install -y python3-venv first), or set REWIND_TEST_ANSIBLE to a \
             folder holding ansible-playbook and ansible-lint.",
            dir.join(tool).display(),
            v = dir.parent().expect("the venv").display()
        );
    }
    dir
}

fn require_sshd() -> PathBuf {
    common::require_tool("ssh-keygen");
    common::require_tool("ssh");
    let sshd = PathBuf::from("/usr/sbin/sshd");
    assert!(
        sshd.is_file(),
        "/usr/sbin/sshd is missing, and this test needs it (tests never skip): \
         apt-get install -y openssh-server (as root), or run `bash .ci/run`"
    );
    sshd
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(args: &[&str]) {
    run_ok(Command::new("ip").args(args));
}

/// One fake host reached over SSH.
struct Node {
    /// The world's name of the host (node name, or `workstation`).
    name: String,
    /// Its network namespace.
    ns: String,
    /// Its address (the host's end of its veth pair).
    addr: String,
    /// The sshd (its `unshare`, whose child sshd dies with it).
    sshd: Option<Child>,
}

/// The hosts of a world, each with its sshd, and the controller's namespace.
struct Fleet {
    /// The controller's network namespace (ansible-playbook runs there).
    ctl: String,
    nodes: Vec<Node>,
    /// Keys, configuration, inventories, records.
    dir: PathBuf,
}

static FLEETS: AtomicU32 = AtomicU32::new(0);

impl Fleet {
    /// Starts an sshd on every host of `w` (the workstation included).
    fn start(w: &World) -> Fleet {
        let sshd = require_sshd();
        let n = FLEETS.fetch_add(1, Ordering::SeqCst);
        let tag = format!("rwa{}n{n}", std::process::id());
        let dir = w.dir.join("ansible");
        fs::create_dir_all(dir.join("tmp")).expect("create the ansible folder");
        let ssh = w.test.join("ssh");
        fs::create_dir_all(&ssh).expect("create the ssh folder");
        for (key, at) in [("host_key", &ssh), ("id", &dir)] {
            run_ok(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", "rewind-test", "-f"])
                    .arg(at.join(key)),
            );
        }
        fs::copy(dir.join("id.pub"), ssh.join("authorized_keys")).expect("authorized_keys");
        fs::write(
            ssh.join("sshd_config"),
            "HostKey /rewind-test/ssh/host_key\n\
             AuthorizedKeysFile /rewind-test/ssh/authorized_keys\n\
             PermitRootLogin prohibit-password\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             PidFile none\n\
             Subsystem sftp internal-sftp\n\
             MaxStartups 64\n\
             MaxSessions 64\n",
        )
        .expect("write sshd_config");
        let ctl = format!("{tag}c");
        let mut fleet = Fleet {
            ctl: ctl.clone(),
            nodes: Vec::new(),
            dir,
        };
        ip(&["netns", "add", &ctl]);
        ip(&["-n", &ctl, "link", "set", "lo", "up"]);
        let host_key = fs::read_to_string(ssh.join("host_key.pub")).expect("host key");
        let mut known = String::new();
        for (i, (name, h)) in w.hosts.iter().enumerate() {
            let ns = format!("{tag}h{i}");
            let (a, b) = (format!("{tag}a{i}"), format!("{tag}b{i}"));
            let addr = format!("10.77.{i}.2");
            fleet.nodes.push(Node {
                name: name.clone(),
                ns: ns.clone(),
                addr: addr.clone(),
                sshd: None,
            });
            ip(&["netns", "add", &ns]);
            ip(&[
                "link", "add", &a, "netns", &ctl, "type", "veth", "peer", "name", &b, "netns", &ns,
            ]);
            ip(&[
                "-n",
                &ctl,
                "addr",
                "add",
                &format!("10.77.{i}.1/30"),
                "dev",
                &a,
            ]);
            ip(&["-n", &ctl, "link", "set", &a, "up"]);
            ip(&["-n", &ns, "addr", "add", &format!("{addr}/30"), "dev", &b]);
            ip(&["-n", &ns, "link", "set", &b, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            // sshd's privilege separation folder, on the host's disk; and
            // an empty ~/.bashrc for root, whose shell runs every command of
            // an SSH session (this machine's starts pyenv, slowly, at each
            // login, and refreshes its shims).
            h.mkdir("/run/sshd");
            h.write("/root/.bashrc", "", 0o644);
            let child = Command::new("ip")
                .args(["netns", "exec", &ns])
                .args([
                    "unshare",
                    "--mount",
                    "--uts",
                    "--pid",
                    "--fork",
                    "--kill-child",
                    "sh",
                ])
                .arg(harness::world::enter_script())
                .args(["timeout", "-s", "KILL", &SSHD_LIMIT_SECS.to_string()])
                .arg(&sshd)
                .args(["-D", "-e", "-f", "/rewind-test/ssh/sshd_config", "-o"])
                .arg(format!("ListenAddress={addr}:22"))
                .env_clear()
                .env(
                    "PATH",
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                )
                .env("RW_HOST", &h.dir)
                .env("RW_HOSTNAME", &h.hostname)
                .env("RW_TEST", &w.test)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(
                    fs::File::create(fleet.dir.join(format!("sshd-{name}.log"))).expect("sshd log"),
                )
                .spawn()
                .expect("spawn sshd in its namespace");
            fleet.nodes.last_mut().expect("node").sshd = Some(child);
            known.push_str(&format!("{addr} {host_key}"));
        }
        fs::write(fleet.dir.join("known_hosts"), &known).expect("known_hosts");
        fs::set_permissions(fleet.dir.join("id"), fs::Permissions::from_mode(0o600))
            .expect("chmod the client key");
        let d = fleet.dir.display().to_string();
        fs::create_dir_all(fleet.dir.join("callbacks")).expect("callbacks folder");
        fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ansible/rewind_record.py"),
            fleet.dir.join("callbacks/rewind_record.py"),
        )
        .expect("copy the recording callback");
        fs::write(
            fleet.dir.join("ansible.cfg"),
            format!(
                "[defaults]\n\
                 forks = 8\n\
                 host_key_checking = True\n\
                 remote_tmp = /tmp/.ansible-rewind-test\n\
                 local_tmp = {d}/tmp\n\
                 interpreter_python = /usr/bin/python3\n\
                 callback_plugins = {d}/callbacks\n\
                 callbacks_enabled = rewind_record\n\
                 retry_files_enabled = False\n\
                 nocolor = True\n\
                 timeout = 30\n\
                 [ssh_connection]\n\
                 ssh_args = -F /dev/null -o ControlMaster=auto -o ControlPersist=10s \
                 -o UserKnownHostsFile={d}/known_hosts -o StrictHostKeyChecking=yes \
                 -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=10\n\
                 control_path_dir = {d}/cp\n\
                 pipelining = True\n"
            ),
        )
        .expect("write ansible.cfg");
        fleet.wait_until_up();
        fleet
    }

    /// `ssh root@ADDR` from the controller's namespace (the command follows).
    fn ssh(&self, addr: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ctl, "ssh", "-F", "/dev/null"])
            .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.dir.join("known_hosts").display()
            ))
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=2"])
            .arg("-i")
            .arg(self.dir.join("id"))
            .arg(format!("root@{addr}"))
            .stdin(Stdio::null());
        c
    }

    /// Waits until every sshd accepts the client key.
    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for i in 0..self.nodes.len() {
            loop {
                let ok = self
                    .ssh(&self.nodes[i].addr)
                    .arg("uname -n")
                    .output()
                    .expect("spawn ssh");
                if ok.status.success() {
                    break;
                }
                let exited = self.nodes[i]
                    .sshd
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                assert!(
                    exited.is_none() && Instant::now() < deadline,
                    "the sshd of {} is not reachable ({exited:?}): {}\n{}",
                    self.nodes[i].name,
                    String::from_utf8_lossy(&ok.stderr),
                    fs::read_to_string(self.dir.join(format!("sshd-{}.log", self.nodes[i].name)))
                        .unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn addr(&self, name: &str) -> &str {
        &self
            .nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no host {name}"))
            .addr
    }

    /// Stops every sshd by its PID and removes every namespace.
    fn stop(&mut self) {
        if self.ctl.is_empty() {
            return;
        }
        for n in &mut self.nodes {
            if let Some(mut c) = n.sshd.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        for ns in self
            .nodes
            .iter()
            .map(|n| n.ns.clone())
            .chain([self.ctl.clone()])
        {
            // The namespace's processes died with their PID namespace's
            // first process; wait until the kernel says none is left.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let out = Command::new("ip")
                    .args(["netns", "pids", &ns])
                    .output()
                    .expect("spawn ip");
                if !out.status.success() || out.stdout.is_empty() || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
        self.nodes.clear();
        self.ctl.clear();
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How the inventory names the cluster's groups and hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Convention {
    /// Rancher Government rke2-ansible: `rke2_servers`/`rke2_agents` under
    /// `rke2_cluster`, hosts named like the nodes.
    Rke2Ansible,
    /// k3s-ansible: `server`/`agent` under `k3s_cluster`, hosts named by
    /// their address, with `rewind_node`.
    K3sAnsible,
    /// lablabs: `masters`/`workers` under `k8s_cluster`, hosts named like
    /// the nodes.
    Lablabs,
}

/// An inventory for `w` on `fleet`: every node (but `leave_out`), plus
/// `extra` hosts in the cluster's groups.
fn inventory(
    w: &World,
    fleet: &Fleet,
    conv: Convention,
    leave_out: &[&str],
    extra: &[&str],
) -> PathBuf {
    let f = w.facts();
    let (top, servers, agents) = match conv {
        Convention::Rke2Ansible => ("rke2_cluster", "rke2_servers", "rke2_agents"),
        Convention::K3sAnsible => ("k3s_cluster", "server", "agent"),
        Convention::Lablabs => ("k8s_cluster", "masters", "workers"),
    };
    let mut groups: BTreeMap<&str, String> = BTreeMap::new();
    for (node, role, _) in &f.nodes {
        if leave_out.contains(&node.as_str()) {
            continue;
        }
        let g = if *role == rewind::model::Role::Server {
            servers
        } else {
            agents
        };
        let addr = fleet.addr(node);
        let line = match conv {
            Convention::K3sAnsible => {
                format!("            \"{addr}\": {{rewind_node: \"{node}\"}}\n")
            }
            _ => format!("            \"{node}\": {{ansible_host: \"{addr}\"}}\n"),
        };
        groups.entry(g).or_default().push_str(&line);
    }
    for x in extra {
        groups.entry(agents).or_default().push_str(&format!(
            "            \"{x}\": {{ansible_host: \"10.77.250.2\"}}\n"
        ));
    }
    let mut env = String::new();
    for (k, v) in w.base_env() {
        if common::SECRET_CANARIES.iter().any(|(s, _)| *s == k)
            || ["HOME", "USER", "LOGNAME"].contains(&k.as_str())
        {
            continue;
        }
        env.push_str(&format!("      {k}: \"{v}\"\n"));
    }
    let mut text = format!(
        "all:\n\
         \x20 vars:\n\
         \x20   ansible_user: root\n\
         \x20   ansible_ssh_private_key_file: \"{}\"\n\
         \x20   rewind_workstation: workstation\n\
         \x20   rewind_env:\n{env}\
         \x20 hosts:\n\
         \x20   # Nothing may run on this machine: localhost answers nowhere.\n\
         \x20   localhost: {{ansible_connection: ssh, ansible_host: \"10.77.251.2\"}}\n\
         \x20   workstation: {{ansible_host: \"{}\"}}\n\
         \x20 children:\n\
         \x20   {top}:\n\
         \x20     children:\n",
        fleet.dir.join("id").display(),
        fleet.addr(WORKSTATION),
    );
    for (g, hosts) in &groups {
        text.push_str(&format!("        {g}:\n          hosts:\n{hosts}"));
    }
    let path = fleet.dir.join(format!("inventory-{conv:?}.yml"));
    fs::write(&path, text).expect("write the inventory");
    path
}

/// One task result recorded by `tests/ansible/rewind_record.py`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
struct Record {
    /// A task started (its name), rather than a host's result.
    start: String,
    /// When (seconds since the epoch).
    time: f64,
    status: String,
    host: String,
    task: String,
    rc: Option<i32>,
    changed: bool,
    stdout: String,
    stderr: String,
    msg: String,
}

/// One `ansible-playbook` run.
struct Play {
    code: i32,
    output: String,
    records: Vec<Record>,
}

impl Play {
    /// The runs of the bundle's scripts, as the sandbox records them: one
    /// per `Run NN-id.sh` task and host, in the order they finished.
    fn script_runs(&self, inventory_to_node: &BTreeMap<String, String>) -> Vec<ScriptRun> {
        self.records
            .iter()
            .filter(|r| r.task.starts_with("Run ") && r.task.ends_with(".sh"))
            .filter(|r| r.status == "ok" || r.status == "failed")
            .map(|r| {
                let tag = r.task.trim_start_matches("Run ").trim_end_matches(".sh");
                let host = inventory_to_node
                    .get(&r.host)
                    .cloned()
                    .unwrap_or_else(|| r.host.clone());
                let script = if host == WORKSTATION {
                    format!("workstation/{tag}.sh")
                } else {
                    format!("nodes/{host}/{tag}.sh")
                };
                ScriptRun {
                    script,
                    host,
                    run: Run {
                        code: r.rc.unwrap_or(-1),
                        stdout: r.stdout.clone(),
                        stderr: format!("{}{}", r.stderr, r.msg),
                    },
                    calls: Vec::new(),
                }
            })
            .collect()
    }

    fn describe(&self) -> String {
        format!("exit {}\n{}", self.code, self.output)
    }

    /// The slowest tasks, `seconds name` lines (where the time goes).
    fn slowest(&self) -> String {
        let starts: Vec<&Record> = self
            .records
            .iter()
            .filter(|r| !r.start.is_empty())
            .collect();
        let mut spans: Vec<(f64, &str)> = starts
            .windows(2)
            .map(|w| (w[1].time - w[0].time, w[0].start.as_str()))
            .collect();
        spans.sort_by(|a, b| b.0.total_cmp(&a.0));
        spans
            .iter()
            .take(8)
            .map(|(t, n)| format!("  {t:5.1} s  {n}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs the world's playbook with `args` against `inventory`.
fn playbook(w: &World, fleet: &Fleet, inventory: &Path, args: &[&str]) -> Play {
    let bin = ansible_bin();
    let record = fleet.dir.join("record.jsonl");
    let _ = fs::remove_file(&record);
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &fleet.ctl, "timeout", "-k", "10"])
        .arg(PLAYBOOK_LIMIT_SECS.to_string())
        .arg(bin.join("ansible-playbook"))
        .arg("-i")
        .arg(inventory)
        .arg(w.bundle.join("ansible/rollback.yml"))
        .args(args)
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
        )
        .env("HOME", &fleet.dir)
        .env("LANG", "C.UTF-8")
        .env("ANSIBLE_CONFIG", fleet.dir.join("ansible.cfg"))
        .env("ANSIBLE_HOME", fleet.dir.join("home"))
        .env("REWIND_RECORD", &record)
        .stdin(Stdio::null());
    // The secrets an operator exports before running the playbook.
    for (k, v) in common::SECRET_CANARIES {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("spawn ansible-playbook");
    let code = out.status.code().unwrap_or(-1);
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        code != 124 && code != 137,
        "ansible-playbook did not finish within {PLAYBOOK_LIMIT_SECS} s:\n{output}"
    );
    let records = fs::read_to_string(&record)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("record {l}: {e}")))
        .collect();
    Play {
        code,
        output,
        records,
    }
}

/// The hand-run trace of a plan's golden bundle (the sandbox's reviewed
/// snapshot), as lines.
fn hand_run_trace(plan: &str) -> Vec<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/snapshots/sandbox_trace@{plan}.snap"));
    let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    let body = text
        .splitn(3, "---\n")
        .nth(2)
        .unwrap_or_else(|| panic!("{}: no snapshot header", p.display()));
    body.lines().map(str::to_owned).collect()
}

/// Each host's commands, in order, equal those of the hand-run walk: what
/// differs across hosts is only how parallel steps interleave. The hand run
/// gives every script every secret of the operator's environment; the
/// playbook gives a secret only to the steps that read it, so which secrets
/// a stand-in saw set is left out of the comparison.
fn same_per_host(plan: &str, calls: &[stubs::Call]) -> Vec<String> {
    let by_host = |lines: Vec<String>| {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for mut l in lines {
            for (name, _) in common::SECRET_CANARIES {
                l = l
                    .replace(&format!(" {name}=<set>"), "")
                    .replace(&format!("[{name}=<set> "), "[")
                    .replace(&format!("[{name}=<set>]"), "[]");
            }
            l = l.replace(" []", "");
            let host = l.split(' ').next().unwrap_or_default().to_owned();
            m.entry(host).or_default().push(l);
        }
        m
    };
    let want = by_host(hand_run_trace(plan));
    let got = by_host(checks::trace(calls).lines().map(str::to_owned).collect());
    let mut p = Vec::new();
    for host in want
        .keys()
        .chain(got.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (a, b) = (want.get(host), got.get(host));
        if a != b {
            p.push(format!(
                "{host}: the commands differ from the hand-run walk:\n--- hand\n{}\n--- ansible\n{}",
                a.map(|v| v.join("\n")).unwrap_or_default(),
                b.map(|v| v.join("\n")).unwrap_or_default()
            ));
        }
    }
    p
}

/// The host digests without what an SSH login itself touches before
/// Ansible runs anything: the login records (wtmp, lastlog) and what this
/// machine's root login shell updates at every start (`~/.bashrc` runs
/// `pyenv init`, which refreshes /root/.pyenv/shims).
fn digest(w: &World) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut d = w.digest();
    for files in d.values_mut() {
        files.retain(|k, _| {
            ![
                "/var/log/wtmp",
                "/var/log/lastlog",
                "/var/log/btmp",
                "/run/utmp",
                "/var/run/utmp",
            ]
            .contains(&k.as_str())
                && !k.starts_with("/root/.pyenv")
        });
    }
    d
}

fn diff(
    before: &BTreeMap<String, BTreeMap<String, String>>,
    after: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<String> {
    let mut p = Vec::new();
    for (host, files) in after {
        let was = before.get(host).cloned().unwrap_or_default();
        for (k, v) in files {
            if was.get(k) != Some(v) {
                p.push(format!("{host}: {k} is new or changed"));
            }
        }
        for k in was.keys() {
            if !files.contains_key(k) {
                p.push(format!("{host}: {k} is gone"));
            }
        }
    }
    p
}

/// Removes from every host's /tmp what Ansible leaves there (its remote
/// temporary folder) and the copies of a `--check` that stopped at a failed
/// dry run (`rewind-check.*`, removed only by a `--check` that finishes),
/// over SSH (the hosts' disks are mounted); anything else stays for
/// `checks::state` to find.
fn clear_ansible_tmp(fleet: &Fleet) {
    for n in &fleet.nodes {
        let out = fleet
            .ssh(&n.addr)
            .arg("rm -rf /tmp/.ansible-rewind-test /tmp/rewind-check.*")
            .output()
            .expect("spawn ssh");
        assert!(out.status.success(), "clean /tmp on {}: {out:?}", n.name);
    }
}

/// The task of `--check` that runs `sh host.sh rehearse` on a host.
const REHEARSAL: &str = "Rehearse every step of this host in order, as a dry run";

/// The `Run` tasks of a play, as `(step tag, host, changed)`.
fn ran(play: &Play) -> Vec<(String, String, bool)> {
    play.records
        .iter()
        .filter(|r| r.task.starts_with("Run ") && r.task.ends_with(".sh") && r.status == "ok")
        .map(|r| (r.task.clone(), r.host.clone(), r.changed))
        .collect()
}

#[test]
fn the_playbook_runs_the_bundle_over_ssh_as_by_hand() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let t = Instant::now();
    let w = World::golden("etcd-airgap", Shell::Dash);
    let mut fleet = Fleet::start(&w);
    let before = digest(&w);

    // 1. --check, through a k3s-ansible inventory that names hosts by address:
    // every host rehearses all its steps (sh host.sh rehearse) on the
    // untouched cluster, the restore included, and no step's script runs.
    let k3s = inventory(&w, &fleet, Convention::K3sAnsible, &[], &[]);
    let check = playbook(&w, &fleet, &k3s, &["--check"]);
    let mut p = diff(&before, &digest(&w));
    if check.code != 0 {
        p.push(format!("--check exited {}", check.code));
    }
    if !ran(&check).is_empty() {
        p.push(format!("--check ran a step: {:?}", ran(&check)));
    }
    let rehearsals: Vec<&Record> = check
        .records
        .iter()
        .filter(|r| r.task == REHEARSAL && r.status == "ok")
        .collect();
    // Each rehearsal names its node ("REHEARSAL of <node>: ..."): one per
    // host of the fleet, the workstation included, each without a problem.
    let mut rehearsed: Vec<String> = Vec::new();
    for r in &rehearsals {
        let node = r
            .stdout
            .split("REHEARSAL of ")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .unwrap_or_default();
        rehearsed.push(node.to_owned());
        if r.changed || !r.stdout.contains("no problem found; nothing was changed") {
            p.push(format!(
                "{} on {}: not a clean rehearsal:\n{}\n{}",
                r.task, r.host, r.stdout, r.stderr
            ));
        }
    }
    rehearsed.sort_unstable();
    let mut hosts: Vec<String> = fleet.nodes.iter().map(|n| n.name.clone()).collect();
    hosts.sort_unstable();
    if rehearsed != hosts {
        p.push(format!("rehearsed {rehearsed:?}, the hosts are {hosts:?}"));
    }
    assert!(
        p.is_empty(),
        "--check:\n{}\n{}",
        p.join("\n"),
        check.describe()
    );
    assert!(
        w.journal().iter().all(checks::read_only),
        "--check called a stand-in that changes: {:?}",
        w.journal()
    );
    eprintln!(
        "--check: {} rehearsals, exit {}, {:.1?}; slowest tasks:\n{}",
        rehearsals.len(),
        check.code,
        t.elapsed(),
        check.slowest()
    );

    // 2. The rollback, through an rke2-ansible inventory.
    let rke2 = inventory(&w, &fleet, Convention::Rke2Ansible, &[], &[]);
    let journal_before = w.journal().len();
    let real = playbook(&w, &fleet, &rke2, &[]);
    assert_eq!(real.code, 0, "the rollback failed:\n{}", real.describe());
    let runs = real.script_runs(&BTreeMap::new());
    clear_ansible_tmp(&fleet);
    let calls = w.journal().split_off(journal_before);
    let mut p = checks::order(&w, &calls);
    p.extend(checks::state(&w, &runs, &before));
    p.extend(same_per_host("etcd-airgap", &calls));
    p.extend(checks::no_secrets(&w, &runs));
    p.extend(checks::secrets("ansible-playbook's output", &real.output));
    p.extend(checks::bundle_intact(&w));
    assert_eq!(
        runs.len(),
        w.scripts().len(),
        "not every script ran once: {:?}",
        ran(&real)
    );
    assert!(p.is_empty(), "the rollback over SSH:\n{}", p.join("\n"));
    eprintln!(
        "rollback: {} scripts, {:.1?}; slowest tasks:\n{}",
        runs.len(),
        t.elapsed(),
        real.slowest()
    );

    // 3. Again: every step is already done, nothing changes.
    let done = digest(&w);
    let again = playbook(&w, &fleet, &rke2, &[]);
    assert_eq!(again.code, 0, "{}", again.describe());
    let changed: Vec<_> = ran(&again).into_iter().filter(|(_, _, c)| *c).collect();
    assert!(changed.is_empty(), "a finished step ran again: {changed:?}");
    assert!(
        again
            .records
            .iter()
            .filter(|r| r.task.starts_with("Run "))
            .all(|r| r.stdout.contains("is already done on")),
        "{}",
        again.describe()
    );
    // What a finished step does when run again by hand: it says so in the
    // journal, and changes nothing else.
    let p = checks::changed_besides_journal(&done, &digest(&w));
    assert!(p.is_empty(), "a second run changed the hosts: {p:?}");
    fleet.stop();
    eprintln!("done in {:.1?}", t.elapsed());
}

#[test]
fn a_failure_stops_every_later_step_and_a_rerun_resumes() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let t = Instant::now();
    let w = World::golden("etcd-airgap", Shell::Dash);
    let mut fleet = Fleet::start(&w);
    let before = digest(&w);
    let inv = inventory(&w, &fleet, Convention::Lablabs, &[], &[]);
    // The init server's cluster-reset fails.
    let reset = hand_run_trace("etcd-airgap")
        .into_iter()
        .find(|l| l.starts_with("server-1 rke2 <server> <--cluster-reset>"))
        .expect("the hand run resets server-1");
    // `HOST TOOL <arg> <arg> [ENV]`: the words between < and >.
    let words = reset
        .trim_start_matches("server-1 rke2 ")
        .split(" [")
        .next()
        .unwrap_or_default();
    let args: Vec<String> = words
        .trim_start_matches('<')
        .trim_end_matches('>')
        .split("> <")
        .map(str::to_owned)
        .collect();
    w.set_faults(&[Fault {
        host: Some("server-1".into()),
        tool: "rke2".into(),
        args: Some(args),
        rc: 42,
    }]);
    let failed = playbook(&w, &fleet, &inv, &[]);
    assert_ne!(failed.code, 0, "{}", failed.describe());
    let calls = w.journal();
    let last = calls.last().expect("calls");
    assert!(
        last.host == "server-1" && last.tool == "rke2" && last.rc == 42,
        "the failed cluster-reset is not the last command run on any host: {last}"
    );
    let steps: Vec<_> = ran(&failed);
    assert!(
        steps.iter().all(|(task, _, _)| task.as_str() < "Run 05"),
        "a step after the failed restore ran: {steps:?}"
    );
    assert!(
        failed
            .records
            .iter()
            .any(|r| r.task == "Run 05-restore.sh" && r.status == "failed"),
        "{}",
        failed.describe()
    );

    // Fixed: the same command resumes at the restore.
    w.set_faults(&[]);
    let mark = w.journal().len();
    let resumed = playbook(&w, &fleet, &inv, &[]);
    assert_eq!(resumed.code, 0, "{}", resumed.describe());
    for (task, host, changed) in ran(&resumed) {
        assert_eq!(
            changed,
            task.as_str() >= "Run 05",
            "{task} on {host}: {}",
            if changed { "ran again" } else { "did not run" }
        );
    }
    // Both runs together are one rollback, the failed cluster-reset aside.
    let calls: Vec<stubs::Call> = w.journal().into_iter().filter(|c| c.rc != 42).collect();
    assert!(
        w.journal().split_off(mark).iter().all(|c| c.rc == 0),
        "a command failed in the second run"
    );
    let mut p = checks::order(&w, &calls);
    let mut runs = failed.script_runs(&BTreeMap::new());
    runs.extend(
        resumed
            .script_runs(&BTreeMap::new())
            .into_iter()
            .filter(|r| !r.run.stdout.contains("is already done on")),
    );
    p.extend(checks::no_secrets(&w, &runs));
    assert!(p.is_empty(), "{}", p.join("\n"));
    let _ = before;
    fleet.stop();
    eprintln!("fault and resume: {:.1?}", t.elapsed());
}

#[test]
fn an_inventory_that_differs_from_the_plan_stops_before_step_1() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let w = World::golden("etcd-airgap", Shell::Dash);
    let mut fleet = Fleet::start(&w);
    let before = digest(&w);
    for (leave_out, extra, needle) in [
        (
            &["agent-2"][..],
            &[][..],
            "Nodes of the plan that no host is: agent-2.",
        ),
        (
            &[][..],
            &["agent-9"][..],
            "Hosts that are no node of the plan: agent-9.",
        ),
    ] {
        let inv = inventory(&w, &fleet, Convention::Lablabs, leave_out, extra);
        let play = playbook(&w, &fleet, &inv, &[]);
        assert_ne!(play.code, 0, "{}", play.describe());
        assert!(
            play.output.contains(needle),
            "no {needle:?} in:\n{}",
            play.describe()
        );
        assert!(
            play.records.iter().all(|r| !r.task.starts_with("Run ")),
            "a step ran: {}",
            play.describe()
        );
    }
    assert!(
        w.journal().is_empty(),
        "a stand-in was called: {:?}",
        w.journal()
    );
    assert!(diff(&before, &digest(&w)).is_empty(), "a host changed");
    fleet.stop();
}

#[test]
fn secrets_reach_the_scripts_and_never_ansibles_output() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let w = World::golden("etcd-s3", Shell::Dash);
    let mut fleet = Fleet::start(&w);
    let before = w.digest();
    let inv = inventory(&w, &fleet, Convention::Rke2Ansible, &[], &[]);
    // The most verbose output Ansible has: module arguments, commands, results.
    let play = playbook(&w, &fleet, &inv, &["--check", "-vvvv"]);
    // The init server's rehearsal checks the S3 credentials (its preflight,
    // and again before the restore): it passed, so they reached it.
    let init = w.facts().first_server().to_owned();
    let rehearsal = play
        .records
        .iter()
        .find(|r| r.task == REHEARSAL && r.host == init)
        .unwrap_or_else(|| panic!("no rehearsal on {init}:\n{}", play.describe()));
    assert_eq!(
        rehearsal.rc,
        Some(0),
        "the S3 credentials did not reach {init}: {rehearsal:?}"
    );
    assert!(
        play.records.iter().all(|r| !r.stderr.contains("AWS_")),
        "a script missed an S3 credential:\n{}",
        play.describe()
    );
    let mut p = checks::secrets("ansible-playbook -vvvv", &play.output);
    p.extend(checks::secrets(
        "the task records",
        &fs::read_to_string(fleet.dir.join("record.jsonl")).unwrap_or_default(),
    ));
    // Nothing the run wrote on a host holds a secret (the seeded saved
    // token is the host's own), and no secrets file is left.
    let after = w.digest();
    for (name, h) in &w.hosts {
        for (path, what) in &after[name] {
            if before[name].get(path) == Some(what) {
                continue;
            }
            if path.contains("/.secrets-") {
                p.push(format!("{name}: {path} was left on the host"));
            }
            if let Some(text) = h.text(path) {
                p.extend(checks::secrets(&format!("{name}:{path}"), &text));
            }
        }
    }
    // The dry run's copies are under /tmp, which digests leave out.
    fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
        {
            let p = e.path();
            if p.is_dir() {
                files_under(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    for (name, h) in &w.hosts {
        let mut tmp = Vec::new();
        files_under(&h.disk("/tmp"), &mut tmp);
        for f in tmp {
            let shown = f.display().to_string();
            if shown.contains("/.secrets-") {
                p.push(format!("{name}: {shown} was left on the host"));
            }
            let text = String::from_utf8_lossy(&fs::read(&f).unwrap_or_default()).into_owned();
            p.extend(checks::secrets(&format!("{name}:{shown}"), &text));
        }
    }
    assert!(p.is_empty(), "{}", p.join("\n"));
    fleet.stop();
}

#[test]
fn ansible_lint_production_passes_on_every_golden_playbook() {
    let bin = ansible_bin();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut playbooks: Vec<PathBuf> = harness::world::golden_plans()
        .iter()
        .map(|p| root.join("golden").join(p).join("ansible/rollback.yml"))
        .collect();
    playbooks.sort();
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin.join("ansible-lint"))
        .args([
            "--offline",
            "--profile",
            "production",
            "--nocolor",
            "-f",
            "pep8",
        ])
        .args(&playbooks)
        .current_dir(root)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("HOME", tmp.path())
        .env("ANSIBLE_HOME", tmp.path().join("ansible"))
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .output()
        .expect("spawn ansible-lint");
    assert!(
        out.status.success(),
        "ansible-lint --profile production:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
