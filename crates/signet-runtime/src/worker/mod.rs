//! The worker: claims tasks in batches, verifies them before running,
//! runs handlers with a timeout and heartbeats, and acknowledges in batches.
//!
//! ```text
//! claim loop ──claim(up to free capacity)──► verify batch ──► refuse (dead) ─┐
//!  (crate::claim)                                 └──► spawn handler ───────┤
//!                                                       (timeout, panic,    │
//!                                                        heartbeats)        ▼
//!                                   acker ◄── outcomes ── complete_batch / fail / release
//! ```
//!
//! One task per claimed row runs on the tokio runtime (so handlers use every
//! core); one acker task turns finished runs into store writes, batching
//! successes into one `complete_batch` call. Capacity is returned to the
//! claim loop only once the outcome is written, so at most `concurrency`
//! tasks are leased by this worker at any time. Idle, the claim loop waits
//! on [`Store::wait_for_work`](signet_store::Store::wait_for_work).
//!
//! Files: `builder` (configuration), `run` (the worker and its claim
//! loop), `start` (verify a batch, run handlers), `ack` (write outcomes),
//! `events` (what subscribers see), `shared` (the state of one worker),
//! `remote` (the service behind the HTTP pull protocol, for workers in
//! other processes and languages, writing outcomes through `ack`), `claimed`
//! (a claimed task as the pull and push protocols hand it out).

mod ack;
mod builder;
mod claimed;
mod events;
mod remote;
mod run;
mod shared;
mod start;

pub use builder::{
    WorkerBuilder, DEFAULT_CONCURRENCY, DEFAULT_HANDLER_TIMEOUT, DEFAULT_HEARTBEAT, DEFAULT_LEASE,
    DEFAULT_POLL_INTERVAL, DEFAULT_SHUTDOWN_GRACE, MAX_CLAIM_BATCH,
};
pub use claimed::{WorkEnvelope, WorkItem, WorkSignature};
pub use events::{WorkerEvent, WorkerEventKind};
pub use remote::{
    remote_lease, retry_after, RemoteClaim, RemoteFailure, RemoteTask, RemoteWorker,
    DEFAULT_REMOTE_LEASE, MAX_CLAIM, MAX_CLAIM_WAIT, MAX_REMOTE_LEASE, MAX_REPORT_BATCH,
    MAX_RETRY_AFTER, MIN_REMOTE_LEASE, REMOTE_POLL_INTERVAL, SIGNATURE_INVALID_DETAILS,
};
pub use run::Worker;

// The push loop (`crate::push`) records outcomes as workers do.
pub(crate) use ack::{record, Outcome};
pub(crate) use remote::record_failure;
