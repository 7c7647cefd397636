//! Operator acts on one task or message: retrying it now instead of after
//! its backoff, and resending a delivered message. Each act is one function
//! here, called by the HTTP API, the console and the CLI alike; the store
//! makes the change and records it in the history in one write.

use signet_store::{MessageId, Store, StoreError, TaskRow, TaskState, MESSAGE_QUEUE};

use crate::error::RuntimeError;

/// Makes a task (or message) in state `retryable`, waiting for its
/// backoff, due now; the attempts it made still count, and its history
/// gets a `retried-now` event by `actor`. Unknown id:
/// [`StoreError::NotFound`]; any other state: [`StoreError::Conflict`]
/// naming it.
pub async fn retry_now(
    store: &dyn Store,
    id: &str,
    actor: &str,
    now_ms: i64,
) -> Result<TaskRow, RuntimeError> {
    let row = store.retry_now(id, actor, now_ms).await?;
    tracing::info!(id, queue = row.queue(), actor, "retried now");
    Ok(row)
}

/// Sends a delivered (`succeeded`) message again: a new attempt in its
/// history, with the same `webhook-id` (the message id) and a fresh
/// signature and timestamp, made by the dispatcher as for any delivery.
/// It gets its whole attempt budget again, attempt numbers go on, and a
/// callback is sent again when it finishes. A message not delivered yet
/// (still pending, or cancelled) gives [`StoreError::Conflict`]; a dead
/// one too, pointing to the dead-letter replay (which keeps the dead
/// letter's reason in its history and is the one way back for it).
pub async fn resend_message(
    store: &dyn Store,
    id: &MessageId,
    actor: &str,
    now_ms: i64,
) -> Result<TaskRow, RuntimeError> {
    let id = id.as_str();
    let row = store
        .task(id)
        .await?
        .filter(|r| r.queue() == MESSAGE_QUEUE)
        .ok_or_else(|| StoreError::not_found("message", id))?;
    let refusal = match row.state {
        TaskState::Succeeded => None,
        TaskState::Dead => Some(format!(
            "message {id} is dead, not delivered; resend sends delivered messages again. \
             Replay it from the dead letters instead (POST /v1/dead-letters/replay, \
             signet dlq replay --id {id})"
        )),
        TaskState::Cancelled => Some(format!(
            "message {id} was cancelled before it was delivered; \
             publish a new message to send it"
        )),
        state => Some(format!(
            "message {id} is {state}: it has not been delivered yet, and will be; \
             resend is for delivered messages (a retryable one can be retried now)"
        )),
    };
    if let Some(message) = refusal {
        return Err(StoreError::Conflict(message).into());
    }
    let row = store.resend(id, actor, now_ms).await?;
    tracing::info!(id, actor, "message resent");
    Ok(row)
}
