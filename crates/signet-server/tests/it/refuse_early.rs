//! Refusing early what delivery would certainly refuse: a message URL (of
//! `POST /v1/messages` or of a message schedule) or a target `url_prefix`
//! whose host is an IP literal the SSRF guard refuses is
//! a `422` naming the address, the rule and the setting that allows it,
//! under the same policy the dispatcher delivers with
//! (`DeliveryConfig::ssrf`). Before, `POST /v1/messages` answered `201` and
//! the message was dead-lettered `target-refused` at its first attempt.

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
use crate::support::{assert_refused, request, send, TempStore};

struct Api {
    app: Router,
    admin: String,
    publish: String,
    _temp: tempfile::TempDir,
}

/// A server whose deliveries may reach `allowed` (CIDRs, as
/// `--allowed-target-cidrs` takes them) besides public addresses.
async fn server(allowed: &str) -> Api {
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
            ssrf: SsrfPolicy::parse_allowed(allowed).unwrap(),
            ..DeliveryConfig::default()
        },
    );
    Api {
        app: app(state),
        admin: keys.admin,
        publish: keys.publish,
        _temp: temp.dir,
    }
}

impl Api {
    async fn call(&self, key: &str, method: Method, uri: &str, body: Value) -> (StatusCode, Value) {
        let r = send(
            &self.app,
            request(method, uri, Some(key), &[], Some(body.to_string())),
        )
        .await;
        (r.status, r.json())
    }

    async fn message(&self, url: &str) -> (StatusCode, Value) {
        self.call(
            &self.publish,
            Method::POST,
            "/v1/messages",
            json!({"url": url, "body": {"x": 1}}),
        )
        .await
    }

    async fn target(&self, name: &str, prefix: &str) -> (StatusCode, Value) {
        self.call(
            &self.admin,
            Method::POST,
            "/v1/targets",
            json!({"name": name, "url_prefix": prefix}),
        )
        .await
    }
}

/// The words every early refusal carries: the address, why, and the
/// flag and variable that open it.
fn assert_ssrf_refusal(status: StatusCode, body: &Value, field: &str, address: &str, rule: &str) {
    assert_refused(status, body, field, &format!("{address} is {rule}"));
    let message = body["error"]["message"].as_str().unwrap();
    for setting in ["--allowed-target-cidrs", "SIGNET_ALLOWED_TARGET_CIDRS"] {
        assert!(message.contains(setting), "{setting} missing: {message}");
    }
}

#[tokio::test]
async fn messages_to_refused_ip_literals_are_422_at_publish() {
    let api = server("").await;
    for (url, address, rule) in [
        ("http://127.0.0.1:8080/hook", "127.0.0.1", "loopback"),
        ("http://10.1.2.3/hook", "10.1.2.3", "private"),
        (
            "http://169.254.169.254/latest/meta-data",
            "169.254.169.254",
            "cloud-metadata",
        ),
        ("http://[::1]:9000/", "::1", "loopback"),
        ("http://[fe80::1]/", "fe80::1", "link-local"),
    ] {
        let (status, body) = api.message(url).await;
        assert_ssrf_refusal(status, &body, "url", address, rule);
    }
    // Names are resolved, and judged, at delivery as before.
    let (status, body) = api.message("http://localhost:8080/hook").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = api.message("https://93.184.216.34/hook").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn the_allowed_ranges_of_the_dispatcher_open_publishing_too() {
    let api = server("127.0.0.0/8").await;
    let (status, body) = api.message("http://127.0.0.1:8080/hook").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = api.message("http://10.1.2.3/hook").await;
    assert_ssrf_refusal(status, &body, "url", "10.1.2.3", "private");
}

#[tokio::test]
async fn target_url_prefixes_on_refused_ip_literals_are_422() {
    let api = server("").await;
    let (status, body) = api.target("meta", "http://169.254.169.254/").await;
    assert_ssrf_refusal(
        status,
        &body,
        "url_prefix",
        "169.254.169.254",
        "cloud-metadata",
    );
    let (status, body) = api.target("local", "http://127.0.0.1:8788/hooks").await;
    assert_ssrf_refusal(status, &body, "url_prefix", "127.0.0.1", "loopback");
    // A public prefix is registered; moving it to a private address is not.
    let (status, body) = api.target("orders", "https://hooks.example.com/").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let uri = format!("/v1/targets/{id}");
    let (status, body) = api
        .call(
            &api.admin,
            Method::PATCH,
            &uri,
            json!({"url_prefix": "http://192.168.1.10/"}),
        )
        .await;
    assert_ssrf_refusal(status, &body, "url_prefix", "192.168.1.10", "private");
    // With the range allowed, the same prefix is fine.
    let open = server("127.0.0.0/8").await;
    let (status, body) = open.target("local", "http://127.0.0.1:8788/hooks").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn message_schedules_to_refused_ip_literals_are_422() {
    let api = server("").await;
    let schedule =
        |name: &str, url: &str| json!({"name": name, "cron": "* * * * *", "message": {"url": url}});
    let (status, body) = api
        .call(
            &api.admin,
            Method::POST,
            "/v1/schedules",
            schedule("metadata", "http://169.254.169.254/latest"),
        )
        .await;
    assert_ssrf_refusal(
        status,
        &body,
        "message.url",
        "169.254.169.254",
        "cloud-metadata",
    );
    let (status, body) = api
        .call(
            &api.admin,
            Method::POST,
            "/v1/schedules",
            schedule("public", "https://example.com/hook"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = api
        .call(
            &api.admin,
            Method::PATCH,
            &format!("/v1/schedules/{id}"),
            json!({"message": {"url": "http://10.0.0.7/hook"}}),
        )
        .await;
    assert_ssrf_refusal(status, &body, "message.url", "10.0.0.7", "private");
}
