//! Push bindings: queues bound to an HTTP endpoint.

use deadpool_postgres::GenericClient;
use signet_store::{PushBinding, StoreError, StoreResult};

use crate::error_map::map_err;
use crate::row::{push_binding_from_row, PUSH_BINDING_COLUMNS};

/// Binds a queue or replaces its binding, keeping the first creation time.
pub(crate) async fn put(client: &impl GenericClient, b: &PushBinding) -> StoreResult<PushBinding> {
    let stmt = client
        .prepare_cached(&format!(
            "INSERT INTO push_bindings ({PUSH_BINDING_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (queue) DO UPDATE SET url = excluded.url, \
             target_id = excluded.target_id, timeout_ms = excluded.timeout_ms, \
             concurrency = excluded.concurrency, \
             require_signed_response = excluded.require_signed_response, \
             updated_at_ms = excluded.updated_at_ms \
             RETURNING {PUSH_BINDING_COLUMNS}"
        ))
        .await
        .map_err(|e| map_err("preparing a push binding", e))?;
    let row = client
        .query_one(
            &stmt,
            &[
                &b.queue,
                &b.url,
                &b.target_id,
                &i64::from(b.timeout_ms),
                &i64::from(b.concurrency),
                &b.require_signed_response,
                &b.created_at_ms,
                &b.updated_at_ms,
            ],
        )
        .await
        .map_err(|e| map_err(format!("binding queue {}", b.queue), e))?;
    push_binding_from_row(&row)
}

/// The binding of `queue`.
pub(crate) async fn by_queue(
    client: &impl GenericClient,
    queue: &str,
) -> StoreResult<Option<PushBinding>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {PUSH_BINDING_COLUMNS} FROM push_bindings WHERE queue = $1"
        ))
        .await
        .map_err(|e| map_err("preparing a push binding lookup", e))?;
    client
        .query_opt(&stmt, &[&queue])
        .await
        .map_err(|e| map_err(format!("reading the push binding of {queue}"), e))?
        .map(|r| push_binding_from_row(&r))
        .transpose()
}

/// Every binding, by queue.
pub(crate) async fn list(client: &impl GenericClient) -> StoreResult<Vec<PushBinding>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {PUSH_BINDING_COLUMNS} FROM push_bindings ORDER BY queue"
        ))
        .await
        .map_err(|e| map_err("preparing the push binding list", e))?;
    client
        .query(&stmt, &[])
        .await
        .map_err(|e| map_err("listing push bindings", e))?
        .iter()
        .map(push_binding_from_row)
        .collect()
}

/// Unbinds `queue`.
pub(crate) async fn delete(client: &impl GenericClient, queue: &str) -> StoreResult<()> {
    let stmt = client
        .prepare_cached("DELETE FROM push_bindings WHERE queue = $1")
        .await
        .map_err(|e| map_err("preparing an unbind", e))?;
    let n = client
        .execute(&stmt, &[&queue])
        .await
        .map_err(|e| map_err(format!("unbinding queue {queue}"), e))?;
    if n == 0 {
        return Err(StoreError::not_found("push binding", queue));
    }
    Ok(())
}
