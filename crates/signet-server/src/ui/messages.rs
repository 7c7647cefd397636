//! Messages: the list (by state and target, cursor-paged; the target by a
//! bounded scan, see [`super::scan`]) and a message's page with
//! every delivery attempt (status, latency, error, the response's first
//! bytes), with its actions: replay (dead, like any dead letter), retry now
//! (retryable) and resend (delivered).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use signet_store::{TargetId, TaskRow, TaskState};

use super::page::{render, Chrome, Time, UiError};
use super::scan::listing;
use super::viewer::{given, next_link, CsrfForm, UiForm, UiQuery, Viewer};
use crate::error::AppError;
use crate::routes::messages::{
    list_filter, parse_message_id, resend_as, retry_as, shown_to, MessageListQuery, MessageView,
};
use crate::state::AppState;
use signet_runtime::MessageSpec;

/// The filters of the message list, as the URL carries them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessagesQuery {
    state: Option<String>,
    /// A target's name or id.
    target: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

struct MessageRow {
    view: MessageView,
    when: Time,
}

#[derive(Template)]
#[template(path = "messages.html")]
struct MessagesPage {
    chrome: Option<Chrome>,
    states: Vec<&'static str>,
    state: String,
    target: String,
    rows: Vec<MessageRow>,
    next: Option<String>,
    /// With a target filter: rows looked at, when the scan's budget ran
    /// out before the page filled.
    scanned: Option<usize>,
}

/// `GET /ui/messages`.
pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    UiQuery(q): UiQuery<MessagesQuery>,
) -> Result<Response, UiError> {
    let message_state = given(q.state);
    let target = given(q.target);
    let filter = list_filter(MessageListQuery {
        state: message_state.clone(),
        limit: given(q.limit),
        cursor: given(q.cursor),
    })?;
    let target_id = match &target {
        Some(t) => Some(target_id(&state, &viewer, t).await?),
        None => None,
    };
    let found = listing(
        state.store().as_ref(),
        filter,
        target_id.map(|id| {
            move |row: &TaskRow| {
                MessageSpec::from_args(&row.envelope.args)
                    .is_ok_and(|spec| spec.target.as_deref() == Some(id.as_str()))
            }
        }),
    )
    .await?;
    let scanned = found.budget_spent.then_some(found.scanned);
    let (items, next_cursor) = (found.items, found.next_cursor);
    let rows = items
        .iter()
        .map(|row| {
            let view = MessageView::new(row, None, viewer.caller.scope);
            MessageRow {
                when: Time::text(view.finished_at.as_deref().unwrap_or(&view.updated_at)),
                view,
            }
        })
        .collect();
    let next = next_cursor.map(|c| {
        next_link(&[
            ("state", message_state.as_deref()),
            ("target", target.as_deref()),
            ("cursor", Some(&c)),
        ])
    });
    Ok(render(&MessagesPage {
        chrome: Some(viewer.chrome("messages")),
        states: TaskState::ALL.into_iter().map(TaskState::as_str).collect(),
        state: message_state.unwrap_or_default(),
        target: target.unwrap_or_default(),
        rows,
        next,
        scanned,
    }))
}

/// The target id to filter by. An admin may give a target's name or id,
/// and is told when there is no such target. Targets are admin-only, so
/// anyone else must give a `tgt_…` id, which is taken as it is, never looked
/// up: an unknown id lists nothing, as an id without messages does, so the
/// filter does not tell which targets exist.
async fn target_id(state: &AppState, viewer: &Viewer, given: &str) -> Result<String, UiError> {
    if !viewer.can_act() {
        return TargetId::parse(given).map(String::from).map_err(|_| {
            UiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "Filtering by target name needs an admin key (API key {} has scope {}): give the target's id (tgt_…) instead, or sign in with an admin key.",
                    viewer.caller.key_id, viewer.caller.scope
                ),
            )
        });
    }
    let store = state.store();
    let found = match given.strip_prefix(TargetId::PREFIX) {
        Some(_) => store.target(given).await,
        None => store.target_by_name(given).await,
    }
    .map_err(AppError::from)?;
    found.map(|t| t.id).ok_or_else(|| {
        UiError::new(
            StatusCode::NOT_FOUND,
            format!("There is no target {given:?}. Give a target's name or id as the Targets page (or `signet targets ls`) shows it."),
        )
    })
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    chrome: Option<Chrome>,
    message: MessageView,
    created: Time,
    replayable: bool,
    retryable: bool,
    resendable: bool,
    notice: Option<&'static str>,
}

/// What the message page shows after an action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShowQuery {
    done: Option<String>,
}

/// `GET /ui/messages/{id}`.
pub(crate) async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    UiQuery(q): UiQuery<ShowQuery>,
) -> Result<Response, UiError> {
    let message = shown_to(&state, &id, viewer.caller.scope).await?;
    let notice = match q.done.as_deref() {
        Some("retried") => Some("Retried now: the dispatcher delivers it at once."),
        Some("resent") => Some(
            "Resent: the dispatcher delivers it again, as a new attempt with the same webhook-id.",
        ),
        _ => None,
    };
    let is = |s: TaskState| message.state == s.as_str();
    Ok(render(&MessagePage {
        chrome: Some(viewer.chrome("messages")),
        created: Time::text(&message.created_at),
        replayable: is(TaskState::Dead),
        retryable: is(TaskState::Retryable),
        resendable: is(TaskState::Succeeded),
        notice,
        message,
    }))
}

/// A message's one-button actions.
#[derive(Clone, Copy)]
enum Act {
    /// Retry now (`retryable`).
    Retry,
    /// Resend (`succeeded`).
    Resend,
}

/// Checks the form (CSRF, then scope), calls the API route's helper and
/// sends the browser back to the message, saying what was done.
async fn act(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    form: &CsrfForm,
    what: Act,
) -> Result<Response, UiError> {
    viewer.may_act(form.csrf.as_deref())?;
    let id = parse_message_id(id)?;
    let (message, done) = match what {
        Act::Retry => (retry_as(state, &viewer.caller, &id).await?, "retried"),
        Act::Resend => (resend_as(state, &viewer.caller, &id).await?, "resent"),
    };
    Ok(Redirect::to(&format!("/ui/messages/{}?done={done}", message.id)).into_response())
}

/// `POST /ui/messages/{id}/retry`: the API's retry now.
pub(crate) async fn retry(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    UiForm(form): UiForm<CsrfForm>,
) -> Result<Response, UiError> {
    act(&state, &viewer, &id, &form, Act::Retry).await
}

/// `POST /ui/messages/{id}/resend`: the API's resend (a delivered message
/// delivered again, a new attempt in its history, the same `webhook-id`).
pub(crate) async fn resend(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    UiForm(form): UiForm<CsrfForm>,
) -> Result<Response, UiError> {
    act(&state, &viewer, &id, &form, Act::Resend).await
}
