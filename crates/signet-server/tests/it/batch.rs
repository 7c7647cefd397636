//! `POST /v1/tasks/batch`: all or nothing, at most 1000 tasks, an
//! idempotency key per item, client signatures verified at the door, and
//! the scopes that may call it.

use axum::http::{Method, StatusCode};
use base64::Engine;
use serde_json::{json, Value};
use signet_server::config::DEFAULT_MAX_BODY_BYTES;
use signet_server::{create_api_key, Scope};
use signet_sign::{SigningConfig, TaskEnvelope};
use signet_store::TaskFilter;

use crate::routes::{harness, Harness, HMAC_KEY_B64};
use crate::support::{assert_refused, request, Reply};

const BATCH: &str = "/v1/tasks/batch";

impl Harness {
    /// `POST /v1/tasks/batch` with `key` and `tasks`.
    async fn batch_as(&self, key: &str, tasks: &[Value]) -> Reply {
        let body = json!({ "tasks": tasks }).to_string();
        self.call(Method::POST, BATCH, Some(key), Some(&body)).await
    }

    async fn batch(&self, tasks: &[Value]) -> Reply {
        self.batch_as(&self.publish, tasks).await
    }

    /// Every task stored, Signet's own queue left out.
    async fn stored(&self) -> usize {
        let page = self
            .store
            .list_tasks(TaskFilter {
                limit: signet_store::MAX_PAGE,
                ..TaskFilter::default()
            })
            .await
            .unwrap();
        page.items.len()
    }
}

fn task(n: usize) -> Value {
    json!({"queue": "batch", "task": "email.send", "args": {"n": n, "to": format!("user{n}@example.com")}})
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.json()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A task its client signed with the harness's HMAC key `k1`: the item
/// as sent (with `sent_args` in place of the signed args when tampered).
fn client_signed(n: usize, sent_args: Option<&str>) -> Value {
    let ring = SigningConfig::from_vars([
        ("SIGNET_SIGNING_KEYS", format!("k1:{HMAC_KEY_B64}")),
        ("SIGNET_SIGNING_ACTIVE_KEY", "k1".to_owned()),
    ])
    .unwrap()
    .ring;
    // Keys in sorted order: the item is built as a `Value`, which sorts them.
    let args = format!(r#"{{"amount":{n},"invoice":"inv_{n}"}}"#);
    let envelope = TaskEnvelope {
        id: format!("task_0190000000007000800000000{n:07x}"),
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
    let sig = envelope.sign(&ring).unwrap();
    let sent: Value = serde_json::from_str(sent_args.unwrap_or(&args)).unwrap();
    json!({
        "id": envelope.id, "queue": "billing", "task": "invoice.send", "args": sent,
        "headers": {"tenant": "acme"}, "created_at": 1_700_000_000_000_i64, "max_attempts": 5,
        "signature": {"alg": "hmac-sha256", "key_id": "k1",
                      "sig": base64::engine::general_purpose::STANDARD.encode(&sig.sig)}
    })
}

#[tokio::test]
async fn one_invalid_item_stores_nothing_and_is_named() {
    let h = harness().await;
    let mut tasks: Vec<Value> = (0..1000).map(task).collect();
    tasks[500]["queue"] = json!("no spaces allowed");
    let r = h.batch(&tasks).await;
    assert_refused(r.status, &r.json(), "tasks[500].queue", "");
    assert_eq!(h.stored().await, 0);

    // A value of the wrong type is named by its item too.
    tasks[500] = json!({"queue": "batch", "task": "t", "max_attempts": "many"});
    let r = h.batch(&tasks).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.message().contains("tasks[500].max_attempts"),
        "{}",
        r.text
    );
    assert_eq!(h.stored().await, 0);

    tasks[500] = task(500);
    let r = h.batch(&tasks).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let body = r.json();
    let answered = body["tasks"].as_array().unwrap();
    assert_eq!(answered.len(), 1000);
    for (n, t) in answered.iter().enumerate() {
        assert_eq!(t["args"]["n"], n, "in order");
        assert_eq!(t["existing"], false);
        assert_eq!(t["signature"]["key_id"], "k1", "server-signed");
    }
    assert_eq!(h.stored().await, 1000);
}

#[tokio::test]
async fn more_than_1000_or_no_tasks_are_refused() {
    let h = harness().await;
    let tasks: Vec<Value> = (0..1001).map(task).collect();
    let r = h.batch(&tasks).await;
    assert_refused(r.status, &r.json(), "tasks", "1 to 1000 tasks, got 1001");
    let r = h.batch(&[]).await;
    assert_refused(r.status, &r.json(), "tasks", "got 0");
    let r = h
        .call(
            Method::POST,
            BATCH,
            Some(&h.publish),
            Some(r#"{"task":"t"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(h.stored().await, 0);
}

#[tokio::test]
async fn a_thousand_client_signed_items_fit_the_default_body_limit() {
    let h = harness().await;
    let tasks: Vec<Value> = (0..1000)
        .map(|n| {
            let mut t = client_signed(n, None);
            t["idempotency_key"] = json!(format!("invoice-{n:04}-of-a-long-running-import"));
            t
        })
        .collect();
    let body = json!({ "tasks": tasks }).to_string();
    assert!(
        body.len() * 2 < DEFAULT_MAX_BODY_BYTES,
        "{} bytes: 1000 ordinary items should fit twice in the default limit",
        body.len()
    );
    let r = h.batch(&tasks).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(h.stored().await, 1000);
}

#[tokio::test]
async fn each_item_has_its_own_idempotency_key() {
    let h = harness().await;
    let keyed = |n: usize, key: &str| {
        let mut t = task(n);
        t["idempotency_key"] = json!(key);
        t
    };
    let first = h.batch(&[keyed(1, "k-1"), task(2)]).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let first_ids = ids(&first);

    // The same key and request again: that item is the first task.
    let again = h.batch(&[keyed(1, "k-1"), keyed(3, "k-3")]).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    let body = again.json();
    assert_eq!(body["tasks"][0]["id"], first_ids[0].as_str());
    assert_eq!(body["tasks"][0]["existing"], true);
    assert_eq!(body["tasks"][1]["existing"], false);
    assert_eq!(h.stored().await, 3);

    // A key reused with another request refuses the whole batch, naming
    // the item; the new item before it is not stored.
    let r = h.batch(&[keyed(4, "k-4"), keyed(99, "k-1")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.code(), "idempotency_conflict");
    assert!(
        r.message().starts_with("tasks[1].idempotency_key:"),
        "{}",
        r.text
    );
    assert!(r.message().contains("args"), "{}", r.text);
    assert_eq!(h.stored().await, 3);

    // Within one batch: the same request twice is one task, another
    // request under the same key refuses the batch naming the later item.
    let r = h.batch(&[keyed(5, "k-5"), keyed(5, "k-5")]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let body = r.json();
    assert_eq!(body["tasks"][0]["id"], body["tasks"][1]["id"]);
    assert_eq!(body["tasks"][1]["existing"], true);
    let r = h.batch(&[task(6), keyed(7, "k-7"), keyed(8, "k-7")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(
        r.message().starts_with("tasks[2].idempotency_key:"),
        "{}",
        r.text
    );
    assert_eq!(h.stored().await, 4);

    // Keys are the API key's: another key's "k-1" is a new task.
    let r = h.batch_as(&h.admin, &[keyed(1, "k-1")]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_ne!(ids(&r)[0], first_ids[0]);

    // A bad key is named as the item's field; a batch-wide header is refused.
    let r = h.batch(&[task(9), keyed(9, "has space")]).await;
    assert_refused(
        r.status,
        &r.json(),
        "tasks[1].idempotency_key",
        "visible ASCII",
    );
    let body = json!({ "tasks": [task(10)] }).to_string();
    let r = h
        .send(request(
            Method::POST,
            BATCH,
            Some(&h.publish),
            &[("idempotency-key", "whole-batch")],
            Some(body),
        ))
        .await;
    assert_refused(
        r.status,
        &r.json(),
        "Idempotency-Key",
        "each task its own idempotency_key",
    );
    assert_eq!(h.stored().await, 5);
}

#[tokio::test]
async fn client_signed_items_are_verified_before_anything_is_stored() {
    let h = harness().await;
    let tampered = client_signed(3, Some(r#"{"amount":3000,"invoice":"inv_3"}"#));
    let r = h
        .batch(&[
            task(0),
            client_signed(1, None),
            client_signed(2, None),
            tampered,
        ])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.code(), "signature_invalid");
    assert!(r.message().contains("tasks[3].signature"), "{}", r.text);
    assert!(r.message().contains("mismatch"), "{}", r.text);
    assert_eq!(h.stored().await, 0);

    // A client-signed item breaks the same rules as on POST /v1/tasks.
    let mut delayed = client_signed(4, None);
    delayed["delay_ms"] = json!(1000);
    let r = h.batch(&[task(0), delayed]).await;
    assert_refused(r.status, &r.json(), "tasks[1].delay_ms", "client signature");

    let r = h.batch(&[task(0), client_signed(1, None)]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = ids(&r)[1].clone();
    let row = h.store.task(&id).await.unwrap().unwrap();
    let sent = client_signed(1, None);
    let sig = row.signature.unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(&sig.sig),
        sent["signature"]["sig"].as_str().unwrap(),
        "stored unchanged"
    );
    assert_eq!(row.envelope.args, br#"{"amount":1,"invoice":"inv_1"}"#);
}

#[tokio::test]
async fn publish_work_and_admin_keys_may_batch_read_may_not() {
    let h = harness().await;
    let work = create_api_key(h.store.as_ref(), "worker", Scope::Work, 1_700_000_000_000)
        .await
        .unwrap();
    assert_eq!(work.record.scope, "work");
    let r = h.batch_as(&h.read, &[task(0)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(h.stored().await, 0);
    for key in [&h.publish, work.secret.expose_secret(), &h.admin] {
        let r = h.batch_as(key, &[task(1)]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = h.call(Method::POST, BATCH, None, Some("{}")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(h.stored().await, 3);
}

#[tokio::test]
async fn post_tasks_takes_the_key_in_the_header_or_the_body() {
    let h = harness().await;
    let mut body = task(1);
    body["idempotency_key"] = json!("single-1");
    let first = h.enqueue(body.clone()).await;
    let r = h
        .send(request(
            Method::POST,
            "/v1/tasks",
            Some(&h.publish),
            &[("idempotency-key", "single-1")],
            Some(task(1).to_string()),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["id"], first["id"]);
    let r = h
        .send(request(
            Method::POST,
            "/v1/tasks",
            Some(&h.publish),
            &[("idempotency-key", "single-2")],
            Some(body.to_string()),
        ))
        .await;
    assert_refused(r.status, &r.json(), "idempotency_key", "header");
    assert_eq!(h.stored().await, 1);
}
