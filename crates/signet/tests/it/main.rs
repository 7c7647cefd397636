//! Integration tests of the `signet` binary: each module runs the built
//! binary as a user would.

mod cli_keys;
mod cli_queue;
mod serve;
