//! `signet enqueue` (scaffold: being written).

use std::process::ExitCode;

/// Arguments of `signet enqueue`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> ExitCode {
    eprintln!("signet enqueue: not built yet");
    ExitCode::from(2)
}
