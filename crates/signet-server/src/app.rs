//! [`app`]: the routes of every resource, the gate in front of `/v1`, and
//! the layers around all of them (body limit, request timeout, metrics).

use std::future::Future;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::error::AppError;
use crate::guard;
use crate::routes::{self, openapi::ApiDoc, openapi::Document};
use crate::state::AppState;

/// The HTTP API on `state`: the routes of every resource, `/v1` behind the
/// API-key gate, and `/openapi.json` serving the document derived from the
/// same routes while they are registered.
pub fn app(state: AppState) -> Router {
    let gate = middleware::from_fn_with_state(state.clone(), guard::guard);
    let (router, document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::v1().route_layer(gate))
        .merge(routes::open())
        .split_for_parts();
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(Document::new(document)))
        .layer(DefaultBodyLimit::max(state.config().max_body_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .with_state(state)
}

async fn not_found(method: Method, uri: axum::http::Uri) -> AppError {
    AppError::NotFound(format!(
        "no route for {method} {}; see /openapi.json for the API",
        uri.path()
    ))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> AppError {
    AppError::MethodNotAllowed(format!(
        "{method} is not allowed on {}; see /openapi.json for the API",
        uri.path()
    ))
}

/// Bounds each request by the configured timeout, and counts requests and
/// their latency per route (`signet_http_*`).
async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = bounded(state.config().request_timeout, next.run(request)).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("signet_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("signet_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The response, or `503 timeout` when it takes longer than `limit`.
async fn bounded(limit: Duration, response: impl Future<Output = Response>) -> Response {
    match tokio::time::timeout(limit, response).await {
        Ok(response) => response,
        Err(_) => AppError::Timeout(limit).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_response_over_the_time_limit_becomes_503_timeout() {
        let r = bounded(Duration::from_millis(10), std::future::pending()).await;
        assert_eq!(r.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        let body = http_body_util::BodyExt::collect(r.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("\"timeout\""));
        let ok = bounded(Duration::from_secs(5), async {
            AppError::NotFound("x".into()).into_response()
        })
        .await;
        assert_eq!(ok.status(), axum::http::StatusCode::NOT_FOUND);
    }

    /// The gate is put on `routes::v1()`, so that list must hold exactly
    /// the `/v1/` paths: a `/v1/` route among the open ones would answer
    /// without a key.
    #[test]
    fn the_gate_covers_exactly_the_v1_paths() {
        let gated = routes::v1().into_openapi().paths.paths;
        let open = routes::open().into_openapi().paths.paths;
        assert!(!gated.is_empty() && !open.is_empty());
        for path in gated.keys() {
            assert!(path.starts_with("/v1/"), "{path} is behind the gate");
        }
        for path in open.keys() {
            assert!(!path.starts_with("/v1/"), "{path} is not behind the gate");
        }
    }
}
