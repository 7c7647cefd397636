//! Paused queues: every claim statement checks [`not_paused`], so a pause
//! holds for every process sharing the database from its commit on.

use rusqlite::{params, Connection, OptionalExtension, Row};
use signet_store::{PausedQueue, StoreError, StoreResult};

use crate::error_map::map_err;
use crate::row::{collect_rows, column, corrupt};

const COLUMNS: &str = "queue, paused_at_ms, paused_by, reason";

/// The condition "the queue in `queue_sql` (a parameter or a column) is
/// not paused", for claim statements. Uncorrelated when `queue_sql` is a
/// parameter, so SQLite evaluates it once per statement (one primary-key
/// probe of a table that is almost always empty).
pub(crate) fn not_paused(queue_sql: &str) -> String {
    format!("NOT EXISTS (SELECT 1 FROM paused_queues AS p WHERE p.queue = {queue_sql})")
}

/// Pauses `queue`; a queue already paused keeps its first pause.
pub(crate) fn pause(
    conn: &Connection,
    queue: &str,
    actor: &str,
    reason: Option<&str>,
    now_ms: i64,
) -> StoreResult<PausedQueue> {
    let context = || format!("pausing queue {queue}");
    conn.prepare_cached(
        "INSERT INTO paused_queues (queue, paused_at_ms, paused_by, reason) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (queue) DO NOTHING",
    )
    .and_then(|mut s| s.execute(params![queue, now_ms, actor, reason]))
    .map_err(|e| map_err(context(), e))?;
    by_queue(conn, queue)?.ok_or_else(|| {
        StoreError::backend(context(), "the pause was not there after it was written")
    })
}

/// Resumes `queue`: the pause it ended, if any.
pub(crate) fn resume(conn: &Connection, queue: &str) -> StoreResult<Option<PausedQueue>> {
    conn.prepare_cached(&format!(
        "DELETE FROM paused_queues WHERE queue = ?1 RETURNING {COLUMNS}"
    ))
    .and_then(|mut s| s.query_row([queue], |r| Ok(from_row(r))).optional())
    .map_err(|e| map_err(format!("resuming queue {queue}"), e))?
    .transpose()
}

fn by_queue(conn: &Connection, queue: &str) -> StoreResult<Option<PausedQueue>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM paused_queues WHERE queue = ?1"
    ))
    .and_then(|mut s| s.query_row([queue], |r| Ok(from_row(r))).optional())
    .map_err(|e| map_err(format!("reading the pause of queue {queue}"), e))?
    .transpose()
}

/// Every paused queue, by name.
pub(crate) fn list(conn: &Connection) -> StoreResult<Vec<PausedQueue>> {
    let context = "listing paused queues";
    let sql = format!("SELECT {COLUMNS} FROM paused_queues ORDER BY queue");
    collect_rows(conn, &sql, [], context, from_row)
}

fn from_row(row: &Row<'_>) -> StoreResult<PausedQueue> {
    const WHAT: &str = "paused queue";
    let queue: String = row.get(0).map_err(|e| corrupt(WHAT, "?", "queue", e))?;
    Ok(PausedQueue {
        paused_at_ms: column(row, 1, WHAT, &queue, "paused_at_ms")?,
        paused_by: column(row, 2, WHAT, &queue, "paused_by")?,
        reason: column(row, 3, WHAT, &queue, "reason")?,
        queue,
    })
}
