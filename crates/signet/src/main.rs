//! The `signet` binary: signed jobs and webhooks. See `cli.rs` for the commands.

// The doc comments of this crate are clap's help text, read in a terminal
// (`signet dlq replay --help`), not rustdoc: `<date>`, `[ids]` and bare URLs
// there are what the user should see, so rustdoc's markup lints do not apply.
#![allow(
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls
)]

mod api;
mod cli;
mod commands;
mod env_vars;
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
