//! The one error type of `signet-runtime`.

use signet_store::StoreError;

/// What producing tasks or starting a worker can fail with.
///
/// Causes are kept as sources (never stringified), so a caller that logs
/// with `{:#}`-style chains sees the driver's or the signer's own error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The store refused or failed the operation.
    #[error("store operation failed: {0}")]
    Store(#[from] StoreError),
    /// Signing failed, or the signing configuration cannot be used.
    #[error("signing: {0}")]
    Signing(#[source] signet_sign::Error),
    /// The task's args could not be serialised to JSON.
    #[error("task args could not be serialised to JSON: {0}")]
    Args(#[source] serde_json::Error),
    /// The task as specified cannot be enqueued (bad queue name, oversize
    /// args, bad header…). The message says what to change.
    #[error("invalid task: {0}")]
    InvalidTask(String),
    /// The producer or worker is configured in a way that cannot work. The
    /// message names the setting.
    #[error("configuration: {0}")]
    Config(String),
}

impl RuntimeError {
    /// Shorthand for [`RuntimeError::InvalidTask`].
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        RuntimeError::InvalidTask(message.into())
    }

    /// Whether retrying the same call later may succeed (only transient
    /// store errors qualify). Decided here, once.
    pub fn is_retryable(&self) -> bool {
        matches!(self, RuntimeError::Store(e) if e.is_retryable())
    }
}

impl From<signet_sign::Error> for RuntimeError {
    fn from(e: signet_sign::Error) -> Self {
        RuntimeError::Signing(e)
    }
}
