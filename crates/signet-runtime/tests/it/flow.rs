//! The worker's flow: success, retries, dead letters, timeout, panic, heartbeats.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use signet_runtime::{
    Clock, HandlerError, HandlerResult, Rescuer, RetryPolicy, TaskContext, TaskSpec,
    WorkerEventKind,
};
use signet_sign::TaskEnvelope;
use signet_store::{DeadReason, NewTask, SignatureRecord, TaskId, TaskState};

use crate::support::*;

#[derive(Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

async fn add(ctx: TaskContext, args: Add) -> HandlerResult {
    Ok(Some(
        json!({ "sum": args.a + args.b, "tenant": ctx.header("tenant"), "attempt": ctx.attempt() }),
    ))
}

async fn fail_always(_ctx: TaskContext, _args: serde_json::Value) -> HandlerResult {
    Err(HandlerError::retry("upstream said no"))
}

#[tokio::test]
async fn a_signed_task_runs_and_its_result_is_stored() {
    let db = Db::new();
    let ring = hmac_ring();
    let w = worker(&db, &ring, "flow-ok")
        .register("add", add)
        .build()
        .unwrap();
    let mut running = Running::start(w);
    let out = producer(&db, &ring)
        .enqueue(
            TaskSpec::new("add", &json!({ "a": 2, "b": 3 }))
                .queue("flow-ok")
                .header("Tenant", "acme"),
        )
        .await
        .unwrap();
    assert!(out.created);
    let id = out.task.id().to_owned();
    let events = running.until_final(&id).await;
    assert_eq!(events.last().unwrap().kind, WorkerEventKind::Succeeded);
    let row = db.task(&id).await;
    assert_eq!(row.state, TaskState::Succeeded);
    assert_eq!(row.attempt, 1);
    let result: serde_json::Value = serde_json::from_slice(row.result.as_deref().unwrap()).unwrap();
    assert_eq!(result, json!({ "sum": 5, "tenant": "acme", "attempt": 1 }));
    running.stop().await;
}

/// Waits for `n` tasks to succeed, each once, and nothing else to happen.
async fn each_succeeds_once(running: &mut Running, n: usize) {
    let mut succeeded = std::collections::HashSet::new();
    tokio::time::timeout(WAIT, async {
        while succeeded.len() < n {
            let e = running.events.recv().await.unwrap();
            assert_eq!(e.kind, WorkerEventKind::Succeeded);
            assert!(succeeded.insert(e.task_id), "a task succeeded twice");
        }
    })
    .await
    .expect("all tasks succeed");
}

#[tokio::test]
async fn many_tasks_all_succeed_once() {
    let db = Db::new();
    let ring = hmac_ring();
    let w = worker(&db, &ring, "flow-many")
        .concurrency(32)
        .register("add", add)
        .build()
        .unwrap();
    let mut running = Running::start(w);
    let specs = (0..300)
        .map(|i| TaskSpec::new("add", &json!({ "a": i, "b": 1 })).queue("flow-many"))
        .collect();
    let out = producer(&db, &ring).enqueue_batch(specs).await.unwrap();
    let last = out.last().unwrap().task.id().to_owned();
    each_succeeds_once(&mut running, out.len()).await;
    assert_eq!(db.task(&last).await.state, TaskState::Succeeded);
    running.stop().await;
}

/// Handlers of [`concurrency_is_held_and_used`] running now, and the most
/// at once.
static SLOW_RUNNING: AtomicU32 = AtomicU32::new(0);
static SLOW_MOST: AtomicU32 = AtomicU32::new(0);

async fn slow(_ctx: TaskContext, _args: serde_json::Value) -> HandlerResult {
    let now = SLOW_RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    SLOW_MOST.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(30)).await;
    SLOW_RUNNING.fetch_sub(1, Ordering::SeqCst);
    Ok(None)
}

/// Several claims run at once (one per slot freed while others run):
/// still never more tasks at once than the concurrency, and all of it is
/// used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_held_and_used() {
    let db = Db::new();
    let ring = hmac_ring();
    let w = worker(&db, &ring, "flow-slots")
        .concurrency(4)
        .register("slow", slow)
        .build()
        .unwrap();
    let mut running = Running::start(w);
    let specs = (0..80)
        .map(|i| TaskSpec::new("slow", &json!({ "n": i })).queue("flow-slots"))
        .collect();
    let out = producer(&db, &ring).enqueue_batch(specs).await.unwrap();
    each_succeeds_once(&mut running, out.len()).await;
    assert_eq!(SLOW_MOST.load(Ordering::SeqCst), 4, "most handlers at once");
    running.stop().await;
}

#[tokio::test]
async fn retries_wait_exponentially_growing_gaps_then_dead_letter() {
    let db = Db::new();
    let ring = hmac_ring();
    let (clock, dyn_clock) = manual_clock(1_700_000_000_000);
    let w = worker(&db, &ring, "flow-retry")
        .clock(Arc::clone(&dyn_clock))
        .retry_policy(
            RetryPolicy::exponential(Duration::from_secs(1), Duration::from_secs(3600))
                .without_jitter(),
        )
        .register("fail", fail_always)
        .build()
        .unwrap();
    let mut running = Running::start(w);
    let p = producer(&db, &ring).clock(dyn_clock);
    let id = enqueue_id(
        &p,
        TaskSpec::new("fail", &json!({}))
            .queue("flow-retry")
            .max_attempts(4),
    )
    .await;

    let mut gaps = Vec::new();
    for attempt in 1..=3u32 {
        let e = running.next_for(&id).await;
        assert_eq!(e.attempt, attempt);
        let WorkerEventKind::Retrying { at_ms, error } = &e.kind else {
            panic!("expected a retry, got {:?}", e.kind);
        };
        assert_eq!(error, "upstream said no");
        let now = clock.now_ms();
        let row = db.task(&id).await;
        assert_eq!(row.state, TaskState::Retryable);
        assert_eq!(row.run_at_ms, *at_ms);
        assert_eq!(row.last_error.as_deref(), Some("upstream said no"));
        gaps.push(at_ms - now);
        // Not due yet: advancing by less than the gap must not run it.
        clock.set(at_ms - 1);
        assert!(running.events.try_recv().is_err());
        clock.set(*at_ms);
    }
    assert_eq!(gaps, [1000, 2000, 4000]);
    let e = running.next_for(&id).await;
    let (reason, detail) = dead(&e);
    assert_eq!(reason, DeadReason::MaxAttempts);
    assert!(
        detail.contains("all 4 attempts failed") && detail.contains("upstream said no"),
        "{detail}"
    );
    let row = db.task(&id).await;
    assert_eq!((row.state, row.attempt), (TaskState::Dead, 4));
    assert_eq!(row.dead_reason, Some(DeadReason::MaxAttempts));
    running.stop().await;
}

#[tokio::test]
async fn jittered_retries_stay_under_the_ceiling() {
    let db = Db::new();
    let ring = hmac_ring();
    let (clock, dyn_clock) = manual_clock(1_700_000_000_000);
    let w = worker(&db, &ring, "flow-jitter")
        .clock(Arc::clone(&dyn_clock))
        .retry_policy(RetryPolicy::exponential(
            Duration::from_secs(10),
            Duration::from_secs(25),
        ))
        .register("fail", fail_always)
        .build()
        .unwrap();
    let mut running = Running::start(w);
    let id = enqueue_id(
        &producer(&db, &ring).clock(dyn_clock),
        TaskSpec::new("fail", &json!({}))
            .queue("flow-jitter")
            .max_attempts(4),
    )
    .await;
    for ceiling in [10_000, 20_000, 25_000] {
        let e = running.next_for(&id).await;
        let WorkerEventKind::Retrying { at_ms, .. } = e.kind else {
            panic!("expected a retry, got {:?}", e.kind);
        };
        let gap = at_ms - clock.now_ms();
        assert!((0..=ceiling).contains(&gap), "gap {gap} above {ceiling}");
        clock.set(at_ms.max(clock.now_ms()));
    }
    assert_eq!(
        dead(&running.next_for(&id).await).0,
        DeadReason::MaxAttempts
    );
    running.stop().await;
}

#[tokio::test]
async fn refusals_dead_letter_without_running_the_handler() {
    let db = Db::new();
    let ring = hmac_ring();
    let calls = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&calls);
    let w = worker(&db, &ring, "flow-refuse")
        .register("add", move |ctx, a: Add| {
            c.fetch_add(1, Ordering::SeqCst);
            add(ctx, a)
        })
        .build()
        .unwrap();
    let mut running = Running::start(w);
    let p = producer(&db, &ring);
    let enqueue = |spec: TaskSpec| {
        let p = p.clone();
        async move {
            p.enqueue(spec.queue("flow-refuse"))
                .await
                .unwrap()
                .task
                .id()
                .to_owned()
        }
    };
    let unknown = enqueue(TaskSpec::new("nobody.handles.this", &json!({}))).await;
    let bad_args = enqueue(TaskSpec::new("add", &json!({ "a": "two" }))).await;
    // The producer refuses an expiry in the past, so the task that expired
    // before a worker got to it is signed and stored directly.
    let expired = {
        let envelope = TaskEnvelope {
            id: TaskId::generate().into(),
            queue: "flow-refuse".into(),
            name: "add".into(),
            args: br#"{"a":1,"b":1}"#.to_vec(),
            headers: Default::default(),
            created_at_ms: 0,
            not_before_ms: None,
            expires_at_ms: Some(1),
            max_attempts: 25,
            callback_url: None,
        };
        let sig = envelope.sign(&ring).unwrap();
        let task = NewTask {
            envelope,
            signature: Some(SignatureRecord {
                alg: sig.alg,
                key_id: sig.key_id.as_str().to_owned(),
                sig: sig.sig,
            }),
            priority: 0,
            idempotency_key: None,
            idempotency_scope: signet_store::IdempotencyScope::Local,
            fingerprint: signet_store::Fingerprint::new(),
        };
        let out = db.store.enqueue(task, 2).await.unwrap();
        out.task.id().to_owned()
    };

    let e = running.next_for(&unknown).await;
    assert_eq!(dead(&e).0, DeadReason::UnknownTask);
    assert!(dead(&e).1.contains("nobody.handles.this"));
    let e = running.next_for(&bad_args).await;
    assert_eq!(dead(&e).0, DeadReason::PayloadInvalid);
    assert!(dead(&e).1.contains("invalid type"), "{}", dead(&e).1);
    let e = running.next_for(&expired).await;
    assert_eq!(dead(&e).0, DeadReason::Expired);
    for id in [&unknown, &bad_args, &expired] {
        let row = db.task(id).await;
        assert_eq!(row.state, TaskState::Dead);
        assert!(row.dead_detail.is_some());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no handler ran");
    running.stop().await;
}

#[tokio::test]
async fn rejected_input_is_dead_at_once_and_timeouts_and_panics_are_failed_attempts() {
    let db = Db::new();
    let ring = hmac_ring();
    let w = worker(&db, &ring, "flow-bad")
        .handler_timeout(Duration::from_millis(100))
        .register("reject", |_ctx, _a: serde_json::Value| async {
            Err::<Option<serde_json::Value>, _>(HandlerError::reject("path escapes the outbox"))
        })
        .register("slow", |_ctx, _a: serde_json::Value| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(None)
        })
        .register(
            "panic",
            |ctx: TaskContext, _a: serde_json::Value| async move {
                if ctx.attempt() < 2 {
                    panic!("boom on attempt {}", ctx.attempt());
                }
                Ok(Some(json!("survived")))
            },
        )
        .register("add", add)
        .build()
        .unwrap();
    let mut running = Running::start(w);
    let p = producer(&db, &ring);
    let mk = |name: &str| {
        TaskSpec::new(name, &json!({}))
            .queue("flow-bad")
            .max_attempts(2)
    };
    let reject = p.enqueue(mk("reject")).await.unwrap().task.id().to_owned();
    let slow = p.enqueue(mk("slow")).await.unwrap().task.id().to_owned();
    let panicky = p.enqueue(mk("panic")).await.unwrap().task.id().to_owned();

    let e = running.until_final(&reject).await;
    assert_eq!(e.len(), 1);
    assert_eq!(
        dead(&e[0]),
        (DeadReason::PayloadInvalid, "path escapes the outbox")
    );

    let e = running.until_final(&slow).await;
    assert!(
        matches!(&e[0].kind, WorkerEventKind::Retrying { error, .. } if error.contains("timed out"))
    );
    let (reason, detail) = dead(e.last().unwrap());
    assert_eq!(reason, DeadReason::MaxAttempts);
    assert!(detail.contains("timed out"), "{detail}");

    let e = running.until_final(&panicky).await;
    assert!(
        matches!(&e[0].kind, WorkerEventKind::Retrying { error, .. } if error.contains("handler panicked: boom on attempt 1")),
        "{e:?}"
    );
    assert_eq!(e.last().unwrap().kind, WorkerEventKind::Succeeded);

    // The worker is still alive after the panics.
    let ok = enqueue_id(
        &p,
        TaskSpec::new("add", &json!({ "a": 1, "b": 2 })).queue("flow-bad"),
    )
    .await;
    assert_eq!(
        running.until_final(&ok).await.last().unwrap().kind,
        WorkerEventKind::Succeeded
    );
    running.stop().await;
}

#[tokio::test]
async fn heartbeats_keep_a_long_task_leased_past_its_lease() {
    let db = Db::new();
    let ring = hmac_ring();
    let w = worker(&db, &ring, "flow-hb")
        .lease(Duration::from_millis(1000), Duration::from_millis(100))
        .register("long", |_ctx, _a: serde_json::Value| async {
            // Well past the lease: only heartbeats keep it.
            tokio::time::sleep(Duration::from_millis(2500)).await;
            Ok(Some(json!("done")))
        })
        .build()
        .unwrap();
    let mut running = Running::start(w);
    let shutdown = signet_runtime::Shutdown::new();
    let rescuer = tokio::spawn(
        Rescuer::new(Arc::clone(&db.store))
            .interval(Duration::from_millis(50))
            .run(shutdown.signal()),
    );
    let id = enqueue_id(
        &producer(&db, &ring),
        TaskSpec::new("long", &json!({})).queue("flow-hb"),
    )
    .await;
    let e = running.until_final(&id).await;
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].kind, WorkerEventKind::Succeeded);
    assert_eq!(db.task(&id).await.attempt, 1);
    shutdown.trigger();
    rescuer.await.unwrap();
    running.stop().await;
}

#[tokio::test]
async fn a_lost_lease_drops_the_result_quietly() {
    let db = Db::new();
    let ring = hmac_ring();
    let (clock, dyn_clock) = manual_clock(1_700_000_000_000);
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Notify::new());
    let r = Arc::clone(&release);
    let w = worker(&db, &ring, "flow-lost")
        .clock(Arc::clone(&dyn_clock))
        .lease(Duration::from_secs(30), Duration::from_secs(10))
        .register("wait", move |ctx: TaskContext, _a: serde_json::Value| {
            let started = started_tx.clone();
            let release = Arc::clone(&r);
            async move {
                let _ = started.send(ctx.attempt());
                release.notified().await;
                Ok(None)
            }
        })
        .build()
        .unwrap();
    let mut running = Running::start(w);
    let id = enqueue_id(
        &producer(&db, &ring).clock(Arc::clone(&dyn_clock)),
        TaskSpec::new("wait", &json!({})).queue("flow-lost"),
    )
    .await;
    assert_eq!(
        tokio::time::timeout(WAIT, started_rx.recv()).await.unwrap(),
        Some(1)
    );
    // The lease expires (time jumps) and the task is rescued behind the
    // worker's back; its success must not be recorded.
    clock.advance(Duration::from_secs(60));
    let rescued = db.store.rescue_expired(clock.now_ms(), 10).await.unwrap();
    assert_eq!(rescued, vec![id.clone()]);
    release.notify_one();
    let e = running.next_for(&id).await;
    if e.kind == WorkerEventKind::LeaseLost {
        // The rescued task is claimed again and runs a second attempt.
        assert_eq!(
            tokio::time::timeout(WAIT, started_rx.recv()).await.unwrap(),
            Some(2)
        );
        release.notify_one();
        assert_eq!(running.next_for(&id).await.kind, WorkerEventKind::Succeeded);
    } else {
        panic!("expected the stale success to be dropped, got {:?}", e.kind);
    }
    assert_eq!(db.task(&id).await.attempt, 2);
    running.stop().await;
}

#[tokio::test]
async fn a_heartbeat_that_finds_the_lease_lost_abandons_the_run() {
    let db = Db::new();
    let ring = hmac_ring();
    let (clock, dyn_clock) = manual_clock(1_700_000_000_000);
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
    let (dropped_tx, mut dropped_rx) = tokio::sync::mpsc::unbounded_channel();
    /// Reports when the handler's future is dropped (the run was abandoned).
    struct OnDrop(tokio::sync::mpsc::UnboundedSender<u32>, u32);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            let _ = self.0.send(self.1);
        }
    }
    let w = worker(&db, &ring, "flow-hb-lost")
        .clock(Arc::clone(&dyn_clock))
        .lease(Duration::from_secs(30), Duration::from_millis(50))
        .shutdown_grace(Duration::from_millis(50))
        .register("forever", move |ctx: TaskContext, _a: serde_json::Value| {
            let started = started_tx.clone();
            let guard = OnDrop(dropped_tx.clone(), ctx.attempt());
            async move {
                let _guard = guard;
                let _ = started.send(ctx.attempt());
                std::future::pending::<()>().await;
                Ok(None)
            }
        })
        .build()
        .unwrap();
    let mut running = Running::start(w);
    let id = enqueue_id(
        &producer(&db, &ring).clock(Arc::clone(&dyn_clock)),
        TaskSpec::new("forever", &json!({})).queue("flow-hb-lost"),
    )
    .await;
    assert_eq!(
        tokio::time::timeout(WAIT, started_rx.recv()).await.unwrap(),
        Some(1)
    );
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        db.store.rescue_expired(clock.now_ms(), 10).await.unwrap(),
        vec![id.clone()]
    );
    assert_eq!(running.next_for(&id).await.kind, WorkerEventKind::LeaseLost);
    assert_eq!(
        tokio::time::timeout(WAIT, dropped_rx.recv()).await.unwrap(),
        Some(1)
    );
    // Claimed again as attempt 2; shutdown releases it after the grace period.
    assert_eq!(
        tokio::time::timeout(WAIT, started_rx.recv()).await.unwrap(),
        Some(2)
    );
    running.shutdown.trigger();
    assert_eq!(running.next_for(&id).await.kind, WorkerEventKind::Released);
    let row = db.task(&id).await;
    assert_eq!(row.state, TaskState::Available);
    running.stop().await;
}
