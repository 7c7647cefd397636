//! `GET /metrics`: Prometheus text, behind its own bearer token when one is
//! set (API keys do not open it: a scraper needs no key to the API).

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use signet_runtime::metrics::render_prometheus;

use crate::error::{AppError, ErrorBody};
use crate::state::AppState;

/// Metrics in the Prometheus text format. The queue depth is counted again
/// when its last sample is over a second old
/// ([`DEPTH_MAX_AGE`](signet_runtime::metrics::DEPTH_MAX_AGE)).
#[utoipa::path(
    get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = 401, description = "A metrics token is set and was not presented", body = ErrorBody),
    )
)]
pub(crate) async fn render(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.config().metrics_token {
        let presented = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
        if !token.admits(presented) {
            return AppError::Unauthorized(
                "/metrics needs the metrics token: send `Authorization: Bearer <token>` (the value of --metrics-token / SIGNET_METRICS_TOKEN)".into(),
            )
            .into_response();
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render_prometheus(&state.0.metrics, state.queue_depth()).await,
    )
        .into_response()
}

/// This file's routes, declared once: one `routes!` a path, its methods and
/// path taken from the handlers' `#[utoipa::path]`, which also document them.
pub(crate) fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(render))
}
