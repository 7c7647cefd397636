//! The dispatcher: delivers messages over HTTP, signed, with retries.
//!
//! ```text
//! claim (batch) ─► verify at-rest signature ─► refuse (dead) ──────────────┐
//!                         └─► per message: target rules, SSRF literal check │
//!                              ─► target concurrency + rate limit (waiting) │
//!                              ─► sign afresh ─► send ─► judge ─────────────┤
//!                                  (the lease is heartbeated throughout)    ▼
//!          settler: settle_deliveries (outcome + attempt of every delivery
//!          that ended meanwhile: one round trip, one commit) / release
//! ```
//!
//! Messages are tasks on [`MESSAGE_QUEUE`](signet_store::MESSAGE_QUEUE): the dispatcher claims them like a
//! worker, verifies the envelope signature first (a message changed at rest
//! is dead-lettered `signature-invalid`), and writes every attempt's outcome
//! with its history event (status, latency, the first 4 KiB of the
//! response) through one settler task, which group-commits the outcomes
//! that end while its writes are in flight in one
//! [`Store::settle_deliveries`](signet_store::Store::settle_deliveries).
//!
//! Each attempt is signed afresh: `webhook-id` is the message id on every
//! attempt, `webhook-timestamp` is this attempt's time, so a retry hours
//! later still passes a receiver's freshness window. With a target, every
//! secret of the target that has not expired signs (during a rotation
//! overlap the request carries one signature per secret); without one, the
//! server's key ring signs (Standard Webhooks `v1`/`v1a`).
//!
//! How an attempt is judged:
//!
//! | answer | outcome |
//! |---|---|
//! | `2xx` | delivered (`succeeded`, result `{"status": …}`) |
//! | `410 Gone` | dead, `target-refused`: the receiver said it wants no more deliveries, so retrying cannot help |
//! | refused by the SSRF guard, `https_only` or `url_prefix`, target deleted | dead, `target-refused`, the detail names the rule |
//! | `429`, `503` with `Retry-After` | retry after the time asked for (capped) |
//! | anything else (other status, `3xx` — never followed — timeout, connect error) | retry on the schedule, or dead `max-attempts` with the last status once out of attempts |
//!
//! The schedule is 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h with ±20 %
//! jitter by default ([`RetrySchedule`](crate::RetrySchedule)), per message overridable.

//!
//! Files: `builder` (configuration), `run` (the dispatcher on the shared
//! claim loop), `deliver` (checks, target, sign, send), `judge` (an
//! attempt's outcome → what to write), `settle` (the settler and its
//! batched writes), `limits`
//! (per-target concurrency and rate), `events`, `shared`. Targets and their
//! opened secrets come from the targets' one cache, by id.

mod builder;
mod deliver;
mod events;
mod judge;
mod limits;
mod run;
mod settle;
mod shared;

pub use builder::{
    DispatcherBuilder, DEFAULT_DELIVERY_CONCURRENCY, DEFAULT_HEARTBEAT, DEFAULT_LEASE,
    DEFAULT_POLL_INTERVAL, DEFAULT_SHUTDOWN_GRACE, DEFAULT_TARGET_CACHE_TTL, MAX_CLAIM_BATCH,
};
pub use events::{DeliveryEvent, DeliveryEventKind};
pub use run::Dispatcher;
