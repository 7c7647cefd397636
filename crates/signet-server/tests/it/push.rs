//! `PUT|GET|DELETE /v1/queues/{queue}/push` and the push endpoints in
//! `GET /v1/queues`: binding a queue to an endpoint, every refusal a `422`
//! naming its field, under the SSRF policy the dispatcher delivers with.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use signet_runtime::{Clock, SsrfPolicy, SystemClock};
use signet_server::config::{DeliveryConfig, ServerConfig};
use signet_server::serve::detached_metrics_handle;
use signet_server::{app, AppState};
use signet_sign::sealed::MasterKey;

use crate::routes::signing;
use crate::support::{assert_refused, request, send, Keys, TempStore};

struct Api {
    app: Router,
    keys: Keys,
    _temp: tempfile::TempDir,
}

async fn server() -> Api {
    let temp = TempStore::new();
    let keys = temp.keys(1).await;
    let state = AppState::with_delivery(
        temp.store,
        ServerConfig::default(),
        signing(),
        detached_metrics_handle(),
        Arc::new(SystemClock) as Arc<dyn Clock>,
        DeliveryConfig {
            master_key: Some(MasterKey::from_bytes([3; 32])),
            ssrf: SsrfPolicy::new(),
            ..DeliveryConfig::default()
        },
    );
    Api {
        app: app(state),
        keys,
        _temp: temp.dir,
    }
}

impl Api {
    async fn call(
        &self,
        key: &str,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let r = send(
            &self.app,
            request(method, uri, Some(key), &[], body.map(|b| b.to_string())),
        )
        .await;
        let json = if r.text.is_empty() {
            Value::Null
        } else {
            r.json()
        };
        (r.status, json)
    }

    async fn bind(&self, queue: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            &self.keys.admin,
            Method::PUT,
            &format!("/v1/queues/{queue}/push"),
            Some(body),
        )
        .await
    }

    async fn target(&self, name: &str, prefix: Option<&str>) -> String {
        let (status, body) = self
            .call(
                &self.keys.admin,
                Method::POST,
                "/v1/targets",
                Some(json!({"name": name, "url_prefix": prefix})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn a_queue_is_bound_shown_listed_and_unbound() {
    let api = server().await;
    let target = api.target("billing", None).await;
    let (status, body) = api
        .bind(
            "invoices",
            json!({"url": "https://hooks.example.com/push?token=s3cret", "target": "billing",
                   "timeout_ms": 5000, "concurrency": 3, "require_signed_response": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["queue"], "invoices");
    assert_eq!(body["url"], "https://hooks.example.com/push?token=s3cret");
    assert_eq!(body["target"], target.as_str());
    assert_eq!(body["target_name"], "billing");
    assert_eq!(body["timeout_ms"], 5000);
    assert_eq!(body["concurrency"], 3);
    assert_eq!(body["require_signed_response"], true);

    let (status, shown) = api
        .call(
            &api.keys.admin,
            Method::GET,
            "/v1/queues/invoices/push",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown, body);

    // Listed although it holds no task; the query is for admin keys only.
    let (status, list) = api
        .call(&api.keys.read, Method::GET, "/v1/queues", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let q = &list["queues"][0];
    assert_eq!(q["queue"], "invoices", "{list}");
    assert_eq!(q["total"], 0);
    assert_eq!(
        q["push"]["url"],
        "https://hooks.example.com/push?token=redacted"
    );

    // Binding is an admin act.
    let (status, _) = api
        .call(
            &api.keys.publish,
            Method::PUT,
            "/v1/queues/other/push",
            Some(json!({"url": "https://hooks.example.com/", "target": "billing"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Rebinding replaces it; the defaults fill what is not given.
    let (status, body) = api
        .bind(
            "invoices",
            json!({"url": "https://hooks.example.com/v2", "target": target}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["timeout_ms"].clone(), body["concurrency"].clone()),
        (json!(30000), json!(10))
    );
    assert_eq!(body["require_signed_response"], false);

    // The binding keeps its target from being deleted by mistake.
    let (status, v) = api
        .call(
            &api.keys.admin,
            Method::DELETE,
            &format!("/v1/targets/{target}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["in_use"]["push_queues"], 1, "{v}");

    let (status, _) = api
        .call(
            &api.keys.admin,
            Method::DELETE,
            "/v1/queues/invoices/push",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = api
            .call(&api.keys.admin, method, "/v1/queues/invoices/push", None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (_, list) = api
        .call(&api.keys.read, Method::GET, "/v1/queues", None)
        .await;
    assert_eq!(list["queues"], json!([]));
}

#[tokio::test]
async fn bindings_that_could_never_push_are_refused_by_field() {
    let api = server().await;
    api.target("billing", None).await;
    api.target("narrow", Some("https://hooks.example.com/only/"))
        .await;
    let url = "https://hooks.example.com/push";
    let cases = [
        (
            "signet:messages",
            json!({"url": url, "target": "billing"}),
            "queue",
            "is reserved",
        ),
        (
            "q",
            json!({"url": "http://10.1.2.3/push", "target": "billing"}),
            "url",
            "10.1.2.3",
        ),
        (
            "q",
            json!({"url": "http://169.254.169.254/", "target": "billing"}),
            "url",
            "169.254.169.254",
        ),
        (
            "q",
            json!({"url": "ftp://hooks.example.com/", "target": "billing"}),
            "url",
            "scheme",
        ),
        (
            "q",
            json!({"url": url, "target": "nobody"}),
            "target",
            "no target",
        ),
        (
            "q",
            json!({"url": url, "target": "narrow"}),
            "url",
            "url_prefix",
        ),
        (
            "q",
            json!({"url": url, "target": "billing", "timeout_ms": 999}),
            "timeout_ms",
            "1000..=300000",
        ),
        (
            "q",
            json!({"url": url, "target": "billing", "timeout_ms": 300001}),
            "timeout_ms",
            "1000..=300000",
        ),
        (
            "q",
            json!({"url": url, "target": "billing", "concurrency": 0}),
            "concurrency",
            "1..=1000",
        ),
        (
            "q",
            json!({"url": url, "target": "billing", "concurrency": 1001}),
            "concurrency",
            "1..=1000",
        ),
    ];
    for (queue, body, field, why) in cases {
        let (status, answer) = api.bind(queue, body).await;
        assert_refused(status, &answer, field, why);
    }
    let (status, _) = api.bind("q", json!({"url": url})).await;
    assert!(
        status.is_client_error(),
        "a missing target is refused: {status}"
    );
    let (_, list) = api
        .call(&api.keys.read, Method::GET, "/v1/queues", None)
        .await;
    assert_eq!(list["queues"], json!([]), "nothing was bound");
}
