//! The overview: per queue the tasks in each state and its attempts over
//! the last hour (a chart drawn here, as inline SVG), the most recent dead
//! letters by reason, signature refusals over the last hour, and which
//! node leads each role.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use signet_runtime::{queue_overview, MAINTENANCE_ROLE, SERVICES_ROLE};
use signet_store::{Activity, ActivityWindow, DeadFilter, DeadReason, TaskState, MAX_PAGE};

use super::page::{render, Chrome, Time, UiError};
use super::viewer::{next_link, CsrfForm, UiForm, UiQuery, Viewer};
use crate::routes::messages::runtime_error;
use crate::routes::queues::{pause_as, resume_as};
use crate::state::AppState;

/// Dead letters the overview tallies by reason, newest first (a page
/// stays quick however many there are; the page says when it saw only
/// these).
pub(crate) const REASON_SAMPLE: usize = MAX_PAGE;

/// How often the overview redraws itself in the browser (short polling
/// by the console's script), in seconds.
pub(crate) const REFRESH_SECONDS: u32 = 10;

/// One bucket of the charts, in ms.
pub(crate) const CHART_BUCKET_MS: i64 = 5 * 60 * 1000;

/// Buckets in the charts: the last hour.
pub(crate) const CHART_BUCKETS: i64 = 12;

/// Width of one bucket in a chart, in SVG units.
const BAR_SLOT: u32 = 20;

/// Height of a chart's drawing area, in SVG units.
const CHART_HEIGHT: u32 = 48;

/// One bar of a chart, placed in SVG units.
struct Bar {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
    /// What it stands for, shown on hover.
    label: String,
}

/// A queue's attempts over the last hour.
struct QueueChart {
    queue: String,
    /// Per bucket, oldest first: (succeeded, failed).
    buckets: Vec<(u64, u64)>,
    succeeded: u64,
    failed: u64,
    ok_bars: Vec<Bar>,
    failed_bars: Vec<Bar>,
}

/// The signature refusals over the last hour.
struct SignatureChart {
    /// Per bucket, oldest first: the total.
    buckets: Vec<u64>,
    bars: Vec<Bar>,
    /// Per outcome, the total over the hour.
    outcomes: Vec<(String, u64)>,
    total: u64,
}

struct QueueRow {
    queue: String,
    counts: Vec<u64>,
    total: u64,
    /// Its pause, while paused: since when, by whom, why.
    paused: Option<PauseView>,
}

struct PauseView {
    since: Time,
    by: String,
    reason: Option<String>,
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
    notice: Option<String>,
    refresh_seconds: u32,
    charts: Vec<QueueChart>,
    signature: SignatureChart,
    /// Start of each bucket, oldest first.
    bucket_starts: Vec<Time>,
    chart_width: u32,
    chart_height: u32,
    bucket_minutes: i64,
}

/// What the overview says after an action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OverviewQuery {
    paused: Option<String>,
    resumed: Option<String>,
}

/// `GET /ui`.
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    UiQuery(q): UiQuery<OverviewQuery>,
) -> Result<Response, UiError> {
    let store = state.store().as_ref();
    // The queues as `GET /v1/queues` lists them (paused and bound ones too),
    // Signet's own message queue included: pausing it pauses delivery.
    let overview = queue_overview(store, None, true)
        .await
        .map_err(runtime_error)?;
    let queues = overview
        .iter()
        .map(|q| {
            let per_state: Vec<u64> = TaskState::ALL
                .into_iter()
                .map(|s| q.counts.count(s))
                .collect();
            QueueRow {
                queue: q.queue().to_owned(),
                total: per_state.iter().sum(),
                counts: per_state,
                paused: q.pause.as_ref().map(|p| PauseView {
                    since: Time::ms(p.paused_at_ms),
                    by: p.paused_by.clone(),
                    reason: p.reason.clone(),
                }),
            }
        })
        .collect();
    let notice = match (q.paused, q.resumed) {
        (Some(queue), _) => Some(format!(
            "Paused {queue}: no node claims its work until it is resumed; running work finishes."
        )),
        (_, Some(queue)) => Some(format!("Resumed {queue}: its work is claimed again.")),
        _ => None,
    };
    let (tally, sampled) = dead_by_reason(&state).await?;
    let reasons = DeadReason::ALL
        .into_iter()
        .map(|r| ReasonRow {
            reason: r.as_str(),
            count: tally.get(r.as_str()).copied().unwrap_or(0),
        })
        .filter(|r| r.count > 0)
        .collect();
    let window = ActivityWindow::ending_at(state.now_ms(), CHART_BUCKET_MS, CHART_BUCKETS);
    let activity = store
        .activity(window)
        .await
        .map_err(crate::error::AppError::from)?;
    let (charts, signature) = charts(&activity);
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
        notice,
        refresh_seconds: REFRESH_SECONDS,
        charts,
        signature,
        bucket_starts: (0..CHART_BUCKETS)
            .map(|b| Time::ms(window.since_ms + b * CHART_BUCKET_MS))
            .collect(),
        chart_width: BAR_SLOT * CHART_BUCKETS as u32,
        chart_height: CHART_HEIGHT,
        bucket_minutes: CHART_BUCKET_MS / 60_000,
    }))
}

/// The queues' charts (queues with no attempts in the window left out) and
/// the signature chart, from the store's activity.
fn charts(activity: &Activity) -> (Vec<QueueChart>, SignatureChart) {
    let slots = CHART_BUCKETS as usize;
    let mut per_queue: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
    for row in &activity.queues {
        let buckets = per_queue
            .entry(row.queue.as_str())
            .or_insert_with(|| vec![(0, 0); slots]);
        if let Some(slot) = usize::try_from(row.bucket)
            .ok()
            .and_then(|b| buckets.get_mut(b))
        {
            slot.0 += row.succeeded;
            slot.1 += row.failed;
        }
    }
    let charts = per_queue
        .into_iter()
        .map(|(queue, buckets)| {
            let top = buckets.iter().map(|(ok, bad)| ok.max(bad)).copied().max();
            let half = BAR_SLOT / 2;
            let ok_bars = bars(buckets.iter().map(|b| b.0), top, 1, half - 1, "succeeded");
            let failed_bars = bars(buckets.iter().map(|b| b.1), top, half, half - 1, "failed");
            QueueChart {
                queue: queue.to_owned(),
                succeeded: buckets.iter().map(|b| b.0).sum(),
                failed: buckets.iter().map(|b| b.1).sum(),
                buckets,
                ok_bars,
                failed_bars,
            }
        })
        .collect();
    let mut totals = vec![0u64; slots];
    let mut outcomes: BTreeMap<&str, u64> = BTreeMap::new();
    for row in &activity.signature_failures {
        if let Some(slot) = usize::try_from(row.bucket)
            .ok()
            .and_then(|b| totals.get_mut(b))
        {
            *slot += row.count;
            *outcomes.entry(row.outcome.as_str()).or_insert(0) += row.count;
        }
    }
    let top = totals.iter().copied().max();
    let signature = SignatureChart {
        bars: bars(totals.iter().copied(), top, 2, BAR_SLOT - 4, "refused"),
        total: totals.iter().sum(),
        buckets: totals,
        outcomes: outcomes
            .into_iter()
            .map(|(o, n)| (if o.is_empty() { "(no detail)" } else { o }.to_owned(), n))
            .collect(),
    };
    (charts, signature)
}

/// Bars for `values` (one per bucket, oldest first), scaled so `top` fills
/// the chart; zero draws no bar. `offset` and `width` place the bar in its
/// bucket's slot.
fn bars(
    values: impl Iterator<Item = u64>,
    top: Option<u64>,
    offset: u32,
    width: u32,
    what: &str,
) -> Vec<Bar> {
    let top = top.unwrap_or(0).max(1);
    values
        .enumerate()
        .filter(|(_, v)| *v > 0)
        .map(|(i, v)| {
            // At least one unit high, so a small count still shows.
            let height = ((v.saturating_mul(u64::from(CHART_HEIGHT)) / top) as u32).max(1);
            Bar {
                x: i as u32 * BAR_SLOT + offset,
                y: CHART_HEIGHT - height,
                width,
                height,
                label: format!("{v} {what}"),
            }
        })
        .collect()
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

/// Checks the form (CSRF, then scope), pauses or resumes the queue as the
/// API route does, and sends the browser back to the overview.
async fn pause_or_resume(
    state: &AppState,
    viewer: &Viewer,
    queue: &str,
    form: &CsrfForm,
    pause: bool,
) -> Result<Response, UiError> {
    viewer.may_act(form.csrf.as_deref())?;
    let (view, done) = if pause {
        (
            pause_as(state, &viewer.caller, queue, None).await?,
            "paused",
        )
    } else {
        (resume_as(state, &viewer.caller, queue).await?, "resumed")
    };
    let query = next_link(&[(done, Some(&view.queue))]);
    Ok(Redirect::to(&format!("/ui?{query}")).into_response())
}

/// `POST /ui/queues/{queue}/pause`: the API's pause, for every node.
pub(crate) async fn pause(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(queue): Path<String>,
    UiForm(form): UiForm<CsrfForm>,
) -> Result<Response, UiError> {
    pause_or_resume(&state, &viewer, &queue, &form, true).await
}

/// `POST /ui/queues/{queue}/resume`: the API's resume.
pub(crate) async fn resume(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(queue): Path<String>,
    UiForm(form): UiForm<CsrfForm>,
) -> Result<Response, UiError> {
    pause_or_resume(&state, &viewer, &queue, &form, false).await
}
