//! `/healthz` (the process answers) and `/readyz` (the store answers).

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::error::{AppError, AppResult, ErrorBody};
use crate::state::AppState;

/// Health answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthResponse {
    /// `ok`.
    pub status: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = HealthResponse)))]
pub async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
    })
}

/// The store answers.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses((status = 200, body = HealthResponse), (status = 503, body = ErrorBody))
)]
pub async fn readyz(State(state): State<AppState>) -> AppResult<Json<HealthResponse>> {
    state.store().ping().await.map_err(AppError::Unavailable)?;
    Ok(Json(HealthResponse {
        status: "ok".into(),
    }))
}
