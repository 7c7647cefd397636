//! A message's headers, body and URL query carry the receiver's
//! credentials: every route that can show a message shows them to admin
//! keys only (issue 12, red-team item "a read key sees every message's
//! headers and body").

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::json;
use signet_runtime::CallbackService;
use signet_server::config::ServerConfig;
use signet_server::serve::detached_metrics_handle;
use signet_server::{app, AppState};
use signet_store::{DeadReason, MESSAGE_QUEUE};

use crate::routes::{harness, signing, Harness};
use crate::support::{request, send, TempStore};

/// What the published message carries for its receiver, one marker per
/// place it can travel.
const HEADER_SECRET: &str = "hdr-s3cret";
const BODY_SECRET: &str = "body-s3cret";
const QUERY_SECRET: &str = "query-s3cret";

fn leaks(text: &str) -> Vec<&'static str> {
    [HEADER_SECRET, BODY_SECRET, QUERY_SECRET]
        .into_iter()
        .filter(|s| text.contains(s))
        .collect()
}

/// Publishes a message whose headers, body and URL query hold secrets;
/// returns its id.
async fn publish_secret_message(h: &Harness) -> String {
    let body = json!({
        "url": format!("https://receiver.example/hook?code={QUERY_SECRET}&v=2"),
        "headers": {"authorization": format!("Bearer {HEADER_SECRET}")},
        "body": format!("token={BODY_SECRET}"),
    });
    let r = h
        .call(
            Method::POST,
            "/v1/messages",
            Some(&h.publish),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // The publisher's own answer does not echo them either.
    assert!(leaks(&r.text).is_empty(), "{}", r.text);
    r.json()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn message_payloads_are_shown_to_admin_keys_only_on_every_route() {
    let h = harness().await;
    let id = publish_secret_message(&h).await;
    // A non-JSON-args task beside it keeps showing its args to read keys.
    let task = h
        .enqueue(json!({"queue": "q", "task": "t", "args": {"n": 1}}))
        .await;
    let task_id = task["id"].as_str().unwrap().to_owned();

    let live_routes = [
        format!("/v1/tasks/{id}"),
        "/v1/tasks".to_owned(),
        format!("/v1/tasks?queue={MESSAGE_QUEUE}"),
        "/v1/messages".to_owned(),
        format!("/v1/messages/{id}"),
    ];
    for key in [&h.read, &h.publish] {
        for uri in &live_routes {
            let r = h.call(Method::GET, uri, Some(key), None).await;
            assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text);
            assert!(
                leaks(&r.text).is_empty(),
                "{uri} leaks {:?}: {}",
                leaks(&r.text),
                r.text
            );
        }
    }
    // What a read key sees of the message row: where it goes, redacted.
    let r = h.get(&format!("/v1/tasks/{id}")).await;
    let v = r.json();
    assert_eq!(v["queue"], MESSAGE_QUEUE);
    assert_eq!(
        v["args"]["url"],
        "https://receiver.example/hook?code=redacted&v=redacted"
    );
    assert_eq!(v["args"]["method"], "POST");
    assert!(v["args"].get("headers").is_none() && v["args"].get("body").is_none());
    assert!(v["redacted"].as_str().unwrap().contains("admin"), "{v}");
    // An ordinary task is not touched.
    let r = h.get(&format!("/v1/tasks/{task_id}")).await;
    assert_eq!(r.json()["args"], json!({"n": 1}));
    assert!(r.json().get("redacted").is_none());

    // The admin key sees everything, as stored.
    let r = h
        .call(
            Method::GET,
            &format!("/v1/tasks/{id}"),
            Some(&h.admin),
            None,
        )
        .await;
    assert_eq!(leaks(&r.text).len(), 3, "{}", r.text);
    assert!(r.json().get("redacted").is_none());

    // Dead, the message shows the same way on the dead-letter routes.
    h.store
        .kill(&id, DeadReason::MaxAttempts, "gave up", 2)
        .await
        .unwrap();
    for uri in [
        format!("/v1/dead-letters/{id}"),
        "/v1/dead-letters".to_owned(),
    ] {
        let r = h.get(&uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text);
        assert!(r.text.contains(&id), "{uri}: {}", r.text);
        assert!(leaks(&r.text).is_empty(), "{uri} leaks: {}", r.text);
        let r = h.call(Method::GET, &uri, Some(&h.admin), None).await;
        assert_eq!(leaks(&r.text).len(), 3, "{uri}: {}", r.text);
    }
}

/// `GET /v1/messages/{id}` shows what was sent (method, URL, headers, body)
/// to admin keys, says why to the others, and lists each attempt once.
#[tokio::test]
async fn a_message_shows_what_was_sent_to_admin_keys() {
    let h = harness().await;
    let id = publish_secret_message(&h).await;
    let uri = format!("/v1/messages/{id}");

    let r = h.call(Method::GET, &uri, Some(&h.admin), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(v["method"], "POST", "{v}");
    assert_eq!(
        v["url"],
        format!("https://receiver.example/hook?code={QUERY_SECRET}&v=2")
    );
    assert_eq!(
        v["headers"]["authorization"],
        format!("Bearer {HEADER_SECRET}"),
        "{v}"
    );
    assert_eq!(v["body"], format!("token={BODY_SECRET}"), "{v}");
    assert!(v.get("redacted").is_none(), "{v}");

    for key in [&h.read, &h.publish] {
        let r = h.call(Method::GET, &uri, Some(key), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(leaks(&r.text).is_empty(), "{}", r.text);
        let v = r.json();
        assert!(v.get("headers").is_none() && v.get("body").is_none(), "{v}");
        assert!(v["redacted"].as_str().unwrap().contains("admin"), "{v}");
        assert_eq!(v["method"], "POST", "{v}");
    }
    // Lists carry no payload, whatever the key.
    let r = h
        .call(Method::GET, "/v1/messages", Some(&h.admin), None)
        .await;
    let item = &r.json()["items"][0];
    assert_eq!(item["id"], id.as_str(), "{item}");
    assert!(item.get("headers").is_none() && item.get("body").is_none());

    // One failed attempt, then a replay: the attempt is in `attempts`
    // once; `history` holds the rest. (Claimed at a time surely after the
    // server's clock made it due.)
    let later = 4_000_000_000_000;
    let claimed = h
        .store
        .claim(
            signet_store::ClaimRequest {
                queues: vec![MESSAGE_QUEUE.to_owned()],
                worker_id: "node-a".into(),
                limit: 1,
                lease_ms: 30_000,
            },
            later,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    h.store
        .fail(
            &signet_store::LeaseToken::of(&claimed[0]),
            "502 Bad Gateway",
            signet_store::FailOutcome::Dead {
                reason: DeadReason::MaxAttempts,
                detail: "1 of 1".into(),
            },
            later,
        )
        .await
        .unwrap();
    let r = h
        .call(
            Method::POST,
            "/v1/dead-letters/replay",
            Some(&h.admin),
            Some(&json!({"ids": [id]}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["count"], 1, "{}", r.text);
    let v = h.call(Method::GET, &uri, Some(&h.admin), None).await.json();
    assert_eq!(v["attempts"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["attempts"][0]["outcome"], "dead", "{v}");
    let kinds: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["replayed"], "{v}");
}

#[tokio::test]
async fn a_message_schedule_shows_its_payload_to_admin_keys_only() {
    let h = harness().await;
    let body = json!({
        "name": "secret-hook",
        "cron": "@daily",
        "message": {
            "url": format!("https://receiver.example/hook?{QUERY_SECRET}"),
            "headers": {"x-api-key": HEADER_SECRET},
            "body": {"token": BODY_SECRET},
        },
    });
    let r = h
        .call(
            Method::POST,
            "/v1/schedules",
            Some(&h.admin),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    for uri in [format!("/v1/schedules/{id}"), "/v1/schedules".to_owned()] {
        let r = h.get(&uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text);
        assert!(leaks(&r.text).is_empty(), "{uri} leaks: {}", r.text);
        assert!(
            r.text.contains("https://receiver.example/hook?redacted"),
            "{}",
            r.text
        );
        let r = h.call(Method::GET, &uri, Some(&h.admin), None).await;
        assert_eq!(leaks(&r.text).len(), 3, "{uri}: {}", r.text);
    }
}

/// A callback is a message too (its URL is the task's `callback_url`), and
/// the callback URL shows the same way on the task itself.
#[tokio::test]
async fn callbacks_and_callback_urls_show_their_query_to_admin_keys_only() {
    let temp = TempStore::new();
    let keys = temp.keys(1).await;
    let state = AppState::new(
        Arc::clone(&temp.store),
        ServerConfig::default(),
        signing(),
        detached_metrics_handle(),
    );
    let messages = state.delivery().messages.clone().expect("the server signs");
    let app = app(state);
    let body = json!({
        "queue": "q",
        "task": "t",
        "callback_url": format!("https://receiver.example/done?token={QUERY_SECRET}"),
    });
    let r = send(
        &app,
        request(
            Method::POST,
            "/v1/tasks",
            Some(&keys.publish),
            &[],
            Some(body.to_string()),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(leaks(&r.text).is_empty(), "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    temp.store
        .kill(&id, DeadReason::PayloadInvalid, "bad args", 2)
        .await
        .unwrap();
    let sent = CallbackService::new(Arc::clone(&temp.store), messages)
        .run_once()
        .await
        .unwrap();
    assert_eq!(sent, 1, "one callback message");

    for uri in [
        format!("/v1/tasks/{id}"),
        format!("/v1/tasks?queue={MESSAGE_QUEUE}"),
        "/v1/messages".to_owned(),
    ] {
        let r = send(
            &app,
            request(Method::GET, &uri, Some(&keys.read), &[], None),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text);
        assert!(r.text.contains("token=redacted"), "{uri}: {}", r.text);
        assert!(leaks(&r.text).is_empty(), "{uri} leaks: {}", r.text);
        let r = send(
            &app,
            request(Method::GET, &uri, Some(&keys.admin), &[], None),
        )
        .await;
        assert!(r.text.contains(QUERY_SECRET), "{uri}: {}", r.text);
    }
}
