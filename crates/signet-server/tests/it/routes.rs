//! Every route through `app(state).oneshot(request)` over a temp-file SQLite
//! store: success, 401 without or with a bad key, 403 with the wrong scope,
//! and each bad-input status.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use signet_server::config::ServerConfig;
use signet_server::create_api_key;
use signet_server::serve::detached_metrics_handle;
use signet_server::{app, AppState, Scope, Signing};
use signet_sign::{SigningConfig, TaskEnvelope};
use signet_store::{DeadReason, Store, TaskState};

use crate::support::{request, send, Reply, TempStore};

pub(crate) const HMAC_KEY_B64: &str = "c2lnbmV0LXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmchISE=";

pub(crate) struct Harness {
    pub(crate) app: Router,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) admin: String,
    pub(crate) publish: String,
    pub(crate) read: String,
    _dir: tempfile::TempDir,
}

pub(crate) fn signing() -> Signing {
    let config = SigningConfig::from_vars([
        ("SIGNET_SIGNING_KEYS", format!("k1:{HMAC_KEY_B64}")),
        ("SIGNET_SIGNING_ACTIVE_KEY", "k1".to_owned()),
    ])
    .expect("signing config");
    Signing::from(config)
}

pub(crate) async fn harness_with(config: ServerConfig, signing: Signing) -> Harness {
    harness_over(config, signing, |store| store).await
}

/// [`harness_with`], the server seeing the store through `wrap` (the
/// harness's `store` is the store itself).
pub(crate) async fn harness_over(
    config: ServerConfig,
    signing: Signing,
    wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
) -> Harness {
    let temp = TempStore::new();
    let keys = temp.keys(1_700_000_000_000).await;
    let state = AppState::new(
        wrap(Arc::clone(&temp.store)),
        config,
        signing,
        detached_metrics_handle(),
    );
    Harness {
        app: app(state),
        store: temp.store,
        read: keys.read,
        publish: keys.publish,
        admin: keys.admin,
        _dir: temp.dir,
    }
}

pub(crate) async fn harness() -> Harness {
    harness_with(ServerConfig::default(), signing()).await
}

impl Harness {
    /// The same keys and data, served through `store` (a wrapper around
    /// this harness's store).
    pub(crate) fn with_store(h: Harness, store: Arc<dyn Store>) -> Harness {
        let state = AppState::new(
            Arc::clone(&store),
            ServerConfig::default(),
            signing(),
            detached_metrics_handle(),
        );
        Harness {
            app: app(state),
            store,
            ..h
        }
    }

    pub(crate) async fn send(&self, request: Request<Body>) -> Reply {
        send(&self.app, request).await
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        self.send(request(method, uri, key, &[], body.map(str::to_owned)))
            .await
    }

    /// `POST /v1/tasks` with the publish key.
    async fn post_task(&self, body: &str) -> Reply {
        self.call(Method::POST, "/v1/tasks", Some(&self.publish), Some(body))
            .await
    }

    /// `GET` with the read key.
    pub(crate) async fn get(&self, uri: &str) -> Reply {
        self.call(Method::GET, uri, Some(&self.read), None).await
    }

    /// `POST` with the admin key.
    async fn admin_post(&self, uri: &str, body: Option<&str>) -> Reply {
        self.call(Method::POST, uri, Some(&self.admin), body).await
    }

    pub(crate) async fn enqueue(&self, body: Value) -> Value {
        let r = self.post_task(&body.to_string()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.json()
    }

    /// Enqueues, claims and dead-letters one task; returns its id.
    async fn dead_letter(&self, queue: &str) -> String {
        let task = self.enqueue(json!({"queue": queue, "task": "t"})).await;
        let id = task["id"].as_str().unwrap().to_owned();
        self.store
            .kill(&id, DeadReason::PayloadInvalid, "bad args", 1)
            .await
            .unwrap();
        id
    }
}

/// Every `/v1` route with a body that would succeed, for the auth checks.
fn v1_routes() -> Vec<(Method, &'static str, Option<&'static str>, Scope)> {
    vec![
        (
            Method::POST,
            "/v1/tasks",
            Some(r#"{"queue":"q","task":"t"}"#),
            Scope::Publish,
        ),
        (
            Method::POST,
            "/v1/tasks/batch",
            Some(r#"{"tasks":[{"queue":"q","task":"t"}]}"#),
            Scope::Publish,
        ),
        (Method::GET, "/v1/tasks", None, Scope::Read),
        (
            Method::GET,
            "/v1/tasks/task_0190000000007000800000000000000a",
            None,
            Scope::Read,
        ),
        (
            Method::POST,
            "/v1/tasks/task_0190000000007000800000000000000a/cancel",
            None,
            Scope::Admin,
        ),
        (
            Method::POST,
            "/v1/tasks/task_0190000000007000800000000000000a/retry",
            None,
            Scope::Admin,
        ),
        (Method::GET, "/v1/queues", None, Scope::Read),
        (Method::POST, "/v1/queues/q/pause", None, Scope::Admin),
        (Method::POST, "/v1/queues/q/resume", None, Scope::Admin),
        (Method::GET, "/v1/keys/status", None, Scope::Read),
        (Method::GET, "/v1/dead-letters", None, Scope::Read),
        (
            Method::GET,
            "/v1/dead-letters/task_0190000000007000800000000000000a",
            None,
            Scope::Read,
        ),
        (
            Method::POST,
            "/v1/dead-letters/replay",
            Some(r#"{"ids":["task_x1"]}"#),
            Scope::Admin,
        ),
        (
            Method::POST,
            "/v1/dead-letters/purge",
            Some(r#"{"ids":["task_x1"]}"#),
            Scope::Admin,
        ),
        (
            Method::POST,
            "/v1/schedules",
            Some(r#"{"name":"s","cron":"* * * * *","task":{"queue":"q","task":"t"}}"#),
            Scope::Admin,
        ),
        (Method::GET, "/v1/schedules", None, Scope::Read),
        (Method::GET, "/v1/schedules/sch_missing", None, Scope::Read),
        (
            Method::PATCH,
            "/v1/schedules/sch_missing",
            Some(r#"{"cron":"0 * * * *"}"#),
            Scope::Admin,
        ),
        (
            Method::DELETE,
            "/v1/schedules/sch_missing",
            None,
            Scope::Admin,
        ),
        (
            Method::POST,
            "/v1/schedules/sch_missing/pause",
            None,
            Scope::Admin,
        ),
        (
            Method::POST,
            "/v1/schedules/sch_missing/resume",
            None,
            Scope::Admin,
        ),
        (
            Method::POST,
            "/v1/messages",
            Some(r#"{"url":"https://example.com/hook","body":"hi"}"#),
            Scope::Publish,
        ),
        (
            Method::POST,
            "/v1/messages/batch",
            Some(r#"{"messages":[{"url":"https://example.com/hook","body":"hi"}]}"#),
            Scope::Publish,
        ),
        (Method::GET, "/v1/messages", None, Scope::Read),
        (Method::GET, "/v1/messages/msg_missing", None, Scope::Read),
        (
            Method::POST,
            "/v1/messages/msg_missing/retry",
            None,
            Scope::Admin,
        ),
        (
            Method::POST,
            "/v1/messages/msg_missing/resend",
            None,
            Scope::Admin,
        ),
        (
            Method::POST,
            "/v1/targets",
            Some(r#"{"name":"t1"}"#),
            Scope::Admin,
        ),
        (Method::GET, "/v1/targets", None, Scope::Admin),
        (Method::GET, "/v1/targets/tgt_missing", None, Scope::Admin),
        (
            Method::PATCH,
            "/v1/targets/tgt_missing",
            Some(r#"{"rate_limit_per_s":5}"#),
            Scope::Admin,
        ),
        (
            Method::DELETE,
            "/v1/targets/tgt_missing",
            None,
            Scope::Admin,
        ),
        (
            Method::POST,
            "/v1/targets/tgt_missing/rotate-secret",
            None,
            Scope::Admin,
        ),
        (Method::POST, "/v1/targets/reseal", None, Scope::Admin),
        // Push bindings (tests/it/push.rs).
        (
            Method::PUT,
            "/v1/queues/q/push",
            Some(r#"{"url":"https://example.com/push","target":"t1"}"#),
            Scope::Admin,
        ),
        (Method::GET, "/v1/queues/q/push", None, Scope::Read),
        (Method::DELETE, "/v1/queues/q/push", None, Scope::Admin),
        // The worker protocol (tests/it/work.rs).
        (
            Method::POST,
            "/v1/work/claim",
            Some(r#"{"queues":["q"]}"#),
            Scope::Work,
        ),
        (
            Method::POST,
            "/v1/work/heartbeat",
            Some(r#"{"lease":"x"}"#),
            Scope::Work,
        ),
        (
            Method::POST,
            "/v1/work/complete",
            Some(r#"{"lease":"x"}"#),
            Scope::Work,
        ),
        (
            Method::POST,
            "/v1/work/fail",
            Some(r#"{"lease":"x"}"#),
            Scope::Work,
        ),
        (
            Method::POST,
            "/v1/work/release",
            Some(r#"{"lease":"x"}"#),
            Scope::Work,
        ),
    ]
}

#[tokio::test]
async fn every_v1_route_needs_a_valid_key_and_the_right_scope() {
    let h = harness().await;
    let listed: Vec<(Method, String)> = documented(&h)
        .await
        .1
        .into_iter()
        .filter(|(_, p)| p.starts_with("/v1/"))
        .collect();
    assert_eq!(
        listed.len(),
        v1_routes().len(),
        "a /v1 route is missing from this test"
    );
    for (method, uri, body, needed) in v1_routes() {
        let r = h.call(method.clone(), uri, None, body).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {uri}: {}",
            r.text
        );
        assert_eq!(r.code(), "unauthorized");
        assert!(r.headers.contains_key(header::WWW_AUTHENTICATE));
        let r = h
            .call(method.clone(), uri, Some("sk_not-a-real-key"), body)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        let r = h.call(method.clone(), uri, Some("Basic abc"), body).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        for (scope, key) in [
            (Scope::Read, &h.read),
            (Scope::Publish, &h.publish),
            (Scope::Admin, &h.admin),
        ] {
            let r = h.call(method.clone(), uri, Some(key), body).await;
            if scope.allows(needed) {
                assert!(
                    r.status != StatusCode::FORBIDDEN && r.status != StatusCode::UNAUTHORIZED,
                    "{method} {uri} with {scope}: {} {}",
                    r.status,
                    r.text
                );
                assert!(
                    r.headers.contains_key("x-ratelimit-limit"),
                    "{method} {uri}"
                );
            } else {
                assert_eq!(
                    r.status,
                    StatusCode::FORBIDDEN,
                    "{method} {uri} with {scope}: {}",
                    r.text
                );
                assert_eq!(r.code(), "forbidden");
            }
        }
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused() {
    let h = harness().await;
    let store = Arc::clone(&h.store);
    let k = create_api_key(store.as_ref(), "temp", Scope::Read, 1)
        .await
        .unwrap();
    store.revoke_api_key(&k.record.id, 2).await.unwrap();
    let r = h
        .call(
            Method::GET,
            "/v1/queues",
            Some(k.secret.expose_secret()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.message().contains("revoked"), "{}", r.text);
}

#[tokio::test]
async fn enqueue_signs_and_stores_args_byte_for_byte() {
    let h = harness().await;
    let body = r#"{"queue":"emails","task":"email.send","args":{"to": "a@example.com",  "n":[1,2]},"priority":5,"max_attempts":3,"headers":{"Tenant":"acme"},"callback_url":"https://example.com/cb"}"#;
    let r = h.post_task(body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let task = r.json();
    let id = task["id"].as_str().unwrap();
    assert!(id.starts_with("task_"));
    assert_eq!(task["state"], "available");
    assert_eq!(task["queue"], "emails");
    assert_eq!(task["task"], "email.send");
    assert_eq!(task["priority"], 5);
    assert_eq!(task["max_attempts"], 3);
    assert_eq!(task["attempt"], 0);
    assert_eq!(task["headers"]["tenant"], "acme");
    assert_eq!(task["signature"]["alg"], "hmac-sha256");
    assert_eq!(task["signature"]["key_id"], "k1");
    assert!(task["created_at"].as_str().unwrap().ends_with('Z'));
    let row = h.store.task(id).await.unwrap().unwrap();
    assert_eq!(row.envelope.args, br#"{"to": "a@example.com",  "n":[1,2]}"#);
    // The stored signature verifies over the canonical bytes.
    let sig = row.signature.unwrap();
    let ring = signing().ring;
    ring.get("k1")
        .unwrap()
        .verify(&row.envelope.canonical_bytes().unwrap(), &sig.sig)
        .unwrap();

    let r = h.get(&format!("/v1/tasks/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json()["args"],
        json!({"to": "a@example.com", "n": [1, 2]})
    );
}

#[tokio::test]
async fn idempotency_key_returns_the_first_task_with_200_or_409_for_another_request() {
    let h = harness().await;
    let send = |key: &str, body: &str| {
        let extra = [("Idempotency-Key", key)];
        h.send(request(
            Method::POST,
            "/v1/tasks",
            Some(&h.publish),
            &extra,
            Some(body.to_owned()),
        ))
    };
    let body = r#"{"queue":"q","task":"a","args":{"n":1},"delay_ms":1000}"#;
    let first = send("order-42", body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    // The same request again: 200, the same body as the first answer.
    let again = send("order-42", body).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(first.json()["id"], again.json()["id"]);
    assert_eq!(first.json(), again.json());
    // Another request under the key: 409 naming the key and what differs.
    let other = send(
        "order-42",
        r#"{"queue":"q","task":"b","args":{"n":2},"delay_ms":1000}"#,
    )
    .await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.text);
    assert_eq!(other.code(), "idempotency_conflict");
    assert_eq!(
        other.message(),
        "Idempotency-Key \"order-42\" was first used with a different request (task, args differ); use a new key for a new request"
    );
    assert_eq!(
        h.store.counts().await.unwrap()[0].count(TaskState::Scheduled),
        1
    );
    let bad = send(&"x".repeat(300), r#"{"queue":"q","task":"a"}"#).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.message().contains("Idempotency-Key"));
}

/// Red team: a key that a message, or another API key's task, already
/// holds gets the caller its own task, never that row (its URL, headers
/// and body).
#[tokio::test]
async fn a_key_held_by_a_message_or_another_api_key_never_returns_that_row() {
    let h = harness().await;
    let post = |uri: &'static str, key: &str, secret: &str, body: Value| {
        let extra = [("Idempotency-Key", key)];
        h.send(request(
            Method::POST,
            uri,
            Some(secret),
            &extra,
            Some(body.to_string()),
        ))
    };
    let message = post(
        "/v1/messages",
        "shared-1",
        &h.admin,
        json!({"url": "https://hooks.example.com/in", "headers": {"authorization": "Bearer receiver-secret"}, "body": "secret body"}),
    )
    .await;
    assert_eq!(message.status, StatusCode::CREATED, "{}", message.text);
    let msg_id = message.json()["id"].as_str().unwrap().to_owned();
    assert!(msg_id.starts_with("msg_"));

    // Another API key, a task request, the message's key.
    let task_body = json!({"queue": "q", "task": "t"});
    let task = post("/v1/tasks", "shared-1", &h.publish, task_body.clone()).await;
    assert_eq!(task.status, StatusCode::CREATED, "{}", task.text);
    let task_id = task.json()["id"].as_str().unwrap().to_owned();
    assert!(task_id.starts_with("task_"), "{}", task.text);
    assert!(!task.text.contains("receiver-secret") && !task.text.contains("hooks.example.com"));
    // The message's own key holder, for a task: a task of its own too.
    let admin_task = post("/v1/tasks", "shared-1", &h.admin, task_body.clone()).await;
    assert_eq!(
        admin_task.status,
        StatusCode::CREATED,
        "{}",
        admin_task.text
    );
    assert_ne!(admin_task.json()["id"], task_id.as_str());
    // Each gets its own back on a retry.
    let retry = post("/v1/tasks", "shared-1", &h.publish, task_body).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text);
    assert_eq!(retry.json()["id"], task_id.as_str());
    // And the message stays the message's.
    let shown = h
        .call(
            Method::GET,
            &format!("/v1/messages/{msg_id}"),
            Some(&h.admin),
            None,
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
}

#[tokio::test]
async fn delay_makes_a_scheduled_task() {
    let h = harness().await;
    let task = h
        .enqueue(json!({"queue": "q", "task": "t", "delay_ms": 60_000}))
        .await;
    assert_eq!(task["state"], "scheduled");
    assert!(task["not_before"].is_string());
}

fn client_signed_body(sign_with: &[u8], key_id: &str, tamper: bool) -> String {
    client_signed_with(
        sign_with,
        key_id,
        tamper,
        "task_0190000000007000800000000000abcd",
        r#"{"amount":100}"#,
    )
}

/// A client-signed `POST /v1/tasks` body for task `id` with `args`.
fn client_signed_with(
    sign_with: &[u8],
    key_id: &str,
    tamper: bool,
    id: &str,
    args: &str,
) -> String {
    let envelope = TaskEnvelope {
        id: id.into(),
        queue: "payments".into(),
        name: "charge".into(),
        args: args.as_bytes().to_vec(),
        headers: Default::default(),
        created_at_ms: 1_700_000_000_000,
        not_before_ms: None,
        expires_at_ms: None,
        max_attempts: 7,
        callback_url: None,
    };
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(sign_with).unwrap();
    mac.update(&envelope.canonical_bytes().unwrap());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let sent_args = if tamper { r#"{"amount":1000}"# } else { args };
    format!(
        r#"{{"id":"{}","queue":"payments","task":"charge","args":{sent_args},"created_at":1700000000000,"max_attempts":7,"signature":{{"alg":"hmac-sha256","key_id":"{key_id}","sig":"{sig}"}}}}"#,
        envelope.id
    )
}

#[tokio::test]
async fn client_signed_envelopes_are_verified_at_the_door_and_stored_unchanged() {
    let h = harness().await;
    let key = base64::engine::general_purpose::STANDARD
        .decode(HMAC_KEY_B64)
        .unwrap();
    let r = h.post_task(&client_signed_body(&key, "k1", true)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.code(), "signature_invalid");
    assert!(r.message().contains("mismatch"), "{}", r.text);
    let r = h.post_task(&client_signed_body(&key, "k9", false)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.message().contains("unknown-key"), "{}", r.text);
    // Nothing was stored by the refusals.
    assert!(h
        .store
        .task("task_0190000000007000800000000000abcd")
        .await
        .unwrap()
        .is_none());

    let r = h.post_task(&client_signed_body(&key, "k1", false)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let row = h
        .store
        .task("task_0190000000007000800000000000abcd")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.envelope.args, br#"{"amount":100}"#);
    assert_eq!(row.envelope.created_at_ms, 1_700_000_000_000);
    assert_eq!(row.signature.unwrap().key_id, "k1");
    // The same id again (without an Idempotency-Key) conflicts.
    let r = h.post_task(&client_signed_body(&key, "k1", false)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);

    // With an Idempotency-Key: a client re-signing the same request (a new
    // id, as each signature brings) gets the first task back; another
    // amount under the key is an idempotency conflict naming `args`.
    let keyed = |id: &str, args: &str| {
        let body = client_signed_with(&key, "k1", false, id, args);
        h.send(request(
            Method::POST,
            "/v1/tasks",
            Some(&h.publish),
            &[("Idempotency-Key", "pay-1")],
            Some(body),
        ))
    };
    let first = keyed("task_0190000000007000800000000000aaa1", r#"{"amount":5}"#).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = keyed("task_0190000000007000800000000000aaa2", r#"{"amount":5}"#).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json()["id"], "task_0190000000007000800000000000aaa1");
    let other = keyed("task_0190000000007000800000000000aaa3", r#"{"amount":6}"#).await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.text);
    assert_eq!(other.code(), "idempotency_conflict");
    assert!(other.message().contains("(args differs)"), "{}", other.text);
}

#[tokio::test]
async fn bad_input_gets_the_right_status() {
    let h = harness().await;
    let post = |body: &str| {
        let body = body.to_owned();
        let h = &h;
        async move { h.post_task(&body).await }
    };
    // 400 malformed JSON, naming the position.
    let r = post("{\"queue\":\"q\",\n \"task\": }").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "malformed_json");
    assert!(r.message().contains("line 2 column"), "{}", r.text);
    // 400 unknown field.
    let r = post(r#"{"queue":"q","task":"t","colour":"red"}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "unknown_field");
    assert!(r.message().contains("colour"));
    // 422 invalid values, naming the field.
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let later_expiry_before_start = format!(
        r#"{{"queue":"q","task":"t","not_before":{},"expires_at":{}}}"#,
        now_ms + 86_400_000,
        now_ms + 3_600_000
    );
    for (body, field) in [
        (r#"{"queue":"bad queue","task":"t"}"#, "queue"),
        (r#"{"queue":"","task":"t"}"#, "queue"),
        (r#"{"queue":"q","task":""}"#, "task"),
        (
            r#"{"queue":"q","task":"t","max_attempts":0}"#,
            "max_attempts",
        ),
        (
            r#"{"queue":"q","task":"t","max_attempts":1001}"#,
            "max_attempts",
        ),
        (
            r#"{"queue":"q","task":"t","max_attempts":"x"}"#,
            "max_attempts",
        ),
        (r#"{"queue":"q","task":"t","priority":5000}"#, "priority"),
        (r#"{"queue":"q","task":"t","delay_ms":-1}"#, "delay_ms"),
        (
            r#"{"queue":"q","task":"t","delay_ms":999999999999}"#,
            "delay_ms",
        ),
        (
            r#"{"queue":"q","task":"t","delay_ms":5,"not_before":"2099-01-01T00:00:00Z"}"#,
            "delay_ms",
        ),
        (
            r#"{"queue":"q","task":"t","expires_at":"2001-01-01T00:00:00Z"}"#,
            "expires_at",
        ),
        (later_expiry_before_start.as_str(), "expires_at"),
        (
            r#"{"queue":"q","task":"t","not_before":"2999-01-01T00:00:00Z"}"#,
            "not_before",
        ),
        (
            r#"{"queue":"q","task":"t","not_before":"tomorrow"}"#,
            "not_before",
        ),
        (
            r#"{"queue":"q","task":"t","headers":{"bad header":"x"}}"#,
            "headers",
        ),
        (
            r#"{"queue":"q","task":"t","headers":{"A":"1","a":"2"}}"#,
            "headers",
        ),
        (
            r#"{"queue":"q","task":"t","callback_url":"ftp://x"}"#,
            "callback_url",
        ),
        (r#"{"queue":"q","task":"t","id":"task_abc"}"#, "id"),
        (
            r#"{"queue":"q","task":"t","signature":{"alg":"hmac-sha256","key_id":"k1","sig":"AAAA"}}"#,
            "id",
        ),
        (r#"{"task":"t"}"#, "body"),
    ] {
        let r = post(body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert!(
            r.message().starts_with(field) || r.message().contains(field),
            "{body}: {}",
            r.text
        );
    }
    // 415 wrong content type.
    let r = h
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/v1/tasks")
                .header(header::AUTHORIZATION, format!("Bearer {}", h.publish))
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from(r#"{"queue":"q","task":"t"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.code(), "unsupported_media_type");
    // 413 over the body limit.
    let big = format!(
        r#"{{"queue":"q","task":"t","args":"{}"}}"#,
        "x".repeat(1024 * 1024 + 10)
    );
    let r = post(&big).await;
    assert_eq!(
        r.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        &r.text[..r.text.len().min(200)]
    );
    assert_eq!(r.code(), "payload_too_large");
    // No half-written task: nothing above was stored.
    let list = h.get("/v1/tasks").await;
    assert_eq!(list.json()["items"].as_array().unwrap().len(), 0);
    // 404 for unknown and malformed ids, unknown routes; 405 wrong method.
    for uri in [
        "/v1/tasks/task_0190000000007000800000000000ffff",
        "/v1/tasks/nonsense",
        "/v1/dead-letters/nonsense",
    ] {
        let r = h.get(uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(r.code(), "not_found");
    }
    let r = h.call(Method::GET, "/v2/nothing", None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");
    let r = h
        .call(Method::DELETE, "/v1/queues", Some(&h.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    // Query errors.
    let r = h.get("/v1/tasks?state=flying").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.message().starts_with("state"));
    let r = h.get("/v1/tasks?limit=0").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = h.get("/v1/tasks?colour=red").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h.get("/v1/dead-letters?reason=bored").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // An empty range, as replay and purge refuse it.
    for range in ["since=2000&until=1000", "since=1000&until=1000"] {
        let r = h.get(&format!("/v1/dead-letters?{range}")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{range}");
        assert_eq!(r.message(), "until: must be after since", "{range}");
    }
    let r = h.get("/v1/dead-letters?since=1000&until=1001").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn list_pages_with_cursor_and_filters() {
    let h = harness().await;
    for i in 0..5 {
        h.enqueue(json!({"queue": if i % 2 == 0 { "even" } else { "odd" }, "task": "t"}))
            .await;
    }
    let r = h.get("/v1/tasks?queue=even&limit=2").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let page = r.json();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let r = h
        .get(&format!("/v1/tasks?queue=even&limit=2&cursor={cursor}"))
        .await;
    let page = r.json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["next_cursor"].is_null());
    let r = h.get("/v1/tasks?state=available").await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 5);
}

/// The ids of a page's items (`GET /v1/tasks`) or queue names
/// (`GET /v1/queues`).
fn listed(page: &Value, list: &str, field: &str) -> Vec<String> {
    page[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list}: {page}"))
        .iter()
        .map(|i| i[field].as_str().unwrap().to_owned())
        .collect()
}

/// `GET /v1/tasks` and `GET /v1/queues` show the user's work: tasks newest
/// first, Signet's own queue (messages, callbacks) only when named or asked
/// for.
#[tokio::test]
async fn task_and_queue_lists_show_the_users_work_newest_first() {
    let h = harness().await;
    let message = h
        .call(
            Method::POST,
            "/v1/messages",
            Some(&h.publish),
            Some(r#"{"url": "https://hooks.example.com/in", "body": "hi"}"#),
        )
        .await;
    assert_eq!(message.status, StatusCode::CREATED, "{}", message.text);
    let msg_id = message.json()["id"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for queue in ["mail", "reports", "mail"] {
        let t = h.enqueue(json!({"queue": queue, "task": "t"})).await;
        tasks.push(t["id"].as_str().unwrap().to_owned());
    }
    let newest_first: Vec<String> = tasks.iter().rev().cloned().collect();

    let r = h.get("/v1/tasks").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(listed(&r.json(), "items", "id"), newest_first, "{}", r.text);
    // Paged: the cursor goes on where the page ended.
    let first = h.get("/v1/tasks?limit=2").await.json();
    assert_eq!(listed(&first, "items", "id"), newest_first[..2]);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let rest = h.get(&format!("/v1/tasks?limit=2&cursor={cursor}")).await;
    assert_eq!(listed(&rest.json(), "items", "id"), newest_first[2..]);

    let mut everything = newest_first.clone();
    everything.push(msg_id.clone());
    let r = h.get("/v1/tasks?include_internal=true").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(listed(&r.json(), "items", "id"), everything, "{}", r.text);
    let r = h.get("/v1/tasks?include_internal=false").await;
    assert_eq!(listed(&r.json(), "items", "id"), newest_first);
    let r = h.get("/v1/tasks?queue=signet:messages").await;
    assert_eq!(listed(&r.json(), "items", "id"), [msg_id.as_str()]);
    let r = h.get("/v1/tasks?include_internal=yes").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.message().starts_with("include_internal"), "{}", r.text);

    let r = h.get("/v1/queues").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(listed(&r.json(), "queues", "queue"), ["mail", "reports"]);
    let r = h.get("/v1/queues?include_internal=true").await;
    assert_eq!(
        listed(&r.json(), "queues", "queue"),
        ["mail", "reports", "signet:messages"]
    );
    let r = h.get("/v1/queues?queue=signet:messages").await;
    let only = r.json();
    assert_eq!(listed(&only, "queues", "queue"), ["signet:messages"]);
    assert_eq!(only["queues"][0]["counts"]["available"], 1, "{only}");
    let r = h.get("/v1/queues?include_internal=1").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = h.get("/v1/queues?queue=bad%20name").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    // The document names the parameter on both routes.
    let doc = h
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .json();
    for path in ["/v1/tasks", "/v1/queues"] {
        let params = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} has no parameters"));
        let p = params
            .iter()
            .find(|p| p["name"] == "include_internal")
            .unwrap_or_else(|| panic!("{path}: no include_internal"));
        assert_eq!(p["in"], "query", "{p}");
        assert!(p["description"]
            .as_str()
            .unwrap()
            .contains("signet:messages"));
    }
}

#[tokio::test]
async fn cancel_then_cancel_again_conflicts() {
    let h = harness().await;
    let task = h.enqueue(json!({"queue": "q", "task": "t"})).await;
    let uri = format!("/v1/tasks/{}/cancel", task["id"].as_str().unwrap());
    let r = h.admin_post(&uri, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["state"], "cancelled");
    let r = h.admin_post(&uri, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let r = h
        .admin_post(
            "/v1/tasks/task_0190000000007000800000000000ffff/cancel",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

#[tokio::test]
async fn queues_and_key_status() {
    let h = harness().await;
    h.enqueue(json!({"queue": "a", "task": "t"})).await;
    h.enqueue(json!({"queue": "a", "task": "t", "delay_ms": 100000}))
        .await;
    h.enqueue(json!({"queue": "b", "task": "t"})).await;
    let r = h.get("/v1/queues").await;
    assert_eq!(r.status, StatusCode::OK);
    let q = r.json();
    assert_eq!(q["queues"][0]["queue"], "a");
    assert_eq!(q["queues"][0]["counts"]["available"], 1);
    assert_eq!(q["queues"][0]["counts"]["scheduled"], 1);
    assert_eq!(q["queues"][0]["total"], 2);
    assert_eq!(q["queues"][1]["total"], 1);
    let r = h.get("/v1/keys/status").await;
    assert_eq!(r.status, StatusCode::OK);
    let k = r.json();
    assert_eq!(k["signing"], true);
    assert_eq!(k["active_key_id"], "k1");
    assert_eq!(k["keys"][0]["key_id"], "k1");
    assert_eq!(k["keys"][0]["pending"], 3);
    assert_eq!(k["keys"][0]["pending_tasks"], 3);
    assert_eq!(k["keys"][0]["pending_messages"], 0);
    assert_eq!(k["keys"][0]["active"], true);
    assert_eq!(k["keys"][0]["safe_to_retire"], false);
    assert_eq!(k["keys"][0]["advice"], "active: signs new work");
}

#[tokio::test]
async fn dead_letters_list_show_replay_purge() {
    let h = harness().await;
    let a = h.dead_letter("qa").await;
    let b = h.dead_letter("qb").await;
    let c = h.dead_letter("qb").await;
    let live = h.enqueue(json!({"queue": "qa", "task": "t"})).await;

    let r = h.get("/v1/dead-letters?queue=qb").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 2);
    let r = h
        .get("/v1/dead-letters?reason=payload-invalid&limit=1")
        .await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 1);
    assert!(r.json()["next_cursor"].is_string());

    let r = h.get(&format!("/v1/dead-letters/{a}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["dead_reason"], "payload-invalid");
    assert_eq!(r.json()["dead_detail"], "bad args");
    // A live task is not a dead letter.
    let r = h
        .get(&format!(
            "/v1/dead-letters/{}",
            live["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = h
        .admin_post(
            "/v1/dead-letters/replay",
            Some(&json!({"ids": [a]}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["count"], 1);
    assert_eq!(
        h.store.task(&a).await.unwrap().unwrap().state,
        TaskState::Available
    );

    let r = h
        .admin_post(
            "/v1/dead-letters/purge",
            Some(r#"{"filter":{"queue":"qb"}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["count"], 2);
    assert!(h.store.task(&b).await.unwrap().is_none());
    assert!(h.store.task(&c).await.unwrap().is_none());

    for body in [
        r#"{}"#,
        r#"{"ids":[],"filter":{}}"#,
        r#"{"ids":[]}"#,
        r#"{"ids":["nope"]}"#,
        r#"{"filter":{"reason":"bored"}}"#,
    ] {
        let r = h.admin_post("/v1/dead-letters/replay", Some(body)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
    }
    let r = h
        .admin_post(
            "/v1/dead-letters/purge",
            Some(r#"{"filter":{"since":1},"x":1}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn health_ready_metrics_openapi_need_no_key() {
    let h = harness().await;
    let r = h.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (StatusCode::OK, json!("ok"))
    );
    let r = h.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let r = h.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["openapi"].as_str().unwrap().starts_with("3."));
    // A closed store is not ready.
    h.store.close().await.unwrap();
    let r = h.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.code(), "unavailable");
}

/// `/openapi.json`'s `paths` object, and every `(method, path)` in it.
async fn documented(h: &Harness) -> (Value, Vec<(Method, String)>) {
    let doc = h
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .json();
    let paths = doc["paths"].clone();
    let mut operations = Vec::new();
    for (path, item) in paths.as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            operations.push((method, path.clone()));
        }
    }
    (paths, operations)
}

/// The paths `app` serves, read from the router itself. axum has no API
/// that lists routes, but a router's `Debug` output names every registered
/// path (`node: Node { paths: {RouteId(0): "/v1/tasks", …} }`); it is the
/// one witness of what is served that does not come from the document. If
/// that layout changes, this panics rather than finding nothing.
fn served_paths(app: &Router) -> std::collections::BTreeSet<String> {
    const NODE: &str = "node: Node { paths: {";
    let debug = format!("{app:?}");
    let path_router = debug
        .find("path_router: PathRouter")
        .unwrap_or_else(|| panic!("no path router in the router's Debug output: {debug}"));
    let node = debug[path_router..]
        .find(NODE)
        .unwrap_or_else(|| panic!("no route paths in the router's Debug output: {debug}"));
    // `RouteId(n): "path", …}`; paths hold braces (`{id}`) but no quotes.
    let mut rest = &debug[path_router + node + NODE.len()..];
    let mut paths = std::collections::BTreeSet::new();
    while let Some(open) = rest.find('"').filter(|&q| !rest[..q].contains('}')) {
        let len = rest[open + 1..].find('"').expect("closing quote");
        paths.insert(rest[open + 1..open + 1 + len].to_owned());
        rest = &rest[open + 1 + len + 1..];
    }
    assert!(!paths.is_empty(), "no paths read from {debug}");
    paths
}

#[tokio::test]
async fn openapi_documents_exactly_the_routes_served() {
    let h = harness().await;
    let (paths, operations) = documented(&h).await;
    let documented_paths: std::collections::BTreeSet<String> =
        operations.iter().map(|(_, p)| p.clone()).collect();
    // The console's HTML pages (`/ui…`) are not API: `ui.rs` tests them.
    let served: std::collections::BTreeSet<String> = served_paths(&h.app)
        .into_iter()
        .filter(|p| p != "/ui" && !p.starts_with("/ui/"))
        .collect();
    assert_eq!(
        served, documented_paths,
        "the paths served (left) and the paths /openapi.json documents (right) differ"
    );
    // On each path, a method is served exactly when it is documented. The
    // admin key passes the gate, so only the router answers 405 or its
    // "no route" 404; ids that exist nowhere keep every call harmless.
    for path in &documented_paths {
        let uri = path.replace("{id}", "probe");
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            let op = paths[path].get(method.as_str().to_ascii_lowercase());
            let r = h.call(method.clone(), &uri, Some(&h.admin), None).await;
            let Some(op) = op else {
                assert_eq!(
                    r.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is served but not in /openapi.json: {}",
                    r.text
                );
                continue;
            };
            let unrouted = r.status == StatusCode::METHOD_NOT_ALLOWED
                || (r.status == StatusCode::NOT_FOUND && r.message().starts_with("no route for"));
            assert!(
                !unrouted,
                "{method} {path} is in /openapi.json but not served: {}",
                r.text
            );
            if path.starts_with("/v1/") {
                assert!(
                    op.get("security").is_some(),
                    "{method} {path} does not document its bearer key"
                );
            }
        }
    }
}

#[tokio::test]
async fn rate_limits_answer_429_with_headers() {
    use signet_server::Limit;
    use std::num::NonZeroU32;
    let tight = Some(Limit {
        per_second: NonZeroU32::new(1).unwrap(),
        burst: NonZeroU32::new(2).unwrap(),
    });
    let config = ServerConfig {
        rate_limit_per_key: tight,
        ..ServerConfig::default()
    };
    let h = harness_with(config, signing()).await;
    for remaining in [1, 0] {
        let r = h.get("/v1/queues").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["x-ratelimit-limit"], "2");
        assert_eq!(
            r.headers["x-ratelimit-remaining"],
            remaining.to_string().as_str()
        );
    }
    let r = h.get("/v1/queues").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "rate_limited");
    assert_eq!(r.headers[header::RETRY_AFTER], "1");
    for h_name in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(r.headers.contains_key(h_name), "{h_name}");
    }
    // Another key has its own bucket.
    let r = h
        .call(Method::GET, "/v1/queues", Some(&h.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // Per address: the limit applies before the key is even checked.
    let config = ServerConfig {
        rate_limit_per_ip: tight,
        ..ServerConfig::default()
    };
    let h = harness_with(config, signing()).await;
    h.call(Method::GET, "/v1/queues", None, None).await;
    h.call(Method::GET, "/v1/queues", None, None).await;
    let r = h
        .call(Method::GET, "/v1/queues", Some(&h.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.message().contains("client address"));
}

#[tokio::test]
async fn unsigned_when_signing_is_off_and_refused_when_verify_only() {
    let h = harness_with(ServerConfig::default(), Signing::off()).await;
    let task = h.enqueue(json!({"queue": "q", "task": "t"})).await;
    assert!(task["signature"].is_null());

    let pk = signet_sign::Ed25519SecretKey::generate()
        .public_key()
        .to_bytes();
    let pk = base64::engine::general_purpose::STANDARD.encode(pk);
    let config =
        SigningConfig::from_vars([("SIGNET_SIGNING_PUBLIC_KEYS", format!("e1:{pk}"))]).unwrap();
    let h = harness_with(ServerConfig::default(), Signing::from(config)).await;
    let r = h.post_task(r#"{"queue":"q","task":"t"}"#).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.message().contains("verify-only"));
}

#[tokio::test]
async fn ed25519_client_signatures_verify_with_only_the_public_key() {
    use signet_sign::{Ed25519SecretKey, Key, KeyId, KeyMaterial, KeyRing};
    let secret = Ed25519SecretKey::generate();
    let public = base64::engine::general_purpose::STANDARD.encode(secret.public_key().to_bytes());
    let server_keys =
        SigningConfig::from_vars([("SIGNET_SIGNING_PUBLIC_KEYS", format!("e1:{public}"))]).unwrap();
    let h = harness_with(ServerConfig::default(), Signing::from(server_keys)).await;
    let client_ring = KeyRing::single(Key::new(
        KeyId::new("e1").unwrap(),
        KeyMaterial::Ed25519Private(secret),
    ));

    let args = r#"{"invoice":"inv_1"}"#;
    let envelope = TaskEnvelope {
        id: "task_0190000000007000800000000000ed25".into(),
        queue: "billing".into(),
        name: "invoice.send".into(),
        args: args.as_bytes().to_vec(),
        headers: TaskEnvelope::normalise_headers([("tenant", "acme")]).unwrap(),
        created_at_ms: 1_700_000_000_000,
        not_before_ms: None,
        expires_at_ms: None,
        max_attempts: 5,
        callback_url: None,
    };
    let sig = envelope.sign(&client_ring).unwrap();
    let body = |sent_args: &str| {
        json!({
            "id": envelope.id, "queue": "billing", "task": "invoice.send",
            "args": serde_json::from_str::<Value>(sent_args).unwrap(),
            "headers": {"tenant": "acme"}, "created_at": 1_700_000_000_000_i64, "max_attempts": 5,
            "signature": {"alg": "ed25519", "key_id": "e1",
                          "sig": base64::engine::general_purpose::STANDARD.encode(&sig.sig)}
        })
        .to_string()
    };
    let r = h.post_task(&body(r#"{"invoice":"inv_2"}"#)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.message().contains("mismatch"), "{}", r.text);
    let r = h.post_task(&body(args)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let row = h.store.task(&envelope.id).await.unwrap().unwrap();
    assert_eq!(row.envelope, envelope);
    assert_eq!(row.signature.unwrap().sig, sig.sig);
}

#[tokio::test]
async fn per_address_buckets_follow_forwarding_headers_only_from_trusted_proxies() {
    use axum::extract::ConnectInfo;
    use signet_server::Limit;
    use std::net::SocketAddr;
    use std::num::NonZeroU32;
    let config = ServerConfig {
        rate_limit_per_ip: Some(Limit {
            per_second: NonZeroU32::new(1).unwrap(),
            burst: NonZeroU32::new(1).unwrap(),
        }),
        trusted_proxies: "10.0.0.0/8".parse().unwrap(),
        ..ServerConfig::default()
    };
    let h = harness_with(config, signing()).await;
    let request = |peer: &str, xff: &str| {
        let mut r = Request::builder()
            .uri("/v1/queues")
            .header(header::AUTHORIZATION, format!("Bearer {}", h.read))
            .header("x-forwarded-for", xff)
            .body(Body::empty())
            .unwrap();
        r.extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        r
    };
    for (peer, xff, status) in [
        // Through the trusted proxy, two clients have a bucket each.
        ("10.0.0.1:1000", "198.51.100.1", StatusCode::OK),
        ("10.0.0.1:1001", "198.51.100.2", StatusCode::OK),
        (
            "10.0.0.1:1002",
            "198.51.100.1, 10.0.0.9",
            StatusCode::TOO_MANY_REQUESTS,
        ),
        // From an untrusted peer the header is ignored: one bucket for the peer.
        ("203.0.113.5:1", "198.51.100.3", StatusCode::OK),
        (
            "203.0.113.5:2",
            "198.51.100.4",
            StatusCode::TOO_MANY_REQUESTS,
        ),
    ] {
        assert_eq!(
            h.send(request(peer, xff)).await.status,
            status,
            "{peer} {xff}"
        );
    }
}

/// The API says what `signet keys status` says: a key added a moment ago
/// (listed after the active one) is "new", not "safe to retire" — the old
/// route had no such answer and the old CLI said the opposite.
#[tokio::test]
async fn key_status_never_calls_a_new_key_safe_to_retire() {
    let signing = Signing::from(
        SigningConfig::from_vars([
            (
                "SIGNET_SIGNING_KEYS",
                format!("k0:{HMAC_KEY_B64},k1:{HMAC_KEY_B64},k2:{HMAC_KEY_B64}"),
            ),
            ("SIGNET_SIGNING_ACTIVE_KEY", "k1".to_owned()),
        ])
        .expect("signing config"),
    );
    let h = harness_with(ServerConfig::default(), signing).await;
    let r = h.get("/v1/keys/status").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let keys = r.json()["keys"].clone();
    let view: Vec<(String, bool, bool, bool)> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key_id"].as_str().unwrap().to_owned(),
                k["active"].as_bool().unwrap(),
                k["new"].as_bool().unwrap(),
                k["safe_to_retire"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        view,
        [
            ("k0".to_owned(), false, false, true),
            ("k1".to_owned(), true, false, false),
            ("k2".to_owned(), false, true, false),
        ]
    );
}
