//! Steering work end to end through the real binary and real sockets.
//!
//! - `a_pause_on_one_node_holds_the_queue_on_every_node`: two `signet
//!   serve` nodes on one PostgreSQL schema (`SIGNET_TEST_DATABASE_URL`) and
//!   an example worker on the store. The queue is paused through node A;
//!   tasks enqueued through node B stay `available` while the worker polls
//!   and HTTP workers long-poll both nodes; resumed through node B, every
//!   task runs.
//! - `retry_now_and_resend_reach_the_receiver_with_the_same_webhook_id`:
//!   one node on SQLite delivering to `signet receive`. The first attempt
//!   finds nothing listening and waits an hour to retry; retry now delivers
//!   it at once; resend delivers it again: the receiver verifies both
//!   deliveries, with the same `webhook-id` and each its own timestamp.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use signet_store::{Store, TaskState};

use super::deliver_e2e::delivering_server;
use super::multinode::{fresh_schema, start_node, start_worker, test_database_url, TestStore};
use super::serve::worker_or_skip;
use super::support::{http, json, only_env, LineProcess, Server};

/// The queue the pause test holds.
const QUEUE: &str = "steer-e2e";
/// Tasks enqueued while the queue is paused.
const TASKS: usize = 40;
/// How long the paused queue is watched: the worker polls every 20 ms and
/// two HTTP workers long-poll for this long, so a claim that ignored the
/// pause would have happened many times over.
const WATCH: Duration = Duration::from_secs(2);

#[test]
fn a_pause_on_one_node_holds_the_queue_on_every_node() {
    const TEST: &str = "a_pause_on_one_node_holds_the_queue_on_every_node";
    let Some(url) = test_database_url(TEST) else {
        return;
    };
    let Some(worker_bin) = worker_or_skip(TEST) else {
        return;
    };
    let schema = fresh_schema("it_steer");
    let store = TestStore::open(&url, &schema);
    let dir = tempfile::tempdir().unwrap();
    let (a, key) = start_node(&url, &schema, "node-a");
    let key = key.expect("a new store prints an admin key");
    let (mut b, _) = start_node(&url, &schema, "node-b");
    b.key.clone_from(&key);
    let _worker = start_worker(
        &worker_bin,
        &url,
        &schema,
        QUEUE,
        &dir.path().join("outbox"),
    );

    let (status, text) = a.http(
        "POST",
        &format!("/v1/queues/{QUEUE}/pause"),
        Some(r#"{"reason":"e2e: hold the queue"}"#),
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(json(&text)["paused"], true, "{text}");

    for i in 0..TASKS {
        let body = format!(
            r#"{{"queue":"{QUEUE}","task":"text.stats","args":{{"text":"paused task {i}"}}}}"#
        );
        let (status, text) = b.http("POST", "/v1/tasks", Some(&body));
        assert_eq!(status, 201, "{text}");
    }
    // HTTP workers long-poll both nodes while the worker on the store polls.
    let started = Instant::now();
    let claim = format!(
        r#"{{"queues":["{QUEUE}"],"max":10,"wait_ms":{}}}"#,
        WATCH.as_millis()
    );
    let pollers: Vec<_> = [&a, &b]
        .into_iter()
        .map(|node| {
            let (addr, key, claim) = (node.addr.clone(), key.clone(), claim.clone());
            std::thread::spawn(move || http(&addr, "POST", "/v1/work/claim", &key, Some(&claim)))
        })
        .collect();
    for (node, poller) in ["a", "b"].into_iter().zip(pollers) {
        let (status, text) = poller.join().expect("an HTTP worker panicked");
        assert_eq!(status, 200, "claim on node {node}: {text}");
        let tasks = json(&text)["tasks"].as_array().cloned().unwrap_or_default();
        assert!(
            tasks.is_empty(),
            "node {node} handed out a task of a paused queue: {text}"
        );
    }
    assert!(started.elapsed() >= WATCH, "the long polls ended early");
    let counts = store.block_on(store.store.counts()).expect("counts");
    let held: Vec<_> = counts.iter().filter(|c| c.queue == QUEUE).collect();
    assert_eq!(held.len(), 1, "{counts:?}");
    assert_eq!(
        held[0].count(TaskState::Available),
        TASKS as u64,
        "every task still waits: {counts:?}"
    );
    let (status, text) = b.http("GET", &format!("/v1/queues?queue={QUEUE}"), None);
    assert_eq!(status, 200, "{text}");
    let listed = &json(&text)["queues"][0];
    assert_eq!(listed["paused"], true, "node b sees the pause: {text}");
    assert!(listed["paused_at"].is_string(), "{text}");

    let (status, text) = b.http("POST", &format!("/v1/queues/{QUEUE}/resume"), None);
    assert_eq!(status, 200, "{text}");
    assert_eq!(json(&text)["paused"], false, "{text}");
    store.wait_drained(QUEUE, TASKS, Duration::from_secs(60));
    let counts = store.block_on(store.store.counts()).expect("counts");
    let done = counts
        .iter()
        .find(|c| c.queue == QUEUE)
        .map_or(0, |c| c.count(TaskState::Succeeded));
    assert_eq!(done, TASKS as u64, "{counts:?}");
    drop((a, b));
}

const SECRET: &str = "whsec_c3RlZXItZTJlLXJlY2VpdmVyLXNlY3JldC0zMmIhISE=";
/// Longest wait for a delivery to be settled.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// `signet receive --json` on `listen`.
fn receiver(listen: &str) -> LineProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_signet"));
    cmd.args(["receive", "--json", "--listen", listen, "--secret", SECRET]);
    only_env(&mut cmd, &[]);
    LineProcess::spawn(cmd).expect("start signet receive")
}

/// The address a receiver listens on (its first line).
fn listening(process: &LineProcess) -> String {
    process.wait_for("the receiver's address", |line| {
        let event = serde_json::from_str::<serde_json::Value>(line).ok()?;
        (event["event"] == "listening").then(|| event["addr"].as_str().map(str::to_owned))?
    })
}

/// The next event the receiver prints about a request (not `listening`).
fn next_delivery(process: &LineProcess) -> serde_json::Value {
    process.wait_for("a delivery at the receiver", |line| {
        let event = serde_json::from_str::<serde_json::Value>(line).ok()?;
        (event["event"] != "listening").then_some(event)
    })
}

/// Polls message `id` until `done` says so; returns it.
fn wait_message(
    server: &Server,
    id: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let (status, text) = server.http("GET", &format!("/v1/messages/{id}"), None);
        assert_eq!(status, 200, "{text}");
        let message = json(&text);
        if done(&message) {
            return message;
        }
        assert!(Instant::now() < deadline, "{what}: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn retry_now_and_resend_reach_the_receiver_with_the_same_webhook_id() {
    // A free port: a receiver takes it, then stops, so the first attempt
    // finds nothing listening there.
    let first = receiver("127.0.0.1:0");
    let addr = listening(&first);
    drop(first);

    let dir = tempfile::tempdir().unwrap();
    let server = delivering_server(&dir.path().join("steer.db"));
    let body = serde_json::json!({
        "name": "steer-e2e",
        "url_prefix": format!("http://{addr}/"),
        "secret": SECRET,
    })
    .to_string();
    let (status, text) = server.http("POST", "/v1/targets", Some(&body));
    assert_eq!(status, 201, "{text}");
    let body = serde_json::json!({
        "url": format!("http://{addr}/hooks/steer"),
        "target": "steer-e2e",
        "body": {"order": 42},
        "retry_schedule_ms": [3_600_000],
        "max_attempts": 2,
    })
    .to_string();
    let (status, text) = server.http("POST", "/v1/messages", Some(&body));
    assert_eq!(status, 201, "{text}");
    let id = json(&text)["id"].as_str().unwrap().to_owned();
    wait_message(&server, &id, "the first attempt fails and waits", |m| {
        m["state"] == "retryable"
    });

    // Retry now, with a receiver listening this time.
    let second = receiver(&addr);
    assert_eq!(listening(&second), addr);
    let (status, text) = server.http("POST", &format!("/v1/messages/{id}/retry"), None);
    assert_eq!(status, 200, "{text}");
    let delivered = next_delivery(&second);
    assert_eq!(delivered["event"], "accepted", "{delivered}");
    assert_eq!(delivered["id"], id.as_str(), "{delivered}");
    let first_ts = delivered["timestamp"].as_u64().expect("a timestamp");
    wait_message(&server, &id, "retry now delivers", |m| {
        m["state"] == "succeeded"
    });

    // Resend: the same webhook-id, signed afresh. A new receiver process
    // (its replay guard would acknowledge the id as a duplicate) on the
    // same address, once the clock has moved past the first timestamp.
    drop(second);
    let third = receiver(&addr);
    assert_eq!(listening(&third), addr);
    while unix_s() <= first_ts {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, text) = server.http("POST", &format!("/v1/messages/{id}/resend"), None);
    assert_eq!(status, 200, "{text}");
    let again = next_delivery(&third);
    assert_eq!(again["event"], "accepted", "a valid signature: {again}");
    assert_eq!(again["id"], id.as_str(), "the same webhook-id: {again}");
    let second_ts = again["timestamp"].as_u64().expect("a timestamp");
    assert!(
        second_ts > first_ts,
        "signed afresh: {first_ts} then {second_ts}"
    );
    let shown = wait_message(&server, &id, "the resend is delivered", |m| {
        m["state"] == "succeeded" && m["attempts_made"] == 3
    });
    let kinds: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["retried-now", "resent"], "{shown}");
    let attempts: Vec<(u64, &str)> = shown["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["attempt"].as_u64().unwrap(),
                a["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [(1, "retry"), (2, "succeeded"), (3, "succeeded")],
        "the resend is a third attempt in the history: {shown}"
    );
    let (status, text) = server.http("POST", &format!("/v1/messages/{id}/retry"), None);
    assert_eq!(status, 409, "a delivered message is not retried: {text}");
    drop(server);
}
