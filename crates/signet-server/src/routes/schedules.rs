//! `/v1/schedules`: cron schedules that fire a task or a message.
//!
//! Validation lives in [`build_schedule`] and [`apply_patch`], shared with
//! the `signet schedules` CLI so both refuse the same things with the same
//! words. An invalid cron expression or time zone is a `422` naming the
//! field (`cron`, `timezone`) and saying why.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use signet_runtime::scheduler::{
    self, validate_schedule_name, CronSchedule, SchedulePayload, TaskTemplate, DEFAULT_TIMEZONE,
    UPCOMING_SHOWN,
};
use signet_store::{CatchUp, ScheduleId, ScheduleRecord, Store, TargetId};

use crate::error::{AppError, AppResult, ErrorBody};
use crate::extract::{parse_json, JsonBody};
use crate::state::AppState;
use crate::views::rfc3339;

/// `POST /v1/schedules`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateScheduleRequest {
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
    pub task: Option<Box<RawValue>>,
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
pub struct UpdateScheduleRequest {
    /// New name.
    pub name: Option<String>,
    /// New cron expression (the next due time is computed again from now).
    pub cron: Option<String>,
    /// New time zone (the next due time is computed again from now).
    pub timezone: Option<String>,
    /// New task payload.
    #[schema(value_type = Option<Object>)]
    pub task: Option<Box<RawValue>>,
    /// New message payload.
    #[schema(value_type = Option<Object>)]
    pub message: Option<Box<RawValue>>,
    /// `skip` or `once`.
    pub catch_up: Option<String>,
}

/// A schedule, as the API shows it. Times are RFC 3339 (UTC).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
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
    /// The message fired, when `kind` is `message`.
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

impl From<&ScheduleRecord> for ScheduleView {
    fn from(s: &ScheduleRecord) -> Self {
        // The stored payload is `{"task":…}` or `{"message":…}`.
        let mut parts: std::collections::BTreeMap<String, Box<RawValue>> =
            serde_json::from_slice(&s.payload).unwrap_or_default();
        let task = parts.remove("task");
        let message = parts.remove("message");
        let kind = if task.is_some() { "task" } else { "message" };
        let upcoming = match (s.paused, s.next_fire_at_ms) {
            (false, Some(next)) => {
                let mut times = vec![next];
                if let Ok(cron) = CronSchedule::parse(&s.cron, &s.timezone) {
                    times.extend(cron.upcoming(next, UPCOMING_SHOWN - 1));
                }
                times.into_iter().map(rfc3339).collect()
            }
            _ => Vec::new(),
        };
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
            upcoming,
            created_at: rfc3339(s.created_at_ms),
            updated_at: rfc3339(s.updated_at_ms),
        }
    }
}

/// Parses a nested JSON object (`task`) strictly, naming fields under
/// `prefix` in errors.
fn parse_nested<T: serde::de::DeserializeOwned>(raw: &RawValue, prefix: &str) -> AppResult<T> {
    parse_json::<T>(raw.get().as_bytes()).map_err(|e| match e {
        AppError::Invalid { field, message } => {
            let field = if field == "body" {
                prefix.to_owned()
            } else {
                format!("{prefix}.{field}")
            };
            AppError::Invalid { field, message }
        }
        AppError::BadRequest { code, message } => AppError::BadRequest {
            code,
            message: format!("{message} in {prefix}"),
        },
        other => other,
    })
}

/// Checks and encodes the payload: exactly one of `task` and `message`.
fn payload(task: Option<&RawValue>, message: Option<&RawValue>) -> AppResult<Vec<u8>> {
    match (task, message) {
        (Some(task), None) => {
            let template: TaskTemplate = parse_nested(task, "task")?;
            template.validate()?;
            Ok(SchedulePayload::task_json(task))
        }
        (None, Some(message)) => {
            scheduler::validate_message(message)?;
            Ok(SchedulePayload::message_json(message))
        }
        (Some(_), Some(_)) => Err(AppError::invalid(
            "task",
            "give \"task\" or \"message\", not both",
        )),
        (None, None) => Err(AppError::invalid(
            "task",
            "give what the schedule fires: \"task\" (a body like POST /v1/tasks) or \"message\" (a body like POST /v1/messages)",
        )),
    }
}

/// A message schedule that names a target: the target must exist when the
/// schedule is written (the scheduler looks it up again at every due time).
/// Shared with the CLI.
pub async fn check_message_target(store: &dyn Store, message: Option<&RawValue>) -> AppResult<()> {
    #[derive(Deserialize)]
    struct Named {
        target: Option<String>,
    }
    let Some(message) = message else {
        return Ok(());
    };
    let Ok(Named { target: Some(name) }) = serde_json::from_str::<Named>(message.get()) else {
        return Ok(());
    };
    let by_id = if TargetId::parse(&name).is_ok() {
        store.target(&name).await?
    } else {
        None
    };
    let found = match by_id {
        Some(t) => Some(t),
        None => store.target_by_name(&name).await?,
    };
    if found.is_none() {
        let shown: String = name.chars().take(64).collect();
        return Err(AppError::invalid(
            "message.target",
            format!("no target {shown:?}; register it first (POST /v1/targets) or name an existing target by id or name"),
        ));
    }
    Ok(())
}

fn catch_up(value: Option<&str>) -> AppResult<Option<CatchUp>> {
    value
        .map(|v| {
            CatchUp::parse(v).map_err(|_| {
                AppError::invalid(
                    "catch_up",
                    format!("{v:?} is not known; use \"skip\" (missed due times fire nothing) or \"once\" (they fire one run)"),
                )
            })
        })
        .transpose()
}

/// Checks a create request and builds the record to store, with its first
/// due time after `now_ms`. Shared with the CLI.
pub fn build_schedule(req: CreateScheduleRequest, now_ms: i64) -> AppResult<ScheduleRecord> {
    validate_schedule_name(&req.name)?;
    let timezone = req.timezone.unwrap_or_else(|| DEFAULT_TIMEZONE.to_owned());
    let cron = CronSchedule::parse(&req.cron, &timezone)?;
    let next = cron.check_fires_after(now_ms)?;
    let payload = payload(req.task.as_deref(), req.message.as_deref())?;
    let record = ScheduleRecord {
        id: ScheduleId::generate().to_string(),
        name: req.name,
        cron: cron.expression().to_owned(),
        timezone,
        payload,
        catch_up: catch_up(req.catch_up.as_deref())?.unwrap_or(CatchUp::Skip),
        paused: req.paused.unwrap_or(false),
        next_fire_at_ms: Some(next),
        last_fired_at_ms: None,
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
    };
    record
        .validate()
        .map_err(|e| AppError::invalid("request", e.to_string()))?;
    Ok(record)
}

/// Applies a patch to a stored schedule. A new cron expression or time zone
/// moves the next due time to the first one after `now_ms`. Shared with
/// the CLI.
pub fn apply_patch(
    mut record: ScheduleRecord,
    patch: UpdateScheduleRequest,
    now_ms: i64,
) -> AppResult<ScheduleRecord> {
    if let Some(name) = patch.name {
        validate_schedule_name(&name)?;
        record.name = name;
    }
    let timing_changed = patch.cron.is_some() || patch.timezone.is_some();
    if let Some(cron) = patch.cron {
        record.cron = cron;
    }
    if let Some(tz) = patch.timezone {
        record.timezone = tz;
    }
    let cron = CronSchedule::parse(&record.cron, &record.timezone)?;
    if timing_changed {
        record.cron = cron.expression().to_owned();
        record.next_fire_at_ms = Some(cron.check_fires_after(now_ms)?);
    }
    if patch.task.is_some() || patch.message.is_some() {
        record.payload = payload(patch.task.as_deref(), patch.message.as_deref())?;
    }
    if let Some(c) = catch_up(patch.catch_up.as_deref())? {
        record.catch_up = c;
    }
    record.updated_at_ms = now_ms;
    record
        .validate()
        .map_err(|e| AppError::invalid("request", e.to_string()))?;
    Ok(record)
}

/// Pauses or resumes. Resuming moves the next due time to the first one
/// after `now_ms`: due times while paused do not fire. Shared with the CLI.
pub fn set_paused(
    mut record: ScheduleRecord,
    paused: bool,
    now_ms: i64,
) -> AppResult<ScheduleRecord> {
    if record.paused == paused {
        return Ok(record);
    }
    if !paused {
        let cron = CronSchedule::parse(&record.cron, &record.timezone)?;
        record.next_fire_at_ms = Some(cron.check_fires_after(now_ms)?);
    }
    record.paused = paused;
    record.updated_at_ms = now_ms;
    Ok(record)
}

fn parse_schedule_id(id: &str) -> AppResult<ScheduleId> {
    ScheduleId::parse(id).map_err(|_| {
        AppError::NotFound(format!(
            "schedule {id:?} not found (schedule ids look like sch_…)"
        ))
    })
}

async fn load(state: &AppState, id: &str) -> AppResult<ScheduleRecord> {
    let id = parse_schedule_id(id)?;
    state
        .store()
        .schedule(id.as_str())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("schedule {id} not found")))
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
    JsonBody(req): JsonBody<CreateScheduleRequest>,
) -> AppResult<(StatusCode, Json<ScheduleView>)> {
    check_message_target(state.store().as_ref(), req.message.as_deref()).await?;
    let record = build_schedule(req, state.now_ms())?;
    state.store().create_schedule(record.clone()).await?;
    tracing::info!(schedule = %record.name, id = %record.id, cron = %record.cron, timezone = %record.timezone, "schedule created");
    Ok((StatusCode::CREATED, Json(ScheduleView::from(&record))))
}

/// List schedules.
#[utoipa::path(
    get, path = "/v1/schedules", tag = "schedules",
    responses((status = 200, body = ScheduleList)),
    security(("bearer" = []))
)]
pub(crate) async fn list(State(state): State<AppState>) -> AppResult<Json<ScheduleList>> {
    let items = state.store().list_schedules().await?;
    Ok(Json(ScheduleList {
        items: items.iter().map(ScheduleView::from).collect(),
    }))
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
    Path(id): Path<String>,
) -> AppResult<Json<ScheduleView>> {
    let record = load(&state, &id).await?;
    Ok(Json(ScheduleView::from(&record)))
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
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<UpdateScheduleRequest>,
) -> AppResult<Json<ScheduleView>> {
    let record = load(&state, &id).await?;
    check_message_target(state.store().as_ref(), patch.message.as_deref()).await?;
    let record = apply_patch(record, patch, state.now_ms())?;
    state.store().update_schedule(record.clone()).await?;
    Ok(Json(ScheduleView::from(&record)))
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
    state.store().delete_schedule(id.as_str()).await?;
    tracing::info!(id = %id, "schedule deleted");
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
    Path(id): Path<String>,
) -> AppResult<Json<ScheduleView>> {
    pause_or_resume(state, id, true).await
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
    Path(id): Path<String>,
) -> AppResult<Json<ScheduleView>> {
    pause_or_resume(state, id, false).await
}

async fn pause_or_resume(
    state: AppState,
    id: String,
    paused: bool,
) -> AppResult<Json<ScheduleView>> {
    let record = load(&state, &id).await?;
    let changed = record.paused != paused;
    let record = set_paused(record, paused, state.now_ms())?;
    if changed {
        state.store().update_schedule(record.clone()).await?;
    }
    Ok(Json(ScheduleView::from(&record)))
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
