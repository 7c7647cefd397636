//! Callbacks: a finished task with a callback URL owes one until it is
//! marked sent, and owes a new one after a replay.

use std::sync::Arc;

use super::{claim_one, finish, ids, new_message, new_task, put, ACTOR, T0};
use crate::{
    DeadReason, DeadSelector, FailOutcome, LeaseToken, NewTask, Store, TaskId, MESSAGE_QUEUE,
};

/// `task` with a callback URL.
pub(super) fn with_callback(mut task: NewTask) -> NewTask {
    task.envelope.callback_url = Some(format!(
        "https://example.com/callbacks/{}",
        task.envelope.id
    ));
    task
}

/// The ids of up to `limit` tasks that owe a callback.
pub(super) async fn pending(s: &dyn Store, limit: usize) -> Vec<String> {
    ids(&s
        .pending_callbacks(limit)
        .await
        .unwrap_or_else(|e| panic!("pending_callbacks({limit}): {e}")))
}

/// Marks the callbacks of `ids` sent at `now`.
pub(super) async fn mark_sent(s: &dyn Store, ids: &[&str], now: i64) {
    let ids: Vec<String> = ids.iter().map(|i| (*i).to_owned()).collect();
    s.mark_callbacks_sent(&ids, now)
        .await
        .unwrap_or_else(|e| panic!("mark_callbacks_sent({ids:?}): {e}"));
}

/// Finished tasks with a callback URL owe a callback until marked sent; a
/// replay owes a new one.
pub(super) async fn pending_callbacks(store: Arc<dyn Store>) {
    let s = &*store;
    assert!(pending(s, 10).await.is_empty(), "empty store owes nothing");

    // Owed: succeeded (T0+30), killed (T0+10), a message dead after an attempt (T0+20).
    let a = finish(s, with_callback(new_task("a")), T0 + 30).await;
    let b = put(s, with_callback(new_task("b"))).await.id().to_owned();
    s.kill(&b, DeadReason::Expired, "past expires_at", T0 + 10)
        .await
        .expect("kill");
    let c = put(s, with_callback(new_message())).await.id().to_owned();
    let row = claim_one(s, MESSAGE_QUEUE, "w", T0).await;
    let dead = FailOutcome::Dead {
        reason: DeadReason::MaxAttempts,
        detail: "1 of 1".into(),
    };
    s.fail(&LeaseToken::of(&row), "410 Gone", dead.clone(), T0 + 20)
        .await
        .expect("fail");

    // Owe nothing: cancelled, no callback URL, not finished.
    let d = put(s, with_callback(new_task("d"))).await;
    s.cancel(d.id(), ACTOR, T0 + 5).await.expect("cancel");
    finish(s, new_task("e"), T0 + 1).await;
    put(s, with_callback(new_task("f"))).await;
    claim_one(s, "f", "w", T0).await;
    put(s, with_callback(new_task("g"))).await;
    let g = claim_one(s, "g", "w", T0).await;
    s.fail(
        &LeaseToken::of(&g),
        "later",
        FailOutcome::Retry { at_ms: T0 + 60_000 },
        T0 + 2,
    )
    .await
    .expect("fail retry");
    put(s, with_callback(new_task("h"))).await;
    let mut later = with_callback(new_task("h"));
    later.envelope.not_before_ms = Some(T0 + 3_600_000);
    put(s, later).await;

    let rows = s.pending_callbacks(10).await.expect("pending_callbacks");
    assert_eq!(
        ids(&rows),
        vec![b.clone(), c.clone(), a.clone()],
        "succeeded and dead tasks with a callback URL, by finish time"
    );
    for r in &rows {
        assert!(r.state.is_final(), "{}: {:?}", r.id(), r.state);
        assert!(r.envelope.callback_url.is_some());
        assert!(r.finished_at_ms.is_some());
    }
    assert_eq!(rows[1].dead_reason, Some(DeadReason::MaxAttempts));
    assert_eq!(pending(s, 2).await, vec![b.clone(), c.clone()], "limit");
    assert!(pending(s, 0).await.is_empty(), "limit 0");

    // Marked sent: no longer owed. Unknown ids and repeats are fine.
    let unknown = TaskId::generate().to_string();
    mark_sent(s, &[&b, &unknown], T0 + 100).await;
    assert_eq!(pending(s, 10).await, vec![c.clone(), a.clone()]);
    mark_sent(s, &[&b], T0 + 101).await;
    mark_sent(s, &[], T0 + 101).await;
    assert_eq!(pending(s, 10).await, vec![c.clone(), a.clone()]);

    // A replayed dead letter owes nothing while it runs again, then owes a
    // new callback when it finishes again, however it finishes.
    let replayed = s
        .replay_dead(
            DeadSelector::Ids(vec![b.clone(), c.clone()]),
            ACTOR,
            T0 + 200,
        )
        .await
        .expect("replay");
    assert_eq!(replayed.len(), 2);
    assert_eq!(pending(s, 10).await, vec![a.clone()]);
    let rb = claim_one(s, "b", "w", T0 + 200).await;
    s.complete(&LeaseToken::of(&rb), None, T0 + 300)
        .await
        .expect("complete replayed");
    let rc = claim_one(s, MESSAGE_QUEUE, "w", T0 + 200).await;
    s.fail(&LeaseToken::of(&rc), "410 Gone", dead, T0 + 400)
        .await
        .expect("fail replayed");
    assert_eq!(
        pending(s, 10).await,
        vec![a.clone(), b.clone(), c.clone()],
        "the replayed letter that was already sent owes a new callback"
    );

    mark_sent(s, &[&a, &b, &c], T0 + 500).await;
    assert!(pending(s, 10).await.is_empty());
}
