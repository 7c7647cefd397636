//! Cron schedules: stored definitions, the due ones, and the
//! compare-and-set that moves a schedule past a due time exactly once.

use rusqlite::types::Value;
use rusqlite::{
    params, params_from_iter, Connection, ErrorCode, OptionalExtension, Row, Statement, ToSql,
};
use signet_store::{CatchUp, ScheduleRecord, StoreError, StoreResult};

use crate::error_map::map_err;
use crate::row::{collect_rows, column, corrupt};

const SCHEDULE_COLUMNS: &str = "id, name, cron, timezone, payload, catch_up, paused, \
     next_fire_at_ms, last_fired_at_ms, created_at_ms, updated_at_ms";

/// Due schedules, earliest first: `?1` now, `?2` limit. Its `WHERE` matches
/// the partial index `schedules_due`.
pub(crate) fn due_sql() -> String {
    format!(
        "SELECT {SCHEDULE_COLUMNS} FROM schedules \
         WHERE paused = 0 AND next_fire_at_ms IS NOT NULL AND next_fire_at_ms <= ?1 \
         ORDER BY next_fire_at_ms, id LIMIT ?2"
    )
}

fn id_by_name(conn: &Connection, name: &str) -> StoreResult<Option<String>> {
    conn.prepare_cached("SELECT id FROM schedules WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
        .map_err(|e| map_err(format!("looking up schedule {name}"), e))
}

fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "a schedule named {name:?} already exists; choose another name or update that schedule"
    ))
}

/// Stores a new schedule.
pub(crate) fn create(conn: &Connection, x: &ScheduleRecord) -> StoreResult<()> {
    if id_by_name(conn, &x.name)?.is_some() {
        return Err(name_taken(&x.name));
    }
    conn.prepare_cached(&format!(
        "INSERT INTO schedules ({SCHEDULE_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?11, ?10)"
    ))
    .and_then(|mut s| write(&mut s, x, Some(x.created_at_ms)))
    .map_err(|e| {
        if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
            StoreError::Conflict(format!(
                "schedule {} was not stored: a schedule with this id already exists; generate a new id",
                x.id
            ))
        } else {
            map_err(format!("storing schedule {}", x.name), e)
        }
    })?;
    Ok(())
}

/// Replaces every field but `id` and `created_at_ms`.
pub(crate) fn update(conn: &Connection, x: &ScheduleRecord) -> StoreResult<()> {
    if id_by_name(conn, &x.name)?.is_some_and(|id| id != x.id) {
        return Err(name_taken(&x.name));
    }
    let changed = conn
        .prepare_cached(
            "UPDATE schedules SET name = ?2, cron = ?3, timezone = ?4, payload = ?5, \
             catch_up = ?6, paused = ?7, next_fire_at_ms = ?8, last_fired_at_ms = ?9, \
             updated_at_ms = ?10 WHERE id = ?1",
        )
        .and_then(|mut s| write(&mut s, x, None))
        .map_err(|e| map_err(format!("updating schedule {}", x.id), e))?;
    if changed == 0 {
        return Err(StoreError::not_found("schedule", x.id.clone()));
    }
    Ok(())
}

/// Runs an insert or an update of `x`: `?1` to `?10` are every column but
/// `created_at_ms` (the id first, `updated_at_ms` last); an insert also
/// passes `created_at_ms`, as `?11`.
fn write(
    stmt: &mut Statement<'_>,
    x: &ScheduleRecord,
    created_at_ms: Option<i64>,
) -> rusqlite::Result<usize> {
    let catch_up = x.catch_up.as_str();
    let mut params: Vec<&dyn ToSql> = vec![
        &x.id,
        &x.name,
        &x.cron,
        &x.timezone,
        &x.payload,
        &catch_up,
        &x.paused,
        &x.next_fire_at_ms,
        &x.last_fired_at_ms,
        &x.updated_at_ms,
    ];
    if let Some(created_at_ms) = &created_at_ms {
        params.push(created_at_ms);
    }
    stmt.execute(&*params)
}

/// Deletes a schedule.
pub(crate) fn delete(conn: &Connection, id: &str) -> StoreResult<()> {
    let changed = conn
        .prepare_cached("DELETE FROM schedules WHERE id = ?1")
        .and_then(|mut s| s.execute([id]))
        .map_err(|e| map_err(format!("deleting schedule {id}"), e))?;
    if changed == 0 {
        return Err(StoreError::not_found("schedule", id));
    }
    Ok(())
}

/// Moves a schedule past `fired_at_ms` if that is still its next due time.
pub(crate) fn advance(
    conn: &Connection,
    id: &str,
    fired_at_ms: i64,
    next_ms: Option<i64>,
    now_ms: i64,
) -> StoreResult<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE schedules SET last_fired_at_ms = ?2, next_fire_at_ms = ?3, \
             updated_at_ms = ?4 WHERE id = ?1 AND next_fire_at_ms = ?2",
        )
        .and_then(|mut s| s.execute(params![id, fired_at_ms, next_ms, now_ms]))
        .map_err(|e| map_err(format!("advancing schedule {id}"), e))?;
    Ok(changed > 0)
}

fn select(
    conn: &Connection,
    sql: &str,
    args: Vec<Value>,
    context: &str,
) -> StoreResult<Vec<ScheduleRecord>> {
    collect_rows(conn, sql, params_from_iter(args), context, from_row)
}

/// One schedule by id.
pub(crate) fn by_id(conn: &Connection, id: &str) -> StoreResult<Option<ScheduleRecord>> {
    let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = ?1");
    Ok(select(
        conn,
        &sql,
        vec![Value::Text(id.to_owned())],
        "reading a schedule",
    )?
    .pop())
}

/// One schedule by name.
pub(crate) fn by_name(conn: &Connection, name: &str) -> StoreResult<Option<ScheduleRecord>> {
    let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE name = ?1");
    Ok(select(
        conn,
        &sql,
        vec![Value::Text(name.to_owned())],
        "reading a schedule",
    )?
    .pop())
}

/// Every schedule, by name.
pub(crate) fn list(conn: &Connection) -> StoreResult<Vec<ScheduleRecord>> {
    let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY name");
    select(conn, &sql, Vec::new(), "listing schedules")
}

/// Schedules due by `now_ms`, earliest first.
pub(crate) fn due(
    conn: &Connection,
    now_ms: i64,
    limit: usize,
) -> StoreResult<Vec<ScheduleRecord>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    select(
        conn,
        &due_sql(),
        vec![Value::Integer(now_ms), Value::Integer(limit)],
        "finding due schedules",
    )
}

fn from_row(row: &Row<'_>) -> StoreResult<ScheduleRecord> {
    const WHAT: &str = "schedule";
    let id: String = column(row, 0, WHAT, "(unknown id)", "id")?;
    let id_ = id.as_str();
    let catch_up: String = column(row, 5, WHAT, id_, "catch_up")?;
    Ok(ScheduleRecord {
        name: column(row, 1, WHAT, id_, "name")?,
        cron: column(row, 2, WHAT, id_, "cron")?,
        timezone: column(row, 3, WHAT, id_, "timezone")?,
        payload: column(row, 4, WHAT, id_, "payload")?,
        catch_up: CatchUp::parse(&catch_up).map_err(|e| corrupt(WHAT, id_, "catch_up", e))?,
        paused: column(row, 6, WHAT, id_, "paused")?,
        next_fire_at_ms: column(row, 7, WHAT, id_, "next_fire_at_ms")?,
        last_fired_at_ms: column(row, 8, WHAT, id_, "last_fired_at_ms")?,
        created_at_ms: column(row, 9, WHAT, id_, "created_at_ms")?,
        updated_at_ms: column(row, 10, WHAT, id_, "updated_at_ms")?,
        id,
    })
}
