//! `signet bench api` (scaffold: the server engineer writes it).

use std::process::ExitCode;

/// Arguments of `signet bench api`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> ExitCode {
    eprintln!("signet bench api: not built yet");
    ExitCode::from(2)
}
