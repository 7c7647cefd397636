//! Leases: heartbeats extend them, a lost lease is refused everywhere, and
//! expired leases are rescued.

use std::sync::Arc;

use super::{
    assert_invalid, assert_lease_lost, claim_n, claim_one, get, new_task, put, LEASE_MS, T0,
};
use crate::{DeadReason, FailOutcome, LeaseToken, Store, TaskId, TaskState};

/// A heartbeat extends the lease.
pub(super) async fn heartbeat(store: Arc<dyn Store>) {
    let s = &*store;
    put(s, new_task("default")).await;
    let row = claim_one(s, "default", "w", T0).await;
    let lease = LeaseToken::of(&row);
    s.heartbeat(&lease, 60_000, T0 + 20_000)
        .await
        .expect("heartbeat");
    let stored = get(s, row.id()).await;
    assert_eq!(stored.lease_expires_at_ms, Some(T0 + 80_000));
    assert_eq!(stored.state, TaskState::Running);
    assert_eq!(stored.attempt, 1);
    // The old expiry passed but the extended one did not: nothing rescued.
    let rescued = s
        .rescue_expired(T0 + LEASE_MS + 1, 10)
        .await
        .expect("rescue");
    assert!(rescued.is_empty(), "heartbeat must protect the task");
    // Past its expiry but not rescued: the lease is still current.
    s.heartbeat(&lease, 1_000, T0 + 90_000)
        .await
        .expect("late heartbeat of an unrescued lease");
    assert_eq!(
        get(s, row.id()).await.lease_expires_at_ms,
        Some(T0 + 91_000)
    );
    assert_invalid(
        "heartbeat with zero lease",
        s.heartbeat(&lease, 0, T0).await,
    );
}

/// A lost lease gives `LeaseLost` on every lease call.
pub(super) async fn lease_lost(store: Arc<dyn Store>) {
    let s = &*store;
    let mut t = new_task("default");
    t.envelope.max_attempts = 5;
    put(s, t).await;
    let row = claim_one(s, "default", "wa", T0).await;
    let a = LeaseToken::of(&row);

    // Rescued.
    let rescued = s
        .rescue_expired(T0 + LEASE_MS, 10)
        .await
        .expect("rescue at expiry");
    assert_eq!(rescued, vec![row.id().to_owned()]);
    assert_lease_lost("heartbeat", s.heartbeat(&a, 1_000, T0 + LEASE_MS).await);
    assert_lease_lost("complete", s.complete(&a, None, T0 + LEASE_MS).await);
    assert_lease_lost(
        "fail",
        s.fail(&a, "boom", FailOutcome::Retry { at_ms: T0 }, T0 + LEASE_MS)
            .await,
    );
    assert_lease_lost("release", s.release(&a, T0 + LEASE_MS).await);

    // Re-claimed by another worker.
    let now = T0 + LEASE_MS + 1;
    let row_b = claim_one(s, "default", "wb", now).await;
    assert_eq!(row_b.attempt, 2);
    let b = LeaseToken::of(&row_b);
    assert_lease_lost("heartbeat, old", s.heartbeat(&a, 1_000, now).await);
    assert_lease_lost("complete, old", s.complete(&a, None, now).await);
    // Same worker and task, wrong attempt; right attempt, wrong worker.
    let wrong_attempt = LeaseToken {
        attempt: 1,
        ..b.clone()
    };
    assert_lease_lost("stale attempt", s.complete(&wrong_attempt, None, now).await);
    let wrong_worker = LeaseToken {
        worker_id: "wa".into(),
        ..b.clone()
    };
    assert_lease_lost("wrong worker", s.complete(&wrong_worker, None, now).await);
    let unknown = LeaseToken {
        task_id: TaskId::generate().to_string(),
        ..b.clone()
    };
    assert_lease_lost("unknown task", s.complete(&unknown, None, now).await);
    // The real holder is unaffected.
    s.heartbeat(&b, 1_000, now).await.expect("heartbeat b");
    s.complete(&b, None, now).await.expect("complete b");
    assert_eq!(get(s, row.id()).await.state, TaskState::Succeeded);
}

/// Expired leases become retryable, or dead once attempts are used up.
pub(super) async fn rescue(store: Arc<dyn Store>) {
    let s = &*store;
    let mut t = new_task("default");
    t.envelope.max_attempts = 2;
    let id = put(s, t).await.id().to_owned();
    let first = claim_one(s, "default", "w", T0).await;
    assert_eq!(first.attempt, 1);
    assert!(s
        .rescue_expired(T0 + LEASE_MS - 1, 10)
        .await
        .expect("rescue early")
        .is_empty());
    let now = T0 + LEASE_MS;
    assert_eq!(
        s.rescue_expired(now, 10).await.expect("rescue"),
        vec![id.clone()]
    );
    let r = get(s, &id).await;
    assert_eq!(r.state, TaskState::Retryable);
    assert!(r.run_at_ms <= now, "rescued task is due at once");
    assert_eq!(r.lease_owner, None);
    assert_eq!(r.attempt, 1);
    let second = claim_one(s, "default", "w", now).await;
    assert_eq!(second.attempt, 2);
    let later = now + LEASE_MS;
    assert_eq!(
        s.rescue_expired(later, 10).await.expect("rescue 2"),
        vec![id.clone()]
    );
    let r = get(s, &id).await;
    assert_eq!(r.state, TaskState::Dead, "attempts used up");
    assert_eq!(r.dead_reason, Some(DeadReason::MaxAttempts));
    assert_eq!(r.finished_at_ms, Some(later));

    // The limit is respected.
    for _ in 0..5 {
        put(s, new_task("many")).await;
    }
    assert_eq!(claim_n(s, &["many"], 5, T0).await.len(), 5);
    let a = s.rescue_expired(T0 + LEASE_MS, 3).await.expect("rescue 3");
    assert_eq!(a.len(), 3);
    let b = s
        .rescue_expired(T0 + LEASE_MS, 3)
        .await
        .expect("rescue rest");
    assert_eq!(b.len(), 2);
    assert!(a.iter().all(|x| !b.contains(x)));
}
