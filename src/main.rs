//! The `rewind` binary: parse the command line, run, exit with its code.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = rewind::cli::Cli::parse();
    rewind::app::run(&cli)
}
