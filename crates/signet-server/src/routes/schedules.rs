//! `/v1/schedules`: cron schedules that fire a task or a message.
//!
//! Each handler parses the request, calls signet-runtime's
//! [`ScheduleService`] (which `signet schedules` calls too, so both refuse
//! the same things with the same words) and shows the result. An invalid
//! cron expression or time zone is a `422` naming the field (`cron`,
//! `timezone`) and saying why.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use signet_runtime::schedules::{
    parse_catch_up, NewSchedule, SchedulePatch, SchedulePayload, ScheduleService, TaskTemplate,
};
use signet_store::{ScheduleId, ScheduleRecord};

use crate::auth::{Caller, Scope};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::extract::JsonBody;
use crate::routes::messages::runtime_error;
use crate::state::AppState;
use crate::views::{redact_urls, rfc3339, MessageRequestView};

/// `POST /v1/schedules`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateScheduleRequest {
    /// Unique name: 1–128 of `A-Z a-z 0-9 . _ : -`.
    pub name: String,
    /// Cron expression: 5 fields (`minute hour day-of-month month
    /// day-of-week`) or 6 (a `second` field first), or `@hourly`, `@daily`,
    /// `@weekly`, `@monthly`, `@yearly`.
    pub cron: String,
    /// IANA time zone the expression is read in (default `UTC`).
    pub timezone: Option<String>,
    /// The task to fire: the body of `POST /v1/tasks` without `not_before`,
    /// `expires_at`, `id`, `created_at` and `signature`.
    #[schema(value_type = Option<Object>)]
    pub task: Option<TaskTemplate>,
    /// The message to fire: the body of `POST /v1/messages`.
    #[schema(value_type = Option<Object>)]
    pub message: Option<Box<RawValue>>,
    /// Due times missed while no scheduler ran: `skip` (default) fires
    /// nothing for them, `once` fires one run for all of them.
    pub catch_up: Option<String>,
    /// Create it paused (default `false`).
    pub paused: Option<bool>,
}

/// `PATCH /v1/schedules/{id}`: the fields to change. Giving `task`
/// replaces a message payload and the other way round.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateScheduleRequest {
    /// New name.
    pub name: Option<String>,
    /// New cron expression (the next due time is computed again from now).
    pub cron: Option<String>,
    /// New time zone (the next due time is computed again from now).
    pub timezone: Option<String>,
    /// New task payload.
    #[schema(value_type = Option<Object>)]
    pub task: Option<TaskTemplate>,
    /// New message payload.
    #[schema(value_type = Option<Object>)]
    pub message: Option<Box<RawValue>>,
    /// `skip` or `once`.
    pub catch_up: Option<String>,
}

/// A schedule, as the API shows it. Times are RFC 3339 (UTC).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ScheduleView {
    /// `sch_…`.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The cron expression.
    pub cron: String,
    /// The IANA time zone.
    pub timezone: String,
    /// `task` or `message`.
    pub kind: String,
    /// The task fired, when `kind` is `task`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub task: Option<Box<RawValue>>,
    /// The message fired, when `kind` is `message`. Its `headers` and
    /// `body`, and the values of its URL's query, are shown to admin keys
    /// only (they carry the receiver's credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub message: Option<Box<RawValue>>,
    /// `skip` or `once`.
    pub catch_up: String,
    /// A paused schedule fires nothing.
    pub paused: bool,
    /// The next due time (`null` when the expression has no more).
    pub next_fire_at: Option<String>,
    /// The next due time, unix ms.
    pub next_fire_at_ms: Option<i64>,
    /// The last due time that fired.
    pub last_fired_at: Option<String>,
    /// The next due times, up to 5 (empty while paused).
    pub upcoming: Vec<String>,
    /// The message names a target that does not exist (deleted, or renamed
    /// away from the name given): each due time is given up, nothing is
    /// sent. Point it at a target (PATCH `message`) or delete it.
    pub target_missing: bool,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
}

/// `GET /v1/schedules`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ScheduleList {
    /// Every schedule, by name.
    pub items: Vec<ScheduleView>,
}

impl ScheduleView {
    /// `s` as a key of `scope` may see it: a message's payload by
    /// [`MessageRequestView`]'s rule.
    fn shown_to(s: &ScheduleRecord, target_missing: bool, scope: Scope) -> Self {
        let (task, message) = SchedulePayload::stored_parts(&s.payload);
        let message = message.map(|m| shown_message(m, scope));
        let task = task.map(|t| shown_task(t, scope));
        let kind = if task.is_some() { "task" } else { "message" };
        Self {
            id: s.id.clone(),
            name: s.name.clone(),
            cron: s.cron.clone(),
            timezone: s.timezone.clone(),
            kind: kind.to_owned(),
            task,
            message,
            catch_up: s.catch_up.as_str().to_owned(),
            paused: s.paused,
            next_fire_at: s.next_fire_at_ms.map(rfc3339),
            next_fire_at_ms: s.next_fire_at_ms,
            last_fired_at: s.last_fired_at_ms.map(rfc3339),
            upcoming: ScheduleService::upcoming(s)
                .into_iter()
                .map(rfc3339)
                .collect(),
            target_missing,
            created_at: rfc3339(s.created_at_ms),
            updated_at: rfc3339(s.updated_at_ms),
        }
    }
}

/// Builds views, each with whether its target is missing, then off the
/// async runtime: each computes its next due times (bounded CPU work, but
/// CPU work all the same).
async fn views(
    state: &AppState,
    records: Vec<ScheduleRecord>,
    scope: Scope,
) -> AppResult<Vec<ScheduleView>> {
    let service = service(state);
    let mut missing = Vec::with_capacity(records.len());
    for record in &records {
        missing.push(
            service
                .target_missing(record)
                .await
                .map_err(runtime_error)?,
        );
    }
    tokio::task::spawn_blocking(move || {
        records
            .iter()
            .zip(missing)
            .map(|(s, missing)| ScheduleView::shown_to(s, missing, scope))
            .collect()
    })
    .await
    .map_err(|e| AppError::Internal(Box::new(e)))
}

async fn view(state: &AppState, record: ScheduleRecord, scope: Scope) -> AppResult<ScheduleView> {
    let mut one = views(state, vec![record], scope).await?;
    one.pop()
        .ok_or_else(|| AppError::Internal("a schedule view went missing".into()))
}

/// A schedule's stored task as a key of `scope` may see it: its callback
/// URL by [`shown_url`](crate::views::shown_url)'s rule.
fn shown_task(task: Box<RawValue>, scope: Scope) -> Box<RawValue> {
    if scope.sees_message_payloads() {
        return task;
    }
    let mut parsed = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(task.get())
        .unwrap_or_default();
    redact_urls(&mut parsed, scope);
    serde_json::value::to_raw_value(&parsed).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// A schedule's stored message as a key of `scope` may see it.
fn shown_message(message: Box<RawValue>, scope: Scope) -> Box<RawValue> {
    if scope.sees_message_payloads() {
        return message;
    }
    let mut parsed =
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(message.get())
            .unwrap_or_default();
    MessageRequestView::redact_json(&mut parsed, scope);
    // Serialising a map cannot fail; if it did, nothing is shown rather
    // than the payload.
    serde_json::value::to_raw_value(&parsed).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// The schedule service the routes and the console call.
pub(crate) fn service(state: &AppState) -> ScheduleService {
    ScheduleService::with_clock(std::sync::Arc::clone(state.store()), state.clock())
        .ssrf_policy(state.delivery().ssrf.clone())
}

/// The path's id, or a `404` saying what ids look like.
fn parse_schedule_id(id: &str) -> AppResult<ScheduleId> {
    ScheduleId::parse(id).map_err(|_| {
        AppError::NotFound(format!(
            "schedule {id:?} not found (schedule ids look like sch_…)"
        ))
    })
}

/// The `task` or `message` of a request, when either is given.
fn payload(
    task: Option<TaskTemplate>,
    message: Option<Box<RawValue>>,
) -> AppResult<Option<SchedulePayload>> {
    if task.is_none() && message.is_none() {
        return Ok(None);
    }
    Ok(Some(SchedulePayload::from_parts(task, message)?))
}

fn catch_up(value: Option<&str>) -> AppResult<Option<signet_store::CatchUp>> {
    Ok(value.map(parse_catch_up).transpose()?)
}

/// Create a schedule.
#[utoipa::path(
    post, path = "/v1/schedules", tag = "schedules",
    request_body = CreateScheduleRequest,
    responses(
        (status = 201, description = "Created", body = ScheduleView),
        (status = 400, description = "Malformed JSON or unknown field", body = ErrorBody),
        (status = 409, description = "Name already used", body = ErrorBody),
        (status = 422, description = "Invalid cron, time zone, task or message; the error names the field", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateScheduleRequest>,
) -> AppResult<(StatusCode, Json<ScheduleView>)> {
    let new = NewSchedule {
        name: req.name,
        cron: req.cron,
        timezone: req.timezone,
        payload: SchedulePayload::from_parts(req.task, req.message)?,
        catch_up: catch_up(req.catch_up.as_deref())?,
        paused: req.paused.unwrap_or(false),
    };
    let record = service(&state).create(new).await.map_err(runtime_error)?;
    Ok((
        StatusCode::CREATED,
        Json(view(&state, record, caller.scope).await?),
    ))
}

/// List schedules.
#[utoipa::path(
    get, path = "/v1/schedules", tag = "schedules",
    responses((status = 200, body = ScheduleList)),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<Json<ScheduleList>> {
    Ok(Json(ScheduleList {
        items: all(&state, caller.scope).await?,
    }))
}

/// Every schedule, by name, as a key of `scope` may see it (the API's list
/// and the console's).
pub(crate) async fn all(state: &AppState, scope: Scope) -> AppResult<Vec<ScheduleView>> {
    let items = service(state).list().await.map_err(runtime_error)?;
    views(state, items, scope).await
}

/// Show a schedule with its next 5 due times.
#[utoipa::path(
    get, path = "/v1/schedules/{id}", tag = "schedules",
    params(("id" = String, Path, description = "Schedule id")),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<ScheduleView>> {
    let id = parse_schedule_id(&id)?;
    let record = service(&state)
        .show(id.as_str())
        .await
        .map_err(runtime_error)?;
    Ok(Json(view(&state, record, caller.scope).await?))
}

/// Change a schedule.
#[utoipa::path(
    patch, path = "/v1/schedules/{id}", tag = "schedules",
    params(("id" = String, Path, description = "Schedule id")),
    request_body = UpdateScheduleRequest,
    responses(
        (status = 200, body = ScheduleView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Name already used", body = ErrorBody),
        (status = 422, description = "Invalid value; the error names the field", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<UpdateScheduleRequest>,
) -> AppResult<Json<ScheduleView>> {
    let id = parse_schedule_id(&id)?;
    let patch = SchedulePatch {
        name: patch.name,
        cron: patch.cron,
        timezone: patch.timezone,
        payload: payload(patch.task, patch.message)?,
        catch_up: catch_up(patch.catch_up.as_deref())?,
    };
    let record = service(&state)
        .update(id.as_str(), patch)
        .await
        .map_err(runtime_error)?;
    Ok(Json(view(&state, record, caller.scope).await?))
}

/// Delete a schedule. Runs it already fired stay.
#[utoipa::path(
    delete, path = "/v1/schedules/{id}", tag = "schedules",
    params(("id" = String, Path, description = "Schedule id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let id = parse_schedule_id(&id)?;
    service(&state)
        .delete(id.as_str())
        .await
        .map_err(runtime_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pause a schedule: it fires nothing until resumed.
#[utoipa::path(
    post, path = "/v1/schedules/{id}/pause", tag = "schedules",
    params(("id" = String, Path, description = "Schedule id")),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<ScheduleView>> {
    pause_or_resume(&state, &id, true, caller.scope)
        .await
        .map(Json)
}

/// Resume a paused schedule from its next due time after now.
#[utoipa::path(
    post, path = "/v1/schedules/{id}/resume", tag = "schedules",
    params(("id" = String, Path, description = "Schedule id")),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<Json<ScheduleView>> {
    pause_or_resume(&state, &id, false, caller.scope)
        .await
        .map(Json)
}

/// Pauses (or resumes) schedule `id`: what the pause and resume routes
/// do, and the console's buttons too.
pub(crate) async fn pause_or_resume(
    state: &AppState,
    id: &str,
    paused: bool,
    scope: Scope,
) -> AppResult<ScheduleView> {
    let id = parse_schedule_id(id)?;
    let service = service(state);
    let (record, _changed) = if paused {
        service.pause(id.as_str()).await
    } else {
        service.resume(id.as_str()).await
    }
    .map_err(runtime_error)?;
    view(state, record, scope).await
}

/// This file's routes, declared once: one `routes!` a path, its methods and
/// path taken from the handlers' `#[utoipa::path]`, which also document them.
pub(crate) fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(create, list))
        .routes(utoipa_axum::routes!(show, update, delete))
        .routes(utoipa_axum::routes!(pause))
        .routes(utoipa_axum::routes!(resume))
}
