//! The one error type of `signet-runtime`.

use signet_store::{FieldError, IdempotencyConflict, StoreError};

/// What producing tasks or starting a worker can fail with.
///
/// Causes are kept as sources (never stringified), so a caller that logs
/// with `{:#}`-style chains sees the driver's or the signer's own error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The store refused or failed the operation.
    #[error("store operation failed: {0}")]
    Store(#[source] StoreError),
    /// An idempotency key was reused, in its scope and kind, with a request
    /// that differs from the one it was first used with; the message names
    /// the key and the fields. Nothing was stored. (From the store's
    /// [`StoreError::IdempotencyConflict`]; never inside
    /// [`RuntimeError::Store`].)
    #[error(transparent)]
    IdempotencyConflict(IdempotencyConflict),
    /// Signing failed, or the signing configuration cannot be used.
    #[error("signing: {0}")]
    Signing(#[source] signet_sign::Error),
    /// The task's args could not be serialised to JSON.
    #[error("task args could not be serialised to JSON: {0}")]
    Args(#[source] serde_json::Error),
    /// The task cannot be enqueued for a reason that is not one field's
    /// (a field breaking an input rule is [`RuntimeError::InvalidField`]).
    #[error("invalid task: {0}")]
    InvalidTask(String),
    /// The producer or worker is configured in a way that cannot work. The
    /// message names the setting.
    #[error("configuration: {0}")]
    Config(String),
    /// A field of a task, a message, a schedule or a target breaks one of
    /// the input rules ([`signet_store::rules`]); the error names the field
    /// as the HTTP API spells it and says what is allowed.
    #[error(transparent)]
    InvalidField(#[from] FieldError),
    /// A client's signature over its own envelope did not verify (or could
    /// not be read); [`signet_sign::Error::reason`] says how.
    #[error("the client's signature was refused ({})", .0.reason())]
    SignatureRejected(#[source] signet_sign::Error),
    /// One item of a batch ([`Producer::enqueue_items`](crate::Producer::enqueue_items),
    /// [`MessageProducer::publish_batch_as`](crate::MessageProducer::publish_batch_as))
    /// was refused: `error` says why, `index` which item (from 0, in the
    /// order given). Nothing of the batch was stored.
    #[error("item {index} of the batch: {error}")]
    BatchItem {
        /// The position of the refused item in the batch, from 0.
        index: usize,
        /// Why it was refused.
        #[source]
        error: Box<RuntimeError>,
    },
    /// Target secrets cannot be sealed or opened: `SIGNET_MASTER_KEY` is not
    /// set, or it is not the key they were sealed with. Never contains a
    /// secret.
    #[error("master key: {0}")]
    MasterKey(String),
}

impl RuntimeError {
    /// Shorthand for [`RuntimeError::InvalidTask`].
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        RuntimeError::InvalidTask(message.into())
    }

    /// Shorthand for [`RuntimeError::InvalidField`].
    pub(crate) fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        RuntimeError::InvalidField(FieldError::new(field, message))
    }

    /// Whether retrying the same call later may succeed (only transient
    /// store errors qualify). Decided here, once.
    pub fn is_retryable(&self) -> bool {
        matches!(self, RuntimeError::Store(e) if e.is_retryable())
    }
}

impl From<StoreError> for RuntimeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::IdempotencyConflict(c) => RuntimeError::IdempotencyConflict(c),
            e => RuntimeError::Store(e),
        }
    }
}

impl From<signet_sign::Error> for RuntimeError {
    fn from(e: signet_sign::Error) -> Self {
        RuntimeError::Signing(e)
    }
}
