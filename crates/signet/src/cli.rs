//! Command-line parsing and dispatch. Each subcommand lives in `commands/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;

/// Signet: signed jobs and webhooks.
#[derive(Debug, Parser)]
#[command(name = "signet", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API and background services on one store.
    #[command(after_help = commands::serve::variables_help())]
    Serve(commands::serve::Args),
    /// Manage API keys for the HTTP API.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(commands::api_keys::Command),
    /// Generate signing keys and inspect their use.
    #[command(subcommand)]
    Keys(commands::keys::Command),
    /// Sign a body and print the headers to send.
    Sign(commands::sign::Args),
    /// Verify a signed request.
    Verify(commands::verify::Args),
    /// Enqueue a signed task.
    Enqueue(commands::enqueue::Args),
    /// List, show, cancel and retry tasks.
    #[command(subcommand)]
    Tasks(commands::tasks::Command),
    /// List, show, retry and resend the HTTP messages Signet delivers.
    #[command(subcommand)]
    Messages(commands::messages::Command),
    /// Show tasks per queue and state; pause, resume, bind and unbind queues.
    Queues(commands::queues::Args),
    /// Inspect, replay and purge dead letters.
    #[command(subcommand)]
    Dlq(commands::dlq::Command),
    /// Cron schedules that fire tasks or messages.
    #[command(subcommand)]
    Schedules(commands::schedules::Command),
    /// Register, list, change, rotate, delete and re-seal targets.
    #[command(subcommand)]
    Targets(commands::targets::Command),
    /// Run a development receiver that verifies and prints signed requests.
    Receive(commands::receive::Args),
    /// Measure throughput and latency.
    #[command(subcommand)]
    Bench(commands::bench::Command),
    /// Apply the store's schema migrations (idempotent), or show their status.
    Migrate(commands::migrate::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(commands::completions::Args),
}

/// Logs go to stderr (stdout is the commands' output), at `warn` unless
/// `RUST_LOG` says otherwise, coloured only on a terminal and without
/// `NO_COLOR`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let colour = signet_sign::config::log_colour(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    // A second initialisation (impossible here) would only be ignored.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}

pub(crate) fn main() -> ExitCode {
    // The matches say where each flag came from (the command line, the
    // environment or a default), which the values alone do not.
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    crate::api::note_given(&matches);
    let cli =
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_logging();
    crate::env_vars::warn_unknown();
    match cli.command {
        Command::Serve(args) => commands::serve::run(args),
        Command::ApiKeys(cmd) => commands::api_keys::run(cmd),
        Command::Keys(cmd) => commands::keys::run(cmd),
        Command::Sign(args) => commands::sign::run(args),
        Command::Verify(args) => commands::verify::run(args),
        Command::Enqueue(args) => commands::enqueue::run(args),
        Command::Tasks(cmd) => commands::tasks::run(cmd),
        Command::Messages(cmd) => commands::messages::run(cmd),
        Command::Queues(args) => commands::queues::run(args),
        Command::Dlq(cmd) => commands::dlq::run(cmd),
        Command::Schedules(cmd) => commands::schedules::run(cmd),
        Command::Targets(cmd) => commands::targets::run(cmd),
        Command::Receive(args) => commands::receive::run(args),
        Command::Bench(cmd) => commands::bench::run(cmd),
        Command::Migrate(args) => commands::migrate::run(args),
        Command::Completions(args) => commands::completions::run(args),
    }
}
