//! Integration tests of `signet-server`: every route through
//! `app(state).oneshot(request)` over a temp-file SQLite store, and the
//! trusted-proxy table from the conformance vectors.

mod batch;
mod client_ip;
mod delivery;
mod history;
mod metrics;
mod noops;
mod openapi;
mod payloads;
mod push;
mod read_only;
mod refuse_early;
mod routes;
mod schedules;
mod secrets;
mod serve;
mod steer;
mod support;
mod ui;
mod work;
