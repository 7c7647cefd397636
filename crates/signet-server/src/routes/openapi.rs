//! `GET /openapi.json`, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::{dead_letters, health, keys, metrics, queues, tasks};
use crate::views::{SignatureView, TaskPage, TaskView};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Signet API", description = "Signed jobs and webhooks. Every /v1 route takes `Authorization: Bearer sk_…`; errors are `{\"error\":{\"code\",\"message\"}}`."),
    paths(
        tasks::enqueue, tasks::list, tasks::show, tasks::cancel,
        queues::list, keys::status,
        dead_letters::list, dead_letters::show, dead_letters::replay, dead_letters::purge,
        health::healthz, health::readyz, metrics::render, document,
    ),
    components(schemas(
        ErrorBody, ErrorDetail, TaskView, TaskPage, SignatureView,
        tasks::EnqueueRequest, tasks::SignatureInput,
        queues::QueuesResponse, queues::QueueView,
        keys::KeysStatusResponse, keys::KeyStatus,
        dead_letters::DeadSelectorInput, dead_letters::DeadFilterInput, dead_letters::DeadActionResponse,
        health::HealthResponse,
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
