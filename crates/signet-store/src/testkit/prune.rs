//! Prune: which finished tasks it deletes, and which it must keep.

use std::sync::Arc;

use super::callbacks::{mark_sent, pending, with_callback};
use super::{finish, make_dead, new_task, put, ACTOR, T0};
use crate::{DeadReason, Store};

/// Prune deletes only old succeeded and cancelled tasks, never dead letters.
pub(super) async fn prune(store: Arc<dyn Store>) {
    let s = &*store;
    let old1 = finish(s, new_task("p"), T0 + 10).await;
    let old2 = finish(s, new_task("p"), T0 + 20).await;
    let fresh = finish(s, new_task("p"), T0 + 1_000).await;
    let cancelled = put(s, new_task("c")).await;
    s.cancel(cancelled.id(), ACTOR, T0 + 30)
        .await
        .expect("cancel");
    let dead = make_dead(s, "p", DeadReason::Expired, T0 + 5, None).await;
    let waiting = put(s, new_task("w")).await;
    let mut t = new_task("w");
    t.envelope.not_before_ms = Some(T0 + 100_000);
    let scheduled = put(s, t).await;

    let cutoff = T0 + 500;
    assert_eq!(s.prune(cutoff, 2).await.expect("prune"), 2, "limit");
    assert_eq!(s.prune(cutoff, 100).await.expect("prune"), 1);
    assert_eq!(s.prune(cutoff, 100).await.expect("prune"), 0);
    for gone in [&old1, &old2, &cancelled.envelope.id] {
        assert!(s.task(gone).await.expect("task").is_none(), "{gone} pruned");
    }
    for kept in [
        &fresh,
        &dead.envelope.id,
        &waiting.envelope.id,
        &scheduled.envelope.id,
    ] {
        assert!(s.task(kept).await.expect("task").is_some(), "{kept} kept");
    }
    // The finish time is exclusive.
    assert_eq!(s.prune(T0 + 1_000, 10).await.expect("prune"), 0);
    assert_eq!(s.prune(T0 + 1_001, 10).await.expect("prune"), 1);
}

/// Prune never deletes a task whose callback is still owed.
pub(super) async fn prune_keeps_owed_callbacks(store: Arc<dyn Store>) {
    let s = &*store;
    // Oldest first, so a prune that took the oldest rows before checking
    // the callback would delete nothing or the wrong task.
    let owed = finish(s, with_callback(new_task("p")), T0 + 10).await;
    let sent = finish(s, with_callback(new_task("p")), T0 + 20).await;
    mark_sent(s, &[&sent], T0 + 21).await;
    let plain = finish(s, new_task("p"), T0 + 30).await;
    let cancelled = put(s, with_callback(new_task("c"))).await.id().to_owned();
    s.cancel(&cancelled, ACTOR, T0 + 40).await.expect("cancel");
    let dead = put(s, with_callback(new_task("d"))).await.id().to_owned();
    s.kill(&dead, DeadReason::Expired, "", T0 + 50)
        .await
        .expect("kill");

    let cutoff = T0 + 1_000;
    for round in 0..3 {
        assert_eq!(
            s.prune(cutoff, 1).await.expect("prune"),
            1,
            "round {round}: an owed callback does not use up the limit"
        );
    }
    assert_eq!(s.prune(cutoff, 10).await.expect("prune"), 0);
    for gone in [&sent, &plain, &cancelled] {
        assert!(s.task(gone).await.expect("task").is_none(), "{gone} pruned");
    }
    assert!(
        s.task(&owed).await.expect("task").is_some(),
        "a task whose callback is owed is kept"
    );
    assert!(s.task(&dead).await.expect("task").is_some());
    assert_eq!(pending(s, 10).await, vec![owed.clone(), dead.clone()]);

    mark_sent(s, &[&owed], T0 + 2_000).await;
    assert_eq!(s.prune(cutoff, 10).await.expect("prune"), 1);
    assert!(s.task(&owed).await.expect("task").is_none());
}
