//! Metric names and recording, with the `metrics` crate.
//!
//! Install any `metrics` recorder (the server installs a Prometheus one) and
//! these appear:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `signet_tasks_enqueued_total` | counter | `queue`, `task` |
//! | `signet_tasks_succeeded_total` | counter | `queue`, `task` |
//! | `signet_tasks_failed_total` | counter (every failed attempt) | `queue`, `task` |
//! | `signet_tasks_retried_total` | counter (failed attempts scheduled again) | `queue`, `task` |
//! | `signet_tasks_dead_total` | counter | `queue`, `task`, `reason` |
//! | `signet_signature_invalid_total` | counter | `reason` |
//! | `signet_task_run_duration_seconds` | histogram | `queue`, `task` |
//! | `signet_queue_depth` | gauge | `queue`, `state` |
//! | `signet_messages_delivered_total` | counter | `target` |
//! | `signet_message_attempts_failed_total` | counter (every failed delivery attempt) | `target` |
//! | `signet_messages_dead_total` | counter | `target`, `reason` |
//! | `signet_delivery_duration_seconds` | histogram (request to end of response) | `target` |
//!
//! The `target` label is the target's name, or `none` for messages signed
//! with the server's key ring.

use std::sync::Arc;
use std::time::Duration;

use signet_store::{DeadReason, Store, TaskState};

use crate::periodic::run_every;
use crate::shutdown::ShutdownSignal;

/// Tasks enqueued (new tasks only; idempotent repeats are not counted).
pub const TASKS_ENQUEUED: &str = "signet_tasks_enqueued_total";
/// Tasks whose handler succeeded.
pub const TASKS_SUCCEEDED: &str = "signet_tasks_succeeded_total";
/// Failed attempts (handler error, timeout or panic).
pub const TASKS_FAILED: &str = "signet_tasks_failed_total";
/// Failed attempts that were scheduled to run again.
pub const TASKS_RETRIED: &str = "signet_tasks_retried_total";
/// Tasks dead-lettered, by reason.
pub const TASKS_DEAD: &str = "signet_tasks_dead_total";
/// Deliveries refused because the signature did not verify, by reason.
pub const SIGNATURE_INVALID: &str = "signet_signature_invalid_total";
/// How long handlers ran.
pub const TASK_RUN_DURATION: &str = "signet_task_run_duration_seconds";
/// Tasks per queue and state, sampled periodically.
pub const QUEUE_DEPTH: &str = "signet_queue_depth";

/// Messages delivered (a 2xx answer).
pub const MESSAGES_DELIVERED: &str = "signet_messages_delivered_total";
/// Delivery attempts that failed (no answer, or not 2xx).
pub const MESSAGE_ATTEMPTS_FAILED: &str = "signet_message_attempts_failed_total";
/// Messages dead-lettered, by reason.
pub const MESSAGES_DEAD: &str = "signet_messages_dead_total";
/// How long delivery requests took.
pub const DELIVERY_DURATION: &str = "signet_delivery_duration_seconds";

/// Default time between two queue-depth samples.
pub const DEFAULT_DEPTH_INTERVAL: Duration = Duration::from_secs(15);

pub(crate) fn enqueued(queue: &str, task: &str, n: u64) {
    metrics::counter!(TASKS_ENQUEUED, "queue" => queue.to_owned(), "task" => task.to_owned())
        .increment(n);
}

pub(crate) fn succeeded(queue: &str, task: &str, n: u64) {
    metrics::counter!(TASKS_SUCCEEDED, "queue" => queue.to_owned(), "task" => task.to_owned())
        .increment(n);
}

pub(crate) fn failed(queue: &str, task: &str) {
    metrics::counter!(TASKS_FAILED, "queue" => queue.to_owned(), "task" => task.to_owned())
        .increment(1);
}

pub(crate) fn retried(queue: &str, task: &str) {
    metrics::counter!(TASKS_RETRIED, "queue" => queue.to_owned(), "task" => task.to_owned())
        .increment(1);
}

pub(crate) fn dead(queue: &str, task: &str, reason: DeadReason) {
    metrics::counter!(
        TASKS_DEAD,
        "queue" => queue.to_owned(),
        "task" => task.to_owned(),
        "reason" => reason.as_str()
    )
    .increment(1);
}

pub(crate) fn signature_invalid(reason: &'static str) {
    metrics::counter!(SIGNATURE_INVALID, "reason" => reason).increment(1);
}

pub(crate) fn run_duration(queue: &str, task: &str, d: Duration) {
    metrics::histogram!(TASK_RUN_DURATION, "queue" => queue.to_owned(), "task" => task.to_owned())
        .record(d.as_secs_f64());
}

pub(crate) fn delivered(target: &str) {
    metrics::counter!(MESSAGES_DELIVERED, "target" => target.to_owned()).increment(1);
}

pub(crate) fn delivery_failed(target: &str) {
    metrics::counter!(MESSAGE_ATTEMPTS_FAILED, "target" => target.to_owned()).increment(1);
}

pub(crate) fn message_dead(target: &str, reason: DeadReason) {
    metrics::counter!(MESSAGES_DEAD, "target" => target.to_owned(), "reason" => reason.as_str())
        .increment(1);
}

pub(crate) fn delivery_duration(target: &str, d: Duration) {
    metrics::histogram!(DELIVERY_DURATION, "target" => target.to_owned()).record(d.as_secs_f64());
}

/// Samples [`Store::counts`] into the `signet_queue_depth{queue,state}` gauge
/// every interval until shut down.
pub struct QueueDepthReporter {
    store: Arc<dyn Store>,
    interval: Duration,
}

impl QueueDepthReporter {
    /// A reporter sampling every [`DEFAULT_DEPTH_INTERVAL`].
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            interval: DEFAULT_DEPTH_INTERVAL,
        }
    }

    /// Changes the sampling interval.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Samples once: sets the gauge for every queue and every state (0 for
    /// states with no tasks, so drained queues read 0 rather than stale).
    pub async fn sample(&self) -> Result<(), signet_store::StoreError> {
        for q in self.store.counts().await? {
            for state in TaskState::ALL {
                #[allow(clippy::cast_precision_loss)] // counts far below 2^52
                let n = q.count(state) as f64;
                metrics::gauge!(QUEUE_DEPTH, "queue" => q.queue.clone(), "state" => state.as_str())
                    .set(n);
            }
        }
        Ok(())
    }

    /// Samples every interval until `shutdown` fires. Store errors are logged
    /// and the next sample is tried on time.
    pub async fn run(self, shutdown: ShutdownSignal) {
        run_every("queue-depth", self.interval, shutdown, || self.sample()).await;
    }
}
