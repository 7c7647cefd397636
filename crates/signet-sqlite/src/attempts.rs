//! Delivery attempts of messages, kept beside their task row and deleted
//! with it.

use rusqlite::{params, Connection, Row};
use signet_store::{AttemptRecord, StoreError, StoreResult};

use crate::error_map::map_err;
use crate::queries::task_state;
use crate::row::{column, corrupt};

const ATTEMPT_COLUMNS: &str =
    "task_id, attempt, started_at_ms, latency_ms, status, error, response_body";

/// Stores an attempt, replacing an earlier record of the same attempt.
pub(crate) fn record(conn: &Connection, a: &AttemptRecord) -> StoreResult<()> {
    if task_state(conn, &a.task_id)?.is_none() {
        return Err(StoreError::not_found("task", a.task_id.clone()));
    }
    conn.prepare_cached(&format!(
        "INSERT INTO attempts ({ATTEMPT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (task_id, attempt) DO UPDATE SET started_at_ms = excluded.started_at_ms, \
         latency_ms = excluded.latency_ms, status = excluded.status, error = excluded.error, \
         response_body = excluded.response_body"
    ))
    .and_then(|mut s| {
        s.execute(params![
            a.task_id,
            a.attempt,
            a.started_at_ms,
            a.latency_ms,
            a.status,
            a.error,
            a.response_body,
        ])
    })
    .map_err(|e| {
        map_err(
            format!("recording attempt {} of {}", a.attempt, a.task_id),
            e,
        )
    })?;
    Ok(())
}

/// A task's attempts, by attempt number.
pub(crate) fn list(conn: &Connection, task_id: &str) -> StoreResult<Vec<AttemptRecord>> {
    let context = format!("reading the attempts of {task_id}");
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE task_id = ?1 ORDER BY attempt"
        ))
        .map_err(|e| map_err(&context, e))?;
    let mut rows = stmt.query([task_id]).map_err(|e| map_err(&context, e))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| map_err(&context, e))? {
        out.push(from_row(row, task_id)?);
    }
    Ok(out)
}

/// Deletes a task's attempts (its row is being deleted).
pub(crate) fn delete_of(conn: &Connection, task_id: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM attempts WHERE task_id = ?1")
        .and_then(|mut s| s.execute([task_id]))
        .map_err(|e| map_err(format!("deleting the attempts of {task_id}"), e))?;
    Ok(())
}

fn from_row(row: &Row<'_>, task_id: &str) -> StoreResult<AttemptRecord> {
    const WHAT: &str = "attempt of task";
    let attempt: i64 = column(row, 1, WHAT, task_id, "attempt")?;
    let status: Option<i64> = column(row, 4, WHAT, task_id, "status")?;
    Ok(AttemptRecord {
        task_id: task_id.to_owned(),
        attempt: u32::try_from(attempt).map_err(|e| corrupt(WHAT, task_id, "attempt", e))?,
        started_at_ms: column(row, 2, WHAT, task_id, "started_at_ms")?,
        latency_ms: column(row, 3, WHAT, task_id, "latency_ms")?,
        status: status
            .map(u16::try_from)
            .transpose()
            .map_err(|e| corrupt(WHAT, task_id, "status", e))?,
        error: column(row, 5, WHAT, task_id, "error")?,
        response_body: column(row, 6, WHAT, task_id, "response_body")?,
    })
}
