//! `signet verify` (scaffold: being written).

use std::process::ExitCode;

/// Arguments of `signet verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> ExitCode {
    eprintln!("signet verify: not built yet");
    ExitCode::from(2)
}
