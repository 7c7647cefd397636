//! `/v1/tasks`: enqueue (server-signed or client-signed), show, list, cancel.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;
use signet_sign::{Algorithm, TaskEnvelope};
use signet_store::{
    validate_queue_name, NewTask, SignatureRecord, TaskFilter, TaskId, TaskState,
    DEFAULT_MAX_ATTEMPTS, MAX_ARGS_BYTES, MAX_IDEMPOTENCY_KEY_LEN, MAX_TASK_NAME_LEN,
};

use crate::error::{AppError, AppResult, ErrorBody};
use crate::extract::{JsonBody, QueryParams};
use crate::state::AppState;
use crate::views::{TaskPage, TaskView, TimeInput};

/// Largest `max_attempts`.
pub(crate) const MAX_ATTEMPTS_LIMIT: u32 = 1000;
/// Priorities allowed: `-PRIORITY_LIMIT..=PRIORITY_LIMIT`.
pub(crate) const PRIORITY_LIMIT: i32 = 1000;
/// Longest `delay_ms`: one year.
pub(crate) const MAX_DELAY_MS: i64 = 365 * 24 * 3600 * 1000;
/// Most headers on a task.
pub(crate) const MAX_HEADERS: usize = 64;
/// Longest header value.
pub(crate) const MAX_HEADER_VALUE_LEN: usize = 8 * 1024;
/// Longest callback URL.
pub(crate) const MAX_CALLBACK_URL_LEN: usize = 2048;

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
    /// Arguments (any JSON; default `{}`), stored byte for byte.
    #[schema(value_type = Object)]
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
}

/// The `Idempotency-Key` header of a publish or enqueue, checked.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> AppResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .ok()
        .filter(|t| {
            !t.is_empty()
                && t.len() <= MAX_IDEMPOTENCY_KEY_LEN
                && t.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            AppError::invalid(
                "Idempotency-Key",
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
            )
        })?;
    Ok(Some(text.to_owned()))
}

fn validate_task_name(name: &str) -> AppResult<()> {
    if name.is_empty() || name.len() > MAX_TASK_NAME_LEN || name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "task",
            format!("must be 1 to {MAX_TASK_NAME_LEN} bytes without control characters"),
        ));
    }
    Ok(())
}

fn validate_callback(url: &str) -> AppResult<()> {
    let lower = url.to_ascii_lowercase();
    let ok = (lower.starts_with("http://") || lower.starts_with("https://"))
        && url.len() <= MAX_CALLBACK_URL_LEN
        && url.len() > "https://".len()
        && !url
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid(
            "callback_url",
            format!("must be an http:// or https:// URL of at most {MAX_CALLBACK_URL_LEN} bytes without spaces"),
        ))
    }
}

fn build_headers(headers: Option<BTreeMap<String, String>>) -> AppResult<BTreeMap<String, String>> {
    let headers = headers.unwrap_or_default();
    if headers.len() > MAX_HEADERS {
        return Err(AppError::invalid(
            "headers",
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    if let Some((name, _)) = headers.iter().find(|(_, v)| v.len() > MAX_HEADER_VALUE_LEN) {
        return Err(AppError::invalid(
            format!("headers.{name}"),
            format!("value longer than {MAX_HEADER_VALUE_LEN} bytes"),
        ));
    }
    TaskEnvelope::normalise_headers(headers).map_err(|e| AppError::invalid("headers", e.message()))
}

/// Builds the envelope and its signature from a request, checking every field.
fn build_task(
    state: &AppState,
    req: EnqueueRequest,
    idempotency_key: Option<String>,
    now_ms: i64,
) -> AppResult<NewTask> {
    validate_queue_name(&req.queue).map_err(|e| AppError::invalid("queue", e.to_string()))?;
    signet_runtime::producer::check_not_reserved(&req.queue)
        .map_err(|e| AppError::invalid("queue", e))?;
    validate_task_name(&req.task)?;
    let args = req
        .args
        .map_or_else(|| b"{}".to_vec(), |a| a.get().as_bytes().to_vec());
    if args.len() > MAX_ARGS_BYTES {
        return Err(AppError::invalid(
            "args",
            format!("larger than {MAX_ARGS_BYTES} bytes"),
        ));
    }
    let max_attempts = req.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
    if !(1..=MAX_ATTEMPTS_LIMIT).contains(&max_attempts) {
        return Err(AppError::invalid(
            "max_attempts",
            format!("must be 1 to {MAX_ATTEMPTS_LIMIT}, got {max_attempts}"),
        ));
    }
    let priority = req.priority.unwrap_or(0);
    if !(-PRIORITY_LIMIT..=PRIORITY_LIMIT).contains(&priority) {
        return Err(AppError::invalid(
            "priority",
            format!("must be -{PRIORITY_LIMIT} to {PRIORITY_LIMIT}, got {priority}"),
        ));
    }
    let headers = build_headers(req.headers)?;
    if let Some(url) = &req.callback_url {
        validate_callback(url)?;
    }
    let client_signed = req.signature.is_some();
    let mut not_before_ms = req.not_before.map(|t| t.0);
    if let Some(delay) = req.delay_ms {
        if client_signed {
            return Err(AppError::invalid(
                "delay_ms",
                "not allowed with a client signature (the run time must be signed); use not_before",
            ));
        }
        if not_before_ms.is_some() {
            return Err(AppError::invalid(
                "delay_ms",
                "give delay_ms or not_before, not both",
            ));
        }
        if !(0..=MAX_DELAY_MS).contains(&delay) {
            return Err(AppError::invalid(
                "delay_ms",
                format!("must be 0 to {MAX_DELAY_MS} (one year), got {delay}"),
            ));
        }
        if delay > 0 {
            not_before_ms = Some(now_ms.saturating_add(delay));
        }
    }
    if let Some(nb) = not_before_ms {
        if nb > now_ms.saturating_add(MAX_DELAY_MS) {
            return Err(AppError::invalid(
                "not_before",
                "more than one year from now",
            ));
        }
    }
    let expires_at_ms = req.expires_at.map(|t| t.0);
    if let Some(exp) = expires_at_ms {
        if exp <= now_ms {
            return Err(AppError::invalid(
                "expires_at",
                "is in the past; give a future time",
            ));
        }
        if not_before_ms.is_some_and(|nb| exp <= nb) {
            return Err(AppError::invalid("expires_at", "must be after not_before"));
        }
    }

    let (id, created_at_ms) = if client_signed {
        let id = req
            .id
            .ok_or_else(|| AppError::invalid("id", "required with a client signature"))?;
        TaskId::parse(&id).map_err(|e| AppError::invalid("id", e.to_string()))?;
        let created = req
            .created_at
            .ok_or_else(|| AppError::invalid("created_at", "required with a client signature"))?;
        (id, created.0)
    } else {
        if req.id.is_some() {
            return Err(AppError::invalid(
                "id",
                "only allowed with a client signature",
            ));
        }
        if req.created_at.is_some() {
            return Err(AppError::invalid(
                "created_at",
                "only allowed with a client signature",
            ));
        }
        (TaskId::generate().to_string(), now_ms)
    };

    let envelope = TaskEnvelope {
        id,
        queue: req.queue,
        name: req.task,
        args,
        headers,
        created_at_ms,
        not_before_ms,
        expires_at_ms,
        max_attempts,
        callback_url: req.callback_url,
    };
    let signature = match req.signature {
        Some(sig) => Some(verify_client_signature(state, &envelope, sig)?),
        None => sign(state, &envelope)?,
    };
    let task = NewTask {
        envelope,
        signature,
        priority,
        idempotency_key,
    };
    task.validate()
        .map_err(|e| AppError::invalid("request", e.to_string()))?;
    Ok(task)
}

/// Signs as producer with the active key, or leaves the task unsigned when
/// signing is off.
fn sign(state: &AppState, envelope: &TaskEnvelope) -> AppResult<Option<SignatureRecord>> {
    let signing = state.signing();
    if signing.signs() {
        let sig = envelope.sign(&signing.ring).map_err(|e| {
            if e.is_unsupported() {
                AppError::invalid("request", e.message())
            } else {
                AppError::Internal(Box::new(e))
            }
        })?;
        return Ok(Some(SignatureRecord {
            alg: sig.alg,
            key_id: sig.key_id.as_str().to_owned(),
            sig: sig.sig,
        }));
    }
    if signing.required || !signing.ring.is_empty() {
        return Err(AppError::invalid(
            "signature",
            "this server holds no signing key (verify-only); sign the envelope yourself and send `signature`",
        ));
    }
    Ok(None)
}

/// Verifies a client's signature at the door: the key must be in the ring,
/// its algorithm must match, and the signature must verify over the
/// canonical bytes. Refusals carry the verification outcome as `reason`.
fn verify_client_signature(
    state: &AppState,
    envelope: &TaskEnvelope,
    sig: SignatureInput,
) -> AppResult<SignatureRecord> {
    let refuse =
        |reason: &'static str, message: String| AppError::SignatureInvalid { reason, message };
    let alg: Algorithm = sig.alg.parse().map_err(|_| {
        refuse(
            "malformed",
            format!("alg {:?} is not hmac-sha256 or ed25519", sig.alg),
        )
    })?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sig.sig.as_bytes())
        .map_err(|_| refuse("malformed", "sig is not standard base64".into()))?;
    let signing = state.signing();
    if signing.dev {
        tracing::warn!(task_id = %envelope.id, "SIGNET_DEV is on: storing a client signature without verifying it");
        if bytes.len() != alg.signature_len() {
            return Err(refuse(
                "malformed",
                format!(
                    "a {alg} signature is {} bytes, got {}",
                    alg.signature_len(),
                    bytes.len()
                ),
            ));
        }
    } else {
        envelope
            .verify(alg, &sig.key_id, &bytes, &signing.ring)
            .map_err(|e| {
                let hint = if e.is_mismatch() {
                    " (args are signed as the exact JSON text sent in this body)"
                } else {
                    ""
                };
                refuse(e.reason(), format!("{}{hint}", e.message()))
            })?;
    }
    Ok(SignatureRecord {
        alg,
        key_id: sig.key_id,
        sig: bytes,
    })
}

/// Enqueue a task.
#[utoipa::path(
    post, path = "/v1/tasks", tag = "tasks",
    request_body = EnqueueRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes enqueue exactly-once per key")),
    responses(
        (status = 201, description = "Enqueued", body = TaskView),
        (status = 200, description = "Already enqueued with this Idempotency-Key", body = TaskView),
        (status = 400, description = "Malformed JSON or unknown field", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid value or signature", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn enqueue(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<EnqueueRequest>,
) -> AppResult<(StatusCode, Json<TaskView>)> {
    let key = idempotency_key(&headers)?;
    let now = state.now_ms();
    let task = build_task(&state, req, key, now)?;
    let out = state.store().enqueue(task, now).await?;
    let status = if out.created {
        metrics::counter!(
            signet_runtime::metrics::TASKS_ENQUEUED,
            "queue" => out.task.envelope.queue.clone(),
            "task" => out.task.envelope.name.clone()
        )
        .increment(1);
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(TaskView::from(&out.task))))
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

/// Show a task.
#[utoipa::path(
    get, path = "/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses((status = 200, body = TaskView), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> AppResult<Json<TaskView>> {
    let id = parse_task_id(&id)?;
    let row = state
        .store()
        .task(id.as_str())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("task {id} not found")))?;
    Ok(Json(TaskView::from(&row)))
}

/// Query of `GET /v1/tasks`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this state.
    pub state: Option<String>,
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

/// List tasks.
#[utoipa::path(
    get, path = "/v1/tasks", tag = "tasks",
    params(ListQuery),
    responses((status = 200, body = TaskPage), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<ListQuery>,
) -> AppResult<Json<TaskPage>> {
    if let Some(queue) = &q.queue {
        validate_queue_name(queue).map_err(|e| AppError::invalid("queue", e.to_string()))?;
    }
    let task_state = q
        .state
        .as_deref()
        .map(|s| s.parse::<TaskState>())
        .transpose()
        .map_err(|e| AppError::invalid("state", e.to_string()))?;
    let filter = TaskFilter {
        queue: q.queue,
        state: task_state,
        limit: parse_limit(q.limit.as_deref())?,
        cursor: q.cursor,
    };
    let page = state.store().list_tasks(filter).await?;
    Ok(Json(TaskPage {
        items: page.items.iter().map(TaskView::from).collect(),
        next_cursor: page.next_cursor,
    }))
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
    Path(id): Path<String>,
) -> AppResult<Json<TaskView>> {
    let id = parse_task_id(&id)?;
    let row = state.store().cancel(id.as_str(), state.now_ms()).await?;
    Ok(Json(TaskView::from(&row)))
}

/// This file's routes, declared once: one `routes!` a path, its methods and
/// path taken from the handlers' `#[utoipa::path]`, which also document them.
pub(crate) fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(enqueue, list))
        .routes(utoipa_axum::routes!(show))
        .routes(utoipa_axum::routes!(cancel))
}
