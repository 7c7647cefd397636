//! `signet-example-worker`: a Signet worker with two real handlers.
//! See `README.md` beside this crate.

// The doc comments of `args.rs` are clap's help text (`node-<pid>-<random>`
// is what the user should see), not rustdoc: its markup lints do not apply.
#![allow(rustdoc::invalid_html_tags)]

mod args;
mod handlers;
mod run;

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    run::run(args::Args::parse()).await
}
