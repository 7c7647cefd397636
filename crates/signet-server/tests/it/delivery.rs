//! `/v1/messages` and `/v1/targets` through `app(state).oneshot(request)`:
//! publish with and without an `Idempotency-Key`, show and list; batches
//! of messages, all or none; 422s that name the field; targets whose secret
//! is in the create and rotate answers and nowhere else; `503` without a
//! master key.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use signet_runtime::{Clock, SystemClock};
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
    read: String,
    dir: tempfile::TempDir,
}

async fn api(master_key: Option<MasterKey>) -> Api {
    let temp = TempStore::new();
    let keys = temp.keys(1).await;
    let state = AppState::with_delivery(
        temp.store,
        ServerConfig::default(),
        signing(),
        detached_metrics_handle(),
        Arc::new(SystemClock) as Arc<dyn Clock>,
        DeliveryConfig {
            master_key,
            ..DeliveryConfig::default()
        },
    );
    Api {
        app: app(state),
        admin: keys.admin,
        publish: keys.publish,
        read: keys.read,
        dir: temp.dir,
    }
}

impl Api {
    /// Sends `request`: the status, the body as JSON (`Null` if it is not
    /// JSON) and as text.
    async fn send(&self, request: Request<Body>) -> (StatusCode, Value, String) {
        let r = send(&self.app, request).await;
        let value = serde_json::from_str(&r.text).unwrap_or(Value::Null);
        (r.status, value, r.text)
    }

    async fn admin(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, String) {
        let body = body.map(|b| b.to_string());
        self.send(request(method, uri, Some(&self.admin), &[], body))
            .await
    }

    async fn publish(&self, body: Value, extra: &[(&str, &str)]) -> (StatusCode, Value) {
        let body = Some(body.to_string());
        let post = request(
            Method::POST,
            "/v1/messages",
            Some(&self.publish),
            extra,
            body,
        );
        let (status, v, _) = self.send(post).await;
        (status, v)
    }

    /// `POST /v1/messages/batch` of `messages` with `key`.
    async fn batch_as(&self, key: &str, messages: &[Value]) -> (StatusCode, Value) {
        let body = Some(json!({ "messages": messages }).to_string());
        let post = request(Method::POST, "/v1/messages/batch", Some(key), &[], body);
        let (status, v, _) = self.send(post).await;
        (status, v)
    }

    async fn batch(&self, messages: &[Value]) -> (StatusCode, Value) {
        self.batch_as(&self.publish, messages).await
    }

    /// How many messages are stored.
    async fn stored(&self) -> usize {
        let (status, list, _) = self
            .admin(Method::GET, "/v1/messages?limit=1000", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list["items"].as_array().unwrap().len()
    }

    /// Asserts a 422 whose message names `field` and contains `why`.
    async fn refused(&self, body: Value, field: &str, why: &str) {
        let (status, v) = self.publish(body, &[]).await;
        assert_refused(status, &v, field, why);
    }
}

fn master() -> MasterKey {
    MasterKey::from_bytes([7; 32])
}

#[tokio::test]
async fn messages_are_published_once_per_idempotency_key_shown_and_listed() {
    let api = api(Some(master())).await;
    let body = json!({
        "url": "https://hooks.example.com/orders",
        "headers": {"X-Tenant": "acme"},
        "body": {"order": 42},
        "callback_url": "https://example.com/done",
        "delay_ms": 60_000,
    });
    let (status, first) = api
        .publish(body.clone(), &[("Idempotency-Key", "order-42")])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let id = first["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("msg_"), "{first}");
    assert_eq!(first["state"], "scheduled", "{first}");
    assert_eq!(first["signature_profile"], "standard", "{first}");
    assert_eq!(first["max_attempts"], 8, "{first}");
    assert_eq!(first["callback_url"], "https://example.com/done", "{first}");

    // The same key: the same message, 200, nothing new.
    let (status, again) = api
        .publish(body.clone(), &[("Idempotency-Key", "order-42")])
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], id.as_str());
    // The same key with another body and delay: 409 naming both.
    let mut changed = body.clone();
    changed["body"] = json!({"order": 43});
    changed["delay_ms"] = json!(1);
    let (status, conflict) = api
        .publish(changed, &[("Idempotency-Key", "order-42")])
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    assert_eq!(conflict["error"]["code"], "idempotency_conflict");
    assert_eq!(
        conflict["error"]["message"],
        "Idempotency-Key \"order-42\" was first used with a different request (body, delay_ms differ); use a new key for a new request"
    );
    // Another key: a new message.
    let (status, other) = api.publish(body, &[("Idempotency-Key", "order-43")]).await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    assert_ne!(other["id"], id.as_str());

    let (status, shown, _) = api
        .admin(Method::GET, &format!("/v1/messages/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["url"], "https://hooks.example.com/orders");
    assert_eq!(shown["attempts_made"], 0);
    assert_eq!(shown["attempts"], json!([]));

    let (status, list, _) = api.admin(Method::GET, "/v1/messages", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");

    let (status, missing, _) = api
        .admin(
            Method::GET,
            "/v1/messages/msg_0190000000007000800000000000000a",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    let (status, bad_id, _) = api.admin(Method::GET, "/v1/messages/not-an-id", None).await;
    assert!(status.is_client_error(), "{bad_id}");
}

fn batch_ids(answer: &Value) -> Vec<String> {
    answer["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_batch_of_messages_is_published_in_order_each_with_its_own_key() {
    let api = api(Some(master())).await;
    let messages: Vec<Value> = (0..5)
        .map(|n| {
            json!({
                "url": format!("https://hooks.example.com/orders/{n}"),
                "body": {"order": n},
                "idempotency_key": format!("order-{n}"),
            })
        })
        .collect();
    let (status, first) = api.batch(&messages).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let ids = batch_ids(&first);
    assert_eq!(ids.len(), 5, "{first}");
    for (n, m) in first["messages"].as_array().unwrap().iter().enumerate() {
        assert!(m["id"].as_str().unwrap().starts_with("msg_"), "{m}");
        assert_eq!(m["url"], format!("https://hooks.example.com/orders/{n}"));
        assert_eq!(m["state"], "available", "{m}");
        assert_eq!(m["existing"], false, "{m}");
    }
    assert_eq!(api.stored().await, 5);

    // Again, with one new item: the keyed ones are the first messages.
    let mut again = messages.clone();
    again.push(json!({"url": "https://hooks.example.com/orders/5"}));
    let (status, second) = api.batch(&again).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(batch_ids(&second)[..5], ids[..], "{second}");
    let existing: Vec<bool> = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["existing"].as_bool().unwrap())
        .collect();
    assert_eq!(existing, [true, true, true, true, true, false]);
    assert_eq!(api.stored().await, 6);

    // A key of the batch is the same key for POST /v1/messages, header or
    // body.
    let (status, one) = api
        .publish(messages[2].clone(), &[("Idempotency-Key", "order-2")])
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["id"], ids[2].as_str());
    let (status, one) = api.publish(messages[3].clone(), &[]).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["id"], ids[3].as_str());
    let (status, v) = api
        .publish(messages[3].clone(), &[("Idempotency-Key", "order-9")])
        .await;
    assert_refused(
        status,
        &v,
        "idempotency_key",
        "differs from the Idempotency-Key header",
    );
    assert_eq!(api.stored().await, 6);
}

#[tokio::test]
async fn a_refused_item_refuses_the_whole_batch_and_is_named() {
    let api = api(Some(master())).await;
    let ok = json!({"url": "https://example.com/ok"});
    let cases = [
        (
            json!({"url": "ftp://example.com/x"}),
            "messages[2].url",
            "http",
        ),
        (
            json!({"url": "https://example.com/", "target": "nobody"}),
            "messages[2].target",
            "nobody",
        ),
        (
            json!({"url": "https://example.com/", "headers": {"webhook-signature": "v1,forged"}}),
            "messages[2].headers.webhook-signature",
            "signature headers are Signet's",
        ),
        (
            json!({"url": "https://example.com/", "idempotency_key": ""}),
            "messages[2].idempotency_key",
            "visible ASCII",
        ),
    ];
    for (bad, field, why) in cases {
        let (status, v) = api.batch(&[ok.clone(), ok.clone(), bad]).await;
        assert_refused(status, &v, field, why);
    }
    // An unknown field is refused before anything is looked at.
    let (status, v) = api
        .batch(&[
            ok.clone(),
            json!({"url": "https://example.com/", "colour": 1}),
        ])
        .await;
    assert!(status.is_client_error(), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("colour"),
        "{v}"
    );
    // No messages, or more than 1000.
    let (status, v) = api.batch(&[]).await;
    assert_refused(status, &v, "messages", "1 to 1000 messages, got 0");
    let many = vec![json!({"url": "https://e.io/"}); 1001];
    let (status, v) = api.batch(&many).await;
    assert_refused(status, &v, "messages", "1 to 1000 messages, got 1001");
    // A batch's keys are its items'.
    let body = Some(json!({ "messages": [ok.clone()] }).to_string());
    let post = request(
        Method::POST,
        "/v1/messages/batch",
        Some(&api.publish),
        &[("Idempotency-Key", "k")],
        body,
    );
    let (status, v, _) = api.send(post).await;
    assert_refused(
        status,
        &v,
        "Idempotency-Key",
        "each message its own idempotency_key",
    );
    assert_eq!(
        api.stored().await,
        0,
        "nothing of a refused batch is stored"
    );
}

#[tokio::test]
async fn a_key_reused_with_another_request_refuses_the_batch_naming_the_item() {
    let api = api(Some(master())).await;
    let keyed = |n: u32| json!({"url": "https://example.com/a", "body": {"n": n}, "idempotency_key": "k-1"});
    // Within the batch.
    let (status, v) = api.batch(&[keyed(1), keyed(2)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("messages[1].idempotency_key: "),
        "{message}"
    );
    assert!(message.contains("body"), "{message}");
    // The same item twice is one message.
    let (status, v) = api.batch(&[keyed(1), keyed(1)]).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let ids = batch_ids(&v);
    assert_eq!(ids[0], ids[1]);
    // Against a stored message.
    let plain = json!({"url": "https://example.com/b"});
    let (status, v) = api.batch(&[plain, keyed(3)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("messages[1].idempotency_key: "),
        "{message}"
    );
    assert_eq!(api.stored().await, 1);
}

#[tokio::test]
async fn publish_keys_may_publish_batches_read_keys_may_not() {
    let api = api(Some(master())).await;
    let m = [json!({"url": "https://example.com/"})];
    let (status, v) = api.batch_as(&api.read, &m).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, v) = api.batch_as(&api.admin, &m).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(api.stored().await, 1);
}

#[tokio::test]
async fn invalid_messages_get_422_naming_the_field() {
    let api = api(Some(master())).await;
    api.refused(json!({"url": "ftp://example.com/x"}), "url", "http")
        .await;
    api.refused(
        json!({"url": "https://user:pw@example.com/"}),
        "url",
        "user",
    )
    .await;
    api.refused(
        json!({"url": "https://example.com/", "signature_profile": "carrier-pigeon"}),
        "signature_profile",
        "standard",
    )
    .await;
    api.refused(
        json!({"url": "https://example.com/", "target": "nobody"}),
        "target",
        "nobody",
    )
    .await;
    api.refused(
        json!({"url": "https://example.com/", "max_attempts": 0}),
        "max_attempts",
        "1",
    )
    .await;
    api.refused(
        json!({"url": "https://example.com/", "headers": {"webhook-signature": "v1,forged"}}),
        "headers.webhook-signature",
        "signature headers are Signet's",
    )
    .await;
    // Malformed JSON is a 400, an unknown field too.
    let (status, v) = api
        .publish(json!({"url": "https://example.com/", "colour": 1}), &[])
        .await;
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
        "{v}"
    );
    let (status, v) = api
        .publish(
            json!({"url": "https://example.com/"}),
            &[("Idempotency-Key", "")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

#[tokio::test]
async fn a_target_secret_is_shown_at_creation_and_rotation_and_never_again() {
    let api = api(Some(master())).await;
    let secret = "whsec_c2VydmVyLXRlc3QtdGFyZ2V0LXNlY3JldC0zMi1ieXRlcyE=";
    let (status, created, created_text) = api
        .admin(
            Method::POST,
            "/v1/targets",
            Some(json!({"name": "orders", "url_prefix": "https://hooks.example.com/", "secret": secret, "rate_limit_per_s": 50})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created_text}");
    assert_eq!(created["secret"], secret);
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("tgt_"), "{created}");
    let fingerprint = created["secret_fingerprint"].as_str().unwrap().to_owned();

    // A generated secret is a whsec_ secret, different each time.
    let (status, generated, _) = api
        .admin(
            Method::POST,
            "/v1/targets",
            Some(json!({"name": "generated"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{generated}");
    let generated_secret = generated["secret"].as_str().unwrap().to_owned();
    assert!(generated_secret.starts_with("whsec_"), "{generated}");

    // The name is taken.
    let (status, taken, _) = api
        .admin(Method::POST, "/v1/targets", Some(json!({"name": "orders"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{taken}");

    // Messages to the target must match its prefix.
    api.refused(
        json!({"url": "https://elsewhere.example.com/", "target": "orders"}),
        "url",
        "https://hooks.example.com/",
    )
    .await;
    let (status, v) = api
        .publish(json!({"url": "https://hooks.example.com/a", "target": "orders", "signature_profile": "github"}), &[])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    // Rotation answers a new secret; the fingerprint changes.
    let (status, rotated, rotated_text) = api
        .admin(
            Method::POST,
            &format!("/v1/targets/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated_text}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert!(
        new_secret.starts_with("whsec_") && new_secret != secret,
        "{rotated}"
    );
    assert_ne!(rotated["secret_fingerprint"], fingerprint.as_str());

    // Every read after that: no secret, in any form.
    let raw = &secret["whsec_".len()..];
    let new_raw = &new_secret["whsec_".len()..];
    let patch = json!({"rate_limit_per_s": 10, "max_concurrency": 4});
    for (method, uri, body) in [
        (Method::GET, format!("/v1/targets/{id}"), None),
        (Method::GET, "/v1/targets".to_owned(), None),
        (Method::PATCH, format!("/v1/targets/{id}"), Some(patch)),
        (Method::GET, "/v1/messages".to_owned(), None),
    ] {
        let (status, _, text) = api.admin(method.clone(), &uri, body).await;
        assert_eq!(status, StatusCode::OK, "{method} {uri}: {text}");
        for s in [
            secret,
            raw,
            new_secret.as_str(),
            new_raw,
            generated_secret.as_str(),
        ] {
            assert!(!text.contains(s), "{method} {uri} shows a secret: {text}");
        }
        assert!(!text.contains("\"secret\""), "{method} {uri}: {text}");
    }
    let (_, shown, _) = api
        .admin(Method::GET, &format!("/v1/targets/{id}"), None)
        .await;
    assert_eq!(shown["rate_limit_per_s"], 10, "{shown}");
    assert_eq!(shown["max_concurrency"], 4, "{shown}");

    // Nor is any secret in clear in the database files.
    for file in std::fs::read_dir(api.dir.path()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        for s in [secret, raw, new_secret.as_str(), new_raw] {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "a database file holds a target secret in clear"
            );
        }
    }

    // Bad input names the field.
    let (status, v, _) = api
        .admin(
            Method::POST,
            "/v1/targets",
            Some(json!({"name": "bad name!"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, v, _) = api
        .admin(
            Method::POST,
            "/v1/targets",
            Some(json!({"name": "short", "secret": "whsec_c2hvcnQ="})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(!v.to_string().contains("c2hvcnQ"), "{v}");
    // A whsec_ secret that does not decode was stored, then every publish
    // failed; it is refused at create and at rotation.
    for bad in ["whsec_!!!!!!!!!!!!!!!!!!!!", "whsec_c2hvcnQtc2VjcmV0"] {
        let (status, v, _) = api
            .admin(
                Method::POST,
                "/v1/targets",
                Some(json!({"name": "undecodable", "secret": bad})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert!(v.to_string().contains("secret: "), "{v}");
        assert!(!v.to_string().contains(&bad[6..]), "{v}");
        let (status, v, _) = api
            .admin(
                Method::POST,
                &format!("/v1/targets/{id}/rotate-secret"),
                Some(json!({"secret": bad})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    }

    // Delete (a message published to it above is still pending: forced,
    // and the answer says so), then it is gone.
    let (status, v, _) = api
        .admin(
            Method::DELETE,
            &format!("/v1/targets/{id}?force=true"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["left_behind"]["pending_messages"], 1, "{v}");
    let (status, _, _) = api
        .admin(Method::GET, &format!("/v1/targets/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn targets_need_a_master_key() {
    let api = api(None).await;
    let (status, v, _) = api
        .admin(Method::POST, "/v1/targets", Some(json!({"name": "orders"})))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "not_configured", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SIGNET_MASTER_KEY"),
        "{v}"
    );
    // Messages signed with the server's key ring still work.
    let (status, v) = api
        .publish(json!({"url": "https://example.com/hook"}), &[])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
}

/// `POST /v1/targets/reseal` re-seals one batch a request: the first
/// answer counts the targets, each names where the next starts, the last
/// says `null`; a bad batch, a body that is not JSON and a server without
/// a master key are refused.
#[tokio::test]
async fn targets_are_resealed_one_batch_a_request() {
    let server = api(Some(master())).await;
    for name in ["a", "b", "c"] {
        let (status, v, _) = server
            .admin(Method::POST, "/v1/targets", Some(json!({"name": name})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let mut after: Option<String> = None;
    let mut checked = 0;
    for page in 0.. {
        let mut body = json!({"batch": 2, "dry_run": true});
        if let Some(a) = &after {
            body["after"] = json!(a);
        }
        let (status, v, text) = server
            .admin(Method::POST, "/v1/targets/reseal", Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(
            v["total"],
            if page == 0 { json!(3) } else { Value::Null },
            "{v}"
        );
        assert_eq!(v["already_current"], v["checked"], "{v}");
        assert_eq!(v["master_key"], master().fingerprint().as_str(), "{v}");
        checked += v["checked"].as_u64().unwrap();
        match v["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
        assert!(page < 2, "more pages than targets: {v}");
    }
    assert_eq!(checked, 3);
    // No body: the defaults, every target in one batch.
    let (status, v, _) = server.admin(Method::POST, "/v1/targets/reseal", None).await;
    assert_eq!(
        (status, v["checked"].clone(), v["next_after"].clone()),
        (StatusCode::OK, json!(3), Value::Null)
    );

    let (status, v, _) = server
        .admin(
            Method::POST,
            "/v1/targets/reseal",
            Some(json!({"batch": 0})),
        )
        .await;
    assert_refused(status, &v, "batch", "from 1 to 10000");
    let text = request(
        Method::POST,
        "/v1/targets/reseal",
        Some(&server.admin),
        &[("content-type", "text/plain")],
        Some("x".into()),
    );
    let (status, _, _) = server.send(text).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let none = api(None).await;
    let (status, v, _) = none.admin(Method::POST, "/v1/targets/reseal", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
}
