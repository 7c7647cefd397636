//! `signet queues` (scaffold: being written).

use std::process::ExitCode;

/// Arguments of `signet queues`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> ExitCode {
    eprintln!("signet queues: not built yet");
    ExitCode::from(2)
}
