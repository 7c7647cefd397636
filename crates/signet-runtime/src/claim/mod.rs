//! The claim loop shared by the worker and the dispatcher: how a row is
//! claimed, leased, heartbeated and given back.
//!
//! ```text
//!        ┌──────────── free capacity (one permit per row in flight) ◄─────────────┐
//!        ▼                                                                         │
//! claim(up to free, ≤ batch) ─► rows ─► Consumer::start(rows + permits) ─► outcome written
//!   │ short: Store::wait_for_work(queues, mark before the claim, poll interval)   (or queued to be), permit dropped
//!   │ store error: back off 10 ms → 1 s (closed store: stop with an error)
//!   └ shutdown: stop claiming, let runs finish within the grace period,
//!               then hard stop (runs release their rows) and wait for every outcome
//! ```
//!
//! - [`ClaimLoop`] ([`claimer`]) is the loop, with up to three claims at
//!   once (each for the slots free when it starts); a [`Consumer`] (the worker's
//!   verify → run → ack, the dispatcher's verify → prepare → send → record)
//!   plugs in and drops each row's permit once its outcome is written (the
//!   dispatcher: once it is queued for its settler, which it waits for
//!   before it stops).
//! - [`Leases`] ([`lease`]) runs one row's work while heartbeating its lease
//!   and watching for the hard stop.
//! - [`retry_store`] ([`store_retry`]) retries transient store errors of
//!   outcome writes.

mod claimer;
mod lease;
mod store_retry;

pub(crate) use claimer::{ClaimLoop, ClaimSettings, Claimed, Consumer};
pub(crate) use lease::{Held, Leases};
pub(crate) use store_retry::{retry_store, store_backoff};

use std::time::Duration;

use crate::error::RuntimeError;

/// A lease owner name unique to this process: `<prefix>-<pid>-<random>`.
pub(crate) fn default_owner(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// The heartbeat must be above zero and shorter than the lease.
pub(crate) fn check_lease(lease: Duration, heartbeat: Duration) -> Result<(), RuntimeError> {
    if heartbeat.is_zero() || heartbeat >= lease {
        return Err(RuntimeError::Config(format!(
            "heartbeat interval ({heartbeat:?}) must be above zero and shorter than the lease ({lease:?})"
        )));
    }
    Ok(())
}
