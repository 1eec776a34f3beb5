//! The `rewind` binary: parse the command line, run, exit with its code.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // Output piped into `head` ends quietly, as with any Unix tool, instead
    // of a panic on the next print.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread
    // starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = rewind::cli::Cli::parse();
    rewind::app::run(&cli)
}
