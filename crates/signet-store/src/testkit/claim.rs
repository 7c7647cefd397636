//! Claims: order, limits, queue filters, leases, and concurrent claimers.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{claim_n, claim_one, claim_req, get, ids, new_task, put, LEASE_MS, T0};
use crate::{LeaseToken, NewTask, Store, TaskState};

/// Claims take higher priority first, then earlier `run_at`, then id.
pub(super) async fn claim_order(store: Arc<dyn Store>) {
    let s = &*store;
    // (priority, not_before offset)
    let plan = [(0, 0), (5, 300), (5, 100), (-1, 0), (5, 100), (0, 50)];
    let mut rows = Vec::new();
    for (prio, offset) in plan {
        let mut t = new_task("default");
        t.priority = prio;
        t.envelope.not_before_ms = Some(T0 - 1_000 + offset);
        rows.push(put(s, t).await);
    }
    let mut expected = rows.clone();
    expected.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.run_at_ms.cmp(&b.run_at_ms))
            .then(a.id().cmp(b.id()))
    });
    let mut got = Vec::new();
    for _ in 0..rows.len() {
        got.push(claim_one(s, "default", "w", T0).await);
    }
    assert_eq!(ids(&got), ids(&expected), "claim order");

    // A single claim of several returns them in the same order.
    for (prio, offset) in plan {
        let mut t = new_task("second");
        t.priority = prio;
        t.envelope.not_before_ms = Some(T0 - 1_000 + offset);
        put(s, t).await;
    }
    let batch = claim_n(s, &["second"], 3, T0).await;
    let prios: Vec<i32> = batch.iter().map(|r| r.priority).collect();
    assert_eq!(prios, vec![5, 5, 5], "one claim takes the highest first");
    assert!(batch.windows(2).all(|w| w[0].run_at_ms <= w[1].run_at_ms));
}

/// Claims respect the limit and the queue filter and set the lease.
pub(super) async fn claim_limit_and_queues(store: Arc<dyn Store>) {
    let s = &*store;
    for _ in 0..5 {
        put(s, new_task("q1")).await;
    }
    for _ in 0..3 {
        put(s, new_task("q2")).await;
    }
    put(s, new_task("q3")).await;

    let got = s
        .claim(claim_req(&["q1"], "worker-a", 2), T0)
        .await
        .expect("claim");
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_eq!(r.queue(), "q1");
        assert_eq!(r.state, TaskState::Running);
        assert_eq!(r.attempt, 1);
        assert_eq!(r.lease_owner.as_deref(), Some("worker-a"));
        assert_eq!(r.lease_expires_at_ms, Some(T0 + LEASE_MS));
        let stored = get(s, r.id()).await;
        assert_eq!(stored.state, TaskState::Running);
        assert_eq!(stored.lease_owner.as_deref(), Some("worker-a"));
        assert_eq!(stored.lease_expires_at_ms, Some(T0 + LEASE_MS));
        assert_eq!(LeaseToken::of(r).worker_id, "worker-a");
    }
    let got = claim_n(s, &["q2"], 10, T0).await;
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.queue() == "q2"));
    let got = claim_n(s, &["q1", "q2", "nothing-here"], 10, T0).await;
    assert_eq!(got.len(), 3, "the rest of q1");
    assert!(got.iter().all(|r| r.queue() == "q1"));
    assert!(claim_n(s, &["q1", "q2"], 10, T0).await.is_empty());
    assert!(claim_n(s, &["q3"], 0, T0).await.is_empty(), "limit 0");
    assert_eq!(claim_n(s, &["q3"], 10, T0).await.len(), 1);
}

/// Concurrent claimers never get the same task.
pub(super) async fn concurrent_claims(store: Arc<dyn Store>) {
    const TASKS: usize = 300;
    const CLAIMERS: usize = 8;
    let batch: Vec<NewTask> = (0..TASKS).map(|_| new_task("busy")).collect();
    let all: BTreeSet<String> = batch.iter().map(|t| t.envelope.id.clone()).collect();
    store.enqueue_batch(batch, T0).await.expect("enqueue");

    let mut handles = Vec::new();
    for w in 0..CLAIMERS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store
                    .claim(claim_req(&["busy"], &format!("w{w}"), 7), T0)
                    .await
                    .expect("claim");
                if got.is_empty() {
                    break;
                }
                for r in &got {
                    assert_eq!(r.lease_owner.as_deref(), Some(format!("w{w}").as_str()));
                }
                mine.extend(ids(&got));
                tokio::task::yield_now().await;
            }
            mine
        }));
    }
    let mut seen = BTreeSet::new();
    let mut n = 0;
    for h in handles {
        for id in h.await.expect("claimer panicked") {
            n += 1;
            assert!(seen.insert(id.clone()), "task {id} was claimed twice");
        }
    }
    assert_eq!(n, TASKS);
    assert_eq!(seen, all, "every task claimed exactly once");
}
