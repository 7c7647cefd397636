//! Callbacks owed by finished tasks: which ones, and marking them handed off.

use rusqlite::{params, Connection};
use signet_store::{StoreResult, TaskRow};

use crate::error_map::map_err;
use crate::row::{collect_rows, task_from_row, TASK_COLUMNS};

/// The condition of a task whose callback is owed. Matches the partial
/// index `tasks_callbacks`; prune keeps such tasks.
pub(crate) const OWED: &str = "callback_url IS NOT NULL AND callback_sent_at_ms IS NULL \
     AND state IN ('succeeded', 'dead')";

/// Owed callbacks by finish time: `?1` limit. Without statistics the
/// planner prefers `tasks_finished` (an equality on `state`) and sorts every
/// finished task; the small partial index is already in the right order.
pub(crate) fn pending_sql() -> String {
    format!(
        "SELECT {TASK_COLUMNS} FROM tasks INDEXED BY tasks_callbacks WHERE {OWED} \
         ORDER BY finished_at_ms, id LIMIT ?1"
    )
}

/// Finished tasks whose callback is owed, oldest finished first.
pub(crate) fn pending(conn: &Connection, limit: usize) -> StoreResult<Vec<TaskRow>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let context = "finding owed callbacks";
    collect_rows(conn, &pending_sql(), [limit], context, task_from_row)
}

/// Marks the callbacks of these finished tasks handed off; other ids are
/// ignored (unknown, not finished, or already marked).
pub(crate) fn mark_sent(conn: &Connection, ids: &[String], now_ms: i64) -> StoreResult<()> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "UPDATE tasks SET callback_sent_at_ms = ?1 WHERE id = ?2 AND {OWED}"
        ))
        .map_err(|e| map_err("preparing to mark callbacks sent", e))?;
    for id in ids {
        stmt.execute(params![now_ms, id])
            .map_err(|e| map_err(format!("marking the callback of {id} sent"), e))?;
    }
    Ok(())
}
