//! `GET /v1/queues`: tasks per queue and state, each bound queue's push
//! endpoint and each paused queue's pause; `POST /v1/queues/{queue}/pause|resume`; `PUT|GET|DELETE /v1/queues/{queue}/push`: binding a queue
//! to an endpoint (docs/push-queues.md). A binding's URL query is shown to
//! admin keys only (it may hold the endpoint's credentials).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use signet_runtime::{
    pause_queue, queue_overview, queue_overview_of, resume_queue, NewBinding, PushService,
    QueueOverview,
};
use signet_store::{PushBinding, StoreError, TaskState};

use crate::auth::{Caller, Scope};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::extract::{JsonBody, OptionalJsonBody, QueryParams};
use crate::routes::messages::runtime_error;
use crate::routes::tasks::parse_flag;
use crate::state::AppState;
use crate::views::{rfc3339, shown_url};

/// One queue's depth.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct QueueView {
    /// Queue name.
    pub queue: String,
    /// Tasks in each state (every state listed, 0 included).
    pub counts: BTreeMap<String, u64>,
    /// All tasks of the queue.
    pub total: u64,
    /// The push endpoint the queue is bound to; absent for a pull queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<PushView>,
    /// Paused by an operator: claims skip the queue on every node.
    pub paused: bool,
    /// When it was paused (RFC 3339); null while it runs.
    pub paused_at: Option<String>,
    /// Who paused it (an API key, the CLI); null while it runs.
    pub paused_by: Option<String>,
    /// Why, when the operator said; null otherwise.
    pub pause_reason: Option<String>,
}

/// A queue's push binding, as shown: the answer of
/// `GET /v1/queues/{queue}/push`, and of `signet queues bind --json`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PushView {
    /// The bound queue.
    pub queue: String,
    /// Where each task is POSTed (query values read `redacted` for keys
    /// that are not admin).
    pub url: String,
    /// The target (`tgt_…`) whose secret signs the requests.
    pub target: String,
    /// The target's name, when it still exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
    /// Time the endpoint gets to answer, ms.
    pub timeout_ms: u32,
    /// Pushes in flight per node.
    pub concurrency: u32,
    /// Answers must carry a valid `webhook-signature`.
    pub require_signed_response: bool,
    /// When the queue was bound (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl PushView {
    /// `b` as an admin key sees it (the whole URL), with its target's name
    /// when known.
    pub fn new(b: PushBinding, target_name: Option<String>) -> Self {
        Self::shown_to(b, target_name, Scope::Admin)
    }

    fn shown_to(b: PushBinding, target_name: Option<String>, scope: Scope) -> Self {
        Self {
            url: shown_url(&b.url, scope),
            target: b.target_id,
            target_name,
            timeout_ms: b.timeout_ms,
            concurrency: b.concurrency,
            require_signed_response: b.require_signed_response,
            created_at: rfc3339(b.created_at_ms),
            updated_at: rfc3339(b.updated_at_ms),
            queue: b.queue,
        }
    }
}

/// `PUT /v1/queues/{queue}/push`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BindRequest {
    /// Where each task is POSTed: `http://` or `https://`, passing the SSRF
    /// guard and the target's `url_prefix` / `https_only`.
    pub url: String,
    /// The target whose secret signs the requests: id (`tgt_…`) or name.
    pub target: String,
    /// Time the endpoint gets to answer, 1 000–300 000 ms (default 30 000).
    pub timeout_ms: Option<u64>,
    /// Pushes in flight per node, 1–1 000 (default 10).
    pub concurrency: Option<u64>,
    /// Answers must be signed with the target's secret (default false).
    pub require_signed_response: Option<bool>,
}

/// Response of `GET /v1/queues`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct QueuesResponse {
    /// Queues, by name.
    pub queues: Vec<QueueView>,
}

/// Query of `GET /v1/queues`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct QueuesQuery {
    /// Only this queue (Signet's own `signet:messages` included, when
    /// named).
    pub queue: Option<String>,
    /// `true` to count Signet's own queue `signet:messages` (messages and
    /// callbacks) too; without `queue` it is left out (default `false`).
    #[param(value_type = Option<bool>)]
    pub include_internal: Option<String>,
}

/// Tasks per queue and state, the push endpoint of each bound queue
/// (`push`) and whether it is paused (`paused`, `paused_at`); bound and
/// paused queues are listed even when empty. Signet's own queue
/// `signet:messages` is left out unless named in `queue` or asked for with
/// `include_internal=true`.
#[utoipa::path(
    get, path = "/v1/queues", tag = "queues",
    params(QueuesQuery),
    responses(
        (status = 200, body = QueuesResponse),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<QueuesQuery>,
) -> AppResult<Json<QueuesResponse>> {
    let include_internal = parse_flag("include_internal", q.include_internal.as_deref())?;
    let overview = queue_overview(state.store().as_ref(), q.queue.as_deref(), include_internal)
        .await
        .map_err(runtime_error)?;
    let mut queues = Vec::with_capacity(overview.len());
    for o in overview {
        queues.push(QueueView::shown_to(&state, o, caller.scope).await);
    }
    Ok(Json(QueuesResponse { queues }))
}

impl QueueView {
    /// `o` as a key of `scope` sees it.
    async fn shown_to(state: &AppState, o: QueueOverview, scope: Scope) -> Self {
        let per_state: BTreeMap<String, u64> = TaskState::ALL
            .into_iter()
            .map(|s| (s.as_str().to_owned(), o.counts.count(s)))
            .collect();
        let push = match o.push {
            Some(b) => {
                let name = target_name(state, &b).await;
                Some(PushView::shown_to(b, name, scope))
            }
            None => None,
        };
        QueueView {
            total: per_state.values().sum(),
            counts: per_state,
            push,
            paused: o.pause.is_some(),
            paused_at: o.pause.as_ref().map(|p| rfc3339(p.paused_at_ms)),
            paused_by: o.pause.as_ref().map(|p| p.paused_by.clone()),
            pause_reason: o.pause.and_then(|p| p.reason),
            queue: o.counts.queue,
        }
    }

    /// Queue `queue` as it stands now.
    async fn of(state: &AppState, queue: &str, scope: Scope) -> AppResult<Self> {
        let o = queue_overview_of(state.store().as_ref(), queue)
            .await
            .map_err(runtime_error)?;
        Ok(QueueView::shown_to(state, o, scope).await)
    }
}

/// The body of `POST /v1/queues/{queue}/pause` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PauseRequest {
    /// Why, shown beside the pause (1 to 1 024 bytes on one line).
    pub reason: Option<String>,
}

/// Pause a queue on every node: from the next claim on, no worker (on the
/// store or over HTTP), push-queue drain or, for `signet:messages`,
/// message delivery takes work from it. Running work is not touched.
/// Pausing a paused queue changes nothing (the first pause stays). A queue
/// may be paused before it holds a task.
#[utoipa::path(
    post, path = "/v1/queues/{queue}/pause", tag = "queues",
    params(("queue" = String, Path, description = "The queue (Signet's own `signet:messages` holds every HTTP delivery)")),
    request_body(content = Option<PauseRequest>, description = "Optional: `{\"reason\": \"…\"}`"),
    responses(
        (status = 200, description = "The queue, paused", body = QueueView),
        (status = 400, description = "Malformed JSON or unknown field", body = ErrorBody),
        (status = 403, description = "The API key is not admin", body = ErrorBody),
        (status = 422, description = "Invalid field (named): queue, reason", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    Path(queue): Path<String>,
    OptionalJsonBody(req): OptionalJsonBody<PauseRequest>,
) -> AppResult<Json<QueueView>> {
    pause_as(
        &state,
        &caller,
        &queue,
        req.unwrap_or_default().reason.as_deref(),
    )
    .await
    .map(Json)
}

/// Pauses `queue` as `caller`: what `POST /v1/queues/{queue}/pause` does,
/// and the console's pause too.
pub(crate) async fn pause_as(
    state: &AppState,
    caller: &Caller,
    queue: &str,
    reason: Option<&str>,
) -> AppResult<QueueView> {
    pause_queue(
        state.store().as_ref(),
        queue,
        &caller.actor(),
        reason,
        state.now_ms(),
    )
    .await
    .map_err(runtime_error)?;
    QueueView::of(state, queue, caller.scope).await
}

/// Resume a paused queue: claims take from it again at once, on every
/// node, and workers waiting on it wake. Resuming a queue that is not
/// paused changes nothing.
#[utoipa::path(
    post, path = "/v1/queues/{queue}/resume", tag = "queues",
    params(("queue" = String, Path, description = "The queue")),
    responses(
        (status = 200, description = "The queue, running", body = QueueView),
        (status = 403, description = "The API key is not admin", body = ErrorBody),
        (status = 422, description = "Not a queue name", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(queue): Path<String>,
) -> AppResult<Json<QueueView>> {
    resume_as(&state, &caller, &queue).await.map(Json)
}

/// Resumes `queue` as `caller`: what `POST /v1/queues/{queue}/resume`
/// does, and the console's resume too.
pub(crate) async fn resume_as(
    state: &AppState,
    caller: &Caller,
    queue: &str,
) -> AppResult<QueueView> {
    resume_queue(state.store().as_ref(), queue, &caller.actor())
        .await
        .map_err(runtime_error)?;
    QueueView::of(state, queue, caller.scope).await
}

/// The name of a binding's target, if it still exists (a lookup that fails
/// shows none rather than failing the answer).
async fn target_name(state: &AppState, b: &PushBinding) -> Option<String> {
    service(state)
        .target_of(b)
        .await
        .ok()
        .flatten()
        .map(|t| t.name)
}

fn service(state: &AppState) -> PushService {
    let delivery = state.delivery();
    PushService::new(
        state.store().clone(),
        delivery.targets.clone(),
        delivery.ssrf.clone(),
    )
    .clock(state.clock())
}

/// Bind a queue to a push endpoint, or change its binding: the dispatcher
/// then POSTs each of its tasks there, signed with the target's secret
/// (docs/push-queues.md). Nodes pick the change up within 2 s.
#[utoipa::path(
    put, path = "/v1/queues/{queue}/push", tag = "queues",
    params(("queue" = String, Path, description = "The queue (not Signet's own `signet:…`)")),
    request_body = BindRequest,
    responses(
        (status = 200, description = "The binding", body = PushView),
        (status = 400, description = "Malformed JSON or unknown field", body = ErrorBody),
        (status = 403, description = "The API key is not admin", body = ErrorBody),
        (status = 422, description = "Invalid field (named): queue, url (SSRF guard, target url_prefix), target, timeout_ms, concurrency", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn bind(
    State(state): State<AppState>,
    caller: Caller,
    Path(queue): Path<String>,
    JsonBody(req): JsonBody<BindRequest>,
) -> AppResult<Json<PushView>> {
    let (binding, target) = service(&state)
        .bind(
            &queue,
            NewBinding {
                url: req.url,
                target: req.target,
                timeout_ms: req.timeout_ms,
                concurrency: req.concurrency,
                require_signed_response: req.require_signed_response.unwrap_or(false),
            },
        )
        .await
        .map_err(runtime_error)?;
    Ok(Json(PushView::shown_to(
        binding,
        Some(target.name),
        caller.scope,
    )))
}

/// A queue's push binding.
#[utoipa::path(
    get, path = "/v1/queues/{queue}/push", tag = "queues",
    params(("queue" = String, Path, description = "The queue")),
    responses(
        (status = 200, description = "The binding", body = PushView),
        (status = 404, description = "`not_found`: the queue is not bound", body = ErrorBody),
        (status = 422, description = "Not a queue name", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(queue): Path<String>,
) -> AppResult<Json<PushView>> {
    let binding = service(&state)
        .get(&queue)
        .await
        .map_err(runtime_error)?
        .ok_or_else(|| AppError::from(StoreError::not_found("push binding", queue)))?;
    let name = target_name(&state, &binding).await;
    Ok(Json(PushView::shown_to(binding, name, caller.scope)))
}

/// Unbind a queue: the dispatcher stops pushing it (in-flight pushes
/// finish); its tasks stay queued for pull workers.
#[utoipa::path(
    delete, path = "/v1/queues/{queue}/push", tag = "queues",
    params(("queue" = String, Path, description = "The queue")),
    responses(
        (status = 204, description = "Unbound"),
        (status = 403, description = "The API key is not admin", body = ErrorBody),
        (status = 404, description = "`not_found`: the queue is not bound", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn unbind(
    State(state): State<AppState>,
    Path(queue): Path<String>,
) -> AppResult<axum::http::StatusCode> {
    service(&state)
        .unbind(&queue)
        .await
        .map_err(runtime_error)?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// This file's routes, declared once: one `routes!` a path, its methods and
/// path taken from the handlers' `#[utoipa::path]`, which also document them.
pub(crate) fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list))
        .routes(utoipa_axum::routes!(bind, show, unbind))
        .routes(utoipa_axum::routes!(pause))
        .routes(utoipa_axum::routes!(resume))
}
