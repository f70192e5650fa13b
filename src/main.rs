//! Entry point of the `qip-pool` binary: parses the command line and runs it.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    qip_pool::cli::run(qip_pool::cli::Cli::parse())
}
