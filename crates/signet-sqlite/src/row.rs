//! Reading task and API key rows, defensively: a row that does not decode
//! gives an error naming the task, never a panic.

use std::collections::BTreeMap;
use std::str::FromStr;

use rusqlite::types::FromSql;
use rusqlite::Row;
use signet_sign::{Algorithm, TaskEnvelope};
use signet_store::{ApiKeyRecord, SignatureRecord, StoreError, StoreResult, TaskRow};

/// The task columns, in the order [`task_from_row`] reads them.
pub(crate) const TASK_COLUMNS: &str = "id, queue, name, args, headers, created_at_ms, \
     not_before_ms, expires_at_ms, max_attempts, callback_url, sig_alg, sig_key_id, sig, \
     state, priority, attempt, run_at_ms, lease_owner, lease_expires_at_ms, last_error, \
     dead_reason, dead_detail, result, idempotency_key, updated_at_ms, finished_at_ms";

/// The API key columns, in the order [`api_key_from_row`] reads them.
pub(crate) const API_KEY_COLUMNS: &str =
    "id, name, scope, hash, prefix, created_at_ms, revoked_at_ms";

pub(crate) fn corrupt(
    what: &str,
    id: &str,
    column: &str,
    cause: impl std::fmt::Display,
) -> StoreError {
    StoreError::backend(
        format!(
            "{what} {id} has an unreadable {column} column; the row is corrupt (edited by hand or damaged). Inspect it with sqlite3, or purge or delete the row"
        ),
        cause.to_string(),
    )
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

fn parsed<T, E: std::fmt::Display>(
    value: Option<String>,
    id: &str,
    name: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> StoreResult<Option<T>> {
    value
        .map(|v| parse(&v).map_err(|e| corrupt("task", id, name, e)))
        .transpose()
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
    let headers_json: String = col(row, 4, id, "headers")?;
    let headers: BTreeMap<String, String> =
        serde_json::from_str(&headers_json).map_err(|e| corrupt("task", id, "headers", e))?;
    let alg = parsed(
        col(row, 10, id, "sig_alg")?,
        id,
        "sig_alg",
        Algorithm::from_str,
    )?;
    let key_id: Option<String> = col(row, 11, id, "sig_key_id")?;
    let sig: Option<Vec<u8>> = col(row, 12, id, "sig")?;
    let signature = match (alg, key_id, sig) {
        (Some(alg), Some(key_id), Some(sig)) => Some(SignatureRecord { alg, key_id, sig }),
        (None, None, None) => None,
        _ => {
            return Err(corrupt(
                "task",
                id,
                "signature",
                "sig_alg, sig_key_id and sig must be all set or all NULL",
            ))
        }
    };
    let state: String = col(row, 13, id, "state")?;
    let state = state
        .parse()
        .map_err(|e: StoreError| corrupt("task", id, "state", e))?;
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
        run_at_ms: col(row, 16, id, "run_at_ms")?,
        lease_owner: col(row, 17, id, "lease_owner")?,
        lease_expires_at_ms: col(row, 18, id, "lease_expires_at_ms")?,
        last_error: col(row, 19, id, "last_error")?,
        dead_reason: parsed(col(row, 20, id, "dead_reason")?, id, "dead_reason", |s| {
            s.parse()
        })?,
        dead_detail: col(row, 21, id, "dead_detail")?,
        result: col(row, 22, id, "result")?,
        idempotency_key: col(row, 23, id, "idempotency_key")?,
        updated_at_ms: col(row, 24, id, "updated_at_ms")?,
        finished_at_ms: col(row, 25, id, "finished_at_ms")?,
    })
}

/// Encodes headers for the `headers` column.
pub(crate) fn headers_json(headers: &BTreeMap<String, String>) -> StoreResult<String> {
    serde_json::to_string(headers)
        .map_err(|e| StoreError::backend("encoding task headers as JSON", e))
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
