//! The rescuer and the pruner.

use std::time::Duration;

use serde_json::json;
use signet_runtime::{Clock, Pruner, Rescuer, TaskSpec};
use signet_store::{ClaimRequest, LeaseToken, TaskState};

use crate::support::*;

#[tokio::test]
async fn the_rescuer_returns_expired_leases_and_the_pruner_deletes_old_tasks() {
    let db = Db::new();
    let (clock, dyn_clock) = manual_clock(1_700_000_000_000);
    let p = producer(&db, &hmac_ring()).clock(dyn_clock.clone());
    let ids: Vec<String> = p
        .enqueue_batch(
            (0..3)
                .map(|_| TaskSpec::new("t", &json!({})).queue("svc"))
                .collect(),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.task.id().to_owned())
        .collect();
    let claimed = db
        .store
        .claim(
            ClaimRequest {
                queues: vec!["svc".into()],
                worker_id: "crashed".into(),
                limit: 3,
                lease_ms: 1_000,
            },
            clock.now_ms(),
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    // One finishes; the other two are abandoned by a crashed worker.
    db.store
        .complete(&LeaseToken::of(&claimed[0]), None, clock.now_ms())
        .await
        .unwrap();

    let rescuer = Rescuer::new(db.store.clone())
        .clock(dyn_clock.clone())
        .batch(1);
    assert_eq!(rescuer.run_once().await.unwrap(), 0, "leases still valid");
    clock.advance(Duration::from_secs(2));
    assert_eq!(rescuer.run_once().await.unwrap(), 2);
    for id in &ids[1..] {
        assert_eq!(db.task(id).await.state, TaskState::Retryable);
    }

    let pruner = Pruner::new(db.store.clone())
        .clock(dyn_clock.clone())
        .retention(Duration::from_secs(60))
        .batch(1);
    assert_eq!(pruner.run_once().await.unwrap(), 0, "within retention");
    clock.advance(Duration::from_secs(61));
    assert_eq!(pruner.run_once().await.unwrap(), 1);
    assert!(db.store.task(&ids[0]).await.unwrap().is_none());
    assert!(db.store.task(&ids[1]).await.unwrap().is_some());
}

#[tokio::test]
async fn the_pruner_forgets_signed_out_sessions_past_their_expiry() {
    let db = Db::new();
    let (clock, dyn_clock) = manual_clock(1_700_000_000_000);
    let now = clock.now_ms();
    for (id, expires) in [("a", now + 1_000), ("b", now + 1_000), ("c", now + 5_000)] {
        db.store.end_session(id, expires).await.unwrap();
    }
    let pruner = Pruner::new(db.store.clone())
        .clock(dyn_clock.clone())
        .batch(1);
    pruner.run_once().await.unwrap();
    assert!(
        db.store.session_ended("a").await.unwrap(),
        "not expired yet"
    );
    clock.advance(Duration::from_secs(2));
    pruner.run_once().await.unwrap();
    assert!(!db.store.session_ended("a").await.unwrap());
    assert!(!db.store.session_ended("b").await.unwrap(), "in batches");
    assert!(db.store.session_ended("c").await.unwrap());
}

#[tokio::test]
async fn services_stop_on_shutdown() {
    let db = Db::new();
    let shutdown = signet_runtime::Shutdown::new();
    let r = tokio::spawn(
        Rescuer::new(db.store.clone())
            .interval(Duration::from_millis(5))
            .run(shutdown.signal()),
    );
    let p = tokio::spawn(
        Pruner::new(db.store.clone())
            .interval(Duration::from_millis(5))
            .run(shutdown.signal()),
    );
    let d = tokio::spawn(
        signet_runtime::QueueDepthReporter::new(db.store.clone())
            .interval(Duration::from_millis(5))
            .run(shutdown.signal()),
    );
    shutdown.trigger();
    tokio::time::timeout(WAIT, async {
        r.await.unwrap();
        p.await.unwrap();
        d.await.unwrap();
    })
    .await
    .expect("services stop");
}
