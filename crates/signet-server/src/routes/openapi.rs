//! `GET /openapi.json`, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::{dead_letters, health, keys, metrics, queues, schedules, tasks};
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
        schedules::create, schedules::list, schedules::show, schedules::update, schedules::delete,
        schedules::pause, schedules::resume,
        crate::routes::messages::publish, crate::routes::messages::list, crate::routes::messages::show,
        crate::routes::targets::create, crate::routes::targets::list, crate::routes::targets::show,
        crate::routes::targets::update, crate::routes::targets::delete, crate::routes::targets::rotate_secret,
        health::healthz, health::readyz, metrics::render, document,
    ),
    components(schemas(
        ErrorBody, ErrorDetail, TaskView, TaskPage, SignatureView,
        tasks::EnqueueRequest, tasks::SignatureInput,
        queues::QueuesResponse, queues::QueueView,
        keys::KeysStatusResponse, keys::KeyStatus,
        dead_letters::DeadSelectorInput, dead_letters::DeadFilterInput, dead_letters::DeadActionResponse,
        health::HealthResponse,
        crate::routes::messages::MessageRequest, crate::routes::messages::MessageView,
        crate::routes::messages::AttemptView, crate::routes::messages::MessagePage,
        crate::routes::targets::CreateTargetRequest, crate::routes::targets::UpdateTargetRequest,
        crate::routes::targets::RotateSecretRequest, crate::routes::targets::TargetView,
        crate::routes::targets::TargetWithSecret, crate::routes::targets::TargetList,
        schedules::CreateScheduleRequest, schedules::UpdateScheduleRequest,
        schedules::ScheduleView, schedules::ScheduleList,
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
