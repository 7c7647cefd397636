//! The `signet` binary: signed jobs and webhooks. See `cli.rs` for the commands.

mod cli;
mod commands;

fn main() -> std::process::ExitCode {
    cli::main()
}
