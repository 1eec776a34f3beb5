//! The scale benchmark of issue 7: how `rewind check` and `rewind compile`
//! behave on clusters of hundreds to thousands of nodes, against the floor of
//! copying the bundle with `cp -r`.
//!
//! One run measures, for each size and each work folder, in interleaved
//! rounds on that folder's filesystem: `check`, `compile` into a fresh
//! folder, and `cp -r` of a bundle `compile` wrote. It reports medians, the
//! ratio compile / copy, CPU times, the peak resident memory of `compile`
//! (from `wait4`), and a breakdown of compile by stage. It spawns the release
//! `rewind` that cargo built for this benchmark, so "compile" is exactly the
//! command an operator runs. docs/performance.md explains the figures.
//!
//! ```text
//! cargo bench --bench scale                          # 500, 1,000 and 5,000 nodes
//! cargo bench --bench scale -- --nodes 500 --rounds 3 --dir /tmp/x
//! cargo bench --bench scale -- gen --nodes 5000 > big.toml
//! ```
//!
//! It is a benchmark, not a test: nothing here asserts a time.

mod generate;
mod measure;
mod phases;
mod report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use camino::Utf8PathBuf;
use clap::{Parser, Subcommand};

use measure::{median, remove, sync};
use report::{Row, Table};

/// The scale benchmark (see the module documentation).
#[derive(Parser)]
#[command(name = "scale")]
struct Args {
    /// Node counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "500,1000,5000")]
    nodes: Vec<usize>,
    /// Timed rounds per size (each round: check, compile, cp -r).
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Runs of the in-process stage breakdown per size (0: skip it).
    #[arg(long, default_value_t = 3)]
    phase_rounds: usize,
    /// Work folder (repeatable); compile and cp -r both write there. Default:
    /// target/bench-scale in the crate, and /dev/shm/rewind-bench when
    /// /dev/shm exists (memory: the figures without the disk).
    #[arg(long)]
    dir: Vec<PathBuf>,
    /// Machine load to measure under, comma-separated: `quiet` (nothing
    /// else of this benchmark runs) and `busy` (a CPU hog, a busy loop pinned
    /// to the last CPU when `taskset` exists, runs the whole time).
    #[arg(long, value_delimiter = ',', default_value = "quiet,busy")]
    load: Vec<Load>,
    /// Passed by `cargo bench`; without it (`cargo test --benches`) the
    /// benchmark does not run.
    #[arg(long, hide = true, global = true)]
    bench: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

/// The load a table is measured under.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Load {
    /// Nothing else of the benchmark runs.
    Quiet,
    /// A busy loop holds one CPU.
    Busy,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print a generated plan on stdout.
    Gen {
        /// Total nodes (5 servers from 10 nodes on, the rest agents).
        #[arg(long, conflicts_with_all = ["servers", "agents"])]
        nodes: Option<usize>,
        /// Servers (the first is the init server).
        #[arg(long, requires = "agents")]
        servers: Option<usize>,
        /// Agents.
        #[arg(long, requires = "servers")]
        agents: Option<usize>,
    },
    /// Run the compile pipeline once in-process, stage by stage, and print
    /// each stage's nanoseconds (run as a child: see `stage_breakdown`).
    #[command(hide = true)]
    Stages {
        /// The plan.
        plan: Utf8PathBuf,
        /// Where to write the bundle (must not exist).
        out: Utf8PathBuf,
    },
}

fn main() {
    let args = Args::parse();
    match &args.command {
        Some(Cmd::Gen {
            nodes,
            servers,
            agents,
        }) => {
            let (s, a) = match (nodes, servers, agents) {
                (Some(n), _, _) => generate::shape(*n),
                (None, Some(s), Some(a)) => (*s, *a),
                _ => generate::shape(5000),
            };
            print!("{}", generate::plan(s, a));
        }
        Some(Cmd::Stages { plan, out }) => {
            let t = phases::once(plan, out);
            let ns: Vec<String> = t.iter().map(|d| d.as_nanos().to_string()).collect();
            println!("{}", ns.join(" "));
        }
        // `cargo test --all-targets` runs bench targets without `--bench`:
        // a five-minute benchmark is not a test.
        None if !args.bench => eprintln!("scale: run it with `cargo bench --bench scale`"),
        None => bench(&args),
    }
}

fn bench(args: &Args) {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rewind = PathBuf::from(env!("CARGO_BIN_EXE_rewind"));
    check_reference(crate_dir);
    let mut dirs = args.dir.clone();
    if dirs.is_empty() {
        dirs.push(crate_dir.join("target/bench-scale"));
        if Path::new("/dev/shm").is_dir() {
            dirs.push(PathBuf::from("/dev/shm/rewind-bench"));
        }
    }
    let load_start = measure::load_average();
    // What a child is charged before it does anything (see measure::run).
    let baseline = measure::run(Path::new("true"), &[]).max_rss;
    let mut tables = Vec::new();
    for load in &args.load {
        let hog = (*load == Load::Busy).then(measure::Hog::start);
        for dir in &dirs {
            std::fs::create_dir_all(dir).expect("work folder");
            let dir = dir.canonicalize().expect("work folder");
            let fs = measure::filesystem(&dir);
            let label = match &hog {
                None => "quiet".to_owned(),
                Some(h) => format!("busy: {}", h.describe()),
            };
            eprintln!(
                "scale: {} round(s) per size in {} ({fs}, {label}); large bundles are written and copied, this takes a while",
                args.rounds,
                dir.display()
            );
            // The stage breakdown says where the time goes; once is enough.
            let phase_rounds = if hog.is_some() { 0 } else { args.phase_rounds };
            let rows = args
                .nodes
                .iter()
                .map(|&n| measure_size(&rewind, &dir, n, args.rounds, phase_rounds))
                .collect();
            remove(&dir);
            tables.push(Table {
                dir,
                fs,
                load: label,
                rows,
            });
        }
        if let Some(h) = hog {
            h.stop();
        }
    }
    let load = (load_start, measure::load_average());
    let golden = measure::tree_size(&crate_dir.join("golden"));
    print!(
        "{}",
        report::markdown(
            &tables,
            args.rounds,
            args.phase_rounds,
            baseline,
            &load,
            golden
        )
    );
}

/// `plans/large.toml` must stay what the generator makes (its golden bundle
/// is the committed example of a large cluster).
fn check_reference(crate_dir: &Path) {
    let (path, servers, agents) = generate::REFERENCE;
    let want = generate::plan(servers, agents);
    let have =
        std::fs::read_to_string(crate_dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(
        have == want,
        "{path} is not the generator's output; regenerate it with\n  cargo bench --bench scale -- gen --servers {servers} --agents {agents} > {path}"
    );
}

fn utf8(p: &Path) -> &str {
    p.to_str().expect("the work folder's path is UTF-8")
}

fn measure_size(
    rewind: &Path,
    dir: &Path,
    nodes: usize,
    rounds_wanted: usize,
    phase_rounds: usize,
) -> Row {
    let (servers, agents) = generate::shape(nodes);
    let base = dir.join(format!("n{nodes}"));
    remove(&base);
    std::fs::create_dir_all(&base).expect("size folder");
    let plan = base.join("plan.toml");
    std::fs::write(&plan, generate::plan(servers, agents)).expect("plan written");
    let source = base.join("bundle");
    let out = base.join("compiled");
    let copy = base.join("copied");
    let scratch = base.join("scratch");
    let (plan_s, source_s, out_s, copy_s) = (utf8(&plan), utf8(&source), utf8(&out), utf8(&copy));

    eprintln!("scale: {nodes} nodes ({servers} servers, {agents} agents)");
    // Warm-up (page cache, binary); also the bundle that cp -r copies.
    measure::run(rewind, &["compile", plan_s, "--out", source_s]);
    let (bytes, files) = measure::tree_size(&source);

    let cp = Path::new("cp");
    let mut rounds = Vec::new();
    for round in 0..rounds_wanted {
        remove(&out);
        remove(&copy);
        remove(&scratch);
        sync();
        // On ext4, the first tree created after a large deletion is slowed
        // down by the inode allocator stepping over just-freed inodes (5 to
        // 10 times at 5,000 nodes, see docs/performance.md); an untimed copy
        // takes that hit, so that it falls on neither measured command.
        measure::run(cp, &["-r", source_s, utf8(&scratch)]);
        sync();
        let check = measure::run(rewind, &["check", plan_s]);
        // Alternate the order, so that neither side always runs right after
        // the other (deletions, writeback, cache).
        let mut compile = None;
        let mut copied = None;
        for side in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            sync();
            if side == 0 {
                compile = Some(measure::run(rewind, &["compile", plan_s, "--out", out_s]));
            } else {
                copied = Some(measure::run(cp, &["-r", source_s, copy_s]));
            }
        }
        let (compile, copied) = (compile.expect("ran"), copied.expect("ran"));
        eprintln!(
            "  round {}: check {:.1} ms ({:.1} ms CPU), compile {:.0} ms ({:.0} ms CPU, {:.1} MB), cp -r {:.0} ms ({:.0} ms CPU)",
            round + 1,
            report::ms(check.wall),
            report::ms(check.cpu),
            report::ms(compile.wall),
            report::ms(compile.cpu),
            report::mb(compile.max_rss),
            report::ms(copied.wall),
            report::ms(copied.cpu),
        );
        rounds.push((check, compile, copied));
    }
    remove(&out);
    remove(&copy);
    remove(&scratch);
    let stages = (phase_rounds > 0).then(|| stage_breakdown(&base, plan_s, phase_rounds));
    remove(&base);

    let pick = |f: &dyn Fn(&(measure::Run, measure::Run, measure::Run)) -> Duration| {
        median(&rounds.iter().map(f).collect::<Vec<_>>())
    };
    Row {
        nodes,
        files,
        bytes,
        check: pick(&|r| r.0.wall),
        check_cpu: pick(&|r| r.0.cpu),
        compile: pick(&|r| r.1.wall),
        copy: pick(&|r| r.2.wall),
        compile_cpu: pick(&|r| r.1.cpu),
        copy_cpu: pick(&|r| r.2.cpu),
        paired_ratio: measure::median_f64(
            &rounds
                .iter()
                .map(|r| r.1.wall.as_secs_f64() / r.2.wall.as_secs_f64())
                .collect::<Vec<_>>(),
        ),
        max_rss: rounds.iter().map(|r| r.1.max_rss).max().unwrap_or(0),
        stages,
    }
}

/// Median time of each stage of compile, run in-process by a child of this
/// benchmark (`scale stages`). A child, because it holds a whole bundle in
/// memory, and a process started by this one is charged this one's resident
/// memory in its peak RSS: the measuring process must stay small.
fn stage_breakdown(base: &Path, plan: &str, runs: usize) -> [Duration; 7] {
    let staged = base.join("staged");
    let me = std::env::current_exe().expect("own path");
    let runs: Vec<[Duration; 7]> = (0..runs)
        .map(|_| {
            remove(&staged);
            sync();
            let out = std::process::Command::new(&me)
                .args(["stages", plan, utf8(&staged)])
                .output()
                .expect("stage run");
            assert!(out.status.success(), "stage run failed: {out:?}");
            let text = String::from_utf8(out.stdout).expect("UTF-8");
            let ns: Vec<u64> = text
                .split_whitespace()
                .map(|n| n.parse().expect("nanoseconds"))
                .collect();
            std::array::from_fn(|i| Duration::from_nanos(ns[i]))
        })
        .collect();
    remove(&staged);
    std::array::from_fn(|i| median(&runs.iter().map(|r| r[i]).collect::<Vec<_>>()))
}
