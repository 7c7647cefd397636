//! Steering work through the API: pausing and resuming a queue (its view,
//! `GET /v1/queues`, claims skipped), retry now for tasks and messages,
//! resending a delivered message; each refusal with its status and a
//! message that names the state.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use signet_store::{ClaimRequest, Event, FailOutcome, LeaseToken, Settlement, TaskState};

use crate::history::{api, Api};

impl Api {
    async fn admin(&self, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(&self.keys.admin, Method::POST, uri, body).await
    }

    async fn read(&self, uri: &str) -> (StatusCode, Value) {
        self.call(&self.keys.read, Method::GET, uri, None).await
    }

    async fn enqueue(&self, queue: &str) -> String {
        let (status, v) = self
            .call(
                &self.keys.publish,
                Method::POST,
                "/v1/tasks",
                Some(json!({"queue": queue, "task": "t"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }

    async fn publish(&self) -> String {
        let (status, v) = self
            .call(
                &self.keys.publish,
                Method::POST,
                "/v1/messages",
                Some(json!({"url": "https://hooks.example.com/orders"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }

    async fn claimed(&self, queue: &str) -> usize {
        self.store
            .claim(
                ClaimRequest {
                    queues: vec![queue.to_owned()],
                    worker_id: "w".into(),
                    limit: 100,
                    lease_ms: 30_000,
                },
                self.now(),
            )
            .await
            .unwrap()
            .len()
    }
}

fn queue<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == name)
        .unwrap_or_else(|| panic!("{name} not listed: {list}"))
}

#[tokio::test]
async fn pausing_a_queue_shows_it_paused_and_claims_skip_it_until_resumed() {
    let api = api().await;
    api.enqueue("mail").await;
    api.enqueue("mail").await;

    let (status, view) = api
        .admin(
            "/v1/queues/mail/pause",
            Some(json!({"reason": "SMTP relay down"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["queue"], "mail");
    assert_eq!(view["paused"], true, "{view}");
    assert_eq!(view["counts"]["available"], 2, "{view}");
    assert_eq!(view["pause_reason"], "SMTP relay down");
    assert!(
        view["paused_by"].as_str().unwrap().contains("admin"),
        "{view}"
    );
    let paused_at = view["paused_at"].as_str().unwrap().to_owned();

    // Again, without a body: the first pause stays.
    api.tick();
    let (status, again) = api.admin("/v1/queues/mail/pause", None).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["paused_at"], paused_at.as_str(), "{again}");
    assert_eq!(again["pause_reason"], "SMTP relay down");

    // A queue with no task yet can be paused, and is listed.
    let (status, _) = api.admin("/v1/queues/later/pause", None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = api.read("/v1/queues").await;
    assert_eq!(queue(&list, "mail")["paused"], true, "{list}");
    assert_eq!(queue(&list, "later")["total"], 0, "{list}");
    assert_eq!(queue(&list, "later")["paused"], true, "{list}");
    assert_eq!(
        api.claimed("mail").await,
        0,
        "a paused queue is not claimed"
    );

    let (status, view) = api.admin("/v1/queues/mail/resume", None).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["paused"], false, "{view}");
    assert_eq!(view["paused_at"], Value::Null, "{view}");
    assert_eq!(view["paused_by"], Value::Null, "{view}");
    let (status, twice) = api.admin("/v1/queues/mail/resume", None).await;
    assert_eq!((status, &twice["paused"]), (StatusCode::OK, &json!(false)));
    let (_, list) = api.read("/v1/queues").await;
    assert_eq!(queue(&list, "mail")["paused"], false, "{list}");
    assert_eq!(queue(&list, "mail")["paused_at"], Value::Null, "{list}");
    assert_eq!(
        api.claimed("mail").await,
        2,
        "resumed, its tasks are claimed"
    );
}

#[tokio::test]
async fn pause_refuses_bad_input_and_other_scopes() {
    let api = api().await;
    let (status, v) = api.admin("/v1/queues/bad%20queue/pause", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("queue"),
        "{v}"
    );
    let (status, v) = api
        .admin("/v1/queues/q/pause", Some(json!({"reason": "a\nb"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("reason"),
        "{v}"
    );
    let (status, v) = api
        .admin("/v1/queues/q/pause", Some(json!({"why": "x"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, _) = api
        .call(&api.keys.publish, Method::POST, "/v1/queues/q/pause", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(api.store.paused_queues().await.unwrap().is_empty());
}

#[tokio::test]
async fn retry_now_makes_a_waiting_task_due_and_refuses_other_states() {
    let api = api().await;
    let id = api.enqueue("jobs").await;
    let uri = format!("/v1/tasks/{id}/retry");
    let (status, v) = api.admin(&uri, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("available"), "names the state: {v}");
    assert!(message.contains("retryable"), "says what it needs: {v}");

    let mut rows = api
        .store
        .claim(
            ClaimRequest {
                queues: vec!["jobs".into()],
                worker_id: "w".into(),
                limit: 1,
                lease_ms: 30_000,
            },
            api.now(),
        )
        .await
        .unwrap();
    let row = rows.remove(0);
    api.store
        .fail(
            &LeaseToken::of(&row),
            "boom",
            FailOutcome::Retry {
                at_ms: api.now() + 3_600_000,
            },
            api.now(),
        )
        .await
        .unwrap();
    api.tick();
    let (status, v) = api.admin(&uri, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "available", "{v}");
    let (_, shown) = api.read(&format!("/v1/tasks/{id}")).await;
    let kinds: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["attempt", "retried-now"], "{shown}");
    assert_eq!(api.claimed("jobs").await, 1);

    let (status, _) = api
        .admin(
            "/v1/tasks/task_0190000000007000800000000000ffff/retry",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.admin("/v1/tasks/nonsense/retry", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.call(&api.keys.read, Method::POST, &uri, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_message_can_be_retried_now_then_resent_once_delivered() {
    let api = api().await;
    let id = api.publish().await;
    let retry = format!("/v1/messages/{id}/retry");
    let resend = format!("/v1/messages/{id}/resend");
    let (status, v) = api.admin(&resend, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not been delivered"),
        "{v}"
    );

    api.tick();
    let row = api.claim_message("node-a").await;
    api.settle(
        &row,
        Some(503),
        Settlement::Failed {
            error: "HTTP 503".into(),
            outcome: FailOutcome::Retry {
                at_ms: api.now() + 3_600_000,
            },
        },
    )
    .await;
    api.tick();
    let (status, v) = api.admin(&retry, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "available", "{v}");
    let row = api.claim_message("node-b").await;
    api.settle(&row, Some(200), Settlement::Delivered { result: None })
        .await;
    let (status, v) = api.admin(&retry, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");

    api.tick();
    let (status, v) = api.admin(&resend, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "available", "{v}");
    let row = api.claim_message("node-a").await;
    assert_eq!(row.id(), id, "the same message, so the same webhook-id");
    assert_eq!((row.attempt, row.attempts_before), (1, 2));
    api.settle(&row, Some(204), Settlement::Delivered { result: None })
        .await;
    let history = api.store.history(&id).await.unwrap();
    let acts: Vec<&str> = history.iter().map(|e| e.event.kind()).collect();
    assert_eq!(
        acts,
        ["attempt", "retried-now", "attempt", "resent", "attempt"],
        "{history:#?}"
    );
    assert!(matches!(history[3].event, Event::Resent { .. }));
    let (_, shown) = api.read(&format!("/v1/messages/{id}")).await;
    assert_eq!(shown["state"], "succeeded", "{shown}");
    assert_eq!(shown["attempts_made"], 3, "{shown}");

    // Tasks are not messages; unknown ids are 404.
    let task = api.enqueue("jobs").await;
    let (status, _) = api
        .admin(&format!("/v1/messages/{task}/resend"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.admin("/v1/messages/msg_missing/resend", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_dead_message_is_not_resent_but_pointed_to_the_dead_letter_replay() {
    let api = api().await;
    let id = api.publish().await;
    api.store
        .kill(
            &id,
            signet_store::DeadReason::Expired,
            "too late",
            api.now(),
        )
        .await
        .unwrap();
    let (status, v) = api.admin(&format!("/v1/messages/{id}/resend"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("dead"), "{v}");
    assert!(message.contains("/v1/dead-letters/replay"), "{v}");
    assert_eq!(
        api.store.task(&id).await.unwrap().unwrap().state,
        TaskState::Dead
    );
}
