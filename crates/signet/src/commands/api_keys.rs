//! `signet api_keys` (scaffold: being written).

use std::process::ExitCode;

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Scaffold.
    Todo,
}

pub(crate) fn run(_cmd: Command) -> ExitCode {
    eprintln!("signet api_keys: not built yet");
    ExitCode::from(2)
}
