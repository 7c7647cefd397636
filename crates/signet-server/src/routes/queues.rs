//! `GET /v1/queues`: tasks per queue and state.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use signet_store::{rules, TaskState};

use crate::error::{AppResult, ErrorBody};
use crate::extract::QueryParams;
use crate::routes::tasks::parse_flag;
use crate::state::AppState;

/// One queue's depth.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct QueueView {
    /// Queue name.
    pub queue: String,
    /// Tasks in each state (every state listed, 0 included).
    pub counts: BTreeMap<String, u64>,
    /// All tasks of the queue.
    pub total: u64,
}

/// Response of `GET /v1/queues`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct QueuesResponse {
    /// Queues, by name.
    pub queues: Vec<QueueView>,
}

/// Query of `GET /v1/queues`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct QueuesQuery {
    /// Only this queue (Signet's own `signet:messages` included, when
    /// named).
    pub queue: Option<String>,
    /// `true` to count Signet's own queue `signet:messages` (messages and
    /// callbacks) too; without `queue` it is left out (default `false`).
    #[param(value_type = Option<bool>)]
    pub include_internal: Option<String>,
}

/// Tasks per queue and state. Signet's own queue `signet:messages` is left
/// out unless named in `queue` or asked for with `include_internal=true`.
#[utoipa::path(
    get, path = "/v1/queues", tag = "queues",
    params(QueuesQuery),
    responses(
        (status = 200, body = QueuesResponse),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<QueuesQuery>,
) -> AppResult<Json<QueuesResponse>> {
    if let Some(queue) = &q.queue {
        rules::queue_name(queue)?;
    }
    let include_internal = parse_flag("include_internal", q.include_internal.as_deref())?;
    let mut counts = state.store().counts().await?;
    counts.retain(|c| c.is_listed(q.queue.as_deref(), include_internal));
    counts.sort_by(|a, b| a.queue.cmp(&b.queue));
    let queues = counts
        .into_iter()
        .map(|q| {
            let per_state: BTreeMap<String, u64> = TaskState::ALL
                .into_iter()
                .map(|s| (s.as_str().to_owned(), q.count(s)))
                .collect();
            QueueView {
                total: per_state.values().sum(),
                counts: per_state,
                queue: q.queue,
            }
        })
        .collect();
    Ok(Json(QueuesResponse { queues }))
}

/// This file's routes, declared once: one `routes!` a path, its methods and
/// path taken from the handlers' `#[utoipa::path]`, which also document them.
pub(crate) fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(list))
}
