//! Message delivery: attempts of messages, and callbacks owed by finished
//! tasks.

use deadpool_postgres::GenericClient;
use signet_store::{AttemptRecord, StoreError, StoreResult, TaskRow};

use crate::error_map::{is_foreign_key_violation, map_err};
use crate::row::{attempt_from_row, task_from_row, ATTEMPT_COLUMNS, TASK_COLUMNS};

/// Records one attempt; the same `(task_id, attempt)` again replaces it.
pub(crate) async fn record_attempt(
    client: &impl GenericClient,
    a: &AttemptRecord,
) -> StoreResult<()> {
    let stmt = client
        .prepare_cached(
            "INSERT INTO attempts (task_id, attempt, started_at_ms, latency_ms, status, error, \
                 response_body) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (task_id, attempt) DO UPDATE SET started_at_ms = EXCLUDED.started_at_ms, \
                 latency_ms = EXCLUDED.latency_ms, status = EXCLUDED.status, \
                 error = EXCLUDED.error, response_body = EXCLUDED.response_body",
        )
        .await
        .map_err(|e| map_err("preparing an attempt insert", e))?;
    let status = a.status.map(i32::from);
    client
        .execute(
            &stmt,
            &[
                &a.task_id,
                &i64::from(a.attempt),
                &a.started_at_ms,
                &a.latency_ms,
                &status,
                &a.error,
                &a.response_body,
            ],
        )
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                StoreError::not_found("task", a.task_id.clone())
            } else {
                map_err(
                    format!("recording attempt {} of {}", a.attempt, a.task_id),
                    e,
                )
            }
        })?;
    Ok(())
}

/// A message's attempts, oldest first.
pub(crate) async fn attempts(
    client: &impl GenericClient,
    task_id: &str,
) -> StoreResult<Vec<AttemptRecord>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE task_id = $1 ORDER BY attempt"
        ))
        .await
        .map_err(|e| map_err("preparing an attempt listing", e))?;
    client
        .query(&stmt, &[&task_id])
        .await
        .map_err(|e| map_err(format!("listing the attempts of {task_id}"), e))?
        .iter()
        .map(attempt_from_row)
        .collect()
}

/// Finished tasks whose callback is still owed, by finish time.
pub(crate) async fn pending_callbacks(
    client: &impl GenericClient,
    limit: usize,
) -> StoreResult<Vec<TaskRow>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks \
             WHERE callback_url IS NOT NULL AND callback_sent_at_ms IS NULL \
               AND state IN ('succeeded', 'dead') \
             ORDER BY finished_at_ms, id LIMIT $1"
        ))
        .await
        .map_err(|e| map_err("preparing the pending callbacks", e))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    client
        .query(&stmt, &[&limit])
        .await
        .map_err(|e| map_err("listing pending callbacks", e))?
        .iter()
        .map(task_from_row)
        .collect()
}

/// Marks callbacks handed off; unknown ids are ignored.
pub(crate) async fn mark_callbacks_sent(
    client: &impl GenericClient,
    ids: &[String],
    now_ms: i64,
) -> StoreResult<()> {
    let stmt = client
        .prepare_cached(
            "UPDATE tasks SET callback_sent_at_ms = $2 \
             WHERE id = ANY($1) AND callback_sent_at_ms IS NULL \
               AND state IN ('succeeded', 'dead')",
        )
        .await
        .map_err(|e| map_err("preparing a callback update", e))?;
    client
        .execute(&stmt, &[&ids, &now_ms])
        .await
        .map_err(|e| map_err(format!("marking {} callback(s) sent", ids.len()), e))?;
    Ok(())
}
