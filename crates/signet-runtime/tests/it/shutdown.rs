//! Graceful shutdown: stop claiming, let running handlers finish within the
//! grace period, release the rest without counting their attempt.

use std::time::Duration;

use serde_json::json;
use signet_runtime::{TaskContext, TaskSpec, WorkerEventKind};
use signet_store::TaskState;

use crate::support::*;

#[tokio::test]
async fn shutdown_finishes_quick_tasks_and_releases_stuck_ones() {
    let db = Db::new();
    let ring = hmac_ring();
    let q = "shutdown";
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let (finish_tx, finish_rx) = tokio::sync::watch::channel(false);
    let w = worker(&db, &ring, q)
        .shutdown_grace(Duration::from_millis(1000))
        .register("stuck", {
            let started = started_tx.clone();
            move |ctx: TaskContext, _a: serde_json::Value| {
                let started = started.clone();
                async move {
                    let _ = started.send(ctx.id().to_owned());
                    std::future::pending::<()>().await;
                    Ok(None)
                }
            }
        })
        .register(
            "finishes",
            move |ctx: TaskContext, _a: serde_json::Value| {
                let started = started_tx.clone();
                let mut finish = finish_rx.clone();
                async move {
                    let _ = started.send(ctx.id().to_owned());
                    let _ = finish.wait_for(|f| *f).await;
                    Ok(Some(json!("finished during the grace period")))
                }
            },
        )
        .build()
        .unwrap();
    let running = Running::start(w);
    let p = producer(&db, &ring);
    let stuck = enqueue_id(&p, TaskSpec::new("stuck", &json!({})).queue(q)).await;
    let finishes = enqueue_id(&p, TaskSpec::new("finishes", &json!({})).queue(q)).await;
    let mut started = Vec::new();
    for _ in 0..2 {
        started.push(
            tokio::time::timeout(WAIT, started_rx.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    started.sort();
    let mut expected = vec![stuck.clone(), finishes.clone()];
    expected.sort();
    assert_eq!(started, expected);

    let Running {
        shutdown,
        mut events,
        handle,
        ..
    } = running;
    shutdown.trigger();
    // Claiming has stopped; the quick task may still finish.
    finish_tx.send_replace(true);
    tokio::time::timeout(WAIT, handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let mut outcomes = std::collections::HashMap::new();
    while let Ok(e) = events.try_recv() {
        outcomes.insert(e.task_id.clone(), e.kind);
    }
    assert_eq!(outcomes.get(&finishes), Some(&WorkerEventKind::Succeeded));
    assert_eq!(outcomes.get(&stuck), Some(&WorkerEventKind::Released));
    let row = db.task(&stuck).await;
    assert_eq!(row.state, TaskState::Available);
    assert!(row.lease_owner.is_none());
    assert_eq!(db.task(&finishes).await.state, TaskState::Succeeded);

    // A task enqueued after shutdown is left alone.
    let later = enqueue_id(&p, TaskSpec::new("finishes", &json!({})).queue(q)).await;
    assert_eq!(db.task(&later).await.state, TaskState::Available);
}

#[tokio::test]
async fn a_closed_store_stops_the_worker_with_an_error() {
    let db = Db::new();
    let ring = hmac_ring();
    let w = worker(&db, &ring, "closing")
        .register("x", |_ctx, _a: serde_json::Value| async { Ok(None) })
        .build()
        .unwrap();
    let running = Running::start(w);
    db.store.close().await.unwrap();
    let err = tokio::time::timeout(WAIT, running.handle)
        .await
        .expect("worker stops by itself")
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("closed"), "{err}");
}

#[test]
fn bad_worker_configuration_is_refused_with_the_setting_named() {
    let db = Db::new();
    let ring = hmac_ring();
    let build = |b: signet_runtime::WorkerBuilder| b.build().err().expect("refused").to_string();
    assert!(build(worker(&db, &ring, "bad queue")).contains("queue"));
    assert!(build(worker(&db, &ring, "q").concurrency(0)).contains("concurrency"));
    assert!(
        build(worker(&db, &ring, "q").lease(Duration::from_secs(1), Duration::from_secs(2)))
            .contains("heartbeat")
    );
    let twice = worker(&db, &ring, "q")
        .register("a", |_c, _a: serde_json::Value| async { Ok(None) })
        .register("a", |_c, _a: serde_json::Value| async { Ok(None) });
    assert!(build(twice).contains("registered twice"));
    let unconfigured = signet_runtime::Worker::builder(db.store.clone());
    assert!(build(unconfigured).contains("signing"));
}
