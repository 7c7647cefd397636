//! API keys: stored as their SHA-256 hash only.

use rusqlite::{params, Connection, ErrorCode};
use signet_store::{ApiKeyRecord, StoreError, StoreResult};

use crate::error_map::map_err;
use crate::row::{api_key_from_row, collect_rows, API_KEY_COLUMNS};

/// Stores a new key.
pub(crate) fn create(conn: &Connection, key: &ApiKeyRecord) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO api_keys (id, name, scope, hash, prefix, created_at_ms, revoked_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            key.id,
            key.name,
            key.scope,
            key.hash,
            key.prefix,
            key.created_at_ms,
            key.revoked_at_ms
        ])
    })
    .map_err(|e| {
        if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
            key.already_stored()
        } else {
            map_err(format!("storing api key {}", key.id), e)
        }
    })?;
    Ok(())
}

fn one(
    conn: &Connection,
    sql: &str,
    arg: &str,
    context: &str,
) -> StoreResult<Option<ApiKeyRecord>> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(|e| map_err(format!("preparing {context}"), e))?;
    let mut rows = stmt.query([arg]).map_err(|e| map_err(context, e))?;
    match rows.next().map_err(|e| map_err(context, e))? {
        Some(row) => api_key_from_row(row).map(Some),
        None => Ok(None),
    }
}

/// The key with this hash.
pub(crate) fn by_hash(conn: &Connection, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
    one(
        conn,
        &format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE hash = ?1"),
        hash,
        "looking up an api key",
    )
}

/// Every key, oldest first.
pub(crate) fn list(conn: &Connection) -> StoreResult<Vec<ApiKeyRecord>> {
    let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created_at_ms, id");
    collect_rows(conn, &sql, [], "listing api keys", api_key_from_row)
}

/// Revokes a key (keeps the first revocation time).
pub(crate) fn revoke(conn: &Connection, id: &str, now_ms: i64) -> StoreResult<ApiKeyRecord> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "UPDATE api_keys SET revoked_at_ms = COALESCE(revoked_at_ms, ?1) WHERE id = ?2 \
             RETURNING {API_KEY_COLUMNS}"
        ))
        .map_err(|e| map_err("preparing a revocation", e))?;
    let mut rows = stmt
        .query(params![now_ms, id])
        .map_err(|e| map_err(format!("revoking api key {id}"), e))?;
    match rows
        .next()
        .map_err(|e| map_err(format!("revoking api key {id}"), e))?
    {
        Some(row) => api_key_from_row(row),
        None => Err(StoreError::not_found("api key", id)),
    }
}

/// Records a signed-out console session (a second sign-out keeps the first
/// row).
pub(crate) fn end_session(conn: &Connection, id: &str, expires_at_ms: i64) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO ended_sessions (id, expires_at_ms) VALUES (?1, ?2) \
         ON CONFLICT (id) DO NOTHING",
    )
    .and_then(|mut s| s.execute(params![id, expires_at_ms]))
    .map_err(|e| map_err("recording a signed-out session", e))?;
    Ok(())
}

/// Whether a console session was signed out.
pub(crate) fn session_ended(conn: &Connection, id: &str) -> StoreResult<bool> {
    conn.prepare_cached("SELECT 1 FROM ended_sessions WHERE id = ?1")
        .and_then(|mut s| s.exists([id]))
        .map_err(|e| map_err("looking up a signed-out session", e))
}

/// Deletes signed-out sessions that expired before `now_ms`, at most `limit`.
pub(crate) fn prune_ended_sessions(
    conn: &Connection,
    now_ms: i64,
    limit: usize,
) -> StoreResult<u64> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let n = conn
        .prepare_cached(
            "DELETE FROM ended_sessions WHERE id IN \
             (SELECT id FROM ended_sessions WHERE expires_at_ms < ?1 LIMIT ?2)",
        )
        .and_then(|mut s| s.execute(params![now_ms, limit]))
        .map_err(|e| map_err("pruning signed-out sessions", e))?;
    Ok(n as u64)
}
