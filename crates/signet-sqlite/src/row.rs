//! Reading task and API key rows, defensively: a row that does not decode
//! gives an error naming the task, never a panic.

use rusqlite::types::FromSql;
use rusqlite::{Connection, Params, Row};
use signet_sign::TaskEnvelope;
use signet_store::rows::{
    corrupt_row, dead_reason_from_column, headers_from_json, state_from_column, BadColumn,
};
use signet_store::{ApiKeyRecord, SignatureRecord, StoreError, StoreResult, TaskRow};

use crate::error_map::map_err;

/// The task and API key columns, in the order [`task_from_row`] and
/// [`api_key_from_row`] read them.
pub(crate) use signet_store::rows::{API_KEY_COLUMNS, TASK_COLUMNS};

/// Runs the query `sql` with `params` and decodes every row it gives with
/// `from_row`, in order; errors name `context` ("listing push bindings").
pub(crate) fn collect_rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    context: &str,
    mut from_row: impl FnMut(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(|e| map_err(format!("preparing {context}"), e))?;
    let mut rows = stmt.query(params).map_err(|e| map_err(context, e))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| map_err(context, e))? {
        out.push(from_row(row)?);
    }
    Ok(out)
}

pub(crate) fn corrupt(
    what: &str,
    id: &str,
    column: &str,
    cause: impl std::fmt::Display,
) -> StoreError {
    corrupt_row(what, id, column, "sqlite3", cause)
}

/// Reads column `idx`, named `column`, of the `what` row `id`; a value that
/// does not decode is reported as a corrupt row.
pub(crate) fn column<T: FromSql>(
    row: &Row<'_>,
    idx: usize,
    what: &str,
    id: &str,
    column: &str,
) -> StoreResult<T> {
    row.get(idx).map_err(|e| corrupt(what, id, column, e))
}

fn col<T: FromSql>(row: &Row<'_>, idx: usize, id: &str, name: &str) -> StoreResult<T> {
    row.get(idx).map_err(|e| corrupt("task", id, name, e))
}

/// The error for task `id` whose stored value does not decode.
fn bad(id: &str) -> impl Fn(BadColumn) -> StoreError + '_ {
    move |b| corrupt("task", id, b.column, b.cause)
}

fn unsigned(v: i64, id: &str, name: &str) -> StoreResult<u32> {
    u32::try_from(v).map_err(|e| corrupt("task", id, name, e))
}

/// Decodes a task row selected with [`TASK_COLUMNS`].
pub(crate) fn task_from_row(row: &Row<'_>) -> StoreResult<TaskRow> {
    let id: String = row
        .get(0)
        .map_err(|e| corrupt("task", "(unknown id)", "id", e))?;
    let id = id.as_str();
    let headers = headers_from_json(&col::<String>(row, 4, id, "headers")?).map_err(bad(id))?;
    let signature = SignatureRecord::from_columns(
        col(row, 10, id, "sig_alg")?,
        col(row, 11, id, "sig_key_id")?,
        col(row, 12, id, "sig")?,
    )
    .map_err(bad(id))?;
    let state = state_from_column(&col::<String>(row, 13, id, "state")?).map_err(bad(id))?;
    Ok(TaskRow {
        envelope: TaskEnvelope {
            id: id.to_owned(),
            queue: col(row, 1, id, "queue")?,
            name: col(row, 2, id, "name")?,
            args: col(row, 3, id, "args")?,
            headers,
            created_at_ms: col(row, 5, id, "created_at_ms")?,
            not_before_ms: col(row, 6, id, "not_before_ms")?,
            expires_at_ms: col(row, 7, id, "expires_at_ms")?,
            max_attempts: unsigned(col(row, 8, id, "max_attempts")?, id, "max_attempts")?,
            callback_url: col(row, 9, id, "callback_url")?,
        },
        signature,
        state,
        priority: col(row, 14, id, "priority")?,
        attempt: unsigned(col(row, 15, id, "attempt")?, id, "attempt")?,
        attempts_before: unsigned(col(row, 26, id, "attempt_offset")?, id, "attempt_offset")?,
        run_at_ms: col(row, 16, id, "run_at_ms")?,
        lease_owner: col(row, 17, id, "lease_owner")?,
        lease_expires_at_ms: col(row, 18, id, "lease_expires_at_ms")?,
        last_error: col(row, 19, id, "last_error")?,
        dead_reason: dead_reason_from_column(col(row, 20, id, "dead_reason")?).map_err(bad(id))?,
        dead_detail: col(row, 21, id, "dead_detail")?,
        result: col(row, 22, id, "result")?,
        idempotency_key: col(row, 23, id, "idempotency_key")?,
        updated_at_ms: col(row, 24, id, "updated_at_ms")?,
        finished_at_ms: col(row, 25, id, "finished_at_ms")?,
    })
}

/// Decodes an API key row selected with [`API_KEY_COLUMNS`].
pub(crate) fn api_key_from_row(row: &Row<'_>) -> StoreResult<ApiKeyRecord> {
    let id: String = row
        .get(0)
        .map_err(|e| corrupt("api key", "(unknown id)", "id", e))?;
    Ok(ApiKeyRecord {
        name: key_col(row, 1, &id, "name")?,
        scope: key_col(row, 2, &id, "scope")?,
        hash: key_col(row, 3, &id, "hash")?,
        prefix: key_col(row, 4, &id, "prefix")?,
        created_at_ms: key_col(row, 5, &id, "created_at_ms")?,
        revoked_at_ms: key_col(row, 6, &id, "revoked_at_ms")?,
        id,
    })
}

fn key_col<T: FromSql>(row: &Row<'_>, idx: usize, id: &str, name: &str) -> StoreResult<T> {
    row.get(idx).map_err(|e| corrupt("api key", id, name, e))
}
