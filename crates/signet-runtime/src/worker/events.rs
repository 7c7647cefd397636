//! What happened to a task, for subscribers of [`Worker::events`](super::Worker::events).

use signet_store::DeadReason;

/// What happened to a task, published on [`Worker::events`](super::Worker::events)
/// after the store recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerEvent {
    /// The task id.
    pub task_id: String,
    /// Its queue.
    pub queue: String,
    /// Its name.
    pub name: String,
    /// The attempt that ended.
    pub attempt: u32,
    /// How it ended.
    pub kind: WorkerEventKind,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerEventKind {
    /// The handler succeeded and the task is `succeeded`.
    Succeeded,
    /// The attempt failed; the task runs again at `at_ms`.
    Retrying {
        /// When (unix ms).
        at_ms: i64,
        /// The attempt's error.
        error: String,
    },
    /// The task was dead-lettered.
    Dead {
        /// Why.
        reason: DeadReason,
        /// Details.
        detail: String,
    },
    /// The worker gave the task back on shutdown (attempt not counted).
    Released,
    /// The lease was lost (expired and rescued); the result was dropped.
    LeaseLost,
    /// The outcome could not be written; the lease will expire and the task
    /// will be rescued.
    StoreFailed {
        /// The store's error.
        error: String,
    },
}
