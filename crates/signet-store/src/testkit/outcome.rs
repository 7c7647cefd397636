//! How a task ends or goes back: complete, fail (retry or dead), release,
//! cancel and kill.

use std::sync::Arc;

use signet_sign::Algorithm;

use super::{
    assert_conflict, assert_lease_lost, assert_not_found, assert_same_signed, claim_n, claim_one,
    get, new_task, put, signed, ACTOR, T0,
};
use crate::{DeadReason, FailOutcome, LeaseToken, Store, StoreError, TaskId, TaskState};

/// Complete stores the result; `complete_batch` settles each entry on its own.
pub(super) async fn complete(store: Arc<dyn Store>) {
    let s = &*store;
    put(s, new_task("default")).await;
    let row = claim_one(s, "default", "w", T0).await;
    let lease = LeaseToken::of(&row);
    let result = br#"{"ok":true,"n":[1,2,3]}"#.to_vec();
    s.complete(&lease, Some(result.clone()), T0 + 5)
        .await
        .expect("complete");
    let done = get(s, row.id()).await;
    assert_eq!(done.state, TaskState::Succeeded);
    assert_eq!(done.result, Some(result));
    assert_eq!(done.finished_at_ms, Some(T0 + 5));
    assert_eq!(done.attempt, 1);
    assert_eq!(done.lease_owner, None);
    assert_eq!(done.lease_expires_at_ms, None);
    assert_lease_lost("complete twice", s.complete(&lease, None, T0 + 6).await);

    for _ in 0..3 {
        put(s, new_task("batch")).await;
    }
    let rows = claim_n(s, &["batch"], 3, T0).await;
    assert_eq!(rows.len(), 3);
    let stale = LeaseToken {
        attempt: 9,
        ..LeaseToken::of(&rows[1])
    };
    let items = vec![
        (LeaseToken::of(&rows[0]), Some(b"1".to_vec())),
        (stale, None),
        (LeaseToken::of(&rows[2]), None),
    ];
    let out = s.complete_batch(items, T0 + 10).await.expect("batch");
    assert_eq!(out.len(), 3);
    assert!(out[0].is_ok(), "{:?}", out[0]);
    assert!(
        matches!(out[1], Err(StoreError::LeaseLost { .. })),
        "{:?}",
        out[1]
    );
    assert!(out[2].is_ok(), "{:?}", out[2]);
    assert_eq!(get(s, rows[0].id()).await.result, Some(b"1".to_vec()));
    assert_eq!(get(s, rows[0].id()).await.state, TaskState::Succeeded);
    assert_eq!(get(s, rows[1].id()).await.state, TaskState::Running);
    assert_eq!(get(s, rows[2].id()).await.state, TaskState::Succeeded);
    assert!(s
        .complete_batch(vec![], T0)
        .await
        .expect("empty batch")
        .is_empty());
}

/// A retried task is not claimable before its time, and attempts count up.
pub(super) async fn fail_retry(store: Arc<dyn Store>) {
    let s = &*store;
    put(s, new_task("default")).await;
    let row = claim_one(s, "default", "w", T0).await;
    s.fail(
        &LeaseToken::of(&row),
        "connection refused",
        FailOutcome::Retry { at_ms: T0 + 5_000 },
        T0 + 10,
    )
    .await
    .expect("fail");
    let r = get(s, row.id()).await;
    assert_eq!(r.state, TaskState::Retryable);
    assert_eq!(r.run_at_ms, T0 + 5_000);
    assert_eq!(r.last_error.as_deref(), Some("connection refused"));
    assert_eq!(r.attempt, 1);
    assert_eq!(r.lease_owner, None);
    assert_eq!(r.finished_at_ms, None);
    assert!(claim_n(s, &["default"], 10, T0 + 4_999).await.is_empty());
    let again = claim_one(s, "default", "w", T0 + 5_000).await;
    assert_eq!(again.attempt, 2, "attempts are counted");
    s.fail(
        &LeaseToken::of(&again),
        "second",
        FailOutcome::Retry { at_ms: T0 + 5_000 },
        T0 + 5_001,
    )
    .await
    .expect("fail 2");
    let third = claim_one(s, "default", "w", T0 + 5_001).await;
    assert_eq!(third.attempt, 3);
    assert_eq!(third.last_error.as_deref(), Some("second"));
}

/// A dead-lettered task keeps its reason and detail.
pub(super) async fn fail_dead(store: Arc<dyn Store>) {
    let s = &*store;
    let task = signed(new_task("default"), Algorithm::HmacSha256, "k1");
    put(s, task.clone()).await;
    let row = claim_one(s, "default", "w", T0).await;
    s.fail(
        &LeaseToken::of(&row),
        "signature does not match",
        FailOutcome::Dead {
            reason: DeadReason::SignatureInvalid,
            detail: "mismatch".into(),
        },
        T0 + 7,
    )
    .await
    .expect("fail dead");
    let r = get(s, row.id()).await;
    assert_eq!(r.state, TaskState::Dead);
    assert_eq!(r.dead_reason, Some(DeadReason::SignatureInvalid));
    assert_eq!(r.dead_detail.as_deref(), Some("mismatch"));
    assert_eq!(r.last_error.as_deref(), Some("signature does not match"));
    assert_eq!(r.finished_at_ms, Some(T0 + 7));
    assert_eq!(r.lease_owner, None);
    assert_same_signed("dead letter", &r, &task);
    assert!(claim_n(s, &["default"], 10, T0 + 1_000_000)
        .await
        .is_empty());
}

/// Release gives a task back without counting the attempt.
pub(super) async fn release(store: Arc<dyn Store>) {
    let s = &*store;
    let mut t = new_task("default");
    t.envelope.not_before_ms = Some(T0 + 100);
    put(s, t).await;
    let row = claim_one(s, "default", "w", T0 + 100).await;
    assert_eq!(row.attempt, 1);
    s.release(&LeaseToken::of(&row), T0 + 200)
        .await
        .expect("release");
    let r = get(s, row.id()).await;
    assert_eq!(r.state, TaskState::Available);
    assert_eq!(r.attempt, 0, "release does not count the attempt");
    assert_eq!(r.lease_owner, None);
    assert_eq!(r.lease_expires_at_ms, None);
    assert!(r.run_at_ms <= T0 + 200);
    let again = claim_one(s, "default", "w2", T0 + 200).await;
    assert_eq!(again.attempt, 1);
    assert_lease_lost("release twice", s.release(&LeaseToken::of(&row), T0).await);
}

/// A release with a later `run_at` leaves the task scheduled, not
/// claimable before then, the attempt not counted.
pub(super) async fn release_later(store: Arc<dyn Store>) {
    let s = &*store;
    let t = put(s, new_task("default")).await;
    let row = claim_one(s, "default", "w", T0).await;
    s.release_at(&LeaseToken::of(&row), T0 + 500, T0 + 10)
        .await
        .expect("release_at");
    let r = get(s, t.id()).await;
    assert_eq!(r.state, TaskState::Scheduled);
    assert_eq!(r.attempt, 0, "release does not count the attempt");
    assert_eq!(r.run_at_ms, T0 + 500);
    assert_eq!(r.lease_owner, None);
    assert!(claim_n(s, &["default"], 10, T0 + 499).await.is_empty());
    let again = claim_one(s, "default", "w2", T0 + 500).await;
    assert_eq!(again.attempt, 1);
    // A run_at in the past is due now.
    s.release_at(&LeaseToken::of(&again), T0, T0 + 600)
        .await
        .expect("release_at");
    let r = get(s, t.id()).await;
    assert_eq!(r.state, TaskState::Available);
    assert_eq!(r.run_at_ms, T0 + 600);
    assert_lease_lost(
        "release_at twice",
        s.release_at(&LeaseToken::of(&again), T0, T0 + 700).await,
    );
}

/// `tasks_by_id` reads the rows of the ids that exist, each once.
pub(super) async fn tasks_by_id(store: Arc<dyn Store>) {
    let s = &*store;
    let a = put(s, new_task("default")).await;
    let b = put(s, new_task("other")).await;
    assert!(s.tasks_by_id(&[]).await.expect("none").is_empty());
    let ids = vec![
        b.id().to_owned(),
        "task_does-not-exist".to_owned(),
        a.id().to_owned(),
    ];
    let rows = s.tasks_by_id(&ids).await.expect("tasks_by_id");
    let mut got: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.envelope.id.clone(), r.envelope.queue.clone()))
        .collect();
    got.sort();
    let mut want = vec![
        (a.id().to_owned(), "default".to_owned()),
        (b.id().to_owned(), "other".to_owned()),
    ];
    want.sort();
    assert_eq!(got, want);
    for row in &rows {
        let one = get(s, row.id()).await;
        assert_eq!(row.envelope, one.envelope, "tasks_by_id: envelope");
        assert_eq!(row.signature, one.signature, "tasks_by_id: signature");
        assert_eq!(row.state, one.state, "tasks_by_id: state");
    }
}

/// Cancel works before a task runs and is a `Conflict` once running or final.
pub(super) async fn cancel(store: Arc<dyn Store>) {
    let s = &*store;
    let avail = put(s, new_task("default")).await;
    let r = s
        .cancel(avail.id(), ACTOR, T0 + 1)
        .await
        .expect("cancel available");
    assert_eq!(r.state, TaskState::Cancelled);
    assert_eq!(r.finished_at_ms, Some(T0 + 1));
    assert_eq!(get(s, avail.id()).await.state, TaskState::Cancelled);
    assert_conflict("cancel twice", s.cancel(avail.id(), ACTOR, T0 + 2).await);

    let mut t = new_task("default");
    t.envelope.not_before_ms = Some(T0 + 60_000);
    let sched = put(s, t).await;
    assert_eq!(
        s.cancel(sched.id(), ACTOR, T0)
            .await
            .expect("cancel scheduled")
            .state,
        TaskState::Cancelled
    );

    let run = put(s, new_task("default")).await;
    let claimed = claim_one(s, "default", "w", T0).await;
    assert_eq!(claimed.id(), run.id());
    assert_conflict("cancel running", s.cancel(run.id(), ACTOR, T0).await);
    s.fail(
        &LeaseToken::of(&claimed),
        "x",
        FailOutcome::Retry { at_ms: T0 + 1_000 },
        T0,
    )
    .await
    .expect("fail");
    assert_eq!(
        s.cancel(run.id(), ACTOR, T0)
            .await
            .expect("cancel retryable")
            .state,
        TaskState::Cancelled
    );

    put(s, new_task("default")).await;
    let c = claim_one(s, "default", "w", T0).await;
    s.complete(&LeaseToken::of(&c), None, T0)
        .await
        .expect("complete");
    assert_conflict("cancel succeeded", s.cancel(c.id(), ACTOR, T0).await);
    let dead = put(s, new_task("default")).await;
    s.kill(dead.id(), DeadReason::Expired, "past expires_at", T0)
        .await
        .expect("kill");
    assert_conflict("cancel dead", s.cancel(dead.id(), ACTOR, T0).await);
    assert_not_found(
        "cancel unknown",
        s.cancel(&TaskId::generate().to_string(), ACTOR, T0).await,
    );
    assert!(claim_n(s, &["default"], 10, T0 + 100_000).await.is_empty());
}

/// Kill dead-letters a waiting task.
pub(super) async fn kill(store: Arc<dyn Store>) {
    let s = &*store;
    let t = put(s, new_task("default")).await;
    let r = s
        .kill(
            t.id(),
            DeadReason::UnknownTask,
            "no handler for test.noop",
            T0 + 3,
        )
        .await
        .expect("kill");
    assert_eq!(r.state, TaskState::Dead);
    assert_eq!(r.dead_reason, Some(DeadReason::UnknownTask));
    assert_eq!(r.dead_detail.as_deref(), Some("no handler for test.noop"));
    assert_eq!(r.finished_at_ms, Some(T0 + 3));
    let stored = get(s, t.id()).await;
    assert_eq!(stored.state, TaskState::Dead);
    assert_eq!(stored.dead_reason, Some(DeadReason::UnknownTask));
    assert_conflict(
        "kill dead",
        s.kill(t.id(), DeadReason::Expired, "", T0).await,
    );
    put(s, new_task("default")).await;
    let running = claim_one(s, "default", "w", T0).await;
    assert_conflict(
        "kill running",
        s.kill(running.id(), DeadReason::Expired, "", T0).await,
    );
    assert_not_found(
        "kill unknown",
        s.kill(&TaskId::generate().to_string(), DeadReason::Expired, "", T0)
            .await,
    );
}
