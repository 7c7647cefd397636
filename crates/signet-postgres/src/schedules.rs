//! Cron schedules, and the compare-and-set that makes each due time fire
//! once across nodes.

use deadpool_postgres::GenericClient;
use signet_store::{ScheduleRecord, StoreError, StoreResult};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;

use crate::error_map::{is_unique_violation, map_err};
use crate::row::{schedule_from_row, SCHEDULE_COLUMNS};
use crate::targets::By;

fn refused(s: &ScheduleRecord, e: tokio_postgres::Error, doing: &str) -> StoreError {
    if is_unique_violation(&e, "schedules_name") {
        StoreError::Conflict(format!(
            "a schedule named {:?} already exists; pick another name",
            s.name
        ))
    } else if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(format!("schedule {} already exists", s.id))
    } else {
        map_err(format!("{doing} schedule {}", s.name), e)
    }
}

/// Stores a new schedule.
pub(crate) async fn create(client: &impl GenericClient, s: &ScheduleRecord) -> StoreResult<()> {
    let stmt = client
        .prepare_cached(&format!(
            "INSERT INTO schedules ({SCHEDULE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $11, $10)"
        ))
        .await
        .map_err(|e| map_err("preparing a schedule insert", e))?;
    write(client, &stmt, s, Some(&s.created_at_ms))
        .await
        .map_err(|e| refused(s, e, "storing"))?;
    Ok(())
}

/// One schedule by id or name.
pub(crate) async fn by(
    client: &impl GenericClient,
    column: By,
    value: &str,
) -> StoreResult<Option<ScheduleRecord>> {
    let sql = match column {
        By::Id => format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = $1"),
        By::Name => format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE name = $1"),
    };
    let stmt = client
        .prepare_cached(&sql)
        .await
        .map_err(|e| map_err("preparing a schedule lookup", e))?;
    client
        .query_opt(&stmt, &[&value])
        .await
        .map_err(|e| map_err(format!("reading schedule {value}"), e))?
        .map(|r| schedule_from_row(&r))
        .transpose()
}

/// All schedules, by name.
pub(crate) async fn list(client: &impl GenericClient) -> StoreResult<Vec<ScheduleRecord>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY name"
        ))
        .await
        .map_err(|e| map_err("preparing the schedule list", e))?;
    client
        .query(&stmt, &[])
        .await
        .map_err(|e| map_err("listing schedules", e))?
        .iter()
        .map(schedule_from_row)
        .collect()
}

/// Replaces a schedule's fields (not `id`, not `created_at_ms`).
pub(crate) async fn update(client: &impl GenericClient, s: &ScheduleRecord) -> StoreResult<()> {
    let stmt = client
        .prepare_cached(
            "UPDATE schedules SET name = $2, cron = $3, timezone = $4, payload = $5, \
             catch_up = $6, paused = $7, next_fire_at_ms = $8, last_fired_at_ms = $9, \
             updated_at_ms = $10 WHERE id = $1",
        )
        .await
        .map_err(|e| map_err("preparing a schedule update", e))?;
    let n = write(client, &stmt, s, None)
        .await
        .map_err(|e| refused(s, e, "updating"))?;
    if n == 0 {
        return Err(StoreError::not_found("schedule", s.id.clone()));
    }
    Ok(())
}

/// Runs an insert or an update of `s`: `$1` to `$10` are every column but
/// `created_at_ms` (the id first, `updated_at_ms` last); an insert also
/// passes `created_at_ms`, as `$11`.
async fn write(
    client: &impl GenericClient,
    stmt: &Statement,
    s: &ScheduleRecord,
    created_at_ms: Option<&i64>,
) -> Result<u64, tokio_postgres::Error> {
    let catch_up = s.catch_up.as_str();
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &s.id,
        &s.name,
        &s.cron,
        &s.timezone,
        &s.payload,
        &catch_up,
        &s.paused,
        &s.next_fire_at_ms,
        &s.last_fired_at_ms,
        &s.updated_at_ms,
    ];
    params.extend(created_at_ms.map(|c| c as &(dyn ToSql + Sync)));
    client.execute(stmt, &params).await
}

/// Deletes a schedule.
pub(crate) async fn delete(client: &impl GenericClient, id: &str) -> StoreResult<()> {
    let stmt = client
        .prepare_cached("DELETE FROM schedules WHERE id = $1")
        .await
        .map_err(|e| map_err("preparing a schedule delete", e))?;
    let n = client
        .execute(&stmt, &[&id])
        .await
        .map_err(|e| map_err(format!("deleting schedule {id}"), e))?;
    if n == 0 {
        return Err(StoreError::not_found("schedule", id));
    }
    Ok(())
}

/// Schedules due at `now_ms`, earliest first.
pub(crate) async fn due(
    client: &impl GenericClient,
    now_ms: i64,
    limit: usize,
) -> StoreResult<Vec<ScheduleRecord>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedules \
             WHERE NOT paused AND next_fire_at_ms IS NOT NULL AND next_fire_at_ms <= $1 \
             ORDER BY next_fire_at_ms, id LIMIT $2"
        ))
        .await
        .map_err(|e| map_err("preparing the due schedules", e))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    client
        .query(&stmt, &[&now_ms, &limit])
        .await
        .map_err(|e| map_err("listing due schedules", e))?
        .iter()
        .map(schedule_from_row)
        .collect()
}

/// Compare-and-set: moves a schedule past `fired_at_ms` only if that is
/// still its next due time. The row lock of the `UPDATE` orders concurrent
/// callers; the second one finds the condition false and moves nothing.
pub(crate) async fn advance(
    client: &impl GenericClient,
    id: &str,
    fired_at_ms: i64,
    next_ms: Option<i64>,
    now_ms: i64,
) -> StoreResult<bool> {
    let stmt = client
        .prepare_cached(
            "UPDATE schedules SET last_fired_at_ms = $2, next_fire_at_ms = $3, updated_at_ms = $4 \
             WHERE id = $1 AND next_fire_at_ms = $2",
        )
        .await
        .map_err(|e| map_err("preparing a schedule advance", e))?;
    let n = client
        .execute(&stmt, &[&id, &fired_at_ms, &next_ms, &now_ms])
        .await
        .map_err(|e| map_err(format!("advancing schedule {id}"), e))?;
    Ok(n > 0)
}
