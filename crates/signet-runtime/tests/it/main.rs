//! Integration tests of `signet-runtime` over the real SQLite store.

mod flaky;
mod flow;
mod leader;
mod metrics;
mod producer;
mod services;
mod shutdown;
mod support;
mod tampering;
mod verify_only;
