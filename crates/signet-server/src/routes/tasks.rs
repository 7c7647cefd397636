//! `/v1/tasks`: enqueue (server-signed or client-signed, one or a batch),
//! show, list, cancel.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use signet_runtime::{BatchItem, ClientSignature, RuntimeError, TaskSpec};
use signet_store::{rules, TaskFilter, TaskId, TaskState};

use crate::auth::Caller;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::extract::{JsonBody, QueryParams};
use crate::routes::messages::runtime_error;
use crate::state::AppState;
use crate::views::{TaskPage, TaskView, TimeInput};

/// A signature a client made over the envelope itself.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignatureInput {
    /// `hmac-sha256` or `ed25519`.
    pub alg: String,
    /// The key id (must be in the server's ring).
    pub key_id: String,
    /// The signature over the canonical envelope bytes, standard base64.
    pub sig: String,
}

/// `POST /v1/tasks`.
///
/// With `signature`, the client signed the envelope itself: then `id` and
/// `created_at` are required, `delay_ms` is not allowed (use `not_before`),
/// and `args` are signed as the exact JSON text in this body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnqueueRequest {
    /// Queue: 1–128 of `A-Z a-z 0-9 . _ : -`.
    pub queue: String,
    /// Task (handler) name.
    pub task: String,
    /// Arguments: any JSON value (object, array, string, number, boolean;
    /// absent or `null`: `{}`), stored byte for byte.
    #[schema(value_type = Option<serde_json::Value>)]
    pub args: Option<Box<RawValue>>,
    /// Run no sooner than this many ms from now (0 to one year).
    pub delay_ms: Option<i64>,
    /// Run no sooner than this time (RFC 3339 or unix ms).
    #[schema(value_type = Option<String>)]
    pub not_before: Option<TimeInput>,
    /// Do not run after this time (RFC 3339 or unix ms).
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<TimeInput>,
    /// Attempts allowed, 1–1000 (default 25).
    pub max_attempts: Option<u32>,
    /// -1000–1000, higher first (default 0).
    pub priority: Option<i32>,
    /// Headers carried with the task.
    pub headers: Option<BTreeMap<String, String>>,
    /// `http(s)://` URL for a signed callback when the task finishes.
    pub callback_url: Option<String>,
    /// Client-signed only: the task id the client chose (`task_…`).
    pub id: Option<String>,
    /// Client-signed only: the creation time that was signed.
    #[schema(value_type = Option<String>)]
    pub created_at: Option<TimeInput>,
    /// Client-signed only: the signature.
    pub signature: Option<SignatureInput>,
    /// Makes this enqueue exactly-once per key, for this API key and for
    /// tasks, as the `Idempotency-Key` header does: the same request again
    /// answers with the first task, a different one is `409
    /// idempotency_conflict`. A batch item's own key; on `POST /v1/tasks`
    /// the header or this field (the same key if both).
    pub idempotency_key: Option<String>,
}

/// The `Idempotency-Key` header of a publish or enqueue, as text (bytes
/// that are not text are replaced, so the key rule refuses them).
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

impl EnqueueRequest {
    /// The task the request describes, and the client's signature if any.
    /// Checking is the producer's. `header_key` is the `Idempotency-Key`
    /// header; it and the body's `idempotency_key` must agree when both
    /// are sent.
    fn into_spec(
        self,
        header_key: Option<String>,
    ) -> AppResult<(TaskSpec, Option<ClientSignature>)> {
        let idempotency_key = match (header_key, self.idempotency_key) {
            (Some(header), Some(body)) if header != body => {
                return Err(AppError::invalid(
                    "idempotency_key",
                    "differs from the Idempotency-Key header; send the key once",
                ))
            }
            (header, body) => header.or(body),
        };
        let args = self
            .args
            .map_or_else(|| b"{}".to_vec(), |a| a.get().as_bytes().to_vec());
        let mut spec = TaskSpec::raw(self.task, args)
            .queue(self.queue)
            .with(self.priority, TaskSpec::priority)
            .with(self.max_attempts, TaskSpec::max_attempts)
            .with(self.delay_ms, TaskSpec::delay_ms)
            .with(self.not_before.map(|t| t.0), TaskSpec::not_before_ms)
            .with(self.expires_at.map(|t| t.0), TaskSpec::expires_at_ms)
            .with(self.callback_url, TaskSpec::callback_url)
            .with(idempotency_key, TaskSpec::idempotency_key)
            .with(self.id, TaskSpec::id)
            .with(self.created_at.map(|t| t.0), TaskSpec::created_at_ms);
        for (name, value) in self.headers.into_iter().flatten() {
            spec = spec.header(name, value);
        }
        let signature = self.signature.map(|s| ClientSignature {
            alg: s.alg,
            key_id: s.key_id,
            sig_base64: s.sig,
        });
        Ok((spec, signature))
    }
}

/// Enqueue a task.
#[utoipa::path(
    post, path = "/v1/tasks", tag = "tasks",
    request_body = EnqueueRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes enqueue exactly-once per key, for this API key and for tasks (a message's key of the same text is another key)")),
    responses(
        (status = 201, description = "Enqueued", body = TaskView),
        (status = 200, description = "Already enqueued with this Idempotency-Key and the same request: the first task", body = TaskView),
        (status = 409, description = "`idempotency_conflict`: the Idempotency-Key was first used with a different request; the message names the fields that differ", body = ErrorBody),
        (status = 400, description = "Malformed JSON or unknown field", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid value or signature", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn enqueue(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(req): JsonBody<EnqueueRequest>,
) -> AppResult<(StatusCode, Json<TaskView>)> {
    let (spec, signature) = req.into_spec(idempotency_key(&headers))?;
    let spec = spec.idempotency_scope(caller.idempotency_scope());
    let producer = state.producer();
    let out = match signature {
        Some(signature) => producer.enqueue_signed(spec, signature).await,
        None => producer.enqueue(spec).await,
    }
    .map_err(runtime_error)?;
    let status = if out.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(TaskView::shown_to(&out.task, caller.scope))))
}

/// `POST /v1/tasks/batch`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchRequest {
    /// 1 to 1000 tasks, each what `POST /v1/tasks` takes (server-signed or
    /// client-signed), with its own `idempotency_key` if any.
    pub tasks: Vec<EnqueueRequest>,
}

/// One task of a batch's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BatchTaskView {
    /// The task.
    #[serde(flatten)]
    pub task: TaskView,
    /// `true` when the item's `idempotency_key` was already used with the
    /// same request: this is the first task, not a new one.
    pub existing: bool,
}

/// The answer to `POST /v1/tasks/batch`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BatchView {
    /// The tasks, in the order of the request.
    pub tasks: Vec<BatchTaskView>,
}

/// Enqueue up to 1000 tasks at once, all or none (`publish` scope).
///
/// Each item is what `POST /v1/tasks` takes, server-signed or client-signed
/// (verified here, before anything is stored), with its own
/// `idempotency_key`. One refused item refuses the batch and nothing is
/// stored; the error names the item (`tasks[3].queue: …`). The whole body
/// counts against the server's body limit (`--max-body-bytes`, 1 MiB by
/// default).
#[utoipa::path(
    post, path = "/v1/tasks/batch", tag = "tasks",
    request_body = BatchRequest,
    responses(
        (status = 201, description = "Enqueued, in order; an item whose idempotency_key was already used with the same request is the first task, with `existing: true`", body = BatchView),
        (status = 409, description = "`idempotency_conflict`: an item's idempotency_key was first used with a different request (before or earlier in the batch); the message names the item and the fields that differ. Nothing stored", body = ErrorBody),
        (status = 400, description = "Malformed JSON or unknown field", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "No tasks or more than 1000, or an invalid value or signature; the error names the item (`tasks[i].field`). Nothing stored", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn enqueue_batch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(req): JsonBody<BatchRequest>,
) -> AppResult<(StatusCode, Json<BatchView>)> {
    refuse_batch_key(&headers, "task")?;
    let mut items = Vec::with_capacity(req.tasks.len());
    for (index, item) in req.tasks.into_iter().enumerate() {
        let (spec, signature) = item
            .into_spec(None)
            .map_err(|e| item_error("tasks", index, e))?;
        let spec = spec.idempotency_scope(caller.idempotency_scope());
        items.push(BatchItem { spec, signature });
    }
    let out = state
        .producer()
        .enqueue_items(items)
        .await
        .map_err(|e| match e {
            RuntimeError::BatchItem { index, error } => {
                item_error("tasks", index, runtime_error(*error))
            }
            e => runtime_error(e),
        })?;
    let tasks = out
        .iter()
        .map(|e| BatchTaskView {
            task: TaskView::shown_to(&e.task, caller.scope),
            existing: !e.created,
        })
        .collect();
    Ok((StatusCode::CREATED, Json(BatchView { tasks })))
}

/// A batch takes no `Idempotency-Key` header: each `item` (task, message)
/// carries its own `idempotency_key`.
pub(crate) fn refuse_batch_key(headers: &HeaderMap, item: &str) -> AppResult<()> {
    if idempotency_key(headers).is_some() {
        return Err(AppError::invalid(
            "Idempotency-Key",
            format!(
                "a batch takes no Idempotency-Key header; give each {item} its own idempotency_key"
            ),
        ));
    }
    Ok(())
}

/// An item's error, naming the item of the list `list`: `tasks[3].queue`
/// for a field (the key rule's `Idempotency-Key` is the item's
/// `idempotency_key`), and the item in the message of a signature refusal
/// or a key conflict.
pub(crate) fn item_error(list: &str, index: usize, e: AppError) -> AppError {
    let item = format!("{list}[{index}]");
    match e {
        AppError::Invalid { field, message } => {
            let field = if field == "Idempotency-Key" {
                "idempotency_key"
            } else {
                field.as_str()
            };
            AppError::invalid(format!("{item}.{field}"), message)
        }
        AppError::SignatureInvalid { reason, message } => AppError::SignatureInvalid {
            reason,
            message: format!("{item}.signature: {message}"),
        },
        AppError::IdempotencyConflict(message) => {
            AppError::IdempotencyConflict(format!("{item}.idempotency_key: {message}"))
        }
        other => other,
    }
}

/// A task id from a path; message ids (`msg_…`) are accepted too, since
/// messages are task rows (their dead letters are shown and replayed here).
pub(crate) fn parse_task_id(id: &str) -> AppResult<String> {
    TaskId::parse(id)
        .map(String::from)
        .or_else(|_| signet_store::MessageId::parse(id).map(String::from))
        .map_err(|_| {
            AppError::NotFound(format!("task {id:?} not found (task ids look like task_…)"))
        })
}

/// Show a task with its history (every attempt and operator act, oldest
/// first).
#[utoipa::path(
    get, path = "/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses((status = 200, body = TaskView), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<TaskView>> {
    let id = parse_task_id(&id)?;
    let row = state
        .store()
        .task(id.as_str())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("task {id} not found")))?;
    let history = state.store().history(id.as_str()).await?;
    Ok(Json(TaskView::with_history(&row, &history, caller.scope)))
}

/// Query of `GET /v1/tasks`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only this queue (Signet's own `signet:messages` included, when
    /// named).
    pub queue: Option<String>,
    /// Only this state.
    pub state: Option<String>,
    /// `true` to list the rows of Signet's own queue `signet:messages`
    /// (messages and callbacks) too; without `queue` they are left out
    /// (default `false`).
    #[param(value_type = Option<bool>)]
    pub include_internal: Option<String>,
    /// Page size, 1–1000 (default 50).
    pub limit: Option<String>,
    /// From `next_cursor`.
    pub cursor: Option<String>,
}

pub(crate) fn parse_limit(limit: Option<&str>) -> AppResult<usize> {
    match limit {
        None => Ok(0),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=signet_store::MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(AppError::invalid(
                "limit",
                format!("must be a number from 1 to {}", signet_store::MAX_PAGE),
            )),
        },
    }
}

/// A `true`/`false` query parameter (absent: `false`).
pub(crate) fn parse_flag(name: &str, value: Option<&str>) -> AppResult<bool> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(AppError::invalid(name, "must be true or false")),
    }
}

/// List tasks, newest first (by id: Signet's ids are time-ordered). Signet's own
/// queue `signet:messages` is left out unless named in `queue` or asked
/// for with `include_internal=true`.
#[utoipa::path(
    get, path = "/v1/tasks", tag = "tasks",
    params(ListQuery),
    responses((status = 200, body = TaskPage), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<ListQuery>,
) -> AppResult<Json<TaskPage>> {
    let page = state.store().list_tasks(list_filter(q)?).await?;
    Ok(Json(TaskPage::shown_to(page, caller.scope)))
}

/// The filter of a task listing, checked (the API's and the console's).
pub(crate) fn list_filter(q: ListQuery) -> AppResult<TaskFilter> {
    if let Some(queue) = &q.queue {
        rules::queue_name(queue)?;
    }
    let task_state = q
        .state
        .as_deref()
        .map(|s| s.parse::<TaskState>())
        .transpose()
        .map_err(|e| AppError::invalid("state", e.to_string()))?;
    Ok(TaskFilter {
        queue: q.queue,
        state: task_state,
        include_internal: parse_flag("include_internal", q.include_internal.as_deref())?,
        limit: parse_limit(q.limit.as_deref())?,
        cursor: q.cursor,
    })
}

/// Cancel a task that has not started or waits to retry.
#[utoipa::path(
    post, path = "/v1/tasks/{id}/cancel", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, body = TaskView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Running or already final", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<TaskView>> {
    cancel_as(&state, &caller, &id).await.map(Json)
}

/// Cancels task `id` as `caller`: what `POST /v1/tasks/{id}/cancel` does,
/// and the console's cancel too.
pub(crate) async fn cancel_as(state: &AppState, caller: &Caller, id: &str) -> AppResult<TaskView> {
    let id = parse_task_id(id)?;
    let row = state
        .store()
        .cancel(id.as_str(), &caller.actor(), state.now_ms())
        .await?;
    Ok(TaskView::shown_to(&row, caller.scope))
}

/// Retry now a task waiting for its backoff (state `retryable`): it
/// becomes `available` at once, its attempts still count, and its history
/// records who did it (`retried-now`). Message ids (`msg_…`) are accepted
/// too.
#[utoipa::path(
    post, path = "/v1/tasks/{id}/retry", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, body = TaskView),
        (status = 403, description = "The API key is not admin", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not retryable; the message names its state", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<TaskView>> {
    let id = parse_task_id(&id)?;
    retry_as(&state, &caller, &id).await.map(Json)
}

/// Retries task (or message) `id` now as `caller`: what
/// `POST /v1/tasks/{id}/retry` and `POST /v1/messages/{id}/retry` do, and
/// the console's retry too.
pub(crate) async fn retry_as(state: &AppState, caller: &Caller, id: &str) -> AppResult<TaskView> {
    let row =
        signet_runtime::retry_now(state.store().as_ref(), id, &caller.actor(), state.now_ms())
            .await
            .map_err(runtime_error)?;
    Ok(TaskView::shown_to(&row, caller.scope))
}

/// This file's routes, declared once: one `routes!` a path, its methods and
/// path taken from the handlers' `#[utoipa::path]`, which also document them.
pub(crate) fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(enqueue, list))
        .routes(utoipa_axum::routes!(enqueue_batch))
        .routes(utoipa_axum::routes!(show))
        .routes(utoipa_axum::routes!(cancel))
        .routes(utoipa_axum::routes!(retry))
}
