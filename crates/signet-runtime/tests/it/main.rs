//! Integration tests of `signet-runtime` over the real SQLite store.

mod callbacks;
mod dispatcher;
mod flaky;
mod flow;
mod leader;
mod limits;
mod metrics;
mod node;
mod producer;
mod push;
mod queues;
mod scheduler;
mod services;
mod shutdown;
mod ssrf;
mod support;
mod tampering;
mod targets;
mod tls;
mod verify_only;
