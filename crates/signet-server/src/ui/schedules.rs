//! Schedules: every schedule with its next five due times, the last one
//! that fired, and pause / resume.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::page::{render, Chrome, UiError};
use super::viewer::CsrfForm;
use super::viewer::{UiForm, UiQuery, Viewer};
use crate::routes::schedules::{all, pause_or_resume, ScheduleView};
use crate::state::AppState;

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
}

/// `GET /ui/schedules`.
pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    UiQuery(q): UiQuery<ListQuery>,
) -> Result<Response, UiError> {
    let notice = match (q.paused, q.resumed) {
        (Some(name), _) => Some(format!("Paused {name}: it fires nothing until resumed.")),
        (_, Some(name)) => Some(format!("Resumed {name} from its next due time.")),
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
