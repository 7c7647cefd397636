//! `signet sign` (scaffold: being written).

use std::process::ExitCode;

/// Arguments of `signet sign`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> ExitCode {
    eprintln!("signet sign: not built yet");
    ExitCode::from(2)
}
