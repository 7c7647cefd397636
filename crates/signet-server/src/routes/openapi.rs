//! `GET /openapi.json`. Nothing here lists the routes: [`app`](crate::app)
//! builds the document from the `#[utoipa::path]` of every handler it
//! registers, and this handler serves that document.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::state::AppState;

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

/// What the document says besides its paths and their schemas: title,
/// description, the bearer scheme. The routes add the rest.
#[derive(OpenApi)]
#[openapi(
    info(title = "Signet API", description = "Signed jobs and webhooks. Every /v1 route takes `Authorization: Bearer sk_…`; errors are `{\"error\":{\"code\",\"message\"}}`."),
    modifiers(&BearerAuth)
)]
pub(crate) struct ApiDoc;

/// The document `app` derived from its routes, handed to [`document`] as a
/// request extension.
#[derive(Clone)]
pub(crate) struct Document(Arc<utoipa::openapi::OpenApi>);

impl Document {
    pub(crate) fn new(openapi: utoipa::openapi::OpenApi) -> Self {
        Self(Arc::new(openapi))
    }
}

/// The OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub(crate) async fn document(Extension(document): Extension<Document>) -> Response {
    Json(document.0.as_ref()).into_response()
}

/// This file's routes, declared once: one `routes!` a path, its methods and
/// path taken from the handlers' `#[utoipa::path]`, which also document them.
pub(crate) fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(document))
}
