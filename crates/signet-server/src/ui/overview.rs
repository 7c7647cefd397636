//! The overview: per queue the tasks in each state, the most recent dead
//! letters by reason, and which node leads each role.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use signet_runtime::{MAINTENANCE_ROLE, SERVICES_ROLE};
use signet_store::{DeadFilter, DeadReason, TaskState, MAX_PAGE};

use super::page::{render, Chrome, Time, UiError};
use super::viewer::Viewer;
use crate::state::AppState;

/// Dead letters the overview tallies by reason, newest first (a page
/// stays quick however many there are; the page says when it saw only
/// these).
pub(crate) const REASON_SAMPLE: usize = MAX_PAGE;

/// How often the overview redraws itself in the browser (short polling
/// by the console's script), in seconds.
pub(crate) const REFRESH_SECONDS: u32 = 10;

struct QueueRow {
    queue: String,
    counts: Vec<u64>,
    total: u64,
}

struct ReasonRow {
    reason: &'static str,
    count: u64,
}

struct LeaderRow {
    role: &'static str,
    holder: String,
    term: u64,
    expires: Time,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Option<Chrome>,
    states: Vec<&'static str>,
    queues: Vec<QueueRow>,
    reasons: Vec<ReasonRow>,
    reasons_sampled: bool,
    sample: usize,
    leaders: Vec<LeaderRow>,
    refresh_seconds: u32,
}

/// `GET /ui`.
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, UiError> {
    let store = state.store().as_ref();
    let mut counts = store.counts().await.map_err(crate::error::AppError::from)?;
    counts.sort_by(|a, b| a.queue.cmp(&b.queue));
    let queues = counts
        .iter()
        .map(|q| {
            let per_state: Vec<u64> = TaskState::ALL.into_iter().map(|s| q.count(s)).collect();
            QueueRow {
                queue: q.queue.clone(),
                total: per_state.iter().sum(),
                counts: per_state,
            }
        })
        .collect();
    let (tally, sampled) = dead_by_reason(&state).await?;
    let reasons = DeadReason::ALL
        .into_iter()
        .map(|r| ReasonRow {
            reason: r.as_str(),
            count: tally.get(r.as_str()).copied().unwrap_or(0),
        })
        .filter(|r| r.count > 0)
        .collect();
    let mut leaders = Vec::new();
    for role in [SERVICES_ROLE, MAINTENANCE_ROLE] {
        if let Some(lease) = store
            .leader(role)
            .await
            .map_err(crate::error::AppError::from)?
        {
            leaders.push(LeaderRow {
                role,
                holder: lease.holder,
                term: lease.term,
                expires: Time::ms(lease.expires_at_ms),
            });
        }
    }
    Ok(render(&OverviewPage {
        chrome: Some(viewer.chrome("overview")),
        states: TaskState::ALL.into_iter().map(TaskState::as_str).collect(),
        queues,
        reasons,
        reasons_sampled: sampled,
        sample: REASON_SAMPLE,
        leaders,
        refresh_seconds: REFRESH_SECONDS,
    }))
}

/// The newest [`REASON_SAMPLE`] dead letters by reason, and whether there
/// were more.
async fn dead_by_reason(state: &AppState) -> Result<(BTreeMap<&'static str, u64>, bool), UiError> {
    let mut tally = BTreeMap::new();
    let mut seen = 0;
    let mut cursor = None;
    loop {
        let page = state
            .store()
            .list_dead(DeadFilter {
                limit: MAX_PAGE,
                cursor,
                ..DeadFilter::default()
            })
            .await
            .map_err(crate::error::AppError::from)?;
        for row in &page.items {
            if let Some(r) = row.dead_reason {
                *tally.entry(r.as_str()).or_insert(0) += 1;
            }
        }
        seen += page.items.len();
        match page.next_cursor {
            Some(next) if seen < REASON_SAMPLE => cursor = Some(next),
            Some(_) => return Ok((tally, true)),
            None => return Ok((tally, false)),
        }
    }
}
