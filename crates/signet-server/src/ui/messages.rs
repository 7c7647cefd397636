//! Messages: the list (by state, cursor-paged) and a message's page with
//! every delivery attempt (status, latency, error, the response's first
//! bytes). A dead message is replayed like any dead letter.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use signet_store::TaskState;

use super::page::{render, Chrome, Time, UiError};
use super::viewer::{given, next_link, UiQuery, Viewer};
use crate::routes::messages::{list_filter, shown_to, MessageListQuery, MessageView};
use crate::state::AppState;

/// The filters of the message list, as the URL carries them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessagesQuery {
    state: Option<String>,
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
    rows: Vec<MessageRow>,
    next: Option<String>,
}

/// `GET /ui/messages`.
pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    UiQuery(q): UiQuery<MessagesQuery>,
) -> Result<Response, UiError> {
    let message_state = given(q.state);
    let filter = list_filter(MessageListQuery {
        state: message_state.clone(),
        limit: given(q.limit),
        cursor: given(q.cursor),
    })?;
    let page = state
        .store()
        .list_tasks(filter)
        .await
        .map_err(crate::error::AppError::from)?;
    let rows = page
        .items
        .iter()
        .map(|row| {
            let view = MessageView::new(row, None, viewer.caller.scope);
            MessageRow {
                when: Time::text(view.finished_at.as_deref().unwrap_or(&view.updated_at)),
                view,
            }
        })
        .collect();
    let next = page
        .next_cursor
        .map(|c| next_link(&[("state", message_state.as_deref()), ("cursor", Some(&c))]));
    Ok(render(&MessagesPage {
        chrome: Some(viewer.chrome("messages")),
        states: TaskState::ALL.into_iter().map(TaskState::as_str).collect(),
        state: message_state.unwrap_or_default(),
        rows,
        next,
    }))
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    chrome: Option<Chrome>,
    message: MessageView,
    created: Time,
    replayable: bool,
}

/// `GET /ui/messages/{id}`.
pub(crate) async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let message = shown_to(&state, &id, viewer.caller.scope).await?;
    Ok(render(&MessagePage {
        chrome: Some(viewer.chrome("messages")),
        created: Time::text(&message.created_at),
        replayable: message.state == TaskState::Dead.as_str(),
        message,
    }))
}
