//! Answers that say what they did not do: a target still in use is not
//! deleted without `?force=true` (and a forced deletion says what it left
//! behind), a schedule whose target is gone is flagged, a target shows the
//! secrets still signing with the time each stops, and a replay or purge
//! by ids names each id it left alone and why.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use signet_runtime::{Clock, ManualClock};
use signet_server::config::{DeliveryConfig, ServerConfig};
use signet_server::serve::detached_metrics_handle;
use signet_server::{app, AppState};
use signet_sign::sealed::MasterKey;
use signet_store::testkit::{new_task, put};
use signet_store::{DeadReason, Store, TaskId};

use crate::routes::signing;
use crate::support::{request, send, TempStore};

/// 2030-01-01T00:00:00Z.
const NOW: i64 = 1_893_456_000_000;

struct Api {
    app: Router,
    store: Arc<dyn Store>,
    admin: String,
    _dir: tempfile::TempDir,
}

async fn api() -> Api {
    let temp = TempStore::new();
    let keys = temp.keys(NOW).await;
    let state = AppState::with_delivery(
        Arc::clone(&temp.store),
        ServerConfig::default(),
        signing(),
        detached_metrics_handle(),
        Arc::new(ManualClock::new(NOW)) as Arc<dyn Clock>,
        DeliveryConfig {
            master_key: Some(MasterKey::from_bytes([7; 32])),
            ..DeliveryConfig::default()
        },
    );
    Api {
        app: app(state),
        store: temp.store,
        admin: keys.admin,
        _dir: temp.dir,
    }
}

impl Api {
    /// An admin request: the status, the body as JSON (`Null` if none) and
    /// as text.
    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, String) {
        let r = send(
            &self.app,
            request(
                method,
                uri,
                Some(&self.admin),
                &[],
                body.map(|b| b.to_string()),
            ),
        )
        .await;
        let v = serde_json::from_str(&r.text).unwrap_or(Value::Null);
        (r.status, v, r.text)
    }

    async fn ok(&self, method: Method, uri: &str, body: Option<Value>) -> Value {
        let (status, v, text) = self.call(method, uri, body).await;
        assert!(status.is_success(), "{uri}: {status} {text}");
        v
    }
}

#[tokio::test]
async fn a_target_in_use_is_409_with_counts_unless_forced_and_its_schedules_are_flagged() {
    let api = api().await;
    let orders = api
        .ok(Method::POST, "/v1/targets", Some(json!({"name": "orders"})))
        .await;
    let id = orders["id"].as_str().unwrap().to_owned();
    api.ok(
        Method::POST,
        "/v1/messages",
        Some(json!({"url": "https://example.com/h", "target": "orders", "delay_ms": 3_600_000})),
    )
    .await;
    let schedule = api
        .ok(
            Method::POST,
            "/v1/schedules",
            Some(json!({
                "name": "nightly",
                "cron": "@daily",
                "message": {"url": "https://example.com/h", "target": "orders"},
            })),
        )
        .await;
    assert_eq!(schedule["target_missing"], false, "{schedule}");

    let (status, v, _) = api
        .call(Method::DELETE, &format!("/v1/targets/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "target_in_use", "{v}");
    assert_eq!(
        v["in_use"],
        json!({"pending_messages": 1, "schedules": 1, "push_queues": 0})
    );
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("force=true"), "{message}");
    api.ok(Method::GET, &format!("/v1/targets/{id}"), None)
        .await;

    let (status, v, _) = api
        .call(
            Method::DELETE,
            &format!("/v1/targets/{id}?force=true"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["left_behind"],
        json!({"pending_messages": 1, "schedules": 1, "push_queues": 0})
    );
    let (status, _, _) = api
        .call(Method::GET, &format!("/v1/targets/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let sid = schedule["id"].as_str().unwrap();
    let shown = api
        .ok(Method::GET, &format!("/v1/schedules/{sid}"), None)
        .await;
    assert_eq!(shown["target_missing"], true, "{shown}");
    let list = api.ok(Method::GET, "/v1/schedules", None).await;
    assert_eq!(list["items"][0]["target_missing"], true, "{list}");

    // A target nothing uses goes at once, as before.
    let idle = api
        .ok(Method::POST, "/v1/targets", Some(json!({"name": "idle"})))
        .await;
    let (status, _, text) = api
        .call(
            Method::DELETE,
            &format!("/v1/targets/{}", idle["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
}

#[tokio::test]
async fn a_target_shows_the_secrets_still_signing_and_when_each_stops() {
    let api = api().await;
    let first = "whsec_Zmlyc3QtdGFyZ2V0LXNlY3JldC1vZi0zMi1ieXRlcyEh";
    let second = "whsec_c2Vjb25kLXRhcmdldC1zZWNyZXQtb2YtMzItYnl0ZXMh";
    let created = api
        .ok(
            Method::POST,
            "/v1/targets",
            Some(json!({"name": "orders", "secret": first})),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let old_fingerprint = created["secret_fingerprint"].clone();
    let rotated = api
        .ok(
            Method::POST,
            &format!("/v1/targets/{id}/rotate-secret"),
            Some(json!({"secret": second, "overlap_s": 3600})),
        )
        .await;
    assert_eq!(rotated["secrets"].as_array().map(Vec::len), Some(2));

    let (status, shown, text) = api
        .call(Method::GET, &format!("/v1/targets/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        shown["secrets"],
        json!([
            {
                "fingerprint": shown["secret_fingerprint"],
                "current": true,
                "stops_at": null,
                "stops_at_ms": null,
            },
            {
                "fingerprint": old_fingerprint,
                "current": false,
                "stops_at": shown["secrets"][1]["stops_at"],
                "stops_at_ms": NOW + 3_600_000,
            },
        ]),
        "{shown}"
    );
    // 2030-01-01T01:00:00Z, however many fractional digits.
    let stops_at = shown["secrets"][1]["stops_at"].as_str().unwrap();
    assert!(stops_at.starts_with("2030-01-01T01:00:00"), "{stops_at}");
    assert!(!text.contains(first) && !text.contains(second), "{text}");
    let list = api.ok(Method::GET, "/v1/targets", None).await;
    assert_eq!(list["items"][0]["secrets"], shown["secrets"]);
}

#[tokio::test]
async fn replay_and_purge_by_ids_name_each_id_left_alone_and_why() {
    let api = api().await;
    let dead = put(api.store.as_ref(), new_task("qa")).await;
    api.store
        .kill(dead.id(), DeadReason::PayloadInvalid, "bad args", NOW)
        .await
        .unwrap();
    let live = put(api.store.as_ref(), new_task("qa")).await;
    let missing = TaskId::generate().to_string();

    let replayed = api
        .ok(
            Method::POST,
            "/v1/dead-letters/replay",
            Some(json!({"ids": [dead.id(), live.id(), missing]})),
        )
        .await;
    assert_eq!(replayed["ids"], json!([dead.id()]), "{replayed}");
    assert_eq!(
        replayed["skipped"],
        json!([
            {"id": live.id(), "reason": "not a dead letter (it is available)"},
            {"id": missing, "reason": "not found"},
        ]),
        "{replayed}"
    );
    let purged = api
        .ok(
            Method::POST,
            "/v1/dead-letters/purge",
            Some(json!({"ids": [dead.id()]})),
        )
        .await;
    assert_eq!(purged["count"], 0, "{purged}");
    assert_eq!(
        purged["skipped"],
        json!([{"id": dead.id(), "reason": "not a dead letter (it is available)"}]),
        "{purged}"
    );
    // Acting on every id asked: no `skipped`.
    api.store
        .kill(dead.id(), DeadReason::PayloadInvalid, "again", NOW)
        .await
        .unwrap();
    let purged = api
        .ok(
            Method::POST,
            "/v1/dead-letters/purge",
            Some(json!({"ids": [dead.id()]})),
        )
        .await;
    assert_eq!(purged["count"], 1, "{purged}");
    assert!(purged.get("skipped").is_none(), "{purged}");
}

#[tokio::test]
async fn the_openapi_document_describes_what_these_answers_add() {
    let api = api().await;
    let r = send(
        &api.app,
        request(Method::GET, "/openapi.json", None, &[], None),
    )
    .await;
    let doc: Value = serde_json::from_str(&r.text).unwrap();
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["TargetView"]["properties"]["secrets"].is_object(),
        "{schemas}"
    );
    assert!(schemas["SigningSecretView"]["properties"]["stops_at"].is_object());
    assert!(schemas["TargetInUseBody"]["properties"]["in_use"].is_object());
    assert!(schemas["TargetDeletedView"]["properties"]["left_behind"].is_object());
    assert!(schemas["ScheduleView"]["properties"]["target_missing"].is_object());
    assert!(schemas["DeadActionResponse"]["properties"]["skipped"].is_object());
    let delete = &doc["paths"]["/v1/targets/{id}"]["delete"];
    assert!(
        delete["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "force" && p["in"] == "query"),
        "{delete}"
    );
    assert!(delete["responses"]["409"].is_object(), "{delete}");
}
