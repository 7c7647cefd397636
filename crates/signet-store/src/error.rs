//! The one error type of storage backends.

use std::error::Error as StdError;

/// A boxed cause from a backend driver.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What a [`Store`](crate::Store) operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// What kind of thing (`task`, `dead letter`, `api key`).
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The operation is not allowed in the current state (for example
    /// cancelling a task that already succeeded).
    #[error("{0}")]
    Conflict(String),
    /// The caller no longer holds the lease on this task: it expired and was
    /// rescued, or another worker owns it now. The caller must drop its work.
    #[error("lease on task {task_id} is no longer held by this worker (attempt {attempt})")]
    LeaseLost {
        /// The task.
        task_id: String,
        /// The attempt the caller thought it held.
        attempt: u32,
    },
    /// An idempotency key was reused, in its scope and kind, with a request
    /// that differs from the one it was first used with. Nothing was stored.
    #[error(transparent)]
    IdempotencyConflict(crate::idempotency::IdempotencyConflict),
    /// Input the store refuses (too large, bad id, bad filter).
    #[error("{0}")]
    Invalid(String),
    /// The database is busy or locked; the operation changed nothing and may
    /// be retried.
    #[error("database is busy: {message}")]
    Busy {
        /// What was busy.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The disk is full or the database cannot grow; the operation changed
    /// nothing.
    #[error("storage is full: {message}; free disk space and retry")]
    Full {
        /// Details.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The schema in the database is newer than this build knows.
    #[error(
        "database schema version {found} is newer than this build knows ({known}); upgrade signet"
    )]
    SchemaTooNew {
        /// Version found in the database.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// The store has been closed.
    #[error("store is closed")]
    Closed,
    /// Any other backend failure, with its cause.
    #[error("{message}")]
    Backend {
        /// What was being done.
        message: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// Shorthand for [`StoreError::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Self {
        StoreError::Invalid(message.into())
    }

    /// Shorthand for [`StoreError::NotFound`].
    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        StoreError::NotFound {
            what,
            id: id.into(),
        }
    }

    /// Shorthand for [`StoreError::Backend`].
    pub fn backend(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Backend {
            message: message.into(),
            source: source.into(),
        }
    }

    /// Whether the same call may succeed if retried later. Decided here, once.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Busy { .. } | StoreError::Backend { .. })
    }

    /// Whether the error is [`StoreError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}
