//! Reads: lookups, listings, counts.

use deadpool_postgres::GenericClient;
use signet_store::paging::{dead_page, parse_dead_cursor, parse_task_cursor, task_page};
use signet_store::{
    page_size, Activity, ActivityWindow, DeadFilter, KeyUsage, Page, QueueCounts, StoreResult,
    TaskFilter, TaskRow, MESSAGE_QUEUE,
};
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::Row;

use crate::error_map::map_err;
use crate::row::{task_from_row, TASK_COLUMNS};

/// Owned statement parameters, for queries built from a filter.
type Args = Vec<Box<dyn ToSql + Sync + Send>>;

fn refs(args: &Args) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// One task by id.
pub(crate) async fn task_by_id(
    client: &impl GenericClient,
    id: &str,
) -> StoreResult<Option<TaskRow>> {
    let stmt = client
        .prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"))
        .await
        .map_err(|e| map_err("preparing a task lookup", e))?;
    client
        .query_opt(&stmt, &[&id])
        .await
        .map_err(|e| map_err(format!("reading task {id}"), e))?
        .map(|r| task_from_row(&r))
        .transpose()
}

/// The tasks of these ids that exist, in one statement.
pub(crate) async fn tasks_by_id(
    client: &impl GenericClient,
    ids: &[String],
) -> StoreResult<Vec<TaskRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id = ANY($1)"
        ))
        .await
        .map_err(|e| map_err("preparing a task lookup", e))?;
    client
        .query(&stmt, &[&ids])
        .await
        .map_err(|e| map_err("reading tasks by id", e))?
        .iter()
        .map(task_from_row)
        .collect()
}

/// The state of a task, if it exists.
pub(crate) async fn task_state(
    client: &impl GenericClient,
    id: &str,
) -> StoreResult<Option<String>> {
    let stmt = client
        .prepare_cached("SELECT state FROM tasks WHERE id = $1")
        .await
        .map_err(|e| map_err("preparing a state lookup", e))?;
    client
        .query_opt(&stmt, &[&id])
        .await
        .map_err(|e| map_err(format!("reading the state of task {id}"), e))?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(|e| map_err(format!("reading the state of task {id}"), e))
}

async fn collect(
    client: &impl GenericClient,
    sql: &str,
    args: &Args,
    context: &str,
) -> StoreResult<Vec<TaskRow>> {
    let stmt = client
        .prepare_cached(sql)
        .await
        .map_err(|e| map_err(format!("preparing {context}"), e))?;
    client
        .query(&stmt, &refs(args))
        .await
        .map_err(|e| map_err(context, e))?
        .iter()
        .map(task_from_row)
        .collect()
}

/// Tasks newest first by id (UUIDv7: creation order), paged by id;
/// Signet's own queue only when named or asked for (see [`TaskFilter`]).
///
/// Every shape walks the primary key backwards and stops after the page:
/// no index of its own, which every state change would have to write.
/// `task_…` ids sort after `msg_…` ones, so the default listing reads the
/// task rows first.
pub(crate) async fn list_tasks(
    client: &impl GenericClient,
    filter: &TaskFilter,
) -> StoreResult<Page<TaskRow>> {
    let limit = page_size(filter.limit);
    let mut args: Args = Vec::new();
    let mut rest = String::new();
    if let Some(s) = filter.state {
        args.push(Box::new(s.as_str()));
        rest.push_str(&format!(" AND state = ${}", args.len()));
    }
    if let Some(c) = &filter.cursor {
        args.push(Box::new(parse_task_cursor(c)?));
        rest.push_str(&format!(" AND id < ${}", args.len()));
    }
    args.push(Box::new(limit as i64 + 1));
    let tail = format!(" ORDER BY id DESC LIMIT ${}", args.len());
    let newest =
        |queue_sql: &str| format!("SELECT {TASK_COLUMNS} FROM tasks WHERE {queue_sql}{rest}{tail}");
    let sql = match (&filter.queue, filter.include_internal) {
        (Some(q), _) => {
            args.push(Box::new(q.clone()));
            newest(&format!("queue = ${}", args.len()))
        }
        (None, false) => newest(USER_QUEUES),
        (None, true) => newest("TRUE"),
    };
    let items = collect(client, &sql, &args, "listing tasks").await?;
    Ok(task_page(items, limit))
}

/// The rows of every queue but Signet's own ([`MESSAGE_QUEUE`]).
const USER_QUEUES: &str = "queue <> 'signet:messages'";

/// The `WHERE` clause of a dead-letter filter (cursor excluded).
fn dead_where(filter: &DeadFilter, args: &mut Args) -> String {
    // `finished_at_ms IS NOT NULL` lets PostgreSQL use the partial index.
    let mut sql = String::from("state = 'dead' AND finished_at_ms IS NOT NULL");
    if let Some(q) = &filter.queue {
        args.push(Box::new(q.clone()));
        sql.push_str(&format!(" AND queue = ${}", args.len()));
    }
    if let Some(r) = filter.reason {
        args.push(Box::new(r.as_str()));
        sql.push_str(&format!(" AND dead_reason = ${}", args.len()));
    }
    if let Some(since) = filter.since_ms {
        args.push(Box::new(since));
        sql.push_str(&format!(" AND finished_at_ms >= ${}", args.len()));
    }
    if let Some(until) = filter.until_ms {
        args.push(Box::new(until));
        sql.push_str(&format!(" AND finished_at_ms < ${}", args.len()));
    }
    sql
}

/// Dead letters, newest first, paged by `(finished_at, id)`.
pub(crate) async fn list_dead(
    client: &impl GenericClient,
    filter: &DeadFilter,
) -> StoreResult<Page<TaskRow>> {
    let limit = page_size(filter.limit);
    let mut args: Args = Vec::new();
    let mut sql = format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE {}",
        dead_where(filter, &mut args)
    );
    if let Some(c) = &filter.cursor {
        let (ms, id) = parse_dead_cursor(c)?;
        args.push(Box::new(ms));
        let ms_at = args.len();
        args.push(Box::new(id));
        sql.push_str(&format!(
            " AND (finished_at_ms, id) < (${ms_at}, ${})",
            args.len()
        ));
    }
    args.push(Box::new(limit as i64 + 1));
    sql.push_str(&format!(
        " ORDER BY finished_at_ms DESC, id DESC LIMIT ${}",
        args.len()
    ));
    let items = collect(client, &sql, &args, "listing dead letters").await?;
    Ok(dead_page(items, limit))
}

/// Ids of every dead letter matching `filter` (limit and cursor ignored).
pub(crate) async fn dead_ids(
    client: &impl GenericClient,
    filter: &DeadFilter,
) -> StoreResult<Vec<String>> {
    let mut args: Args = Vec::new();
    let sql = format!(
        "SELECT id FROM tasks WHERE {} ORDER BY finished_at_ms DESC, id DESC",
        dead_where(filter, &mut args)
    );
    let stmt = client
        .prepare_cached(&sql)
        .await
        .map_err(|e| map_err("preparing a dead-letter selection", e))?;
    client
        .query(&stmt, &refs(&args))
        .await
        .map_err(|e| map_err("selecting dead letters", e))?
        .iter()
        .map(|r| {
            r.try_get(0)
                .map_err(|e| map_err("selecting dead letters", e))
        })
        .collect()
}

/// Counts per queue and state: one scan of each partial index, never of
/// the table.
const COUNTS_SQL: &str = "SELECT queue, state, COUNT(*) FROM tasks \
     WHERE state IN ('available', 'scheduled', 'retryable') GROUP BY queue, state \
     UNION ALL \
     SELECT queue, 'running', COUNT(*) FROM tasks WHERE state = 'running' GROUP BY queue \
     UNION ALL \
     SELECT queue, state, COUNT(*) FROM tasks \
     WHERE finished_at_ms IS NOT NULL GROUP BY queue, state";

/// Tasks per queue and state.
pub(crate) async fn counts(client: &impl GenericClient) -> StoreResult<Vec<QueueCounts>> {
    let stmt = client
        .prepare_cached(COUNTS_SQL)
        .await
        .map_err(|e| map_err("preparing counts", e))?;
    let rows = client
        .query(&stmt, &[])
        .await
        .map_err(|e| map_err("counting tasks", e))?;
    QueueCounts::from_counted(
        rows.iter()
            .map(|row| counted(row, "counting tasks"))
            .collect::<StoreResult<Vec<_>>>()?,
    )
}

/// Recent activity in buckets (see [`Store::activity`](signet_store::Store::activity)):
/// succeeded tasks and signature refusals come off the `tasks_finished`
/// index (state, then `finished_at_ms` in the window); failed attempts off
/// the history's attempt events in the window, joined to their task for its
/// queue.
const ACTIVITY_SQL: &str = "SELECT 'succeeded', queue, (finished_at_ms - $1) / $3 AS b, COUNT(*) \
     FROM tasks WHERE state = 'succeeded' AND finished_at_ms >= $1 AND finished_at_ms < $2 \
     GROUP BY queue, b \
     UNION ALL \
     SELECT 'failed', t.queue, (e.at_ms - $1) / $3 AS b, COUNT(*) \
     FROM task_events AS e JOIN tasks AS t ON t.id = e.task_id \
     WHERE e.kind = 'attempt' AND e.outcome IN ('retry', 'dead', 'lease-expired') \
     AND e.at_ms >= $1 AND e.at_ms < $2 GROUP BY t.queue, b \
     UNION ALL \
     SELECT 'signature', o, b, COUNT(*) FROM ( \
     SELECT split_part(COALESCE(dead_detail, ''), ':', 1) AS o, (finished_at_ms - $1) / $3 AS b \
     FROM tasks WHERE state = 'dead' AND finished_at_ms >= $1 AND finished_at_ms < $2 \
     AND dead_reason = 'signature-invalid') AS refused GROUP BY o, b";

/// What happened in `window`, bucket by bucket.
pub(crate) async fn activity(
    client: &impl GenericClient,
    window: &ActivityWindow,
) -> StoreResult<Activity> {
    window.validate()?;
    let stmt = client
        .prepare_cached(ACTIVITY_SQL)
        .await
        .map_err(|e| map_err("preparing activity", e))?;
    let rows = client
        .query(
            &stmt,
            &[&window.since_ms, &window.until_ms(), &window.bucket_ms],
        )
        .await
        .map_err(|e| map_err("counting recent activity", e))?;
    let rows = rows
        .iter()
        .map(|row| {
            let get = || {
                Ok::<_, tokio_postgres::Error>((
                    row.try_get::<_, String>(0)?,
                    row.try_get::<_, String>(1)?,
                    row.try_get::<_, i64>(2)?,
                    row.try_get::<_, i64>(3)?,
                ))
            };
            get().map_err(|e| map_err("counting recent activity", e))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Activity::from_rows(rows)
}

/// Pending work per signing key id: tasks and messages (the rows of the
/// message queue) apart.
pub(crate) async fn pending_by_key(client: &impl GenericClient) -> StoreResult<Vec<KeyUsage>> {
    let stmt = client
        .prepare_cached(
            "SELECT sig_key_id, sig_alg, \
                    COALESCE(SUM(n) FILTER (WHERE queue <> $1), 0)::BIGINT, \
                    COALESCE(SUM(n) FILTER (WHERE queue = $1), 0)::BIGINT FROM ( \
                 SELECT sig_key_id, sig_alg, queue, COUNT(*) AS n FROM tasks \
                 WHERE state IN ('available', 'scheduled', 'retryable') \
                 GROUP BY sig_key_id, sig_alg, queue \
                 UNION ALL \
                 SELECT sig_key_id, sig_alg, queue, COUNT(*) AS n FROM tasks WHERE state = 'running' \
                 GROUP BY sig_key_id, sig_alg, queue) AS pending \
             GROUP BY sig_key_id, sig_alg ORDER BY sig_key_id, sig_alg",
        )
        .await
        .map_err(|e| map_err("preparing pending_by_key", e))?;
    let rows = client
        .query(&stmt, &[&MESSAGE_QUEUE])
        .await
        .map_err(|e| map_err("counting pending work per key", e))?;
    rows.iter()
        .map(|row| {
            let get = || {
                Ok::<_, tokio_postgres::Error>((
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                ))
            };
            let (key_id, alg, tasks, messages) =
                get().map_err(|e| map_err("counting pending work per key", e))?;
            KeyUsage::from_counted(key_id, alg, tasks, messages)
        })
        .collect()
}

/// One row of a counting query: two columns, then a count.
fn counted<'a, A: FromSql<'a>, B: FromSql<'a>>(
    row: &'a Row,
    context: &str,
) -> StoreResult<(A, B, i64)> {
    let get =
        || Ok::<_, tokio_postgres::Error>((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
    get().map_err(|e| map_err(context, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_internal_queue_predicates_name_the_message_queue() {
        assert_eq!(USER_QUEUES, format!("queue <> '{MESSAGE_QUEUE}'"));
    }
}
