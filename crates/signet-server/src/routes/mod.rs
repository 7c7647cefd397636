//! One module per resource. Each declares its routes once, next to its
//! handlers, in a `router()` built from their `#[utoipa::path]`
//! annotations; `v1()` and `open()` gather them for [`app`](crate::app),
//! which serves them and derives `/openapi.json` from the same routers.
//!
//! Only [`schedules`] is public, and only for the schedule rules
//! (`build_schedule`, `set_paused`, …) that `signet schedules` shares with
//! `/v1/schedules`; once they move to signet-runtime's schedule service this
//! module becomes private like the others.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

mod dead_letters;
mod health;
mod keys;
mod messages;
mod metrics;
pub(crate) mod openapi;
mod queues;
pub mod schedules;
mod targets;
mod tasks;

/// The `/v1` API: `app` puts every route here behind the API-key gate.
pub(crate) fn v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(tasks::router())
        .merge(queues::router())
        .merge(keys::router())
        .merge(dead_letters::router())
        .merge(schedules::router())
        .merge(messages::router())
        .merge(targets::router())
}

/// The routes outside the gate: the probes, the metrics and the document.
pub(crate) fn open() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(openapi::router())
}
