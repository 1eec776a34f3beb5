//! The command line (clap derive): `check`, `compile`, `explain`, `verify`
//! for the operator; `diff`, `audit`, `schema`, `init`, `completions` and
//! `man` for the people who review and audit bundles.

use camino::Utf8PathBuf;
use clap::builder::PossibleValue;
use clap::{Parser, Subcommand, ValueEnum};

use crate::choice::DatastoreKind;

/// Compile an RKE2 (or Rancher-on-RKE1) rollback plan into per-host shell scripts.
#[derive(Debug, Parser)]
#[command(
    name = "rewind",
    version,
    about,
    long_about = None,
    after_long_help = "Exit codes: 0 ok (warnings allowed; diff: the procedures are equal), \
        1 the plan is rejected, the bundle is damaged, or diff/audit found a difference, \
        2 usage error, 3 I/O or internal error."
)]
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
    /// Show how the procedure changes between two plans or two bundles.
    ///
    /// Each side is a plan (a TOML file, compiled in memory) or a bundle
    /// folder. Prints the changed steps (added, removed, moved, hosts,
    /// parallel and destructive flags), then the script diffs. Exits 0 when
    /// the procedures are equal, 1 when they differ.
    Diff {
        /// The old plan or bundle.
        old: Utf8PathBuf,
        /// The new plan or bundle.
        new: Utf8PathBuf,
        /// Output format; markdown is meant for a pull-request comment.
        #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
        format: DiffFormat,
    },
    /// Recompile every plan of a folder and compare it with its golden bundle.
    ///
    /// PLANS_DIR/NAME.toml is compiled and compared with GOLDEN_DIR/NAME/
    /// byte for byte (only the rewind version recorded in plan.json may
    /// differ). On drift, prints the differences and the command that
    /// refreshes the golden bundle, and exits 1.
    Audit {
        /// The folder of plans (`*.toml`).
        plans_dir: Utf8PathBuf,
        /// The folder of golden bundles, one per plan.
        golden_dir: Utf8PathBuf,
    },
    /// Print the JSON Schema of the plan format.
    Schema,
    /// Print a commented starting plan.
    ///
    /// Replace every value marked `<FILL: ...>`; the plan then passes
    /// `rewind check`. With `--from-nodes` or `--from-rke` the nodes, roles,
    /// versions and what else the cluster already says are imported, and
    /// `<FILL: ...>` is left only where it cannot tell (the snapshot, the
    /// target version, the token file). Notes about the import go to stderr;
    /// an input that cannot be imported exits 1 and prints no plan.
    Init {
        /// The cluster's datastore [default: etcd; with --from-nodes, what the
        /// nodes' arguments show].
        #[arg(long, value_enum)]
        datastore: Option<InitDatastore>,
        /// The nodes have no Internet access: install from copied artifacts.
        #[arg(long)]
        airgap: bool,
        /// A K3s cluster (`distribution = "k3s"`); its datastore defaults
        /// to SQLite, K3s's default for a single server.
        #[arg(long, conflicts_with_all = ["from_nodes", "from_rke"])]
        k3s: bool,
        /// Import an RKE2 or K3s cluster from `kubectl get nodes -o json`
        /// saved in NODES.json (`-` reads standard input).
        #[arg(long, value_name = "NODES.json", conflicts_with = "from_rke")]
        from_nodes: Option<Utf8PathBuf>,
        /// Import Rancher on RKE1 from the RKE cluster file (e.g.
        /// rancher-cluster.yml) that `rke up` was run with.
        #[arg(
            long,
            value_name = "CLUSTER.yml",
            conflicts_with_all = ["datastore", "airgap"]
        )]
        from_rke: Option<Utf8PathBuf>,
    },
    /// Write the capture bundle to run BEFORE an upgrade.
    ///
    /// PLAN is the rollback plan of the upgrade about to happen
    /// (`current-version`: the version it goes to; `target-version`: the
    /// one the nodes run now); its `[snapshot]` and `[token]` may be absent.
    /// The bundle takes the backup, saves the server token beside it, and
    /// writes a facts file on every host, from which `rewind plan
    /// --from-facts` writes the rollback plan (docs/prepare.md).
    Prepare {
        /// The plan (TOML).
        plan: Utf8PathBuf,
        /// The version the nodes run now; wins over `target-version`.
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// The capture's name (snapshot name) [default:
        /// pre-upgrade-<cluster>-<first 8 of the plan's sha256>].
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// The bundle folder to create.
        #[arg(long, value_name = "DIR")]
        out: Utf8PathBuf,
        /// Replace DIR if it already holds a rewind bundle.
        #[arg(long)]
        force: bool,
    },
    /// Write a rollback plan from the facts files of a capture.
    ///
    /// Reads every `*.json` of each DIR (or each file given) written by a
    /// capture bundle of `rewind prepare`, checks that they are of one
    /// cluster and one capture and that no host is missing, and prints the
    /// plan (or writes it to FILE) with a comment on every value saying
    /// where it came from.
    Plan {
        /// Folders of facts files (or facts files).
        #[arg(long = "from-facts", value_name = "DIR", required = true, num_args = 1..)]
        from_facts: Vec<Utf8PathBuf>,
        /// The version to roll back to [default: the version the nodes ran
        /// when the capture was taken].
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// The version the nodes run after the upgrade [default: the
        /// prepare plan's current-version].
        #[arg(long, value_name = "VERSION")]
        current: Option<String>,
        /// Write the plan to FILE (refused if it exists, unless --force).
        #[arg(long, value_name = "FILE")]
        out: Option<Utf8PathBuf>,
        /// Replace FILE.
        #[arg(long, requires = "out")]
        force: bool,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of rewind or of one subcommand.
    ///
    /// `rewind man > rewind.1`, `rewind man diff > rewind-diff.1`.
    Man {
        /// A subcommand (check, compile, diff, …); without it, the main page.
        #[arg(value_name = "SUBCOMMAND")]
        command: Option<String>,
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
    /// A Markdown table and diagram.
    Markdown,
    /// The `plan.json` document.
    Json,
    /// A Mermaid flowchart: hosts side by side, destructive steps marked.
    Mermaid,
}

/// `diff --format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DiffFormat {
    /// Plain text and unified diffs.
    Text,
    /// Markdown for a pull-request comment.
    Markdown,
}

/// `init --datastore`: the plan's `datastore.kind`, by the same words.
pub type InitDatastore = DatastoreKind;

impl ValueEnum for DatastoreKind {
    fn value_variants<'a>() -> &'a [Self] {
        Self::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            Self::Etcd => "Embedded etcd",
            Self::Sqlite => "SQLite (a single server)",
            Self::Postgres => "External PostgreSQL",
            Self::Mysql => "External MySQL or MariaDB",
        };
        Some(PossibleValue::new(self.as_str()).help(help))
    }
}
