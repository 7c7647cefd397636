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
    /// A field of a message or a target is invalid; `field` names it (as the
    /// HTTP API spells it) and `message` says what is allowed.
    #[error("{field}: {message}")]
    InvalidField {
        /// The field at fault.
        field: String,
        /// What is wrong with it and what is allowed.
        message: String,
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
        RuntimeError::InvalidField {
            field: field.into(),
            message: message.into(),
        }
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
