//! Task histories: reading them in order. Events are appended by the
//! statements in `tasks.rs` that make the change they record.

use deadpool_postgres::GenericClient;
use signet_store::history::EVENT_COLUMNS;
use signet_store::{HistoryEvent, StoreResult};

use crate::error_map::map_err;
use crate::row::event_from_row;

/// The columns of an attempt event, for `INSERT INTO task_events (…)`.
pub(crate) const ATTEMPT_EVENT: &str = "task_id, seq, kind, at_ms, attempt, worker, \
     started_at_ms, outcome, error, status, latency_ms, response_body";

/// A task's history, in order.
pub(crate) async fn list(
    client: &impl GenericClient,
    task_id: &str,
) -> StoreResult<Vec<HistoryEvent>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM task_events WHERE task_id = $1 ORDER BY seq"
        ))
        .await
        .map_err(|e| map_err("preparing a history read", e))?;
    client
        .query(&stmt, &[&task_id])
        .await
        .map_err(|e| map_err(format!("reading the history of {task_id}"), e))?
        .iter()
        .map(|r| event_from_row(r, task_id))
        .collect()
}
