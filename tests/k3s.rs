//! K3s plans (issue 15) are RKE2's procedures with K3s's names: the same
//! steps in the same order as the RKE2 plan of the same shape, every name
//! taken from the flavor (no operation of a K3s bundle names rke2), and the
//! K3s install keeping and putting back the unit files around the upstream
//! install script.

mod common;

use rewind::plan::{Func, Host, Plan, plan};
use rewind::source::SourceFile;
use rewind::validate::check;

fn compile_text(name: &str, text: &str) -> Plan {
    let c = check(&SourceFile::new(name, text), None);
    let model = c
        .model
        .unwrap_or_else(|| panic!("{name} does not compile: {:#?}", c.diagnostics));
    plan(&model)
}

fn compile(name: &str) -> Plan {
    let path = common::repo().join("plans").join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    compile_text(name, &text)
}

fn funcs(p: &Plan, step: &str, host: &str) -> Vec<Func> {
    let s = p
        .steps
        .iter()
        .find(|s| s.id == step)
        .unwrap_or_else(|| panic!("no step {step}"));
    let script = s
        .scripts
        .iter()
        .find(|x| x.host == Host::Node(host.to_owned()))
        .unwrap_or_else(|| panic!("no script of {step} on {host}"));
    script.actions.iter().map(|o| o.func).collect()
}

#[test]
fn k3s_plans_name_nothing_of_rke2() {
    for name in ["k3s-sqlite", "k3s-etcd-airgap", "k3s-postgres"] {
        let p = compile(name);
        assert_eq!(p.distribution, "k3s", "{name}");
        for s in &p.steps {
            assert!(
                !s.title.contains("RKE2") && !s.title.contains("rke2"),
                "{name}: {}",
                s.title
            );
            for script in &s.scripts {
                for op in script.preflight.iter().chain(&script.actions) {
                    for a in &op.args {
                        assert!(
                            !a.to_ascii_lowercase().contains("rke2"),
                            "{name}: {} on {}: `{}` {a}",
                            s.id,
                            script.host.name(),
                            op.func.name()
                        );
                    }
                }
            }
        }
        let constants: Vec<String> = p
            .constants
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        assert!(
            constants.contains(&"REWIND_BIN=k3s".to_owned()),
            "{constants:?}"
        );
        assert!(
            constants.contains(&"REWIND_ENV=K3S".to_owned()),
            "{constants:?}"
        );
    }
}

/// The same cluster as RKE2 and as K3s: the same steps, hosts and point of
/// no return; only names differ.
#[test]
fn k3s_has_the_steps_of_the_same_rke2_plan() {
    let rke2 = std::fs::read_to_string(common::repo().join("plans/etcd-airgap.toml")).unwrap();
    let k3s = rke2
        .replace("distribution = \"rke2\"", "distribution = \"k3s\"")
        .replace("+rke2r1", "+k3s1")
        .replace("/var/lib/rancher/rke2", "/var/lib/rancher/k3s");
    let (a, b) = (
        compile_text("rke2.toml", &rke2),
        compile_text("k3s.toml", &k3s),
    );
    let shape = |p: &Plan| -> Vec<(&str, Vec<String>, bool, bool)> {
        p.steps
            .iter()
            .map(|s| {
                (
                    s.id,
                    s.scripts.iter().map(|x| x.host.name().to_owned()).collect(),
                    s.destructive,
                    s.no_return,
                )
            })
            .collect()
    };
    assert_eq!(shape(&a), shape(&b));
    assert_eq!(a.distribution, "rke2");
    assert_eq!(b.distribution, "k3s");
}

#[test]
fn k3s_install_keeps_the_unit_files_and_starts_nothing() {
    let p = compile("k3s-etcd-airgap");
    for host in ["server-1", "agent-1"] {
        let f = funcs(&p, "install", host);
        assert_eq!(
            f,
            [
                Func::MoveImagesAside,
                Func::KeepUnitFiles,
                Func::InstallK3s,
                Func::InstallImages,
                Func::PutBackUnitFiles,
                Func::CheckInstalledVersion,
            ],
            "{host}"
        );
    }
    let online = compile("k3s-sqlite");
    assert_eq!(
        funcs(&online, "install", "edge-k3s"),
        [
            Func::MoveImagesAside,
            Func::KeepUnitFiles,
            Func::InstallK3s,
            Func::PutBackUnitFiles,
            Func::CheckInstalledVersion,
        ]
    );
    // Units: k3s on servers, k3s-agent on agents (not the `k3s` of the
    // upstream roll-back page), each enabled only by its start step.
    let unit_of = |step: &str, host: &str| -> Vec<String> {
        let s = p.steps.iter().find(|s| s.id == step).unwrap();
        let x = s.scripts.iter().find(|x| x.host.name() == host).unwrap();
        x.actions
            .iter()
            .filter(|o| matches!(o.func, Func::EnableUnit | Func::StartUnit))
            .map(|o| o.args[0].to_string())
            .collect()
    };
    assert_eq!(unit_of("start", "server-1"), ["k3s", "k3s"]);
    assert_eq!(unit_of("rejoin", "server-2"), ["k3s", "k3s"]);
    assert_eq!(
        unit_of("start-agents", "agent-2"),
        ["k3s-agent", "k3s-agent"]
    );
    let stop = p.steps.iter().find(|s| s.id == "stop").unwrap();
    let agent = stop
        .scripts
        .iter()
        .find(|x| x.host.name() == "agent-1")
        .unwrap();
    let stop_op = agent
        .actions
        .iter()
        .find(|o| o.func == Func::StopRke2)
        .unwrap();
    assert_eq!(
        stop_op
            .args
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["/var/lib/rancher/k3s", "k3s-agent", "/usr/local/bin/k3s"]
    );
}
