//! Push queues (DESIGN §11.2, docs/push-queues.md): a queue bound to an
//! HTTP endpoint is drained by the dispatcher itself. Each task is POSTed
//! as a Standard Webhooks request signed with the binding's target secret,
//! whose body is the claimed-task object of the pull protocol
//! ([`WorkItem`](crate::worker::WorkItem)), so the endpoint verifies the
//! hop and the producer's envelope signature. The answer is judged like a
//! worker's report and written through the worker's own path: a `2xx` body
//! is the result, a dead answer dead-letters with the endpoint's reason,
//! anything else is a failed attempt with the usual backoff.
//!
//! Files: `binding` (binding a queue: the checks, [`PushService`]),
//! `drain` (a claim loop per binding on every dispatcher node), `attempt`
//! (one push), `answer` (what an answer means, signed answers).
//!
//! A bound queue can still be claimed by pull workers: each task is leased
//! to one claimer at a time, so it is pushed or pulled, never both at
//! once. Unbinding leaves the tasks queued for them.

mod answer;
mod attempt;
mod binding;
mod drain;

pub use answer::MAX_PUSH_RESULT_BYTES;
pub use binding::{NewBinding, PushService, DEFAULT_PUSH_CONCURRENCY, DEFAULT_PUSH_TIMEOUT};
pub(crate) use drain::{PushDrain, PushShared};
pub use drain::{BINDINGS_REFRESH, PUSH_HEARTBEAT, PUSH_LEASE};
