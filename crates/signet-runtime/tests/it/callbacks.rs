//! Callbacks: a finished task or message with a `callback_url` gets one
//! signed callback message, delivered by the dispatcher like any message.

use std::sync::Arc;

use serde_json::{json, Value};
use signet_runtime::{CallbackService, Clock, TaskSpec};
use signet_sign::TaskEnvelope;
use signet_store::{ClaimRequest, LeaseToken, NewTask, TaskId, TaskState, MESSAGE_QUEUE};

use crate::dispatcher::*;
use crate::support::producer;

fn body_of(r: &Received) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

/// Enqueues `spec` on `queue` on the test's clock (so the task is due at
/// the time it is claimed), claims it and completes it with `result`;
/// returns the task's id and the time it finished.
async fn run_to_success(
    s: &Setup,
    queue: &str,
    spec: TaskSpec,
    result: Option<Vec<u8>>,
) -> (String, i64) {
    let task = producer(&s.db, &s.ring)
        .clock(Arc::clone(&s.dyn_clock))
        .enqueue(spec.queue(queue))
        .await
        .unwrap()
        .task;
    let now = s.clock.now_ms();
    let request = ClaimRequest {
        queues: vec![queue.into()],
        worker_id: "w".into(),
        limit: 1,
        lease_ms: 60_000,
    };
    let claimed = s.db.store.claim(request, now).await.unwrap();
    s.db.store
        .complete(&LeaseToken::of(&claimed[0]), result, now)
        .await
        .unwrap();
    (task.id().to_owned(), now)
}

/// The callback service on the test's clock.
fn callbacks(s: &Setup) -> CallbackService {
    CallbackService::new(Arc::clone(&s.db.store), s.messages.clone())
        .clock(Arc::clone(&s.dyn_clock))
}

#[tokio::test]
async fn a_finished_task_gets_one_signed_callback() {
    let s = Setup::new();
    let rx = Receiver::ok().await;
    let spec = TaskSpec::new("report", &json!({"month": 5})).callback_url(rx.url("/callbacks"));
    let (task_id, now) =
        run_to_success(&s, "reports", spec, Some(br#"{"rows":12}"#.to_vec())).await;

    let callbacks = callbacks(&s);
    assert_eq!(callbacks.run_once().await.unwrap(), 1);
    assert_eq!(callbacks.run_once().await.unwrap(), 0, "handed off once");

    let mut d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    let r = rx.wait_for(1).await.pop().unwrap();
    verify_standard(&s.ring, &r, s.now_s()).expect("the callback is signed");
    let body = body_of(&r);
    assert_eq!(body["id"], task_id.as_str());
    assert_eq!(body["kind"], "task");
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["attempts"], 1);
    assert_eq!(body["result"], json!({"rows": 12}));
    assert!(body.get("error").is_none());
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(body["finished_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r.header("content-type"), "application/json");

    // The callback message itself owes no callback.
    let id = r.header("webhook-id").to_owned();
    assert_eq!(delivered(&d.next_for(&id).await), 200);
    let cb = s.db.task(&id).await;
    assert_eq!(cb.queue(), MESSAGE_QUEUE);
    assert_eq!(cb.envelope.callback_url, None);
    assert_eq!(
        cb.idempotency_key.as_deref(),
        Some(format!("callback:{task_id}:{now}").as_str())
    );
    assert_eq!(callbacks.run_once().await.unwrap(), 0);
    d.stop().await;
}

#[tokio::test]
async fn delivered_and_dead_messages_call_back_with_their_outcome() {
    let s = Setup::new();
    let rx = Receiver::start(|r, _| {
        if r.path == "/gone" {
            Answer::status(410)
        } else {
            Answer::status(200)
        }
    })
    .await;
    let mut d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    let ok = s
        .publish(json!({"url": rx.url("/ok"), "callback_url": rx.url("/cb")}))
        .await;
    let gone = s
        .publish(json!({"url": rx.url("/gone"), "callback_url": rx.url("/cb")}))
        .await;
    delivered(&d.next_for(&ok).await);
    dead_of(&d.next_for(&gone).await);

    let callbacks = callbacks(&s);
    assert_eq!(callbacks.run_once().await.unwrap(), 2);
    let got = rx.wait_for(4).await;
    let cbs: Vec<Value> = got
        .iter()
        .filter(|r| r.path == "/cb")
        .map(|r| {
            verify_standard(&s.ring, r, s.now_s()).expect("signed");
            body_of(r)
        })
        .collect();
    assert_eq!(cbs.len(), 2);
    let of = |id: &str| cbs.iter().find(|b| b["id"] == id).unwrap().clone();
    let ok_cb = of(&ok);
    assert_eq!(ok_cb["kind"], "message");
    assert_eq!(ok_cb["status"], "succeeded");
    assert_eq!(ok_cb["result"], json!({"status": 200}));
    let dead_cb = of(&gone);
    assert_eq!(dead_cb["status"], "dead");
    assert_eq!(dead_cb["error"]["reason"], "target-refused");
    assert!(dead_cb["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("410 Gone"));
    assert!(dead_cb.get("result").is_none());
    d.stop().await;
    assert_eq!(s.db.task(&ok).await.state, TaskState::Succeeded);
}

#[tokio::test]
async fn a_callback_url_that_cannot_be_used_is_dropped_not_retried_forever() {
    let s = Setup::new();
    // Stored by an older producer with looser checks: user info in the URL.
    // Today's input rules refuse that URL, so the row is written to the
    // store directly, as an old row would be there. On the test's clock, so
    // the task is due at the time it is claimed.
    let now = s.clock.now_ms();
    let old_row = NewTask {
        envelope: TaskEnvelope {
            id: TaskId::generate().into(),
            queue: "q".into(),
            name: "t".into(),
            args: b"{}".to_vec(),
            headers: Default::default(),
            created_at_ms: now,
            not_before_ms: None,
            expires_at_ms: None,
            max_attempts: 25,
            callback_url: Some("https://user:pw@example.com/cb".into()),
        },
        signature: None,
        priority: 0,
        idempotency_key: None,
        idempotency_scope: signet_store::IdempotencyScope::Local,
        fingerprint: signet_store::Fingerprint::new(),
    };
    s.db.store.enqueue(old_row, now).await.unwrap();
    let claimed =
        s.db.store
            .claim(
                ClaimRequest {
                    queues: vec!["q".into()],
                    worker_id: "w".into(),
                    limit: 1,
                    lease_ms: 60_000,
                },
                now,
            )
            .await
            .unwrap();
    s.db.store
        .complete(&LeaseToken::of(&claimed[0]), None, now)
        .await
        .unwrap();
    let callbacks = CallbackService::new(Arc::clone(&s.db.store), s.messages.clone());
    assert_eq!(callbacks.run_once().await.unwrap(), 0);
    assert!(s.db.store.pending_callbacks(10).await.unwrap().is_empty());
}
