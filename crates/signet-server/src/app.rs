//! [`app`]: the routes of every resource, the gate in front of `/v1`, and
//! the layers around all of them (body limit, request timeout, metrics).

use std::future::Future;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use signet_runtime::metrics::{Kind, Series};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::Caller;
use crate::error::AppError;
use crate::guard;
use crate::routes::{self, openapi::ApiDoc, openapi::Document};
use crate::state::AppState;

/// The HTTP API on `state`: the routes of every resource, `/v1` behind the
/// API-key gate, and `/openapi.json` serving the document derived from the
/// same routes while they are registered; the console under `/ui`.
pub fn app(state: AppState) -> Router {
    let gate = middleware::from_fn_with_state(state.clone(), guard::guard);
    let v1 = routes::v1().route_layer(gate);
    let console = crate::ui::router(state.clone());
    with_layers(state, v1, console)
}

/// The `/v1` API on `state` for the operator of the store itself, in
/// process: what `signet` answers with when it works on the database
/// rather than against a server (`--url`), so both modes go through the
/// same routes, checks and views and answer alike. There is no API key:
/// whoever opens the database may do anything, so every request is served
/// as admin, and operator acts are recorded as done by `actor` (the CLI
/// passes `cli (<user>)`). Never serve this on a socket; no console.
pub fn operator_app(state: AppState, actor: String) -> Router {
    let caller = Caller::operator(actor);
    let v1 = routes::v1().route_layer(middleware::from_fn(
        move |mut request: Request, next: Next| {
            request.extensions_mut().insert(caller.clone());
            next.run(request)
        },
    ));
    with_layers(state, v1, Router::new())
}

/// The `/v1` routes `v1`, the open ones and `more` on `state`, with
/// `/openapi.json` and the layers every request goes through.
fn with_layers(state: AppState, v1: OpenApiRouter<AppState>, more: Router<AppState>) -> Router {
    let (router, document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(v1)
        .merge(routes::open())
        .split_for_parts();
    router
        .merge(more)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(Document::new(document)))
        .layer(DefaultBodyLimit::max(state.config().max_body_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_declared_oversize,
        ))
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

/// Requests answered, by route, method and status.
pub(crate) const HTTP_REQUESTS: &str = "signet_http_requests_total";
/// How long requests took to answer, by route and method.
pub(crate) const HTTP_REQUEST_DURATION: &str = "signet_http_request_duration_seconds";

/// The server's own series (the runtime describes the rest), described
/// once, here.
pub(crate) const HTTP_SERIES: &[Series] = &[
    Series {
        name: HTTP_REQUESTS,
        kind: Kind::Counter,
        help: "HTTP requests answered, by route, method and status.",
    },
    Series {
        name: HTTP_REQUEST_DURATION,
        kind: Kind::Histogram,
        help: "How long HTTP requests took to answer, by route and method, in seconds.",
    },
];

/// Bounds each request by the configured timeout, and counts requests and
/// their latency per route (`signet_http_*`).
async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method()).to_owned();
    let response = bounded(state.config().request_timeout, next.run(request)).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION, "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Answers `413` at once when the declared `Content-Length` is over the body
/// limit, before anything waits for a body that will be refused anyway (a
/// client declaring 2 MB and sending 10 bytes would otherwise hold the
/// request until the timeout). The connection is closed after the answer:
/// the unread body must not be taken for the next request.
async fn refuse_declared_oversize(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.config().max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > u64::try_from(limit).unwrap_or(u64::MAX) => {
            let mut response = AppError::PayloadTooLarge { limit }.into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        _ => next.run(request).await,
    }
}

/// The `method` label: the standard methods by name, any other (a client
/// may send `FOO1`, `FOO2`, …) as [`signet_runtime::metrics::OTHER_LABEL`],
/// so requests cannot grow `/metrics`. Routes are matched paths and
/// statuses are numbers, so both are bounded already.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => signet_runtime::metrics::OTHER_LABEL,
    }
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

    #[test]
    fn methods_outside_the_standard_ones_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for made_up in ["FOO1", "FOO2", "PROPFIND"] {
            let m = Method::from_bytes(made_up.as_bytes()).unwrap();
            assert_eq!(method_label(&m), "_other");
        }
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
