//! Reading rows, defensively: a row that does not decode gives an error
//! naming the row and column, never a panic.

use signet_sign::TaskEnvelope;
use signet_store::history::EventColumns;
use signet_store::rows::{
    corrupt_row, dead_reason_from_column, headers_from_json, state_from_column, BadColumn,
};
use signet_store::{
    ApiKeyRecord, CatchUp, HistoryEvent, LeaderLease, PushBinding, ScheduleRecord, SignatureRecord,
    StoreError, StoreResult, TargetRecord, TaskRow,
};
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

/// The task and API key columns, in the order [`task_from_row`] and
/// [`api_key_from_row`] read them.
pub(crate) use signet_store::rows::{API_KEY_COLUMNS, TASK_COLUMNS};

/// The target columns, in the order [`target_from_row`] reads them.
pub(crate) const TARGET_COLUMNS: &str = "id, name, url_prefix, sealed_secrets, \
     secret_fingerprint, rate_limit_per_s, max_concurrency, https_only, created_at_ms, updated_at_ms";

/// The push binding columns, in the order [`push_binding_from_row`] reads them.
pub(crate) const PUSH_BINDING_COLUMNS: &str = "queue, url, target_id, timeout_ms, concurrency, \
     require_signed_response, created_at_ms, updated_at_ms";

/// The schedule columns, in the order [`schedule_from_row`] reads them.
pub(crate) const SCHEDULE_COLUMNS: &str = "id, name, cron, timezone, payload, catch_up, paused, \
     next_fire_at_ms, last_fired_at_ms, created_at_ms, updated_at_ms";

/// The leader lease columns, in the order [`lease_from_row`] reads them.
pub(crate) const LEASE_COLUMNS: &str = "name, holder, term, expires_at_ms";

fn corrupt(what: &str, id: &str, column: &str, cause: impl std::fmt::Display) -> StoreError {
    corrupt_row(what, id, column, "psql", cause)
}

/// Reads column `idx` of a `what` row identified by `id`.
fn get<'a, T: FromSql<'a>>(
    row: &'a Row,
    idx: usize,
    what: &str,
    id: &str,
    name: &str,
) -> StoreResult<T> {
    row.try_get(idx).map_err(|e| corrupt(what, id, name, e))
}

fn first_id(row: &Row, what: &str) -> StoreResult<String> {
    row.try_get(0)
        .map_err(|e| corrupt(what, "(unknown id)", "id", e))
}

fn to_u32(v: i64, what: &str, id: &str, name: &str) -> StoreResult<u32> {
    u32::try_from(v).map_err(|e| corrupt(what, id, name, e))
}

fn opt_u32(v: Option<i64>, what: &str, id: &str, name: &str) -> StoreResult<Option<u32>> {
    v.map(|v| to_u32(v, what, id, name)).transpose()
}

/// The error for task `id` whose stored value does not decode.
fn bad(id: &str) -> impl Fn(BadColumn) -> StoreError + '_ {
    move |b| corrupt("task", id, b.column, b.cause)
}

/// Decodes a task row selected with [`TASK_COLUMNS`].
pub(crate) fn task_from_row(row: &Row) -> StoreResult<TaskRow> {
    let id = first_id(row, "task")?;
    let id = id.as_str();
    let headers_json: String = get(row, 4, "task", id, "headers")?;
    let headers = headers_from_json(&headers_json).map_err(bad(id))?;
    let signature = SignatureRecord::from_columns(
        get(row, 10, "task", id, "sig_alg")?,
        get(row, 11, "task", id, "sig_key_id")?,
        get(row, 12, "task", id, "sig")?,
    )
    .map_err(bad(id))?;
    let state: String = get(row, 13, "task", id, "state")?;
    let state = state_from_column(&state).map_err(bad(id))?;
    Ok(TaskRow {
        envelope: TaskEnvelope {
            id: id.to_owned(),
            queue: get(row, 1, "task", id, "queue")?,
            name: get(row, 2, "task", id, "name")?,
            args: get(row, 3, "task", id, "args")?,
            headers,
            created_at_ms: get(row, 5, "task", id, "created_at_ms")?,
            not_before_ms: get(row, 6, "task", id, "not_before_ms")?,
            expires_at_ms: get(row, 7, "task", id, "expires_at_ms")?,
            max_attempts: to_u32(
                get(row, 8, "task", id, "max_attempts")?,
                "task",
                id,
                "max_attempts",
            )?,
            callback_url: get(row, 9, "task", id, "callback_url")?,
        },
        signature,
        state,
        priority: get(row, 14, "task", id, "priority")?,
        attempt: to_u32(get(row, 15, "task", id, "attempt")?, "task", id, "attempt")?,
        attempts_before: to_u32(
            get(row, 26, "task", id, "attempt_offset")?,
            "task",
            id,
            "attempt_offset",
        )?,
        run_at_ms: get(row, 16, "task", id, "run_at_ms")?,
        lease_owner: get(row, 17, "task", id, "lease_owner")?,
        lease_expires_at_ms: get(row, 18, "task", id, "lease_expires_at_ms")?,
        last_error: get(row, 19, "task", id, "last_error")?,
        dead_reason: dead_reason_from_column(get(row, 20, "task", id, "dead_reason")?)
            .map_err(bad(id))?,
        dead_detail: get(row, 21, "task", id, "dead_detail")?,
        result: get(row, 22, "task", id, "result")?,
        idempotency_key: get(row, 23, "task", id, "idempotency_key")?,
        updated_at_ms: get(row, 24, "task", id, "updated_at_ms")?,
        finished_at_ms: get(row, 25, "task", id, "finished_at_ms")?,
    })
}

/// Decodes an API key row selected with [`API_KEY_COLUMNS`].
pub(crate) fn api_key_from_row(row: &Row) -> StoreResult<ApiKeyRecord> {
    let id = first_id(row, "api key")?;
    let k = "api key";
    Ok(ApiKeyRecord {
        name: get(row, 1, k, &id, "name")?,
        scope: get(row, 2, k, &id, "scope")?,
        hash: get(row, 3, k, &id, "hash")?,
        prefix: get(row, 4, k, &id, "prefix")?,
        created_at_ms: get(row, 5, k, &id, "created_at_ms")?,
        revoked_at_ms: get(row, 6, k, &id, "revoked_at_ms")?,
        id,
    })
}

/// Decodes a target row selected with [`TARGET_COLUMNS`].
pub(crate) fn target_from_row(row: &Row) -> StoreResult<TargetRecord> {
    let id = first_id(row, "target")?;
    let k = "target";
    Ok(TargetRecord {
        name: get(row, 1, k, &id, "name")?,
        url_prefix: get(row, 2, k, &id, "url_prefix")?,
        sealed_secrets: get(row, 3, k, &id, "sealed_secrets")?,
        secret_fingerprint: get(row, 4, k, &id, "secret_fingerprint")?,
        rate_limit_per_s: opt_u32(
            get(row, 5, k, &id, "rate_limit_per_s")?,
            k,
            &id,
            "rate_limit_per_s",
        )?,
        max_concurrency: opt_u32(
            get(row, 6, k, &id, "max_concurrency")?,
            k,
            &id,
            "max_concurrency",
        )?,
        https_only: get(row, 7, k, &id, "https_only")?,
        created_at_ms: get(row, 8, k, &id, "created_at_ms")?,
        updated_at_ms: get(row, 9, k, &id, "updated_at_ms")?,
        id,
    })
}

/// Decodes a schedule row selected with [`SCHEDULE_COLUMNS`].
/// Decodes a push binding row selected with [`PUSH_BINDING_COLUMNS`].
pub(crate) fn push_binding_from_row(row: &Row) -> StoreResult<PushBinding> {
    let k = "push binding";
    let queue: String = row
        .try_get(0)
        .map_err(|e| corrupt(k, "(unknown queue)", "queue", e))?;
    let q = queue.as_str();
    Ok(PushBinding {
        url: get(row, 1, k, q, "url")?,
        target_id: get(row, 2, k, q, "target_id")?,
        timeout_ms: to_u32(get(row, 3, k, q, "timeout_ms")?, k, q, "timeout_ms")?,
        concurrency: to_u32(get(row, 4, k, q, "concurrency")?, k, q, "concurrency")?,
        require_signed_response: get(row, 5, k, q, "require_signed_response")?,
        created_at_ms: get(row, 6, k, q, "created_at_ms")?,
        updated_at_ms: get(row, 7, k, q, "updated_at_ms")?,
        queue,
    })
}

pub(crate) fn schedule_from_row(row: &Row) -> StoreResult<ScheduleRecord> {
    let id = first_id(row, "schedule")?;
    let k = "schedule";
    let catch_up: String = get(row, 5, k, &id, "catch_up")?;
    Ok(ScheduleRecord {
        name: get(row, 1, k, &id, "name")?,
        cron: get(row, 2, k, &id, "cron")?,
        timezone: get(row, 3, k, &id, "timezone")?,
        payload: get(row, 4, k, &id, "payload")?,
        catch_up: CatchUp::parse(&catch_up).map_err(|e| corrupt(k, &id, "catch_up", e))?,
        paused: get(row, 6, k, &id, "paused")?,
        next_fire_at_ms: get(row, 7, k, &id, "next_fire_at_ms")?,
        last_fired_at_ms: get(row, 8, k, &id, "last_fired_at_ms")?,
        created_at_ms: get(row, 9, k, &id, "created_at_ms")?,
        updated_at_ms: get(row, 10, k, &id, "updated_at_ms")?,
        id,
    })
}

/// Decodes a leader lease row selected with [`LEASE_COLUMNS`].
pub(crate) fn lease_from_row(row: &Row) -> StoreResult<LeaderLease> {
    let name = first_id(row, "leader lease")?;
    let k = "leader lease";
    let term: i64 = get(row, 2, k, &name, "term")?;
    Ok(LeaderLease {
        holder: get(row, 1, k, &name, "holder")?,
        term: u64::try_from(term).map_err(|e| corrupt(k, &name, "term", e))?,
        expires_at_ms: get(row, 3, k, &name, "expires_at_ms")?,
        name,
    })
}

/// Decodes a history event selected with
/// [`EVENT_COLUMNS`](signet_store::history::EVENT_COLUMNS).
pub(crate) fn event_from_row(row: &Row, task_id: &str) -> StoreResult<HistoryEvent> {
    const K: &str = "history event of task";
    let status: Option<i32> = get(row, 9, K, task_id, "status")?;
    let columns = EventColumns {
        seq: get(row, 0, K, task_id, "seq")?,
        task_id: get(row, 1, K, task_id, "task_id")?,
        kind: get(row, 2, K, task_id, "kind")?,
        at_ms: get(row, 3, K, task_id, "at_ms")?,
        attempt: get(row, 4, K, task_id, "attempt")?,
        worker: get(row, 5, K, task_id, "worker")?,
        started_at_ms: get(row, 6, K, task_id, "started_at_ms")?,
        outcome: get(row, 7, K, task_id, "outcome")?,
        error: get(row, 8, K, task_id, "error")?,
        status: status.map(i64::from),
        latency_ms: get(row, 10, K, task_id, "latency_ms")?,
        response_body: get(row, 11, K, task_id, "response_body")?,
        actor: get(row, 12, K, task_id, "actor")?,
        reason: get(row, 13, K, task_id, "reason")?,
        detail: get(row, 14, K, task_id, "detail")?,
        from_key_id: get(row, 15, K, task_id, "from_key_id")?,
        to_key_id: get(row, 16, K, task_id, "to_key_id")?,
    };
    HistoryEvent::from_columns(columns).map_err(|(name, cause)| corrupt(K, task_id, name, cause))
}

/// Decodes [`ROW_ATTEMPT_COLUMNS`](signet_store::history::ROW_ATTEMPT_COLUMNS).
pub(crate) fn row_attempt_from_row(
    row: &Row,
    task_id: &str,
) -> StoreResult<signet_store::history::RowAttempt> {
    const K: &str = "task";
    let state: String = get(row, 0, K, task_id, "state")?;
    Ok(signet_store::history::RowAttempt {
        state: state_from_column(&state).map_err(bad(task_id))?,
        event_seq: get(row, 1, K, task_id, "event_seq")?,
        number: get(row, 2, K, task_id, "attempt")?,
        worker: get(row, 3, K, task_id, "attempt_worker")?,
        started_at_ms: get(row, 4, K, task_id, "attempt_started_at_ms")?,
        finished_at_ms: get(row, 5, K, task_id, "finished_at_ms")?,
        http: signet_store::HttpExchange::from_columns(
            get::<Option<i32>>(row, 6, K, task_id, "attempt_status")?.map(i64::from),
            get(row, 7, K, task_id, "attempt_latency_ms")?,
            get(row, 8, K, task_id, "attempt_response_body")?,
        )
        .map_err(|(name, cause)| corrupt(K, task_id, name, cause))?,
    })
}
