//! Callbacks owed by finished tasks and messages.

use deadpool_postgres::GenericClient;
use signet_store::{StoreResult, TaskRow};

use crate::error_map::map_err;
use crate::row::{task_from_row, TASK_COLUMNS};

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
