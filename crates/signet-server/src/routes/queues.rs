//! `GET /v1/queues`: tasks per queue and state.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use signet_store::TaskState;

use crate::error::{AppResult, ErrorBody};
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

/// Tasks per queue and state.
#[utoipa::path(
    get, path = "/v1/queues", tag = "queues",
    responses((status = 200, body = QueuesResponse), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn list(State(state): State<AppState>) -> AppResult<Json<QueuesResponse>> {
    let mut counts = state.store().counts().await?;
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
