//! Shared pieces of the route tests: a temp-file SQLite store, one API key
//! per scope, and one request through `app(state).oneshot(request)` with its
//! answer read whole.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use signet_server::create_api_key;
use signet_server::Scope;
use signet_sqlite::{SqliteConfig, SqliteStore};
use signet_store::Store;
use tower::ServiceExt;

/// A SQLite store in a file of a temp directory that lives as long as it.
pub(crate) struct TempStore {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) store: Arc<dyn Store>,
}

impl TempStore {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("signet.db").display());
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&url, SqliteConfig::default()).unwrap());
        Self { dir, store }
    }

    /// Creates one API key per scope, each named after its scope, at `now`.
    pub(crate) async fn keys(&self, now: i64) -> Keys {
        let key = |scope: Scope| async move {
            create_api_key(self.store.as_ref(), scope.as_str(), scope, now)
                .await
                .unwrap()
                .secret
                .expose_secret()
                .to_owned()
        };
        Keys {
            admin: key(Scope::Admin).await,
            publish: key(Scope::Publish).await,
            read: key(Scope::Read).await,
        }
    }
}

/// The bearer secrets of one key per scope.
pub(crate) struct Keys {
    pub(crate) admin: String,
    pub(crate) publish: String,
    pub(crate) read: String,
}

/// A request with `key` as its bearer (none without), the `extra` headers,
/// and `body` sent as JSON.
pub(crate) fn request(
    method: Method,
    uri: &str,
    key: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<String>,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(key) = key {
        b = b.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    match body {
        Some(body) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

/// What a route answered.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub(crate) fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) fn message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Sends `request` through `app` and reads the whole answer.
pub(crate) async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Asserts a 422 whose error message starts with `field:` and contains `why`.
pub(crate) fn assert_refused(status: StatusCode, body: &Value, field: &str, why: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("{field}:")) && message.contains(why),
        "expected {field}: …{why}…, got {message}"
    );
}
