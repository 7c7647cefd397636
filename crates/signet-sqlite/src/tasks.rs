//! Writes on tasks. Plain functions on the write connection; the writer
//! thread runs each inside a savepoint of the current group commit.

use std::sync::LazyLock;

use rusqlite::{params, Connection, OptionalExtension};
use signet_store::rows::{claim_order, headers_to_json};
use signet_store::{
    AttemptOutcome, ClaimRequest, DeadReason, Enqueued, FailOutcome, HttpExchange,
    IdempotencyClaim, LeaseToken, NewTask, Settlement, SignatureRecord, StoreError, StoreResult,
    TaskRow, TaskState, MESSAGE_QUEUE,
};

use crate::error_map::map_err;
use crate::history::{self, Act, Ended};
use crate::pause::not_paused;
use crate::queries::{task_by_id, task_state};
use crate::row::{collect_rows, task_from_row, TASK_COLUMNS};

/// The states a claim takes tasks from. Must match the `tasks_claim` index.
pub(crate) const CLAIMABLE: &str =
    "(state = 'available' OR state = 'scheduled' OR state = 'retryable')";

/// Inserts tasks in order; an idempotency key already present in the
/// task's scope and kind returns the task holding it (same request) or
/// fails the whole batch with a conflict naming what differs. An earlier
/// task of the same batch counts as present (it is already inserted).
pub(crate) fn enqueue_batch(
    conn: &Connection,
    tasks: Vec<NewTask>,
    now_ms: i64,
) -> StoreResult<Vec<Enqueued>> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Some(claim) = task.idempotency() {
            if let Some(existing) = by_idempotency_key(conn, &claim)? {
                out.push(Enqueued {
                    task: existing,
                    created: false,
                });
                continue;
            }
        }
        out.push(Enqueued {
            task: insert(conn, task, now_ms)?,
            created: true,
        });
    }
    Ok(out)
}

/// The task holding `claim`'s key in its scope (or in the legacy scope,
/// for scopes that read it) and kind, once its fingerprint is checked.
fn by_idempotency_key(
    conn: &Connection,
    claim: &IdempotencyClaim<'_>,
) -> StoreResult<Option<TaskRow>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, idempotency_fingerprint FROM tasks \
             WHERE idempotency_scope = ?1 AND idempotency_kind = ?2 AND idempotency_key = ?3",
        )
        .map_err(|e| map_err("preparing an idempotency lookup", e))?;
    for scope in claim.lookup_scopes() {
        let found: Option<(String, Option<String>)> = stmt
            .query_row(params![scope, claim.kind.as_str(), claim.key], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| map_err("looking up an idempotency key", e))?;
        if let Some((id, fingerprint)) = found {
            claim.check_same_request(fingerprint.as_deref())?;
            return task_by_id(conn, &id);
        }
    }
    Ok(None)
}

fn insert(conn: &Connection, task: NewTask, now_ms: i64) -> StoreResult<TaskRow> {
    let env = &task.envelope;
    let (state, run_at_ms) = match env.not_before_ms {
        Some(t) if t > now_ms => (TaskState::Scheduled, t),
        Some(t) => (TaskState::Available, t),
        None => (TaskState::Available, now_ms),
    };
    let headers = headers_to_json(&env.headers)?;
    let sig = task.signature.as_ref();
    let claim = task.idempotency();
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO tasks (id, queue, name, args, headers, created_at_ms, not_before_ms, \
             expires_at_ms, max_attempts, callback_url, sig_alg, sig_key_id, sig, state, \
             priority, attempt, run_at_ms, idempotency_key, updated_at_ms, \
             idempotency_scope, idempotency_kind, idempotency_fingerprint) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 0, ?16, ?17, ?18, \
             ?19, ?20, ?21)",
        )
        .map_err(|e| map_err("preparing an enqueue", e))?;
    let inserted = stmt.execute(params![
        env.id,
        env.queue,
        env.name,
        env.args,
        headers,
        env.created_at_ms,
        env.not_before_ms,
        env.expires_at_ms,
        env.max_attempts,
        env.callback_url,
        sig.map(|s| s.alg.as_str()),
        sig.map(|s| s.key_id.as_str()),
        sig.map(|s| s.sig.as_slice()),
        state.as_str(),
        task.priority,
        run_at_ms,
        task.idempotency_key,
        now_ms,
        claim.as_ref().map(|c| c.scope.as_str()),
        claim.as_ref().map(|c| c.kind.as_str()),
        claim.as_ref().and_then(|c| c.stored_fingerprint()),
    ]);
    if let Err(e) = inserted {
        let duplicate = e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
            && task_state(conn, &env.id)?.is_some();
        return Err(if duplicate {
            StoreError::Conflict(format!(
                "task {} already exists; every task needs a fresh id (TaskId::generate())",
                env.id
            ))
        } else {
            map_err(format!("enqueueing task {}", env.id), e)
        });
    }
    Ok(TaskRow::enqueued(task, state, run_at_ms, now_ms))
}

/// Claims due tasks: the due candidates of each queue are read in claim
/// order off the `tasks_claim` index (a paused queue gives none), merged
/// in `priority DESC, run_at, id` order, and each of the first `limit`
/// updated to `running` by rowid.
///
/// A read and updates rather than one `UPDATE … RETURNING`: SQLite builds
/// a temporary b-tree for an `IN (SELECT …)` and another for the returned
/// rows on every execution and copies each row into it (see
/// [`end_attempt`]). Both run in the writer's transaction, during which no
/// other connection writes, so no row changes in between.
pub(crate) fn claim(
    conn: &Connection,
    req: &ClaimRequest,
    now_ms: i64,
) -> StoreResult<Vec<TaskRow>> {
    if req.limit == 0 {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(req.limit).unwrap_or(i64::MAX);
    let expires = now_ms.saturating_add(req.lease_ms);
    let mut queues: Vec<&String> = req.queues.iter().collect();
    queues.sort();
    queues.dedup();
    let rowid_at = TASK_COLUMNS.split(',').count();
    let mut candidates: Vec<(i64, TaskRow)> = Vec::new();
    for queue in &queues {
        let context = format!("claiming from queue {queue}");
        candidates.extend(collect_rows(
            conn,
            &DUE_SQL,
            params![queue, now_ms, limit],
            &context,
            |row| {
                let rowid = row.get(rowid_at).map_err(|e| map_err(&context, e))?;
                Ok((rowid, task_from_row(row)?))
            },
        )?);
    }
    if queues.len() > 1 {
        candidates.sort_by(|a, b| claim_order(&a.1, &b.1));
        candidates.truncate(req.limit);
    }
    let mut stmt = conn
        .prepare_cached(CLAIM_ROW_SQL)
        .map_err(|e| map_err("preparing a claim", e))?;
    let mut out = Vec::with_capacity(candidates.len());
    for (rowid, row) in candidates {
        stmt.execute(params![req.worker_id, expires, now_ms, rowid])
            .map_err(|e| map_err(format!("claiming task {}", row.envelope.id), e))?;
        out.push(claimed(row, &req.worker_id, expires, now_ms));
    }
    Ok(out)
}

/// The due candidates of one queue, best first, each with its rowid after
/// the task columns: `?1` queue, `?2` now, `?3` limit. Built once: every
/// claim runs it.
static DUE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TASK_COLUMNS}, rowid FROM tasks \
         WHERE {CLAIMABLE} AND queue = ?1 AND run_at_ms <= ?2 AND {} \
         ORDER BY priority DESC, run_at_ms, id LIMIT ?3",
        not_paused("?1")
    )
});

/// Starts an attempt of the row at `?4`: `?1` owner, `?2` lease expiry,
/// `?3` now. [`claimed`] is what it does to the row read before.
const CLAIM_ROW_SQL: &str = "UPDATE tasks SET state = 'running', attempt = attempt + 1, \
     lease_owner = ?1, lease_expires_at_ms = ?2, updated_at_ms = ?3, attempt_started_at_ms = ?3 \
     WHERE rowid = ?4";

/// `row` as [`CLAIM_ROW_SQL`] left it.
fn claimed(mut row: TaskRow, owner: &str, expires: i64, now_ms: i64) -> TaskRow {
    row.state = TaskState::Running;
    row.attempt = row.attempt.saturating_add(1);
    row.lease_owner = Some(owner.to_owned());
    row.lease_expires_at_ms = Some(expires);
    row.updated_at_ms = now_ms;
    row
}

fn lease_params<'a>(
    params: &[&'a dyn rusqlite::ToSql],
    lease: &'a LeaseToken,
) -> Vec<&'a dyn rusqlite::ToSql> {
    let mut all: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(params.len() + 3);
    all.extend_from_slice(params);
    all.push(&lease.task_id);
    all.push(&lease.worker_id);
    all.push(&lease.attempt);
    all
}

/// Runs an update guarded by the lease; no row changed means the lease is lost.
fn with_lease(
    conn: &Connection,
    sql: &str,
    lease: &LeaseToken,
    params: &[&dyn rusqlite::ToSql],
) -> StoreResult<()> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(|e| map_err("preparing a lease update", e))?;
    let changed = stmt
        .execute(lease_params(params, lease).as_slice())
        .map_err(|e| map_err(format!("updating task {}", lease.task_id), e))?;
    if changed == 0 {
        return Err(lease.lost());
    }
    Ok(())
}

/// [`with_lease`] for a statement that answers one row (an update with a
/// `RETURNING` clause, or the read of [`end_attempt`]): `read` decodes it;
/// no row means the lease is lost.
fn with_lease_row<T>(
    conn: &Connection,
    sql: &str,
    lease: &LeaseToken,
    params: &[&dyn rusqlite::ToSql],
    read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<T> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(|e| map_err("preparing a lease update", e))?;
    stmt.query_row(lease_params(params, lease).as_slice(), read)
        .optional()
        .map_err(|e| map_err(format!("updating task {}", lease.task_id), e))?
        .ok_or_else(|| lease.lost())
}

/// [`with_lease_row`] for an update ending in `RETURNING queue`: the
/// task's queue, to wake its workers.
fn with_lease_queue(
    conn: &Connection,
    sql: &str,
    lease: &LeaseToken,
    params: &[&dyn rusqlite::ToSql],
) -> StoreResult<String> {
    with_lease_row(conn, sql, lease, params, |r| r.get(0))
}

/// Ends a failed attempt `lease` holds: reads the running row (its queue
/// and what the attempt event needs), then runs `update` on it, whose
/// parameters are `params` followed by the row's next `event_seq` and its
/// rowid. Answers the queue and the ended columns (`event_seq` as
/// written); no running row under the lease means the lease is lost.
///
/// A read and an update rather than one `UPDATE … RETURNING`: SQLite keeps
/// a `RETURNING` statement's rows in a temporary b-tree it opens and frees
/// on every execution, which cost about a tenth of the writer's time per
/// delivery when delivered messages still ended here. Both run in the
/// writer's transaction, during which no other connection can write, so
/// the row cannot change between them.
fn end_attempt(
    conn: &Connection,
    lease: &LeaseToken,
    update: &str,
    params: &[&dyn rusqlite::ToSql],
) -> StoreResult<(String, EndedColumns)> {
    let (rowid, queue, offset, started_at_ms, seq) = with_lease_row(
        conn,
        "SELECT rowid, queue, attempt_offset, attempt_started_at_ms, event_seq FROM tasks \
         WHERE id = ?1 AND state = 'running' AND lease_owner = ?2 AND attempt = ?3",
        lease,
        &[],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get::<_, i64>(4)?,
            ))
        },
    )?;
    let seq = seq.saturating_add(1);
    let mut all: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(params.len() + 2);
    all.extend_from_slice(params);
    all.push(&seq);
    all.push(&rowid);
    let changed = conn
        .prepare_cached(update)
        .and_then(|mut stmt| stmt.execute(all.as_slice()))
        .map_err(|e| map_err(format!("updating task {}", lease.task_id), e))?;
    if changed == 0 {
        return Err(lease.lost());
    }
    Ok((queue, (offset, started_at_ms, seq)))
}

/// `(attempt_offset, attempt_started_at_ms, event_seq)` after an
/// attempt-ending update.
type EndedColumns = (i64, Option<i64>, i64);

/// Appends the attempt `lease` ended, from what its update returned.
fn record_ended(
    conn: &Connection,
    lease: &LeaseToken,
    (offset, started_at_ms, seq): EndedColumns,
    outcome: AttemptOutcome,
    error: Option<&str>,
    http: Option<&HttpExchange>,
    now_ms: i64,
) -> StoreResult<()> {
    history::attempt(
        conn,
        &Ended {
            task_id: &lease.task_id,
            seq,
            number: offset.saturating_add(i64::from(lease.attempt)),
            worker: &lease.worker_id,
            started_at_ms,
            outcome,
            error,
            http,
        },
        now_ms,
    )
}

/// Extends a lease.
pub(crate) fn heartbeat(
    conn: &Connection,
    lease: &LeaseToken,
    lease_ms: i64,
    now_ms: i64,
) -> StoreResult<()> {
    let expires = now_ms.saturating_add(lease_ms);
    with_lease(
        conn,
        "UPDATE tasks SET lease_expires_at_ms = ?1, updated_at_ms = ?2 \
         WHERE id = ?3 AND state = 'running' AND lease_owner = ?4 AND attempt = ?5",
        lease,
        &[&expires, &now_ms],
    )
}

/// Marks a running task succeeded and keeps the attempt on its row (see
/// `history::list`), with a delivery's HTTP exchange: one update, no event
/// row.
pub(crate) fn complete(
    conn: &Connection,
    lease: &LeaseToken,
    result: Option<&[u8]>,
    http: Option<&HttpExchange>,
    now_ms: i64,
) -> StoreResult<()> {
    with_lease(
        conn,
        "UPDATE tasks SET state = 'succeeded', result = ?1, attempt_worker = lease_owner, \
         attempt_status = ?2, attempt_latency_ms = ?3, attempt_response_body = ?4, \
         lease_owner = NULL, lease_expires_at_ms = NULL, updated_at_ms = ?5, \
         finished_at_ms = ?5, event_seq = event_seq + 1 \
         WHERE id = ?6 AND state = 'running' AND lease_owner = ?7 AND attempt = ?8",
        lease,
        &[
            &result,
            &http.and_then(|h| h.status),
            &http.map(|h| h.latency_ms),
            &http.map(|h| h.response_body.as_slice()),
            &now_ms,
        ],
    )
}

/// Records a failed attempt (with the HTTP exchange of a delivery).
/// Returns the queue of a task to retry.
pub(crate) fn fail(
    conn: &Connection,
    lease: &LeaseToken,
    error: &str,
    outcome: &FailOutcome,
    http: Option<&HttpExchange>,
    now_ms: i64,
) -> StoreResult<Option<String>> {
    let (queue, ended, recorded) = match outcome {
        FailOutcome::Retry { at_ms } => {
            let (queue, ended) = end_attempt(
                conn,
                lease,
                "UPDATE tasks SET state = 'retryable', run_at_ms = ?1, last_error = ?2, \
                 lease_owner = NULL, lease_expires_at_ms = NULL, updated_at_ms = ?3, \
                 event_seq = ?4 WHERE rowid = ?5",
                &[at_ms, &error, &now_ms],
            )?;
            (Some(queue), ended, AttemptOutcome::Retry)
        }
        FailOutcome::Dead { reason, detail } => {
            let (_, ended) = end_attempt(
                conn,
                lease,
                "UPDATE tasks SET state = 'dead', dead_reason = ?1, dead_detail = ?2, \
                 last_error = ?3, lease_owner = NULL, lease_expires_at_ms = NULL, \
                 updated_at_ms = ?4, finished_at_ms = ?4, event_seq = ?5 WHERE rowid = ?6",
                &[&reason.as_str(), detail, &error, &now_ms],
            )?;
            (None, ended, AttemptOutcome::Dead)
        }
    };
    record_ended(conn, lease, ended, recorded, Some(error), http, now_ms)?;
    Ok(queue)
}

/// Settles a delivery attempt (the outcome and the attempt with its HTTP
/// exchange, kept on the row when delivered, an event otherwise; the
/// caller checked it with `check_exchange`). Returns
/// the queue to wake when the message is to be retried now.
pub(crate) fn settle_delivery(
    conn: &Connection,
    lease: &LeaseToken,
    http: &HttpExchange,
    settlement: &Settlement,
    now_ms: i64,
) -> StoreResult<Option<String>> {
    match settlement {
        Settlement::Delivered { result } => {
            complete(conn, lease, result.as_deref(), Some(http), now_ms).map(|()| None)
        }
        Settlement::Failed { error, outcome } => {
            let queue = fail(conn, lease, error, outcome, Some(http), now_ms)?;
            let due_now = matches!(outcome, FailOutcome::Retry { at_ms } if *at_ms <= now_ms);
            Ok(queue.filter(|_| due_now))
        }
    }
}

/// Gives a running task back without counting the attempt, due again at
/// `run_at_ms` (`scheduled` until then when later than `now_ms`). Returns
/// its queue.
pub(crate) fn release(
    conn: &Connection,
    lease: &LeaseToken,
    run_at_ms: i64,
    now_ms: i64,
) -> StoreResult<String> {
    with_lease_queue(
        conn,
        "UPDATE tasks SET state = CASE WHEN ?2 > ?1 THEN 'scheduled' ELSE 'available' END, \
         attempt = attempt - 1, run_at_ms = max(?1, ?2), \
         lease_owner = NULL, lease_expires_at_ms = NULL, updated_at_ms = ?1 \
         WHERE id = ?3 AND state = 'running' AND lease_owner = ?4 AND attempt = ?5 \
         RETURNING queue",
        lease,
        &[&now_ms, &run_at_ms],
    )
}

/// Which tasks an operator act applies to, as its refusal names them.
pub(crate) const WAITING: &str = "scheduled, available or retryable tasks";

/// Why an act on `id` changed nothing: it is unknown, or in a state the act
/// does not apply to (only `allowed` can be `action`).
fn not_in_state(conn: &Connection, id: &str, allowed: &str, action: &str) -> StoreError {
    match task_state(conn, id) {
        Ok(Some(state)) => StoreError::Conflict(format!(
            "task {id} is {state}; only {allowed} can be {action}"
        )),
        Ok(None) => StoreError::not_found("task", id),
        Err(e) => e,
    }
}

/// Runs `sql`, an update returning the row of `id` when it applied; a row
/// that did not apply gives [`not_in_state`].
fn update_in_state(
    conn: &Connection,
    sql: &str,
    (id, allowed, action): (&str, &str, &str),
    params: &[&dyn rusqlite::ToSql],
) -> StoreResult<TaskRow> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(|e| map_err("preparing an update", e))?;
    let mut rows = stmt
        .query(params)
        .map_err(|e| map_err(format!("updating task {id}"), e))?;
    match rows
        .next()
        .map_err(|e| map_err(format!("updating task {id}"), e))?
    {
        Some(row) => task_from_row(row),
        None => Err(not_in_state(conn, id, allowed, action)),
    }
}

/// Cancels a task that has not started, recording who did.
pub(crate) fn cancel(
    conn: &Connection,
    id: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<TaskRow> {
    let row = update_in_state(
        conn,
        &format!(
            "UPDATE tasks SET state = 'cancelled', updated_at_ms = ?1, finished_at_ms = ?1 \
             WHERE id = ?2 AND {CLAIMABLE} RETURNING {TASK_COLUMNS}"
        ),
        (id, WAITING, "cancelled"),
        &[&now_ms, &id],
    )?;
    history::record(conn, id, &Act::by("cancelled", actor), now_ms)?;
    Ok(row)
}

/// Dead-letters a task that has not started, recorded in its history.
pub(crate) fn kill(
    conn: &Connection,
    id: &str,
    reason: DeadReason,
    detail: &str,
    now_ms: i64,
) -> StoreResult<TaskRow> {
    let row = update_in_state(
        conn,
        &format!(
            "UPDATE tasks SET state = 'dead', dead_reason = ?1, dead_detail = ?2, \
             updated_at_ms = ?3, finished_at_ms = ?3 \
             WHERE id = ?4 AND {CLAIMABLE} RETURNING {TASK_COLUMNS}"
        ),
        (id, WAITING, "dead-lettered"),
        &[&reason.as_str(), &detail, &now_ms, &id],
    )?;
    let act = Act {
        kind: "dead-lettered",
        reason: Some(reason.as_str()),
        detail: Some(detail),
        ..Act::default()
    };
    history::record(conn, id, &act, now_ms)?;
    Ok(row)
}

/// Makes a retryable task due now, recording who did.
pub(crate) fn retry_now(
    conn: &Connection,
    id: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<TaskRow> {
    let row = update_in_state(
        conn,
        &format!(
            "UPDATE tasks SET state = 'available', run_at_ms = ?1, updated_at_ms = ?1 \
             WHERE id = ?2 AND state = 'retryable' RETURNING {TASK_COLUMNS}"
        ),
        (
            id,
            "retryable tasks (waiting for their backoff)",
            "retried now",
        ),
        &[&now_ms, &id],
    )?;
    history::record(conn, id, &Act::by("retried-now", actor), now_ms)?;
    Ok(row)
}

/// Sends a succeeded message again: due now, attempts moved to the offset
/// (numbers go on), a callback owed again, the resend recorded. A success
/// kept only on the row (see `history::list`) is first written as its
/// event, so making the row pending again loses no attempt.
pub(crate) fn resend(
    conn: &Connection,
    id: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<TaskRow> {
    conn.prepare_cached(
        "INSERT INTO task_events (task_id, seq, kind, at_ms, attempt, worker, started_at_ms, \
             outcome, status, latency_ms, response_body) \
         SELECT id, event_seq, 'attempt', finished_at_ms, attempt_offset + attempt, \
             attempt_worker, attempt_started_at_ms, 'succeeded', attempt_status, \
             attempt_latency_ms, attempt_response_body FROM tasks \
         WHERE id = ?1 AND state = 'succeeded' AND queue = ?2 AND event_seq > \
             COALESCE((SELECT MAX(seq) FROM task_events WHERE task_id = ?1), 0)",
    )
    .and_then(|mut s| s.execute(params![id, MESSAGE_QUEUE]))
    .map_err(|e| map_err(format!("recording the last attempt of {id}"), e))?;
    let row = update_in_state(
        conn,
        &format!(
            "UPDATE tasks SET state = 'available', attempt_offset = attempt_offset + attempt, \
             attempt = 0, run_at_ms = ?1, finished_at_ms = NULL, lease_owner = NULL, \
             lease_expires_at_ms = NULL, updated_at_ms = ?1, callback_sent_at_ms = NULL, \
             attempt_status = NULL, attempt_latency_ms = NULL, attempt_response_body = NULL \
             WHERE id = ?2 AND state = 'succeeded' AND queue = ?3 RETURNING {TASK_COLUMNS}"
        ),
        (id, "succeeded messages", "resent"),
        &[&now_ms, &id, &MESSAGE_QUEUE],
    )?;
    history::record(conn, id, &Act::by("resent", actor), now_ms)?;
    Ok(row)
}

/// A task a rescue changed.
pub(crate) struct Rescued {
    pub(crate) id: String,
    pub(crate) queue: String,
    /// Retryable now (else dead).
    pub(crate) retry: bool,
}

/// Expired leases: retryable now, or dead with `max-attempts`.
pub(crate) fn rescue_expired(
    conn: &Connection,
    now_ms: i64,
    limit: usize,
) -> StoreResult<Vec<Rescued>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    type Expired = (
        String,
        i64,
        i64,
        Option<String>,
        String,
        i64,
        Option<i64>,
        i64,
    );
    let expired: Vec<Expired> = conn
        .prepare_cached(
            "SELECT id, attempt, max_attempts, lease_owner, queue, attempt_offset, \
             attempt_started_at_ms, event_seq FROM tasks \
             WHERE state = 'running' AND lease_expires_at_ms <= ?1 \
             ORDER BY lease_expires_at_ms, id LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![now_ms, limit], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })?
            .collect()
        })
        .map_err(|e| map_err("finding expired leases", e))?;
    let mut out = Vec::with_capacity(expired.len());
    for (id, attempt, max_attempts, owner, queue, offset, started_at_ms, seq) in expired {
        let owner = owner.unwrap_or_default();
        let error = format!(
            "lease expired: worker {owner:?} stopped heartbeating during attempt {attempt}"
        );
        let retry = attempt < max_attempts;
        let changed = if !retry {
            let detail = format!("lease expired on attempt {attempt} of {max_attempts}");
            conn.prepare_cached(
                "UPDATE tasks SET state = 'dead', dead_reason = 'max-attempts', dead_detail = ?1, \
                 last_error = ?2, lease_owner = NULL, lease_expires_at_ms = NULL, \
                 updated_at_ms = ?3, finished_at_ms = ?3, event_seq = event_seq + 1 \
                 WHERE id = ?4 AND state = 'running'",
            )
            .and_then(|mut s| s.execute(params![detail, error, now_ms, id]))
        } else {
            conn.prepare_cached(
                "UPDATE tasks SET state = 'retryable', run_at_ms = ?1, last_error = ?2, \
                 lease_owner = NULL, lease_expires_at_ms = NULL, updated_at_ms = ?1, \
                 event_seq = event_seq + 1 WHERE id = ?3 AND state = 'running'",
            )
            .and_then(|mut s| s.execute(params![now_ms, error, id]))
        }
        .map_err(|e| map_err(format!("rescuing task {id}"), e))?;
        if changed > 0 {
            let ended = Ended {
                task_id: &id,
                seq: seq.saturating_add(1),
                number: offset.saturating_add(attempt),
                worker: &owner,
                started_at_ms,
                outcome: if retry {
                    AttemptOutcome::LeaseExpired
                } else {
                    AttemptOutcome::Dead
                },
                error: Some(&error),
                http: None,
            };
            history::attempt(conn, &ended, now_ms)?;
            out.push(Rescued { id, queue, retry });
        }
    }
    Ok(out)
}

/// Dead letters back to `available`, attempts reset (moved to the offset,
/// so history numbers go on), the replay recorded; a callback is owed
/// again once the task finishes again. Returns `(id, queue)` of each.
pub(crate) fn replay(
    conn: &Connection,
    ids: &[String],
    actor: &str,
    now_ms: i64,
) -> StoreResult<Vec<(String, String)>> {
    let mut stmt = conn
        .prepare_cached(
            "UPDATE tasks SET state = 'available', attempt_offset = attempt_offset + attempt, \
             attempt = 0, run_at_ms = ?1, \
             dead_reason = NULL, dead_detail = NULL, finished_at_ms = NULL, \
             lease_owner = NULL, lease_expires_at_ms = NULL, updated_at_ms = ?1, \
             callback_sent_at_ms = NULL \
             WHERE id = ?2 AND state = 'dead' RETURNING queue",
        )
        .map_err(|e| map_err("preparing a replay", e))?;
    let mut out = Vec::new();
    for id in ids {
        let queue: Option<String> = stmt
            .query_row(params![now_ms, id], |r| r.get(0))
            .optional()
            .map_err(|e| map_err(format!("replaying task {id}"), e))?;
        if let Some(queue) = queue {
            history::record(conn, id, &Act::by("replayed", actor), now_ms)?;
            out.push((id.clone(), queue));
        }
    }
    Ok(out)
}

/// Re-signs a dead letter: replaces its signature columns (the envelope
/// stays) and records the old and new key ids.
pub(crate) fn resign(
    conn: &Connection,
    id: &str,
    signature: &SignatureRecord,
    actor: &str,
    now_ms: i64,
) -> StoreResult<TaskRow> {
    let found: Option<(String, Option<String>)> = conn
        .prepare_cached("SELECT state, sig_key_id FROM tasks WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(|e| map_err(format!("reading task {id}"), e))?;
    let from_key_id = match found {
        None => return Err(StoreError::not_found("task", id)),
        Some((state, _)) if state != TaskState::Dead.as_str() => {
            return Err(StoreError::Conflict(format!(
                "task {id} is {state}; only dead letters can be re-signed"
            )))
        }
        Some((_, key_id)) => key_id,
    };
    let row = conn
        .prepare_cached(&format!(
            "UPDATE tasks SET sig_alg = ?1, sig_key_id = ?2, sig = ?3, updated_at_ms = ?4 \
             WHERE id = ?5 AND state = 'dead' RETURNING {TASK_COLUMNS}"
        ))
        .map_err(|e| map_err("preparing a re-sign", e))
        .and_then(|mut s| {
            let mut rows = s
                .query(params![
                    signature.alg.as_str(),
                    signature.key_id,
                    signature.sig,
                    now_ms,
                    id
                ])
                .map_err(|e| map_err(format!("re-signing task {id}"), e))?;
            match rows
                .next()
                .map_err(|e| map_err(format!("re-signing task {id}"), e))?
            {
                Some(row) => task_from_row(row),
                None => Err(StoreError::not_found("task", id)),
            }
        })?;
    let act = Act {
        kind: "resigned",
        actor: Some(actor),
        from_key_id: from_key_id.as_deref(),
        to_key_id: Some(&signature.key_id),
        ..Act::default()
    };
    history::record(conn, id, &act, now_ms)?;
    Ok(row)
}

/// Deletes dead letters and their history.
pub(crate) fn purge(conn: &Connection, ids: &[String]) -> StoreResult<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("DELETE FROM tasks WHERE id = ?1 AND state = 'dead'")
        .map_err(|e| map_err("preparing a purge", e))?;
    let mut out = Vec::new();
    for id in ids {
        let n = stmt
            .execute([id])
            .map_err(|e| map_err(format!("purging task {id}"), e))?;
        if n > 0 {
            history::delete_of(conn, id)?;
            out.push(id.clone());
        }
    }
    Ok(out)
}

/// Old succeeded and cancelled tasks, except those whose callback is
/// still owed: `?1` finished before, `?2` limit.
pub(crate) const PRUNE_SQL: &str = "DELETE FROM tasks WHERE rowid IN (SELECT rowid FROM tasks \
     WHERE state IN ('succeeded', 'cancelled') AND finished_at_ms IS NOT NULL \
     AND finished_at_ms < ?1 \
     AND (state = 'cancelled' OR callback_url IS NULL OR callback_sent_at_ms IS NOT NULL) \
     LIMIT ?2) RETURNING id";

/// Deletes old succeeded and cancelled tasks (never one whose callback is
/// still owed) and their history.
pub(crate) fn prune(conn: &Connection, before_ms: i64, limit: usize) -> StoreResult<u64> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let ids: Vec<String> = conn
        .prepare_cached(PRUNE_SQL)
        .and_then(|mut s| {
            s.query_map(params![before_ms, limit], |r| r.get(0))?
                .collect()
        })
        .map_err(|e| map_err("pruning finished tasks", e))?;
    for id in &ids {
        history::delete_of(conn, id)?;
    }
    Ok(ids.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = stmt.parameter_count();
        let args: Vec<rusqlite::types::Value> = (0..n).map(|_| 1i64.into()).collect();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    #[test]
    fn hot_paths_use_their_indexes() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::migrate::migrate(&mut conn, 0).unwrap();
        let claim = plan(&conn, &DUE_SQL);
        assert!(claim.contains("INDEX tasks_claim (queue=?)"), "{claim}");
        assert!(!claim.contains("TEMP B-TREE"), "{claim}");
        let counts = plan(&conn, &crate::queries::counts_sql());
        assert!(
            !counts.contains("SCAN tasks;") && !counts.ends_with("SCAN tasks"),
            "{counts}"
        );
        assert!(counts.contains("COVERING INDEX tasks_claim"), "{counts}");
        assert!(counts.contains("COVERING INDEX tasks_finished"), "{counts}");
        let rescue = plan(
            &conn,
            "SELECT id FROM tasks WHERE state = 'running' AND lease_expires_at_ms <= ?1 \
             ORDER BY lease_expires_at_ms, id LIMIT ?2",
        );
        assert!(rescue.contains("INDEX tasks_lease"), "{rescue}");
        let callbacks = plan(&conn, &crate::callbacks::pending_sql());
        assert!(callbacks.contains("INDEX tasks_callbacks"), "{callbacks}");
        assert!(!callbacks.contains("TEMP B-TREE"), "{callbacks}");
        let due = plan(&conn, &crate::schedules::due_sql());
        assert!(due.contains("INDEX schedules_due"), "{due}");
        assert!(!due.contains("TEMP B-TREE"), "{due}");
        let prune = plan(&conn, PRUNE_SQL);
        assert!(prune.contains("INDEX tasks_finished"), "{prune}");
        let history = plan(&conn, "DELETE FROM task_events WHERE task_id = ?1");
        assert!(history.contains("PRIMARY KEY (task_id=?)"), "{history}");
    }
}
