//! Runs a parsed command: calls the library ([`crate::compiler`] for the
//! pipeline, the review tools, `verify`, `init`), prints results and
//! diagnostics, and maps outcomes to exit codes (0 ok, 1 plan rejected or
//! bundle damaged, 2 usage, 3 I/O or internal error, 4 `diff` input
//! rejected). The exit codes are this module's; the library returns values.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use camino::Utf8Path;

use crate::bundle::BundleError;
use crate::cli::{CheckFormat, Cli, Command, DiffFormat, ExplainFormat};
use crate::compiler::{self, Planned, WriteError};
use crate::diagnostic::{Diagnostic, render_all};
use crate::review::audit::{self, Verdict};
use crate::review::diff::{self, OpenError, Side};
use crate::review::explain;
use crate::source::SourceFile;
use crate::{init, verify};

/// Exit codes of the command line (README.md, docs/user-guide.md "Reference").
pub mod exit {
    /// Success (warnings allowed).
    pub const OK: u8 = 0;
    /// The plan is rejected (nothing written), or a bundle is damaged.
    pub const REJECTED: u8 = 1;
    /// Usage error (clap uses 2 too).
    pub const USAGE: u8 = 2;
    /// I/O or internal error.
    pub const IO: u8 = 3;
    /// `diff`: the procedures differ.
    pub const DIFFERENT: u8 = 1;
    /// `diff`: an input is rejected (a plan that does not validate, a
    /// folder that is not a bundle), so there is nothing to compare.
    pub const INPUT: u8 = 4;
}

/// Runs a command and returns its exit code.
pub fn run(cli: &Cli) -> ExitCode {
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::IO)
        }
    }
}

fn dispatch(cli: &Cli) -> Result<u8> {
    match &cli.command {
        Command::Check { plan, to, format } => check(plan, to.as_deref(), *format),
        Command::Compile {
            plan,
            to,
            out,
            force,
        } => compile(plan, to.as_deref(), out, *force),
        Command::Explain { plan, to, format } => explain(plan, to.as_deref(), *format),
        Command::Verify { dir } => verify_dir(dir),
        Command::Schema => print(&crate::schema::json()),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "rewind", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Man { command } => man(command.as_deref()),
        Command::Prepare {
            plan,
            to,
            name,
            out,
            force,
        } => prepare(plan, to.as_deref(), name.as_deref(), out, *force),
        Command::Plan {
            from_facts,
            to,
            current,
            out,
            force,
        } => plan_from_facts(
            from_facts,
            &crate::from_facts::Options {
                to: to.as_deref(),
                current: current.as_deref(),
            },
            out.as_deref(),
            *force,
        ),
        Command::Diff { old, new, format } => diff_cmd(old, new, *format),
        Command::Audit {
            plans_dir,
            golden_dir,
        } => audit_cmd(plans_dir, golden_dir),
        Command::Init {
            datastore,
            airgap,
            k3s,
            from_nodes,
            from_rke,
        } => {
            let datastore = datastore.map(|d| {
                clap::ValueEnum::to_possible_value(&d)
                    .expect("bug in rewind: every datastore has a name")
                    .get_name()
                    .to_owned()
            });
            match (from_nodes, from_rke) {
                (Some(path), _) => import(path, |name, text| {
                    crate::init_nodes::import(
                        name,
                        text,
                        crate::init_nodes::Options {
                            datastore: datastore.as_deref(),
                            airgap: *airgap,
                        },
                    )
                }),
                (None, Some(path)) => import(path, crate::init_rke::import),
                (None, None) if *k3s => print(&crate::init::plan_for(
                    datastore.as_deref().unwrap_or("sqlite"),
                    *airgap,
                    &crate::model::Flavor::K3S,
                )),
                (None, None) => print(&crate::init::plan(
                    datastore.as_deref().unwrap_or("etcd"),
                    *airgap,
                )),
            }
        }
    }
}

/// `init --from-*`: reads the input (`-` is standard input), imports it,
/// prints the plan on stdout and the notes on stderr. An input that cannot
/// be imported exits 1 and prints no plan; one that cannot be read, 3.
fn import(
    path: &Utf8Path,
    convert: impl FnOnce(&str, &str) -> std::result::Result<init::Imported, init::ImportError>,
) -> Result<u8> {
    let (name, bytes) = if path.as_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .context("cannot read standard input")?;
        ("<stdin>", bytes)
    } else {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
        (path.as_str(), bytes)
    };
    let result = match String::from_utf8(bytes) {
        Ok(text) => convert(name, &text),
        Err(_) => Err(init::ImportError::new(
            name,
            "not UTF-8 text",
            "give the file that kubectl or rke wrote, as it is",
        )),
    };
    match result {
        Ok(imported) => {
            print(&imported.plan)?;
            for note in &imported.notes {
                eprintln!("note: {note}");
            }
            Ok(exit::OK)
        }
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("  = help: {}", e.help);
            eprintln!("error: {name} was not imported; nothing was written");
            Ok(exit::REJECTED)
        }
    }
}

fn load(path: &Utf8Path) -> Result<SourceFile> {
    Ok(compiler::read(path)?)
}

/// Checks and plans; prints the diagnostics (warnings, or every finding of
/// a rejected plan) to stderr; the plan if accepted.
fn planned(source: &SourceFile, to: Option<&str>) -> Option<Planned> {
    match compiler::plan(source, to) {
        Ok(planned) => {
            if !planned.warnings.is_empty() {
                eprint!("{}", render_all(&planned.warnings, source));
            }
            Some(planned)
        }
        Err(diagnostics) => {
            eprint!("{}", render_all(&diagnostics, source));
            None
        }
    }
}

fn check(path: &Utf8Path, to: Option<&str>, format: CheckFormat) -> Result<u8> {
    let source = load(path)?;
    let checked = compiler::check(&source, to);
    let ok = checked.model.is_some();
    match format {
        CheckFormat::Text => {
            if !checked.diagnostics.is_empty() {
                eprint!("{}", render_all(&checked.diagnostics, &source));
            }
            if let Some(m) = &checked.model {
                println!(
                    "ok: {} is a valid plan for cluster {}",
                    source.name, m.cluster
                );
            }
        }
        CheckFormat::Json => {
            let diags: Vec<_> = checked
                .diagnostics
                .iter()
                .map(|d: &Diagnostic| d.to_json(&source))
                .collect();
            let doc = serde_json::json!({ "file": source.name, "ok": ok, "diagnostics": diags });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
    }
    Ok(if ok { exit::OK } else { exit::REJECTED })
}

fn compile(path: &Utf8Path, to: Option<&str>, out: &Utf8Path, force: bool) -> Result<u8> {
    let source = load(path)?;
    let Some(Planned { plan, .. }) = planned(&source, to) else {
        return Ok(exit::REJECTED);
    };
    // From here on SIGINT/SIGTERM stop the writer, which removes its
    // temporary folder: an interrupted compile leaves nothing behind.
    crate::interrupt::install();
    let written = match written(compiler::write(&plan, out, force), out)? {
        Ok(written) => written,
        Err(code) => return Ok(code),
    };
    let scripts: usize = plan.steps.iter().map(|s| s.scripts.len()).sum();
    println!(
        "wrote {out}: {} steps, {scripts} scripts for cluster {} ({} → {}); start with {out}/README.md",
        plan.steps.len(),
        plan.cluster,
        plan.from,
        plan.to
    );
    // The one value that pins the whole bundle, for a reviewer to publish
    // out of band (docs/security-model.md).
    println!("bundle digest (sha256 of SHA256SUMS): {}", written.digest);
    Ok(exit::OK)
}

fn explain(path: &Utf8Path, to: Option<&str>, format: ExplainFormat) -> Result<u8> {
    let source = load(path)?;
    let Some(Planned { plan, .. }) = planned(&source, to) else {
        return Ok(exit::REJECTED);
    };
    let format = match format {
        ExplainFormat::Text => explain::Format::Text,
        ExplainFormat::Markdown => explain::Format::Markdown,
        ExplainFormat::Json => explain::Format::Json,
        ExplainFormat::Mermaid => explain::Format::Mermaid,
    };
    print(&explain::explain(&plan, format)?)
}

/// One side of `diff`: a bundle folder, or a plan compiled in memory.
/// `Err(code)` when the side is unusable (the reason already printed).
fn diff_side(path: &Utf8Path) -> Result<std::result::Result<Side, u8>> {
    let opened = Side::open(path);
    for w in &opened.warnings {
        eprintln!("warning: {w}");
    }
    match opened.side {
        Ok(side) => Ok(Ok(side)),
        Err(OpenError::Read(e)) => Err(e.into()),
        Err(OpenError::Rejected(source, diagnostics)) => {
            eprint!("{}", render_all(&diagnostics, &source));
            Ok(Err(exit::INPUT))
        }
        Err(OpenError::NotABundle(message)) => {
            eprintln!("error: {message}");
            Ok(Err(exit::INPUT))
        }
    }
}

fn diff_cmd(old: &Utf8Path, new: &Utf8Path, format: DiffFormat) -> Result<u8> {
    let (a, b) = (diff_side(old)?, diff_side(new)?);
    let (a, b) = match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(c), _) | (_, Err(c)) => return Ok(c),
    };
    let d = diff::diff(&a, &b);
    print(&match format {
        DiffFormat::Text => d.text(),
        DiffFormat::Markdown => d.markdown(),
    })?;
    Ok(if d.is_equal() {
        exit::OK
    } else {
        exit::DIFFERENT
    })
}

fn audit_cmd(plans_dir: &Utf8Path, golden_dir: &Utf8Path) -> Result<u8> {
    let report = audit::run(plans_dir, golden_dir).with_context(|| {
        // Name the folder that failed, not both.
        match (plans_dir.is_dir(), golden_dir.is_dir()) {
            (false, _) => format!("cannot list the plans folder {plans_dir}"),
            (true, false) => format!("cannot list the golden folder {golden_dir}"),
            (true, true) => format!("cannot list {plans_dir} or {golden_dir}"),
        }
    })?;
    eprint!("{}", report.errors);
    print(&report.text)?;
    Ok(match report.verdict() {
        Verdict::AllMatch => exit::OK,
        Verdict::Drift => exit::REJECTED,
        Verdict::Unreadable => exit::IO,
    })
}

/// The man page of rewind, or of `rewind-<sub>` (clap_mangen names the
/// subcommands' pages so in the main page's SUBCOMMANDS section).
fn man(sub: Option<&str>) -> Result<u8> {
    let mut root = <Cli as clap::CommandFactory>::command();
    // Building gives subcommands their display name (`rewind-diff`) and
    // usage name (`rewind diff`), which the page's title and synopsis use.
    root.build();
    let page = match sub {
        None => root,
        Some(name) => {
            if let Some(cmd) = root.find_subcommand(name) {
                cmd.clone()
            } else {
                eprintln!("error: no subcommand {name}; see `rewind --help`");
                return Ok(exit::USAGE);
            }
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .source(format!("rewind {}", env!("CARGO_PKG_VERSION")))
        .render(&mut out)?;
    std::io::stdout().write_all(&out)?;
    Ok(exit::OK)
}

/// Writes text to stdout as it is.
fn print(text: &str) -> Result<u8> {
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(exit::OK)
}

fn verify_dir(dir: &Utf8Path) -> Result<u8> {
    let report = verify::dir(dir).with_context(|| format!("cannot read bundle {dir}"))?;
    if report.problems.is_empty() {
        println!(
            "ok: {dir}: {} files match SHA256SUMS and plan.json",
            report.files
        );
        if let Some(digest) = &report.digest {
            println!("bundle digest (sha256 of SHA256SUMS): {digest}");
        }
        return Ok(exit::OK);
    }
    for p in &report.problems {
        eprintln!("error: {dir}/{p}");
    }
    eprintln!(
        "error: {dir} is not the bundle rewind wrote ({} problem{})",
        report.problems.len(),
        if report.problems.len() == 1 { "" } else { "s" }
    );
    Ok(exit::REJECTED)
}

/// `prepare`: the capture bundle (docs/prepare.md).
fn prepare(
    path: &Utf8Path,
    to: Option<&str>,
    name: Option<&str>,
    out: &Utf8Path,
    force: bool,
) -> Result<u8> {
    use crate::prepare::Refused;
    if let Some(n) = name.filter(|n| !crate::prepare::valid_name(n)) {
        eprintln!(
            "error: --name {n:?} is not a file name: use letters, digits, '-', '_' and '.' (at most 100, not starting with '-' or '.')"
        );
        return Ok(exit::USAGE);
    }
    let source = load(path)?;
    let prepared = match crate::prepare::prepare(&source, to, name) {
        Ok(p) => p,
        Err(Refused::Plan(checked, diagnostics)) => {
            eprint!("{}", render_all(&diagnostics, &checked));
            return Ok(exit::REJECTED);
        }
        Err(Refused::Other(why)) => {
            eprintln!("error: {why}");
            return Ok(exit::REJECTED);
        }
    };
    if !prepared.warnings.is_empty() {
        eprint!("{}", render_all(&prepared.warnings, &source));
    }
    crate::interrupt::install();
    let digest = match written(crate::prepare::write(&prepared, out, force), out)? {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let scripts: usize = prepared.plan.steps.iter().map(|s| s.scripts.len()).sum();
    println!(
        "wrote {out}: capture {} of cluster {} ({} scripts), run it BEFORE the upgrade to {}; start with {out}/README.md",
        prepared.name, prepared.plan.cluster, scripts, prepared.plan.from
    );
    println!("bundle digest (sha256 of SHA256SUMS): {digest}");
    Ok(exit::OK)
}

/// `plan --from-facts`: the rollback plan from a capture's facts.
fn plan_from_facts(
    dirs: &[camino::Utf8PathBuf],
    opts: &crate::from_facts::Options<'_>,
    out: Option<&Utf8Path>,
    force: bool,
) -> Result<u8> {
    let text = match crate::from_facts::read(dirs).and_then(|f| crate::from_facts::plan(&f, opts)) {
        Ok(text) => text,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("error: no plan was written");
            return Ok(exit::REJECTED);
        }
    };
    match out {
        None => print(&text),
        Some(path) => {
            if path.exists() && !force {
                eprintln!("error: {path} exists: give --force to replace it");
                return Ok(exit::USAGE);
            }
            std::fs::write(path, &text).with_context(|| format!("cannot write {path}"))?;
            println!("wrote {path}: check it with `rewind check {path}`");
            Ok(exit::OK)
        }
    }
}

/// The outcome of writing a bundle (compile or prepare): what was written,
/// or the exit code of a refusal already reported (an existing folder, a
/// signal); other errors carry the folder they are about.
fn written<T>(result: Result<T, WriteError>, out: &Utf8Path) -> Result<Result<T, u8>> {
    match result {
        Ok(t) => Ok(Ok(t)),
        Err(WriteError::Bundle(e @ (BundleError::Exists(_) | BundleError::NotABundle(..)))) => {
            eprintln!("error: {e}");
            Ok(Err(exit::USAGE))
        }
        Err(WriteError::Bundle(e @ BundleError::Interrupted(sig, _))) => {
            eprintln!("error: {e}");
            Ok(Err(u8::try_from(128 + sig).unwrap_or(exit::IO)))
        }
        Err(e) => Err(anyhow::Error::from(e).context(format!("cannot write the bundle to {out}"))),
    }
}
