//! The benchmark's figures as Markdown, ready for docs/performance.md.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::phases::STAGES;

/// The figures of one size on one filesystem (medians over the rounds).
pub struct Row {
    /// Nodes in the plan.
    pub nodes: usize,
    /// Files in the bundle.
    pub files: usize,
    /// Bytes in the bundle.
    pub bytes: u64,
    /// Wall time of `rewind check`.
    pub check: Duration,
    /// CPU time of `rewind check` (on a loaded machine, its wall time is
    /// mostly waiting for a CPU).
    pub check_cpu: Duration,
    /// Wall time of `rewind compile` into a fresh folder.
    pub compile: Duration,
    /// Wall time of `cp -r` of the bundle.
    pub copy: Duration,
    /// CPU time (user + system, every thread) of compile.
    pub compile_cpu: Duration,
    /// CPU time of cp -r.
    pub copy_cpu: Duration,
    /// Median over rounds of compile / cp -r of the same round.
    pub paired_ratio: f64,
    /// Highest peak RSS of compile over the rounds.
    pub max_rss: u64,
    /// Median time of each stage (`phases::STAGES`), if measured.
    pub stages: Option<[Duration; 7]>,
}

/// All sizes measured in one work folder.
pub struct Table {
    /// The work folder.
    pub dir: PathBuf,
    /// Its filesystem.
    pub fs: String,
    /// The machine's load while it was measured (`quiet`, or the hog).
    pub load: String,
    /// One row per size.
    pub rows: Vec<Row>,
}

/// Milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Mebibytes.
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Megabytes (10^6 bytes), as the bundle-size targets are stated.
pub fn decimal_mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

/// The whole report.
pub fn markdown(
    tables: &[Table],
    rounds: usize,
    stage_runs: usize,
    baseline_rss: u64,
    load: &(String, String),
    golden: (u64, usize),
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "rewind {} scale benchmark: medians of {rounds} interleaved round(s) per size; {} CPU(s), load average {} at the start, {} at the end; peak RSS of `true` spawned the same way: {:.1} MB",
        rewind::manifest::VERSION,
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        load.0,
        load.1,
        mb(baseline_rss),
    );
    let _ = writeln!(
        s,
        "\n`golden/`: {} files, **{:.2} MB** (target ≤ 3 MB; MB = 10^6 bytes, file contents only).",
        golden.1,
        decimal_mb(golden.0)
    );
    for t in tables {
        let _ = writeln!(s, "\n### {} ({}), {}\n", t.dir.display(), t.fs, t.load);
        let _ = writeln!(
            s,
            "| nodes | files | bundle MB | check ms (CPU ms) | compile ms | cp -r ms | compile / cp -r | CPU ms compile / cp -r | peak RSS compile MB | compile µs / node |"
        );
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &t.rows {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {:.1} ({:.1}) | {:.0} | {:.0} | **{:.2}** (paired {:.2}) | {:.0} / {:.0} | {:.1} | {:.0} |",
                r.nodes,
                r.files,
                decimal_mb(r.bytes),
                ms(r.check),
                ms(r.check_cpu),
                ms(r.compile),
                ms(r.copy),
                ratio(r.compile, r.copy),
                r.paired_ratio,
                ms(r.compile_cpu),
                ms(r.copy_cpu),
                mb(r.max_rss),
                r.compile.as_secs_f64() * 1e6 / r.nodes as f64,
            );
        }
        if let (Some(small), Some(big)) = (
            t.rows.iter().min_by_key(|r| r.nodes),
            t.rows.iter().max_by_key(|r| r.nodes),
        ) {
            let per = |r: &Row| r.compile.as_secs_f64() / r.nodes as f64;
            let _ = writeln!(
                s,
                "\nAt {} nodes: bundle **{:.1} MB**, {:.2} KB per node (target ≤ 25 MB, ≤ 5 KB per node; 10^6 and 10^3 bytes of file contents); compile / cp -r **{:.2}** (target ≤ 1.5); check **{:.1} ms**, of which CPU **{:.1} ms** (≤ 20); peak RSS of compile **{:.1} MB** (≤ 50); compile time per node at {} ÷ at {}: **{:.2}** (1.00 = linear).",
                big.nodes,
                decimal_mb(big.bytes),
                big.bytes as f64 / 1000.0 / big.nodes as f64,
                ratio(big.compile, big.copy),
                ms(big.check),
                ms(big.check_cpu),
                mb(big.max_rss),
                big.nodes,
                small.nodes,
                per(big) / per(small),
            );
        }
        if t.rows.iter().any(|r| r.stages.is_some()) {
            let _ = writeln!(
                s,
                "\nStages of compile, one after the other (median of {stage_runs}; ms and share):\n"
            );
            let _ = writeln!(s, "| nodes | {} | sum |", STAGES.join(" | "));
            let _ = writeln!(s, "|---:|{}---:|", "---:|".repeat(STAGES.len()));
            for r in &t.rows {
                if let Some(st) = &r.stages {
                    let total: Duration = st.iter().sum();
                    let cells: Vec<String> = st
                        .iter()
                        .map(|d| format!("{:.1} ({:.0}%)", ms(*d), 100.0 * ratio(*d, total)))
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
    }
    s
}
