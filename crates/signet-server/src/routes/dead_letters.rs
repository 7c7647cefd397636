//! `/v1/dead-letters`: list, show, replay, purge.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use signet_store::{validate_queue_name, DeadFilter, DeadReason, DeadSelector, TaskState};

use crate::auth::{Caller, Scope};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::extract::{JsonBody, QueryParams};
use crate::routes::messages::runtime_error;
use crate::routes::tasks::{parse_limit, parse_task_id};
use crate::state::AppState;
use crate::views::{TaskPage, TaskView, TimeInput};

/// Most ids in one replay or purge.
pub const MAX_IDS: usize = 1000;

/// Query of `GET /v1/dead-letters`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeadListQuery {
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this reason (`signature-invalid`, `max-attempts`, …).
    pub reason: Option<String>,
    /// Only dead since this time, inclusive (RFC 3339 or unix ms).
    pub since: Option<String>,
    /// Only dead before this time, exclusive (RFC 3339 or unix ms); after
    /// `since` when both are given.
    pub until: Option<String>,
    /// Page size, 1–1000 (default 50).
    pub limit: Option<String>,
    /// From `next_cursor`.
    pub cursor: Option<String>,
}

/// A filter over dead letters (for replay and purge).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeadFilterInput {
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this reason.
    pub reason: Option<String>,
    /// Only dead since this time (RFC 3339 or unix ms).
    #[schema(value_type = Option<String>)]
    pub since: Option<TimeInput>,
    /// Only dead before this time (RFC 3339 or unix ms); after `since`
    /// when both are given.
    #[schema(value_type = Option<String>)]
    pub until: Option<TimeInput>,
}

/// Body of replay and purge: exactly one of `ids` or `filter`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeadSelectorInput {
    /// These dead letters (ids that are not dead letters are skipped, and
    /// listed in `skipped` with the reason).
    pub ids: Option<Vec<String>>,
    /// Every dead letter matching this filter (`{}` matches all).
    pub filter: Option<DeadFilterInput>,
}

/// Body of replay: exactly one of `ids` or `filter`, and whether to
/// re-sign.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayInput {
    /// These dead letters (ids that are not dead letters are skipped, and
    /// listed in `skipped` with the reason).
    pub ids: Option<Vec<String>>,
    /// Every dead letter matching this filter (`{}` matches all).
    pub filter: Option<DeadFilterInput>,
    /// Re-sign with the server's active key, then replay, the dead letters
    /// whose signing key is no longer in the key ring (died
    /// `signature-invalid`, `unknown-key`); the others are refused, each
    /// with the reason (`refused`). Admin keys only; at most 1000.
    #[serde(default)]
    pub resign: bool,
}

/// What a replay or purge did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeadActionResponse {
    /// How many.
    pub count: usize,
    /// Which.
    pub ids: Vec<String>,
    /// Replay: dead letters signed with a key that is not in the server's
    /// key ring, which will die again (replay them with `resign: true`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Replay with `resign`: what was re-signed, old and new key id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resigned: Option<Vec<ResignedView>>,
    /// Replay with `resign`: what was not re-signed (nor replayed), and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Vec<RefusedView>>,
    /// By `ids`: the ids left alone, and why (`not found`, `not a dead
    /// letter (it is …)`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<RefusedView>,
}

impl DeadActionResponse {
    pub(crate) fn of(ids: Vec<String>) -> Self {
        Self {
            count: ids.len(),
            ids,
            warnings: Vec::new(),
            resigned: None,
            refused: None,
            skipped: Vec::new(),
        }
    }

    /// Adds the answer of the next part of the same action (the console
    /// acts on a long list of ids in parts of [`MAX_IDS`]).
    pub(crate) fn merge(&mut self, next: Self) {
        fn extend<T>(all: &mut Option<Vec<T>>, next: Option<Vec<T>>) {
            if let Some(next) = next {
                all.get_or_insert_with(Vec::new).extend(next);
            }
        }
        self.count += next.count;
        self.ids.extend(next.ids);
        self.warnings.extend(next.warnings);
        extend(&mut self.resigned, next.resigned);
        extend(&mut self.refused, next.refused);
        self.skipped.extend(next.skipped);
    }

    /// With the ids of `selector` that were not acted on, and why.
    async fn skipping(mut self, state: &AppState, selector: &DeadSelector) -> AppResult<Self> {
        if let DeadSelector::Ids(asked) = selector {
            self.skipped =
                signet_runtime::skipped_dead_letters(state.store().as_ref(), asked, &self.ids)
                    .await
                    .map_err(runtime_error)?
                    .into_iter()
                    .map(|s| RefusedView {
                        id: s.id,
                        reason: s.reason,
                    })
                    .collect();
        }
        Ok(self)
    }
}

/// One dead letter re-signed and replayed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ResignedView {
    /// The task or message.
    pub id: String,
    /// The key id it was signed with.
    pub from_key_id: String,
    /// The key id it is signed with now.
    pub to_key_id: String,
}

/// One dead letter left as it is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RefusedView {
    /// The id.
    pub id: String,
    /// Why it was left alone.
    pub reason: String,
}

fn parse_reason(reason: Option<&str>) -> AppResult<Option<DeadReason>> {
    reason
        .map(str::parse::<DeadReason>)
        .transpose()
        .map_err(|e| AppError::invalid("reason", e.to_string()))
}

fn parse_queue(queue: Option<String>, field: &str) -> AppResult<Option<String>> {
    if let Some(q) = &queue {
        validate_queue_name(q).map_err(|e| AppError::invalid(field, e.to_string()))?;
    }
    Ok(queue)
}

/// List dead letters, newest first.
#[utoipa::path(
    get, path = "/v1/dead-letters", tag = "dead-letters",
    params(DeadListQuery),
    responses((status = 200, body = TaskPage), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<DeadListQuery>,
) -> AppResult<Json<TaskPage>> {
    let page = state.store().list_dead(list_filter(q)?).await?;
    Ok(Json(TaskPage::shown_to(page, caller.scope)))
}

/// The filter of a dead-letter listing, checked (the API's and the
/// console's).
pub(crate) fn list_filter(q: DeadListQuery) -> AppResult<DeadFilter> {
    let time = |field: &str, text: Option<&str>| {
        text.map(|t| {
            TimeInput::parse(t)
                .map(|t| t.0)
                .map_err(|e| AppError::invalid(field, e))
        })
        .transpose()
    };
    let since_ms = time("since", q.since.as_deref())?;
    let until_ms = time("until", q.until.as_deref())?;
    check_range(since_ms, until_ms, "")?;
    Ok(DeadFilter {
        queue: parse_queue(q.queue, "queue")?,
        reason: parse_reason(q.reason.as_deref())?,
        since_ms,
        until_ms,
        limit: parse_limit(q.limit.as_deref())?,
        cursor: q.cursor,
    })
}

/// A filter's time range is not empty: `until` (exclusive) is after
/// `since` (inclusive) when both are given. One rule for listing, replay
/// and purge, so that a listing never counts what a purge would refuse.
/// `prefix` names the filter's fields in the error (`filter.`).
fn check_range(since_ms: Option<i64>, until_ms: Option<i64>, prefix: &str) -> AppResult<()> {
    match (since_ms, until_ms) {
        (Some(since), Some(until)) if until <= since => Err(AppError::invalid(
            format!("{prefix}until"),
            format!("must be after {prefix}since"),
        )),
        _ => Ok(()),
    }
}

/// Show one dead letter.
#[utoipa::path(
    get, path = "/v1/dead-letters/{id}", tag = "dead-letters",
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
    match state.store().task(id.as_str()).await? {
        Some(row) if row.state == TaskState::Dead => {
            let history = state.store().history(id.as_str()).await?;
            Ok(Json(TaskView::with_history(&row, &history, caller.scope)))
        }
        _ => Err(AppError::NotFound(format!("dead letter {id} not found"))),
    }
}

/// The dead letters `input` selects, checked: exactly one of ids or a
/// filter, ids well formed, the filter's queue, reason and times valid.
pub(crate) fn selector(input: DeadSelectorInput) -> AppResult<DeadSelector> {
    match (input.ids, input.filter) {
        (Some(_), Some(_)) => Err(AppError::invalid("ids", "give ids or filter, not both")),
        (None, None) => Err(AppError::invalid(
            "ids",
            "give ids (a list of task ids) or filter (`{}` selects every dead letter)",
        )),
        (Some(ids), None) => {
            if ids.is_empty() || ids.len() > MAX_IDS {
                return Err(AppError::invalid("ids", format!("give 1 to {MAX_IDS} ids")));
            }
            for (i, id) in ids.iter().enumerate() {
                // Task or message ids (messages are task rows).
                parse_task_id(id).map_err(|_| {
                    AppError::invalid(format!("ids[{i}]"), "is not a task_… or msg_… id")
                })?;
            }
            Ok(DeadSelector::Ids(ids))
        }
        (None, Some(f)) => {
            check_range(f.since.map(|t| t.0), f.until.map(|t| t.0), "filter.")?;
            Ok(DeadSelector::Filter(DeadFilter {
                queue: parse_queue(f.queue, "filter.queue")?,
                reason: parse_reason(f.reason.as_deref()).map_err(|_| {
                    AppError::invalid("filter.reason", "unknown dead-letter reason")
                })?,
                since_ms: f.since.map(|t| t.0),
                until_ms: f.until.map(|t| t.0),
                limit: 0,
                cursor: None,
            }))
        }
    }
}

/// Put dead letters back in their queue (the attempt count starts again;
/// earlier attempts stay in their history; envelope and signature
/// untouched). With `resign: true` (admin), dead letters signed with a key
/// that left the key ring are first re-signed with the active key.
#[utoipa::path(
    post, path = "/v1/dead-letters/replay", tag = "dead-letters",
    request_body = ReplayInput,
    responses(
        (status = 200, body = DeadActionResponse),
        (status = 403, description = "`resign` without an admin key", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, description = "`resign` on a server without an active signing key", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<ReplayInput>,
) -> AppResult<Json<DeadActionResponse>> {
    let resign = input.resign;
    let selector = selector(DeadSelectorInput {
        ids: input.ids,
        filter: input.filter,
    })?;
    replay_selected(&state, &caller, selector, resign)
        .await
        .map(Json)
}

/// Replays (with `resign`, re-signs and replays) the dead letters
/// `selector` picks, as `caller`: what `POST /v1/dead-letters/replay` does,
/// and the console's replay too.
pub(crate) async fn replay_selected(
    state: &AppState,
    caller: &Caller,
    selector: DeadSelector,
    resign: bool,
) -> AppResult<DeadActionResponse> {
    let actor = caller.actor();
    let ring = &state.signing().ring;
    if resign {
        if caller.scope != Scope::Admin {
            return Err(AppError::Forbidden(format!(
                "API key {} has scope {}; re-signing dead letters needs admin",
                caller.key_id, caller.scope
            )));
        }
        let report = signet_runtime::resign_and_replay(
            state.store().as_ref(),
            ring,
            selector,
            &actor,
            state.now_ms(),
        )
        .await
        .map_err(runtime_error)?;
        tracing::info!(
            resigned = report.resigned.len(),
            refused = report.refused.len(),
            %actor,
            "dead letters re-signed and replayed"
        );
        let ids: Vec<String> = report.resigned.iter().map(|r| r.id.clone()).collect();
        return Ok(DeadActionResponse {
            resigned: Some(
                report
                    .resigned
                    .into_iter()
                    .map(|r| ResignedView {
                        id: r.id,
                        from_key_id: r.from_key_id,
                        to_key_id: r.to_key_id,
                    })
                    .collect(),
            ),
            refused: Some(
                report
                    .refused
                    .into_iter()
                    .map(|r| RefusedView {
                        id: r.id,
                        reason: r.reason,
                    })
                    .collect(),
            ),
            ..DeadActionResponse::of(ids)
        });
    }
    let ids = state
        .store()
        .replay_dead(selector.clone(), &actor, state.now_ms())
        .await?;
    let warnings = signet_runtime::replay_warnings(state.store().as_ref(), ring, &ids)
        .await
        .map_err(runtime_error)?;
    tracing::info!(count = ids.len(), warnings = warnings.len(), %actor, "dead letters replayed");
    let answer = DeadActionResponse {
        warnings,
        ..DeadActionResponse::of(ids)
    };
    answer.skipping(state, &selector).await
}

/// Delete dead letters for good.
#[utoipa::path(
    post, path = "/v1/dead-letters/purge", tag = "dead-letters",
    request_body = DeadSelectorInput,
    responses((status = 200, body = DeadActionResponse), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn purge(
    State(state): State<AppState>,
    JsonBody(input): JsonBody<DeadSelectorInput>,
) -> AppResult<Json<DeadActionResponse>> {
    purge_selected(&state, selector(input)?).await.map(Json)
}

/// Deletes the dead letters `selector` picks: what
/// `POST /v1/dead-letters/purge` does, and the console's purge too.
pub(crate) async fn purge_selected(
    state: &AppState,
    selector: DeadSelector,
) -> AppResult<DeadActionResponse> {
    let ids = state.store().purge_dead(selector.clone()).await?;
    tracing::info!(count = ids.len(), "dead letters purged");
    DeadActionResponse::of(ids).skipping(state, &selector).await
}

/// This file's routes, declared once: one `routes!` a path, its methods and
/// path taken from the handlers' `#[utoipa::path]`, which also document them.
pub(crate) fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list))
        .routes(utoipa_axum::routes!(show))
        .routes(utoipa_axum::routes!(replay))
        .routes(utoipa_axum::routes!(purge))
}
