//! Paused queues: every claim statement checks [`not_paused`], so a pause
//! holds on every node from its commit on.

use deadpool_postgres::GenericClient;
use signet_store::{PausedQueue, StoreError, StoreResult};

use crate::error_map::map_err;

const COLUMNS: &str = "queue, paused_at_ms, paused_by, reason";

/// The condition "the queue in `queue_sql` (a parameter or a column) is
/// not paused", for claim statements: with a parameter PostgreSQL plans it
/// as a one-time filter (an init plan, one primary-key probe of a table
/// that is almost always empty) ahead of the scan of tasks.
pub(crate) fn not_paused(queue_sql: &str) -> String {
    format!("NOT EXISTS (SELECT 1 FROM paused_queues AS p WHERE p.queue = {queue_sql})")
}

/// Pauses `queue`; a queue already paused keeps its first pause (read
/// back by a second statement, which sees a pause another node committed
/// meanwhile).
pub(crate) async fn pause(
    client: &impl GenericClient,
    queue: &str,
    actor: &str,
    reason: Option<&str>,
    now_ms: i64,
) -> StoreResult<PausedQueue> {
    let context = || format!("pausing queue {queue}");
    let insert = client
        .prepare_cached(&format!(
            "INSERT INTO paused_queues ({COLUMNS}) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (queue) DO NOTHING RETURNING {COLUMNS}"
        ))
        .await
        .map_err(|e| map_err("preparing a pause", e))?;
    if let Some(row) = client
        .query_opt(&insert, &[&queue, &now_ms, &actor, &reason])
        .await
        .map_err(|e| map_err(context(), e))?
    {
        return from_row(&row);
    }
    let read = client
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM paused_queues WHERE queue = $1"
        ))
        .await
        .map_err(|e| map_err("preparing a pause lookup", e))?;
    let row = client
        .query_opt(&read, &[&queue])
        .await
        .map_err(|e| map_err(context(), e))?
        .ok_or_else(|| {
            StoreError::Conflict(format!(
                "queue {queue} was resumed while it was being paused; pause it again"
            ))
        })?;
    from_row(&row)
}

/// Resumes `queue` and wakes its waiters on every node (`channel`): the
/// pause it ended, if any.
pub(crate) async fn resume(
    client: &impl GenericClient,
    channel: &str,
    queue: &str,
) -> StoreResult<Option<PausedQueue>> {
    let stmt = client
        .prepare_cached(&format!(
            "WITH d AS (DELETE FROM paused_queues WHERE queue = $1 RETURNING {COLUMNS}) \
             SELECT {COLUMNS}, pg_notify($2, queue)::TEXT FROM d"
        ))
        .await
        .map_err(|e| map_err("preparing a resume", e))?;
    client
        .query_opt(&stmt, &[&queue, &channel])
        .await
        .map_err(|e| map_err(format!("resuming queue {queue}"), e))?
        .map(|r| from_row(&r))
        .transpose()
}

/// Every paused queue, by name.
pub(crate) async fn list(client: &impl GenericClient) -> StoreResult<Vec<PausedQueue>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM paused_queues ORDER BY queue"
        ))
        .await
        .map_err(|e| map_err("preparing a paused-queue listing", e))?;
    client
        .query(&stmt, &[])
        .await
        .map_err(|e| map_err("listing paused queues", e))?
        .iter()
        .map(from_row)
        .collect()
}

fn from_row(row: &tokio_postgres::Row) -> StoreResult<PausedQueue> {
    let get = |e: tokio_postgres::Error| map_err("reading a paused queue", e);
    Ok(PausedQueue {
        queue: row.try_get(0).map_err(get)?,
        paused_at_ms: row.try_get(1).map_err(get)?,
        paused_by: row.try_get(2).map_err(get)?,
        reason: row.try_get(3).map_err(get)?,
    })
}
