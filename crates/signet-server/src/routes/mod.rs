//! One module per resource. Each declares its routes once, next to its
//! handlers, in a `router()` built from their `#[utoipa::path]`
//! annotations; `v1()` and `open()` gather them for [`app`](crate::app),
//! which serves them and derives `/openapi.json` from the same routers.
//! No module here is public.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub(crate) mod dead_letters;
mod health;
pub(crate) mod keys;
pub(crate) mod messages;
mod metrics;
pub(crate) mod openapi;
pub(crate) mod queues;
pub(crate) mod schedules;
pub(crate) mod targets;
pub(crate) mod tasks;
mod work;

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
        .merge(work::router())
}

/// The routes outside the gate: the probes, the metrics and the document.
pub(crate) fn open() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(openapi::router())
}
