//! Writes on tasks. Each is one statement where it can be (a claim, a
//! batch completion, a rescue), so no transaction or connection is held
//! while work runs. Statements that make tasks due now also `NOTIFY` the
//! store's channel with the queue name, in the same statement, so idle
//! workers wake up.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::GenericClient;
use signet_store::delivery::check_exchange;
use signet_store::rows::{claim_order, headers_to_json};
use signet_store::{
    ClaimRequest, DeadReason, DeliverySettlement, Enqueued, FailOutcome, HttpExchange, LeaseToken,
    NewTask, Settlement, SignatureRecord, StoreError, StoreResult, TaskRow, TaskState,
    MESSAGE_QUEUE,
};
use tokio_postgres::types::ToSql;

use crate::error_map::{is_unique_violation, map_err};
use crate::history::ATTEMPT_EVENT;
use crate::pause::not_paused;
use crate::queries::task_state;
use crate::row::{task_from_row, TASK_COLUMNS};

/// The states a claim takes tasks from. Must match the `tasks_claim` index.
const CLAIMABLE: &str = "state IN ('available', 'scheduled', 'retryable')";

/// Parameters of one statement.
type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;

fn limit_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// What happens to each task of a batch.
enum Slot {
    /// Inserted (unless its idempotency key was taken meanwhile).
    Insert,
    /// Same idempotency key as an earlier task of the batch (its index).
    SameAs(usize),
    /// Its idempotency key is held by this stored task (same request).
    Existing(String),
}

/// An idempotency key as stored: `(scope, kind, key)`.
type KeyTriple = (String, String, String);

/// Inserts tasks in one statement; an idempotency key already present in
/// the task's scope and kind returns the task holding it (same request) or
/// fails with a conflict naming what differs. Keyed batches run in a
/// transaction (see `PostgresStore::enqueue_batch`), so a conflict found
/// after the insert (a concurrent enqueue took the key) stores nothing.
pub(crate) async fn enqueue_batch(
    client: &impl GenericClient,
    channel: &str,
    tasks: Vec<NewTask>,
    now_ms: i64,
) -> StoreResult<Vec<Enqueued>> {
    let n = tasks.len();
    // The stored rows holding any key the batch asks for (in its own scope,
    // or the legacy one for scopes that read it).
    let wanted: Vec<KeyTriple> = tasks
        .iter()
        .filter_map(NewTask::idempotency)
        .flat_map(|c| {
            c.lookup_scopes()
                .into_iter()
                .map(move |s| (s.to_owned(), c.kind.as_str().to_owned(), c.key.to_owned()))
        })
        .collect();
    let held = held_keys(client, &wanted).await?;
    let mut slots = Vec::with_capacity(n);
    let mut first_with_key: HashMap<KeyTriple, usize> = HashMap::new();
    for (i, task) in tasks.iter().enumerate() {
        let Some(claim) = task.idempotency() else {
            slots.push(Slot::Insert);
            continue;
        };
        let triple = (
            claim.scope.as_str().to_owned(),
            claim.kind.as_str().to_owned(),
            claim.key.to_owned(),
        );
        if let Some(&j) = first_with_key.get(&triple) {
            claim.check_same_request(tasks[j].fingerprint.encode().as_deref())?;
            slots.push(Slot::SameAs(j));
            continue;
        }
        let found = claim
            .lookup_scopes()
            .into_iter()
            .find_map(|scope| held.get(&(scope.to_owned(), triple.1.clone(), triple.2.clone())));
        if let Some((id, fingerprint)) = found {
            claim.check_same_request(fingerprint.as_deref())?;
            slots.push(Slot::Existing(id.clone()));
            continue;
        }
        first_with_key.insert(triple, i);
        slots.push(Slot::Insert);
    }
    // Column arrays of the inserted tasks.
    let mut ids = Vec::with_capacity(n);
    let mut queues = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut args: Vec<&[u8]> = Vec::with_capacity(n);
    let mut headers = Vec::with_capacity(n);
    let mut created = Vec::with_capacity(n);
    let mut not_before = Vec::with_capacity(n);
    let mut expires = Vec::with_capacity(n);
    let mut max_attempts = Vec::with_capacity(n);
    let mut callback = Vec::with_capacity(n);
    let mut sig_alg = Vec::with_capacity(n);
    let mut sig_key = Vec::with_capacity(n);
    let mut sig: Vec<Option<&[u8]>> = Vec::with_capacity(n);
    let mut states = Vec::with_capacity(n);
    let mut priorities = Vec::with_capacity(n);
    let mut run_at = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut scopes = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut fingerprints = Vec::with_capacity(n);
    let mut placed = Vec::with_capacity(n);
    for (task, slot) in tasks.iter().zip(&slots) {
        let env = &task.envelope;
        let (state, run_at_ms) = match env.not_before_ms {
            Some(t) if t > now_ms => (TaskState::Scheduled, t),
            Some(t) => (TaskState::Available, t),
            None => (TaskState::Available, now_ms),
        };
        placed.push((state, run_at_ms));
        if !matches!(slot, Slot::Insert) {
            continue;
        }
        ids.push(env.id.as_str());
        queues.push(env.queue.as_str());
        names.push(env.name.as_str());
        args.push(env.args.as_slice());
        headers.push(headers_to_json(&env.headers)?);
        created.push(env.created_at_ms);
        not_before.push(env.not_before_ms);
        expires.push(env.expires_at_ms);
        max_attempts.push(i64::from(env.max_attempts));
        callback.push(env.callback_url.as_deref());
        let s = task.signature.as_ref();
        sig_alg.push(s.map(|s| s.alg.as_str()));
        sig_key.push(s.map(|s| s.key_id.as_str()));
        sig.push(s.map(|s| s.sig.as_slice()));
        states.push(state.as_str());
        priorities.push(task.priority);
        run_at.push(run_at_ms);
        let claim = task.idempotency();
        keys.push(task.idempotency_key.as_deref());
        scopes.push(claim.as_ref().map(|c| c.scope.as_str()));
        kinds.push(claim.as_ref().map(|c| c.kind.as_str()));
        fingerprints.push(claim.as_ref().and_then(|c| c.stored_fingerprint()));
    }
    let mut inserted = HashSet::with_capacity(ids.len());
    if !ids.is_empty() {
        let stmt = client
            .prepare_cached(
                "WITH ins AS ( \
                   INSERT INTO tasks (id, queue, name, args, headers, created_at_ms, not_before_ms, \
                     expires_at_ms, max_attempts, callback_url, sig_alg, sig_key_id, sig, state, \
                     priority, attempt, run_at_ms, idempotency_key, updated_at_ms, \
                     idempotency_scope, idempotency_kind, idempotency_fingerprint) \
                   SELECT id, queue, name, args, headers, created_at_ms, not_before_ms, \
                     expires_at_ms, max_attempts, callback_url, sig_alg, sig_key_id, sig, state, \
                     priority, 0, run_at_ms, idempotency_key, $18, \
                     idempotency_scope, idempotency_kind, idempotency_fingerprint \
                   FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BYTEA[], $5::TEXT[], \
                     $6::INT8[], $7::INT8[], $8::INT8[], $9::INT8[], $10::TEXT[], $11::TEXT[], \
                     $12::TEXT[], $13::BYTEA[], $14::TEXT[], $15::INT4[], $16::INT8[], $17::TEXT[], \
                     $20::TEXT[], $21::TEXT[], $22::TEXT[]) \
                     AS t(id, queue, name, args, headers, created_at_ms, not_before_ms, \
                     expires_at_ms, max_attempts, callback_url, sig_alg, sig_key_id, sig, state, \
                     priority, run_at_ms, idempotency_key, \
                     idempotency_scope, idempotency_kind, idempotency_fingerprint) \
                   ON CONFLICT (idempotency_scope, idempotency_kind, idempotency_key) \
                     WHERE idempotency_key IS NOT NULL DO NOTHING \
                   RETURNING id, queue, state) \
                 SELECT id, (SELECT COUNT(pg_notify($19, q)) FROM \
                     (SELECT DISTINCT queue AS q FROM ins WHERE state = 'available') AS due) \
                 FROM ins",
            )
            .await
            .map_err(|e| map_err("preparing an enqueue", e))?;
        let params: Params<'_> = vec![
            &ids,
            &queues,
            &names,
            &args,
            &headers,
            &created,
            &not_before,
            &expires,
            &max_attempts,
            &callback,
            &sig_alg,
            &sig_key,
            &sig,
            &states,
            &priorities,
            &run_at,
            &keys,
            &now_ms,
            &channel,
            &scopes,
            &kinds,
            &fingerprints,
        ];
        let rows = match client.query(&stmt, &params).await {
            Ok(rows) => rows,
            Err(e) if is_unique_violation(&e, "tasks_pkey") => {
                return Err(duplicate_id(client, &ids).await);
            }
            Err(e) => return Err(map_err(format!("enqueueing {} task(s)", ids.len()), e)),
        };
        for row in &rows {
            let id: String = row
                .try_get(0)
                .map_err(|e| map_err("reading enqueued ids", e))?;
            inserted.insert(id);
        }
    }
    // Keys a concurrent enqueue took between the lookup and the insert.
    let raced: Vec<KeyTriple> = tasks
        .iter()
        .zip(&slots)
        .filter(|(t, s)| matches!(s, Slot::Insert) && !inserted.contains(&t.envelope.id))
        .filter_map(|(t, _)| t.idempotency())
        .map(|c| {
            (
                c.scope.as_str().to_owned(),
                c.kind.as_str().to_owned(),
                c.key.to_owned(),
            )
        })
        .collect();
    let raced = held_keys(client, &raced).await?;
    let mut existing_ids: Vec<&str> = slots
        .iter()
        .filter_map(|s| match s {
            Slot::Existing(id) => Some(id.as_str()),
            _ => None,
        })
        .collect();
    existing_ids.extend(raced.values().map(|(id, _)| id.as_str()));
    let existing = rows_by_id(client, &existing_ids).await?;
    let mut out: Vec<Enqueued> = Vec::with_capacity(n);
    for (i, (task, slot)) in tasks.into_iter().zip(slots).enumerate() {
        let entry = match slot {
            Slot::SameAs(j) => Enqueued {
                task: out[j].task.clone(),
                created: false,
            },
            Slot::Insert if inserted.contains(&task.envelope.id) => {
                let (state, run_at_ms) = placed[i];
                Enqueued {
                    task: TaskRow::enqueued(task, state, run_at_ms, now_ms),
                    created: true,
                }
            }
            Slot::Insert => {
                let claim = task.idempotency();
                let holder = claim.as_ref().and_then(|c| {
                    raced.get(&(
                        c.scope.as_str().to_owned(),
                        c.kind.as_str().to_owned(),
                        c.key.to_owned(),
                    ))
                });
                let (Some(claim), Some((id, fingerprint))) = (claim, holder) else {
                    return Err(taken_then_deleted(&task));
                };
                claim.check_same_request(fingerprint.as_deref())?;
                let found = existing
                    .get(id)
                    .cloned()
                    .ok_or_else(|| taken_then_deleted(&task))?;
                Enqueued {
                    task: found,
                    created: false,
                }
            }
            Slot::Existing(id) => Enqueued {
                task: existing
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| taken_then_deleted(&task))?,
                created: false,
            },
        };
        out.push(entry);
    }
    Ok(out)
}

/// A task whose idempotency key was held by a task that is gone by the
/// time it is read (pruned or purged meanwhile).
fn taken_then_deleted(task: &NewTask) -> StoreError {
    StoreError::Conflict(format!(
        "task {}: idempotency key {:?} is taken by a task that was deleted meanwhile; enqueue again",
        task.envelope.id,
        task.idempotency_key.as_deref().unwrap_or_default()
    ))
}

/// The stored rows holding these `(scope, kind, key)`s: id and stored
/// fingerprint per key.
async fn held_keys(
    client: &impl GenericClient,
    wanted: &[KeyTriple],
) -> StoreResult<HashMap<KeyTriple, (String, Option<String>)>> {
    let mut held = HashMap::new();
    if wanted.is_empty() {
        return Ok(held);
    }
    let scopes: Vec<&str> = wanted.iter().map(|t| t.0.as_str()).collect();
    let kinds: Vec<&str> = wanted.iter().map(|t| t.1.as_str()).collect();
    let keys: Vec<&str> = wanted.iter().map(|t| t.2.as_str()).collect();
    let stmt = client
        .prepare_cached(
            "SELECT idempotency_scope, idempotency_kind, idempotency_key, id, \
               idempotency_fingerprint FROM tasks \
             WHERE idempotency_key IS NOT NULL \
               AND (idempotency_scope, idempotency_kind, idempotency_key) IN \
                 (SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[]))",
        )
        .await
        .map_err(|e| map_err("preparing an idempotency lookup", e))?;
    for row in client
        .query(&stmt, &[&scopes, &kinds, &keys])
        .await
        .map_err(|e| map_err("looking up idempotency keys", e))?
    {
        let read = |e| map_err("reading an idempotency key", e);
        let triple = (
            row.try_get(0).map_err(read)?,
            row.try_get(1).map_err(read)?,
            row.try_get(2).map_err(read)?,
        );
        held.insert(
            triple,
            (row.try_get(3).map_err(read)?, row.try_get(4).map_err(read)?),
        );
    }
    Ok(held)
}

/// The tasks with these ids, by id.
async fn rows_by_id(
    client: &impl GenericClient,
    ids: &[&str],
) -> StoreResult<HashMap<String, TaskRow>> {
    let mut rows = HashMap::new();
    if ids.is_empty() {
        return Ok(rows);
    }
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id = ANY($1)"
        ))
        .await
        .map_err(|e| map_err("preparing a task lookup", e))?;
    for row in client
        .query(&stmt, &[&ids])
        .await
        .map_err(|e| map_err("reading the tasks holding idempotency keys", e))?
    {
        let task = task_from_row(&row)?;
        rows.insert(task.id().to_owned(), task);
    }
    Ok(rows)
}

/// The error for a batch that reuses an existing task id, naming the id.
async fn duplicate_id(client: &impl GenericClient, ids: &[&str]) -> StoreError {
    let found = client
        .query_opt("SELECT id FROM tasks WHERE id = ANY($1) LIMIT 1", &[&ids])
        .await
        .ok()
        .flatten()
        .and_then(|r| r.try_get::<_, String>(0).ok());
    let which = found.map_or_else(
        || "a task of the batch".to_owned(),
        |id| format!("task {id}"),
    );
    StoreError::Conflict(format!(
        "{which} already exists; every task needs a fresh id (TaskId::generate()); nothing was enqueued"
    ))
}

/// Claim from one queue: `$1` owner, `$2` lease expiry, `$3` now, `$4`
/// queue, `$5` limit. One statement: the candidates are locked with `SKIP
/// LOCKED`, so concurrent claimers pass each other instead of waiting. A
/// paused queue gives none.
pub(crate) fn claim_one_queue_sql() -> String {
    format!(
        "UPDATE tasks SET state = 'running', attempt = attempt + 1, lease_owner = $1, \
         lease_expires_at_ms = $2, updated_at_ms = $3, attempt_started_at_ms = $3 \
         WHERE id IN (SELECT id FROM tasks \
             WHERE {CLAIMABLE} AND queue = $4 AND run_at_ms <= $3 AND {} \
             ORDER BY priority DESC, run_at_ms, id LIMIT $5 FOR UPDATE SKIP LOCKED) \
         RETURNING {TASK_COLUMNS}",
        not_paused("$4")
    )
}

/// Claim from several queues (`$4` an array): the best candidates of each
/// queue (each an ordered index scan), merged, best first.
fn claim_many_queues_sql() -> String {
    format!(
        "UPDATE tasks SET state = 'running', attempt = attempt + 1, lease_owner = $1, \
         lease_expires_at_ms = $2, updated_at_ms = $3, attempt_started_at_ms = $3 \
         WHERE id IN (SELECT c.id FROM UNNEST($4::TEXT[]) AS q(name), \
             LATERAL (SELECT id, priority, run_at_ms FROM tasks \
                 WHERE {CLAIMABLE} AND queue = q.name AND run_at_ms <= $3 \
                 ORDER BY priority DESC, run_at_ms, id LIMIT $5 FOR UPDATE SKIP LOCKED) AS c \
             WHERE {} \
             ORDER BY c.priority DESC, c.run_at_ms, c.id LIMIT $5) \
         RETURNING {TASK_COLUMNS}",
        not_paused("q.name")
    )
}

/// Claims due tasks, best first.
pub(crate) async fn claim(
    client: &impl GenericClient,
    req: &ClaimRequest,
    now_ms: i64,
) -> StoreResult<Vec<TaskRow>> {
    if req.limit == 0 {
        return Ok(Vec::new());
    }
    let limit = limit_i64(req.limit);
    let expires = now_ms.saturating_add(req.lease_ms);
    let mut queues: Vec<&str> = req.queues.iter().map(String::as_str).collect();
    queues.sort_unstable();
    queues.dedup();
    let rows = if let [queue] = queues.as_slice() {
        let stmt = client
            .prepare_cached(&claim_one_queue_sql())
            .await
            .map_err(|e| map_err("preparing a claim", e))?;
        client
            .query(&stmt, &[&req.worker_id, &expires, &now_ms, queue, &limit])
            .await
            .map_err(|e| map_err(format!("claiming from queue {queue}"), e))?
    } else {
        let stmt = client
            .prepare_cached(&claim_many_queues_sql())
            .await
            .map_err(|e| map_err("preparing a claim", e))?;
        client
            .query(&stmt, &[&req.worker_id, &expires, &now_ms, &queues, &limit])
            .await
            .map_err(|e| map_err(format!("claiming from queues {}", queues.join(", ")), e))?
    };
    let mut out = rows
        .iter()
        .map(task_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    // RETURNING gives no order: restore the claim order.
    out.sort_by(claim_order);
    Ok(out)
}

/// The lease condition; its parameters follow the statement's own.
fn lease_guard(first: usize) -> String {
    format!(
        "id = ${} AND state = 'running' AND lease_owner = ${} AND attempt = ${}",
        first,
        first + 1,
        first + 2
    )
}

/// Runs a statement guarded by the lease (its last three parameters); no
/// row touched means the lease is lost. Statements that notify return a
/// row per task touched, the others a count.
async fn with_lease(
    client: &impl GenericClient,
    sql: &str,
    lease: &LeaseToken,
    params: &[&(dyn ToSql + Sync)],
    returns_rows: bool,
) -> StoreResult<()> {
    let stmt = client
        .prepare_cached(sql)
        .await
        .map_err(|e| map_err("preparing a lease update", e))?;
    let attempt = i64::from(lease.attempt);
    let mut all: Params<'_> = Vec::with_capacity(params.len() + 3);
    all.extend_from_slice(params);
    all.push(&lease.task_id);
    all.push(&lease.worker_id);
    all.push(&attempt);
    let context = || format!("updating task {}", lease.task_id);
    let changed = if returns_rows {
        client
            .query(&stmt, &all)
            .await
            .map_err(|e| map_err(context(), e))?
            .len() as u64
    } else {
        client
            .execute(&stmt, &all)
            .await
            .map_err(|e| map_err(context(), e))?
    };
    if changed == 0 {
        return Err(lease.lost());
    }
    Ok(())
}

/// Extends a lease.
pub(crate) async fn heartbeat(
    client: &impl GenericClient,
    lease: &LeaseToken,
    lease_ms: i64,
    now_ms: i64,
) -> StoreResult<()> {
    let expires = now_ms.saturating_add(lease_ms);
    let sql = format!(
        "UPDATE tasks SET lease_expires_at_ms = $1, updated_at_ms = $2 WHERE {}",
        lease_guard(3)
    );
    with_lease(client, &sql, lease, &[&expires, &now_ms], false).await
}

/// The HTTP exchange of a delivery as statement parameters: status,
/// latency, response body (all `NULL` for a task).
fn http_params(http: Option<&HttpExchange>) -> (Option<i32>, Option<i64>, Option<&[u8]>) {
    (
        http.and_then(|h| h.status).map(i32::from),
        http.map(|h| h.latency_ms),
        http.map(|h| h.response_body.as_slice()),
    )
}

/// `e AS (INSERT …)`: the attempt event of each row of `u` (which returns
/// `id, n, attempt_started_at_ms, event_seq`), ended at `$at` by worker `$worker`,
/// with `outcome` (an SQL expression over `u`), error `$error` and the HTTP
/// parameters `$http..$http+2`.
fn attempt_event_cte(at: usize, worker: usize, outcome: &str, error: &str, http: usize) -> String {
    format!(
        "e AS (INSERT INTO task_events ({ATTEMPT_EVENT}) \
         SELECT u.id, u.event_seq, 'attempt', ${at}, u.n, ${worker}, u.attempt_started_at_ms, \
         {outcome}, \
         {error}, ${http}::INT4, ${}::INT8, ${}::BYTEA FROM u)",
        http + 1,
        http + 2
    )
}

/// Marks a running task succeeded and keeps the attempt on its row (see
/// `history::list`), with a delivery's HTTP exchange: one update, no event
/// row.
pub(crate) async fn complete(
    client: &impl GenericClient,
    lease: &LeaseToken,
    result: Option<&[u8]>,
    http: Option<&HttpExchange>,
    now_ms: i64,
) -> StoreResult<()> {
    let sql = format!(
        "UPDATE tasks SET state = 'succeeded', result = $1, attempt_worker = lease_owner, \
         attempt_status = $2, attempt_latency_ms = $3, attempt_response_body = $4, \
         lease_owner = NULL, lease_expires_at_ms = NULL, updated_at_ms = $5, \
         finished_at_ms = $5, event_seq = event_seq + 1 WHERE {}",
        lease_guard(6)
    );
    let (status, latency, body) = http_params(http);
    with_lease(
        client,
        &sql,
        lease,
        &[&result, &status, &latency, &body, &now_ms],
        false,
    )
    .await
}

/// Completes many running tasks in one statement (one round trip); each
/// entry whose lease is not current gets `LeaseLost`, the others succeed.
pub(crate) async fn complete_batch(
    client: &impl GenericClient,
    items: &[(LeaseToken, Option<Vec<u8>>)],
    now_ms: i64,
) -> StoreResult<Vec<StoreResult<()>>> {
    // A task named twice: only its first entry can win.
    let mut seen = HashSet::with_capacity(items.len());
    let first: Vec<bool> = items
        .iter()
        .map(|(l, _)| seen.insert(l.task_id.as_str()))
        .collect();
    let mut ids = Vec::with_capacity(items.len());
    let mut owners = Vec::with_capacity(items.len());
    let mut attempts = Vec::with_capacity(items.len());
    let mut results: Vec<Option<&[u8]>> = Vec::with_capacity(items.len());
    for ((lease, result), first) in items.iter().zip(&first) {
        if *first {
            ids.push(lease.task_id.as_str());
            owners.push(lease.worker_id.as_str());
            attempts.push(i64::from(lease.attempt));
            results.push(result.as_deref());
        }
    }
    let stmt = client
        .prepare_cached(
            "UPDATE tasks AS t SET state = 'succeeded', result = v.result, \
                 attempt_worker = t.lease_owner, attempt_status = NULL, \
                 attempt_latency_ms = NULL, attempt_response_body = NULL, lease_owner = NULL, \
                 lease_expires_at_ms = NULL, updated_at_ms = $1, finished_at_ms = $1, \
                 event_seq = t.event_seq + 1 \
             FROM UNNEST($2::TEXT[], $3::TEXT[], $4::INT8[], $5::BYTEA[]) \
               AS v(id, owner, attempt, result) \
             WHERE t.id = v.id AND t.state = 'running' AND t.lease_owner = v.owner \
               AND t.attempt = v.attempt \
             RETURNING t.id",
        )
        .await
        .map_err(|e| map_err("preparing a batch completion", e))?;
    let rows = client
        .query(&stmt, &[&now_ms, &ids, &owners, &attempts, &results])
        .await
        .map_err(|e| map_err(format!("completing {} task(s)", ids.len()), e))?;
    let mut done = HashSet::with_capacity(rows.len());
    for row in &rows {
        let id: String = row
            .try_get(0)
            .map_err(|e| map_err("reading completed ids", e))?;
        done.insert(id);
    }
    Ok(items
        .iter()
        .zip(first)
        .map(|((lease, _), first)| {
            if first && done.contains(&lease.task_id) {
                Ok(())
            } else {
                Err(lease.lost())
            }
        })
        .collect())
}

/// Settles many delivery attempts, each entry on its own and answered in
/// order: delivered ones in one statement (their rows, which keep the
/// attempt and its HTTP exchange),
/// failed ones each in a statement of its own, all sent at once (pipelined)
/// and, when there is more than one statement, in one transaction: the
/// batch costs one round trip and one commit. An invalid exchange fails
/// only its entry; a message named twice is settled by its first valid
/// entry only. A database error fails the whole call and changes nothing.
pub(crate) async fn settle_deliveries(
    client: &mut deadpool_postgres::Object,
    channel: &str,
    items: &[DeliverySettlement],
    now_ms: i64,
) -> StoreResult<Vec<StoreResult<()>>> {
    let mut out: Vec<StoreResult<()>> = Vec::with_capacity(items.len());
    let mut seen = HashSet::with_capacity(items.len());
    let mut delivered = Vec::new();
    let mut failed = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if let Err(e) = check_exchange(&item.http, &item.settlement) {
            out.push(Err(e));
            continue;
        }
        if !seen.insert(item.lease.task_id.as_str()) {
            out.push(Err(item.lease.lost()));
            continue;
        }
        // Replaced by the statement's answer below.
        out.push(Ok(()));
        match &item.settlement {
            Settlement::Delivered { result } => delivered.push((i, result.as_deref())),
            Settlement::Failed { error, outcome } => failed.push((i, error.as_str(), outcome)),
        }
    }
    let written = if failed.is_empty() {
        settle_sorted(&*client, channel, items, &delivered, &failed, now_ms).await?
    } else {
        let tx = client
            .transaction()
            .await
            .map_err(|e| map_err("starting to settle deliveries", e))?;
        let written = settle_sorted(&tx, channel, items, &delivered, &failed, now_ms).await?;
        tx.commit()
            .await
            .map_err(|e| map_err("committing settled deliveries", e))?;
        written
    };
    for (i, r) in written {
        out[i] = r;
    }
    Ok(out)
}

/// The statements of [`settle_deliveries`], sent together: each entry's
/// answer by its index, or the first database error (which aborted the
/// transaction, so nothing is written).
async fn settle_sorted(
    client: &impl GenericClient,
    channel: &str,
    items: &[DeliverySettlement],
    delivered: &[(usize, Option<&[u8]>)],
    failed: &[(usize, &str, &FailOutcome)],
    now_ms: i64,
) -> StoreResult<Vec<(usize, StoreResult<()>)>> {
    let fails = futures::future::join_all(failed.iter().map(|(i, error, outcome)| {
        let item = &items[*i];
        let http = Some(&item.http);
        async move {
            let r = fail(client, channel, &item.lease, error, outcome, http, now_ms).await;
            (*i, r)
        }
    }));
    let (done, fails) = futures::join!(deliver_batch(client, items, delivered, now_ms), fails);
    let done = done?;
    let mut out = Vec::with_capacity(delivered.len() + fails.len());
    for (i, _) in delivered {
        let lease = &items[*i].lease;
        let r = if done.contains(lease.task_id.as_str()) {
            Ok(())
        } else {
            Err(lease.lost())
        };
        out.push((*i, r));
    }
    for (i, r) in fails {
        match r {
            Ok(()) => out.push((i, Ok(()))),
            Err(e @ StoreError::LeaseLost { .. }) => out.push((i, Err(e))),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Marks delivered messages succeeded, each keeping its attempt and HTTP
/// exchange on its row, in one statement; answers the ids whose lease was
/// current (the others changed nothing).
async fn deliver_batch(
    client: &impl GenericClient,
    items: &[DeliverySettlement],
    delivered: &[(usize, Option<&[u8]>)],
    now_ms: i64,
) -> StoreResult<HashSet<String>> {
    if delivered.is_empty() {
        return Ok(HashSet::new());
    }
    let n = delivered.len();
    let mut ids = Vec::with_capacity(n);
    let mut owners = Vec::with_capacity(n);
    let mut attempts = Vec::with_capacity(n);
    let mut results = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut latencies = Vec::with_capacity(n);
    let mut bodies = Vec::with_capacity(n);
    for (i, result) in delivered {
        let item = &items[*i];
        let (status, latency, body) = http_params(Some(&item.http));
        ids.push(item.lease.task_id.as_str());
        owners.push(item.lease.worker_id.as_str());
        attempts.push(i64::from(item.lease.attempt));
        results.push(*result);
        statuses.push(status);
        latencies.push(latency);
        bodies.push(body);
    }
    let stmt = client
        .prepare_cached(
            "UPDATE tasks AS t SET state = 'succeeded', result = v.result, \
                 attempt_worker = t.lease_owner, attempt_status = v.status, \
                 attempt_latency_ms = v.latency, attempt_response_body = v.body, \
                 lease_owner = NULL, lease_expires_at_ms = NULL, updated_at_ms = $1, \
                 finished_at_ms = $1, event_seq = t.event_seq + 1 \
             FROM UNNEST($2::TEXT[], $3::TEXT[], $4::INT8[], $5::BYTEA[], $6::INT4[], \
                 $7::INT8[], $8::BYTEA[]) \
               AS v(id, owner, attempt, result, status, latency, body) \
             WHERE t.id = v.id AND t.state = 'running' AND t.lease_owner = v.owner \
               AND t.attempt = v.attempt \
             RETURNING t.id",
        )
        .await
        .map_err(|e| map_err("preparing a batch of deliveries", e))?;
    let rows = client
        .query(
            &stmt,
            &[
                &now_ms, &ids, &owners, &attempts, &results, &statuses, &latencies, &bodies,
            ],
        )
        .await
        .map_err(|e| map_err(format!("settling {n} delivered message(s)"), e))?;
    rows.iter()
        .map(|row| {
            row.try_get::<_, String>(0)
                .map_err(|e| map_err("reading settled ids", e))
        })
        .collect()
}

/// Records a failed attempt (with the HTTP exchange of a delivery) in one
/// statement; a retry due now wakes waiting workers.
pub(crate) async fn fail(
    client: &impl GenericClient,
    channel: &str,
    lease: &LeaseToken,
    error: &str,
    outcome: &FailOutcome,
    http: Option<&HttpExchange>,
    now_ms: i64,
) -> StoreResult<()> {
    let (status, latency, body) = http_params(http);
    match outcome {
        FailOutcome::Retry { at_ms } => {
            let due_now = *at_ms <= now_ms;
            let sql = format!(
                "WITH u AS (UPDATE tasks SET state = 'retryable', run_at_ms = $1, last_error = $2, \
                 lease_owner = NULL, lease_expires_at_ms = NULL, updated_at_ms = $3, \
                 event_seq = event_seq + 1 WHERE {} \
                 RETURNING id, queue, attempt_offset + attempt AS n, attempt_started_at_ms, \
                 event_seq), {} \
                 SELECT queue, CASE WHEN $4 THEN pg_notify($5, queue)::TEXT END FROM u",
                lease_guard(9),
                attempt_event_cte(3, 10, "'retry'", "$2", 6)
            );
            with_lease(
                client,
                &sql,
                lease,
                &[
                    at_ms, &error, &now_ms, &due_now, &channel, &status, &latency, &body,
                ],
                true,
            )
            .await
        }
        FailOutcome::Dead { reason, detail } => {
            let sql = format!(
                "WITH u AS (UPDATE tasks SET state = 'dead', dead_reason = $1, dead_detail = $2, \
                 last_error = $3, lease_owner = NULL, lease_expires_at_ms = NULL, \
                 updated_at_ms = $4, finished_at_ms = $4, event_seq = event_seq + 1 WHERE {} \
                 RETURNING id, attempt_offset + attempt AS n, attempt_started_at_ms, event_seq), \
                 {} \
                 SELECT id FROM u",
                lease_guard(8),
                attempt_event_cte(4, 9, "'dead'", "$3", 5)
            );
            with_lease(
                client,
                &sql,
                lease,
                &[
                    &reason.as_str(),
                    detail,
                    &error,
                    &now_ms,
                    &status,
                    &latency,
                    &body,
                ],
                true,
            )
            .await
        }
    }
}

/// Gives a running task back without counting the attempt, due again at
/// `run_at_ms` (`scheduled` until then when later than `now_ms`), and wakes
/// waiting workers when it is due now.
pub(crate) async fn release(
    client: &impl GenericClient,
    channel: &str,
    lease: &LeaseToken,
    run_at_ms: i64,
    now_ms: i64,
) -> StoreResult<()> {
    let sql = format!(
        "WITH u AS (UPDATE tasks SET \
         state = CASE WHEN $3::BIGINT > $1::BIGINT THEN 'scheduled' ELSE 'available' END, \
         attempt = attempt - 1, run_at_ms = GREATEST($1::BIGINT, $3::BIGINT), \
         lease_owner = NULL, lease_expires_at_ms = NULL, updated_at_ms = $1 WHERE {} \
         RETURNING queue) \
         SELECT queue, CASE WHEN $3::BIGINT > $1::BIGINT THEN '' \
         ELSE pg_notify($2, queue)::TEXT END FROM u",
        lease_guard(4)
    );
    with_lease(client, &sql, lease, &[&now_ms, &channel, &run_at_ms], true).await
}

/// Which tasks an operator act applies to, as its refusal names them.
const WAITING: &str = "scheduled, available or retryable tasks";

/// Why an act on `id` changed nothing: it is unknown, or in a state the act
/// does not apply to (only `allowed` can be `action`).
async fn not_in_state(
    client: &impl GenericClient,
    id: &str,
    allowed: &str,
    action: &str,
) -> StoreError {
    match task_state(client, id).await {
        Ok(Some(state)) => StoreError::Conflict(format!(
            "task {id} is {state}; only {allowed} can be {action}"
        )),
        Ok(None) => StoreError::not_found("task", id),
        Err(e) => e,
    }
}

/// Runs `sql`, an update returning the row of `id` when it applied; a row
/// that did not apply gives [`not_in_state`].
async fn update_in_state(
    client: &impl GenericClient,
    sql: &str,
    (id, allowed, action): (&str, &str, &str),
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<TaskRow> {
    let stmt = client
        .prepare_cached(sql)
        .await
        .map_err(|e| map_err("preparing an update", e))?;
    let row = client
        .query_opt(&stmt, params)
        .await
        .map_err(|e| map_err(format!("updating task {id}"), e))?;
    match row {
        Some(row) => task_from_row(&row),
        None => Err(not_in_state(client, id, allowed, action).await),
    }
}

/// Cancels a task that has not started and records who did, in one
/// statement.
pub(crate) async fn cancel(
    client: &impl GenericClient,
    id: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<TaskRow> {
    update_in_state(
        client,
        &format!(
            "WITH u AS (UPDATE tasks SET state = 'cancelled', updated_at_ms = $1, \
                 finished_at_ms = $1, event_seq = event_seq + 1 \
               WHERE id = $2 AND {CLAIMABLE} RETURNING {TASK_COLUMNS}, event_seq), \
             e AS (INSERT INTO task_events (task_id, seq, kind, at_ms, actor) \
               SELECT id, event_seq, 'cancelled', $1, $3 FROM u) \
             SELECT {TASK_COLUMNS} FROM u"
        ),
        (id, WAITING, "cancelled"),
        &[&now_ms, &id, &actor],
    )
    .await
}

/// Dead-letters a task that has not started, recorded in its history, in
/// one statement.
pub(crate) async fn kill(
    client: &impl GenericClient,
    id: &str,
    reason: DeadReason,
    detail: &str,
    now_ms: i64,
) -> StoreResult<TaskRow> {
    update_in_state(
        client,
        &format!(
            "WITH u AS (UPDATE tasks SET state = 'dead', dead_reason = $1, dead_detail = $2, \
                 updated_at_ms = $3, finished_at_ms = $3, event_seq = event_seq + 1 \
               WHERE id = $4 AND {CLAIMABLE} RETURNING {TASK_COLUMNS}, event_seq), \
             e AS (INSERT INTO task_events (task_id, seq, kind, at_ms, reason, detail) \
               SELECT id, event_seq, 'dead-lettered', $3, $1, $2 FROM u) \
             SELECT {TASK_COLUMNS} FROM u"
        ),
        (id, WAITING, "dead-lettered"),
        &[&reason.as_str(), &detail, &now_ms, &id],
    )
    .await
}

/// Makes a retryable task due now, records who did and wakes its queue's
/// waiters, in one statement.
pub(crate) async fn retry_now(
    client: &impl GenericClient,
    channel: &str,
    id: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<TaskRow> {
    update_in_state(
        client,
        &format!(
            "WITH u AS (UPDATE tasks SET state = 'available', run_at_ms = $1, \
                 updated_at_ms = $1, event_seq = event_seq + 1 \
               WHERE id = $2 AND state = 'retryable' RETURNING {TASK_COLUMNS}, event_seq), \
             e AS (INSERT INTO task_events (task_id, seq, kind, at_ms, actor) \
               SELECT id, event_seq, 'retried-now', $1, $3 FROM u) \
             SELECT {TASK_COLUMNS}, pg_notify($4, queue)::TEXT FROM u"
        ),
        (
            id,
            "retryable tasks (waiting for their backoff)",
            "retried now",
        ),
        &[&now_ms, &id, &actor, &channel],
    )
    .await
}

/// Sends a succeeded message again, in one statement: due now, attempts
/// moved to the offset (numbers go on), a callback owed again, the resend
/// recorded, its queue's waiters woken. A success kept only on the row
/// (see `history::list`) is first written as its event, so making the row
/// pending again loses no attempt.
pub(crate) async fn resend(
    client: &impl GenericClient,
    channel: &str,
    id: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<TaskRow> {
    update_in_state(
        client,
        &format!(
            "WITH old AS (SELECT id, event_seq, attempt_offset + attempt AS n, attempt_worker, \
                 attempt_started_at_ms, finished_at_ms, attempt_status, attempt_latency_ms, \
                 attempt_response_body, \
                 (SELECT COALESCE(MAX(seq), 0) FROM task_events WHERE task_id = $2) AS last \
               FROM tasks WHERE id = $2 AND state = 'succeeded' AND queue = $5 FOR UPDATE), \
             u AS (UPDATE tasks AS t SET state = 'available', \
                 attempt_offset = t.attempt_offset + t.attempt, attempt = 0, run_at_ms = $1, \
                 finished_at_ms = NULL, lease_owner = NULL, lease_expires_at_ms = NULL, \
                 callback_sent_at_ms = NULL, updated_at_ms = $1, event_seq = t.event_seq + 1, \
                 attempt_status = NULL, attempt_latency_ms = NULL, attempt_response_body = NULL \
               FROM old WHERE t.id = old.id \
               RETURNING {}, t.event_seq), \
             kept AS (INSERT INTO task_events (task_id, seq, kind, at_ms, attempt, worker, \
                 started_at_ms, outcome, status, latency_ms, response_body) \
               SELECT id, event_seq, 'attempt', finished_at_ms, n, attempt_worker, \
                 attempt_started_at_ms, 'succeeded', attempt_status, attempt_latency_ms, \
                 attempt_response_body FROM old WHERE event_seq > last), \
             e AS (INSERT INTO task_events (task_id, seq, kind, at_ms, actor) \
               SELECT id, event_seq, 'resent', $1, $3 FROM u) \
             SELECT {TASK_COLUMNS}, pg_notify($4, queue)::TEXT FROM u",
            qualified("t", TASK_COLUMNS)
        ),
        (id, "succeeded messages", "resent"),
        &[&now_ms, &id, &actor, &channel, &MESSAGE_QUEUE],
    )
    .await
}

/// `columns` (a comma-separated list) each prefixed with `alias.`.
fn qualified(alias: &str, columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Expired leases, in one statement: retryable now (waking workers), or
/// dead with `max-attempts` once attempts are used up. Leases being
/// settled right now (row locked) are skipped and left to their holder.
pub(crate) async fn rescue_expired(
    client: &impl GenericClient,
    channel: &str,
    now_ms: i64,
    limit: usize,
) -> StoreResult<Vec<String>> {
    let stmt = client
        .prepare_cached(
            "WITH expired AS (SELECT id, lease_owner FROM tasks \
                 WHERE state = 'running' AND lease_expires_at_ms <= $1 \
                 ORDER BY lease_expires_at_ms, id LIMIT $2 FOR UPDATE SKIP LOCKED), \
             u AS (UPDATE tasks AS t SET \
                 state = CASE WHEN t.attempt >= t.max_attempts THEN 'dead' ELSE 'retryable' END, \
                 run_at_ms = CASE WHEN t.attempt >= t.max_attempts THEN t.run_at_ms ELSE $1 END, \
                 dead_reason = CASE WHEN t.attempt >= t.max_attempts THEN 'max-attempts' END, \
                 dead_detail = CASE WHEN t.attempt >= t.max_attempts THEN \
                     'lease expired on attempt ' || t.attempt || ' of ' || t.max_attempts END, \
                 last_error = 'lease expired: worker \"' || COALESCE(t.lease_owner, '') || \
                     '\" stopped heartbeating during attempt ' || t.attempt, \
                 lease_owner = NULL, lease_expires_at_ms = NULL, updated_at_ms = $1, \
                 finished_at_ms = CASE WHEN t.attempt >= t.max_attempts THEN $1 END, \
                 event_seq = t.event_seq + 1 \
               FROM expired WHERE t.id = expired.id AND t.state = 'running' \
               RETURNING t.id, t.queue, t.state, t.attempt_offset + t.attempt AS n, \
                 t.attempt_started_at_ms, t.last_error, expired.lease_owner, t.event_seq), \
             e AS (INSERT INTO task_events (task_id, seq, kind, at_ms, attempt, worker, \
                 started_at_ms, outcome, error) \
               SELECT id, event_seq, 'attempt', $1, n, lease_owner, attempt_started_at_ms, \
                 CASE WHEN state = 'dead' THEN 'dead' ELSE 'lease-expired' END, last_error \
               FROM u) \
             SELECT id, (SELECT COUNT(pg_notify($3, q)) FROM \
                 (SELECT DISTINCT queue AS q FROM u WHERE state = 'retryable') AS due) \
             FROM u ORDER BY id",
        )
        .await
        .map_err(|e| map_err("preparing a rescue", e))?;
    let rows = client
        .query(&stmt, &[&now_ms, &limit_i64(limit), &channel])
        .await
        .map_err(|e| map_err("rescuing expired leases", e))?;
    rows.iter()
        .map(|r| {
            r.try_get::<_, String>(0)
                .map_err(|e| map_err("reading rescued ids", e))
        })
        .collect()
}

/// `ids` in the order given, keeping those in `hit`.
fn in_given_order(ids: &[String], hit: &HashSet<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    ids.iter()
        .filter(|id| hit.contains(*id) && seen.insert(id.as_str()))
        .cloned()
        .collect()
}

fn id_set(rows: &[tokio_postgres::Row], context: &str) -> StoreResult<HashSet<String>> {
    rows.iter()
        .map(|r| r.try_get::<_, String>(0).map_err(|e| map_err(context, e)))
        .collect()
}

/// Dead letters back to `available`, attempts reset (moved to the offset,
/// so history numbers go on), the replay recorded, callbacks owed again.
pub(crate) async fn replay(
    client: &impl GenericClient,
    channel: &str,
    ids: &[String],
    actor: &str,
    now_ms: i64,
) -> StoreResult<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = client
        .prepare_cached(
            "WITH u AS (UPDATE tasks SET state = 'available', \
                 attempt_offset = attempt_offset + attempt, attempt = 0, run_at_ms = $1, \
                 event_seq = event_seq + 1, \
                 dead_reason = NULL, dead_detail = NULL, finished_at_ms = NULL, \
                 callback_sent_at_ms = NULL, lease_owner = NULL, lease_expires_at_ms = NULL, \
                 updated_at_ms = $1 \
               WHERE id = ANY($2) AND state = 'dead' RETURNING id, queue, event_seq), \
             e AS (INSERT INTO task_events (task_id, seq, kind, at_ms, actor) \
               SELECT id, event_seq, 'replayed', $1, $4 FROM u) \
             SELECT id, (SELECT COUNT(pg_notify($3, q)) FROM (SELECT DISTINCT queue AS q FROM u) AS d) \
             FROM u",
        )
        .await
        .map_err(|e| map_err("preparing a replay", e))?;
    let rows = client
        .query(&stmt, &[&now_ms, &ids, &channel, &actor])
        .await
        .map_err(|e| map_err(format!("replaying {} dead letter(s)", ids.len()), e))?;
    Ok(in_given_order(ids, &id_set(&rows, "reading replayed ids")?))
}

/// Re-signs a dead letter: replaces its signature columns (the envelope
/// stays) and records the old and new key ids, in one statement.
pub(crate) async fn resign(
    client: &impl GenericClient,
    id: &str,
    signature: &SignatureRecord,
    actor: &str,
    now_ms: i64,
) -> StoreResult<TaskRow> {
    let returned = TASK_COLUMNS
        .split(", ")
        .map(|c| format!("t.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let stmt = client
        .prepare_cached(&format!(
            "WITH old AS (SELECT id AS old_id, sig_key_id AS old_key_id FROM tasks \
                 WHERE id = $5 AND state = 'dead' FOR UPDATE), \
             u AS (UPDATE tasks AS t SET sig_alg = $1, sig_key_id = $2, sig = $3, \
                 updated_at_ms = $4, event_seq = t.event_seq + 1 FROM old WHERE t.id = old.old_id \
               RETURNING {returned}, old.old_key_id, t.event_seq), \
             e AS (INSERT INTO task_events (task_id, seq, kind, at_ms, actor, from_key_id, \
                 to_key_id) \
               SELECT id, event_seq, 'resigned', $4, $6, old_key_id, $2 FROM u) \
             SELECT {TASK_COLUMNS} FROM u"
        ))
        .await
        .map_err(|e| map_err("preparing a re-sign", e))?;
    let row = client
        .query_opt(
            &stmt,
            &[
                &signature.alg.as_str(),
                &signature.key_id,
                &signature.sig,
                &now_ms,
                &id,
                &actor,
            ],
        )
        .await
        .map_err(|e| map_err(format!("re-signing task {id}"), e))?;
    match row {
        Some(row) => task_from_row(&row),
        None => Err(match task_state(client, id).await? {
            Some(state) => StoreError::Conflict(format!(
                "task {id} is {state}; only dead letters can be re-signed"
            )),
            None => StoreError::not_found("task", id),
        }),
    }
}

/// Deletes dead letters and their history, in one statement.
pub(crate) async fn purge(client: &impl GenericClient, ids: &[String]) -> StoreResult<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = client
        .prepare_cached(
            "WITH d AS (DELETE FROM tasks WHERE id = ANY($1) AND state = 'dead' RETURNING id), \
             e AS (DELETE FROM task_events WHERE task_id IN (SELECT id FROM d)) \
             SELECT id FROM d",
        )
        .await
        .map_err(|e| map_err("preparing a purge", e))?;
    let rows = client
        .query(&stmt, &[&ids])
        .await
        .map_err(|e| map_err(format!("purging {} dead letter(s)", ids.len()), e))?;
    Ok(in_given_order(ids, &id_set(&rows, "reading purged ids")?))
}

/// Deletes old succeeded and cancelled tasks with their history, never
/// one whose callback is still owed.
pub(crate) async fn prune(
    client: &impl GenericClient,
    before_ms: i64,
    limit: usize,
) -> StoreResult<u64> {
    let stmt = client
        .prepare_cached(
            "WITH d AS (DELETE FROM tasks WHERE id IN (SELECT id FROM tasks \
               WHERE state IN ('succeeded', 'cancelled') AND finished_at_ms IS NOT NULL \
                 AND finished_at_ms < $1 \
                 AND (state = 'cancelled' OR callback_url IS NULL \
                   OR callback_sent_at_ms IS NOT NULL) \
               LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id), \
             e AS (DELETE FROM task_events WHERE task_id IN (SELECT id FROM d)) \
             SELECT COUNT(*) FROM d",
        )
        .await
        .map_err(|e| map_err("preparing a prune", e))?;
    let row = client
        .query_one(&stmt, &[&before_ms, &limit_i64(limit)])
        .await
        .map_err(|e| map_err("pruning finished tasks", e))?;
    let n: i64 = row
        .try_get(0)
        .map_err(|e| map_err("reading the pruned count", e))?;
    Ok(u64::try_from(n).unwrap_or(0))
}
