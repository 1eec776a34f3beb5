//! The command line (clap derive): `check`, `compile`, `explain`, `verify`.

use camino::Utf8PathBuf;
use clap::{Parser, Subcommand, ValueEnum};

/// Compile an RKE2 (or Rancher-on-RKE1) rollback plan into per-host shell scripts.
#[derive(Debug, Parser)]
#[command(name = "rewind", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a plan and print its diagnostics.
    Check {
        /// The plan (TOML).
        plan: Utf8PathBuf,
        /// Target version; wins over `target-version` in the plan.
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
        format: CheckFormat,
    },
    /// Validate a plan, then write its bundle.
    Compile {
        /// The plan (TOML).
        plan: Utf8PathBuf,
        /// Target version; wins over `target-version` in the plan.
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// The bundle folder to create.
        #[arg(long, value_name = "DIR")]
        out: Utf8PathBuf,
        /// Replace DIR if it already holds a rewind bundle.
        #[arg(long)]
        force: bool,
    },
    /// Print the ordered steps without writing anything.
    Explain {
        /// The plan (TOML).
        plan: Utf8PathBuf,
        /// Target version; wins over `target-version` in the plan.
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExplainFormat::Text)]
        format: ExplainFormat,
    },
    /// Check a bundle against its SHA256SUMS and plan.json.
    Verify {
        /// The bundle folder.
        dir: Utf8PathBuf,
    },
}

/// `check --format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CheckFormat {
    /// Compiler-style diagnostics.
    Text,
    /// One JSON document.
    Json,
}

/// `explain --format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExplainFormat {
    /// Plain text.
    Text,
    /// A Markdown table.
    Markdown,
    /// The `plan.json` document.
    Json,
}
