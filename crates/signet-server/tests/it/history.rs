//! Histories through the API: a replayed message keeps its earlier
//! attempts and later ones get higher numbers; re-signing a dead letter
//! whose key left the ring (`resign: true`) is recorded, refused for the
//! others; a plain replay of one warns.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use signet_runtime::{Clock, ManualClock};
use signet_server::config::{DeliveryConfig, ServerConfig};
use signet_server::serve::detached_metrics_handle;
use signet_server::{app, AppState};
use signet_sign::{Algorithm, KeyRing, SigningConfig, TaskEnvelope};
use signet_store::{
    ClaimRequest, DeadReason, FailOutcome, HttpExchange, LeaseToken, NewTask, Settlement,
    SignatureRecord, Store, TaskId, TaskRow, MESSAGE_QUEUE,
};

use crate::routes::{signing, HMAC_KEY_B64};
use crate::support::{request, send, Keys, TempStore};

pub(crate) struct Api {
    app: Router,
    pub(crate) store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    pub(crate) keys: Keys,
    _dir: tempfile::TempDir,
}

pub(crate) async fn api() -> Api {
    let temp = TempStore::new();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let keys = temp.keys(clock.now_ms()).await;
    let store = Arc::clone(&temp.store);
    let state = AppState::with_delivery(
        temp.store,
        ServerConfig::default(),
        signing(),
        detached_metrics_handle(),
        Arc::clone(&clock) as Arc<dyn Clock>,
        DeliveryConfig::default(),
    );
    Api {
        app: app(state),
        store,
        clock,
        keys,
        _dir: temp.dir,
    }
}

impl Api {
    pub(crate) async fn call(
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

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Claims the one due message as the dispatcher `node` would.
    pub(crate) async fn claim_message(&self, node: &str) -> TaskRow {
        let mut rows = self
            .store
            .claim(
                ClaimRequest {
                    queues: vec![MESSAGE_QUEUE.to_owned()],
                    worker_id: node.to_owned(),
                    limit: 1,
                    lease_ms: 30_000,
                },
                self.now(),
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "one message due");
        rows.remove(0)
    }

    /// Writes a delivery attempt's outcome as the dispatcher does.
    pub(crate) async fn settle(&self, row: &TaskRow, status: Option<u16>, settlement: Settlement) {
        let http = HttpExchange {
            status,
            latency_ms: 12,
            response_body: status.map_or_else(Vec::new, |s| format!("answer {s}").into_bytes()),
        };
        self.store
            .settle_delivery(&LeaseToken::of(row), http, settlement, self.now())
            .await
            .unwrap();
    }

    pub(crate) fn tick(&self) {
        self.clock.advance(Duration::from_secs(1));
    }
}

fn strs<'a>(v: &'a Value, field: &str) -> Vec<&'a str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|e| e[field].as_str().unwrap_or("-"))
        .collect()
}

#[tokio::test]
async fn a_message_that_died_then_was_replayed_shows_every_attempt_in_order() {
    let api = api().await;
    let (status, published) = api
        .call(
            &api.keys.publish,
            Method::POST,
            "/v1/messages",
            Some(json!({"url": "https://hooks.example.com/orders", "max_attempts": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{published}");
    let id = published["id"].as_str().unwrap().to_owned();

    // Attempt 1: 503, retry. Attempt 2: no answer, out of attempts: dead.
    api.tick();
    let row = api.claim_message("node-a").await;
    let retry_at = api.now() + 1_000;
    api.settle(
        &row,
        Some(503),
        Settlement::Failed {
            error: "HTTP 503".into(),
            outcome: FailOutcome::Retry { at_ms: retry_at },
        },
    )
    .await;
    api.tick();
    let row = api.claim_message("node-b").await;
    api.settle(
        &row,
        None,
        Settlement::Failed {
            error: "could not connect: connection refused".into(),
            outcome: FailOutcome::Dead {
                reason: DeadReason::MaxAttempts,
                detail: "all 2 attempts failed; last: connection refused".into(),
            },
        },
    )
    .await;

    // Replayed by an admin, then delivered.
    api.tick();
    let (status, replayed) = api
        .call(
            &api.keys.admin,
            Method::POST,
            "/v1/dead-letters/replay",
            Some(json!({"ids": [id]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["count"], 1, "{replayed}");
    assert!(replayed.get("warnings").is_none(), "{replayed}");
    api.tick();
    let row = api.claim_message("node-a").await;
    assert_eq!((row.attempt, row.attempts_before), (1, 2));
    api.settle(
        &row,
        Some(204),
        Settlement::Delivered {
            result: Some(br#"{"status":204}"#.to_vec()),
        },
    )
    .await;

    let (status, shown) = api
        .call(
            &api.keys.read,
            Method::GET,
            &format!("/v1/messages/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["state"], "succeeded", "{shown}");
    assert_eq!(shown["attempts_made"], 3, "{shown}");
    let attempts = &shown["attempts"];
    let numbers: Vec<u64> = attempts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3], "{shown}");
    assert_eq!(strs(attempts, "outcome"), ["retry", "dead", "succeeded"]);
    let statuses: Vec<Value> = attempts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].clone())
        .collect();
    assert_eq!(statuses, [json!(503), Value::Null, json!(204)]);
    assert_eq!(strs(attempts, "worker"), ["node-a", "node-b", "node-a"]);
    let ended = strs(attempts, "ended_at");
    let mut sorted = ended.clone();
    sorted.sort_unstable();
    assert_eq!(ended, sorted, "attempts in time order: {shown}");
    assert_eq!(attempts[0]["response_body"], "answer 503");
    assert_eq!(
        attempts[1]["error"],
        "could not connect: connection refused"
    );

    // The rest of its history, each attempt being in `attempts` once: the
    // replay, with who, between attempts 2 and 3.
    let history = &shown["history"];
    assert_eq!(strs(history, "kind"), ["replayed"], "{shown}");
    let actor = history[0]["actor"].as_str().unwrap();
    assert!(
        actor.starts_with("api key key_") && actor.contains("(admin)"),
        "{actor}"
    );
    let replayed_at = history[0]["at"].as_str().unwrap();
    assert!(ended[1] < replayed_at && replayed_at < ended[2], "{shown}");

    // The task view of the same row shows the same history.
    let (status, task) = api
        .call(
            &api.keys.admin,
            Method::GET,
            &format!("/v1/tasks/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{task}");
    assert_eq!(task["attempts_made"], 3);
    assert_eq!(task["attempt"], 1);
    assert_eq!(
        strs(&task["history"], "kind"),
        ["attempt", "attempt", "replayed", "attempt"]
    );
    assert_eq!(task["history"][0]["http"]["status"], 503);

    // The document describes the history and the re-sign switch.
    let r = send(
        &api.app,
        request(Method::GET, "/openapi.json", None, &[], None),
    )
    .await;
    let doc: Value = serde_json::from_str(&r.text).unwrap();
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["HistoryEventView"]["properties"]["outcome"].is_object(),
        "{schemas}"
    );
    assert!(schemas["TaskView"]["properties"]["history"].is_object());
    assert!(schemas["MessageView"]["properties"]["history"].is_object());
    assert!(schemas["ReplayInput"]["properties"]["resign"].is_object());
}

/// A dead letter on queue `q` signed with HMAC key `key_id` (signature
/// bytes that do not matter: it is dead already), `detail` its reason.
async fn dead_signed_with(store: &dyn Store, key_id: &str, detail: &str, now: i64) -> String {
    let id = TaskId::generate().to_string();
    let task = NewTask {
        envelope: TaskEnvelope {
            id: id.clone(),
            queue: "q".into(),
            name: "report.build".into(),
            args: br#"{"n":1}"#.to_vec(),
            headers: BTreeMap::new(),
            created_at_ms: now,
            not_before_ms: None,
            expires_at_ms: None,
            max_attempts: 3,
            callback_url: None,
        },
        signature: Some(SignatureRecord {
            alg: Algorithm::HmacSha256,
            key_id: key_id.into(),
            sig: vec![7; 32],
        }),
        priority: 0,
        idempotency_key: None,
        idempotency_scope: signet_store::IdempotencyScope::Local,
        fingerprint: signet_store::Fingerprint::new(),
    };
    store.enqueue(task, now).await.unwrap();
    store
        .kill(&id, DeadReason::SignatureInvalid, detail, now)
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn resign_re_signs_only_dead_letters_whose_key_left_the_ring_and_records_it() {
    let api = api().await;
    let store = api.store.as_ref();
    let gone = dead_signed_with(
        store,
        "old",
        "unknown-key: key \"old\" is not in the ring",
        api.now(),
    )
    .await;
    let in_ring = dead_signed_with(
        store,
        "k1",
        "mismatch: the signature does not match",
        api.now(),
    )
    .await;

    // A plain replay warns that the task will die again, and says what to do.
    let (status, replayed) = api
        .call(
            &api.keys.admin,
            Method::POST,
            "/v1/dead-letters/replay",
            Some(json!({"ids": [gone]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    let warnings = replayed["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{replayed}");
    let w = warnings[0].as_str().unwrap();
    assert!(w.contains("\"old\"") && w.contains("resign"), "{w}");
    // It dies again, as the warning said.
    store
        .kill(
            &gone,
            DeadReason::SignatureInvalid,
            "unknown-key: again",
            api.now(),
        )
        .await
        .unwrap();

    // Only admins may re-sign.
    let body = json!({"ids": [gone, in_ring], "resign": true});
    let (status, refused) = api
        .call(
            &api.keys.publish,
            Method::POST,
            "/v1/dead-letters/replay",
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");

    api.tick();
    let (status, out) = api
        .call(
            &api.keys.admin,
            Method::POST,
            "/v1/dead-letters/replay",
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["ids"], json!([gone]), "{out}");
    assert_eq!(
        out["resigned"],
        json!([{"id": gone, "from_key_id": "old", "to_key_id": "k1"}])
    );
    assert_eq!(out["refused"][0]["id"], in_ring.as_str());
    let reason = out["refused"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("in the key ring"), "{reason}");

    // The re-signed task is back in its queue with a signature the ring
    // verifies over the unchanged envelope, and its history says who did it.
    let row = store.task(&gone).await.unwrap().unwrap();
    assert_eq!(row.state, signet_store::TaskState::Available);
    let sig = row.signature.clone().unwrap();
    let ring: KeyRing = SigningConfig::from_vars([
        ("SIGNET_SIGNING_KEYS", format!("k1:{HMAC_KEY_B64}")),
        ("SIGNET_SIGNING_ACTIVE_KEY", "k1".to_owned()),
    ])
    .unwrap()
    .ring;
    row.envelope
        .verify(sig.alg, &sig.key_id, &sig.sig, &ring)
        .expect("the new signature verifies");
    assert_eq!(row.envelope.args, br#"{"n":1}"#);
    let (status, shown) = api
        .call(
            &api.keys.admin,
            Method::GET,
            &format!("/v1/tasks/{gone}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["signature"]["key_id"], "k1");
    assert_eq!(
        strs(&shown["history"], "kind"),
        [
            "dead-lettered",
            "replayed",
            "dead-lettered",
            "resigned",
            "replayed"
        ],
        "{shown}"
    );
    let resigned = &shown["history"][3];
    assert_eq!(resigned["from_key_id"], "old");
    assert_eq!(resigned["to_key_id"], "k1");
    assert!(resigned["actor"].as_str().unwrap().contains("(admin)"));

    // The refused one is untouched.
    let row = store.task(&in_ring).await.unwrap().unwrap();
    assert_eq!(row.state, signet_store::TaskState::Dead);
    assert_eq!(row.signature.unwrap().sig, vec![7; 32]);
}
