//! The scale benchmark of issue 7: how `rewind check` and `rewind compile`
//! behave on clusters of hundreds to thousands of nodes, against the floor of
//! copying the bundle with `cp -r`.
//!
//! One run measures, for each size, in interleaved rounds on the same
//! filesystem: `check`, `compile` into a fresh folder, and `cp -r` of a bundle
//! `compile` wrote; it reports medians, the ratio compile / copy, the peak
//! resident memory of `compile` (from `wait4`), and an in-process breakdown
//! of compile by stage. It spawns the release `rewind` binary that cargo
//! built for this benchmark, so "compile" is exactly what an operator runs.
//!
//! ```text
//! cargo bench --bench scale                          # 500, 1,000 and 5,000 nodes
//! cargo bench --bench scale -- --nodes 500 --rounds 3
//! cargo bench --bench scale -- gen --nodes 5000 > big.toml
//! ```
//!
//! It is a benchmark, not a test: nothing here asserts a time.

mod generate;
mod measure;
mod phases;

use std::path::{Path, PathBuf};
use std::time::Duration;

use camino::Utf8PathBuf;
use clap::{Parser, Subcommand};

use measure::{median, remove, sync};

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
    /// Rounds of the in-process stage breakdown per size (0: skip it).
    #[arg(long, default_value_t = 3)]
    phase_rounds: usize,
    /// Work folder; compile and cp -r both write here (default:
    /// target/bench-scale in the crate).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true, global = true)]
    bench: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
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
}

/// The figures of one size.
struct Row {
    nodes: usize,
    files: usize,
    bytes: u64,
    check: Duration,
    compile: Duration,
    copy: Duration,
    /// Median CPU time (user + system) of compile and of cp -r.
    compile_cpu: Duration,
    copy_cpu: Duration,
    /// Median over rounds of (compile / copy of the same round).
    paired_ratio: f64,
    max_rss: u64,
    stages: Option<[Duration; 7]>,
}

fn main() {
    let args = Args::parse();
    if let Some(Cmd::Gen {
        nodes,
        servers,
        agents,
    }) = args.command
    {
        let (s, a) = match (nodes, servers, agents) {
            (Some(n), _, _) => generate::shape(n),
            (None, Some(s), Some(a)) => (s, a),
            _ => generate::shape(5000),
        };
        print!("{}", generate::plan(s, a));
        return;
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rewind = PathBuf::from(env!("CARGO_BIN_EXE_rewind"));
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| crate_dir.join("target/bench-scale"));
    check_reference(crate_dir);
    std::fs::create_dir_all(&dir).expect("work folder");
    let dir = dir.canonicalize().expect("work folder");

    eprintln!(
        "scale: {} round(s) per size in {}; this writes and copies large bundles, it takes a while",
        args.rounds,
        dir.display()
    );
    let rows: Vec<Row> = args
        .nodes
        .iter()
        .map(|&n| measure_size(&rewind, &dir, n, args.rounds, args.phase_rounds))
        .collect();
    print!("{}", report(&rows, &args, &dir));
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

fn measure_size(
    rewind: &Path,
    dir: &Path,
    nodes: usize,
    rounds: usize,
    phase_rounds: usize,
) -> Row {
    let (servers, agents) = generate::shape(nodes);
    let base = dir.join(format!("n{nodes}"));
    remove(&base);
    std::fs::create_dir_all(&base).expect("size folder");
    let plan = base.join("plan.toml");
    std::fs::write(&plan, generate::plan(servers, agents)).expect("plan written");
    let plan_s = plan.to_str().expect("UTF-8 work folder");
    let source = base.join("bundle");
    let out = base.join("compiled");
    let copy = base.join("copied");
    let (source_s, out_s, copy_s) = (
        source.to_str().expect("UTF-8"),
        out.to_str().expect("UTF-8"),
        copy.to_str().expect("UTF-8"),
    );

    eprintln!("scale: {nodes} nodes ({servers} servers, {agents} agents)");
    // Warm-up (page cache, binary): also the bundle that cp -r copies.
    measure::run(rewind, &["compile", plan_s, "--out", source_s]);
    let (bytes, files) = measure::tree_size(&source);

    let cp = Path::new("cp");
    let (mut checks, mut compiles, mut copies, mut ratios) = (vec![], vec![], vec![], vec![]);
    let (mut compile_cpu, mut copy_cpu) = (vec![], vec![]);
    let mut max_rss = 0;
    for round in 0..rounds {
        remove(&out);
        remove(&copy);
        sync();
        checks.push(measure::run(rewind, &["check", plan_s]).wall);
        // Alternate the order so that neither side always runs right after
        // the other's deletions or writeback.
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
        compiles.push(compile.wall);
        copies.push(copied.wall);
        compile_cpu.push(compile.cpu);
        copy_cpu.push(copied.cpu);
        ratios.push(compile.wall.as_secs_f64() / copied.wall.as_secs_f64());
        max_rss = max_rss.max(compile.max_rss);
        eprintln!(
            "  round {}: check {:.1} ms, compile {:.0} ms, cp -r {:.0} ms",
            round + 1,
            ms(checks[round]),
            ms(compile.wall),
            ms(copied.wall)
        );
    }
    remove(&out);
    remove(&copy);

    let stages = (phase_rounds > 0).then(|| {
        let phase_out = Utf8PathBuf::from_path_buf(base.join("staged")).expect("UTF-8");
        let plan_u = Utf8PathBuf::from_path_buf(plan.clone()).expect("UTF-8");
        let runs: Vec<[Duration; 7]> = (0..phase_rounds)
            .map(|_| {
                remove(phase_out.as_std_path());
                sync();
                phases::once(&plan_u, &phase_out)
            })
            .collect();
        remove(phase_out.as_std_path());
        std::array::from_fn(|i| median(&runs.iter().map(|r| r[i]).collect::<Vec<_>>()))
    });
    remove(&base);

    Row {
        nodes,
        files,
        bytes,
        check: median(&checks),
        compile: median(&compiles),
        copy: median(&copies),
        compile_cpu: median(&compile_cpu),
        copy_cpu: median(&copy_cpu),
        paired_ratio: measure::median_f64(&ratios),
        max_rss,
        stages,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn report(rows: &[Row], args: &Args, dir: &Path) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "rewind {} scale benchmark: {} round(s) per size, medians; compile and cp -r write to the same filesystem ({})\n",
        rewind::render::VERSION,
        args.rounds,
        dir.display()
    );
    let _ = writeln!(
        s,
        "| nodes | files | bundle MB | check ms | compile ms | cp -r ms | compile / cp | CPU ms: compile, cp -r | peak RSS of compile MB | compile µs per node |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | {:.1} | {:.0} | {:.0} | {:.2} (paired {:.2}) | {:.0}, {:.0} | {:.1} | {:.0} |",
            r.nodes,
            r.files,
            mb(r.bytes),
            ms(r.check),
            ms(r.compile),
            ms(r.copy),
            r.compile.as_secs_f64() / r.copy.as_secs_f64(),
            r.paired_ratio,
            ms(r.compile_cpu),
            ms(r.copy_cpu),
            mb(r.max_rss),
            r.compile.as_secs_f64() * 1e6 / r.nodes as f64,
        );
    }
    if rows.iter().any(|r| r.stages.is_some()) {
        let _ = writeln!(
            s,
            "\nWhere compile's time goes (in-process, median of {} run(s); ms and share):\n",
            args.phase_rounds
        );
        let _ = writeln!(s, "| nodes | {} | total |", phases::STAGES.join(" | "));
        let _ = writeln!(s, "|---:|{}---:|", "---:|".repeat(phases::STAGES.len()));
        for r in rows {
            if let Some(st) = &r.stages {
                let total: Duration = st.iter().sum();
                let cells: Vec<String> = st
                    .iter()
                    .map(|d| {
                        format!(
                            "{:.1} ({:.0}%)",
                            ms(*d),
                            100.0 * d.as_secs_f64() / total.as_secs_f64()
                        )
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.0} |",
                    r.nodes,
                    cells.join(" | "),
                    ms(total)
                );
            }
        }
    }
    if let (Some(small), Some(big)) = (
        rows.iter().min_by_key(|r| r.nodes),
        rows.iter().max_by_key(|r| r.nodes),
    ) {
        let per = |r: &Row| r.compile.as_secs_f64() / r.nodes as f64;
        let _ = writeln!(
            s,
            "\nAt {} nodes: compile / cp -r = {:.2} (target ≤ 1.5); check {:.1} ms (target ≤ 50); peak RSS of compile {:.1} MB (target ≤ 100); compile time per node at {} ÷ at {} = {:.2} (1.00 is linear)",
            big.nodes,
            big.compile.as_secs_f64() / big.copy.as_secs_f64(),
            ms(big.check),
            mb(big.max_rss),
            big.nodes,
            small.nodes,
            per(big) / per(small),
        );
    }
    s
}
