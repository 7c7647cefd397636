//! Task histories: appending events (always in the write of the change
//! they record), reading them in order, deleting them with their task.

use rusqlite::{params, Connection, Row};
use signet_store::history::{
    complete_history, EventColumns, RowAttempt, EVENT_COLUMNS, ROW_ATTEMPT_COLUMNS,
};
use signet_store::{AttemptOutcome, HistoryEvent, HttpExchange, StoreResult};

use crate::error_map::map_err;
use crate::row::{collect_rows, column, corrupt};

/// An attempt that ended, to append.
pub(crate) struct Ended<'a> {
    pub(crate) task_id: &'a str,
    /// Its place in the history (the task's `event_seq`, incremented by
    /// the update that ended the attempt).
    pub(crate) seq: i64,
    /// The history number (`attempt_offset + attempt`).
    pub(crate) number: i64,
    pub(crate) worker: &'a str,
    pub(crate) started_at_ms: Option<i64>,
    pub(crate) outcome: AttemptOutcome,
    pub(crate) error: Option<&'a str>,
    pub(crate) http: Option<&'a HttpExchange>,
}

/// Appends an attempt event at `at_ms`.
pub(crate) fn attempt(conn: &Connection, a: &Ended<'_>, at_ms: i64) -> StoreResult<()> {
    let http = a.http;
    conn.prepare_cached(
        "INSERT INTO task_events (task_id, seq, kind, at_ms, attempt, worker, started_at_ms, \
         outcome, error, status, latency_ms, response_body) \
         VALUES (?1, ?11, 'attempt', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            a.task_id,
            at_ms,
            a.number,
            a.worker,
            a.started_at_ms,
            a.outcome.as_str(),
            a.error,
            http.and_then(|h| h.status),
            http.map(|h| h.latency_ms),
            http.map(|h| h.response_body.as_slice()),
            a.seq,
        ])
    })
    .map_err(|e| {
        map_err(
            format!("recording attempt {} of {}", a.number, a.task_id),
            e,
        )
    })?;
    Ok(())
}

/// An operator act or a refusal, to append.
#[derive(Default)]
pub(crate) struct Act<'a> {
    pub(crate) kind: &'static str,
    pub(crate) actor: Option<&'a str>,
    pub(crate) reason: Option<&'a str>,
    pub(crate) detail: Option<&'a str>,
    pub(crate) from_key_id: Option<&'a str>,
    pub(crate) to_key_id: Option<&'a str>,
}

/// Appends an operator act (or a refusal) on `task_id` at `at_ms`, taking
/// the task's next `event_seq` (called in the write that made the change).
pub(crate) fn act(conn: &Connection, task_id: &str, a: &Act<'_>, at_ms: i64) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO task_events (task_id, seq, kind, at_ms, actor, reason, detail, \
         from_key_id, to_key_id) \
         SELECT id, event_seq, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM tasks WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            task_id,
            a.kind,
            at_ms,
            a.actor,
            a.reason,
            a.detail,
            a.from_key_id,
            a.to_key_id
        ])
    })
    .map_err(|e| map_err(format!("recording the {} event of {task_id}", a.kind), e))?;
    Ok(())
}

impl<'a> Act<'a> {
    /// An operator act of `kind` by `actor`.
    pub(crate) fn by(kind: &'static str, actor: &'a str) -> Self {
        Act {
            kind,
            actor: Some(actor),
            ..Act::default()
        }
    }
}

/// Numbers and appends an act on `task_id` at `at_ms` ([`next_seq`] then
/// [`act`]), in the write that made the change.
pub(crate) fn record(conn: &Connection, task_id: &str, a: &Act<'_>, at_ms: i64) -> StoreResult<()> {
    next_seq(conn, task_id)?;
    act(conn, task_id, a, at_ms)
}

/// Takes the next `event_seq` of `task_id` for an event about to be
/// appended with [`act`].
fn next_seq(conn: &Connection, task_id: &str) -> StoreResult<()> {
    conn.prepare_cached("UPDATE tasks SET event_seq = event_seq + 1 WHERE id = ?1")
        .and_then(|mut s| s.execute([task_id]))
        .map_err(|e| map_err(format!("numbering an event of {task_id}"), e))?;
    Ok(())
}

/// A task's history, in order. The events and the attempt the row keeps
/// are read in one savepoint (one snapshot on a reader, which is outside
/// any transaction): a resend committed between two separate reads would
/// write the kept attempt as an event after the first and take the row out
/// of `succeeded` before the second, and the attempt would be missing from
/// the answer.
pub(crate) fn list(conn: &Connection, task_id: &str) -> StoreResult<Vec<HistoryEvent>> {
    crate::writer::in_savepoint(conn, |conn| {
        let context = format!("reading the history of {task_id}");
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM task_events WHERE task_id = ?1 ORDER BY seq");
        let mut out = collect_rows(conn, &sql, [task_id], &context, |row| {
            from_row(row, task_id)
        })?;
        if let Some(row) = row_attempt(conn, task_id)? {
            complete_history(&mut out, task_id, row);
        }
        Ok(out)
    })
}

/// What the task row keeps of its last attempt.
fn row_attempt(conn: &Connection, task_id: &str) -> StoreResult<Option<RowAttempt>> {
    const WHAT: &str = "task";
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {ROW_ATTEMPT_COLUMNS} FROM tasks WHERE id = ?1"
        ))
        .map_err(|e| map_err("preparing a history read", e))?;
    let mut rows = stmt
        .query([task_id])
        .map_err(|e| map_err(format!("reading task {task_id}"), e))?;
    let Some(row) = rows
        .next()
        .map_err(|e| map_err(format!("reading task {task_id}"), e))?
    else {
        return Ok(None);
    };
    let state: String = column(row, 0, WHAT, task_id, "state")?;
    Ok(Some(RowAttempt {
        state: signet_store::rows::state_from_column(&state)
            .map_err(|b| corrupt(WHAT, task_id, b.column, b.cause))?,
        event_seq: column(row, 1, WHAT, task_id, "event_seq")?,
        number: column(row, 2, WHAT, task_id, "attempt")?,
        worker: column(row, 3, WHAT, task_id, "attempt_worker")?,
        started_at_ms: column(row, 4, WHAT, task_id, "attempt_started_at_ms")?,
        finished_at_ms: column(row, 5, WHAT, task_id, "finished_at_ms")?,
        http: HttpExchange::from_columns(
            column(row, 6, WHAT, task_id, "attempt_status")?,
            column(row, 7, WHAT, task_id, "attempt_latency_ms")?,
            column(row, 8, WHAT, task_id, "attempt_response_body")?,
        )
        .map_err(|(name, cause)| corrupt(WHAT, task_id, name, cause))?,
    }))
}

/// Deletes a task's history (its row is being deleted).
pub(crate) fn delete_of(conn: &Connection, task_id: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM task_events WHERE task_id = ?1")
        .and_then(|mut s| s.execute([task_id]))
        .map_err(|e| map_err(format!("deleting the history of {task_id}"), e))?;
    Ok(())
}

fn from_row(row: &Row<'_>, task_id: &str) -> StoreResult<HistoryEvent> {
    const WHAT: &str = "history event of task";
    let columns = EventColumns {
        seq: column(row, 0, WHAT, task_id, "seq")?,
        task_id: column(row, 1, WHAT, task_id, "task_id")?,
        kind: column(row, 2, WHAT, task_id, "kind")?,
        at_ms: column(row, 3, WHAT, task_id, "at_ms")?,
        attempt: column(row, 4, WHAT, task_id, "attempt")?,
        worker: column(row, 5, WHAT, task_id, "worker")?,
        started_at_ms: column(row, 6, WHAT, task_id, "started_at_ms")?,
        outcome: column(row, 7, WHAT, task_id, "outcome")?,
        error: column(row, 8, WHAT, task_id, "error")?,
        status: column(row, 9, WHAT, task_id, "status")?,
        latency_ms: column(row, 10, WHAT, task_id, "latency_ms")?,
        response_body: column(row, 11, WHAT, task_id, "response_body")?,
        actor: column(row, 12, WHAT, task_id, "actor")?,
        reason: column(row, 13, WHAT, task_id, "reason")?,
        detail: column(row, 14, WHAT, task_id, "detail")?,
        from_key_id: column(row, 15, WHAT, task_id, "from_key_id")?,
        to_key_id: column(row, 16, WHAT, task_id, "to_key_id")?,
    };
    HistoryEvent::from_columns(columns).map_err(|(name, cause)| corrupt(WHAT, task_id, name, cause))
}
