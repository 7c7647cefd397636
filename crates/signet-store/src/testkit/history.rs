//! Histories: every attempt and operator act, in order, never rewritten,
//! deleted only with the task. And re-signing a dead letter.

use std::sync::Arc;

use signet_sign::Algorithm;

use super::{
    assert_conflict, assert_invalid, assert_lease_lost, assert_not_found, assert_same_signed,
    claim_n, claim_one, get, make_dead, new_message, new_task, put, signed, ACTOR, LEASE_MS, T0,
};
use crate::delivery::MAX_ATTEMPT_ERROR_LEN;
use crate::{
    AttemptEvent, AttemptOutcome, DeadReason, DeadSelector, DeliverySettlement, Event, FailOutcome,
    HistoryEvent, HttpExchange, LeaseToken, Settlement, SignatureRecord, Store, StoreResult,
    TaskId, TaskState, MAX_ATTEMPT_BODY_BYTES, MESSAGE_QUEUE,
};

/// The history the store holds for `id`, checked to be in `seq` order.
pub(super) async fn history_of(s: &dyn Store, id: &str) -> Vec<HistoryEvent> {
    let h = s
        .history(id)
        .await
        .unwrap_or_else(|e| panic!("history({id}): {e}"));
    let seqs: Vec<i64> = h.iter().map(|e| e.seq).collect();
    let want: Vec<i64> = (1..=h.len() as i64).collect();
    assert_eq!(
        seqs, want,
        "history of {id} numbered 1, 2, 3… in order: {h:#?}"
    );
    for e in &h {
        assert_eq!(e.task_id, id, "history of {id} holds another task's event");
    }
    h
}

/// The attempt of an event; panics if it is another kind.
fn attempt(e: &HistoryEvent) -> &AttemptEvent {
    match &e.event {
        Event::Attempt(a) => a,
        other => panic!("expected an attempt, got {other:?}"),
    }
}

/// Checks that `later` begins with every event of `earlier`, unchanged.
fn assert_appended(what: &str, earlier: &[HistoryEvent], later: &[HistoryEvent]) {
    assert!(
        later.len() >= earlier.len() && later[..earlier.len()] == *earlier,
        "{what}: earlier events were changed or removed\nbefore: {earlier:#?}\nafter: {later:#?}"
    );
}

/// Every attempt that ends (complete, batch, retry, dead, rescue) is in
/// the history with its number, worker, start and outcome; a release is
/// not.
pub(super) async fn history_attempts(store: Arc<dyn Store>) {
    let s = &*store;
    let t = put(s, new_task("h")).await;
    let id = t.id().to_owned();
    assert!(history_of(s, &id).await.is_empty(), "no history yet");

    // Attempt 1 fails and retries.
    let r = claim_one(s, "h", "w-1", T0 + 10).await;
    s.fail(
        &LeaseToken::of(&r),
        "boom",
        FailOutcome::Retry { at_ms: T0 + 20 },
        T0 + 15,
    )
    .await
    .expect("fail");
    let h1 = history_of(s, &id).await;
    assert_eq!(h1.len(), 1, "{h1:#?}");
    assert_eq!(h1[0].at_ms, T0 + 15);
    assert_eq!(
        attempt(&h1[0]),
        &AttemptEvent {
            number: 1,
            worker: Some("w-1".into()),
            started_at_ms: Some(T0 + 10),
            outcome: AttemptOutcome::Retry,
            error: Some("boom".into()),
            http: None,
        }
    );

    // A release (shutdown) does not count and is not an attempt.
    let r = claim_one(s, "h", "w-2", T0 + 20).await;
    s.release(&LeaseToken::of(&r), T0 + 21)
        .await
        .expect("release");
    assert_eq!(history_of(s, &id).await, h1, "a release records nothing");

    // Attempt 2: its lease expires and the rescuer makes it retryable.
    let r = claim_one(s, "h", "w-3", T0 + 30).await;
    assert_eq!(r.attempt, 2);
    let rescued = s
        .rescue_expired(T0 + 30 + LEASE_MS, 10)
        .await
        .expect("rescue");
    assert_eq!(rescued, vec![id.clone()]);
    let h2 = history_of(s, &id).await;
    assert_appended("after a rescue", &h1, &h2);
    assert_eq!(h2.len(), 2);
    let a2 = attempt(&h2[1]);
    assert_eq!(
        (
            a2.number,
            a2.outcome,
            a2.worker.as_deref(),
            a2.started_at_ms
        ),
        (2, AttemptOutcome::LeaseExpired, Some("w-3"), Some(T0 + 30))
    );
    assert!(a2.error.as_deref().is_some_and(|e| e.contains("w-3")));
    assert_eq!(h2[1].at_ms, T0 + 30 + LEASE_MS);

    // Attempt 3 (the last of 3): its lease expires too, and it is dead.
    let at = T0 + 40 + LEASE_MS;
    let r = claim_one(s, "h", "w-4", at).await;
    s.rescue_expired(at + LEASE_MS, 10).await.expect("rescue");
    assert_eq!(get(s, &id).await.state, TaskState::Dead);
    let h3 = history_of(s, &id).await;
    assert_appended("after the last rescue", &h2, &h3);
    let a3 = attempt(&h3[2]);
    assert_eq!((a3.number, a3.outcome), (3, AttemptOutcome::Dead));
    assert_eq!(
        a3.worker.as_deref(),
        Some(r.lease_owner.as_deref().unwrap())
    );

    // Successes: single and batched; a failure that dead-letters.
    let one = put(s, new_task("h2")).await;
    let r = claim_one(s, "h2", "w-5", T0 + 50).await;
    s.complete(&LeaseToken::of(&r), Some(b"1".to_vec()), T0 + 51)
        .await
        .expect("complete");
    let h = history_of(s, one.id()).await;
    assert_eq!(h.len(), 1);
    assert_eq!(
        attempt(&h[0]),
        &AttemptEvent {
            number: 1,
            worker: Some("w-5".into()),
            started_at_ms: Some(T0 + 50),
            outcome: AttemptOutcome::Succeeded,
            error: None,
            http: None,
        }
    );
    let (b1, b2) = (put(s, new_task("h3")).await, put(s, new_task("h3")).await);
    let claimed = s
        .claim(super::claim_req(&["h3"], "w-6", 2), T0 + 60)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2);
    let mut items: Vec<_> = claimed.iter().map(|r| (LeaseToken::of(r), None)).collect();
    // A stale lease in the batch records nothing.
    items.push((
        LeaseToken {
            attempt: 9,
            ..LeaseToken::of(&claimed[0])
        },
        None,
    ));
    let out = s.complete_batch(items, T0 + 61).await.expect("batch");
    assert!(out[0].is_ok() && out[1].is_ok() && out[2].is_err());
    for b in [&b1, &b2] {
        let h = history_of(s, b.id()).await;
        assert_eq!(h.len(), 1, "one event per completed task: {h:#?}");
        let a = attempt(&h[0]);
        assert_eq!(
            (a.number, a.outcome, a.worker.as_deref(), h[0].at_ms),
            (1, AttemptOutcome::Succeeded, Some("w-6"), T0 + 61)
        );
    }
    let d = put(s, new_task("h4")).await;
    let r = claim_one(s, "h4", "w-7", T0 + 70).await;
    s.fail(
        &LeaseToken::of(&r),
        "bad args",
        FailOutcome::Dead {
            reason: DeadReason::PayloadInvalid,
            detail: "not JSON".into(),
        },
        T0 + 71,
    )
    .await
    .expect("dead");
    let h = history_of(s, d.id()).await;
    let a = attempt(&h[0]);
    assert_eq!(
        (a.outcome, a.error.as_deref()),
        (AttemptOutcome::Dead, Some("bad args"))
    );
    // A lost lease records nothing.
    assert_lease_lost(
        "complete again",
        s.complete(&LeaseToken::of(&r), None, T0 + 72).await,
    );
    assert_eq!(history_of(s, d.id()).await, h);
}

/// Fails the running `row` for good (`max-attempts`) at `at`.
async fn fail_dead(s: &dyn Store, row: &crate::TaskRow, error: &str, at: i64) {
    s.fail(
        &LeaseToken::of(row),
        error,
        FailOutcome::Dead {
            reason: DeadReason::MaxAttempts,
            detail: "out of attempts".into(),
        },
        at,
    )
    .await
    .expect("fail dead");
}

/// A replay keeps the earlier attempts, records itself, and later attempts
/// get higher numbers; nothing earlier is rewritten.
pub(super) async fn history_replay(store: Arc<dyn Store>) {
    let s = &*store;
    let t = put(s, new_task("r")).await;
    let id = t.id().to_owned();
    let r = claim_one(s, "r", "w", T0 + 1).await;
    s.fail(
        &LeaseToken::of(&r),
        "first",
        FailOutcome::Retry { at_ms: T0 + 2 },
        T0 + 2,
    )
    .await
    .expect("retry");
    let r = claim_one(s, "r", "w", T0 + 3).await;
    fail_dead(s, &r, "second", T0 + 4).await;
    let before = history_of(s, &id).await;
    assert_eq!(before.len(), 2);

    let replayed = s
        .replay_dead(DeadSelector::Ids(vec![id.clone()]), ACTOR, T0 + 10)
        .await
        .expect("replay");
    assert_eq!(replayed, vec![id.clone()]);
    let row = get(s, &id).await;
    assert_eq!((row.attempt, row.attempts_before), (0, 2));
    assert_eq!(row.attempts_made(), 2);
    let h = history_of(s, &id).await;
    assert_appended("after the replay", &before, &h);
    assert_eq!(h.len(), 3);
    assert_eq!(
        h[2].event,
        Event::Replayed {
            actor: ACTOR.into()
        }
    );
    assert_eq!(h[2].at_ms, T0 + 10);

    // The replay runs: attempt 3 (its own attempt 1) dies, and a second
    // replay's attempt 4 succeeds.
    let r = claim_one(s, "r", "w2", T0 + 11).await;
    assert_eq!((r.attempt, r.attempts_before), (1, 2));
    fail_dead(s, &r, "third", T0 + 12).await;
    s.replay_dead(
        DeadSelector::Ids(vec![id.clone()]),
        "second operator",
        T0 + 20,
    )
    .await
    .expect("replay again");
    let r = claim_one(s, "r", "w3", T0 + 21).await;
    s.complete(&LeaseToken::of(&r), None, T0 + 22)
        .await
        .expect("complete");
    let after = history_of(s, &id).await;
    assert_appended("after the second replay", &h, &after);
    let numbers: Vec<u32> = crate::history::attempts(&after)
        .map(|(_, a)| a.number)
        .collect();
    assert_eq!(numbers, vec![1, 2, 3, 4], "numbers go on across replays");
    let kinds: Vec<&str> = after.iter().map(|e| e.event.kind()).collect();
    assert_eq!(
        kinds,
        vec!["attempt", "attempt", "replayed", "attempt", "replayed", "attempt"]
    );
    let errors: Vec<Option<&str>> = crate::history::attempts(&after)
        .map(|(_, a)| a.error.as_deref())
        .collect();
    assert_eq!(
        errors,
        vec![Some("first"), Some("second"), Some("third"), None]
    );
    let times: Vec<i64> = after.iter().map(|e| e.at_ms).collect();
    let mut sorted = times.clone();
    sorted.sort_unstable();
    assert_eq!(times, sorted, "events in time order");
    assert_eq!(get(s, &id).await.attempts_made(), 4);

    // An empty actor is refused and changes nothing.
    let d = make_dead(s, "r2", DeadReason::Expired, T0 + 30, None).await;
    assert_invalid(
        "replay without an actor",
        s.replay_dead(DeadSelector::Ids(vec![d.envelope.id.clone()]), "", T0 + 31)
            .await,
    );
    assert_eq!(get(s, &d.envelope.id).await.state, TaskState::Dead);
}

pub(super) fn exchange(status: Option<u16>, body: &[u8]) -> HttpExchange {
    HttpExchange {
        status,
        latency_ms: 42,
        response_body: body.to_vec(),
    }
}

/// A settled delivery is one attempt event with its HTTP exchange; a lost
/// lease or an invalid exchange records nothing.
pub(super) async fn history_delivery(store: Arc<dyn Store>) {
    let s = &*store;
    let m = put(s, new_message()).await.id().to_owned();
    let r = claim_one(s, MESSAGE_QUEUE, "dispatcher-1", T0 + 1).await;
    let lease = LeaseToken::of(&r);

    // Invalid exchanges are refused and change nothing.
    let retry = |error: &str| Settlement::Failed {
        error: error.to_owned(),
        outcome: FailOutcome::Retry { at_ms: T0 + 100 },
    };
    assert_invalid(
        "body over the limit",
        s.settle_delivery(
            &lease,
            exchange(Some(500), &vec![b'x'; MAX_ATTEMPT_BODY_BYTES + 1]),
            retry("500"),
            T0 + 2,
        )
        .await,
    );
    assert_invalid(
        "error over the limit",
        s.settle_delivery(
            &lease,
            exchange(None, b""),
            retry(&"e".repeat(MAX_ATTEMPT_ERROR_LEN + 1)),
            T0 + 2,
        )
        .await,
    );
    assert_eq!(get(s, &m).await.state, TaskState::Running);
    assert!(history_of(s, &m).await.is_empty());

    s.settle_delivery(
        &lease,
        exchange(Some(503), b"busy"),
        retry("503 Service Unavailable"),
        T0 + 3,
    )
    .await
    .expect("settle retry");
    let row = get(s, &m).await;
    assert_eq!((row.state, row.run_at_ms), (TaskState::Retryable, T0 + 100));
    assert_eq!(row.last_error.as_deref(), Some("503 Service Unavailable"));
    assert_lease_lost(
        "settle twice",
        s.settle_delivery(&lease, exchange(Some(200), b""), retry("x"), T0 + 4)
            .await,
    );
    let r = claim_one(s, MESSAGE_QUEUE, "dispatcher-2", T0 + 100).await;
    s.settle_delivery(
        &LeaseToken::of(&r),
        exchange(Some(204), b""),
        Settlement::Delivered {
            result: Some(br#"{"status":204}"#.to_vec()),
        },
        T0 + 101,
    )
    .await
    .expect("settle delivered");
    let row = get(s, &m).await;
    assert_eq!(row.state, TaskState::Succeeded);
    assert_eq!(row.result.as_deref(), Some(&br#"{"status":204}"#[..]));
    let h = history_of(s, &m).await;
    assert_eq!(h.len(), 2, "one event per attempt: {h:#?}");
    assert_eq!(
        attempt(&h[0]),
        &AttemptEvent {
            number: 1,
            worker: Some("dispatcher-1".into()),
            started_at_ms: Some(T0 + 1),
            outcome: AttemptOutcome::Retry,
            error: Some("503 Service Unavailable".into()),
            http: Some(exchange(Some(503), b"busy")),
        }
    );
    assert_eq!(
        attempt(&h[1]),
        &AttemptEvent {
            number: 2,
            worker: Some("dispatcher-2".into()),
            started_at_ms: Some(T0 + 100),
            outcome: AttemptOutcome::Succeeded,
            error: None,
            http: Some(exchange(Some(204), b"")),
        }
    );

    // A delivery that dies records the attempt with the dead outcome.
    let d = put(s, new_message()).await.id().to_owned();
    let r = claim_one(s, MESSAGE_QUEUE, "dispatcher-3", T0 + 200).await;
    assert_eq!(r.id(), d);
    s.settle_delivery(
        &LeaseToken::of(&r),
        exchange(None, b""),
        Settlement::Failed {
            error: "connection refused".into(),
            outcome: FailOutcome::Dead {
                reason: DeadReason::MaxAttempts,
                detail: "all 1 attempts failed".into(),
            },
        },
        T0 + 201,
    )
    .await
    .expect("settle dead");
    assert_eq!(get(s, &d).await.dead_reason, Some(DeadReason::MaxAttempts));
    let h = history_of(s, &d).await;
    assert_eq!(attempt(&h[0]).outcome, AttemptOutcome::Dead);
    assert_eq!(attempt(&h[0]).http, Some(exchange(None, b"")));
}

/// `settle_deliveries` settles each entry on its own, in order: delivered,
/// retry and dead with their attempt events; a lost lease, an invalid
/// exchange or a second entry for the same message fails only itself.
pub(super) async fn history_delivery_batch(store: Arc<dyn Store>) {
    let s = &*store;
    for _ in 0..5 {
        put(s, new_message()).await;
    }
    let rows = claim_n(s, &[MESSAGE_QUEUE], 5, T0 + 1).await;
    assert_eq!(rows.len(), 5);
    let lease = |i: usize| LeaseToken::of(&rows[i]);
    let delivered = Settlement::Delivered {
        result: Some(br#"{"status":200}"#.to_vec()),
    };
    let item = |lease: LeaseToken, http: HttpExchange, settlement: Settlement| DeliverySettlement {
        lease,
        http,
        settlement,
    };
    let items = vec![
        item(lease(0), exchange(Some(200), b"ok"), delivered.clone()),
        item(
            lease(1),
            exchange(Some(503), b"busy"),
            Settlement::Failed {
                error: "HTTP 503".into(),
                outcome: FailOutcome::Retry { at_ms: T0 + 100 },
            },
        ),
        item(
            lease(2),
            exchange(Some(410), b""),
            Settlement::Failed {
                error: "HTTP 410".into(),
                outcome: FailOutcome::Dead {
                    reason: DeadReason::TargetRefused,
                    detail: "gone".into(),
                },
            },
        ),
        item(
            LeaseToken {
                attempt: 9,
                ..lease(3)
            },
            exchange(Some(200), b""),
            delivered.clone(),
        ),
        item(
            lease(4),
            exchange(Some(200), &vec![b'x'; MAX_ATTEMPT_BODY_BYTES + 1]),
            delivered.clone(),
        ),
        item(lease(0), exchange(Some(200), b"again"), delivered.clone()),
    ];
    let out = s.settle_deliveries(items, T0 + 2).await.expect("batch");
    let [ok0, ok1, ok2, stale, oversize, twice]: [StoreResult<()>; 6] = out
        .try_into()
        .unwrap_or_else(|out| panic!("one answer per entry: {out:?}"));
    for (i, r) in [ok0, ok1, ok2].iter().enumerate() {
        assert!(r.is_ok(), "entry {i}: {r:?}");
    }
    assert_lease_lost("a stale lease", stale);
    assert_invalid("a body over the limit", oversize);
    assert_lease_lost("a message settled twice", twice);

    let done = get(s, rows[0].id()).await;
    assert_eq!(done.state, TaskState::Succeeded);
    assert_eq!(done.result.as_deref(), Some(&br#"{"status":200}"#[..]));
    assert_eq!(done.finished_at_ms, Some(T0 + 2));
    let h = history_of(s, rows[0].id()).await;
    assert_eq!(h.len(), 1, "one event for the delivered message: {h:#?}");
    assert_eq!(
        attempt(&h[0]),
        &AttemptEvent {
            number: 1,
            worker: Some("w-test".into()),
            started_at_ms: Some(T0 + 1),
            outcome: AttemptOutcome::Succeeded,
            error: None,
            http: Some(exchange(Some(200), b"ok")),
        }
    );

    let retried = get(s, rows[1].id()).await;
    assert_eq!(
        (retried.state, retried.run_at_ms),
        (TaskState::Retryable, T0 + 100)
    );
    assert_eq!(retried.last_error.as_deref(), Some("HTTP 503"));
    let h = history_of(s, rows[1].id()).await;
    assert_eq!(h.len(), 1);
    assert_eq!(attempt(&h[0]).outcome, AttemptOutcome::Retry);
    assert_eq!(attempt(&h[0]).error.as_deref(), Some("HTTP 503"));
    assert_eq!(attempt(&h[0]).http, Some(exchange(Some(503), b"busy")));

    let dead = get(s, rows[2].id()).await;
    assert_eq!(dead.state, TaskState::Dead);
    assert_eq!(dead.dead_reason, Some(DeadReason::TargetRefused));
    assert_eq!(dead.dead_detail.as_deref(), Some("gone"));
    let h = history_of(s, rows[2].id()).await;
    assert_eq!(h.len(), 1);
    assert_eq!(attempt(&h[0]).outcome, AttemptOutcome::Dead);

    // The refused entries changed nothing: still running, no history, and
    // the valid lease still settles.
    for row in &rows[3..] {
        assert_eq!(get(s, row.id()).await.state, TaskState::Running);
        assert!(history_of(s, row.id()).await.is_empty());
    }
    let again = s
        .settle_deliveries(
            vec![item(lease(4), exchange(Some(204), b""), delivered)],
            T0 + 3,
        )
        .await
        .expect("second batch");
    assert!(again[0].is_ok(), "{again:?}");
    assert_eq!(get(s, rows[4].id()).await.state, TaskState::Succeeded);
    assert!(s
        .settle_deliveries(Vec::new(), T0 + 4)
        .await
        .expect("empty batch")
        .is_empty());
}

/// Cancel and kill are events in order; an empty actor is refused.
pub(super) async fn history_operator_acts(store: Arc<dyn Store>) {
    let s = &*store;
    let t = put(s, new_task("o")).await;
    let id = t.id().to_owned();
    assert_invalid("cancel without an actor", s.cancel(&id, "", T0 + 1).await);
    assert_invalid(
        "cancel with an over-long actor",
        s.cancel(&id, &"a".repeat(257), T0 + 1).await,
    );
    assert_eq!(get(s, &id).await.state, TaskState::Available);
    assert!(history_of(s, &id).await.is_empty());
    s.cancel(&id, "key_1 (ops)", T0 + 2).await.expect("cancel");
    let h = history_of(s, &id).await;
    assert_eq!(h.len(), 1);
    assert_eq!(
        (&h[0].event, h[0].at_ms),
        (
            &Event::Cancelled {
                actor: "key_1 (ops)".into()
            },
            T0 + 2
        )
    );
    // A refused cancel records nothing.
    assert_conflict("cancel twice", s.cancel(&id, ACTOR, T0 + 3).await);
    assert_eq!(history_of(s, &id).await, h);

    // Kill: a refusal before the task ran; then a replay and an attempt.
    let k = put(s, new_task("o2")).await.id().to_owned();
    s.kill(&k, DeadReason::Expired, "past its expiry", T0 + 5)
        .await
        .expect("kill");
    s.replay_dead(DeadSelector::Ids(vec![k.clone()]), ACTOR, T0 + 6)
        .await
        .expect("replay");
    let r = claim_one(s, "o2", "w", T0 + 7).await;
    s.complete(&LeaseToken::of(&r), None, T0 + 8)
        .await
        .expect("complete");
    let h = history_of(s, &k).await;
    let kinds: Vec<&str> = h.iter().map(|e| e.event.kind()).collect();
    assert_eq!(kinds, vec!["dead-lettered", "replayed", "attempt"]);
    assert_eq!(
        h[0].event,
        Event::DeadLettered {
            reason: DeadReason::Expired,
            detail: "past its expiry".into()
        }
    );
    assert_eq!(attempt(&h[2]).number, 1, "a kill is not an attempt");
    assert!(history_of(s, &TaskId::generate().to_string())
        .await
        .is_empty());
}

/// Prune and purge delete the history of the tasks they delete, and only
/// theirs.
pub(super) async fn history_deleted(store: Arc<dyn Store>) {
    let s = &*store;
    // `done` fails once before it succeeds, so it has a stored event row
    // (a succeeded attempt alone is read back from the task row).
    let done = put(s, new_task("p")).await.id().to_owned();
    let r = claim_one(s, "p", "w", T0).await;
    s.fail(
        &LeaseToken::of(&r),
        "first try",
        FailOutcome::Retry { at_ms: T0 },
        T0,
    )
    .await
    .expect("fail");
    let r = claim_one(s, "p", "w", T0).await;
    s.complete(&LeaseToken::of(&r), None, T0 + 1)
        .await
        .expect("complete");
    assert_eq!(history_of(s, &done).await.len(), 2);
    let dead = put(s, new_task("p2")).await.id().to_owned();
    let r = claim_one(s, "p2", "w", T0).await;
    fail_dead(s, &r, "no", T0 + 1).await;
    let kept = put(s, new_task("p3")).await.id().to_owned();
    s.cancel(&kept, ACTOR, T0 + 2_000).await.expect("cancel");
    let kept_history = history_of(s, &kept).await;
    assert_eq!(kept_history.len(), 1);

    assert_eq!(s.prune(T0 + 1_000, 10).await.expect("prune"), 1);
    assert!(s.task(&done).await.expect("task").is_none());
    assert!(
        history_of(s, &done).await.is_empty(),
        "prune deletes the history of the tasks it deletes"
    );
    assert_eq!(
        history_of(s, &dead).await.len(),
        1,
        "dead letters keep theirs"
    );
    let purged = s
        .purge_dead(DeadSelector::Ids(vec![dead.clone()]))
        .await
        .expect("purge");
    assert_eq!(purged, vec![dead.clone()]);
    assert!(
        history_of(s, &dead).await.is_empty(),
        "purge deletes the history of the dead letters it deletes"
    );
    assert_eq!(history_of(s, &kept).await, kept_history);
}

/// Re-signing replaces a dead letter's signature only, records old and new
/// key ids, and refuses other states.
pub(super) async fn resign_dead(store: Arc<dyn Store>) {
    let s = &*store;
    let old = make_dead(
        s,
        "k",
        DeadReason::SignatureInvalid,
        T0 + 1,
        Some("old-key"),
    )
    .await;
    let id = old.envelope.id.clone();
    let new_sig = SignatureRecord {
        alg: Algorithm::Ed25519,
        key_id: "new-key".into(),
        sig: vec![9; 64],
    };
    let row = s
        .resign_dead(&id, new_sig.clone(), ACTOR, T0 + 5)
        .await
        .expect("resign");
    assert_eq!(row.signature.as_ref(), Some(&new_sig));
    assert_eq!(row.state, TaskState::Dead, "re-signing does not replay");
    let read = get(s, &id).await;
    assert_eq!(read.envelope, old.envelope, "the envelope is unchanged");
    assert_eq!(read.signature, Some(new_sig.clone()));
    let h = history_of(s, &id).await;
    assert_eq!(
        h.last().map(|e| (&e.event, e.at_ms)),
        Some((
            &Event::Resigned {
                actor: ACTOR.into(),
                from_key_id: Some("old-key".into()),
                to_key_id: "new-key".into(),
            },
            T0 + 5
        ))
    );
    // The re-signed task replays and runs with the new signature.
    s.replay_dead(DeadSelector::Ids(vec![id.clone()]), ACTOR, T0 + 6)
        .await
        .expect("replay");
    let r = claim_one(s, "k", "w", T0 + 7).await;
    assert_eq!(r.signature, Some(new_sig.clone()));

    // Only dead letters: a running, a waiting and an unknown task are
    // refused and keep their signature.
    assert_conflict(
        "resign a running task",
        s.resign_dead(&id, new_sig.clone(), ACTOR, T0 + 8).await,
    );
    let waiting = signed(new_task("k2"), Algorithm::HmacSha256, "old-key");
    put(s, waiting.clone()).await;
    assert_conflict(
        "resign a waiting task",
        s.resign_dead(&waiting.envelope.id, new_sig.clone(), ACTOR, T0 + 8)
            .await,
    );
    assert_same_signed(
        "refused re-sign",
        &get(s, &waiting.envelope.id).await,
        &waiting,
    );
    assert_not_found(
        "resign an unknown task",
        s.resign_dead(&TaskId::generate().to_string(), new_sig.clone(), ACTOR, T0)
            .await,
    );
    let unsigned = make_dead(s, "k3", DeadReason::SignatureInvalid, T0 + 1, None).await;
    assert_invalid(
        "resign without an actor",
        s.resign_dead(&unsigned.envelope.id, new_sig.clone(), "", T0 + 9)
            .await,
    );
    let row = s
        .resign_dead(&unsigned.envelope.id, new_sig, ACTOR, T0 + 9)
        .await
        .expect("resign an unsigned dead letter");
    let h = history_of(s, row.id()).await;
    assert!(matches!(
        &h.last().expect("event").event,
        Event::Resigned {
            from_key_id: None,
            ..
        }
    ));
}
