//! Schedules: every schedule with its next five due times, the last one
//! that fired, and pause / resume; create and edit, with the cron
//! expression checked as it is typed ([`check`], which the console's
//! script calls).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use signet_runtime::schedules::{
    parse_catch_up, CronSchedule, NewSchedule, SchedulePatch, SchedulePayload, TaskTemplate,
    DEFAULT_TIMEZONE, UPCOMING_SHOWN,
};
use signet_store::{FieldError, ScheduleRecord};

use super::page::{pretty, render, Chrome, UiError};
use super::viewer::CsrfForm;
use super::viewer::{UiForm, UiQuery, Viewer};
use crate::error::AppError;
use crate::routes::messages::runtime_error;
use crate::routes::schedules::{all, pause_or_resume, service, ScheduleView};
use crate::state::AppState;
use crate::views::rfc3339;

#[derive(Template)]
#[template(path = "schedules.html")]
struct SchedulesPage {
    chrome: Option<Chrome>,
    schedules: Vec<ScheduleView>,
    notice: Option<String>,
}

/// What the list says after an action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    paused: Option<String>,
    resumed: Option<String>,
    created: Option<String>,
    saved: Option<String>,
}

/// `GET /ui/schedules`.
pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    UiQuery(q): UiQuery<ListQuery>,
) -> Result<Response, UiError> {
    let notice = match (q.paused, q.resumed, q.created, q.saved) {
        (Some(name), ..) => Some(format!("Paused {name}: it fires nothing until resumed.")),
        (_, Some(name), ..) => Some(format!("Resumed {name} from its next due time.")),
        (_, _, Some(name), _) => Some(format!("Created {name}.")),
        (.., Some(name)) => Some(format!("Saved {name}.")),
        _ => None,
    };
    Ok(render(&SchedulesPage {
        chrome: Some(viewer.chrome("schedules")),
        schedules: all(&state, viewer.caller.scope).await?,
        notice,
    }))
}

async fn act(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    form: &CsrfForm,
    paused: bool,
) -> Result<Response, UiError> {
    viewer.may_act(form.csrf.as_deref())?;
    let schedule = pause_or_resume(state, id, paused, viewer.caller.scope).await?;
    let done = if paused { "paused" } else { "resumed" };
    let query = super::viewer::next_link(&[(done, Some(&schedule.name))]);
    Ok(Redirect::to(&format!("/ui/schedules?{query}")).into_response())
}

/// `POST /ui/schedules/{id}/pause`: the API's pause.
pub(crate) async fn pause(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    UiForm(form): UiForm<CsrfForm>,
) -> Result<Response, UiError> {
    act(&state, &viewer, &id, &form, true).await
}

/// `POST /ui/schedules/{id}/resume`: the API's resume.
pub(crate) async fn resume(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    UiForm(form): UiForm<CsrfForm>,
) -> Result<Response, UiError> {
    act(&state, &viewer, &id, &form, false).await
}

/// What [`check`] is asked: an expression and its zone, as typed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckQuery {
    cron: Option<String>,
    timezone: Option<String>,
}

/// What [`check`] answers: the next due times (RFC 3339 UTC), or what is
/// wrong with which field, in the words the API would use.
#[derive(Debug, Serialize)]
pub(crate) struct CheckAnswer {
    ok: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    next: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// The first [`UPCOMING_SHOWN`] due times of `cron` in `timezone` after
/// `now_ms`, or the field error the API's create would refuse it with:
/// the same parser, the same "never comes due" check.
fn due_times(cron: &str, timezone: &str, now_ms: i64) -> Result<Vec<i64>, FieldError> {
    let schedule = CronSchedule::parse(cron, timezone)?;
    let first = schedule.check_fires_after(now_ms)?;
    let mut times = vec![first];
    times.extend(schedule.upcoming(first, UPCOMING_SHOWN - 1));
    Ok(times)
}

/// `GET /ui/schedules/check?cron=…&timezone=…`: checks an expression as it
/// is typed (the form's script asks, debounced). Any signed-in key may ask;
/// it changes nothing. The work is bounded but CPU work, so it runs on the
/// blocking pool.
pub(crate) async fn check(
    State(state): State<AppState>,
    _viewer: Viewer,
    UiQuery(q): UiQuery<CheckQuery>,
) -> Result<Json<CheckAnswer>, UiError> {
    let cron = q.cron.unwrap_or_default();
    let timezone = given_zone(q.timezone);
    let now = state.now_ms();
    let answer = tokio::task::spawn_blocking(move || due_times(&cron, &timezone, now))
        .await
        .map_err(|e| UiError::from(AppError::Internal(Box::new(e))))?;
    Ok(Json(match answer {
        Ok(times) => CheckAnswer {
            ok: true,
            next: times.into_iter().map(rfc3339).collect(),
            field: None,
            message: None,
        },
        Err(e) => CheckAnswer {
            ok: false,
            next: Vec::new(),
            field: Some(e.field().to_owned()),
            message: Some(e.to_string()),
        },
    }))
}

/// A blank zone is the default one, as on the API.
fn given_zone(timezone: Option<String>) -> String {
    super::viewer::given(timezone).unwrap_or_else(|| DEFAULT_TIMEZONE.to_owned())
}

/// The create and edit form, as posted (and as shown again with an error).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    cron: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    catch_up: String,
    /// `task` or `message`.
    #[serde(default)]
    kind: String,
    /// The task (the body of `POST /v1/tasks`) or the message (of
    /// `POST /v1/messages`), JSON.
    #[serde(default)]
    payload: String,
}

#[derive(Template)]
#[template(path = "schedule_form.html")]
struct FormPage {
    chrome: Option<Chrome>,
    /// `None` for a new schedule.
    id: Option<String>,
    form: ScheduleForm,
    error: Option<String>,
}

/// The payload of a form: its kind and its JSON, read as the API reads a
/// `task` or a `message`.
fn payload_of(form: &ScheduleForm) -> Result<SchedulePayload, FieldError> {
    let field = if form.kind == "message" {
        "message"
    } else {
        "task"
    };
    let raw: Box<RawValue> = serde_json::from_str(form.payload.trim())
        .map_err(|e| FieldError::new(field, format!("is not JSON ({e}); write a JSON object")))?;
    if field == "message" {
        return SchedulePayload::from_parts(None, Some(raw));
    }
    let task: TaskTemplate = serde_json::from_str(raw.get())
        .map_err(|e| FieldError::new("task", format!("is not a task: {e}")))?;
    SchedulePayload::from_parts(Some(task), None)
}

fn form_page(
    viewer: &Viewer,
    id: Option<String>,
    form: ScheduleForm,
    error: Option<String>,
) -> Response {
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut r = render(&FormPage {
        chrome: Some(viewer.chrome("schedules")),
        id,
        form,
        error,
    });
    *r.status_mut() = status;
    r
}

/// `GET /ui/schedules/new`.
pub(crate) async fn new_form(viewer: Viewer) -> Result<Response, UiError> {
    viewer.admin_only()?;
    let form = ScheduleForm {
        timezone: DEFAULT_TIMEZONE.to_owned(),
        catch_up: "skip".to_owned(),
        kind: "task".to_owned(),
        payload: "{\"queue\": \"default\", \"task\": \"report.nightly\", \"args\": {}}".to_owned(),
        ..ScheduleForm::default()
    };
    Ok(form_page(&viewer, None, form, None))
}

/// `POST /ui/schedules/new`: the API's create (the same service); a refused
/// form is shown again with what was wrong.
pub(crate) async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    UiForm(form): UiForm<ScheduleForm>,
) -> Result<Response, UiError> {
    viewer.may_act(form.csrf.as_deref())?;
    let built = payload_of(&form).and_then(|payload| {
        Ok(NewSchedule {
            name: form.name.trim().to_owned(),
            cron: form.cron.clone(),
            timezone: Some(given_zone(Some(form.timezone.clone()))),
            payload,
            catch_up: Some(parse_catch_up(&form.catch_up)?),
            paused: false,
        })
    });
    let created = match built {
        Ok(new) => service(&state).create(new).await.map_err(runtime_error),
        Err(e) => Err(AppError::from(e)),
    };
    match created {
        Ok(record) => {
            let query = super::viewer::next_link(&[("created", Some(&record.name))]);
            Ok(Redirect::to(&format!("/ui/schedules?{query}")).into_response())
        }
        Err(e) => refused(&viewer, None, form, e),
    }
}

/// The form again with the API's refusal, or the error page for what a
/// form cannot fix (the store failing).
fn refused(
    viewer: &Viewer,
    id: Option<String>,
    form: ScheduleForm,
    e: AppError,
) -> Result<Response, UiError> {
    match e {
        AppError::Invalid { .. }
        | AppError::SignatureInvalid { .. }
        | AppError::Conflict(_)
        | AppError::BadRequest { .. }
        | AppError::NotFound(_) => Ok(form_page(viewer, id, form, Some(e.to_string()))),
        other => Err(UiError::from(other)),
    }
}

/// The stored schedule as its form shows it.
fn form_of(record: &ScheduleRecord) -> ScheduleForm {
    let (task, message) = SchedulePayload::stored_parts(&record.payload);
    let (kind, raw) = match (task, message) {
        (_, Some(m)) => ("message", m),
        (Some(t), None) => ("task", t),
        (None, None) => (
            "task",
            RawValue::from_string("{}".into()).unwrap_or_default(),
        ),
    };
    let payload = pretty(raw.get());
    ScheduleForm {
        csrf: None,
        name: record.name.clone(),
        cron: record.cron.clone(),
        timezone: record.timezone.clone(),
        catch_up: record.catch_up.as_str().to_owned(),
        kind: kind.to_owned(),
        payload,
    }
}

/// `GET /ui/schedules/{id}/edit`.
pub(crate) async fn edit_form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    viewer.admin_only()?;
    let record = service(&state).show(&id).await.map_err(runtime_error)?;
    Ok(form_page(
        &viewer,
        Some(record.id.clone()),
        form_of(&record),
        None,
    ))
}

/// `POST /ui/schedules/{id}/edit`: the API's update (the same service). The
/// cron expression and zone are sent only when changed, so saving a name
/// keeps the next due time where it was.
pub(crate) async fn update(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    UiForm(form): UiForm<ScheduleForm>,
) -> Result<Response, UiError> {
    viewer.may_act(form.csrf.as_deref())?;
    let service = service(&state);
    let record = service.show(&id).await.map_err(runtime_error)?;
    let timezone = given_zone(Some(form.timezone.clone()));
    let built = payload_of(&form).and_then(|payload| {
        Ok(SchedulePatch {
            name: Some(form.name.trim().to_owned()).filter(|n| *n != record.name),
            cron: Some(form.cron.clone()).filter(|c| c.trim() != record.cron),
            timezone: Some(timezone).filter(|t| *t != record.timezone),
            payload: Some(payload),
            catch_up: Some(parse_catch_up(&form.catch_up)?),
        })
    });
    let saved = match built {
        Ok(patch) => service
            .update(&record.id, patch)
            .await
            .map_err(runtime_error),
        Err(e) => Err(AppError::from(e)),
    };
    match saved {
        Ok(record) => {
            let query = super::viewer::next_link(&[("saved", Some(&record.name))]);
            Ok(Redirect::to(&format!("/ui/schedules?{query}")).into_response())
        }
        Err(e) => refused(&viewer, Some(record.id), form, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_are_the_next_five_or_the_apis_refusal() {
        // 2023-11-14T22:13:20Z.
        let now = 1_700_000_000_000;
        let times = due_times("0 3 * * *", "UTC", now).unwrap();
        assert_eq!(times.len(), UPCOMING_SHOWN);
        assert_eq!(rfc3339(times[0]), "2023-11-15T03:00:00.000Z");
        assert!(times.windows(2).all(|w| w[1] - w[0] == 86_400_000));
        let e = due_times("0 3 * *", "UTC", now).unwrap_err();
        assert_eq!(e.field(), "cron");
        assert_eq!(
            due_times("0 3 * * *", "Mars/Olympus", now)
                .unwrap_err()
                .field(),
            "timezone"
        );
        let never = due_times("0 0 30 2 *", "UTC", now).unwrap_err();
        assert!(never.to_string().contains("never comes due"), "{never}");
    }

    #[test]
    fn a_forms_payload_is_read_as_the_api_reads_it() {
        let mut form = ScheduleForm {
            kind: "task".into(),
            payload: r#"{"queue":"q","task":"t","args":{"a":1}}"#.into(),
            ..ScheduleForm::default()
        };
        assert_eq!(payload_of(&form).unwrap().kind(), "task");
        form.payload = "{not json".into();
        assert_eq!(payload_of(&form).unwrap_err().field(), "task");
        form.payload = r#"{"queue":"q","task":"t","surprise":1}"#.into();
        assert!(payload_of(&form)
            .unwrap_err()
            .to_string()
            .contains("surprise"));
        form.kind = "message".into();
        form.payload = r#"{"url":"https://example.com/"}"#.into();
        assert_eq!(payload_of(&form).unwrap().kind(), "message");
    }
}
