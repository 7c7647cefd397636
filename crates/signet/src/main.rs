//! The `signet` binary: signed jobs and webhooks. See `cli.rs` for the commands.

mod cli;
mod commands;
mod output;
mod store_url;
mod task_view;
mod timearg;

/// mimalloc: many small allocations from many threads (HTTP, JSON, the
/// store) cost less than with the system allocator; see docs/benchmarks.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
