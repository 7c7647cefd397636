//! `/v1/schedules` through `app(state).oneshot(request)` on a manual clock:
//! create, list, show with the next 5 due times, patch, pause, resume,
//! delete; 422s that name the field; scopes; and the scheduler that
//! `serve`'s leader elector runs firing a schedule created over the API.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use signet_runtime::{Clock, ManualClock};
use signet_server::config::ServerConfig;
use signet_server::serve::{
    detached_metrics_handle, node, LeaderConfig, MAINTENANCE_ROLE, SERVICES_ROLE,
};
use signet_server::{app, AppState};
use signet_store::{Store, TaskFilter};

use crate::routes::signing;
use crate::support::{assert_refused, request, send, TempStore};

/// 2030-01-01T00:00:30Z.
const NOW: i64 = 1_893_456_030_000;

struct Api {
    app: Router,
    state: AppState,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    admin: String,
    publish: String,
    read: String,
    _dir: tempfile::TempDir,
}

async fn api() -> Api {
    let temp = TempStore::new();
    let keys = temp.keys(NOW).await;
    let store = temp.store;
    let clock = Arc::new(ManualClock::new(NOW));
    let state = AppState::with_clock(
        Arc::clone(&store),
        ServerConfig::default(),
        signing(),
        detached_metrics_handle(),
        clock.clone() as Arc<dyn Clock>,
    );
    Api {
        app: app(state.clone()),
        state,
        store,
        clock,
        read: keys.read,
        publish: keys.publish,
        admin: keys.admin,
        _dir: temp.dir,
    }
}

impl Api {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|b| b.to_string());
        let r = send(&self.app, request(method, uri, Some(key), &[], body)).await;
        let value = if r.text.is_empty() {
            Value::Null
        } else {
            r.json()
        };
        (r.status, value)
    }

    async fn admin(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(method, uri, &self.admin, body).await
    }

    async fn create(&self, body: Value) -> Value {
        let (status, v) = self.admin(Method::POST, "/v1/schedules", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v
    }

    /// Asserts a 422 whose message starts with `field:` and contains `why`.
    async fn refused(&self, body: Value, field: &str, why: &str) {
        let (status, v) = self.admin(Method::POST, "/v1/schedules", Some(body)).await;
        assert_refused(status, &v, field, why);
    }
}

fn report_task() -> Value {
    json!({"queue": "reports", "task": "report.daily", "args": {"format": "pdf"}})
}

#[tokio::test]
async fn create_show_list_patch_pause_resume_delete() {
    let api = api().await;
    let created = api
        .create(json!({
            "name": "daily-report",
            "cron": "0 9 * * *",
            "timezone": "Europe/Paris",
            "task": report_task(),
        }))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("sch_"), "{created}");
    assert_eq!(created["kind"], "task");
    assert_eq!(created["catch_up"], "skip");
    assert_eq!(created["paused"], false);
    assert_eq!(created["task"], report_task());
    // 09:00 in Paris is 08:00 UTC in winter.
    assert_eq!(created["next_fire_at"], "2030-01-01T08:00:00.000Z");
    assert_eq!(
        created["upcoming"],
        json!([
            "2030-01-01T08:00:00.000Z",
            "2030-01-02T08:00:00.000Z",
            "2030-01-03T08:00:00.000Z",
            "2030-01-04T08:00:00.000Z",
            "2030-01-05T08:00:00.000Z"
        ])
    );

    let (status, shown) = api
        .call(Method::GET, &format!("/v1/schedules/{id}"), &api.read, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown, created);
    let (status, list) = api
        .call(Method::GET, "/v1/schedules", &api.read, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], id.as_str());

    // A new cron and time zone recompute the next due time from now.
    api.clock.set(NOW + 3_600_000);
    let (status, patched) = api
        .admin(
            Method::PATCH,
            &format!("/v1/schedules/{id}"),
            Some(json!({"cron": "*/15 * * * *", "timezone": "UTC", "catch_up": "once", "name": "quarterly"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "quarterly");
    assert_eq!(patched["catch_up"], "once");
    assert_eq!(patched["next_fire_at"], "2030-01-01T01:15:00.000Z");
    assert_eq!(patched["upcoming"][4], "2030-01-01T02:15:00.000Z");
    assert_eq!(patched["task"], report_task(), "payload kept");

    // Replacing the payload with a message.
    let (status, patched) = api
        .admin(
            Method::PATCH,
            &format!("/v1/schedules/{id}"),
            Some(json!({"message": {"url": "https://example.com/hook", "body": {"ping": true}}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["kind"], "message");
    assert!(patched.get("task").is_none());

    let (status, paused) = api
        .admin(Method::POST, &format!("/v1/schedules/{id}/pause"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["upcoming"], json!([]));
    // Resuming two hours later continues after now: nothing while paused.
    api.clock.set(NOW + 3 * 3_600_000);
    let (status, resumed) = api
        .admin(Method::POST, &format!("/v1/schedules/{id}/resume"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resumed["paused"], false);
    assert_eq!(resumed["next_fire_at"], "2030-01-01T03:15:00.000Z");

    let (status, _) = api
        .admin(Method::DELETE, &format!("/v1/schedules/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .call(Method::GET, &format!("/v1/schedules/{id}"), &api.read, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .admin(Method::DELETE, &format!("/v1/schedules/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn invalid_definitions_get_422_naming_the_field() {
    let api = api().await;
    let base = |patch: Value| {
        let mut v = json!({"name": "s", "cron": "* * * * *", "task": report_task()});
        for (k, val) in patch.as_object().unwrap() {
            v[k] = val.clone();
        }
        v
    };
    api.refused(
        base(json!({"cron": "61 * * * *"})),
        "cron",
        "minute field \"61\"",
    )
    .await;
    api.refused(base(json!({"cron": "* * *"})), "cron", "has 3 fields")
        .await;
    api.refused(
        base(json!({"cron": "0 0 30 2 *"})),
        "cron",
        "never comes due",
    )
    .await;
    api.refused(
        base(json!({"cron": "0 0 * * FUNDAY"})),
        "cron",
        "day-of-week",
    )
    .await;
    api.refused(
        base(json!({"timezone": "Mars/Olympus"})),
        "timezone",
        "not an IANA time zone",
    )
    .await;
    api.refused(
        base(json!({"timezone": "europe/paris"})),
        "timezone",
        "did you mean \"Europe/Paris\"",
    )
    .await;
    api.refused(base(json!({"name": "a b"})), "name", "contains")
        .await;
    api.refused(base(json!({"catch_up": "sometimes"})), "catch_up", "skip")
        .await;
    api.refused(
        base(json!({"message": {"url": "https://example.com"}})),
        "task",
        "not both",
    )
    .await;
    api.refused(
        json!({"name": "s", "cron": "* * * * *"}),
        "task",
        "give what the schedule fires",
    )
    .await;
    api.refused(
        base(json!({"task": {"queue": "q", "task": "t", "not_before": 1}})),
        "task.not_before",
        "delay_ms",
    )
    .await;
    api.refused(
        base(json!({"task": {"queue": "q", "task": "t", "max_attempts": "many"}})),
        "task.max_attempts",
        "invalid type",
    )
    .await;
    api.refused(
        base(json!({"task": {"queue": "q", "task": "t", "max_attempts": 0}})),
        "task.max_attempts",
        "1 to 1000",
    )
    .await;
    api.refused(
        base(json!({"task": {"queue": "signet:messages", "task": "t"}})),
        "task.queue",
        "belong to Signet",
    )
    .await;
    // A message schedule's target must exist when it is written.
    let mut no_target = base(json!({}));
    no_target.as_object_mut().unwrap().remove("task");
    no_target["message"] = json!({"url": "https://example.com/hook", "target": "nobody"});
    let (status, v) = api
        .admin(Method::POST, "/v1/schedules", Some(no_target))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let text = v["error"]["message"].as_str().unwrap();
    assert!(
        text.starts_with("message.target:") && text.contains("nobody"),
        "{v}"
    );
    let mut no_url = base(json!({}));
    no_url.as_object_mut().unwrap().remove("task");
    no_url["message"] = json!({"body": "x"});
    let (status, v) = api.admin(Method::POST, "/v1/schedules", Some(no_url)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("message"),
        "{v}"
    );

    // Unknown fields are 400, in the body and in the task.
    let (status, v) = api
        .admin(
            Method::POST,
            "/v1/schedules",
            Some(base(json!({"every": "day"}))),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unknown_field"))
    );
    let (status, v) = api
        .admin(
            Method::POST,
            "/v1/schedules",
            Some(base(
                json!({"task": {"queue": "q", "task": "t", "colour": "red"}}),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("in task"),
        "{v}"
    );

    // Nothing was stored by any of these.
    assert!(api.store.list_schedules().await.unwrap().is_empty());

    // A name in use is a conflict; PATCH validates like POST.
    let created = api.create(base(json!({}))).await;
    let (status, _) = api
        .admin(Method::POST, "/v1/schedules", Some(base(json!({}))))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let id = created["id"].as_str().unwrap();
    let (status, v) = api
        .admin(
            Method::PATCH,
            &format!("/v1/schedules/{id}"),
            Some(json!({"timezone": "Nowhere/Land"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("timezone:"),
        "{v}"
    );
    let (status, _) = api
        .call(Method::GET, "/v1/schedules/nonsense", &api.read, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn writes_need_the_admin_scope() {
    let api = api().await;
    let body = json!({"name": "s", "cron": "* * * * *", "task": report_task()});
    for key in [&api.read, &api.publish] {
        let (status, _) = api
            .call(Method::POST, "/v1/schedules", key, Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let created = api.create(body).await;
    let id = created["id"].as_str().unwrap();
    for (method, uri) in [
        (Method::PATCH, format!("/v1/schedules/{id}")),
        (Method::DELETE, format!("/v1/schedules/{id}")),
        (Method::POST, format!("/v1/schedules/{id}/pause")),
        (Method::POST, format!("/v1/schedules/{id}/resume")),
    ] {
        let body = (method == Method::PATCH).then(|| json!({}));
        let (status, _) = api.call(method.clone(), &uri, &api.publish, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}");
    }
    let (status, _) = api
        .call(Method::GET, "/v1/schedules", &api.read, None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn serves_leader_runs_the_scheduler_that_fires_api_schedules() {
    let api = api().await;
    let created = api
        .create(json!({"name": "every-minute", "cron": "* * * * *", "task": {"queue": "ticks", "task": "tick"}}))
        .await;
    let due = created["next_fire_at_ms"].as_i64().unwrap();
    let mut node = node(
        &api.state,
        &LeaderConfig {
            node_id: "node-test".into(),
            ttl: Duration::from_secs(15),
        },
        None,
    );
    assert_eq!(
        node.elector(MAINTENANCE_ROLE).unwrap().service_names(),
        ["pruner"]
    );
    let mut elector = node.take_elector(SERVICES_ROLE).unwrap();
    assert_eq!(elector.service_names(), ["scheduler", "callbacks"]);
    assert!(elector.step().await.unwrap(), "the only node leads");
    api.clock.set(due);
    let tasks = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let page = api
                .store
                .list_tasks(TaskFilter {
                    queue: Some("ticks".into()),
                    state: None,
                    include_internal: false,
                    limit: 10,
                    cursor: None,
                })
                .await
                .unwrap();
            if !page.items.is_empty() {
                return page.items;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the scheduler fires the due time");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].envelope.name, "tick");
    assert!(tasks[0].signature.is_some(), "signed with the server's key");
    elector.resign().await.unwrap();
    let (_, shown) = api
        .call(
            Method::GET,
            &format!("/v1/schedules/{}", created["id"].as_str().unwrap()),
            &api.read,
            None,
        )
        .await;
    assert!(shown["last_fired_at"].is_string(), "{shown}");
    assert!(shown["next_fire_at_ms"].as_i64().unwrap() > due, "{shown}");
}
