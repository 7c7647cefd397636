//! `/v1/work`: the pull protocol for workers in any language (scope
//! `work`): claim with a long poll, heartbeat, complete, fail, release. Each report
//! takes one lease (`{"lease": …}`, a lost lease is `409 lease_lost`) or a
//! batch (`{"items": [...]}`, answered per item). The service is
//! [`signet_runtime::RemoteWorker`]; the protocol for SDK authors is
//! docs/worker-protocol.md.
//!
//! Claimed tasks carry the envelope exactly as stored, as
//! [`signet_runtime::WorkItem`] writes it (the body of a push request is
//! the same object without the lease).

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use signet_runtime::worker::{remote_lease, retry_after, DEFAULT_REMOTE_LEASE, MAX_REPORT_BATCH};
use signet_runtime::{
    RemoteClaim, RemoteFailure, RemoteTask, RemoteWorker, WorkItem, WorkerEventKind,
};
use signet_store::{FieldError, LeaseToken, StoreError};

use crate::auth::Caller;
use crate::error::{AppError, AppResult, ErrorBody, ErrorDetail};
use crate::extract::JsonBody;
use crate::state::AppState;
use crate::views::rfc3339;

/// How much sooner than the request timeout a long poll answers, so the
/// answer is written before the server gives up on the request.
const POLL_MARGIN: Duration = Duration::from_secs(1);

/// `POST /v1/work/claim`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimBody {
    /// Queues to take from (at least one; not Signet's own `signet:…`).
    pub queues: Vec<String>,
    /// Most tasks to hand out, 1–100 (default 1).
    pub max: Option<u64>,
    /// How long to wait for work when none is due, 0–30 000 ms (default 0).
    /// Answers as soon as work comes; never later than the server's request
    /// timeout allows.
    pub wait_ms: Option<u64>,
    /// Lease length, 1 000–300 000 ms (default 30 000). Heartbeat before it
    /// ends or the task is handed out again.
    pub lease_ms: Option<u64>,
}

/// The answer to a claim.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ClaimAnswer {
    /// The tasks claimed (none when no work came within `wait_ms`).
    pub tasks: Vec<ClaimedTask>,
}

/// A claimed task: the lease, then the claimed-task object a push request
/// carries too (attempt, envelope and signature as the producer made them).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ClaimedTask {
    /// The lease token: opaque; report with it. Valid for this API key only.
    pub lease: String,
    /// When the lease ends unless extended (RFC 3339).
    pub lease_expires_at: String,
    /// The same, unix ms.
    pub lease_expires_at_ms: i64,
    /// Attempt, envelope and signature.
    #[serde(flatten)]
    pub task: WorkItem,
}

impl From<RemoteTask> for ClaimedTask {
    fn from(t: RemoteTask) -> Self {
        Self {
            task: WorkItem::from(&t.row),
            lease: t.lease,
            lease_expires_at: rfc3339(t.lease_expires_at_ms),
            lease_expires_at_ms: t.lease_expires_at_ms,
        }
    }
}

/// Claim due tasks, waiting for new work up to `wait_ms` (woken when work
/// is enqueued, not by polling).
#[utoipa::path(
    post, path = "/v1/work/claim", tag = "work",
    request_body = ClaimBody,
    responses(
        (status = 200, description = "The tasks claimed; an empty list when none came within `wait_ms`", body = ClaimAnswer),
        (status = 400, description = "Malformed JSON or unknown field", body = ErrorBody),
        (status = 403, description = "The API key lacks the `work` scope", body = ErrorBody),
        (status = 422, description = "Invalid value (the field is named)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn claim(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ClaimBody>,
) -> AppResult<Json<ClaimAnswer>> {
    let claim = RemoteClaim::new(
        body.queues,
        body.max.unwrap_or(1),
        body.wait_ms.unwrap_or(0),
        body.lease_ms.unwrap_or(default_lease_ms()),
    )?;
    let limit = state.config().request_timeout.saturating_sub(POLL_MARGIN);
    let tasks = service(&state)
        .claim(&caller.key_id, claim, limit)
        .await
        .map_err(|e| match e {
            // The claim's own rules (queue names) are about `queues`.
            StoreError::Invalid(message) => AppError::invalid("queues", message),
            other => AppError::from(other),
        })?;
    Ok(Json(ClaimAnswer {
        tasks: tasks.into_iter().map(ClaimedTask::from).collect(),
    }))
}

/// One lease to extend.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeartbeatItem {
    /// The lease token.
    pub lease: String,
    /// New lease length from now, 1 000–300 000 ms (default 30 000).
    pub lease_ms: Option<u64>,
}

/// `POST /v1/work/heartbeat`: one lease (`lease`, `lease_ms`) or `items`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeartbeatBody {
    /// One lease token (single form).
    pub lease: Option<String>,
    /// New lease length (single form).
    pub lease_ms: Option<u64>,
    /// Up to 1 000 leases (batch form).
    pub items: Option<Vec<HeartbeatItem>>,
}

/// A lease extended.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Extended {
    /// When the lease now ends (RFC 3339).
    pub lease_expires_at: String,
    /// The same, unix ms.
    pub lease_expires_at_ms: i64,
}

/// Extend leases.
#[utoipa::path(
    post, path = "/v1/work/heartbeat", tag = "work",
    request_body = HeartbeatBody,
    responses(
        (status = 200, description = "Single form: the new expiry (`Extended`). Batch form: `{items: [...]}` in order, each the new expiry or `{error}`", body = Extended),
        (status = 409, description = "`lease_lost` (single form): the lease expired and the task was handed out again, or it finished; drop the work", body = ErrorBody),
        (status = 400, description = "Malformed JSON or unknown field", body = ErrorBody),
        (status = 422, description = "Invalid value (the field is named)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn heartbeat(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<HeartbeatBody>,
) -> AppResult<Json<serde_json::Value>> {
    let (single, items) = match (body.lease, body.items) {
        (Some(lease), None) => (
            true,
            vec![HeartbeatItem {
                lease,
                lease_ms: body.lease_ms,
            }],
        ),
        (None, Some(items)) if body.lease_ms.is_none() => {
            check_batch(items.len())?;
            (false, items)
        }
        _ => return Err(one_form(&["lease_ms"])),
    };
    let mut leases = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |e: FieldError| within(single, i, e);
        let ms = item.lease_ms.unwrap_or(default_lease_ms());
        leases.push((
            lease(&caller, &item.lease).map_err(at)?,
            remote_lease("lease_ms", ms).map_err(at)?,
        ));
    }
    let answers = service(&state)
        .heartbeat(&leases)
        .await
        .into_iter()
        .map(|r| {
            r.map(|ms| Extended {
                lease_expires_at: rfc3339(ms),
                lease_expires_at_ms: ms,
            })
        })
        .collect();
    answer(single, answers)
}

/// One success to record.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompleteItem {
    /// The lease token.
    pub lease: String,
    /// The result: any JSON value, stored as sent (absent or `null`: none).
    #[schema(value_type = Option<serde_json::Value>)]
    pub result: Option<Box<RawValue>>,
}

/// `POST /v1/work/complete`: one success (`lease`, `result`) or `items`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompleteBody {
    /// One lease token (single form).
    pub lease: Option<String>,
    /// The result (single form).
    #[schema(value_type = Option<serde_json::Value>)]
    pub result: Option<Box<RawValue>>,
    /// Up to 1 000 successes (batch form).
    pub items: Option<Vec<CompleteItem>>,
}

/// How a report ended.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Reported {
    /// The task's state now: `succeeded`, `retryable` or `dead`.
    pub state: &'static str,
    /// `retryable`: when it runs again (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<String>,
    /// `dead`: why (`max-attempts` when the last attempt failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `dead`: more about why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Reported {
    fn succeeded() -> Self {
        Self {
            state: "succeeded",
            retry_at: None,
            reason: None,
            detail: None,
        }
    }
}

/// Record successes.
#[utoipa::path(
    post, path = "/v1/work/complete", tag = "work",
    request_body = CompleteBody,
    responses(
        (status = 200, description = "Single form: `{state: succeeded}`. Batch form: `{items: [...]}` in order, each `{state}` or `{error}`", body = Reported),
        (status = 409, description = "`lease_lost` (single form): the result was dropped", body = ErrorBody),
        (status = 400, description = "Malformed JSON or unknown field", body = ErrorBody),
        (status = 422, description = "Invalid value (the field is named)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CompleteBody>,
) -> AppResult<Json<serde_json::Value>> {
    let (single, items) = match (body.lease, body.items) {
        (Some(lease), None) => (
            true,
            vec![CompleteItem {
                lease,
                result: body.result,
            }],
        ),
        (None, Some(items)) if body.result.is_none() => {
            check_batch(items.len())?;
            (false, items)
        }
        _ => return Err(one_form(&["result"])),
    };
    let mut writes = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let lease = lease(&caller, &item.lease).map_err(|e| within(single, i, e))?;
        let result = item.result.map(|r| r.get().as_bytes().to_vec());
        writes.push((lease, result));
    }
    let answers = service(&state)
        .complete(writes)
        .await?
        .into_iter()
        .map(|r| r.map(|()| Reported::succeeded()))
        .collect();
    answer(single, answers)
}

/// One failed attempt to record.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FailItem {
    /// The lease token.
    pub lease: String,
    /// The attempt's error, for the history (cut to 1 024 bytes).
    pub error: Option<String>,
    /// Run again after this many ms (0 to one year); absent: the server's
    /// backoff. Ignored once no attempt is left (the task is dead with
    /// `max-attempts`).
    pub retry_after_ms: Option<u64>,
    /// `true`: never run again; give `reason` (and `detail`).
    pub dead: Option<bool>,
    /// With `dead`: `signature-invalid`, `payload-invalid`, `unknown-task`
    /// or `expired`.
    pub reason: Option<String>,
    /// With `dead`: more about why (cut to 1 024 bytes). For
    /// `signature-invalid`, starts with
    /// the verification outcome: `missing`, `unknown-key`, `mismatch`,
    /// `malformed` or `algorithm-mismatch`.
    pub detail: Option<String>,
}

/// `POST /v1/work/fail`: one failure (the fields of an item) or `items`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FailBody {
    /// One lease token (single form).
    pub lease: Option<String>,
    /// Single form: see `FailItem`.
    pub error: Option<String>,
    /// Single form: see `FailItem`.
    pub retry_after_ms: Option<u64>,
    /// Single form: see `FailItem`.
    pub dead: Option<bool>,
    /// Single form: see `FailItem`.
    pub reason: Option<String>,
    /// Single form: see `FailItem`.
    pub detail: Option<String>,
    /// Up to 1 000 failures (batch form).
    pub items: Option<Vec<FailItem>>,
}

/// Record failed attempts: retried (after `retry_after_ms` or the backoff)
/// while attempts are left, else dead `max-attempts`; or dead at once with
/// the worker's reason.
#[utoipa::path(
    post, path = "/v1/work/fail", tag = "work",
    request_body = FailBody,
    responses(
        (status = 200, description = "Single form: the task's state now (`retryable` with `retry_at`, or `dead` with `reason`). Batch form: `{items: [...]}` in order, each `{state…}` or `{error}`", body = Reported),
        (status = 409, description = "`lease_lost` (single form): the report was dropped", body = ErrorBody),
        (status = 400, description = "Malformed JSON or unknown field", body = ErrorBody),
        (status = 422, description = "Invalid value (the field is named)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn fail(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<FailBody>,
) -> AppResult<Json<serde_json::Value>> {
    let (single, items) = match (body.lease, body.items) {
        (Some(lease), None) => (
            true,
            vec![FailItem {
                lease,
                error: body.error,
                retry_after_ms: body.retry_after_ms,
                dead: body.dead,
                reason: body.reason,
                detail: body.detail,
            }],
        ),
        (None, Some(items))
            if body.error.is_none()
                && body.retry_after_ms.is_none()
                && body.dead.is_none()
                && body.reason.is_none()
                && body.detail.is_none() =>
        {
            check_batch(items.len())?;
            (false, items)
        }
        _ => {
            return Err(one_form(&[
                "error",
                "retry_after_ms",
                "dead",
                "reason",
                "detail",
            ]))
        }
    };
    let mut reports = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = |e: FieldError| within(single, i, e);
        let lease = lease(&caller, &item.lease).map_err(at)?;
        reports.push((lease, failure(item).map_err(at)?));
    }
    let answers = service(&state)
        .fail_all(reports)
        .await?
        .into_iter()
        .map(|r| r.and_then(reported))
        .collect();
    answer(single, answers)
}

/// One claimed task to give back.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReleaseItem {
    /// The lease token.
    pub lease: String,
    /// Hand it out again after this many ms (0 to one year); absent: at
    /// once.
    pub retry_after_ms: Option<u64>,
}

/// `POST /v1/work/release`: one task (`lease`, `retry_after_ms`) or `items`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReleaseBody {
    /// One lease token (single form).
    pub lease: Option<String>,
    /// Single form: see `ReleaseItem`.
    pub retry_after_ms: Option<u64>,
    /// Up to 1 000 tasks (batch form).
    pub items: Option<Vec<ReleaseItem>>,
}

/// A task given back.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Released {
    /// The task's state now: `available` (due at once) or `scheduled`
    /// (due at `run_at`).
    pub state: &'static str,
    /// When it is handed out again at the earliest (RFC 3339).
    pub run_at: String,
    /// The same, unix ms.
    pub run_at_ms: i64,
}

/// Give claimed tasks back without spending their attempts: for a worker
/// shutting down with tasks it has not started. Each is handed out again
/// at once, or after `retry_after_ms`.
#[utoipa::path(
    post, path = "/v1/work/release", tag = "work",
    request_body = ReleaseBody,
    responses(
        (status = 200, description = "Single form: the task's state now (`available`, or `scheduled` with `retry_after_ms`) and `run_at`. Batch form: `{items: [...]}` in order, each that or `{error}`", body = Released),
        (status = 409, description = "`lease_lost` (single form): the lease expired and the task was handed out again, or it finished; nothing changed", body = ErrorBody),
        (status = 400, description = "Malformed JSON or unknown field", body = ErrorBody),
        (status = 422, description = "Invalid value (the field is named)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn release(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ReleaseBody>,
) -> AppResult<Json<serde_json::Value>> {
    let (single, items) = match (body.lease, body.items) {
        (Some(lease), None) => (
            true,
            vec![ReleaseItem {
                lease,
                retry_after_ms: body.retry_after_ms,
            }],
        ),
        (None, Some(items)) if body.retry_after_ms.is_none() => {
            check_batch(items.len())?;
            (false, items)
        }
        _ => return Err(one_form(&["retry_after_ms"])),
    };
    let mut leases = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |e: FieldError| within(single, i, e);
        let after = item
            .retry_after_ms
            .map(|ms| retry_after("retry_after_ms", ms))
            .transpose()
            .map_err(at)?;
        leases.push((lease(&caller, &item.lease).map_err(at)?, after));
    }
    let answers = service(&state)
        .release(&leases)
        .await
        .into_iter()
        .map(|r| {
            r.map(|(run_at_ms, later)| Released {
                state: if later { "scheduled" } else { "available" },
                run_at: rfc3339(run_at_ms),
                run_at_ms,
            })
        })
        .collect();
    answer(single, answers)
}

/// A worker's failure report, checked.
fn failure(item: FailItem) -> Result<RemoteFailure, FieldError> {
    if item.dead == Some(true) {
        if item.retry_after_ms.is_some() {
            return Err(FieldError::new(
                "retry_after_ms",
                "not with dead: true (a dead task does not run again)",
            ));
        }
        let reason = item.reason.ok_or_else(|| {
            FieldError::new(
                "reason",
                "required with dead: true; one of signature-invalid, payload-invalid, unknown-task, expired",
            )
        })?;
        let detail = item.detail.or(item.error).unwrap_or_default();
        return RemoteFailure::dead(&reason, detail).map_err(|message| {
            let field = if message.contains("detail starts") {
                "detail"
            } else {
                "reason"
            };
            FieldError::new(field, message)
        });
    }
    if let Some(field) = [("reason", &item.reason), ("detail", &item.detail)]
        .into_iter()
        .find_map(|(f, v)| v.as_ref().map(|_| f))
    {
        return Err(FieldError::new(
            field,
            "only with dead: true; a retried attempt gives `error`",
        ));
    }
    let retry_after = item
        .retry_after_ms
        .map(|ms| retry_after("retry_after_ms", ms))
        .transpose()?;
    Ok(RemoteFailure::Retry {
        error: item
            .error
            .unwrap_or_else(|| "the worker reported a failure".to_owned()),
        retry_after,
    })
}

/// How a failure report ended, as answered.
fn reported(kind: WorkerEventKind) -> Result<Reported, StoreError> {
    match kind {
        WorkerEventKind::Retrying { at_ms, .. } => Ok(Reported {
            state: "retryable",
            retry_at: Some(rfc3339(at_ms)),
            reason: None,
            detail: None,
        }),
        WorkerEventKind::Dead { reason, detail } => Ok(Reported {
            state: "dead",
            retry_at: None,
            reason: Some(reason.as_str().to_owned()),
            detail: Some(detail),
        }),
        WorkerEventKind::Succeeded => Ok(Reported::succeeded()),
        // A bug of the server, not of the request: a 500, not a 422.
        other => Err(StoreError::backend(
            "recording a failure report",
            format!("unexpected outcome {other:?}"),
        )),
    }
}

/// The service, on this server's store and clock.
fn service(state: &AppState) -> RemoteWorker {
    RemoteWorker::new(state.store().clone(), state.clock())
}

fn default_lease_ms() -> u64 {
    u64::try_from(DEFAULT_REMOTE_LEASE.as_millis()).unwrap_or(30_000)
}

/// The store's lease behind a caller's token.
fn lease(caller: &Caller, token: &str) -> Result<LeaseToken, FieldError> {
    RemoteWorker::lease(&caller.key_id, token).ok_or_else(|| {
        FieldError::new(
            "lease",
            "not a lease token; give the `lease` a claim answered, unchanged",
        )
    })
}

/// A field error of the single form as it is, of a batch item as
/// `items[i].field`.
fn within(single: bool, i: usize, e: FieldError) -> FieldError {
    if single {
        e
    } else {
        e.within(&format!("items[{i}]"))
    }
}

fn check_batch(len: usize) -> Result<(), AppError> {
    if len == 0 || len > MAX_REPORT_BATCH {
        return Err(AppError::invalid(
            "items",
            format!("{len} items; give 1..={MAX_REPORT_BATCH}"),
        ));
    }
    Ok(())
}

fn one_form(single_fields: &[&str]) -> AppError {
    AppError::invalid(
        "lease",
        format!(
            "give either `lease` (with {}) for one task, or `items` alone for a batch",
            single_fields.join(", ")
        ),
    )
}

/// The single form's answer (its error as the response's), or the batch
/// form's `{items: [...]}`, each item its answer or `{error: {code, message}}`.
fn answer<T: Serialize>(
    single: bool,
    answers: Vec<Result<T, StoreError>>,
) -> AppResult<Json<serde_json::Value>> {
    if single {
        let one = answers.into_iter().next().unwrap_or_else(|| {
            Err(StoreError::backend(
                "answering a report",
                "the store gave no answer",
            ))
        })?;
        return to_json(&one).map(Json);
    }
    let items = answers
        .into_iter()
        .map(|r| match r {
            Ok(v) => to_json(&v),
            Err(e) => {
                let e = AppError::from(e);
                if e.status().is_server_error() {
                    tracing::warn!(error = %e, "a batch item failed");
                }
                to_json(&serde_json::json!({
                    "error": ErrorDetail {
                        code: e.code().to_owned(),
                        message: e.to_string(),
                    }
                }))
            }
        })
        .collect::<AppResult<Vec<_>>>()?;
    Ok(Json(serde_json::json!({ "items": items })))
}

fn to_json<T: Serialize>(v: &T) -> AppResult<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| AppError::Internal(Box::new(e)))
}

pub(crate) fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(claim))
        .routes(utoipa_axum::routes!(heartbeat))
        .routes(utoipa_axum::routes!(complete))
        .routes(utoipa_axum::routes!(fail))
        .routes(utoipa_axum::routes!(release))
}
