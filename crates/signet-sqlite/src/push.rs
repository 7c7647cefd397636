//! Push bindings: queues bound to an HTTP endpoint.

use rusqlite::{Connection, OptionalExtension, Row};
use signet_store::{PushBinding, StoreError, StoreResult};

use crate::error_map::map_err;
use crate::row::{collect_rows, column, corrupt};

const COLUMNS: &str = "queue, url, target_id, timeout_ms, concurrency, \
     require_signed_response, created_at_ms, updated_at_ms";

/// Binds a queue or replaces its binding, keeping the first creation time.
pub(crate) fn put(conn: &Connection, b: &PushBinding) -> StoreResult<PushBinding> {
    let context = || format!("binding queue {}", b.queue);
    conn.prepare_cached(&format!(
        "INSERT INTO push_bindings ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (queue) DO UPDATE SET url = excluded.url, target_id = excluded.target_id, \
         timeout_ms = excluded.timeout_ms, concurrency = excluded.concurrency, \
         require_signed_response = excluded.require_signed_response, \
         updated_at_ms = excluded.updated_at_ms"
    ))
    .and_then(|mut s| {
        s.execute(rusqlite::params![
            b.queue,
            b.url,
            b.target_id,
            b.timeout_ms,
            b.concurrency,
            b.require_signed_response,
            b.created_at_ms,
            b.updated_at_ms
        ])
    })
    .map_err(|e| map_err(context(), e))?;
    by_queue(conn, &b.queue)?.ok_or_else(|| {
        StoreError::backend(context(), "the binding was not there after it was written")
    })
}

/// The binding of `queue`.
pub(crate) fn by_queue(conn: &Connection, queue: &str) -> StoreResult<Option<PushBinding>> {
    let context = "reading a push binding";
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM push_bindings WHERE queue = ?1"
    ))
    .and_then(|mut s| s.query_row([queue], |r| Ok(from_row(r))).optional())
    .map_err(|e| map_err(context, e))?
    .transpose()
}

/// Every binding, by queue.
pub(crate) fn list(conn: &Connection) -> StoreResult<Vec<PushBinding>> {
    let context = "listing push bindings";
    let sql = format!("SELECT {COLUMNS} FROM push_bindings ORDER BY queue");
    collect_rows(conn, &sql, [], context, from_row)
}

/// Unbinds `queue`.
pub(crate) fn delete(conn: &Connection, queue: &str) -> StoreResult<()> {
    let changed = conn
        .prepare_cached("DELETE FROM push_bindings WHERE queue = ?1")
        .and_then(|mut s| s.execute([queue]))
        .map_err(|e| map_err(format!("unbinding queue {queue}"), e))?;
    if changed == 0 {
        return Err(StoreError::not_found("push binding", queue));
    }
    Ok(())
}

fn from_row(row: &Row<'_>) -> StoreResult<PushBinding> {
    const WHAT: &str = "push binding";
    let queue: String = column(row, 0, WHAT, "(unknown queue)", "queue")?;
    let q = queue.as_str();
    let small = |idx: usize, name: &str| -> StoreResult<u32> {
        u32::try_from(column::<i64>(row, idx, WHAT, q, name)?)
            .map_err(|e| corrupt(WHAT, q, name, e))
    };
    Ok(PushBinding {
        url: column(row, 1, WHAT, q, "url")?,
        target_id: column(row, 2, WHAT, q, "target_id")?,
        timeout_ms: small(3, "timeout_ms")?,
        concurrency: small(4, "concurrency")?,
        require_signed_response: column(row, 5, WHAT, q, "require_signed_response")?,
        created_at_ms: column(row, 6, WHAT, q, "created_at_ms")?,
        updated_at_ms: column(row, 7, WHAT, q, "updated_at_ms")?,
        queue,
    })
}
