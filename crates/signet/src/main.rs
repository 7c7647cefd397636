//! The `signet` binary: signed jobs and webhooks. See `cli.rs` for the commands.

mod cli;
mod commands;
mod output;
mod store_url;
mod task_view;
mod timearg;

fn main() -> std::process::ExitCode {
    cli::main()
}
