//! `signet-store`: Signet's domain types and the storage seam.
//!
//! Backends (`signet-sqlite`, `signet-postgres`) implement [`Store`] and run
//! the conformance suite `testkit` (feature `testkit`; one test per check
//! through `conformance_tests!`), which every backend must pass unchanged.
#![warn(missing_docs)]

pub mod activity;
pub mod delivery;
pub mod error;
pub mod history;
pub mod idempotency;
pub mod ids;
pub mod limits;
pub mod migration;
pub mod paging;
pub mod pause;
pub mod rows;
pub mod rules;
pub mod state;
pub mod store;
pub mod task;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod wakeups;

pub use activity::{
    Activity, ActivityWindow, QueueActivity, SignatureFailures, MAX_ACTIVITY_BUCKETS,
    MAX_ACTIVITY_WINDOW_MS,
};
pub use delivery::{
    CatchUp, DeliverySettlement, LeaderLease, PushBinding, ScheduleRecord, Settlement,
    TargetRecord, MAX_ATTEMPT_BODY_BYTES, MESSAGE_QUEUE, MESSAGE_TASK_NAME, RESERVED_QUEUE_PREFIX,
};
pub use error::{BoxError, StoreError};
pub use history::{AttemptEvent, AttemptOutcome, Event, HistoryEvent, HttpExchange};
pub use idempotency::{
    Fingerprint, IdempotencyClaim, IdempotencyConflict, IdempotencyKind, IdempotencyScope,
    LEGACY_SCOPE,
};
pub use ids::{ApiKeyId, MessageId, ScheduleId, TargetId, TaskId};
pub use limits::{RateGrant, RateTake, SlotLease, SlotTake, MAX_RATE_HORIZON_MS, MAX_RATE_TAKE};
pub use pause::PausedQueue;
pub use rules::FieldError;
pub use state::{DeadReason, TaskState};
pub use store::{Store, StoreResult};
pub use task::*;
pub use wakeups::{WorkMark, WorkSignals};
