//! `signet bench queue|api|deliver|pickup|work`: measure throughput and latency.

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
    /// The task queue across processes, as deployed: `signet serve`,
    /// producers over HTTP, a worker process (over HTTP or on the store).
    Work(commands::bench_work::Args),
    /// The HTTP worker process `bench work` starts (not for direct use).
    #[command(hide = true, name = "work-http-worker")]
    WorkHttpWorker(commands::bench_work::HttpWorkerArgs),
    /// The store worker process `bench work` starts (not for direct use).
    #[command(hide = true, name = "work-store-worker")]
    WorkStoreWorker(commands::bench_work::StoreWorkerArgs),
}

pub(crate) fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Queue(args) => commands::bench_queue::run(args),
        Command::Api(args) => commands::bench_api::run(args),
        Command::Deliver(args) => commands::bench_deliver::run(args),
        Command::Pickup(args) => commands::bench_pickup::run(args),
        Command::PickupWorker(args) => commands::bench_pickup::run_worker(args),
        Command::Work(args) => commands::bench_work::run(args),
        Command::WorkHttpWorker(args) => commands::bench_work::run_http_worker(args),
        Command::WorkStoreWorker(args) => commands::bench_work::run_store_worker(args),
    }
}
