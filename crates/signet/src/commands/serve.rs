//! `signet serve` (scaffold: being written).

use std::process::ExitCode;

/// Arguments of `signet serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> ExitCode {
    eprintln!("signet serve: not built yet");
    ExitCode::from(2)
}
