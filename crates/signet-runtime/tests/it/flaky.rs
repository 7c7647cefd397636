//! Transient store errors (`Busy`) are retried by the worker: no task is
//! lost, none runs an extra attempt because of them.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use serde_json::json;
use signet_runtime::{HandlerError, TaskContext, TaskSpec, Worker, WorkerEventKind};
use signet_store::testkit::FaultyStore;
use signet_store::{DeadReason, StoreError, TaskState};

use crate::support::*;

/// The worker-side writes that fail: every other one answers `Busy`,
/// before touching the database (as the contract says: an error changed
/// nothing).
const WORKER_WRITES: [&str; 8] = [
    "claim",
    "heartbeat",
    "complete",
    "complete_batch",
    "fail",
    "release",
    "settle_delivery",
    "settle_deliveries",
];

/// Counts the calls of [`WORKER_WRITES`] and fails every other one.
#[derive(Default)]
struct Hiccups {
    calls: AtomicU32,
    injected: AtomicU32,
}

impl Hiccups {
    fn fault(&self, method: &'static str) -> Option<StoreError> {
        if !WORKER_WRITES.contains(&method) {
            return None;
        }
        if self.calls.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Some(StoreError::Busy {
                message: "injected by the test".into(),
                source: None,
            });
        }
        None
    }
}

#[tokio::test]
async fn busy_store_writes_are_retried_and_nothing_is_lost() {
    let db = Db::new();
    let ring = hmac_ring();
    let q = "flaky";
    let hiccups = Arc::new(Hiccups::default());
    let faults = Arc::clone(&hiccups);
    let flaky = Arc::new(FaultyStore::new(Arc::clone(&db.store), move |method| {
        faults.fault(method)
    }));
    let w = Worker::builder(flaky.clone())
        .key_ring(&ring, true)
        .queues([q])
        .concurrency(16)
        .poll_interval(std::time::Duration::from_millis(5))
        .retry_policy(signet_runtime::RetryPolicy::exponential(
            std::time::Duration::ZERO,
            std::time::Duration::ZERO,
        ))
        .register(
            "once-flaky",
            |ctx: TaskContext, _a: serde_json::Value| async move {
                if ctx.attempt() == 1 {
                    Err(HandlerError::retry("first attempt fails"))
                } else {
                    Ok(Some(json!(ctx.attempt())))
                }
            },
        )
        .register("ok", |_ctx, _a: serde_json::Value| async {
            Ok(Some(json!("ok")))
        })
        .register("bad", |_ctx, _a: serde_json::Value| async {
            Err::<Option<serde_json::Value>, _>(HandlerError::reject("never valid"))
        })
        .build()
        .unwrap();
    let mut running = Running::start(w);
    let p = producer(&db, &ring);
    let mut ids = Vec::new();
    for i in 0..60 {
        let name = ["ok", "once-flaky", "bad"][i % 3];
        ids.push((
            name,
            p.enqueue(TaskSpec::new(name, &json!({ "i": i })).queue(q))
                .await
                .unwrap()
                .task
                .id()
                .to_owned(),
        ));
    }
    for (name, id) in &ids {
        let events = running.until_final(id).await;
        let row = db.task(id).await;
        match *name {
            "ok" => {
                assert_eq!(events.last().unwrap().kind, WorkerEventKind::Succeeded);
                assert_eq!((row.state, row.attempt), (TaskState::Succeeded, 1));
                assert_eq!(row.result.as_deref(), Some(&b"\"ok\""[..]));
            }
            "once-flaky" => {
                assert_eq!((row.state, row.attempt), (TaskState::Succeeded, 2));
            }
            _ => {
                assert_eq!((row.state, row.attempt), (TaskState::Dead, 1));
                assert_eq!(row.dead_reason, Some(DeadReason::PayloadInvalid));
            }
        }
    }
    assert!(hiccups.injected.load(Ordering::SeqCst) > 10);
    running.stop().await;
}
