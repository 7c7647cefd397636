//! `signet bench queue|api|deliver|pickup`: measure throughput and latency.

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
    /// Idle pickup latency: enqueue → handler start, one task at a time,
    /// with the worker in another process.
    Pickup(commands::bench_pickup::Args),
    /// The worker process `bench pickup` starts (not for direct use).
    #[command(hide = true, name = "pickup-worker")]
    PickupWorker(commands::bench_pickup::WorkerArgs),
}

pub(crate) fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Queue(args) => commands::bench_queue::run(args),
        Command::Api(args) => commands::bench_api::run(args),
        Command::Deliver(args) => commands::bench_deliver::run(args),
        Command::Pickup(args) => commands::bench_pickup::run(args),
        Command::PickupWorker(args) => commands::bench_pickup::run_worker(args),
    }
}
