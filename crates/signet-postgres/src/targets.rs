//! Targets: registered receivers with their sealed secrets.

use deadpool_postgres::GenericClient;
use signet_store::{StoreError, StoreResult, TargetRecord, MESSAGE_QUEUE};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;

use crate::error_map::{is_unique_violation, map_err};
use crate::row::{target_from_row, TARGET_COLUMNS};

fn opt_i64(v: Option<u32>) -> Option<i64> {
    v.map(i64::from)
}

fn refused(t: &TargetRecord, e: tokio_postgres::Error, doing: &str) -> StoreError {
    if is_unique_violation(&e, "targets_name") {
        StoreError::Conflict(format!(
            "a target named {:?} already exists; pick another name",
            t.name
        ))
    } else if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(format!("target {} already exists", t.id))
    } else {
        map_err(format!("{doing} target {}", t.name), e)
    }
}

/// Stores a new target.
pub(crate) async fn create(client: &impl GenericClient, t: &TargetRecord) -> StoreResult<()> {
    let stmt = client
        .prepare_cached(&format!(
            "INSERT INTO targets ({TARGET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10, $9)"
        ))
        .await
        .map_err(|e| map_err("preparing a target insert", e))?;
    write(client, &stmt, t, Some(&t.created_at_ms))
        .await
        .map_err(|e| refused(t, e, "storing"))?;
    Ok(())
}

/// One target by a column (`id` or `name`).
pub(crate) async fn by(
    client: &impl GenericClient,
    column: By,
    value: &str,
) -> StoreResult<Option<TargetRecord>> {
    let sql = match column {
        By::Id => format!("SELECT {TARGET_COLUMNS} FROM targets WHERE id = $1"),
        By::Name => format!("SELECT {TARGET_COLUMNS} FROM targets WHERE name = $1"),
    };
    let stmt = client
        .prepare_cached(&sql)
        .await
        .map_err(|e| map_err("preparing a target lookup", e))?;
    client
        .query_opt(&stmt, &[&value])
        .await
        .map_err(|e| map_err(format!("reading target {value}"), e))?
        .map(|r| target_from_row(&r))
        .transpose()
}

/// Which column a lookup uses.
#[derive(Clone, Copy, Debug)]
pub(crate) enum By {
    /// The id.
    Id,
    /// The unique name.
    Name,
}

/// All targets, by name.
pub(crate) async fn list(client: &impl GenericClient) -> StoreResult<Vec<TargetRecord>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {TARGET_COLUMNS} FROM targets ORDER BY name"
        ))
        .await
        .map_err(|e| map_err("preparing the target list", e))?;
    client
        .query(&stmt, &[])
        .await
        .map_err(|e| map_err("listing targets", e))?
        .iter()
        .map(target_from_row)
        .collect()
}

/// Up to `limit` targets with an id after `after`, by id.
pub(crate) async fn after(
    client: &impl GenericClient,
    after: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<TargetRecord>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {TARGET_COLUMNS} FROM targets WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .await
        .map_err(|e| map_err("preparing a page of targets", e))?;
    client
        .query(&stmt, &[&after.unwrap_or(""), &i64::from(limit)])
        .await
        .map_err(|e| map_err("reading a page of targets", e))?
        .iter()
        .map(target_from_row)
        .collect()
}

/// Replaces a target's sealed secrets and fingerprint if the sealed
/// secrets are still `expected`; whether it did.
pub(crate) async fn swap_secrets(
    client: &impl GenericClient,
    id: &str,
    expected: &[u8],
    sealed: &[u8],
    fingerprint: &str,
) -> StoreResult<bool> {
    let stmt = client
        .prepare_cached(
            "UPDATE targets SET sealed_secrets = $3, secret_fingerprint = $4 \
             WHERE id = $1 AND sealed_secrets = $2",
        )
        .await
        .map_err(|e| map_err("preparing a target re-seal", e))?;
    let n = client
        .execute(&stmt, &[&id, &expected, &sealed, &fingerprint])
        .await
        .map_err(|e| map_err(format!("re-sealing the secrets of target {id}"), e))?;
    Ok(n == 1)
}

/// Replaces a target's fields (not `id`, not `created_at_ms`).
pub(crate) async fn update(client: &impl GenericClient, t: &TargetRecord) -> StoreResult<()> {
    let stmt = client
        .prepare_cached(
            "UPDATE targets SET name = $2, url_prefix = $3, sealed_secrets = $4, \
             secret_fingerprint = $5, rate_limit_per_s = $6, max_concurrency = $7, \
             https_only = $8, updated_at_ms = $9 WHERE id = $1",
        )
        .await
        .map_err(|e| map_err("preparing a target update", e))?;
    let n = write(client, &stmt, t, None)
        .await
        .map_err(|e| refused(t, e, "updating"))?;
    if n == 0 {
        return Err(StoreError::not_found("target", t.id.clone()));
    }
    Ok(())
}

/// Runs an insert or an update of `t`: `$1` to `$9` are every column but
/// `created_at_ms` (the id first, `updated_at_ms` last); an insert also
/// passes `created_at_ms`, as `$10`.
async fn write(
    client: &impl GenericClient,
    stmt: &Statement,
    t: &TargetRecord,
    created_at_ms: Option<&i64>,
) -> Result<u64, tokio_postgres::Error> {
    let rate_limit_per_s = opt_i64(t.rate_limit_per_s);
    let max_concurrency = opt_i64(t.max_concurrency);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &t.id,
        &t.name,
        &t.url_prefix,
        &t.sealed_secrets,
        &t.secret_fingerprint,
        &rate_limit_per_s,
        &max_concurrency,
        &t.https_only,
        &t.updated_at_ms,
    ];
    params.extend(created_at_ms.map(|c| c as &(dyn ToSql + Sync)));
    client.execute(stmt, &params).await
}

/// Deletes a target.
/// How many unfinished messages name target `id` (see
/// [`TargetRecord::message_marker`]).
pub(crate) async fn pending_messages(client: &impl GenericClient, id: &str) -> StoreResult<u64> {
    let stmt = client
        .prepare_cached(
            "SELECT COUNT(*) FROM tasks WHERE queue = $1 \
             AND state IN ('scheduled', 'available', 'running', 'retryable') \
             AND position($2::bytea in args) > 0",
        )
        .await
        .map_err(|e| map_err("preparing a count of a target's messages", e))?;
    let marker = TargetRecord::message_marker(id);
    let row = client
        .query_one(&stmt, &[&MESSAGE_QUEUE, &marker])
        .await
        .map_err(|e| map_err(format!("counting the messages of target {id}"), e))?;
    let n: i64 = row
        .try_get(0)
        .map_err(|e| map_err(format!("counting the messages of target {id}"), e))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) async fn delete(client: &impl GenericClient, id: &str) -> StoreResult<()> {
    let stmt = client
        .prepare_cached("DELETE FROM targets WHERE id = $1")
        .await
        .map_err(|e| map_err("preparing a target delete", e))?;
    let n = client
        .execute(&stmt, &[&id])
        .await
        .map_err(|e| map_err(format!("deleting target {id}"), e))?;
    if n == 0 {
        return Err(StoreError::not_found("target", id));
    }
    Ok(())
}
