//! `signet bench queue|api|deliver`: measure throughput and latency.

use std::process::ExitCode;

use crate::commands;

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// The task queue end to end: signed enqueue → claim → verify → run → ack.
    Queue(commands::bench_queue::Args),
    /// The HTTP API.
    Api(commands::bench_api::Args),
    /// Signed HTTP delivery: publish → dispatch → a verifying receiver.
    Deliver(commands::bench_deliver::Args),
}

pub(crate) fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Queue(args) => commands::bench_queue::run(args),
        Command::Api(args) => commands::bench_api::run(args),
        Command::Deliver(args) => commands::bench_deliver::run(args),
    }
}
