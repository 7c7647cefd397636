//! The pull protocol (`/v1/work/*`, scope `work`): a long-polled claim
//! woken by new work, complete, fail (retry, then dead `max-attempts`;
//! `signature-invalid` reported by the worker), heartbeats, release (the
//! attempt not spent), a lost lease (`409 lease_lost`), the batch forms, scope refusals, bad input, the
//! OpenAPI document, and a producer's Ed25519 signature verified by a
//! worker holding only the public key, the server untrusted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use signet_runtime::{Clock, ManualClock};
use signet_server::config::{DeliveryConfig, ServerConfig};
use signet_server::serve::detached_metrics_handle;
use signet_server::{app, create_api_key, AppState, Scope, Signing};
use signet_sign::{Algorithm, SigningConfig, TaskEnvelope};
use signet_store::Store;

use crate::routes::signing;
use crate::support::{assert_refused, request, send, Keys, TempStore};

struct Api {
    app: Router,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    keys: Keys,
    /// A `work` key's secret and id.
    work: String,
    work_id: String,
    _dir: tempfile::TempDir,
}

async fn api_with(signing: Signing) -> Api {
    let temp = TempStore::new();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let keys = temp.keys(clock.now_ms()).await;
    let work = create_api_key(temp.store.as_ref(), "worker", Scope::Work, clock.now_ms())
        .await
        .unwrap();
    let store = Arc::clone(&temp.store);
    let state = AppState::with_delivery(
        temp.store,
        ServerConfig::default(),
        signing,
        detached_metrics_handle(),
        Arc::clone(&clock) as Arc<dyn Clock>,
        DeliveryConfig::default(),
    );
    Api {
        app: app(state),
        store,
        clock,
        keys,
        work: work.secret.expose_secret().to_owned(),
        work_id: work.record.id,
        _dir: temp.dir,
    }
}

async fn api() -> Api {
    api_with(signing()).await
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
        (
            r.status,
            serde_json::from_str(&r.text).unwrap_or(Value::Null),
        )
    }

    async fn work(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let key = self.work.clone();
        self.call(&key, Method::POST, &format!("/v1/work/{path}"), Some(body))
            .await
    }

    async fn enqueue(&self, body: Value) -> String {
        let (status, task) = self
            .call(&self.work, Method::POST, "/v1/tasks", Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{task}");
        task["id"].as_str().unwrap().to_owned()
    }

    /// Claims from `queue` at once and returns the tasks.
    async fn claim(&self, queue: &str, max: u64, lease_ms: u64) -> Vec<Value> {
        let (status, body) = self
            .work(
                "claim",
                json!({"queues": [queue], "max": max, "lease_ms": lease_ms}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["tasks"].as_array().unwrap().clone()
    }

    async fn task(&self, id: &str) -> Value {
        let (status, task) = self
            .call(
                &self.keys.admin,
                Method::GET,
                &format!("/v1/tasks/{id}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{task}");
        task
    }

    fn advance(&self, ms: u64) {
        self.clock.advance(Duration::from_millis(ms));
    }
}

fn lease(task: &Value) -> String {
    task["lease"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_waiting_claim_returns_the_task_enqueued_while_it_waits() {
    let api = Arc::new(api().await);
    let (status, body) = api
        .work("claim", json!({"queues": ["poll"], "wait_ms": 0}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tasks"], json!([]));

    let started = Instant::now();
    let waiting = {
        let api = Arc::clone(&api);
        tokio::spawn(async move {
            api.work(
                "claim",
                json!({"queues": ["poll"], "wait_ms": 25_000, "max": 5}),
            )
            .await
        })
    };
    // Let it start waiting (nothing is asserted about the time it takes).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "nothing was due yet");
    let id = api
        .enqueue(json!({"queue": "poll", "task": "ping", "args": {"n": 1}}))
        .await;
    let (status, body) = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the claim answers once work comes")
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let tasks = body["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{body}");
    assert_eq!(tasks[0]["envelope"]["id"], json!(id));
    // Woken by the enqueue, not by the end of the wait.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn a_waiting_claim_returns_a_task_that_becomes_due_while_it_waits() {
    let api = Arc::new(api().await);
    let id = api
        .enqueue(json!({"queue": "later", "task": "t", "delay_ms": 60_000}))
        .await;
    let waiting = {
        let api = Arc::clone(&api);
        tokio::spawn(async move {
            api.work("claim", json!({"queues": ["later"], "wait_ms": 25_000}))
                .await
        })
    };
    // Let the claim find nothing and start waiting (this sleep only gives
    // it time to start; nothing is asserted about how long it takes).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "nothing was due yet");
    // Nothing signals a task that becomes due by time: the waiting claim
    // claims again on its own and finds it.
    api.advance(60_000);
    let (status, body) = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the claim answers once the task is due")
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tasks"][0]["envelope"]["id"], json!(id), "{body}");
}

#[tokio::test]
async fn a_claimed_task_carries_the_envelope_as_signed_and_completes() {
    let api = api().await;
    let id = api
        .enqueue(
            json!({"queue": "mail", "task": "send", "args": {"to": "ada", "n": 1.50},
                        "headers": {"Tenant": "acme"}, "max_attempts": 3}),
        )
        .await;
    let tasks = api.claim("mail", 10, 30_000).await;
    assert_eq!(tasks.len(), 1);
    let t = &tasks[0];
    assert_eq!(t["attempt"], json!(1));
    assert_eq!(t["max_attempts"], json!(3));
    assert!(lease(t).starts_with("lt_"), "{t}");
    assert_eq!(t["lease_expires_at_ms"], json!(1_700_000_030_000_i64));
    let env = &t["envelope"];
    assert_eq!(env["id"], json!(id));
    assert_eq!(env["name"], json!("send"));
    assert_eq!(env["headers"], json!({"tenant": "acme"}));
    // The producer's bytes, base64 and verbatim.
    let row = api.store.task(&id).await.unwrap().unwrap();
    let b64 = env["args_b64"].as_str().unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
        row.envelope.args
    );
    assert_eq!(t["signature"]["alg"], json!("hmac-sha256"));
    assert_eq!(t["signature"]["key_id"], json!("k1"));

    let (status, body) = api
        .work(
            "complete",
            json!({"lease": lease(t), "result": {"sent": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"state": "succeeded"}));
    let task = api.task(&id).await;
    assert_eq!(task["state"], json!("succeeded"), "{task}");
    assert_eq!(task["result"], json!({"sent": true}), "{task}");
    // The history names the API key (its id, never the secret).
    let worker = task["history"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| e["worker"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(
        worker.starts_with(&format!("http:{}:", api.work_id)),
        "{task}"
    );
    assert!(!worker.contains(&api.work));
    // Done: the same lease is lost now.
    let (status, body) = api.work("complete", json!({"lease": lease(t)})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], json!("lease_lost"));
}

#[tokio::test]
async fn a_failed_attempt_retries_then_dead_letters_after_max_attempts() {
    let api = api().await;
    let id = api
        .enqueue(json!({"queue": "q", "task": "flaky", "max_attempts": 2}))
        .await;
    let t = &api.claim("q", 1, 30_000).await[0];
    let (status, body) = api
        .work(
            "fail",
            json!({"lease": lease(t), "error": "boom", "retry_after_ms": 5000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], json!("retryable"), "{body}");
    assert!(api.claim("q", 1, 30_000).await.is_empty(), "not due yet");
    api.advance(5000);
    let t = &api.claim("q", 1, 30_000).await[0];
    assert_eq!(t["attempt"], json!(2));
    // No attempt left: dead with max-attempts, whatever retry_after says.
    let (status, body) = api
        .work(
            "fail",
            json!({"lease": lease(t), "error": "boom again", "retry_after_ms": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], json!("dead"), "{body}");
    assert_eq!(body["reason"], json!("max-attempts"));
    assert!(
        body["detail"].as_str().unwrap().contains("boom again"),
        "{body}"
    );
    let task = api.task(&id).await;
    assert_eq!(task["state"], json!("dead"), "{task}");

    // Without retry_after_ms the worker's backoff decides; a long error is
    // cut to what an attempt record keeps.
    let id = api.enqueue(json!({"queue": "b", "task": "flaky"})).await;
    let t = &api.claim("b", 1, 30_000).await[0];
    let (status, body) = api
        .work(
            "fail",
            json!({"lease": lease(t), "error": "x".repeat(5000)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], json!("retryable"), "{body}");
    let task = api.task(&id).await;
    let error = task["history"][0]["error"].as_str().unwrap();
    assert!(error.len() <= 1024 && error.starts_with("xxx"), "{task}");
}

#[tokio::test]
async fn a_worker_reporting_signature_invalid_dead_letters_the_task() {
    let api = api().await;
    let id = api.enqueue(json!({"queue": "q", "task": "t"})).await;
    let t = &api.claim("q", 1, 30_000).await[0];
    // The detail names the verification outcome.
    let (status, body) = api
        .work("fail", json!({"lease": lease(t), "dead": true, "reason": "signature-invalid", "detail": "it felt wrong"}))
        .await;
    assert_refused(status, &body, "detail", "mismatch");
    let (status, body) = api
        .work(
            "fail",
            json!({"lease": lease(t), "dead": true, "reason": "max-attempts"}),
        )
        .await;
    assert_refused(status, &body, "reason", "cannot report");
    let (status, body) = api
        .work(
            "fail",
            json!({"lease": lease(t), "dead": true, "reason": "signature-invalid",
                             "detail": "mismatch: args do not match the signature"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], json!("dead"));
    assert_eq!(body["reason"], json!("signature-invalid"));
    let (status, dead) = api
        .call(
            &api.keys.admin,
            Method::GET,
            &format!("/v1/dead-letters/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{dead}");
    assert_eq!(dead["dead_reason"], json!("signature-invalid"), "{dead}");
    assert!(
        dead.to_string().contains("mismatch: args do not match"),
        "{dead}"
    );
}

#[tokio::test]
async fn a_heartbeat_extends_the_lease_past_its_first_end() {
    let api = api().await;
    let _ = api.enqueue(json!({"queue": "q", "task": "slow"})).await;
    let t = &api.claim("q", 1, 5000).await[0];
    api.advance(4000);
    let (status, body) = api
        .work("heartbeat", json!({"lease": lease(t), "lease_ms": 5000}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["lease_expires_at_ms"], json!(1_700_000_009_000_i64));
    api.advance(3000);
    // Past the first end: the rescuer leaves it alone.
    let rescued = api
        .store
        .rescue_expired(api.clock.now_ms(), 10)
        .await
        .unwrap();
    assert!(rescued.is_empty(), "{rescued:?}");
    let (status, body) = api.work("complete", json!({"lease": lease(t)})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_lease_lost_to_the_rescuer_is_409_lease_lost() {
    let api = api().await;
    let _ = api.enqueue(json!({"queue": "q", "task": "slow"})).await;
    let t = &api.claim("q", 1, 1000).await[0];
    api.advance(2000);
    let rescued = api
        .store
        .rescue_expired(api.clock.now_ms(), 10)
        .await
        .unwrap();
    assert_eq!(rescued.len(), 1);
    for (path, body) in [
        ("heartbeat", json!({"lease": lease(t)})),
        ("complete", json!({"lease": lease(t), "result": 1})),
        ("fail", json!({"lease": lease(t), "error": "late"})),
        ("release", json!({"lease": lease(t)})),
    ] {
        let (status, answer) = api.work(path, body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {answer}");
        assert_eq!(answer["error"]["code"], json!("lease_lost"), "{path}");
        assert!(answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("drop the work"));
    }
}

#[tokio::test]
async fn a_released_task_is_handed_out_again_without_spending_its_attempt() {
    let api = api().await;
    let id = api
        .enqueue(json!({"queue": "r", "task": "t", "max_attempts": 1}))
        .await;
    let t = &api.claim("r", 1, 30_000).await[0];
    assert_eq!(t["attempt"], json!(1));
    let (status, body) = api.work("release", json!({"lease": lease(t)})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], json!("available"), "{body}");
    assert_eq!(body["run_at_ms"], json!(api.clock.now_ms()), "{body}");
    // Reporting on the released lease is too late.
    let (status, answer) = api.work("complete", json!({"lease": lease(t)})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let (status, answer) = api.work("release", json!({"lease": lease(t)})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], json!("lease_lost"));

    // Its only attempt was not spent: claimed again as attempt 1, it runs.
    let t = &api.claim("r", 1, 30_000).await[0];
    assert_eq!(t["attempt"], json!(1), "{t}");
    assert_eq!(t["envelope"]["id"], json!(id));

    // Given back for later: scheduled, not handed out before it is due.
    let (status, body) = api
        .work(
            "release",
            json!({"lease": lease(t), "retry_after_ms": 5000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], json!("scheduled"), "{body}");
    assert_eq!(
        body["run_at_ms"],
        json!(api.clock.now_ms() + 5000),
        "{body}"
    );
    assert_eq!(api.task(&id).await["state"], json!("scheduled"));
    assert!(api.claim("r", 1, 30_000).await.is_empty(), "not due yet");
    api.advance(5000);
    let t = &api.claim("r", 1, 30_000).await[0];
    assert_eq!(t["attempt"], json!(1), "{t}");
    let (status, body) = api.work("complete", json!({"lease": lease(t)})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let task = api.task(&id).await;
    assert_eq!(task["state"], json!("succeeded"), "{task}");
    // The releases were not attempts: the history holds the one that ran.
    let history = task["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{task}");
    assert_eq!(history[0]["outcome"], json!("succeeded"), "{task}");

    // Batch form, answered per item; bad values name the item's field.
    for n in 0..2 {
        let _ = api
            .enqueue(json!({"queue": "rb", "task": "t", "args": {"n": n}}))
            .await;
    }
    let tasks = api.claim("rb", 2, 30_000).await;
    let l: Vec<String> = tasks.iter().map(lease).collect();
    let (status, body) = api
        .work(
            "release",
            json!({"items": [{"lease": l[0]}, {"lease": l[1], "retry_after_ms": 1_000_000_000_000_u64}]}),
        )
        .await;
    assert_refused(status, &body, "items[1].retry_after_ms", "more than a year");
    let (status, body) = api
        .work(
            "release",
            json!({"items": [{"lease": l[0]}, {"lease": l[0]}, {"lease": l[1], "retry_after_ms": 10}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items[0]["state"], json!("available"), "{body}");
    assert_eq!(items[1]["error"]["code"], json!("lease_lost"), "{body}");
    assert_eq!(items[2]["state"], json!("scheduled"), "{body}");
    let (status, body) = api
        .work(
            "release",
            json!({"items": [{"lease": l[0]}], "retry_after_ms": 1}),
        )
        .await;
    assert_refused(status, &body, "lease", "either");
}

#[tokio::test]
async fn a_batch_naming_one_lease_twice_records_it_once() {
    let api = api().await;
    let id = api.enqueue(json!({"queue": "d", "task": "t"})).await;
    let t = &api.claim("d", 1, 30_000).await[0];
    let (status, body) = api
        .work(
            "complete",
            json!({"items": [{"lease": lease(t), "result": 1}, {"lease": lease(t), "result": 2}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0], json!({"state": "succeeded"}), "{body}");
    assert_eq!(
        body["items"][1]["error"]["code"],
        json!("lease_lost"),
        "{body}"
    );
    let task = api.task(&id).await;
    assert_eq!(task["result"], json!(1), "{task}");
}

#[tokio::test]
async fn batch_forms_answer_per_item() {
    let api = api().await;
    for n in 0..4 {
        let _ = api
            .enqueue(json!({"queue": "b", "task": "t", "args": {"n": n}, "max_attempts": 5}))
            .await;
    }
    let tasks = api.claim("b", 4, 30_000).await;
    assert_eq!(tasks.len(), 4);
    let l: Vec<String> = tasks.iter().map(lease).collect();

    let (status, body) = api
        .work(
            "heartbeat",
            json!({"items": [{"lease": l[0]}, {"lease": l[1], "lease_ms": 60_000}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["items"][1]["lease_expires_at_ms"],
        json!(1_700_000_060_000_i64)
    );

    let (status, body) = api
        .work(
            "complete",
            json!({"items": [{"lease": l[0], "result": {"a": 1}}, {"lease": l[1]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"items": [{"state": "succeeded"}, {"state": "succeeded"}]})
    );

    // A finished lease in a batch fails that item alone.
    let (status, body) = api
        .work("fail", json!({"items": [
            {"lease": l[2], "error": "e", "retry_after_ms": 10},
            {"lease": l[0], "error": "already done"},
            {"lease": l[3], "dead": true, "reason": "payload-invalid", "detail": "not an order"},
        ]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items[0]["state"], json!("retryable"), "{body}");
    assert_eq!(items[1]["error"]["code"], json!("lease_lost"), "{body}");
    assert_eq!(items[2]["state"], json!("dead"), "{body}");
    assert_eq!(items[2]["reason"], json!("payload-invalid"), "{body}");

    let (status, body) = api
        .work(
            "complete",
            json!({"items": [{"lease": l[0]}, {"lease": "nope"}]}),
        )
        .await;
    assert_refused(status, &body, "items[1].lease", "not a lease token");
    let (status, body) = api.work("complete", json!({"items": []})).await;
    assert_refused(status, &body, "items", "1..=1000");
    let (status, body) = api
        .work(
            "complete",
            json!({"lease": l[0], "items": [{"lease": l[1]}]}),
        )
        .await;
    assert_refused(status, &body, "lease", "either");
}

#[tokio::test]
async fn the_work_routes_need_the_work_scope_and_leases_stay_with_their_key() {
    let api = api().await;
    let _ = api.enqueue(json!({"queue": "q", "task": "t"})).await;
    for key in [&api.keys.read, &api.keys.publish] {
        let (status, body) = api
            .call(
                key,
                Method::POST,
                "/v1/work/claim",
                Some(json!({"queues": ["q"]})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let t = &api.claim("q", 1, 30_000).await[0];
    // Another key cannot report on this key's lease (admin has every scope).
    let (status, body) = api
        .call(
            &api.keys.admin,
            Method::POST,
            "/v1/work/complete",
            Some(json!({"lease": lease(t)})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], json!("lease_lost"));
}

#[tokio::test]
async fn bad_claims_name_the_field() {
    let api = api().await;
    for (body, field, why) in [
        (json!({"queues": []}), "queues", "at least one"),
        (
            json!({"queues": ["signet:messages"]}),
            "queues",
            "Signet's own",
        ),
        (json!({"queues": ["bad queue"]}), "queues", ""),
        (json!({"queues": ["q"], "max": 0}), "max", "1..=100"),
        (json!({"queues": ["q"], "max": 101}), "max", "1..=100"),
        (
            json!({"queues": ["q"], "wait_ms": 30_001}),
            "wait_ms",
            "0..=30000",
        ),
        (
            json!({"queues": ["q"], "lease_ms": 999}),
            "lease_ms",
            "1000..=300000",
        ),
        (
            json!({"queues": ["q"], "lease_ms": 300_001}),
            "lease_ms",
            "1000..=300000",
        ),
    ] {
        let (status, answer) = api.work("claim", body).await;
        assert_refused(status, &answer, field, why);
    }
    let (status, answer) = api
        .work("claim", json!({"queues": ["q"], "extra": 1}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, answer) = api
        .work("fail", json!({"lease": "lt_x", "error": "e"}))
        .await;
    assert_refused(status, &answer, "lease", "not a lease token");
}

#[tokio::test]
async fn the_openapi_document_lists_the_work_routes() {
    let api = api().await;
    let (status, doc) = api
        .call(&api.keys.read, Method::GET, "/openapi.json", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    for path in ["claim", "heartbeat", "complete", "fail", "release"] {
        let route = &doc["paths"][format!("/v1/work/{path}")]["post"];
        assert!(route.is_object(), "/v1/work/{path} is not documented");
        assert!(route["responses"].is_object());
    }
}

#[tokio::test]
async fn a_worker_with_only_the_public_key_verifies_what_a_producer_signed() {
    use signet_sign::{Ed25519SecretKey, Key, KeyId, KeyMaterial, KeyRing};
    let secret = Ed25519SecretKey::generate();
    let public = secret.public_key();
    let public_b64 = base64::engine::general_purpose::STANDARD.encode(public.to_bytes());
    // The server holds the public key only: it cannot sign.
    let server =
        SigningConfig::from_vars([("SIGNET_SIGNING_PUBLIC_KEYS", format!("e1:{public_b64}"))])
            .unwrap();
    let api = api_with(Signing::from(server)).await;
    let producer = KeyRing::single(Key::new(
        KeyId::new("e1").unwrap(),
        KeyMaterial::Ed25519Private(secret),
    ));
    // Spacing and key order a re-serialiser would change.
    let args = r#"{ "z": 1,  "a": [1.0, "é"] }"#;
    let envelope = TaskEnvelope {
        id: "task_0190000000007000800000000000ed26".into(),
        queue: "verify".into(),
        name: "invoice.send".into(),
        args: args.as_bytes().to_vec(),
        headers: TaskEnvelope::normalise_headers([("tenant", "acme")]).unwrap(),
        created_at_ms: 1_700_000_000_000,
        not_before_ms: None,
        expires_at_ms: Some(1_800_000_000_000),
        max_attempts: 4,
        callback_url: None,
    };
    let sig = envelope.sign(&producer).unwrap();
    // Sent as raw text so the args keep the producer's bytes.
    let body = format!(
        r#"{{"id":"{}","queue":"verify","task":"invoice.send","args":{args},"headers":{{"tenant":"acme"}},"created_at":1700000000000,"expires_at":1800000000000,"max_attempts":4,"signature":{{"alg":"ed25519","key_id":"e1","sig":"{}"}}}}"#,
        envelope.id,
        base64::engine::general_purpose::STANDARD.encode(&sig.sig)
    );
    let r = send(
        &api.app,
        request(Method::POST, "/v1/tasks", Some(&api.work), &[], Some(body)),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // The raw answer: `args` must be the producer's text, verbatim.
    let r = send(
        &api.app,
        request(
            Method::POST,
            "/v1/work/claim",
            Some(&api.work),
            &[],
            Some(json!({"queues": ["verify"]}).to_string()),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains(&format!("\"args\":{args}")), "{}", r.text);
    let t = &r.json()["tasks"][0];

    // The worker: only the public key, nothing from the server trusted.
    let worker = KeyRing::single(Key::new(
        KeyId::new("e1").unwrap(),
        KeyMaterial::Ed25519Public(public),
    ));
    let env = &t["envelope"];
    let b64 = base64::engine::general_purpose::STANDARD;
    let received = TaskEnvelope {
        id: env["id"].as_str().unwrap().into(),
        queue: env["queue"].as_str().unwrap().into(),
        name: env["name"].as_str().unwrap().into(),
        args: b64.decode(env["args_b64"].as_str().unwrap()).unwrap(),
        headers: serde_json::from_value(env["headers"].clone()).unwrap(),
        created_at_ms: env["created_at_ms"].as_i64().unwrap(),
        not_before_ms: env["not_before_ms"].as_i64(),
        expires_at_ms: env["expires_at_ms"].as_i64(),
        max_attempts: u32::try_from(env["max_attempts"].as_u64().unwrap()).unwrap(),
        callback_url: env["callback_url"].as_str().map(str::to_owned),
    };
    let alg: Algorithm = t["signature"]["alg"].as_str().unwrap().parse().unwrap();
    let sig_bytes = b64.decode(t["signature"]["sig"].as_str().unwrap()).unwrap();
    let key_id = t["signature"]["key_id"].as_str().unwrap();
    received
        .verify(alg, key_id, &sig_bytes, &worker)
        .expect("verifies with the public key alone");
    // A changed byte does not.
    let mut tampered = received.clone();
    tampered.args[3] ^= 1;
    assert!(tampered.verify(alg, key_id, &sig_bytes, &worker).is_err());
}
