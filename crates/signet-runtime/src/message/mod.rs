//! Messages: HTTP requests Signet delivers, signed, with retries.
//!
//! A message is stored as a task on the reserved queue
//! [`MESSAGE_QUEUE`](signet_store::MESSAGE_QUEUE) with the task name
//! [`MESSAGE_TASK_NAME`](signet_store::MESSAGE_TASK_NAME) and a `msg_…` id.
//! Its args are the [`MessageSpec`] as JSON, signed at rest with the
//! server's key ring like any task, so durability, leases, idempotency, dead
//! letters and replay are the task queue's, and a message changed in the
//! database is refused by the dispatcher (`signature-invalid`).
//!
//! [`NewMessage`] is what a caller asks for (the body of
//! `POST /v1/messages`); [`MessageProducer::publish`] checks it, turns it
//! into a [`MessageSpec`], signs and enqueues it.
//!
//! Files: `profile` (how requests are signed), `retry` (when a failed
//! delivery is tried again), `spec` (the request a caller makes and the
//! spec that is stored), `publish` (checking, signing and enqueueing).

mod profile;
mod publish;
mod retry;
mod spec;

pub use profile::SignatureProfile;
pub use publish::{
    MessageProducer, MessagePublisher, PublishOptions, MAX_BATCH_MESSAGES, PUBLISH_TARGET_CACHE_TTL,
};
pub use retry::{RetrySchedule, DEFAULT_JITTER, DEFAULT_RETRY_SCHEDULE};
pub use spec::{MessageSpec, NewMessage, UnixMs};
