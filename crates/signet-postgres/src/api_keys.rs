//! API keys: stored as their SHA-256 hash only.

use deadpool_postgres::GenericClient;
use signet_store::{ApiKeyRecord, StoreError, StoreResult};
use tokio_postgres::error::SqlState;

use crate::error_map::map_err;
use crate::row::{api_key_from_row, API_KEY_COLUMNS};

/// Stores a new key.
pub(crate) async fn create(client: &impl GenericClient, key: &ApiKeyRecord) -> StoreResult<()> {
    let stmt = client
        .prepare_cached(
            "INSERT INTO api_keys (id, name, scope, hash, prefix, created_at_ms, revoked_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await
        .map_err(|e| map_err("preparing an api key insert", e))?;
    client
        .execute(
            &stmt,
            &[
                &key.id,
                &key.name,
                &key.scope,
                &key.hash,
                &key.prefix,
                &key.created_at_ms,
                &key.revoked_at_ms,
            ],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                key.already_stored()
            } else {
                map_err(format!("storing api key {}", key.id), e)
            }
        })?;
    Ok(())
}

/// The key with this hash.
pub(crate) async fn by_hash(
    client: &impl GenericClient,
    hash: &str,
) -> StoreResult<Option<ApiKeyRecord>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE hash = $1"
        ))
        .await
        .map_err(|e| map_err("preparing an api key lookup", e))?;
    client
        .query_opt(&stmt, &[&hash])
        .await
        .map_err(|e| map_err("looking up an api key", e))?
        .map(|r| api_key_from_row(&r))
        .transpose()
}

/// Every key, oldest first.
pub(crate) async fn list(client: &impl GenericClient) -> StoreResult<Vec<ApiKeyRecord>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created_at_ms, id"
        ))
        .await
        .map_err(|e| map_err("preparing the api key list", e))?;
    client
        .query(&stmt, &[])
        .await
        .map_err(|e| map_err("listing api keys", e))?
        .iter()
        .map(api_key_from_row)
        .collect()
}

/// Revokes a key (keeps the first revocation time).
pub(crate) async fn revoke(
    client: &impl GenericClient,
    id: &str,
    now_ms: i64,
) -> StoreResult<ApiKeyRecord> {
    let stmt = client
        .prepare_cached(&format!(
            "UPDATE api_keys SET revoked_at_ms = COALESCE(revoked_at_ms, $1) WHERE id = $2 \
             RETURNING {API_KEY_COLUMNS}"
        ))
        .await
        .map_err(|e| map_err("preparing a revocation", e))?;
    match client
        .query_opt(&stmt, &[&now_ms, &id])
        .await
        .map_err(|e| map_err(format!("revoking api key {id}"), e))?
    {
        Some(row) => api_key_from_row(&row),
        None => Err(StoreError::not_found("api key", id)),
    }
}

/// Records a signed-out console session (a second sign-out keeps the first
/// row).
pub(crate) async fn end_session(
    client: &impl GenericClient,
    id: &str,
    expires_at_ms: i64,
) -> StoreResult<()> {
    let stmt = client
        .prepare_cached(
            "INSERT INTO ended_sessions (id, expires_at_ms) VALUES ($1, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .await
        .map_err(|e| map_err("preparing a signed-out session insert", e))?;
    client
        .execute(&stmt, &[&id, &expires_at_ms])
        .await
        .map_err(|e| map_err("recording a signed-out session", e))?;
    Ok(())
}

/// Whether a console session was signed out.
pub(crate) async fn session_ended(client: &impl GenericClient, id: &str) -> StoreResult<bool> {
    let stmt = client
        .prepare_cached("SELECT 1 FROM ended_sessions WHERE id = $1")
        .await
        .map_err(|e| map_err("preparing a signed-out session lookup", e))?;
    Ok(client
        .query_opt(&stmt, &[&id])
        .await
        .map_err(|e| map_err("looking up a signed-out session", e))?
        .is_some())
}

/// Deletes signed-out sessions that expired before `now_ms`, at most `limit`.
pub(crate) async fn prune_ended_sessions(
    client: &impl GenericClient,
    now_ms: i64,
    limit: usize,
) -> StoreResult<u64> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let stmt = client
        .prepare_cached(
            "DELETE FROM ended_sessions WHERE id IN \
             (SELECT id FROM ended_sessions WHERE expires_at_ms < $1 LIMIT $2)",
        )
        .await
        .map_err(|e| map_err("preparing a signed-out session prune", e))?;
    client
        .execute(&stmt, &[&now_ms, &limit])
        .await
        .map_err(|e| map_err("pruning signed-out sessions", e))
}
