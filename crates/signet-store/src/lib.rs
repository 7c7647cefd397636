//! `signet-store`: Signet's domain types and the storage seam.
//!
//! Backends (`signet-sqlite`, `signet-postgres`) implement [`Store`] and run
//! the conformance suite `testkit::exercise()` (feature `testkit`), which
//! every backend must pass unchanged.
#![warn(missing_docs)]

pub mod error;
pub mod ids;
pub mod state;
pub mod store;
pub mod task;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::{BoxError, StoreError};
pub use ids::{ApiKeyId, TaskId};
pub use state::{DeadReason, TaskState};
pub use store::{Store, StoreResult};
pub use task::*;
