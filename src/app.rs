//! Runs a parsed command: wires reader → validate → plan → render → writer,
//! prints results, and maps outcomes to exit codes (0 ok, 1 plan rejected or
//! bundle damaged, 2 usage, 3 I/O or internal error).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use camino::Utf8Path;

use crate::bundle::{self, Bundle};
use crate::cli::{CheckFormat, Cli, Command, ExplainFormat};
use crate::diagnostic::{Diagnostic, render_all};
use crate::model::Model;
use crate::source::SourceFile;
use crate::{plan, render, spec, templates, validate, verify};

/// Exit codes of PRODUCT.md §2.
pub mod exit {
    /// Success (warnings allowed).
    pub const OK: u8 = 0;
    /// The plan is rejected (nothing written), or a bundle is damaged.
    pub const REJECTED: u8 = 1;
    /// Usage error (clap uses 2 too).
    pub const USAGE: u8 = 2;
    /// I/O or internal error.
    pub const IO: u8 = 3;
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
    }
}

fn load(path: &Utf8Path) -> Result<SourceFile> {
    spec::load(path).with_context(|| format!("cannot read plan {path}"))
}

/// Validates; prints diagnostics to stderr; returns the model if accepted.
fn accepted(source: &SourceFile, to: Option<&str>) -> Option<Model> {
    let checked = validate::check(source, to);
    if !checked.diagnostics.is_empty() {
        eprint!("{}", render_all(&checked.diagnostics, source));
    }
    checked.model
}

fn check(path: &Utf8Path, to: Option<&str>, format: CheckFormat) -> Result<u8> {
    let source = load(path)?;
    let checked = validate::check(&source, to);
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

/// Compiles plan text into a bundle in memory (pure; used by tests too).
pub fn build(
    source: &SourceFile,
    to: Option<&str>,
) -> std::result::Result<Bundle, Vec<Diagnostic>> {
    let checked = validate::check(source, to);
    let Some(model) = checked.model else {
        return Err(checked.diagnostics);
    };
    let plan = plan::plan(&model);
    Ok(render::bundle(&plan).unwrap_or_else(|e| panic!("bug in rewind: rendering failed: {e:#}")))
}

fn compile(path: &Utf8Path, to: Option<&str>, out: &Utf8Path, force: bool) -> Result<u8> {
    let source = load(path)?;
    let Some(model) = accepted(&source, to) else {
        return Ok(exit::REJECTED);
    };
    let plan = plan::plan(&model);
    let bundle = render::bundle(&plan)
        .map_err(|e| anyhow::anyhow!("bug in rewind: rendering failed: {e:#}"))?;
    match bundle::write(&bundle, out, force) {
        Ok(()) => {}
        Err(e @ (bundle::BundleError::Exists(_) | bundle::BundleError::NotABundle(_))) => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
        Err(e) => return Err(e.into()),
    }
    let scripts: usize = plan.steps.iter().map(|s| s.scripts.len()).sum();
    println!(
        "wrote {out}: {} steps, {scripts} scripts for cluster {} ({} → {}); start with {out}/README.md",
        plan.steps.len(),
        plan.cluster,
        plan.from,
        plan.to
    );
    Ok(exit::OK)
}

fn explain(path: &Utf8Path, to: Option<&str>, format: ExplainFormat) -> Result<u8> {
    let source = load(path)?;
    let Some(model) = accepted(&source, to) else {
        return Ok(exit::REJECTED);
    };
    let plan = plan::plan(&model);
    let text = match format {
        ExplainFormat::Json => render::plan_json(&plan),
        ExplainFormat::Text | ExplainFormat::Markdown => {
            let name = if matches!(format, ExplainFormat::Text) {
                "explain.txt"
            } else {
                "explain.md"
            };
            templates::environment()
                .get_template(name)?
                .render(minijinja::context! { plan => minijinja::value::Value::from(minijinja::value::Serde(&plan)), steps => minijinja::value::Value::from(minijinja::value::Serde(render::steps_view(&plan))) })?
        }
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(exit::OK)
}

fn verify_dir(dir: &Utf8Path) -> Result<u8> {
    let bundle = bundle::read(dir)?;
    let problems = verify::problems(&bundle);
    if problems.is_empty() {
        println!(
            "ok: {dir}: {} files match SHA256SUMS and plan.json",
            bundle.files.len() - 1
        );
        return Ok(exit::OK);
    }
    for p in &problems {
        eprintln!("error: {dir}/{p}");
    }
    eprintln!(
        "error: {dir} is not the bundle rewind wrote ({} problem{})",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    Ok(exit::REJECTED)
}
