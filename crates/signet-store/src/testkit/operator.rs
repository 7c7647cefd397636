//! Operator acts on one task or message: retry now, resend.

use std::sync::Arc;

use super::history::{exchange, history_of};
use super::{
    assert_conflict, assert_invalid, assert_not_found, claim_n, claim_one, get, new_message,
    new_task, put, ACTOR, T0,
};
use crate::{
    AttemptOutcome, DeadReason, Event, FailOutcome, HttpExchange, LeaseToken, Settlement, Store,
    TaskId, TaskRow, TaskState, MESSAGE_QUEUE,
};

/// Retry now makes a retryable task available at once with its attempts
/// kept and records a `retried-now` event; other states are `Conflict`
/// naming the state, unknown ids `NotFound`.
pub(super) async fn retry_now(store: Arc<dyn Store>) {
    let s = &*store;
    let id = put(s, new_task("r")).await.id().to_owned();
    assert_conflict(
        "retry now while available",
        s.retry_now(&id, ACTOR, T0).await,
    );
    let row = claim_one(s, "r", "w-1", T0).await;
    assert_conflict("retry now while running", s.retry_now(&id, ACTOR, T0).await);
    s.fail(
        &LeaseToken::of(&row),
        "boom",
        FailOutcome::Retry {
            at_ms: T0 + 3_600_000,
        },
        T0 + 1,
    )
    .await
    .expect("fail");
    assert!(
        claim_n(s, &["r"], 1, T0 + 2).await.is_empty(),
        "waiting for its backoff"
    );

    let row = s.retry_now(&id, ACTOR, T0 + 2).await.expect("retry now");
    assert_eq!(row.state, TaskState::Available);
    assert_eq!(row.run_at_ms, T0 + 2);
    assert_eq!(row.attempt, 1, "the attempt made still counts");
    assert_eq!(row.last_error.as_deref(), Some("boom"));
    let h = history_of(s, &id).await;
    assert_eq!(h.len(), 2, "{h:#?}");
    assert_eq!(
        h[1].event,
        Event::RetriedNow {
            actor: ACTOR.into()
        }
    );
    assert_eq!(h[1].at_ms, T0 + 2);
    assert_conflict("retry now twice", s.retry_now(&id, ACTOR, T0 + 2).await);

    let again = claim_one(s, "r", "w-2", T0 + 3).await;
    assert_eq!((again.id(), again.attempt), (id.as_str(), 2));
    s.complete(&LeaseToken::of(&again), None, T0 + 4)
        .await
        .expect("complete");
    match s.retry_now(&id, ACTOR, T0 + 5).await {
        Err(crate::StoreError::Conflict(m)) => {
            assert!(m.contains("succeeded"), "the conflict names the state: {m}")
        }
        other => panic!("retry now of a succeeded task: {other:?}"),
    }
    assert_not_found(
        "retry now of an unknown task",
        s.retry_now(&TaskId::generate().to_string(), ACTOR, T0)
            .await,
    );
    assert_invalid("empty actor", s.retry_now(&id, "", T0).await);
    assert_eq!(history_of(s, &id).await.len(), 3, "refusals record nothing");
}

/// Resend makes a succeeded message available again with its attempts
/// moved behind (numbers go on, the whole budget again), its history kept
/// and a `resent` event added, and a callback owed again; tasks and
/// messages not delivered are `Conflict`, and refusals record nothing.
pub(super) async fn resend(store: Arc<dyn Store>) {
    let s = &*store;
    let mut m = new_message();
    m.envelope.callback_url = Some("https://example.com/cb".into());
    let id = put(s, m.clone()).await.id().to_owned();
    assert_conflict("resend while pending", s.resend(&id, ACTOR, T0).await);
    let first = claim_one(s, MESSAGE_QUEUE, "d-1", T0).await;
    s.settle_delivery(
        &LeaseToken::of(&first),
        exchange(Some(503), b"busy"),
        Settlement::Failed {
            error: "503".into(),
            outcome: FailOutcome::Retry { at_ms: T0 + 10 },
        },
        T0 + 1,
    )
    .await
    .expect("settle retry");
    let second = claim_one(s, MESSAGE_QUEUE, "d-2", T0 + 10).await;
    delivered(s, &second, exchange(Some(200), b"ok"), T0 + 11).await;
    s.mark_callbacks_sent(std::slice::from_ref(&id), T0 + 12)
        .await
        .expect("callback sent");

    let row = s.resend(&id, ACTOR, T0 + 20).await.expect("resend");
    assert_eq!(row.state, TaskState::Available);
    assert_eq!(row.run_at_ms, T0 + 20);
    assert_eq!((row.attempt, row.attempts_before), (0, 2));
    assert_eq!(row.finished_at_ms, None);
    assert_eq!(row.envelope, m.envelope, "the envelope is untouched");
    assert_eq!(row.signature, m.signature, "the signature is untouched");
    let h = history_of(s, &id).await;
    assert_eq!(h.len(), 3, "{h:#?}");
    assert_eq!(
        h[2].event,
        Event::Resent {
            actor: ACTOR.into()
        }
    );
    assert_conflict("resend twice", s.resend(&id, ACTOR, T0 + 21).await);

    let third = claim_one(s, MESSAGE_QUEUE, "d-3", T0 + 21).await;
    assert_eq!(third.id(), id);
    delivered(s, &third, exchange(Some(204), b""), T0 + 22).await;
    let h = history_of(s, &id).await;
    let numbers: Vec<(u32, AttemptOutcome)> = crate::history::attempts(&h)
        .map(|(_, a)| (a.number, a.outcome))
        .collect();
    assert_eq!(
        numbers,
        [
            (1, AttemptOutcome::Retry),
            (2, AttemptOutcome::Succeeded),
            (3, AttemptOutcome::Succeeded)
        ],
        "the resend is a new attempt, numbered on: {h:#?}"
    );
    let owed = s.pending_callbacks(10).await.expect("pending callbacks");
    assert!(
        owed.iter().any(|r| r.id() == id),
        "a resent message owes its callback again"
    );

    // A task is not a message; a dead message is refused.
    let task = put(s, new_task("t")).await.id().to_owned();
    let r = claim_one(s, "t", "w", T0).await;
    s.complete(&LeaseToken::of(&r), None, T0 + 1)
        .await
        .expect("complete task");
    assert_conflict("resend a task", s.resend(&task, ACTOR, T0 + 2).await);
    let dead = put(s, new_message()).await.id().to_owned();
    s.kill(&dead, DeadReason::Expired, "too late", T0 + 1)
        .await
        .expect("kill");
    assert_conflict(
        "resend a dead message",
        s.resend(&dead, ACTOR, T0 + 2).await,
    );
    assert_eq!(get(s, &dead).await.state, TaskState::Dead);
    assert_not_found(
        "resend an unknown message",
        s.resend(&crate::MessageId::generate().to_string(), ACTOR, T0)
            .await,
    );
    assert_invalid("empty actor", s.resend(&id, "", T0 + 30).await);
}

/// A message whose success is kept only on its row (completed without an
/// HTTP exchange, or delivered with one) keeps that attempt in its history
/// once resent.
pub(super) async fn resend_keeps_row_attempt(store: Arc<dyn Store>) {
    let s = &*store;
    // A delivered message keeps its HTTP exchange through the resend.
    let id = put(s, new_message()).await.id().to_owned();
    let r = claim_one(s, MESSAGE_QUEUE, "d-row", T0 + 10).await;
    assert_eq!(r.id(), id);
    delivered(s, &r, exchange(Some(202), b"accepted"), T0 + 12).await;
    let before = history_of(s, &id).await;
    assert_eq!(before.len(), 1, "{before:#?}");
    let Event::Attempt(kept) = &before[0].event else {
        panic!("an attempt: {before:#?}");
    };
    assert_eq!(kept.http, Some(exchange(Some(202), b"accepted")));
    s.resend(&id, ACTOR, T0 + 13).await.expect("resend");
    let r = claim_one(s, MESSAGE_QUEUE, "d-row-2", T0 + 14).await;
    assert_eq!(r.id(), id, "the resent message is the one pending");
    delivered(s, &r, exchange(Some(200), b"again"), T0 + 15).await;
    let after = history_of(s, &id).await;
    assert_eq!(after.len(), 3, "{after:#?}");
    assert_eq!(
        after[0], before[0],
        "the first delivery reads back the same"
    );
    assert!(matches!(after[1].event, Event::Resent { .. }));
    let Event::Attempt(second) = &after[2].event else {
        panic!("an attempt: {after:#?}");
    };
    assert_eq!(
        (second.number, second.worker.as_deref(), &second.http),
        (2, Some("d-row-2"), &Some(exchange(Some(200), b"again")))
    );
    // A later success without an exchange shows none, not the last one's.
    s.resend(&id, ACTOR, T0 + 16).await.expect("resend again");
    let r = claim_one(s, MESSAGE_QUEUE, "d-row-3", T0 + 17).await;
    assert_eq!(r.id(), id);
    let done = s
        .complete_batch(vec![(LeaseToken::of(&r), None)], T0 + 18)
        .await
        .expect("complete");
    assert!(done[0].is_ok(), "{done:?}");
    let last = history_of(s, &id).await;
    assert_eq!(last.len(), 5, "{last:#?}");
    assert_eq!(last[..3], after[..], "nothing earlier changes");
    let Event::Attempt(third) = &last[4].event else {
        panic!("an attempt: {last:#?}");
    };
    assert_eq!((third.number, &third.http), (3, &None));

    // A message completed without an exchange, as a task is.
    let id = put(s, new_message()).await.id().to_owned();
    let r = claim_one(s, MESSAGE_QUEUE, "w-row", T0).await;
    s.complete(&LeaseToken::of(&r), None, T0 + 5)
        .await
        .expect("complete");
    let before = history_of(s, &id).await;
    assert_eq!(before.len(), 1, "{before:#?}");
    s.resend(&id, ACTOR, T0 + 6).await.expect("resend");
    let after = history_of(s, &id).await;
    assert_eq!(after.len(), 2, "{after:#?}");
    assert_eq!(after[0], before[0], "the kept attempt reads back the same");
    assert!(matches!(after[1].event, Event::Resent { .. }));
}

/// Settles the attempt of claimed `row` as delivered with `http` at `at`.
async fn delivered(s: &dyn Store, row: &TaskRow, http: HttpExchange, at: i64) {
    s.settle_delivery(
        &LeaseToken::of(row),
        http,
        Settlement::Delivered { result: None },
        at,
    )
    .await
    .unwrap_or_else(|e| panic!("settle {} as delivered: {e}", row.id()));
}
