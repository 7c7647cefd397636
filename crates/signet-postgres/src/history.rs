//! Task histories: reading them in order. Events are appended by the
//! statements in `tasks.rs` that make the change they record.

use deadpool_postgres::GenericClient;
use signet_store::history::{complete_history, RowAttempt, EVENT_COLUMNS, ROW_ATTEMPT_COLUMNS};
use signet_store::{HistoryEvent, StoreResult};

use crate::error_map::map_err;
use crate::row::{event_from_row, row_attempt_from_row};

/// The columns of an attempt event, for `INSERT INTO task_events (…)`.
pub(crate) const ATTEMPT_EVENT: &str = "task_id, seq, kind, at_ms, attempt, worker, \
     started_at_ms, outcome, error, status, latency_ms, response_body";

/// A task's history, in order. The events and the attempt the row keeps
/// are read in one read-only `REPEATABLE READ` transaction (one snapshot):
/// a resend committed between two separate reads would write the kept
/// attempt as an event after the first and take the row out of `succeeded`
/// before the second, and the attempt would be missing from the answer.
pub(crate) async fn list(
    client: &mut deadpool_postgres::Object,
    task_id: &str,
) -> StoreResult<Vec<HistoryEvent>> {
    let context = format!("reading the history of {task_id}");
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| map_err(&context, e))?;
    let events = read(&tx, task_id).await?;
    tx.commit().await.map_err(|e| map_err(&context, e))?;
    Ok(events)
}

/// [`list`]'s two reads, on `client`.
async fn read(client: &impl GenericClient, task_id: &str) -> StoreResult<Vec<HistoryEvent>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM task_events WHERE task_id = $1 ORDER BY seq"
        ))
        .await
        .map_err(|e| map_err("preparing a history read", e))?;
    let mut events = client
        .query(&stmt, &[&task_id])
        .await
        .map_err(|e| map_err(format!("reading the history of {task_id}"), e))?
        .iter()
        .map(|r| event_from_row(r, task_id))
        .collect::<StoreResult<Vec<_>>>()?;
    if let Some(row) = row_attempt(client, task_id).await? {
        complete_history(&mut events, task_id, row);
    }
    Ok(events)
}

/// What the task row keeps of its last attempt.
async fn row_attempt(
    client: &impl GenericClient,
    task_id: &str,
) -> StoreResult<Option<RowAttempt>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {ROW_ATTEMPT_COLUMNS} FROM tasks WHERE id = $1"
        ))
        .await
        .map_err(|e| map_err("preparing a history read", e))?;
    let Some(row) = client
        .query_opt(&stmt, &[&task_id])
        .await
        .map_err(|e| map_err(format!("reading task {task_id}"), e))?
    else {
        return Ok(None);
    };
    row_attempt_from_row(&row, task_id).map(Some)
}
