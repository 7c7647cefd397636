//! Reads: lookups, listings, counts. Plain functions on a connection, run
//! by the reader pool (or the writer, for in-memory databases and for the
//! reads a write needs).

use rusqlite::types::{FromSql, Value};
use rusqlite::{params_from_iter, Connection, OptionalExtension, Statement};
use signet_store::paging::{dead_page, parse_dead_cursor, parse_task_cursor, task_page};
use signet_store::{
    page_size, Activity, ActivityWindow, DeadFilter, KeyUsage, Page, QueueCounts, StoreError,
    StoreResult, TaskFilter, TaskRow, MESSAGE_QUEUE,
};

use crate::error_map::map_err;
use crate::row::{collect_rows, task_from_row, TASK_COLUMNS};
use crate::tasks::CLAIMABLE;

/// One task by id.
pub(crate) fn task_by_id(conn: &Connection, id: &str) -> StoreResult<Option<TaskRow>> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1");
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(|e| map_err("preparing a task lookup", e))?;
    let mut rows = stmt
        .query([id])
        .map_err(|e| map_err(format!("reading task {id}"), e))?;
    match rows
        .next()
        .map_err(|e| map_err(format!("reading task {id}"), e))?
    {
        Some(row) => task_from_row(row).map(Some),
        None => Ok(None),
    }
}

/// The tasks of these ids that exist, in one statement (the ids go in as
/// one JSON array).
pub(crate) fn tasks_by_id(conn: &Connection, ids: &[String]) -> StoreResult<Vec<TaskRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = serde_json::to_string(ids)
        .map_err(|e| StoreError::backend("listing task ids", e.to_string()))?;
    let sql =
        format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id IN (SELECT value FROM json_each(?1))");
    collect_rows(conn, &sql, [list], "reading tasks by id", task_from_row)
}

/// The state of a task, if it exists.
pub(crate) fn task_state(conn: &Connection, id: &str) -> StoreResult<Option<String>> {
    conn.prepare_cached("SELECT state FROM tasks WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(|e| map_err(format!("reading the state of task {id}"), e))
}

fn collect(
    conn: &Connection,
    sql: &str,
    args: Vec<Value>,
    context: &str,
) -> StoreResult<Vec<TaskRow>> {
    collect_rows(conn, sql, params_from_iter(args), context, task_from_row)
}

/// Tasks newest first by id (UUIDv7: creation order), paged by id;
/// Signet's own queue only when named or asked for (see [`TaskFilter`]).
///
/// Every shape walks the primary key backwards and stops after the page:
/// no index of its own, so enqueueing pays nothing for the listing.
/// `task_…` ids sort after `msg_…` ones, so the default listing (without
/// Signet's own queue) reads the task rows first and stops there.
pub(crate) fn list_tasks(conn: &Connection, filter: &TaskFilter) -> StoreResult<Page<TaskRow>> {
    let limit = page_size(filter.limit);
    let cursor = filter
        .cursor
        .as_deref()
        .map(parse_task_cursor)
        .transpose()?;
    let mut args = Vec::new();
    let sql = match (&filter.queue, filter.include_internal) {
        (Some(q), _) => {
            args.push(Value::Text(q.clone()));
            newest_tasks("queue = ?", filter, cursor.as_deref(), limit, &mut args)
        }
        (None, false) => newest_tasks(USER_QUEUES, filter, cursor.as_deref(), limit, &mut args),
        (None, true) => newest_tasks("1 = 1", filter, cursor.as_deref(), limit, &mut args),
    };
    let items = collect(conn, &sql, args, "listing tasks")?;
    Ok(task_page(items, limit))
}

/// The rows of every queue but Signet's own ([`MESSAGE_QUEUE`]).
const USER_QUEUES: &str = "queue <> 'signet:messages'";

/// One page (plus one row) of the tasks matching `queue_sql`, `filter`'s
/// state and `cursor`, newest first; pushes its arguments after any that
/// `queue_sql` takes.
fn newest_tasks(
    queue_sql: &str,
    filter: &TaskFilter,
    cursor: Option<&str>,
    limit: usize,
    args: &mut Vec<Value>,
) -> String {
    let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE {queue_sql}");
    if let Some(s) = filter.state {
        sql.push_str(" AND state = ?");
        args.push(Value::Text(s.as_str().to_owned()));
    }
    if let Some(id) = cursor {
        sql.push_str(" AND id < ?");
        args.push(Value::Text(id.to_owned()));
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    args.push(Value::Integer(limit as i64 + 1));
    sql
}

/// The `WHERE` clause of a dead-letter filter (cursor excluded).
fn dead_where(filter: &DeadFilter, args: &mut Vec<Value>) -> String {
    // `finished_at_ms IS NOT NULL` lets SQLite use the partial index.
    let mut sql = String::from("state = 'dead' AND finished_at_ms IS NOT NULL");
    if let Some(q) = &filter.queue {
        sql.push_str(" AND queue = ?");
        args.push(Value::Text(q.clone()));
    }
    if let Some(r) = filter.reason {
        sql.push_str(" AND dead_reason = ?");
        args.push(Value::Text(r.as_str().to_owned()));
    }
    if let Some(since) = filter.since_ms {
        sql.push_str(" AND finished_at_ms >= ?");
        args.push(Value::Integer(since));
    }
    if let Some(until) = filter.until_ms {
        sql.push_str(" AND finished_at_ms < ?");
        args.push(Value::Integer(until));
    }
    sql
}

/// Dead letters, newest first, paged by `(finished_at, id)`.
pub(crate) fn list_dead(conn: &Connection, filter: &DeadFilter) -> StoreResult<Page<TaskRow>> {
    let limit = page_size(filter.limit);
    let mut args = Vec::new();
    let mut sql = format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE {}",
        dead_where(filter, &mut args)
    );
    if let Some(c) = &filter.cursor {
        let (ms, id) = parse_dead_cursor(c)?;
        sql.push_str(" AND (finished_at_ms < ? OR (finished_at_ms = ? AND id < ?))");
        args.extend([Value::Integer(ms), Value::Integer(ms), Value::Text(id)]);
    }
    sql.push_str(" ORDER BY finished_at_ms DESC, id DESC LIMIT ?");
    args.push(Value::Integer(limit as i64 + 1));
    let items = collect(conn, &sql, args, "listing dead letters")?;
    Ok(dead_page(items, limit))
}

/// Ids of every dead letter matching `filter` (limit and cursor ignored).
pub(crate) fn dead_ids(conn: &Connection, filter: &DeadFilter) -> StoreResult<Vec<String>> {
    let mut args = Vec::new();
    let sql = format!(
        "SELECT id FROM tasks WHERE {} ORDER BY finished_at_ms DESC, id DESC",
        dead_where(filter, &mut args)
    );
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(|e| map_err("preparing a dead-letter selection", e))?;
    let ids = stmt
        .query_map(params_from_iter(args), |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| map_err("selecting dead letters", e))?;
    Ok(ids)
}

/// Counts per queue and state: one covering index scan per group of states
/// (see the schema), never a scan of the table.
pub(crate) fn counts_sql() -> String {
    format!(
        "SELECT queue, state, COUNT(*) FROM tasks WHERE {CLAIMABLE} GROUP BY queue, state \
         UNION ALL \
         SELECT queue, 'running', COUNT(*) FROM tasks WHERE state = 'running' GROUP BY queue \
         UNION ALL \
         SELECT queue, state, COUNT(*) FROM tasks \
         WHERE finished_at_ms IS NOT NULL GROUP BY queue, state"
    )
}

/// Tasks per queue and state.
pub(crate) fn counts(conn: &Connection) -> StoreResult<Vec<QueueCounts>> {
    let mut stmt = conn
        .prepare_cached(&counts_sql())
        .map_err(|e| map_err("preparing counts", e))?;
    QueueCounts::from_counted(counted(&mut stmt, "counting tasks")?)
}

/// Recent activity in buckets (see [`Store::activity`](signet_store::Store::activity)):
/// succeeded tasks and signature refusals come off the `tasks_finished`
/// index (state, then `finished_at_ms` in the window); failed attempts off
/// the history's attempt events in the window, joined to their task for its
/// queue.
const ACTIVITY_SQL: &str = "SELECT 'succeeded', queue, (finished_at_ms - ?1) / ?3 AS b, COUNT(*) \
     FROM tasks WHERE state = 'succeeded' AND finished_at_ms >= ?1 AND finished_at_ms < ?2 \
     GROUP BY queue, b \
     UNION ALL \
     SELECT 'failed', t.queue, (e.at_ms - ?1) / ?3 AS b, COUNT(*) \
     FROM task_events AS e JOIN tasks AS t ON t.id = e.task_id \
     WHERE e.kind = 'attempt' AND e.outcome IN ('retry', 'dead', 'lease-expired') \
     AND e.at_ms >= ?1 AND e.at_ms < ?2 GROUP BY t.queue, b \
     UNION ALL \
     SELECT 'signature', o, b, COUNT(*) FROM ( \
     SELECT CASE WHEN instr(dead_detail, ':') > 0 \
     THEN substr(dead_detail, 1, instr(dead_detail, ':') - 1) \
     ELSE COALESCE(dead_detail, '') END AS o, (finished_at_ms - ?1) / ?3 AS b \
     FROM tasks WHERE state = 'dead' AND finished_at_ms >= ?1 AND finished_at_ms < ?2 \
     AND dead_reason = 'signature-invalid') GROUP BY o, b";

/// What happened in `window`, bucket by bucket.
pub(crate) fn activity(conn: &Connection, window: &ActivityWindow) -> StoreResult<Activity> {
    window.validate()?;
    let mut stmt = conn
        .prepare_cached(ACTIVITY_SQL)
        .map_err(|e| map_err("preparing activity", e))?;
    let rows = stmt
        .query_map(
            [window.since_ms, window.until_ms(), window.bucket_ms],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| map_err("counting recent activity", e))?;
    Activity::from_rows(rows)
}

/// Pending work per signing key id: tasks and messages (the rows of the
/// message queue) apart. Each state is counted with its own index-backed
/// branch, as before the split.
pub(crate) fn pending_by_key(conn: &Connection) -> StoreResult<Vec<KeyUsage>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT sig_key_id, sig_alg, \
                    SUM(CASE WHEN queue = ?1 THEN 0 ELSE n END), \
                    SUM(CASE WHEN queue = ?1 THEN n ELSE 0 END) FROM ( \
                 SELECT sig_key_id, sig_alg, queue, COUNT(*) AS n FROM tasks \
                 WHERE {CLAIMABLE} GROUP BY sig_key_id, sig_alg, queue \
                 UNION ALL \
                 SELECT sig_key_id, sig_alg, queue, COUNT(*) AS n FROM tasks WHERE state = 'running' \
                 GROUP BY sig_key_id, sig_alg, queue) \
             GROUP BY sig_key_id, sig_alg ORDER BY sig_key_id, sig_alg",
        ))
        .map_err(|e| map_err("preparing pending_by_key", e))?;
    let rows = stmt
        .query_map([MESSAGE_QUEUE], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| map_err("counting pending work per key", e))?;
    rows.into_iter()
        .map(|(key_id, alg, tasks, messages)| KeyUsage::from_counted(key_id, alg, tasks, messages))
        .collect()
}

/// The rows of a counting query: two columns, then a count.
fn counted<A: FromSql, B: FromSql>(
    stmt: &mut Statement<'_>,
    context: &str,
) -> StoreResult<Vec<(A, B, i64)>> {
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| map_err(context, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_internal_queue_predicate_names_the_message_queue() {
        assert_eq!(USER_QUEUES, format!("queue <> '{MESSAGE_QUEUE}'"));
    }

    /// The plan of `sql`, its rows joined with `; `.
    fn plan(conn: &Connection, sql: &str, args: Vec<Value>) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map(params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    /// The default listing and `include_internal` walk the primary key in
    /// order (no sort of the table); no listing index is left to write.
    #[test]
    fn task_listings_walk_the_primary_key() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::migrate::migrate(&mut conn, 0).unwrap();
        for queue_sql in [USER_QUEUES, "1 = 1"] {
            for cursor in [None, Some("task_1")] {
                let mut args = Vec::new();
                let sql = newest_tasks(queue_sql, &TaskFilter::default(), cursor, 50, &mut args);
                let got = plan(&conn, &sql, args);
                assert!(!got.contains("TEMP B-TREE"), "{queue_sql}: {got}");
            }
        }
        let listing_indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'tasks_newest%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(listing_indexes, 0, "migration 6 drops the listing indexes");
    }
}
