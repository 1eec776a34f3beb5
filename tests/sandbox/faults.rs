//! Fault injection: which commands a step runs, and what must happen when
//! one of them fails.
//!
//! The commands of a step are those it runs to change the host (printed
//! `+ CMD` by the library; for `env`, `timeout` and `sh FILE` also the
//! stand-in they start) and the queries it makes of the stand-ins itself
//! (`rke2 --version`, `systemctl is-active`, `kubectl get`, `docker ps`,
//! `pg_restore -l`). Calls the stand-ins make themselves (killall's
//! `systemctl stop`, install.sh's `daemon-reload`) are not the script's.
//!
//! Failing one of them must stop the step at once with the command and its
//! exit code, except where the procedure defines what a failure means: a
//! failing "is the service running?" (or "enabled?") means it is not; a failing API probe
//! before the drain means the drain is skipped (the drain step, docs/running.md); a
//! failing list of node-password secrets only loses advice; saving the
//! current RKE1 state is best effort; and a query polled in a bounded wait
//! fails the step only when the wait ends.

use super::stubs::{Call, Fault, STAND_INS};
use super::words::{self, Printed};
use super::world::ScriptRun;

/// The exit code injected faults return (distinct from every code the
/// library uses itself).
pub const RC: i32 = 42;

/// What a failure of the command must lead to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The step stops at once, exit [`RC`], naming the command and the code.
    Stops,
    /// The procedure defines the failure as an answer; the step finishes.
    Continues,
    /// A polled query: the step fails when its bounded wait ends.
    WaitsThenStops,
}

/// One command of a step, made to fail.
#[derive(Debug, Clone)]
pub struct Point {
    /// The fault to inject.
    pub fault: Fault,
    /// The command as the library prints it (or the stand-in call).
    pub what: String,
    /// What must happen.
    pub expect: Expect,
    /// The position of the failing command among the `+` lines of the
    /// clean run (none for a query): a failed run prints no more.
    pub printed: Option<usize>,
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// The stand-in call a printed command (or its wrapped command) made.
fn call_for<'a>(calls: &'a [Call], args: &[String]) -> Option<&'a Call> {
    calls.iter().find(|c| c.arg_texts() == args)
}

/// Every command `run` ran or asked, as fault points (deduplicated by
/// shape: the same command for another node counts once).
pub fn points(run: &ScriptRun, step: &str, nodes: &[String]) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let shape = |tool: &str, args: &[String]| {
        let mut s = tool.to_owned();
        for a in args {
            let mut a = a.clone();
            for n in nodes {
                if a == *n {
                    a = "<node>".into();
                }
            }
            s.push(' ');
            s.push_str(&a);
        }
        s
    };
    let mut add = |out: &mut Vec<Point>,
                   tool: &str,
                   args: Option<Vec<String>>,
                   what: String,
                   expect: Expect,
                   printed: Option<usize>| {
        let key = shape(tool, args.as_deref().unwrap_or(&[]));
        if seen.insert(key) {
            out.push(Point {
                fault: Fault {
                    host: Some(run.host.clone()),
                    tool: tool.to_owned(),
                    args,
                    rc: RC,
                },
                what,
                expect,
                printed,
            });
        }
    };
    for (index, Printed { argv, stdin }) in words::executed(&run.run.stdout).into_iter().enumerate()
    {
        let what = format!(
            "{}{}",
            argv.join(" "),
            stdin.map(|s| format!(" < {s}")).unwrap_or_default()
        );
        let args = argv[1..].to_vec();
        // A stand-in run by its path (rke, rke2) is known by its own name.
        let tool = call_for(&run.calls, &args)
            .filter(|c| STAND_INS.contains(&c.tool.as_str()) && basename(&argv[0]) != "env")
            .map_or_else(|| basename(&argv[0]).to_owned(), |c| c.tool.clone());
        let expect = if tool == "rke" && args.starts_with(&["etcd".into(), "snapshot-save".into()])
        {
            Expect::Continues
        } else {
            Expect::Stops
        };
        add(
            &mut out,
            &tool,
            Some(args),
            what.clone(),
            expect,
            Some(index),
        );
        // What env, timeout and sh start.
        let mut rest: &[String] = &argv;
        loop {
            match rest.first().map(|s| basename(s)) {
                Some("env") => {
                    rest = &rest[1..];
                    while rest
                        .first()
                        .is_some_and(|w| w.contains('=') && !w.starts_with('-'))
                    {
                        rest = &rest[1..];
                    }
                }
                Some("timeout") => rest = &rest[2.min(rest.len())..],
                _ => break,
            }
        }
        if rest.len() == argv.len() || rest.is_empty() {
            continue;
        }
        if basename(&rest[0]) == "sh" {
            if let Some(c) = run
                .calls
                .iter()
                .find(|c| c.tool == "install.sh" || c.tool == "rke2-install.sh")
            {
                add(
                    &mut out,
                    &c.tool.clone(),
                    None,
                    format!("{} (started by: {what})", c.tool),
                    Expect::Stops,
                    Some(index),
                );
            }
        } else if let Some(c) = call_for(&run.calls, &rest[1..]) {
            add(
                &mut out,
                &c.tool.clone(),
                Some(rest[1..].to_vec()),
                format!("{c} (started by: {what})"),
                Expect::Stops,
                Some(index),
            );
        }
    }
    for c in &run.calls {
        if !super::checks::read_only(c) {
            continue;
        }
        let a = c.arg_texts();
        let has = |w: &str| a.iter().any(|x| x == w);
        let expect = match c.tool.as_str() {
            "systemctl" if has("--quiet") || has("is-enabled") => Expect::Continues,
            "systemctl" => Expect::WaitsThenStops,
            "kubectl" if has("--raw=/readyz") || has("secrets") => Expect::Continues,
            "kubectl" if step.ends_with("verify") => Expect::WaitsThenStops,
            _ => Expect::Stops,
        };
        add(
            &mut out,
            &c.tool,
            Some(a.clone()),
            c.to_string(),
            expect,
            None,
        );
    }
    out
}
