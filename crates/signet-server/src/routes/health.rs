//! `/healthz` (the process answers) and `/readyz` (the store answers and
//! can write).

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::error::{AppError, AppResult, ErrorBody};
use crate::state::AppState;

/// Health answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct HealthResponse {
    /// `ok`.
    pub status: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = HealthResponse)))]
pub(crate) async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
    })
}

/// The store answers and can write: a read-only or full store answers
/// `503 store_unavailable` with the cause (reads alone working is not
/// ready: every enqueue, claim and acknowledgement writes).
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses((status = 200, body = HealthResponse), (status = 503, body = ErrorBody))
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> AppResult<Json<HealthResponse>> {
    state.store().ping().await.map_err(AppError::Unavailable)?;
    state
        .store()
        .check_writable(state.now_ms())
        .await
        .map_err(AppError::Unavailable)?;
    Ok(Json(HealthResponse {
        status: "ok".into(),
    }))
}

/// This file's routes, declared once: one `routes!` a path, its methods and
/// path taken from the handlers' `#[utoipa::path]`, which also document them.
pub(crate) fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(healthz))
        .routes(utoipa_axum::routes!(readyz))
}
