//! `/v1/messages`: publish a signed HTTP delivery, show it with every
//! attempt, list them.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use signet_runtime::{MessageProducer, MessageSpec, NewMessage, RuntimeError};
use signet_store::{
    AttemptEvent, Event, HistoryEvent, MessageId, TaskFilter, TaskRow, TaskState, MESSAGE_QUEUE,
};

use crate::auth::{Caller, Scope};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::extract::{JsonBody, QueryParams};
use crate::routes::tasks::{idempotency_key, item_error, parse_limit, refuse_batch_key};
use crate::state::AppState;
use crate::views::{rfc3339, shown_url, HistoryEventView, MessageRequestView};

/// The body of `POST /v1/messages` (documentation; the server parses it as
/// [`NewMessage`]).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // Only its schema is used; requests parse as `NewMessage`.
pub(crate) struct MessageRequest {
    /// Where to deliver: an `http://` or `https://` URL without user info.
    pub url: String,
    /// HTTP method (default `POST`).
    pub method: Option<String>,
    /// Headers to send. Hop-by-hop, `Host`, `Content-Length` and signature
    /// headers cannot be set.
    pub headers: Option<BTreeMap<String, String>>,
    /// The body: a string (sent as it is) or any JSON value (sent as the
    /// JSON text given, with `content-type: application/json` unless set).
    /// Absent: no body.
    #[schema(value_type = Option<serde_json::Value>)]
    pub body: Option<serde_json::Value>,
    /// A target's id (`tgt_…`) or name: its secret signs, its limits apply.
    pub target: Option<String>,
    /// `standard` (default), `svix`, `stromboli`, `krafter`, `github` or
    /// `stripe`; all but `standard` and `svix` need a target.
    pub signature_profile: Option<String>,
    /// Where a signed callback goes when the message is delivered or dead.
    pub callback_url: Option<String>,
    /// First attempt no sooner than this many ms from now (0 to one year).
    pub delay_ms: Option<i64>,
    /// First attempt no sooner than this time (RFC 3339 or unix ms).
    pub not_before: Option<String>,
    /// Attempts allowed, 1–100 (default: the retry schedule's steps + 1).
    pub max_attempts: Option<u32>,
    /// Waits between attempts in ms (default 5 s, 5 min, 30 min, 2 h, 5 h,
    /// 10 h, 10 h, each ±20 %).
    pub retry_schedule_ms: Option<Vec<u64>>,
    /// Makes publishing exactly-once per key: a batch item's own key; on
    /// `POST /v1/messages` the `Idempotency-Key` header or this field (the
    /// same key if both).
    pub idempotency_key: Option<String>,
}

/// One delivery attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AttemptView {
    /// Attempt number, from 1; numbers go on across replays.
    pub attempt: u32,
    /// `succeeded`, `retry`, `dead` or `lease-expired`.
    pub outcome: String,
    /// The dispatcher (node) that made it.
    pub worker: Option<String>,
    /// When it was claimed.
    pub started_at: Option<String>,
    /// When it ended.
    pub ended_at: String,
    /// Time to the end of the response (or the failure), ms.
    pub latency_ms: Option<i64>,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// What went wrong.
    pub error: Option<String>,
    /// The first 4 KiB of the response body, as text (invalid UTF-8
    /// replaced).
    pub response_body: String,
    /// The same bytes as base64, only when they are not UTF-8 text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body_base64: Option<String>,
}

impl AttemptView {
    fn new(e: &HistoryEvent, a: &AttemptEvent) -> Self {
        let http = a.http.as_ref().map(crate::views::HttpExchangeView::from);
        Self {
            attempt: a.number,
            outcome: a.outcome.as_str().to_owned(),
            worker: a.worker.clone(),
            started_at: a.started_at_ms.map(rfc3339),
            ended_at: rfc3339(e.at_ms),
            latency_ms: http.as_ref().map(|h| h.latency_ms),
            status: http.as_ref().and_then(|h| h.status),
            error: a.error.clone(),
            response_body: http
                .as_ref()
                .map(|h| h.response_body.clone())
                .unwrap_or_default(),
            response_body_base64: http.and_then(|h| h.response_body_base64),
        }
    }
}

/// A message, as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MessageView {
    /// `msg_…`.
    pub id: String,
    /// `scheduled`, `available`, `running`, `retryable`, `succeeded`
    /// (delivered), `dead` or `cancelled`.
    pub state: String,
    /// Where it goes (absent when the stored message cannot be read). The
    /// values of its query read `redacted` for keys that are not admin.
    pub url: Option<String>,
    /// The method.
    pub method: Option<String>,
    /// The target id, when a target signs.
    pub target: Option<String>,
    /// The signature profile.
    pub signature_profile: Option<String>,
    /// The headers sent (`GET /v1/messages/{id}`, to admin keys only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// The body sent, byte for byte (`GET /v1/messages/{id}`, to admin
    /// keys only; absent when the message has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Why `headers` and `body` are absent (`GET /v1/messages/{id}`, keys
    /// that are not admin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redacted: Option<&'static str>,
    /// Attempts made in the message's whole life, replays included.
    pub attempts_made: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Created.
    pub created_at: String,
    /// Last state change.
    pub updated_at: String,
    /// When the next attempt is due (while not final).
    pub next_attempt_at: Option<String>,
    /// Finished (delivered or dead).
    pub finished_at: Option<String>,
    /// Where the callback goes.
    pub callback_url: Option<String>,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// Why it is dead.
    pub dead_reason: Option<String>,
    /// More about why it is dead.
    pub dead_detail: Option<String>,
    /// Every attempt, oldest first (`GET /v1/messages/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<AttemptView>>,
    /// What else happened to it, oldest first: replays, re-signs, cancels,
    /// dead-lettering before an attempt (`GET /v1/messages/{id}` only;
    /// each attempt is in `attempts`, once, and the whole history with the
    /// attempts among it at `GET /v1/tasks/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEventView>>,
}

impl MessageView {
    /// `row` as a key of `scope` may see it, by [`MessageRequestView`]'s
    /// rule; with its `history` (`GET /v1/messages/{id}`) also the headers
    /// and body sent, to the scopes that see them.
    pub(crate) fn new(row: &TaskRow, history: Option<&[HistoryEvent]>, scope: Scope) -> Self {
        let request = MessageSpec::from_args(&row.envelope.args)
            .ok()
            .map(|spec| MessageRequestView::new(&spec, scope));
        let shown = history.and(request.as_ref());
        let request = request.as_ref();
        Self {
            id: row.id().to_owned(),
            state: row.state.as_str().to_owned(),
            url: request.map(|r| r.url.clone()),
            method: request.map(|r| r.method.clone()),
            target: request.and_then(|r| r.target.clone()),
            signature_profile: request.map(|r| r.signature_profile.clone()),
            headers: shown.and_then(|r| r.headers.clone()),
            body: shown.and_then(|r| r.body.clone()),
            redacted: shown
                .filter(|_| !scope.sees_message_payloads())
                .map(|_| REDACTED_PAYLOAD),
            attempts_made: row.attempts_made(),
            max_attempts: row.envelope.max_attempts,
            created_at: rfc3339(row.envelope.created_at_ms),
            updated_at: rfc3339(row.updated_at_ms),
            next_attempt_at: (!row.state.is_final()).then(|| rfc3339(row.run_at_ms)),
            finished_at: row.finished_at_ms.map(rfc3339),
            callback_url: row
                .envelope
                .callback_url
                .as_deref()
                .map(|u| shown_url(u, scope)),
            last_error: row.last_error.clone(),
            dead_reason: row.dead_reason.map(|r| r.as_str().to_owned()),
            dead_detail: row.dead_detail.clone(),
            attempts: history.map(|h| {
                signet_store::history::attempts(h)
                    .map(|(e, a)| AttemptView::new(e, a))
                    .collect()
            }),
            history: history.map(|h| {
                h.iter()
                    .filter(|e| !matches!(e.event, Event::Attempt(_)))
                    .map(HistoryEventView::from)
                    .collect()
            }),
        }
    }
}

/// What `redacted` says on a message shown to a key that is not admin.
const REDACTED_PAYLOAD: &str =
    "a message's headers, body and URL query carry the receiver's credentials: only admin keys see them";

/// A page of messages.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MessagePage {
    /// The messages (without their attempts).
    pub items: Vec<MessageView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A runtime error as the API answers it (tasks and messages).
pub(crate) fn runtime_error(e: RuntimeError) -> AppError {
    match e {
        RuntimeError::InvalidField(e) => AppError::from(e),
        RuntimeError::SignatureRejected(e) => {
            let hint = if e.is_mismatch() {
                " (args are signed as the exact JSON text sent in this body)"
            } else {
                ""
            };
            AppError::SignatureInvalid {
                reason: e.reason(),
                message: format!("{}{hint}", e.message()),
            }
        }
        RuntimeError::Signing(e) if e.is_unsupported() => AppError::invalid("request", e.message()),
        RuntimeError::InvalidTask(message) => AppError::invalid("request", message),
        RuntimeError::Args(e) => AppError::invalid("body", e.to_string()),
        RuntimeError::Store(e) => AppError::from(e),
        RuntimeError::IdempotencyConflict(c) => AppError::IdempotencyConflict(c.to_string()),
        RuntimeError::MasterKey(message) | RuntimeError::Config(message) => {
            AppError::NotConfigured(message)
        }
        other => AppError::Internal(Box::new(other)),
    }
}

/// Publish a message: Signet delivers it, signed, with retries.
#[utoipa::path(
    post, path = "/v1/messages", tag = "messages",
    request_body = MessageRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes publishing exactly-once per key, for this API key and for messages (a task's key of the same text is another key)")),
    responses(
        (status = 201, description = "Published", body = MessageView),
        (status = 200, description = "Already published with this Idempotency-Key and the same request: the first message", body = MessageView),
        (status = 400, description = "Malformed JSON or unknown field", body = ErrorBody),
        (status = 409, description = "`idempotency_conflict`: the Idempotency-Key was first used with a different request; the message names the fields that differ", body = ErrorBody),
        (status = 422, description = "Invalid field (named)", body = ErrorBody),
        (status = 503, description = "Not configured (no signing key, no master key for targets)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(message): JsonBody<NewMessage>,
) -> AppResult<(StatusCode, Json<MessageView>)> {
    let key = idempotency_key(&headers);
    let out = message_producer(&state)?
        .publish_as(message, key, caller.idempotency_scope())
        .await
        .map_err(runtime_error)?;
    let status = if out.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(MessageView::new(&out.task, None, caller.scope)),
    ))
}

/// The server's message producer, or why it has none.
fn message_producer(state: &AppState) -> AppResult<&MessageProducer> {
    state.delivery().messages.as_ref().ok_or_else(|| {
        AppError::NotConfigured(
            "this server cannot sign what it enqueues (signing is required but no signing key is set); set SIGNET_SIGNING_KEYS and SIGNET_SIGNING_ACTIVE_KEY".into(),
        )
    })
}

/// `POST /v1/messages/batch`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchRequest {
    /// 1 to 1000 messages, each what `POST /v1/messages` takes, with its
    /// own `idempotency_key` if any.
    #[schema(value_type = Vec<MessageRequest>)]
    pub messages: Vec<NewMessage>,
}

/// One message of a batch's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BatchMessageView {
    /// The message.
    #[serde(flatten)]
    pub message: MessageView,
    /// `true` when the item's `idempotency_key` was already used with the
    /// same request: this is the first message, not a new one.
    pub existing: bool,
}

/// The answer to `POST /v1/messages/batch`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BatchView {
    /// The messages, in the order of the request.
    pub messages: Vec<BatchMessageView>,
}

/// Publish up to 1000 messages at once, all or none (`publish` scope).
///
/// Each item is what `POST /v1/messages` takes, with its own
/// `idempotency_key`; the batch is one write to the store, so a producer
/// with many messages pays one commit per batch instead of one per
/// message. One refused item refuses the batch and nothing is stored; the
/// error names the item (`messages[3].url: …`). The whole body counts
/// against the server's body limit (`--max-body-bytes`, 1 MiB by default).
#[utoipa::path(
    post, path = "/v1/messages/batch", tag = "messages",
    request_body = BatchRequest,
    responses(
        (status = 201, description = "Published, in order; an item whose idempotency_key was already used with the same request is the first message, with `existing: true`", body = BatchView),
        (status = 409, description = "`idempotency_conflict`: an item's idempotency_key was first used with a different request (before or earlier in the batch); the message names the item and the fields that differ. Nothing stored", body = ErrorBody),
        (status = 400, description = "Malformed JSON or unknown field", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "No messages or more than 1000, or an invalid value; the error names the item (`messages[i].field`). Nothing stored", body = ErrorBody),
        (status = 503, description = "Not configured (no signing key, no master key for targets)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn publish_batch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(req): JsonBody<BatchRequest>,
) -> AppResult<(StatusCode, Json<BatchView>)> {
    refuse_batch_key(&headers, "message")?;
    let out = message_producer(&state)?
        .publish_batch_as(req.messages, caller.idempotency_scope())
        .await
        .map_err(|e| match e {
            RuntimeError::BatchItem { index, error } => {
                item_error("messages", index, runtime_error(*error))
            }
            e => runtime_error(e),
        })?;
    let messages = out
        .iter()
        .map(|e| BatchMessageView {
            message: MessageView::new(&e.task, None, caller.scope),
            existing: !e.created,
        })
        .collect();
    Ok((StatusCode::CREATED, Json(BatchView { messages })))
}

pub(crate) fn parse_message_id(id: &str) -> AppResult<MessageId> {
    MessageId::parse(id).map_err(|_| {
        AppError::NotFound(format!(
            "message {id:?} not found (message ids look like msg_…)"
        ))
    })
}

/// Show a message, every attempt and its whole history.
#[utoipa::path(
    get, path = "/v1/messages/{id}", tag = "messages",
    params(("id" = String, Path, description = "Message id (msg_…)")),
    responses((status = 200, body = MessageView), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<MessageView>> {
    shown_to(&state, &id, caller.scope).await.map(Json)
}

/// Message `id` with every attempt and its history, as a key of `scope`
/// may see it (the API's show and the console's message page).
pub(crate) async fn shown_to(state: &AppState, id: &str, scope: Scope) -> AppResult<MessageView> {
    let id = parse_message_id(id)?;
    let row = state
        .store()
        .task(id.as_str())
        .await?
        .filter(|r| r.queue() == MESSAGE_QUEUE)
        .ok_or_else(|| AppError::NotFound(format!("message {id} not found")))?;
    let history = state.store().history(id.as_str()).await?;
    Ok(MessageView::new(&row, Some(&history), scope))
}

/// Retry now a message waiting for its backoff (state `retryable`): the
/// dispatcher delivers it at once, its attempts still count, and its
/// history records who did it (`retried-now`).
#[utoipa::path(
    post, path = "/v1/messages/{id}/retry", tag = "messages",
    params(("id" = String, Path, description = "Message id (msg_…)")),
    responses(
        (status = 200, body = MessageView),
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
) -> AppResult<Json<MessageView>> {
    let id = parse_message_id(&id)?;
    retry_as(&state, &caller, &id).await.map(Json)
}

/// Retries message `id` now as `caller`: what
/// `POST /v1/messages/{id}/retry` does, and the console's retry too.
pub(crate) async fn retry_as(
    state: &AppState,
    caller: &Caller,
    id: &MessageId,
) -> AppResult<MessageView> {
    signet_runtime::retry_now(
        state.store().as_ref(),
        id.as_str(),
        &caller.actor(),
        state.now_ms(),
    )
    .await
    .map_err(runtime_error)?;
    shown_to(state, id.as_str(), caller.scope).await
}

/// Resend a delivered message (state `succeeded`): the dispatcher
/// delivers it again as a new attempt in its history, with the same
/// `webhook-id` and a fresh signature and timestamp. It gets its whole
/// attempt budget again and its callback is sent again when it finishes.
/// A dead message is refused (`409`): replay it from the dead letters
/// (`POST /v1/dead-letters/replay`); so is one not delivered yet.
#[utoipa::path(
    post, path = "/v1/messages/{id}/resend", tag = "messages",
    params(("id" = String, Path, description = "Message id (msg_…)")),
    responses(
        (status = 200, description = "The message, due again", body = MessageView),
        (status = 403, description = "The API key is not admin", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not delivered (pending, dead or cancelled); the message names its state and what to do", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn resend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<MessageView>> {
    let id = parse_message_id(&id)?;
    resend_as(&state, &caller, &id).await.map(Json)
}

/// Resends message `id` as `caller`: what `POST /v1/messages/{id}/resend`
/// does, and the console's resend too.
pub(crate) async fn resend_as(
    state: &AppState,
    caller: &Caller,
    id: &MessageId,
) -> AppResult<MessageView> {
    signet_runtime::resend_message(state.store().as_ref(), id, &caller.actor(), state.now_ms())
        .await
        .map_err(runtime_error)?;
    shown_to(state, id.as_str(), caller.scope).await
}

/// Query of `GET /v1/messages`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct MessageListQuery {
    /// Only this state.
    pub state: Option<String>,
    /// Page size, 1–1000 (default 50).
    pub limit: Option<String>,
    /// From `next_cursor`.
    pub cursor: Option<String>,
}

/// List messages, newest first.
#[utoipa::path(
    get, path = "/v1/messages", tag = "messages",
    params(MessageListQuery),
    responses((status = 200, body = MessagePage), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<MessageListQuery>,
) -> AppResult<Json<MessagePage>> {
    let page = state.store().list_tasks(list_filter(q)?).await?;
    Ok(Json(MessagePage {
        items: page
            .items
            .iter()
            .map(|r| MessageView::new(r, None, caller.scope))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// The filter of a message listing, checked (the API's and the console's).
pub(crate) fn list_filter(q: MessageListQuery) -> AppResult<TaskFilter> {
    let task_state = q
        .state
        .as_deref()
        .map(|s| s.parse::<TaskState>())
        .transpose()
        .map_err(|e| AppError::invalid("state", e.to_string()))?;
    Ok(TaskFilter {
        queue: Some(MESSAGE_QUEUE.to_owned()),
        state: task_state,
        include_internal: true,
        limit: parse_limit(q.limit.as_deref())?,
        cursor: q.cursor,
    })
}

/// This file's routes, declared once: one `routes!` a path, its methods and
/// path taken from the handlers' `#[utoipa::path]`, which also document them.
pub(crate) fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(publish, list))
        .routes(utoipa_axum::routes!(publish_batch))
        .routes(utoipa_axum::routes!(show))
        .routes(utoipa_axum::routes!(retry))
        .routes(utoipa_axum::routes!(resend))
}
