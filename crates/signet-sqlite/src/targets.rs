//! Targets: registered receivers with their sealed secrets.

use rusqlite::{params_from_iter, Connection, ErrorCode, OptionalExtension, Row, Statement, ToSql};
use signet_store::{StoreError, StoreResult, TargetRecord, MESSAGE_QUEUE};

use crate::error_map::map_err;
use crate::row::{collect_rows, column, corrupt};

const TARGET_COLUMNS: &str = "id, name, url_prefix, sealed_secrets, secret_fingerprint, \
     rate_limit_per_s, max_concurrency, https_only, created_at_ms, updated_at_ms";

/// The id of the target named `name`, if any.
fn id_by_name(conn: &Connection, name: &str) -> StoreResult<Option<String>> {
    conn.prepare_cached("SELECT id FROM targets WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
        .map_err(|e| map_err(format!("looking up target {name}"), e))
}

fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "a target named {name:?} already exists; choose another name or update that target"
    ))
}

/// Stores a new target.
pub(crate) fn create(conn: &Connection, t: &TargetRecord) -> StoreResult<()> {
    if id_by_name(conn, &t.name)?.is_some() {
        return Err(name_taken(&t.name));
    }
    conn.prepare_cached(&format!(
        "INSERT INTO targets ({TARGET_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?10, ?9)"
    ))
    .and_then(|mut s| write(&mut s, t, Some(t.created_at_ms)))
    .map_err(|e| {
        if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
            StoreError::Conflict(format!(
                "target {} was not stored: a target with this id already exists; generate a new id",
                t.id
            ))
        } else {
            map_err(format!("storing target {}", t.name), e)
        }
    })?;
    Ok(())
}

/// Replaces every field but `id` and `created_at_ms`.
pub(crate) fn update(conn: &Connection, t: &TargetRecord) -> StoreResult<()> {
    if id_by_name(conn, &t.name)?.is_some_and(|id| id != t.id) {
        return Err(name_taken(&t.name));
    }
    let changed = conn
        .prepare_cached(
            "UPDATE targets SET name = ?2, url_prefix = ?3, sealed_secrets = ?4, \
             secret_fingerprint = ?5, rate_limit_per_s = ?6, max_concurrency = ?7, \
             https_only = ?8, updated_at_ms = ?9 WHERE id = ?1",
        )
        .and_then(|mut s| write(&mut s, t, None))
        .map_err(|e| map_err(format!("updating target {}", t.id), e))?;
    if changed == 0 {
        return Err(StoreError::not_found("target", t.id.clone()));
    }
    Ok(())
}

/// Runs an insert or an update of `t`: `?1` to `?9` are every column but
/// `created_at_ms` (the id first, `updated_at_ms` last); an insert also
/// passes `created_at_ms`, as `?10`.
fn write(
    stmt: &mut Statement<'_>,
    t: &TargetRecord,
    created_at_ms: Option<i64>,
) -> rusqlite::Result<usize> {
    let mut params: Vec<&dyn ToSql> = vec![
        &t.id,
        &t.name,
        &t.url_prefix,
        &t.sealed_secrets,
        &t.secret_fingerprint,
        &t.rate_limit_per_s,
        &t.max_concurrency,
        &t.https_only,
        &t.updated_at_ms,
    ];
    if let Some(created_at_ms) = &created_at_ms {
        params.push(created_at_ms);
    }
    stmt.execute(&*params)
}

/// Up to `limit` targets with an id after `after`, by id.
pub(crate) fn after(
    conn: &Connection,
    after: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<TargetRecord>> {
    const CONTEXT: &str = "reading a page of targets";
    collect_rows(
        conn,
        &format!("SELECT {TARGET_COLUMNS} FROM targets WHERE id > ?1 ORDER BY id LIMIT ?2"),
        rusqlite::params![after.unwrap_or(""), i64::from(limit)],
        CONTEXT,
        from_row,
    )
}

/// Replaces a target's sealed secrets and fingerprint if the sealed
/// secrets are still `expected`; whether it did.
pub(crate) fn swap_secrets(
    conn: &Connection,
    id: &str,
    expected: &[u8],
    sealed: &[u8],
    fingerprint: &str,
) -> StoreResult<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE targets SET sealed_secrets = ?3, secret_fingerprint = ?4 \
             WHERE id = ?1 AND sealed_secrets = ?2",
        )
        .and_then(|mut s| s.execute(rusqlite::params![id, expected, sealed, fingerprint]))
        .map_err(|e| map_err(format!("re-sealing the secrets of target {id}"), e))?;
    Ok(changed == 1)
}

/// Deletes a target.
pub(crate) fn delete(conn: &Connection, id: &str) -> StoreResult<()> {
    let changed = conn
        .prepare_cached("DELETE FROM targets WHERE id = ?1")
        .and_then(|mut s| s.execute([id]))
        .map_err(|e| map_err(format!("deleting target {id}"), e))?;
    if changed == 0 {
        return Err(StoreError::not_found("target", id));
    }
    Ok(())
}

/// How many unfinished messages name target `id` (see
/// [`TargetRecord::message_marker`]).
pub(crate) fn pending_messages(conn: &Connection, id: &str) -> StoreResult<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM tasks WHERE queue = ?1 \
             AND state IN ('scheduled', 'available', 'running', 'retryable') \
             AND instr(args, ?2) > 0",
        )
        .and_then(|mut s| {
            s.query_row(
                rusqlite::params![MESSAGE_QUEUE, TargetRecord::message_marker(id)],
                |r| r.get(0),
            )
        })
        .map_err(|e| map_err(format!("counting the messages of target {id}"), e))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn select(
    conn: &Connection,
    filter: &str,
    arg: Option<&str>,
    context: &str,
) -> StoreResult<Vec<TargetRecord>> {
    let sql = format!("SELECT {TARGET_COLUMNS} FROM targets {filter}");
    collect_rows(conn, &sql, params_from_iter(arg), context, from_row)
}

/// One target by id.
pub(crate) fn by_id(conn: &Connection, id: &str) -> StoreResult<Option<TargetRecord>> {
    Ok(select(conn, "WHERE id = ?1", Some(id), "reading a target")?.pop())
}

/// One target by name.
pub(crate) fn by_name(conn: &Connection, name: &str) -> StoreResult<Option<TargetRecord>> {
    Ok(select(conn, "WHERE name = ?1", Some(name), "reading a target")?.pop())
}

/// Every target, by name.
pub(crate) fn list(conn: &Connection) -> StoreResult<Vec<TargetRecord>> {
    select(conn, "ORDER BY name", None, "listing targets")
}

fn from_row(row: &Row<'_>) -> StoreResult<TargetRecord> {
    const WHAT: &str = "target";
    let id: String = column(row, 0, WHAT, "(unknown id)", "id")?;
    let id_ = id.as_str();
    let limit = |idx: usize, name: &str| -> StoreResult<Option<u32>> {
        column::<Option<i64>>(row, idx, WHAT, id_, name)?
            .map(u32::try_from)
            .transpose()
            .map_err(|e| corrupt(WHAT, id_, name, e))
    };
    Ok(TargetRecord {
        name: column(row, 1, WHAT, id_, "name")?,
        url_prefix: column(row, 2, WHAT, id_, "url_prefix")?,
        sealed_secrets: column(row, 3, WHAT, id_, "sealed_secrets")?,
        secret_fingerprint: column(row, 4, WHAT, id_, "secret_fingerprint")?,
        rate_limit_per_s: limit(5, "rate_limit_per_s")?,
        max_concurrency: limit(6, "max_concurrency")?,
        https_only: column(row, 7, WHAT, id_, "https_only")?,
        created_at_ms: column(row, 8, WHAT, id_, "created_at_ms")?,
        updated_at_ms: column(row, 9, WHAT, id_, "updated_at_ms")?,
        id,
    })
}
