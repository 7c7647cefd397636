//! Dead letters: the list (by queue, reason and time, cursor-paged),
//! replay and purge by filter (a confirm page counts what the action will
//! touch first), single replay, and re-signing where the key is gone.
//!
//! A filter's action touches exactly the dead letters its confirm page
//! counted: the page fixes the time of its count as the filter's `until`
//! (dead letters dying later are left alone) and sends the count and a
//! digest of the ids it listed; the action lists the filter again and acts
//! on those ids, [`MAX_IDS`] at a time, only when they are the ones
//! confirmed. Otherwise it refuses and asks for a new count: someone
//! replayed or purged some meanwhile, or a dead letter stamped before the
//! count's time (a batch stamped at once, a node whose clock is behind)
//! was written after the count.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use signet_store::{DeadFilter, DeadReason, DeadSelector, MAX_PAGE};

use super::page::{render, Chrome, UiError};
use super::tasks::TaskRowView;
use super::viewer::{given, next_link, UiForm, UiQuery, Viewer};
use crate::routes::dead_letters::{
    list_filter, purge_selected, replay_selected, DeadActionResponse, DeadFilterInput,
    DeadListQuery, MAX_IDS,
};
use crate::routes::tasks::parse_task_id;
use crate::state::AppState;
use crate::views::{TaskView, TimeInput};

/// The filters of the dead-letter list, as the URL carries them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeadQuery {
    queue: Option<String>,
    reason: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The filter a list, a confirm page and an action share; blank fields
/// are no filter.
#[derive(Debug, Default, Clone)]
struct Filter {
    queue: Option<String>,
    reason: Option<String>,
    since: Option<String>,
    /// Dead before this time (exclusive).
    until: Option<String>,
}

impl Filter {
    fn new(
        queue: Option<String>,
        reason: Option<String>,
        since: Option<String>,
        until: Option<String>,
    ) -> Self {
        Self {
            queue: given(queue),
            reason: given(reason),
            since: given(since),
            until: given(until),
        }
    }

    fn is_empty(&self) -> bool {
        self.queue.is_none()
            && self.reason.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    /// This filter, narrowed to the dead letters that died before `at_ms`
    /// (its own `until` when that is earlier), and still after its `since`
    /// (as the API requires) when that is ahead of `at_ms`.
    fn until(&self, at_ms: i64) -> Result<Self, UiError> {
        let input = self.input()?;
        let own = input.until.map(|t| t.0);
        let pinned = own.map_or(at_ms, |u| u.min(at_ms));
        let pinned = match input.since {
            // Never past the filter's own `until` (which, if not after
            // `since`, is refused as it stands).
            Some(since) if pinned <= since.0 => own.map_or(since.0.saturating_add(1), |u| {
                u.min(since.0.saturating_add(1))
            }),
            _ => pinned,
        };
        Ok(Self {
            until: Some(pinned.to_string()),
            ..self.clone()
        })
    }

    /// The listing filter, checked by the API's rules.
    fn listing(
        &self,
        limit: Option<String>,
        cursor: Option<String>,
    ) -> Result<DeadFilter, UiError> {
        Ok(list_filter(DeadListQuery {
            queue: self.queue.clone(),
            reason: self.reason.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            limit,
            cursor,
        })?)
    }

    /// The filter as the replay and purge routes take it.
    fn input(&self) -> Result<DeadFilterInput, UiError> {
        let time = |field: &str, text: Option<&str>| {
            text.map(TimeInput::parse).transpose().map_err(|e| {
                UiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("{field}: {e}"))
            })
        };
        Ok(DeadFilterInput {
            queue: self.queue.clone(),
            reason: self.reason.clone(),
            since: time("since", self.since.as_deref())?,
            until: time("until", self.until.as_deref())?,
        })
    }

    fn query(&self, extra: &[(&str, Option<&str>)]) -> String {
        let mut pairs = vec![
            ("queue", self.queue.as_deref()),
            ("reason", self.reason.as_deref()),
            ("since", self.since.as_deref()),
            ("until", self.until.as_deref()),
        ];
        pairs.extend_from_slice(extra);
        next_link(&pairs)
    }

    /// The filter in words.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(q) = &self.queue {
            parts.push(format!("queue {q}"));
        }
        if let Some(r) = &self.reason {
            parts.push(format!("reason {r}"));
        }
        if let Some(s) = &self.since {
            parts.push(format!("dead since {s}"));
        }
        if let Some(u) = &self.until {
            parts.push(format!("dead before {u}"));
        }
        if parts.is_empty() {
            "every dead letter".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

#[derive(Template)]
#[template(path = "dead_letters.html")]
struct DeadPage {
    chrome: Option<Chrome>,
    reasons: Vec<&'static str>,
    queue: String,
    reason: String,
    since: String,
    filtered: bool,
    filter_query: String,
    rows: Vec<TaskRowView>,
    next: Option<String>,
}

/// `GET /ui/dead-letters`.
pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    UiQuery(q): UiQuery<DeadQuery>,
) -> Result<Response, UiError> {
    let filter = Filter::new(q.queue, q.reason, q.since, q.until);
    let page = state
        .store()
        .list_dead(filter.listing(given(q.limit), given(q.cursor))?)
        .await
        .map_err(crate::error::AppError::from)?;
    let rows = page
        .items
        .iter()
        .map(|row| TaskRowView::of(&TaskView::shown_to(row, viewer.caller.scope)))
        .collect();
    let next = page
        .next_cursor
        .map(|c| filter.query(&[("cursor", Some(&c))]));
    Ok(render(&DeadPage {
        chrome: Some(viewer.chrome("dead-letters")),
        reasons: DeadReason::ALL
            .into_iter()
            .map(DeadReason::as_str)
            .collect(),
        filtered: !filter.is_empty(),
        filter_query: filter.query(&[]),
        queue: filter.queue.clone().unwrap_or_default(),
        reason: filter.reason.clone().unwrap_or_default(),
        since: filter.since.clone().unwrap_or_default(),
        rows,
        next,
    }))
}

/// The dead letters `filter` matches now, listed page by page: their ids,
/// sorted, each once.
async fn matching(state: &AppState, filter: &Filter) -> Result<Vec<String>, UiError> {
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let mut listing = filter.listing(None, cursor)?;
        listing.limit = MAX_PAGE;
        let page = state
            .store()
            .list_dead(listing)
            .await
            .map_err(crate::error::AppError::from)?;
        ids.extend(page.items.into_iter().map(|row| row.envelope.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// What a confirm page sends of the ids it counted: a digest of them as
/// [`matching`] lists them, so the action can tell they are still the same
/// without the page carrying every id.
fn digest(ids: &[String]) -> String {
    let mut hash = Sha256::new();
    for id in ids {
        hash.update(id.as_bytes());
        hash.update(b"\n");
    }
    hex::encode(hash.finalize())
}

/// Which action a confirm page is for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfirmQuery {
    action: String,
    queue: Option<String>,
    reason: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

#[derive(Template)]
#[template(path = "dead_confirm.html")]
struct ConfirmPage {
    chrome: Option<Chrome>,
    purge: bool,
    count: usize,
    described: String,
    queue: String,
    reason: String,
    since: String,
    /// The time of the count (or the viewer's own `until`, when earlier;
    /// just after `since` when that is ahead of the count): the action
    /// leaves dead letters that died since alone.
    until: String,
    /// The [`digest`] of the ids counted.
    matched: String,
    filter_query: String,
}

/// `GET /ui/dead-letters/confirm?action=replay|purge&…`: how many dead
/// letters the action would touch, and the form that does it.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    viewer: Viewer,
    UiQuery(q): UiQuery<ConfirmQuery>,
) -> Result<Response, UiError> {
    let purge = match q.action.as_str() {
        "replay" => false,
        "purge" => true,
        other => {
            return Err(UiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("action: unknown action {other:?}; use replay or purge"),
            ))
        }
    };
    let filter = Filter::new(q.queue, q.reason, q.since, q.until);
    // Checked (its times parsed) before anything is counted.
    let counted = filter.until(state.now_ms())?;
    let ids = matching(&state, &counted).await?;
    Ok(render(&ConfirmPage {
        chrome: Some(viewer.chrome("dead-letters")),
        purge,
        count: ids.len(),
        matched: digest(&ids),
        described: filter.describe(),
        filter_query: filter.query(&[]),
        queue: filter.queue.clone().unwrap_or_default(),
        reason: filter.reason.clone().unwrap_or_default(),
        since: filter.since.clone().unwrap_or_default(),
        until: counted.until.clone().unwrap_or_default(),
    }))
}

/// A replay or purge form: one dead letter (`id`) or a filter.
#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    csrf: Option<String>,
    id: Option<String>,
    queue: Option<String>,
    reason: Option<String>,
    since: Option<String>,
    /// By filter: the time the confirm page counted at.
    until: Option<String>,
    /// By filter: how many dead letters the confirm page counted.
    confirmed: Option<String>,
    /// By filter: the [`digest`] of the ids the confirm page counted.
    matched: Option<String>,
    /// A checkbox: present when ticked.
    resign: Option<String>,
}

/// The dead letters a form acts on.
enum Chosen {
    /// The form's one dead letter.
    One(String),
    /// The ids its filter matches, the ones its confirm page counted.
    Confirmed(Vec<String>),
}

impl ActionForm {
    /// What the form selects: its one dead letter, or the ids its filter
    /// matches once checked against what the confirm page counted.
    async fn chosen(&self, state: &AppState) -> Result<Chosen, UiError> {
        match given(self.id.clone()) {
            Some(id) => {
                parse_task_id(&id).map_err(|_| {
                    UiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("id: {id:?} is not a task_… or msg_… id"),
                    )
                })?;
                Ok(Chosen::One(id))
            }
            None => self.confirmed_ids(state).await.map(Chosen::Confirmed),
        }
    }

    /// The ids the filter matches now: refused without the confirm page's
    /// count, time and digest, and when they are not the ids it counted.
    async fn confirmed_ids(&self, state: &AppState) -> Result<Vec<String>, UiError> {
        let again = |why: String| {
            UiError::new(
                StatusCode::CONFLICT,
                format!("{why} Nothing was done: go back to the dead letters and count again."),
            )
        };
        let filter = self.filter();
        let (Some(_), Some(confirmed), Some(matched)) = (
            &filter.until,
            given(self.confirmed.clone()),
            given(self.matched.clone()),
        ) else {
            return Err(again(
                "This form does not say which dead letters were confirmed, nor when they were counted.".into(),
            ));
        };
        let confirmed: usize = confirmed.parse().map_err(|_| {
            UiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("confirmed: {confirmed:?} is not a count of dead letters"),
            )
        })?;
        // The listing checks the filter as the confirm page's did.
        let ids = matching(state, &filter).await?;
        if ids.len() != confirmed || digest(&ids) != matched {
            let now = if ids.len() == confirmed {
                format!("as many match now ({confirmed}), but not the same ones")
            } else {
                format!("{} match now, {confirmed} were confirmed", ids.len())
            };
            return Err(again(format!(
                "The dead letters matching this filter ({}) changed since you counted them: {now}. Someone may have replayed or purged some, or a dead letter stamped before the count was written after it.",
                filter.describe(),
            )));
        }
        Ok(ids)
    }

    fn filter(&self) -> Filter {
        Filter::new(
            self.queue.clone(),
            self.reason.clone(),
            self.since.clone(),
            self.until.clone(),
        )
    }
}

/// Runs `act` on `ids`, [`MAX_IDS`] at a time (the API's limit per call),
/// and merges the answers. An error after the first part says how many
/// were already `done` (at least: a part that failed after its change was
/// written is not counted).
///
/// The parts run in a task of their own: a request that ends early (the
/// server's request timeout, a closed browser) does not stop an action
/// halfway; the next count shows what it did.
async fn in_parts<F, Fut>(
    ids: Vec<String>,
    done: &'static str,
    act: F,
) -> Result<DeadActionResponse, UiError>
where
    F: Fn(DeadSelector) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = crate::error::AppResult<DeadActionResponse>> + Send,
{
    let parts = tokio::spawn(async move {
        let mut all = DeadActionResponse::of(Vec::new());
        for part in ids.chunks(MAX_IDS) {
            match act(DeadSelector::Ids(part.to_vec())).await {
                Ok(answer) => all.merge(answer),
                Err(e) if all.count == 0 && all.skipped.is_empty() => return Err(e.into()),
                Err(e) => {
                    return Err(UiError::from(e).after(&format!(
                        "At least {} of the confirmed dead letters were {done} before this error; go back to the dead letters and count again to see what is left.",
                        all.count
                    )))
                }
            }
        }
        Ok(all)
    });
    parts.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "a console action on dead letters failed");
        Err(UiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: the action stopped; go back to the dead letters and count again to see what it {done}."),
        ))
    })
}

#[derive(Template)]
#[template(path = "dead_result.html")]
struct ResultPage {
    chrome: Option<Chrome>,
    verb: &'static str,
    answer: DeadActionResponse,
    shown: Vec<String>,
    filter_query: String,
}

/// Most ids a result page lists.
const SHOWN_IDS: usize = 50;

fn result_page(
    viewer: &Viewer,
    verb: &'static str,
    answer: DeadActionResponse,
    filter: &Filter,
) -> Response {
    // Back to the list as filtered, without the confirm page's time.
    let back = Filter {
        until: None,
        ..filter.clone()
    };
    render(&ResultPage {
        chrome: Some(viewer.chrome("dead-letters")),
        verb,
        shown: answer.ids.iter().take(SHOWN_IDS).cloned().collect(),
        answer,
        filter_query: back.query(&[]),
    })
}

/// `POST /ui/dead-letters/replay`: the API's replay (with `resign`, its
/// re-sign and replay).
pub(crate) async fn replay(
    State(state): State<AppState>,
    viewer: Viewer,
    UiForm(form): UiForm<ActionForm>,
) -> Result<Response, UiError> {
    viewer.may_act(form.csrf.as_deref())?;
    let resign = form.resign.is_some();
    let caller = &viewer.caller;
    let answer = match form.chosen(&state).await? {
        Chosen::One(id) => {
            let answer =
                replay_selected(&state, caller, DeadSelector::Ids(vec![id.clone()]), resign)
                    .await?;
            if answer.count == 1 && answer.warnings.is_empty() && answer.refused.is_none() {
                return Ok(Redirect::to(&format!("/ui/tasks/{id}?done=replayed")).into_response());
            }
            answer
        }
        Chosen::Confirmed(ids) => {
            if resign && ids.len() > signet_runtime::MAX_RESIGN {
                return Err(UiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "{} dead letters match; re-sign at most {} at a time: narrow the filter (queue, reason, since, until) and re-sign in parts. Nothing was done.",
                        ids.len(),
                        signet_runtime::MAX_RESIGN
                    ),
                ));
            }
            let (state, caller) = (state.clone(), caller.clone());
            in_parts(ids, "replayed", move |part| {
                let (state, caller) = (state.clone(), caller.clone());
                async move { replay_selected(&state, &caller, part, resign).await }
            })
            .await?
        }
    };
    Ok(result_page(&viewer, "Replayed", answer, &form.filter()))
}

/// `POST /ui/dead-letters/purge`: the API's purge.
pub(crate) async fn purge(
    State(state): State<AppState>,
    viewer: Viewer,
    UiForm(form): UiForm<ActionForm>,
) -> Result<Response, UiError> {
    viewer.may_act(form.csrf.as_deref())?;
    let answer = match form.chosen(&state).await? {
        Chosen::One(id) => purge_selected(&state, DeadSelector::Ids(vec![id])).await?,
        Chosen::Confirmed(ids) => {
            let state = state.clone();
            in_parts(ids, "purged", move |part| {
                let state = state.clone();
                async move { purge_selected(&state, part).await }
            })
            .await?
        }
    };
    Ok(result_page(&viewer, "Purged", answer, &form.filter()))
}
