//! Tasks: the list (by queue, state and task name, cursor-paged; the name
//! by a bounded scan, see [`super::scan`]), a task's page
//! (envelope, signature and whether it verifies, history, result or
//! error), and cancel.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use signet_store::{TaskRow, TaskState};

use super::page::{pretty, render, Chrome, Time, UiError};
use super::scan::listing;
use super::viewer::CsrfForm;
use super::viewer::{given, next_link, UiForm, UiQuery, Viewer};
use crate::routes::tasks::{cancel_as, list_filter, parse_task_id, retry_as, ListQuery};
use crate::state::AppState;
use crate::views::{HistoryEventView, TaskView};

/// The filters of the task list, as the URL carries them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TasksQuery {
    queue: Option<String>,
    state: Option<String>,
    /// The task (handler) name.
    task: Option<String>,
    include_internal: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// One row of a task list.
pub(crate) struct TaskRowView {
    pub(crate) id: String,
    pub(crate) queue: String,
    pub(crate) task: String,
    pub(crate) state: String,
    pub(crate) attempts: String,
    pub(crate) reason: String,
    pub(crate) when: Time,
}

impl TaskRowView {
    pub(crate) fn of(v: &TaskView) -> Self {
        Self {
            id: v.id.clone(),
            queue: v.queue.clone(),
            task: v.task.clone(),
            state: v.state.clone(),
            attempts: format!("{}/{}", v.attempt, v.max_attempts),
            reason: v
                .dead_reason
                .clone()
                .or_else(|| v.last_error.clone())
                .unwrap_or_default(),
            when: Time::text(v.finished_at.as_deref().unwrap_or(&v.updated_at)),
        }
    }
}

#[derive(Template)]
#[template(path = "tasks.html")]
struct TasksPage {
    chrome: Option<Chrome>,
    states: Vec<&'static str>,
    queue: String,
    state: String,
    task: String,
    include_internal: bool,
    rows: Vec<TaskRowView>,
    next: Option<String>,
    /// With a name filter: rows looked at, when the scan's budget ran out
    /// before the page filled.
    scanned: Option<usize>,
    filtered: bool,
}

/// `GET /ui/tasks`.
pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    UiQuery(q): UiQuery<TasksQuery>,
) -> Result<Response, UiError> {
    let queue = given(q.queue);
    let task_state = given(q.state);
    let include_internal = given(q.include_internal);
    let name = given(q.task);
    if let Some(n) = &name {
        signet_store::rules::task_name(n).map_err(crate::error::AppError::from)?;
    }
    let filter = list_filter(ListQuery {
        queue: queue.clone(),
        state: task_state.clone(),
        include_internal: include_internal.clone(),
        limit: given(q.limit),
        cursor: given(q.cursor),
    })?;
    let found = listing(
        state.store().as_ref(),
        filter,
        name.as_deref()
            .map(|name| move |row: &TaskRow| row.envelope.name == name),
    )
    .await?;
    let scanned = found.budget_spent.then_some(found.scanned);
    let (items, next_cursor) = (found.items, found.next_cursor);
    let rows = items
        .iter()
        .map(|row| TaskRowView::of(&TaskView::shown_to(row, viewer.caller.scope)))
        .collect();
    let next = next_cursor.map(|c| {
        next_link(&[
            ("queue", queue.as_deref()),
            ("state", task_state.as_deref()),
            ("task", name.as_deref()),
            ("include_internal", include_internal.as_deref()),
            ("cursor", Some(&c)),
        ])
    });
    Ok(render(&TasksPage {
        chrome: Some(viewer.chrome("tasks")),
        states: TaskState::ALL.into_iter().map(TaskState::as_str).collect(),
        filtered: queue.is_some() || task_state.is_some() || name.is_some(),
        queue: queue.unwrap_or_default(),
        state: task_state.unwrap_or_default(),
        task: name.unwrap_or_default(),
        include_internal: include_internal.as_deref() == Some("true"),
        rows,
        next,
        scanned,
    }))
}

/// The signature of a task, and whether the server's key ring verifies it.
pub(crate) struct SignatureCheck {
    pub(crate) alg: String,
    pub(crate) key_id: String,
    pub(crate) verified: bool,
    pub(crate) why: String,
}

#[derive(Template)]
#[template(path = "task.html")]
struct TaskPage {
    chrome: Option<Chrome>,
    task: TaskView,
    args: String,
    result: Option<String>,
    signature: Option<SignatureCheck>,
    history: Vec<HistoryEventView>,
    created: Time,
    run_at: Time,
    cancellable: bool,
    retryable: bool,
    replayable: bool,
    notice: Option<String>,
}

/// What the task page shows after an action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShowQuery {
    done: Option<String>,
}

/// `GET /ui/tasks/{id}`.
pub(crate) async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    UiQuery(q): UiQuery<ShowQuery>,
) -> Result<Response, UiError> {
    let id = parse_task_id(&id)?;
    let store = state.store();
    let Some(row) = store
        .task(&id)
        .await
        .map_err(crate::error::AppError::from)?
    else {
        return Err(UiError::new(
            StatusCode::NOT_FOUND,
            format!("Task {id} was not found: it may have been purged or pruned. Look for it in the task list."),
        ));
    };
    let history = store
        .history(&id)
        .await
        .map_err(crate::error::AppError::from)?;
    let mut view = TaskView::with_history(&row, &history, viewer.caller.scope);
    let signature = row.signature.as_ref().map(|sig| {
        let outcome = row
            .envelope
            .verify(sig.alg, &sig.key_id, &sig.sig, &state.signing().ring);
        SignatureCheck {
            alg: sig.alg.as_str().to_owned(),
            key_id: sig.key_id.clone(),
            verified: outcome.is_ok(),
            why: outcome.err().map(|e| e.to_string()).unwrap_or_default(),
        }
    });
    let args = match (&view.args, &view.args_base64) {
        (Some(a), _) => pretty(a.get()),
        (None, Some(b)) => format!("(not JSON; base64) {b}"),
        (None, None) => String::new(),
    };
    let notice = match q.done.as_deref() {
        Some("cancelled") => Some("Cancelled.".to_owned()),
        Some("replayed") => Some("Replayed: it is back in its queue.".to_owned()),
        Some("retried") => Some("Retried now: it is available to workers at once.".to_owned()),
        _ => None,
    };
    Ok(render(&TaskPage {
        chrome: Some(viewer.chrome("tasks")),
        args,
        result: view.result.as_ref().map(|r| pretty(r.get())),
        signature,
        history: view.history.take().unwrap_or_default(),
        created: Time::text(&view.created_at),
        run_at: Time::text(&view.run_at),
        cancellable: matches!(
            row.state,
            TaskState::Scheduled | TaskState::Available | TaskState::Retryable
        ),
        retryable: row.state == TaskState::Retryable,
        replayable: row.state == TaskState::Dead,
        notice,
        task: view,
    }))
}

/// `POST /ui/tasks/{id}/cancel`: the API's cancel.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    UiForm(form): UiForm<CsrfForm>,
) -> Result<Response, UiError> {
    viewer.may_act(form.csrf.as_deref())?;
    let task = cancel_as(&state, &viewer.caller, &id).await?;
    Ok(Redirect::to(&format!("/ui/tasks/{}?done=cancelled", task.id)).into_response())
}

/// `POST /ui/tasks/{id}/retry`: the API's retry now (a `retryable` task
/// becomes available at once; recorded in its history).
pub(crate) async fn retry(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    UiForm(form): UiForm<CsrfForm>,
) -> Result<Response, UiError> {
    viewer.may_act(form.csrf.as_deref())?;
    let task = retry_as(&state, &viewer.caller, &id).await?;
    Ok(Redirect::to(&format!("/ui/tasks/{}?done=retried", task.id)).into_response())
}
