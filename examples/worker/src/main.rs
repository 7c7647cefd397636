//! `signet-example-worker`: a Signet worker with two real handlers.
//! See `README.md` beside this crate.

// The doc comments of `args.rs` are clap's help text (`node-<pid>-<random>`
// is what the user should see), not rustdoc: its markup lints do not apply.
#![allow(rustdoc::invalid_html_tags)]

mod args;
mod handlers;
mod run;

use clap::{CommandFactory as _, Parser as _};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args::Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(signet_sign::config::log_colour(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .init();
    warn_unknown_variables();
    run::run(args).await
}

/// One WARN line per `SIGNET_…` variable this worker does not read: its
/// flags' variables, the key file's and the ones every Signet program reads
/// are known.
fn warn_unknown_variables() {
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .collect();
    let command = args::Args::command();
    let known = command
        .get_arguments()
        .filter_map(|a| a.get_env().and_then(|n| n.to_str()))
        .chain([signet_runtime::KEYS_FILE_VAR]);
    for warning in signet_sign::config::unknown_variables(names.iter().map(String::as_str), known) {
        tracing::warn!("{warning}");
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;
    use signet_sign::config::PROGRAM_VARIABLES;

    /// The shared list of Signet variables holds exactly this worker's
    /// `SIGNET_WORKER_…` flags, and every other variable it reads, so
    /// `signet` run beside it does not call them unknown (and the reverse).
    #[test]
    fn the_shared_list_names_the_workers_variables() {
        let command = crate::args::Args::command();
        let own: Vec<&str> = command
            .get_arguments()
            .filter_map(|a| a.get_env().and_then(|n| n.to_str()))
            .collect();
        let shared: Vec<&str> = signet_sign::config::shared_variables().collect();
        for name in &own {
            assert!(
                shared.contains(name),
                "{name} is read by a worker flag but missing from PROGRAM_VARIABLES in signet-sign"
            );
        }
        for name in PROGRAM_VARIABLES {
            if name.starts_with("SIGNET_WORKER_") {
                assert!(
                    own.contains(&name),
                    "{name} is in PROGRAM_VARIABLES but no worker flag reads it"
                );
            }
        }
    }
}
