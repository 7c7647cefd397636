//! What happened to a delivery, for subscribers of
//! [`Dispatcher::events`](super::Dispatcher::events).

use signet_store::DeadReason;

/// What happened to a delivery attempt, published on
/// [`Dispatcher::events`](super::Dispatcher::events) after the store recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryEvent {
    /// The message id.
    pub message_id: String,
    /// The attempt that ended.
    pub attempt: u32,
    /// How it ended.
    pub kind: DeliveryEventKind,
}

/// How a delivery attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryEventKind {
    /// The receiver answered 2xx.
    Delivered {
        /// The status.
        status: u16,
    },
    /// The attempt failed; the message is tried again at `at_ms`.
    Retrying {
        /// When (unix ms).
        at_ms: i64,
        /// What went wrong.
        error: String,
    },
    /// The message was dead-lettered.
    Dead {
        /// Why.
        reason: DeadReason,
        /// Details.
        detail: String,
    },
    /// Given back on shutdown (the attempt is not counted).
    Released,
    /// The lease was lost; the outcome was dropped.
    LeaseLost,
    /// The outcome could not be written; the lease will expire and the
    /// message will be rescued.
    StoreFailed {
        /// The store's error.
        error: String,
    },
}
